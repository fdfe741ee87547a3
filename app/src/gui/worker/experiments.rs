//! Experiments on the model thread (engine `experiments`): two runs compared, activation
//! patching, direct logit attribution, the head catalog.
//!
//! A job runs one unit at a time (one pass, one patched cell) between the thread's other
//! commands: the views keep streaming while a grid runs, Cancel takes effect before the next
//! unit, and the inline worker of the tests advances one unit per poll, so a test can click
//! Cancel half-way. The GUI only arranges what comes back.

use std::sync::Arc;
use std::time::Instant;

use glassbox_engine::experiments::analysis::{Ranked, top_k};
use glassbox_engine::exec::executor::{Executor, PassOptions, Switches};
use glassbox_engine::experiments::attribution::{self, Attribution};
use glassbox_engine::experiments::compare::{self, Comparison};
use glassbox_engine::experiments::head_catalog::{self, HeadScores};
use glassbox_engine::experiments::patching::{PatchHook, PatchRuns, PatchSetup};
use glassbox_engine::experiments::quantize::{WeightQuant, quantized_model};
use glassbox_engine::exec::intervene::Intervention;
use glassbox_engine::{ActivationPrecision, BlockHook, CaptureFilter, HookKey, Model, Trace};

/// Tokens to run: text for the tokenizer (ids typed as numbers for a model without one), or
/// exact ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Tokens {
    Text(String),
    Ids(Vec<u32>),
}

/// How run B differs from run A (besides its prompt). Default: not at all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    pub activations: ActivationPrecision,
    pub weights: WeightQuant,
    pub switches: Switches,
    pub ablate_heads: Vec<(usize, usize)>,
    pub ablate_mlps: Vec<usize>,
}

impl Variant {
    /// The precision ladder: f16 and bf16 activations, int8 and 4-bit weights, each against
    /// the f32 run.
    pub fn ladder() -> Vec<Variant> {
        let act = |a| Variant { activations: a, ..Variant::default() };
        let w = |q| Variant { weights: q, ..Variant::default() };
        vec![act(ActivationPrecision::F16), act(ActivationPrecision::Bf16), w(WeightQuant::Int8), w(WeightQuant::Q4)]
    }

    fn options(&self, n_layers: usize, n_heads: usize) -> Result<PassOptions, String> {
        let mut interventions = Vec::new();
        for &(l, h) in &self.ablate_heads {
            if l >= n_layers || h >= n_heads {
                return Err(format!("head L{l}H{h} is outside this model ({n_layers} layers × {n_heads} heads, counted from 0)"));
            }
            interventions.push(Intervention::zero_heads(l, vec![h]));
        }
        for &l in &self.ablate_mlps {
            if l >= n_layers {
                return Err(format!("MLP of layer {l} is outside this model ({n_layers} layers, counted from 0)"));
            }
            interventions.push(Intervention::zero(HookKey::Block(l, BlockHook::MlpOut)));
        }
        Ok(PassOptions {
            interventions,
            activations: self.activations,
            switches: self.switches,
            ..PassOptions::capture(CaptureFilter::All)
        })
    }
}

/// What the UI asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Run A, then B once per variant (B's prompt is A's unless given).
    Compare { a: Tokens, b: Option<Tokens>, variants: Vec<Variant> },
    /// Patching grids, clean → corrupt, one per hook.
    Patch { clean: Tokens, corrupt: Tokens, answer: String, wrong: String, hooks: Vec<PatchHook> },
    /// The logit of `target` (minus that of `minus`) at the last position, split; no
    /// target: the model's own top-1 token there.
    Attribute { prompt: Tokens, target: Option<String>, minus: Option<String> },
    /// The four head scores on these tokens.
    Heads { input: Tokens },
}

/// Run A and each B with its comparison against A.
pub struct CompareOutput {
    pub a: Trace,
    pub b: Vec<(Variant, Trace, Comparison)>,
}

/// A grid about to fill in.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchBegun {
    pub hook: PatchHook,
    pub clean: Vec<u32>,
    pub corrupt: Vec<u32>,
    pub answer: u32,
    pub wrong: u32,
    pub clean_ld: f32,
    pub corrupt_ld: f32,
    pub rows: usize,
    pub cols: usize,
}

pub struct DlaOutput {
    pub ids: Vec<u32>,
    pub attribution: Attribution,
    /// The model's own next-token top 5 at the last position.
    pub top: Vec<Ranked>,
}

pub struct HeadsOutput {
    pub ids: Vec<u32>,
    pub scores: HeadScores,
}

/// What a job reports, in order; `Done`, `Failed` or `Cancelled` ends it.
pub enum Event {
    Progress { done: usize, total: usize },
    Compared(Box<CompareOutput>),
    PatchBegun(PatchBegun),
    PatchCell { hook: PatchHook, layer: usize, column: usize, score: f32 },
    /// One grid complete: its passes and the seconds from the job's start.
    PatchGridDone { hook: PatchHook, passes: usize, seconds: f64 },
    Attributed(Box<DlaOutput>),
    Heads(Box<HeadsOutput>),
    Done { seconds: f64, device: String },
    Failed(String),
    Cancelled,
}

enum State {
    Compare { a: Vec<u32>, b: Vec<u32>, variants: Vec<Variant>, run_a: Option<Trace>, runs: Vec<(Variant, Trace, Comparison)> },
    Patch { setup: PatchSetup, hooks: Vec<PatchHook>, runs: Option<PatchRuns>, hook: usize, cell: usize, passes: usize },
    Attribute { ids: Vec<u32>, target: Option<u32>, minus: Option<u32> },
    Heads { ids: Vec<u32> },
}

/// The model-side resources a unit of work may use.
pub struct Env<'a> {
    pub model: &'a Arc<Model>,
    pub exec: &'a mut dyn Executor,
    /// Opens an executor on another model (the re-quantized weights of a run B).
    pub open: &'a mut dyn FnMut(Arc<Model>) -> Result<Box<dyn Executor>, String>,
}

/// A job in progress.
pub struct Running {
    pub id: u64,
    started: Instant,
    state: State,
}

/// `text` as ids: the tokenizer's, or numbers typed for a model without one.
pub fn text_ids(model: &Model, text: &str) -> Result<Vec<u32>, String> {
    let ids = match &model.tokenizer {
        Some(tok) => tok.encode(text).map_err(|e| e.to_string())?,
        None => text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_start_matches('#').parse::<u32>().map_err(|_| format!("`{s}` is not a token id (this model has no tokenizer: type ids)")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if ids.is_empty() {
        return Err(format!("`{text}` has no tokens"));
    }
    Ok(ids)
}

fn ids_of(model: &Model, t: &Tokens) -> Result<Vec<u32>, String> {
    match t {
        Tokens::Text(s) => text_ids(model, s),
        Tokens::Ids(ids) if ids.is_empty() => Err("no tokens to run".into()),
        Tokens::Ids(ids) => Ok(ids.clone()),
    }
}

/// One token: `#ID`, a number for a model without a tokenizer, or text that is exactly one
/// token (a leading space matters: " Paris").
pub fn one_token(model: &Model, text: &str) -> Result<u32, String> {
    let vocab = model.config.vocab_size;
    let as_id = text.strip_prefix('#').or(model.tokenizer.is_none().then_some(text.trim()));
    if let Some(id) = as_id {
        let id: u32 = id.trim().parse().map_err(|_| format!("`{text}` is not a token id"))?;
        return if (id as usize) < vocab { Ok(id) } else { Err(format!("token id {id} is outside the vocabulary ({vocab})")) };
    }
    let ids = text_ids(model, text)?;
    match ids.as_slice() {
        [id] => Ok(*id),
        _ => {
            let pieces: Vec<String> = ids.iter().map(|&i| format!("{:?}", model.tokenizer.as_ref().map_or(i.to_string(), |t| t.display(i)))).collect();
            Err(format!("`{text}` is {} tokens ({}), not one: pick one of them (a leading space matters) or give #ID", ids.len(), pieces.join(" ")))
        }
    }
}

fn same_length(a: &[u32], b: &[u32], what: &str) -> Result<(), String> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(format!("{what}: {} tokens against {}; the runs must have the same number of tokens", b.len(), a.len()))
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Running {
    /// Checks and tokenizes the inputs; nothing runs yet.
    pub fn new(id: u64, job: Job, model: &Model) -> Result<Self, String> {
        let state = match job {
            Job::Compare { a, b, variants } => {
                let a = ids_of(model, &a)?;
                let b = match b {
                    Some(b) => ids_of(model, &b)?,
                    None => a.clone(),
                };
                same_length(&a, &b, "B's prompt")?;
                if variants.is_empty() {
                    return Err("nothing to compare: give B at least one difference".into());
                }
                State::Compare { a, b, variants, run_a: None, runs: Vec::new() }
            }
            Job::Patch { clean, corrupt, answer, wrong, hooks } => {
                let setup = PatchSetup {
                    clean: ids_of(model, &clean)?,
                    corrupt: ids_of(model, &corrupt)?,
                    answer: one_token(model, &answer)?,
                    wrong: one_token(model, &wrong)?,
                };
                same_length(&setup.clean, &setup.corrupt, "the corrupt prompt")?;
                if hooks.is_empty() {
                    return Err("pick a hook to patch".into());
                }
                State::Patch { setup, hooks, runs: None, hook: 0, cell: 0, passes: 0 }
            }
            Job::Attribute { prompt, target, minus } => State::Attribute {
                ids: ids_of(model, &prompt)?,
                target: target.as_deref().map(|t| one_token(model, t)).transpose()?,
                minus: minus.as_deref().map(|m| one_token(model, m)).transpose()?,
            },
            Job::Heads { input } => State::Heads { ids: ids_of(model, &input)? },
        };
        Ok(Self { id, started: Instant::now(), state })
    }

    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// One unit of work: its events, and whether the job is complete.
    pub fn advance(&mut self, env: &mut Env<'_>) -> Result<(Vec<Event>, bool), String> {
        let c = &env.model.config;
        let (n_layers, n_heads) = (c.n_layers(), c.n_heads());
        match &mut self.state {
            State::Compare { a, b, variants, run_a, runs } => {
                let total = variants.len() + 1;
                let Some(trace_a) = run_a else {
                    env.exec.reset();
                    *run_a = Some(env.exec.forward(a, PassOptions::capture(CaptureFilter::All)).map_err(err)?);
                    return Ok((vec![Event::Progress { done: 1, total }], false));
                };
                let v = variants[runs.len()].clone();
                let options = v.options(n_layers, n_heads)?;
                let trace_b = if v.weights == WeightQuant::F32 {
                    env.exec.reset();
                    env.exec.forward(b, options).map_err(err)?
                } else {
                    // A copy of the weights rounded through the format; dropped after the run.
                    let model_b = Arc::new(quantized_model(env.model, v.weights).map_err(err)?);
                    let mut exec_b = (env.open)(model_b)?;
                    exec_b.forward(b, options).map_err(err)?
                };
                let cmp = compare::compare(trace_a, &trace_b, 10).map_err(err)?;
                runs.push((v, trace_b, cmp));
                let done = runs.len() + 1;
                let mut events = vec![Event::Progress { done, total }];
                if done < total {
                    return Ok((events, false));
                }
                let a = run_a.take().unwrap_or_default();
                events.push(Event::Compared(Box::new(CompareOutput { a, b: std::mem::take(runs) })));
                Ok((events, true))
            }
            State::Patch { setup, hooks, runs, hook, cell, passes } => {
                let mut events = Vec::new();
                let total: usize = hooks.iter().map(|h| n_layers * h.columns(setup.corrupt.len(), n_heads)).sum();
                let Some(r) = runs else {
                    let made = PatchRuns::new(env.exec, setup).map_err(err)?;
                    if made.clean_ld() == made.corrupt_ld() {
                        return Err(format!(
                            "the clean and corrupt runs have the same logit difference ({}): nothing to restore",
                            made.clean_ld()
                        ));
                    }
                    *passes += 2;
                    *runs = Some(made);
                    return Ok((vec![Event::Progress { done: 0, total }], false));
                };
                let h = hooks[*hook];
                let cols = h.columns(setup.corrupt.len(), n_heads);
                if *cell == 0 {
                    events.push(Event::PatchBegun(PatchBegun {
                        hook: h,
                        clean: setup.clean.clone(),
                        corrupt: setup.corrupt.clone(),
                        answer: setup.answer,
                        wrong: setup.wrong,
                        clean_ld: r.clean_ld(),
                        corrupt_ld: r.corrupt_ld(),
                        rows: n_layers,
                        cols,
                    }));
                }
                let (layer, column) = (*cell / cols, *cell % cols);
                let score = r.score(env.exec, setup, h, layer, column).map_err(err)?;
                *passes += 1;
                events.push(Event::PatchCell { hook: h, layer, column, score });
                *cell += 1;
                let before: usize = hooks[..*hook].iter().map(|x| n_layers * x.columns(setup.corrupt.len(), n_heads)).sum();
                events.push(Event::Progress { done: before + *cell, total });
                if *cell < n_layers * cols {
                    return Ok((events, false));
                }
                events.push(Event::PatchGridDone { hook: h, passes: *passes, seconds: self.started.elapsed().as_secs_f64() });
                *hook += 1;
                *cell = 0;
                Ok((events, *hook == hooks.len()))
            }
            State::Attribute { ids, target, minus } => {
                env.exec.reset();
                let trace = env.exec.forward(ids, PassOptions::capture(attribution::capture())).map_err(err)?;
                let top = trace.last_logits.as_deref().map(|l| top_k(l, 5, 1.0)).unwrap_or_default();
                let target = match (*target, top.first()) {
                    (Some(t), _) => t,
                    (None, Some(best)) => best.id,
                    (None, None) => return Err("the pass produced no logits".into()),
                };
                let attribution = attribution::attribute(env.model, &trace, target, *minus).map_err(err)?;
                Ok((vec![Event::Attributed(Box::new(DlaOutput { ids: ids.clone(), attribution, top }))], true))
            }
            State::Heads { ids } => {
                env.exec.reset();
                let trace = env.exec.forward(ids, PassOptions::capture(head_catalog::capture())).map_err(err)?;
                let scores = head_catalog::head_scores(&trace, n_layers).map_err(err)?;
                Ok((vec![Event::Heads(Box::new(HeadsOutput { ids: ids.clone(), scores }))], true))
            }
        }
    }
}
