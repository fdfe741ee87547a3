//! `window`: Gemma 3's recipe with every layer sliding over a small window (`gemma3`)
//! against the same recipe with every layer global (`gemma3-global`) on the recall task.
//! A key inside the window is in reach; one farther back than the layers can relay
//! (layers × (window − 1) positions) is not, whatever the training.

use std::sync::Arc;

use super::tasks::{RECALL_VOCAB, RecallTask, recall_query_pos};
use super::{Experiment, ExperimentOptions, ExperimentReport, FinalEval, TaskShape, Tally, logits, score, task_trainer, train_all};
use crate::error::Result;
use crate::exec::cpu::CpuExecutor;
use crate::train::recipes::Recipe;
use crate::train::trainer::{Event, Trainer};

pub const WINDOW: usize = 4;
/// Training distances run 1..=MAX_DISTANCE; near ones are inside the window, far ones past
/// what two sliding layers can relay (2 × 3 positions).
pub const MAX_DISTANCE: usize = 20;
pub const NEAR: (usize, usize) = (1, WINDOW - 1);
pub const FAR: (usize, usize) = (12, MAX_DISTANCE);
pub const DEFAULT_STEPS: usize = 600;
pub const RUNS: [&str; 2] = ["gemma3", "gemma3-global"];
const BUDGET: usize = 100_000;

pub fn run(options: &ExperimentOptions, on_event: &mut dyn FnMut(&str, Event<'_>)) -> Result<ExperimentReport> {
    let steps = options.steps.unwrap_or(DEFAULT_STEPS);
    let shape = TaskShape { batch_size: 16, steps, peak_lr: 3e-3, eval_every: (steps / 10).max(1) };
    let trainers = RUNS
        .iter()
        .map(|&name| {
            let mut config = Recipe::Gemma3.config(RECALL_VOCAB, BUDGET, MAX_DISTANCE + 3);
            let kind = if name == "gemma3" { "sliding_attention" } else { "full_attention" };
            config.sliding_window = Some(WINDOW);
            config.layer_types = Some(vec![kind.to_string(); config.num_hidden_layers]);
            let task = RecallTask::new(options.seed, MAX_DISTANCE, NEAR, FAR);
            (name.to_string(), task_trainer(name, config, Box::new(task), &shape, options))
        })
        .collect();
    let (compare, final_evals) = train_all(options, "recall", trainers, &measure, on_event)?;
    Ok(ExperimentReport { experiment: Experiment::Window, compare, final_evals, lr_sweep: None })
}

/// Greedy accuracy of the key predicted at `<q>`, near and far.
fn measure(t: &Trainer) -> Result<FinalEval> {
    let task = RecallTask::new(t.options.seed, MAX_DISTANCE, NEAR, FAR);
    let mut exec = CpuExecutor::new(Arc::clone(&t.model()?));
    let mut out = FinalEval::new();
    for (key, seqs) in [("near_acc", &task.near), ("far_acc", &task.far)] {
        let mut tally = Tally::default();
        for ids in seqs {
            let q = recall_query_pos(ids);
            tally.add(score(logits(&mut exec, ids)?.row(q), ids[q + 1]));
        }
        out.insert(key.into(), tally.acc());
    }
    Ok(out)
}
