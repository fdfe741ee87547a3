//! `positions`: RoPE (`llama`), learned positions (`llama-learned`) and none (`llama-nope`)
//! on the copy task, trained at length 32 and tested at 32, 64 and 128. Learned positions
//! past 32 are rows no step ever trained; relative (RoPE) and no positions have none.

use std::sync::Arc;

use super::tasks::{COPY_VOCAB, CopyTask, copy_scored};
use super::{ExperimentOptions, ExperimentReport, FinalEval, TaskShape, Tally, logits, score, task_trainer, train_all, Experiment};
use crate::error::{EngineError, Result};
use crate::exec::cpu::CpuExecutor;
use crate::train::recipes::Recipe;
use crate::train::trainer::{Event, Trainer};

pub const TRAIN_LEN: usize = 32;
pub const EVAL_LENS: [usize; 3] = [32, 64, 128];
pub const RECIPES: [Recipe; 3] = [Recipe::Llama, Recipe::LlamaLearned, Recipe::LlamaNope];
pub const DEFAULT_STEPS: usize = 400;
const BUDGET: usize = 100_000;

pub fn run(options: &ExperimentOptions, on_event: &mut dyn FnMut(&str, Event<'_>)) -> Result<ExperimentReport> {
    let steps = options.steps.unwrap_or(DEFAULT_STEPS);
    let shape = TaskShape { batch_size: 16, steps, peak_lr: 3e-3, eval_every: (steps / 10).max(1) };
    let trainers = RECIPES
        .iter()
        .map(|&r| {
            // Every config holds 128 positions, so the learned table covers the longest test.
            let config = r.config(COPY_VOCAB, BUDGET, EVAL_LENS[EVAL_LENS.len() - 1]);
            let task = CopyTask::new(options.seed, TRAIN_LEN, &EVAL_LENS);
            (r.name().to_string(), task_trainer(r.name(), config, Box::new(task), &shape, options))
        })
        .collect();
    let (compare, final_evals) = train_all(options, "copy", trainers, &measure, on_event)?;
    Ok(ExperimentReport { experiment: Experiment::Positions, compare, final_evals, lr_sweep: None })
}

/// Greedy accuracy and mean loss over the copied half, at each tested length.
fn measure(t: &Trainer) -> Result<FinalEval> {
    let task = CopyTask::new(t.options.seed, TRAIN_LEN, &EVAL_LENS);
    let mut exec = CpuExecutor::new(Arc::clone(&t.model()?));
    let mut out = FinalEval::new();
    for (len, seqs) in &task.evals {
        let mut tally = Tally::default();
        for ids in seqs {
            let l = logits(&mut exec, ids)?;
            for i in copy_scored(*len) {
                let target = *ids.get(i + 1).ok_or_else(|| EngineError::Input("copy sequence too short".into()))?;
                tally.add(score(l.row(i), target));
            }
        }
        out.insert(format!("copy_acc_{len}"), tally.acc());
        out.insert(format!("copy_loss_{len}"), tally.mean_loss());
    }
    Ok(out)
}
