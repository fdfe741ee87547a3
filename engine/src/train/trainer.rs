//! `Trainer`: one preset's model, data and optimizer, advanced one AdamW step at a time.
//! The CLI runs it to the end; the app's training thread steps it and streams reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::adamw::{AdamW, clip_global_norm};
use super::backward::Gradients;
use super::checkpoint::{save_checkpoint, step_dir};
use super::data::{Data, MaskedBatch, SAMPLE_PROMPTS};
use super::eval::{ProbeResult, probe};
use super::parallel::{batch_gradients, batch_gradients_for};
use super::params::Params;
use super::precision::{Precision, round_trace};
use super::backward::{Objective, backward_for};
use super::presets::{Preset, PresetSpec};
use super::recipes::{ObjectiveKind, Recipe};
use super::tokenizer_train;
use crate::load::config::LlamaConfig;
use crate::exec::cpu::CpuExecutor;
use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions, generate};
use crate::load::model::{Model, ModelSource};
use crate::exec::sampling::SamplingParams;
use crate::exec::trace::{CaptureFilter, Trace};
use crate::program::hooks::{HookKey, HookKind};

#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub preset: Preset,
    /// `None`: the preset's default.
    pub steps: Option<usize>,
    pub seed: u64,
    /// Data-parallel replicas; must divide the batch size.
    pub workers: usize,
    pub precision: Precision,
    /// Where checkpoints go (`None`: nowhere).
    pub out: Option<PathBuf>,
    /// Evaluate (and save a checkpoint) every N steps; `None`: the preset's default.
    pub eval_every: Option<usize>,
    /// The architecture; `Llama` with no budget is the preset's own model.
    pub recipe: Recipe,
    /// The parameter budget the recipe is sized to; `None`: the preset's Llama's count.
    pub budget_params: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            preset: Preset::Induction,
            steps: None,
            seed: 1,
            workers: 1,
            precision: Precision::F32,
            out: None,
            eval_every: None,
            recipe: Recipe::Llama,
            budget_params: None,
        }
    }
}

/// What one optimizer step did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StepReport {
    /// Steps taken so far (1 after the first).
    pub step: usize,
    pub loss: f32,
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Gradient norm of each decoder layer's parameters.
    pub layer_grad_norms: Vec<f32>,
    /// Each data-parallel worker's shard gradient norm before the all-reduce.
    pub worker_grad_norms: Vec<f32>,
    pub seconds: f32,
}

/// What one evaluation measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EvalReport {
    pub step: usize,
    /// Held-out loss (induction: on the predictable repeated half).
    pub loss: f32,
    /// Induction: the held-out loss on the random first half (stays near ln(vocab)).
    pub other_loss: f32,
    /// The best head's induction score on held-out repeated random sequences.
    pub induction_score: f32,
    pub best_head: [usize; 2],
    pub head_scores: Vec<Vec<f32>>,
    /// Text: continuations of the sample prompts.
    pub samples: Vec<String>,
}

/// One training step laid open for the step-through: the first sequence of the batch, its
/// forward trace and every gradient, and the weights before and after the AdamW update.
pub struct StepInspection {
    pub report: StepReport,
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    pub forward: Trace,
    pub grads: Gradients,
    pub before: Params,
    pub after: Params,
}

impl StepInspection {
    /// The update AdamW made to one parameter: `after − before`.
    pub fn delta(&self, name: &str) -> Option<ndarray::ArrayD<f32>> {
        Some(self.after.get(name)? - self.before.get(name)?)
    }

    /// The matrices (rank-2 parameters), for choosing which update to show.
    pub fn matrices(&self) -> Vec<String> {
        self.before.iter().filter(|(_, t)| t.ndim() == 2).map(|(n, _)| n.to_string()).collect()
    }
}

pub struct Trainer {
    pub options: TrainOptions,
    pub spec: PresetSpec,
    /// The f32 master weights.
    pub params: Params,
    pub opt: AdamW,
    /// Steps taken.
    pub step: usize,
    pub data: Data,
}

impl Trainer {
    pub fn new(options: TrainOptions) -> Result<Self> {
        let mut spec = options.preset.spec();
        if let Some(steps) = options.steps {
            spec.schedule.total = steps;
            spec.steps = steps;
        }
        if let Some(every) = options.eval_every {
            spec.eval_every = every.max(1);
        }
        if options.workers == 0 || !spec.batch_size.is_multiple_of(options.workers) {
            return Err(EngineError::Input(format!(
                "--workers {} must divide the batch size {} (try 1, 2, 4, 8 or 16)",
                options.workers, spec.batch_size
            )));
        }
        // The data (and its tokenizer) from the preset's own config: every recipe sees the
        // same token stream.
        let data = Data::new(options.preset, &spec, options.seed)?;
        if options.recipe != Recipe::Llama || options.budget_params.is_some() {
            let budget = options.budget_params.unwrap_or(spec.config.n_params() as usize);
            // BERT's mask token is one row past the data's vocabulary.
            let extra = usize::from(options.recipe.objective() == ObjectiveKind::MaskedLm);
            spec.config = options.recipe.config(spec.config.vocab_size + extra, budget, spec.seq_len);
        }
        let params = Params::init(&spec.config, options.seed, spec.init_std);
        let opt = AdamW::new(spec.adamw, &params);
        Ok(Self {
            options,
            spec,
            params,
            opt,
            step: 0,
            data,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.spec.config
    }

    pub fn total_steps(&self) -> usize {
        self.spec.steps
    }

    pub fn done(&self) -> bool {
        self.step >= self.spec.steps
    }

    /// The weights the passes compute with: the master weights, rounded for bf16.
    pub fn compute_params(&self) -> Params {
        match self.options.precision {
            Precision::F32 => self.params.clone(),
            Precision::Bf16 => self.params.map(super::precision::bf16),
        }
    }

    fn source(&self) -> ModelSource {
        ModelSource {
            dir: PathBuf::new(),
            name: format!("train-{}", self.options.preset.name()),
            weights_note: self.note(),
        }
    }

    fn note(&self) -> String {
        format!(
            "trained by Glassbox: preset {}, step {}, seed {}, {} (f32 master weights)",
            self.options.preset.name(),
            self.step,
            self.options.seed,
            self.options.precision.name()
        )
    }

    /// The current weights as a runnable model (f32 master weights).
    pub fn model(&self) -> Result<Arc<Model>> {
        Ok(Arc::new(self.params.to_model(self.config(), None, self.source())?))
    }

    /// One AdamW step on the next batch.
    pub fn train_step(&mut self) -> Result<StepReport> {
        let start = Instant::now();
        let compute = self.compute_params();
        let model = Arc::new(compute.to_model(self.config(), None, self.source())?);
        let bg = match self.options.recipe.objective() {
            ObjectiveKind::NextToken => {
                let batch = self.data.batch(self.options.seed, self.step, self.spec.batch_size);
                batch_gradients(self.config(), &compute, &model, &batch, self.options.workers, self.options.precision)?
            }
            ObjectiveKind::MaskedLm => {
                let batch = self.data.masked_batch(self.options.seed, self.step, self.spec.batch_size, self.mask_id());
                let objectives: Vec<Objective> = batch.labels.into_iter().map(|labels| Objective::MaskedLm { labels }).collect();
                batch_gradients_for(self.config(), &compute, &model, &batch.inputs, &objectives, self.options.workers, self.options.precision)?
            }
        };
        let mut grads = bg.grads;
        let layer_grad_norms = (0..self.config().n_layers())
            .map(|l| grads.norm_of(&format!("model.layers.{l}.")))
            .collect();
        let grad_norm = clip_global_norm(&mut grads, self.spec.clip);
        let lr = self.spec.schedule.lr(self.step);
        self.opt.step(&mut self.params, &grads, lr);
        self.step += 1;
        Ok(StepReport {
            step: self.step,
            loss: bg.loss,
            lr,
            grad_norm,
            layer_grad_norms,
            worker_grad_norms: bg.worker_norms,
            seconds: start.elapsed().as_secs_f32(),
        })
    }

    /// A training step with its first sequence laid open (forward trace, every gradient,
    /// weights before and after).
    pub fn train_step_inspected(&mut self) -> Result<StepInspection> {
        let (ids, objective) = match self.options.recipe.objective() {
            ObjectiveKind::NextToken => (self.data.batch(self.options.seed, self.step, self.spec.batch_size)[0].clone(), Objective::NextToken),
            ObjectiveKind::MaskedLm => {
                let mut b = self.data.masked_batch(self.options.seed, self.step, self.spec.batch_size, self.mask_id());
                (b.inputs.swap_remove(0), Objective::MaskedLm { labels: b.labels.swap_remove(0) })
            }
        };
        let compute = self.compute_params();
        let model = Arc::new(compute.to_model(self.config(), None, self.source())?);
        let mut exec = CpuExecutor::new(model);
        let forward = round_trace(
            exec.forward(&ids, PassOptions::capture(CaptureFilter::All))?,
            self.options.precision,
        );
        let grads = backward_for(self.config(), &compute, &forward, self.options.precision, &objective)?;
        let before = self.params.clone();
        let report = self.train_step()?;
        Ok(StepInspection {
            report,
            tokens: ids.iter().map(|&i| self.data.token_text(i)).collect(),
            ids,
            forward,
            grads,
            before,
            after: self.params.clone(),
        })
    }

    /// Held-out loss, the induction score of every head, and (text) samples.
    pub fn evaluate(&self) -> Result<EvalReport> {
        let model = self.model()?;
        let data = &self.data;
        let held = match self.options.recipe.objective() {
            ObjectiveKind::NextToken => probe(&model, data.eval_set(), &|i| data.scored(i))?,
            ObjectiveKind::MaskedLm => {
                let loss = masked_eval_loss(&model, &data.masked_eval_set(self.options.seed, self.mask_id()))?;
                ProbeResult { loss, ..probe(&model, data.probe_set(), &|i| data.scored(i))? }
            }
        };
        let induction = match self.options.preset {
            Preset::Induction if self.options.recipe.objective() == ObjectiveKind::NextToken => held.clone(),
            _ => probe(&model, data.probe_set(), &|i| data.scored(i))?,
        };
        let (score, l, h) = induction.best_head();
        Ok(EvalReport {
            step: self.step,
            loss: held.loss,
            other_loss: held.other_loss,
            induction_score: score,
            best_head: [l, h],
            head_scores: induction.scores,
            samples: self.samples(&model)?,
        })
    }

    /// Text preset: seeded continuations of the sample prompts.
    pub fn samples(&self, model: &Arc<Model>) -> Result<Vec<String>> {
        let Some(tok) = self.data.tokenizer().filter(|_| model.arch.generates()) else {
            return Ok(Vec::new());
        };
        let mut exec = CpuExecutor::new(Arc::clone(model));
        SAMPLE_PROMPTS
            .iter()
            .enumerate()
            .map(|(k, prompt)| {
                let mut ids = vec![0];
                ids.extend(tokenizer_train::encode(tok, prompt)?);
                let sampling = SamplingParams { temperature: 0.7, top_k: 20, top_p: 1.0, seed: self.options.seed + k as u64 };
                let new = generate(&mut exec, &ids, 40, sampling, &[], &mut |_| {})?;
                ids.extend(new);
                tokenizer_train::decode(tok, &ids)
            })
            .collect()
    }

    /// Writes the current weights as an HF folder.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_checkpoint(dir, self.config(), &self.params, Some(&self.data.tokenizer_json()?), &self.note())?;
        note_variant(dir, self.config())
    }

    /// BERT's mask token: the row past the data's vocabulary.
    fn mask_id(&self) -> u32 {
        self.config().vocab_size.saturating_sub(1) as u32
    }

    /// Runs every remaining step, evaluating (and, with `out`, checkpointing) every
    /// `eval_every` steps and at the end; the final weights go to `out` itself.
    pub fn run(&mut self, on_event: &mut dyn FnMut(Event<'_>)) -> Result<RunSummary> {
        let start = Instant::now();
        let mut losses = Vec::new();
        let mut evals = vec![self.evaluate()?];
        on_event(Event::Eval(&evals[0]));
        let mut train_seconds = 0.0f64;
        while !self.done() {
            let r = self.train_step()?;
            train_seconds += f64::from(r.seconds);
            losses.push(r.loss);
            on_event(Event::Step(&r));
            if self.step.is_multiple_of(self.spec.eval_every) || self.done() {
                let e = self.evaluate()?;
                on_event(Event::Eval(&e));
                evals.push(e);
                if let Some(out) = &self.options.out {
                    self.save(&step_dir(out, self.step))?;
                }
            }
        }
        if let Some(out) = &self.options.out {
            self.save(out)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        Ok(RunSummary {
            losses,
            evals,
            checkpoint: self.options.out.clone(),
            seconds,
            train_seconds,
            steps_per_second: self.step as f64 / train_seconds.max(1e-9),
        })
    }
}

/// A Llama variant's checkpoint says which variant it is: `glassbox_variant` added to the
/// config.json the checkpoint writer made (which knows the family's own keys).
fn note_variant(dir: &Path, c: &LlamaConfig) -> Result<()> {
    let Some(v) = &c.glassbox_variant else { return Ok(()) };
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
    let mut json: serde_json::Value = serde_json::from_str(&text).map_err(|e| EngineError::Input(format!("{}: {e}", path.display())))?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("glassbox_variant".into(), serde_json::to_value(v).map_err(|e| EngineError::Input(e.to_string()))?);
    }
    let bytes = serde_json::to_vec_pretty(&json).map_err(|e| EngineError::Input(e.to_string()))?;
    std::fs::write(&path, bytes).map_err(|e| EngineError::io(&path, e))
}

/// Mean cross-entropy at the labelled positions of held-out masked sequences.
fn masked_eval_loss(model: &Arc<Model>, set: &MaskedBatch) -> Result<f32> {
    let mut exec = CpuExecutor::new(Arc::clone(model));
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (ids, labels) in set.inputs.iter().zip(&set.labels) {
        exec.reset();
        let trace = exec.forward(ids, PassOptions::capture(CaptureFilter::kinds([HookKind::Logits])))?;
        let logits = trace.get(HookKey::Logits).and_then(|t| t.as_2d()).ok_or_else(|| EngineError::Input("the evaluation pass recorded no logits".into()))?;
        if labels.iter().all(|&l| l == super::loss::IGNORE_LABEL) {
            continue;
        }
        let scored = super::loss::masked_lm_loss(logits, labels)?.per_position;
        sum += scored.iter().map(|&v| f64::from(v)).sum::<f64>();
        n += scored.len();
    }
    Ok((sum / n.max(1) as f64) as f32)
}

pub enum Event<'a> {
    Step(&'a StepReport),
    Eval(&'a EvalReport),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub losses: Vec<f32>,
    pub evals: Vec<EvalReport>,
    pub checkpoint: Option<PathBuf>,
    /// Wall time of the whole run, evaluations and checkpoints included.
    pub seconds: f64,
    /// Time in optimizer steps only.
    pub train_seconds: f64,
    pub steps_per_second: f64,
}
