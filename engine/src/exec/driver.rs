//! The one pass driver both backends share. It owns what is the same on every device: the
//! op program and the cursor into it, beginning a pass (after a KV cache, at a layer, at a
//! window of rows), running to a step and streaming, the trace, and the order of work at each
//! hook (produce → round → edit → record, then the op's effects). A [`Backend`] implements
//! only its ops: how to produce a hook, round it, edit it, record it, and hold the KV cache.
//!
//! `CpuExecutor` is `Driver<CpuBackend>`, `GpuExecutor` is `Driver<GpuBackend>`.

use std::sync::Arc;

use ndarray::{ArrayView2, s};

use crate::error::{EngineError, Result};
use crate::exec::executor::{BackendKind, Executor, GpuTime, PassOptions, Sink, StepOutput, check_pass_input};
use crate::exec::intervene::{ActivationPrecision, Resolved};
use crate::exec::tensor::Tensor;
use crate::exec::trace::Trace;
use crate::load::arch::Arch;
use crate::load::config::LlamaConfig;
use crate::load::model::Model;
use crate::long::recompute::RowsSplit;
use crate::program::hooks::HookKey;
use crate::program::op::{LayerOp, Step};
use crate::program::op_table::{HookSpec, PassDims};
use crate::program::step::Program;

/// One pass as both backends see it: the new tokens, where they start, the options and the
/// interventions laid out for these dims.
#[derive(Debug, Clone)]
pub struct PassPlan {
    pub ids: Vec<u32>,
    /// The KV cache length before this pass.
    pub pos_offset: usize,
    pub options: PassOptions,
    pub dims: PassDims,
    /// `options.interventions` resolved for this pass.
    pub edits: Vec<Resolved>,
    /// The block op after which a layer's keys and values join the cache ([`kv_ready`]).
    pub kv_ready: LayerOp,
}

impl PassPlan {
    pub fn new(c: &LlamaConfig, ids: &[u32], pos_offset: usize, options: PassOptions, kv_ready: LayerOp) -> Result<Self> {
        check_pass_input(c, ids, pos_offset)?;
        let n = ids.len();
        let logit_rows = if options.touches(HookKey::Logits) { n } else { 1 };
        let dims = PassDims { n, k_len: pos_offset + n, logit_rows };
        let edits = options.resolve(c, dims, pos_offset)?;
        Ok(Self { ids: ids.to_vec(), pos_offset, options, dims, edits, kv_ready })
    }

    /// `hook_probs` (the full-vocabulary softmax) is computed only to be looked at or edited.
    pub fn skips(&self, key: HookKey) -> bool {
        key == HookKey::Probs && !self.options.touches(key)
    }
}

/// The work at one hook of a step, in the order every backend does it.
#[derive(Debug, Clone, Copy)]
pub enum HookWork {
    /// Compute the hook into its slot.
    Produce,
    /// Round it to the pass's activation precision.
    Round(ActivationPrecision),
    /// Apply intervention `i` of the plan (`plan.edits[i]`).
    Edit(usize),
    /// Record it into the trace if the capture filter wants it (`wanted`).
    Record { wanted: bool },
}

/// What an op does besides producing its hooks, after them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// The layer's (possibly edited) keys and values join the KV cache.
    CacheKv(usize),
    /// Gemma scales the token embedding by √d after `hook_embed` records it.
    ScaleEmbed(f32),
    /// Learned positions (and BERT's token types) are added after their hooks.
    AddToResid,
    /// The next token is sampled from the last logits row.
    Sample,
}

/// The hooks of `step` with the work at each, in order.
pub fn hook_work(step: Step, plan: &PassPlan) -> Vec<(HookKey, &'static HookSpec, HookWork)> {
    let layer = step.layer().unwrap_or(0);
    let mut work = Vec::new();
    for spec in step.spec().hooks {
        let key = spec.kind.at(layer);
        if plan.skips(key) {
            continue;
        }
        work.push((key, spec, HookWork::Produce));
        if plan.options.activations != ActivationPrecision::F32 {
            work.push((key, spec, HookWork::Round(plan.options.activations)));
        }
        for (i, _) in plan.edits.iter().enumerate().filter(|(_, e)| e.hook == key) {
            work.push((key, spec, HookWork::Edit(i)));
        }
        work.push((key, spec, HookWork::Record { wanted: plan.options.capture.wants(key) }));
    }
    work
}

/// The op's effects after its hooks.
pub fn effects(step: Step, arch: &Arch, plan: &PassPlan) -> Option<Effect> {
    match step {
        Step::Layer(l, op) if op == plan.kv_ready => Some(Effect::CacheKv(l)),
        Step::Embed => arch.embed_scale.map(Effect::ScaleEmbed),
        Step::PosEmbed | Step::TokenTypeEmbed => Some(Effect::AddToResid),
        Step::Sample => Some(Effect::Sample),
        _ => None,
    }
}

/// The block op after which a layer's keys and values are final: the one before `scores`
/// (`rope`, or `v` where positions are learned).
pub fn kv_ready(program: &Program) -> LayerOp {
    let block = program.block();
    block.iter().position(|&op| op == LayerOp::Scores).and_then(|i| i.checked_sub(1)).map_or(LayerOp::Rope, |i| block[i])
}

/// A device's ops. Everything else a pass does is the driver's.
pub trait Backend: Send {
    fn model(&self) -> &Arc<Model>;
    fn device_name(&self) -> String;
    fn kind(&self) -> BackendKind;
    /// Prepares a pass (buffers, interventions); cache rows before `plan.pos_offset` stay.
    fn start(&mut self, plan: &PassPlan) -> Result<()>;
    /// Sets the residual stream entering a block (a pass begun at a layer): `[pos, d_model]`.
    fn load_resid(&mut self, x: ArrayView2<'_, f32>) -> Result<()>;
    /// How many of `steps` (at least one) go in the next group: one submit and read-back.
    fn group_len(&self, _plan: &PassPlan, steps: &[Step]) -> usize {
        steps.len()
    }
    /// The group size when streaming, given the caller's `batch`.
    fn stream_batch(&self, asked: usize) -> usize {
        asked
    }
    /// Runs `f` (a run of groups) in whatever setting the device wants around it.
    fn pooled<R: Send>(f: impl FnOnce() -> R + Send) -> R
    where
        Self: Sized,
    {
        f()
    }
    /// Runs `steps` (the pass's next ones, in order), each hook through [`hook_work`] and
    /// each op's [`effects`], recording into `trace`.
    fn run(&mut self, plan: &PassPlan, steps: &[Step], trace: &mut Trace) -> Result<()>;
    /// Positions held in the KV cache.
    fn cache_len(&self) -> usize;
    /// Bytes of keys and values the KV cache holds.
    fn kv_cache_bytes(&self) -> usize;
    fn truncate_cache(&mut self, len: usize);
    /// Called as a pass over new tokens begins, before its position is read from the cache:
    /// what the backend may drop for good (a sliding window's unreachable rows).
    fn before_pass(&mut self, _options: &PassOptions) {}
    fn set_gpu_timing(&mut self, _on: bool) -> bool {
        false
    }
    fn take_gpu_time(&mut self) -> Option<GpuTime> {
        None
    }
}

/// The pass in progress.
struct Cursor {
    plan: PassPlan,
    /// Index of the next step in the program.
    next: usize,
    /// A pass begun at a row window has keys for this block only.
    only_layer: Option<usize>,
}

pub struct Driver<B> {
    backend: B,
    program: Program,
    kv_ready: LayerOp,
    pass: Option<Cursor>,
    /// A pass begun at a layer cached only the blocks it ran: the next pass starts empty.
    partial_cache: bool,
    trace: Trace,
}

impl<B: Backend> Driver<B> {
    pub fn with_backend(backend: B) -> Self {
        let program = Program::new(&backend.model().arch);
        Self { kv_ready: kv_ready(&program), program, backend, pass: None, partial_cache: false, trace: Trace::default() }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn model(&self) -> &Arc<Model> {
        self.backend.model()
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Starts a pass over `ids` at `pos_offset` (which cache rows stay is the caller's call).
    fn start(&mut self, ids: &[u32], options: PassOptions, pos_offset: usize) -> Result<()> {
        let plan = PassPlan::new(&self.backend.model().config, ids, pos_offset, options, self.kv_ready)?;
        self.backend.start(&plan)?;
        self.trace = Trace::new(ids.to_vec(), pos_offset, plan.options.sampling.temperature);
        self.pass = Some(Cursor { plan, next: 0, only_layer: None });
        Ok(())
    }

    /// Runs `steps` in groups of at most `batch` (and what the backend takes at once), calling
    /// `after` with each group once its tensors are in the trace; `false` stops there.
    fn run_batches(&mut self, steps: &[Step], batch: usize, after: &mut dyn FnMut(&mut Self, &[Step]) -> bool) -> Result<()> {
        let mut start = 0;
        while start < steps.len() {
            let pass = self.pass.as_ref().ok_or_else(no_pass)?;
            let end = start + self.backend.group_len(&pass.plan, &steps[start..]).clamp(1, batch.max(1));
            let group = &steps[start..end.min(steps.len())];
            if let Some(only) = pass.only_layer
                && let Some(&bad) = group.iter().find(|s| s.layer().is_some_and(|l| l != only))
            {
                return Err(EngineError::Input(format!("`{bad}`: this pass began at a row window of block {only} and has no keys for other blocks")));
            }
            let result = self.backend.run(&pass.plan, group, &mut self.trace);
            self.trace.last_step = group.last().copied();
            result?;
            if let Some(pass) = &mut self.pass {
                pass.next += group.len();
            }
            if !after(self, group) {
                break;
            }
            start += group.len();
        }
        Ok(())
    }

    /// The steps from the next one up to and including `last`.
    fn pending(&self, last: Step) -> Result<Vec<Step>> {
        let n = self.backend.model().config.n_layers();
        if last.layer().is_some_and(|l| l >= n) {
            return Err(EngineError::Input(format!("step `{last}` is past the model's {n} layers")));
        }
        let next = self.pass.as_ref().map_or(self.program.len(), |p| p.next);
        Ok(self.program.steps().iter().copied().skip(next).take_while(|s| *s <= last).collect())
    }
}

fn no_pass() -> EngineError {
    EngineError::Input("no pass in progress: call begin() first".into())
}

impl<B: Backend> Executor for Driver<B> {
    fn config(&self) -> &LlamaConfig {
        &self.backend.model().config
    }

    fn device_name(&self) -> String {
        self.backend.device_name()
    }

    fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    fn begin(&mut self, ids: &[u32], options: PassOptions) -> Result<()> {
        // An unfinished pass is dropped with its cache rows.
        if let Some(pass) = self.pass.take()
            && pass.next < self.program.len()
        {
            self.backend.truncate_cache(pass.plan.pos_offset);
        }
        if std::mem::take(&mut self.partial_cache) {
            self.backend.truncate_cache(0);
        }
        self.backend.before_pass(&options);
        let pos_offset = self.backend.cache_len();
        self.start(ids, options, pos_offset)
    }

    fn next_step(&self) -> Option<Step> {
        self.program.get(self.pass.as_ref()?.next)
    }

    fn step(&mut self) -> Result<Option<Step>> {
        let Some(step) = self.next_step() else {
            return Ok(None);
        };
        self.run_batches(&[step], 1, &mut |_, _| true)?;
        Ok(Some(step))
    }

    /// One group (one submit on the GPU) for every step up to `target`.
    fn run_to(&mut self, target: Step) -> Result<()> {
        let steps = self.pending(target)?;
        B::pooled(|| self.run_batches(&steps, usize::MAX, &mut |_, _| true))
    }

    fn run_to_end(&mut self) -> Result<()> {
        let steps = self.pending(Step::Sample)?;
        B::pooled(|| self.run_batches(&steps, usize::MAX, &mut |_, _| true))
    }

    /// Groups of up to `batch` steps; a group's outputs go to `sink` step by step once it is
    /// read back.
    fn stream_to(&mut self, last: Step, batch: usize, sink: &mut Sink<'_>) -> Result<()> {
        let steps = self.pending(last)?;
        let batch = self.backend.stream_batch(batch);
        B::pooled(|| {
            self.run_batches(&steps, batch, &mut |me, group| {
                let mut go_on = true;
                for &step in group {
                    go_on &= sink(StepOutput::take(&mut me.trace, step)).is_continue();
                }
                go_on
            })
        })
    }

    fn trace(&self) -> &Trace {
        &self.trace
    }

    fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    fn take_trace(&mut self) -> Trace {
        std::mem::take(&mut self.trace)
    }

    fn cache_len(&self) -> usize {
        self.backend.cache_len()
    }

    fn kv_cache_bytes(&self) -> usize {
        self.backend.kv_cache_bytes()
    }

    fn reset(&mut self) {
        self.pass = None;
        self.backend.truncate_cache(0);
        self.partial_cache = false;
        self.trace = Trace::default();
    }

    fn begin_at(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor) -> Result<()> {
        let (n_layers, d_model) = (self.config().n_layers(), self.config().d_model());
        if layer >= n_layers {
            return Err(EngineError::Input(format!("layer {layer} is past the model's {n_layers} layers")));
        }
        let x = resid_pre.as_2d().filter(|x| x.dim() == (ids.len(), d_model)).ok_or_else(|| {
            EngineError::Shape(format!(
                "begin at layer {layer}: the residual stream is {} but the pass needs {:?}",
                resid_pre.dims_string(),
                [ids.len(), d_model]
            ))
        })?;
        self.reset();
        self.begin(ids, options)?;
        self.partial_cache = true;
        self.backend.load_resid(x)?;
        let start = self.program.index_or_next(self.program.layer_start(layer));
        if let Some(pass) = &mut self.pass {
            pass.next = start;
        }
        Ok(())
    }

    /// One block's keys and values for the rows before a window, then a pass over the
    /// window's rows alone (the rows before it are in the layer's cache, as if an earlier
    /// pass had left them there).
    fn begin_rows_at(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor, first: usize) -> Result<()> {
        if first == 0 {
            return self.begin_at(ids, options, layer, resid_pre);
        }
        let split = RowsSplit::new(self.config(), ids, layer, resid_pre, first, &options)?;
        self.begin_at(&ids[..first], split.before_options, layer, &split.before)?;
        self.run_to(Step::Layer(layer, self.kv_ready))?;
        // Dropped as it is, so its cache rows stay (`begin_at` marked the cache partial).
        self.pass = None;
        self.start(&ids[first..], options, first)?;
        let x = resid_pre.as_2d().ok_or_else(|| RowsSplit::shape_error(resid_pre))?;
        self.backend.load_resid(x.slice(s![first.., ..]))?; // [window, d_model]
        let start = self.program.index_or_next(self.program.layer_start(layer));
        if let Some(pass) = &mut self.pass {
            pass.next = start;
            pass.only_layer = Some(layer);
        }
        Ok(())
    }

    fn set_gpu_timing(&mut self, on: bool) -> bool {
        self.backend.set_gpu_timing(on)
    }

    fn take_gpu_time(&mut self) -> Option<GpuTime> {
        self.backend.take_gpu_time()
    }
}
