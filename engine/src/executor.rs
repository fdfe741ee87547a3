//! The interface both executors (CPU reference, GPU) implement: run the `Step` program over
//! new tokens, stop anywhere, resume, and record a `Trace`; plus generation on top of it.

use crate::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::sampling::SamplingParams;
use crate::step::Step;
use crate::trace::{CaptureFilter, Trace};

/// Options for one forward pass.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    pub capture: CaptureFilter,
    /// How the `Sample` step picks the next token; its temperature also scales `hook_probs`
    /// (greedy shows probabilities at temperature 1).
    pub sampling: SamplingParams,
    /// `(layer, head)` pairs whose attention output `z` is zeroed: a head ablation, so a
    /// class can see what one head contributes.
    pub ablate_heads: Vec<(usize, usize)>,
}

impl PassOptions {
    pub fn capture(capture: CaptureFilter) -> Self {
        Self {
            capture,
            ..Self::default()
        }
    }
}

pub trait Executor {
    fn config(&self) -> &LlamaConfig;

    /// Human-readable device, e.g. "CPU (f32 reference)" or "Vulkan llvmpipe".
    fn device_name(&self) -> String;

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

    /// Forgets the KV cache and any pass in progress.
    fn reset(&mut self);

    /// Runs until `target` has run (no-op if it already has).
    fn run_to(&mut self, target: Step) -> Result<()> {
        let n = self.config().n_layers();
        let target_index = target.index(n);
        if target.layer().is_some_and(|l| l >= n) {
            return Err(EngineError::Input(format!(
                "step `{target}` is past the model's {n} layers"
            )));
        }
        while let Some(next) = self.next_step() {
            if next.index(n) > target_index {
                break;
            }
            self.step()?;
        }
        Ok(())
    }

    fn run_to_end(&mut self) -> Result<()> {
        while self.step()?.is_some() {}
        Ok(())
    }

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

/// Greedy or sampled continuation of `prompt` with the KV cache: the prompt in one pass,
/// then one token per pass. Stops after `max_new_tokens` or at an end-of-sequence id.
/// `on_token` sees each new id as it is chosen (for progress and streaming).
pub fn generate(
    exec: &mut dyn Executor,
    prompt: &[u32],
    max_new_tokens: usize,
    sampling: SamplingParams,
    eos_ids: &[u32],
    on_token: &mut dyn FnMut(u32),
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(EngineError::Input("the prompt has no tokens".into()));
    }
    exec.reset();
    let mut generated = Vec::new();
    let mut options = PassOptions {
        capture: CaptureFilter::Nothing,
        sampling,
        ablate_heads: Vec::new(),
    };
    let mut input = prompt.to_vec();
    while generated.len() < max_new_tokens {
        // Each pass draws with its own seed so a seeded run is reproducible step by step.
        options.sampling.seed = sampling.seed.wrapping_add(generated.len() as u64);
        let trace = exec.forward(&input, options.clone())?;
        let next = trace
            .sampled
            .ok_or_else(|| EngineError::Input("the pass ended without sampling".into()))?;
        generated.push(next);
        on_token(next);
        if eos_ids.contains(&next) {
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
