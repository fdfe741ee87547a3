//! `glassbox train --compare`: recipes trained one after another on the same token stream,
//! seed, parameter budget and step budget, so their loss curves differ only by architecture.
//! Each run's checkpoint goes to `OUT/RECIPE/`; the report is `OUT/compare.json` (the figure
//! is the app's: the engine draws nothing).

use std::path::{Path, PathBuf};

use super::presets::Preset;
use super::recipes::Recipe;
use super::trainer::{Event, TrainOptions, Trainer};
use crate::error::{EngineError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    pub preset: Preset,
    /// `None`: the preset's default.
    pub steps: Option<usize>,
    pub seed: u64,
    /// `None`: the preset's Llama's parameter count.
    pub budget_params: Option<usize>,
    pub eval_every: Option<usize>,
    pub out: PathBuf,
}

/// One held-out evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalPoint {
    pub step: usize,
    pub loss: f32,
}

/// One recipe's run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompareRun {
    pub recipe: String,
    pub params: u64,
    /// Training loss per step (BERT: the masked-LM loss).
    pub loss: Vec<f32>,
    pub eval: Vec<EvalPoint>,
    pub steps_per_second: f64,
    pub checkpoint: PathBuf,
    /// FNV-1a over every training batch's token ids (before BERT's masking): equal across
    /// runs when they saw the same token stream.
    pub batches_hash: String,
}

/// `compare.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompareReport {
    pub runs: Vec<CompareRun>,
    pub preset: String,
    pub seed: u64,
    pub steps: usize,
    pub budget_params: u64,
}

pub const REPORT_FILE: &str = "compare.json";

/// Trains each recipe in turn; `on_event(recipe, event)` sees every step and evaluation.
pub fn run_compare(recipes: &[Recipe], options: &CompareOptions, on_event: &mut dyn FnMut(Recipe, Event<'_>)) -> Result<CompareReport> {
    let budget = options.budget_params.unwrap_or(options.preset.spec().config.n_params() as usize);
    let mut runs = Vec::new();
    let mut steps = 0;
    for &recipe in recipes {
        let dir = options.out.join(recipe.name());
        let train = TrainOptions {
            preset: options.preset,
            steps: options.steps,
            seed: options.seed,
            out: Some(dir.clone()),
            eval_every: options.eval_every,
            recipe,
            budget_params: Some(budget),
            ..TrainOptions::default()
        };
        let trainer = Trainer::new(train).map_err(|e| in_recipe(recipe, e))?;
        steps = trainer.total_steps();
        runs.push(train_run(trainer, recipe.name(), dir, &mut |e| on_event(recipe, e))?.0);
    }
    let report = CompareReport { runs, preset: options.preset.name().into(), seed: options.seed, steps, budget_params: budget as u64 };
    write_report(&options.out, &report)?;
    Ok(report)
}

/// Trains one prepared trainer to the end (its checkpoint in `dir`, which its options'
/// `out` should name) as a compare run called `name`; the trained trainer comes back too.
pub fn train_run(mut trainer: Trainer, name: &str, dir: PathBuf, on_event: &mut dyn FnMut(Event<'_>)) -> Result<(CompareRun, Trainer)> {
    let batches_hash = stream_hash(&trainer);
    let summary = trainer.run(on_event).map_err(|e| EngineError::Input(format!("recipe `{name}`: {e}")))?;
    let run = CompareRun {
        recipe: name.into(),
        params: trainer.params.n_values() as u64,
        loss: summary.losses,
        eval: summary.evals.iter().map(|e| EvalPoint { step: e.step, loss: e.loss }).collect(),
        steps_per_second: summary.steps_per_second,
        checkpoint: dir,
        batches_hash,
    };
    Ok((run, trainer))
}

fn in_recipe(recipe: Recipe, e: EngineError) -> EngineError {
    EngineError::Input(format!("recipe `{}`: {e}", recipe.name()))
}

/// FNV-1a (64-bit) over the token ids of every batch the run will train on.
fn stream_hash(t: &Trainer) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for step in 0..t.total_steps() {
        for seq in t.data.batch(t.options.seed, step, t.spec.batch_size) {
            for id in seq.iter().copied().chain([u32::MAX]) {
                for b in id.to_le_bytes() {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
    }
    format!("{h:016x}")
}

fn write_report(out: &Path, report: &CompareReport) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| EngineError::io(out, e))?;
    let path = out.join(REPORT_FILE);
    let bytes = serde_json::to_vec_pretty(report).map_err(|e| EngineError::Input(e.to_string()))?;
    std::fs::write(&path, bytes).map_err(|e| EngineError::io(&path, e))
}

/// Reads `compare.json` back (the figure writer, tests).
pub fn read_report(out: &Path) -> Result<CompareReport> {
    let path = out.join(REPORT_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| EngineError::Input(format!("{}: {e}", path.display())))
}
