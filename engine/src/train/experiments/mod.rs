//! The article's claims as experiments (`glassbox train --experiment NAME`): each trains a
//! few recipes on one task with the same seed and step budget, then measures the claim on
//! held-out data (`final_eval`). The report is `compare.json` in the compare schema plus
//! `experiment`, each run's `final_eval` and (article) the learning-rate sweep.
//! - `article`: the article's Llama against Llama's recipe, one change at a time, on `text`.
//! - `positions`: RoPE, learned and no positions on a copy task, tested past its length.
//! - `objectives`: BERT's masked LM against Llama's next token on the same held-out text.
//! - `window`: sliding-window attention against full attention on a recall task.

pub mod article;
pub mod objectives;
pub mod positions;
pub mod tasks;
pub mod window;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView1};

use super::adamw::{AdamW, LrSchedule};
use super::compare::{CompareReport, CompareRun, REPORT_FILE, train_run};
use super::data::{Data, TaskSource};
use super::params::Params;
use super::presets::Preset;
use super::recipes::Recipe;
use super::trainer::{Event, TrainOptions, Trainer};
use crate::error::{EngineError, Result};
use crate::exec::cpu::CpuExecutor;
use crate::exec::executor::{Executor, PassOptions};
use crate::exec::trace::CaptureFilter;
use crate::load::config::LlamaConfig;
use crate::program::hooks::{HookKey, HookKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Experiment {
    Article,
    Positions,
    Objectives,
    Window,
}

impl Experiment {
    pub const ALL: [Experiment; 4] = [Experiment::Article, Experiment::Positions, Experiment::Objectives, Experiment::Window];

    pub fn name(self) -> &'static str {
        match self {
            Experiment::Article => "article",
            Experiment::Positions => "positions",
            Experiment::Objectives => "objectives",
            Experiment::Window => "window",
        }
    }

    pub fn names() -> String {
        Self::ALL.map(Experiment::name).join(", ")
    }

    /// The experiment called `s`, or the one-line reason there is none.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown experiment `{s}` (known: {})", Self::names()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentOptions {
    /// Steps of each compared run; `None`: the experiment's default.
    pub steps: Option<usize>,
    pub seed: u64,
    pub out: PathBuf,
}

/// One point of the article's learning-rate sweep.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepPoint {
    pub recipe: String,
    pub peak_lr: f32,
    pub final_loss: f32,
    /// The loss went non-finite, or ended above the first step's.
    pub diverged: bool,
}

/// A run's held-out measurements, by name.
pub type FinalEval = BTreeMap<String, f64>;

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentReport {
    pub experiment: Experiment,
    pub compare: CompareReport,
    /// One per run, in `compare.runs` order.
    pub final_evals: Vec<FinalEval>,
    pub lr_sweep: Option<Vec<SweepPoint>>,
}

impl ExperimentReport {
    /// `compare.json`: the compare report with `experiment`, each run's `final_eval` and
    /// (article) `lr_sweep` added.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        let err = |e: serde_json::Error| EngineError::Input(e.to_string());
        let mut v = serde_json::to_value(&self.compare).map_err(err)?;
        if let Some(runs) = v.get_mut("runs").and_then(|r| r.as_array_mut()) {
            for (run, eval) in runs.iter_mut().zip(&self.final_evals) {
                if let Some(obj) = run.as_object_mut() {
                    obj.insert("final_eval".into(), serde_json::to_value(eval).map_err(err)?);
                }
            }
        }
        if let Some(obj) = v.as_object_mut() {
            obj.insert("experiment".into(), self.experiment.name().into());
            if let Some(sweep) = &self.lr_sweep {
                obj.insert("lr_sweep".into(), serde_json::to_value(sweep).map_err(err)?);
            }
        }
        Ok(v)
    }

    fn write(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out).map_err(|e| EngineError::io(out, e))?;
        let path = out.join(REPORT_FILE);
        let bytes = serde_json::to_vec_pretty(&self.to_json()?).map_err(|e| EngineError::Input(e.to_string()))?;
        std::fs::write(&path, bytes).map_err(|e| EngineError::io(&path, e))
    }
}

/// Runs one experiment to the end and writes `OUT/compare.json` (each run's checkpoint in
/// `OUT/RUN/`); `on_event(run, event)` sees every step and evaluation.
pub fn run_experiment(e: Experiment, options: &ExperimentOptions, on_event: &mut dyn FnMut(&str, Event<'_>)) -> Result<ExperimentReport> {
    let report = match e {
        Experiment::Article => article::run(options, on_event)?,
        Experiment::Positions => positions::run(options, on_event)?,
        Experiment::Objectives => objectives::run(options, on_event)?,
        Experiment::Window => window::run(options, on_event)?,
    };
    report.write(&options.out)?;
    Ok(report)
}

/// Trains every (name, trainer) in turn and measures each with `measure`.
fn train_all(
    options: &ExperimentOptions,
    preset: &str,
    trainers: Vec<(String, Trainer)>,
    measure: &dyn Fn(&Trainer) -> Result<FinalEval>,
    on_event: &mut dyn FnMut(&str, Event<'_>),
) -> Result<(CompareReport, Vec<FinalEval>)> {
    let (mut runs, mut evals, mut steps, mut budget): (Vec<CompareRun>, _, _, _) = (Vec::new(), Vec::new(), 0, 0);
    for (name, trainer) in trainers {
        steps = trainer.total_steps();
        budget = budget.max(trainer.params.n_values() as u64);
        let dir = options.out.join(&name);
        let (run, trained) = train_run(trainer, &name, dir, &mut |e| on_event(&name, e))?;
        evals.push(measure(&trained).map_err(|e| EngineError::Input(format!("recipe `{name}`: {e}")))?);
        runs.push(run);
    }
    let compare = CompareReport { runs, preset: preset.into(), seed: options.seed, steps, budget_params: budget };
    Ok((compare, evals))
}

/// A preset recipe's trainer (the preset's data, sized to the preset Llama's budget).
fn preset_trainer(preset: Preset, recipe: Recipe, steps: usize, options: &ExperimentOptions, out: bool) -> Result<Trainer> {
    Trainer::new(TrainOptions {
        preset,
        steps: Some(steps),
        seed: options.seed,
        out: out.then(|| options.out.join(recipe.name())),
        recipe,
        budget_params: Some(preset.spec().config.n_params() as usize),
        ..TrainOptions::default()
    })
}

/// How a synthetic task trains: sizes and schedule (AdamW, clipping and init as the
/// `induction` preset's).
pub struct TaskShape {
    pub batch_size: usize,
    pub steps: usize,
    pub peak_lr: f32,
    pub eval_every: usize,
}

/// A trainer on a synthetic task with an explicit model config; checkpoints to `OUT/name/`.
fn task_trainer(name: &str, config: LlamaConfig, task: Box<dyn TaskSource>, shape: &TaskShape, options: &ExperimentOptions) -> Trainer {
    let mut spec = Preset::Induction.spec();
    spec.config = config;
    spec.batch_size = shape.batch_size;
    spec.steps = shape.steps;
    spec.eval_every = shape.eval_every.max(1);
    let warmup = (shape.steps / 10).min(20);
    spec.schedule = LrSchedule { peak: shape.peak_lr, warmup, total: shape.steps, min_lr: shape.peak_lr / 10.0 };
    let params = Params::init(&spec.config, options.seed, spec.init_std);
    let opt = AdamW::new(spec.adamw, &params);
    let train = TrainOptions { steps: Some(shape.steps), seed: options.seed, out: Some(options.out.join(name)), ..TrainOptions::default() };
    Trainer { options: train, spec, params, opt, step: 0, data: Data::Task(task) }
}

/// The logits `[pos, vocab]` of one pass over `ids`.
fn logits(exec: &mut CpuExecutor, ids: &[u32]) -> Result<Array2<f32>> {
    exec.reset();
    let trace = exec.forward(ids, PassOptions::capture(CaptureFilter::kinds([HookKind::Logits])))?;
    trace
        .get(HookKey::Logits)
        .and_then(|t| t.as_2d())
        .map(|a| a.to_owned())
        .ok_or_else(|| EngineError::Input("the evaluation pass recorded no logits".into()))
}

/// Cross-entropy of `target` under one logits row, and whether it is the top-1 choice.
fn score(row: ArrayView1<'_, f32>, target: u32) -> (f64, bool) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let log_z = f64::from(max) + row.iter().map(|&v| f64::from(v - max).exp()).sum::<f64>().ln();
    let t = target as usize;
    let top = row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0;
    (log_z - f64::from(row[t]), top == t)
}

/// Mean loss and top-1 accuracy over scored predictions.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    loss: f64,
    hits: usize,
    n: usize,
}

impl Tally {
    fn add(&mut self, (loss, hit): (f64, bool)) {
        self.loss += loss;
        self.hits += usize::from(hit);
        self.n += 1;
    }

    fn mean_loss(&self) -> f64 {
        self.loss / self.n.max(1) as f64
    }

    fn acc(&self) -> f64 {
        self.hits as f64 / self.n.max(1) as f64
    }
}
