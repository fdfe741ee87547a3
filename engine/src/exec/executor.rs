//! The interface both executors (CPU reference, GPU) implement: run the `Step` program over
//! new tokens, stop anywhere, resume, and record a `Trace`; plus generation on top of it.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::load::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::program::hooks::HookKey;
use crate::exec::intervene::{ActivationPrecision, Intervention, Resolved};
use crate::program::op_table::PassDims;
use crate::exec::sampling::SamplingParams;
use crate::program::op::Step;
use crate::exec::tensor::Tensor;
use crate::exec::trace::{CaptureFilter, Trace};

/// GPU time summed over timed compute passes since the last `GpuTimer::take` (what a GPU backend measured).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuTime {
    pub ns: f64,
    pub passes: u64,
    /// Passes that found the query set full (their time is missing from `ns`).
    pub untimed: u64,
}

impl GpuTime {
    pub fn ms(&self) -> f64 {
        self.ns / 1e6
    }
}

/// Options for one forward pass.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    pub capture: CaptureFilter,
    /// How the `Sample` step picks the next token; its temperature also scales `hook_probs`
    /// (greedy shows probabilities at temperature 1).
    pub sampling: SamplingParams,
    /// Edits applied to hooks as they are produced: ablation, patching, steering.
    pub interventions: Vec<Intervention>,
    /// Every activation rounded to this precision right after it is produced.
    pub activations: ActivationPrecision,
    /// Parts of the architecture switched off, to see what they do.
    pub switches: Switches,
}

/// Parts of the model a pass can switch off. Default: everything on (the real model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Switches {
    /// Skip RoPE: `hook_rot_q`/`hook_rot_k` equal `hook_q`/`hook_k`, so attention sees no
    /// positions at all.
    pub no_rope: bool,
    /// Skip the causal mask: every query sees every key of the pass (a BERT-style
    /// bidirectional encoder, the article's §4.2), so a position can read the future.
    pub no_causal_mask: bool,
}

impl PassOptions {
    pub fn capture(capture: CaptureFilter) -> Self {
        Self {
            capture,
            ..Self::default()
        }
    }

    /// The same options with head ablations (`(layer, head)`: that head's `hook_z` zeroed at
    /// every position) added.
    pub fn with_ablated_heads(mut self, heads: &[(usize, usize)]) -> Self {
        self.interventions.extend(heads.iter().map(|&(l, h)| Intervention::zero_heads(l, vec![h])));
        self
    }

    /// Whether a hook must be computed for every row (captured, or edited).
    pub fn touches(&self, key: HookKey) -> bool {
        self.capture.wants(key) || self.interventions.iter().any(|i| i.hook == key)
    }

    /// The interventions laid out for a pass of `dims` at `pos_offset`.
    pub fn resolve(&self, c: &LlamaConfig, dims: PassDims, pos_offset: usize) -> Result<Vec<Resolved>> {
        self.interventions.iter().map(|i| i.resolve(c, dims, pos_offset)).collect()
    }
}

/// Which kind of executor runs a pass (for fallbacks and the status bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Cpu,
    Gpu,
}

/// What one step produced, handed over by move (the executor keeps no copy).
#[derive(Debug, Clone)]
pub struct StepOutput {
    pub step: Step,
    pub tensors: Vec<(HookKey, Arc<Tensor>)>,
    /// The token the `Sample` step chose.
    pub sampled: Option<u32>,
}

impl StepOutput {
    /// Takes `step`'s tensors out of `trace`.
    pub fn take(trace: &mut Trace, step: Step) -> Self {
        let tensors = step.hooks().into_iter().filter_map(|k| trace.remove(k).map(|t| (k, t))).collect();
        let sampled = (step == Step::Sample).then_some(trace.sampled).flatten();
        Self { step, tensors, sampled }
    }
}

/// Receives each step's output during [`Executor::stream_to`]; `Break` stops the run.
pub type Sink<'a> = dyn FnMut(StepOutput) -> ControlFlow<()> + Send + 'a;

pub trait Executor: Send {
    fn config(&self) -> &LlamaConfig;

    /// Human-readable device, e.g. "CPU (f32 reference)" or "Vulkan llvmpipe".
    fn device_name(&self) -> String;

    fn kind(&self) -> BackendKind;

    /// Starts a pass over `ids`, appended after whatever the KV cache holds. An unfinished
    /// earlier pass is dropped and its cache rows removed.
    fn begin(&mut self, ids: &[u32], options: PassOptions) -> Result<()>;

    /// The step `step()` would run next; `None` once the pass is complete.
    fn next_step(&self) -> Option<Step>;

    /// Runs one step; returns it, or `None` if the pass was already complete.
    fn step(&mut self) -> Result<Option<Step>>;

    fn trace(&self) -> &Trace;

    fn take_trace(&mut self) -> Trace;

    /// Tokens held in the KV cache (completed passes, plus the current pass once its last
    /// layer has run).
    fn cache_len(&self) -> usize;

    /// Bytes of keys and values the KV cache holds (a sliding-window layer on the CPU keeps
    /// only the rows a later query can see; the GPU keeps every row of every layer).
    fn kv_cache_bytes(&self) -> usize;

    /// Forgets the KV cache and any pass in progress.
    fn reset(&mut self);

    /// Starts a pass over `ids` at block `layer`, whose residual stream entering it is
    /// `resid_pre` `[pos, d_model]` (e.g. taken from an earlier pass): the blocks before are
    /// skipped, which is what makes a grid of patched passes cheap. The KV cache is emptied
    /// first, and the next `begin` empties it again (the skipped blocks cached nothing).
    fn begin_at(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor) -> Result<()>;

    /// [`Executor::begin_at`] for the rows `first..` of `ids` only: the rows before `first`
    /// give block `layer` its keys and values (computed from their `resid_pre` rows) and
    /// nothing else, so the block's queries `first..` see every earlier position without the
    /// `[head, pos, pos]` scores of all rows. The pass records rows `first..` at
    /// `pos_offset = first`, its attention hooks over keys `0..ids.len()`. Run it to the block's
    /// `mlp_add` (or, at the last block, on to the logits): a later block has no keys for the
    /// rows before `first`, and running one is an error. `first = 0` is `begin_at`.
    fn begin_rows_at(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor, first: usize) -> Result<()>;

    /// Runs until `target` has run (no-op if it already has).
    fn run_to(&mut self, target: Step) -> Result<()>;

    fn run_to_end(&mut self) -> Result<()>;

    /// Runs up to and including `last`, handing each step's tensors to `sink` as it completes.
    /// The tensors are moved out: the executor's trace keeps none of them. An executor may
    /// run up to `batch` steps before handing their outputs over (the GPU does, with one
    /// read-back per batch). `sink` returning `Break` stops the run after the current batch;
    /// the pass can be resumed.
    fn stream_to(&mut self, last: Step, batch: usize, sink: &mut Sink<'_>) -> Result<()>;

    /// Starts (or stops) measuring GPU time with timestamp queries; `false` where this
    /// executor has no GPU or its device lacks them.
    fn set_gpu_timing(&mut self, on: bool) -> bool;

    /// The GPU time measured since the last call (while timing is on).
    fn take_gpu_time(&mut self) -> Option<GpuTime>;

    /// The trace of the pass in progress, for moving tensors out of it.
    fn trace_mut(&mut self) -> &mut Trace;

    /// One complete pass; returns its trace.
    fn forward(&mut self, ids: &[u32], options: PassOptions) -> Result<Trace> {
        self.begin(ids, options)?;
        self.run_to_end()?;
        Ok(self.take_trace())
    }
}

/// The checks every executor's `begin` makes before touching its state: some tokens, each
/// inside the vocabulary, and the sequence inside the model's context.
pub fn check_pass_input(config: &LlamaConfig, ids: &[u32], pos_offset: usize) -> Result<()> {
    if ids.is_empty() {
        return Err(EngineError::Input("no tokens to run".into()));
    }
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= config.vocab_size) {
        return Err(EngineError::Input(format!(
            "token id {bad} is outside the vocabulary (vocab_size = {})",
            config.vocab_size
        )));
    }
    if pos_offset + ids.len() > config.max_position_embeddings {
        return Err(EngineError::Input(format!(
            "{} tokens exceed the model's context of {} positions",
            pos_offset + ids.len(),
            config.max_position_embeddings
        )));
    }
    Ok(())
}

/// What a generation callback may return: nothing (go on), or `ControlFlow::Break` to stop
/// before the next token is computed (say, its reader went away: `glassbox generate | head`).
pub trait TokenFlow {
    fn flow(self) -> ControlFlow<()>;
}

impl TokenFlow for () {
    fn flow(self) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl TokenFlow for ControlFlow<()> {
    fn flow(self) -> ControlFlow<()> {
        self
    }
}

/// Greedy or sampled continuation of `prompt` with the KV cache: the prompt in one pass,
/// then one token per pass. Stops after `max_new_tokens`, at an end-of-sequence id, or when
/// `on_token` (which sees each new id as it is chosen, for progress and streaming) returns
/// `ControlFlow::Break`; the ids chosen so far are returned in every case.
pub fn generate<R: TokenFlow>(
    exec: &mut dyn Executor,
    prompt: &[u32],
    max_new_tokens: usize,
    sampling: SamplingParams,
    eos_ids: &[u32],
    on_token: &mut dyn FnMut(u32) -> R,
) -> Result<Vec<u32>> {
    let options = PassOptions { sampling, ..PassOptions::default() };
    generate_with(exec, prompt, max_new_tokens, &options, eos_ids, on_token)
}

/// [`generate`] with every pass run under `options` (its interventions and activation
/// precision apply at every step; nothing is captured).
pub fn generate_with<R: TokenFlow>(
    exec: &mut dyn Executor,
    prompt: &[u32],
    max_new_tokens: usize,
    options: &PassOptions,
    eos_ids: &[u32],
    on_token: &mut dyn FnMut(u32) -> R,
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(EngineError::Input("the prompt has no tokens".into()));
    }
    exec.reset();
    let mut generated = Vec::new();
    let sampling = options.sampling;
    let mut options = PassOptions { capture: CaptureFilter::Nothing, ..options.clone() };
    let mut input = prompt.to_vec();
    let longrope = exec.config().longrope();
    while generated.len() < max_new_tokens {
        // Each pass draws with its own seed so a seeded run is reproducible step by step.
        options.sampling.seed = sampling.seed.wrapping_add(generated.len() as u64);
        if crate::load::longrope::cache_goes_stale(longrope.as_ref(), exec.cache_len(), input.len()) {
            // Crossing longrope's original context: the whole sequence again, on the long factors.
            exec.reset();
            input = prompt.iter().chain(&generated).copied().collect();
        }
        let trace = exec.forward(&input, options.clone())?;
        let next = trace
            .sampled
            .ok_or_else(|| EngineError::Input("the pass ended without sampling".into()))?;
        generated.push(next);
        let stop = on_token(next).flow().is_break();
        if stop || eos_ids.contains(&next) {
            break;
        }
        input = vec![next];
    }
    Ok(generated)
}

/// The same continuation with no KV cache: every step runs the whole sequence again.
/// Slow; it exists to prove the cache changes nothing.
pub fn generate_uncached(
    exec: &mut dyn Executor,
    prompt: &[u32],
    max_new_tokens: usize,
    eos_ids: &[u32],
) -> Result<Vec<u32>> {
    let mut seq = prompt.to_vec();
    let mut generated = Vec::new();
    for _ in 0..max_new_tokens {
        exec.reset();
        let trace = exec.forward(&seq, PassOptions::capture(CaptureFilter::Nothing))?;
        let next = trace
            .sampled
            .ok_or_else(|| EngineError::Input("the pass ended without sampling".into()))?;
        generated.push(next);
        seq.push(next);
        if eos_ids.contains(&next) {
            break;
        }
    }
    Ok(generated)
}
