//! `GpuExecutor`: runs the `Step` program on the GPU. A run of steps (`run_to`, `run_to_end`)
//! is one group: recorded without waiting (submitted in pieces so the GPU starts early), the
//! tensors the capture filter asks for copied into one read-back buffer as they are produced,
//! that buffer mapped once at the end. `step()` is a group of one. Activations and the KV
//! cache stay on the GPU between steps and passes.

use std::sync::Arc;

use rayon::prelude::*;

use crate::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::executor::{BackendKind, Executor, PassOptions, Sink, StepOutput};
use crate::gpu::GpuOptions;
use crate::gpu::context::{GpuContext, map_read};
use crate::gpu::kernels::{Cmd, Kernels, WeightFormat, intervene, rope};
use crate::gpu::program::{Capture, PassEdit, PassShape, StepEnv, Target};
use crate::gpu::recorder::{BindCache, ParamArena, Params, ReadbackPool, Recorder};
use crate::gpu::state::{Activations, KvCache, Sizes};
use crate::gpu::timer::{GpuTime, GpuTimer};
use crate::gpu::weights::{GpuWeights, upload_f32};
use crate::backend::Precision;
use crate::hooks::HookKey;
use crate::model::Model;
use crate::op_table::PassDims;
use crate::sampling::Sampler;
use crate::step::{LayerOp, Step};
use crate::tensor::Tensor;
use crate::trace::Trace;

/// Most bytes one group reads back by default; a longer run is split into several submits.
const READBACK_BUDGET: u64 = 1 << 30;

struct Pass {
    shape: PassShape,
    options: PassOptions,
    /// The interventions, uploaded.
    edits: Vec<PassEdit>,
    /// Index of the next step in the program.
    next: usize,
    /// A pass begun at a row window has keys for this block only.
    only_layer: Option<usize>,
}

pub struct GpuExecutor {
    ctx: Arc<GpuContext>,
    model: Arc<Model>,
    kernels: Kernels,
    weights: GpuWeights,
    acts: Activations,
    kv: KvCache,
    arena: ParamArena,
    binds: BindCache,
    readback: ReadbackPool,
    program: Vec<Step>,
    /// The block op after which a layer's keys and values join the cache.
    kv_ready: LayerOp,
    /// Params slots per step: the most dispatches one step records (chunked matrices,
    /// rounding, interventions); the arena grows when a pass needs more.
    subs: usize,
    /// Most bytes one submit reads back.
    readback_budget: u64,
    /// A pass begun at a layer cached only the blocks it ran: the next pass starts empty.
    partial_cache: bool,
    pass: Option<Pass>,
    trace: Trace,
    /// Set while a benchmark measures GPU time (`Executor::set_gpu_timing`).
    timer: Option<GpuTimer>,
}

impl GpuExecutor {
    /// Uploads the weights and builds every pipeline on `ctx`'s device.
    pub fn new(model: Arc<Model>, ctx: Arc<GpuContext>, options: GpuOptions) -> Result<Self> {
        let c = &model.config;
        let format = match options.precision {
            Precision::F32 => WeightFormat::F32,
            Precision::F16 if ctx.has_shader_f16() && !options.force_packed_f16 => WeightFormat::F16Native,
            Precision::F16 => WeightFormat::F16Packed,
        };
        if model.inv_freq.len() * 2 != c.d_head() {
            return Err(EngineError::Gpu(format!(
                "RoPE table has {} frequencies for d_head {}",
                model.inv_freq.len(),
                c.d_head()
            )));
        }
        if let Some(local) = &model.inv_freq_local
            && local.len() * 2 != c.d_head()
        {
            return Err(EngineError::Gpu(format!("local RoPE table has {} frequencies for d_head {}", local.len(), c.d_head())));
        }
        let max_chunk = options.max_chunk_bytes.unwrap_or(u64::MAX).min(ctx.max_binding_bytes());
        let kernels = Kernels::new(&ctx, format)?;
        let weights = ctx.scoped("uploading the weights", || GpuWeights::upload(&ctx, &model, format, max_chunk))??;
        let program = crate::step::Program::new(&model.arch);
        let kv_ready = crate::cpu::kv_ready(&program);
        let program = program.steps().to_vec();
        let subs = Self::slots_per_step(&weights, 0);
        let (acts, kv, arena) = ctx.scoped("allocating activations", || -> Result<_> {
            Ok((
                Activations::new(&ctx)?,
                KvCache::new(&ctx, c.n_layers(), c.kv_dim())?,
                ParamArena::new(&ctx, program.len() * subs),
            ))
        })??;
        Ok(Self {
            kernels,
            weights,
            acts,
            kv,
            arena,
            binds: BindCache::default(),
            readback: ReadbackPool::default(),
            program,
            kv_ready,
            subs,
            readback_budget: options.max_readback_bytes.unwrap_or(READBACK_BUDGET).min(ctx.max_binding_bytes()),
            partial_cache: false,
            pass: None,
            trace: Trace::default(),
            timer: None,
            model,
            ctx,
        })
    }

    /// Most dispatches one step records: a chunked matrix and what follows it (bias,
    /// activation, norm: the MLM head), up to three rounded hooks with their norms (a
    /// post-norm add), and the pass's interventions.
    fn slots_per_step(weights: &GpuWeights, edits: usize) -> usize {
        weights.max_chunks().max(1) + 8 + edits
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    pub fn weight_format(&self) -> WeightFormat {
        self.kernels.format
    }

    /// Bytes of weights held on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }

    fn env<'a>(&'a self, pass: &'a Pass) -> StepEnv<'a> {
        StepEnv {
            c: &self.model.config,
            arch: &self.model.arch,
            local_rope: self.model.inv_freq_local.is_some(),
            kv_ready: self.kv_ready,
            k: &self.kernels,
            w: &self.weights,
            a: &self.acts,
            kv: &self.kv,
            pass: pass.shape,
            capture: &pass.options.capture,
            edits: &pass.edits,
            precision: pass.options.activations,
            switches: pass.options.switches,
        }
    }

    /// Runs `steps` (the next ones of the pass, in order) in as few submits as the read-back
    /// budget allows.
    fn run_steps(&mut self, steps: &[Step]) -> Result<()> {
        self.run_batches(steps, usize::MAX, &mut |_, _| Ok(true))
    }

    /// Runs `steps` in groups of at most `batch` steps (and the read-back budget), calling
    /// `after` with each group once its tensors are in the trace. `after` returning `false`
    /// stops before the next group.
    fn run_batches(&mut self, steps: &[Step], batch: usize, after: &mut dyn FnMut(&mut Self, &[Step]) -> Result<bool>) -> Result<()> {
        let budget = self.readback_budget;
        let mut start = 0;
        while start < steps.len() {
            let end = {
                let pass = self.pass.as_ref().ok_or_else(no_pass)?;
                let env = self.env(pass);
                let mut bytes = 0u64;
                let mut end = start;
                while end < steps.len() && end - start < batch.max(1) {
                    let step_bytes: u64 = env.captures(steps[end]).iter().map(|c| c.len as u64 * 4).sum();
                    if end > start && bytes + step_bytes > budget {
                        break;
                    }
                    bytes += step_bytes;
                    end += 1;
                }
                end
            };
            self.run_group(&steps[start..end])?;
            if !after(self, &steps[start..end])? {
                break;
            }
            start = end;
        }
        Ok(())
    }

    /// Records `steps` (submitted in pieces of ~100 dispatches so the GPU starts early), then
    /// maps the read-back buffer once and fills the trace.
    fn run_group(&mut self, steps: &[Step]) -> Result<()> {
        let pass = self.pass.as_ref().ok_or_else(no_pass)?;
        if let Some(only) = pass.only_layer
            && let Some(&bad) = steps.iter().find(|s| s.layer().is_some_and(|l| l != only))
        {
            return Err(EngineError::Input(format!("`{bad}`: this pass began at a row window of block {only} and has no keys for other blocks")));
        }
        let program = &self.program;
        // Not `self.env(pass)`: the arena and bind cache are borrowed mutably below.
        let env = StepEnv {
            c: &self.model.config,
            arch: &self.model.arch,
            local_rope: self.model.inv_freq_local.is_some(),
            kv_ready: self.kv_ready,
            k: &self.kernels,
            w: &self.weights,
            a: &self.acts,
            kv: &self.kv,
            pass: pass.shape,
            capture: &pass.options.capture,
            edits: &pass.edits,
            precision: pass.options.activations,
            switches: pass.options.switches,
        };
        let per_step: Vec<Vec<Capture<'_>>> = steps.iter().map(|&s| env.captures(s)).collect();
        let total: u64 = per_step.iter().flatten().map(|c| c.len as u64 * 4).sum();
        self.ctx.check_size("one group's read-back", total)?;
        let ctx = Arc::clone(&self.ctx);
        let pool = &mut self.readback;
        let readback = ctx.scoped("allocating the read-back buffer", || pool.get(&ctx, total))?;
        let (arena, binds, timer) = (&mut self.arena, &mut self.binds, self.timer.as_mut());
        let subs = self.subs;
        let mut placed: Vec<(Target, u64, usize)> = Vec::new(); // (what, byte offset, len)
        ctx.scoped(&format!("running {}..{}", steps[0], steps[steps.len() - 1]), || {
            let mut rec = Recorder::new(&ctx).timed(timer);
            let mut at = 0u64;
            for (&step, captures) in steps.iter().zip(&per_step) {
                let mut sub = 0;
                // Each capture is copied out where its hook is final; what is left (the
                // sampled row) after the step's last command.
                let mut pending: Vec<&Capture<'_>> = captures.iter().collect();
                let mut read = |rec: &mut Recorder<'_>, which: Option<HookKey>, pending: &mut Vec<&Capture<'_>>| {
                    pending.retain(|c| {
                        let now = match (&c.target, which) {
                            (Target::Hook { key, .. }, Some(k)) => *key == k,
                            (_, which) => which.is_none(),
                        };
                        if now {
                            let bytes = c.len as u64 * 4;
                            rec.copy(c.buffer, c.offset as u64 * 4, &readback, at, bytes);
                            placed.push((c.target.clone(), at, c.len));
                            at += bytes;
                        }
                        !now
                    });
                };
                for cmd in env.commands(step) {
                    match cmd {
                        Cmd::Dispatch(d) => {
                            let slot = (index_in(program, step) * subs + sub) as u32;
                            rec.dispatch(&d, Params::Slot(arena, binds, slot));
                            sub += 1;
                        }
                        Cmd::Copy { src, src_offset, dst, dst_offset, bytes } => rec.copy(src, src_offset, dst, dst_offset, bytes),
                        Cmd::ReadHook(key) => read(&mut rec, Some(key), &mut pending),
                    }
                }
                read(&mut rec, None, &mut pending);
                rec.flush_if_long(arena)?;
            }
            rec.submit(Some(arena)).map(|_| ())
        })??;
        let values = map_read(&ctx, &readback, total, |bytes| {
            placed
                .par_iter()
                .map(|(_, at, len)| bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[*at as usize..*at as usize + len * 4]))
                .collect::<Vec<Vec<f32>>>()
        })?;
        let sampling = pass.options.sampling;
        let rope_rows = pass.shape.dims.k_len;
        for ((target, _, _), values) in placed.into_iter().zip(values) {
            match target {
                Target::Hook { key, dims, shape } => {
                    let tensor = Tensor::from_vec(dims, &shape, values)
                        .ok_or_else(|| EngineError::Gpu(format!("{key}: read back the wrong number of values")))?;
                    self.trace.check_finite(key, tensor.data.view());
                    self.trace.insert(key, tensor);
                }
                Target::SampleRow => {
                    self.trace.check_finite(HookKey::Logits, ndarray::ArrayView1::from(&values).into_dyn());
                    self.trace.sampled = Some(Sampler::new(sampling).sample(&values));
                    self.trace.last_logits = Some(values);
                }
            }
        }
        for &step in steps {
            if let Step::Layer(l, op) = step
                && op == self.kv_ready
            {
                self.kv.len[l] = rope_rows;
            }
        }
        self.trace.last_step = steps.last().copied();
        if let Some(pass) = &mut self.pass {
            pass.next += steps.len();
        }
        Ok(())
    }

    /// Sets up a pass over `ids` at `pos_offset` (which cache rows stay is the caller's
    /// business): buffers, interventions, token ids and the RoPE table.
    fn start_pass(&mut self, ids: &[u32], options: PassOptions, pos_offset: usize) -> Result<()> {
        let n = ids.len();
        let c = &self.model.config;
        crate::executor::check_pass_input(c, ids, pos_offset)?;
        let all_rows = options.touches(HookKey::Logits);
        let dims = PassDims { n, k_len: pos_offset + n, logit_rows: if all_rows { n } else { 1 } };
        let resolved = options.resolve(c, dims, pos_offset)?;
        let sizes = Sizes { n, k_len: dims.k_len, logit_rows: dims.logit_rows, probs: options.touches(HookKey::Probs) };
        let ctx = Arc::clone(&self.ctx);
        let (acts, kv) = (&mut self.acts, &mut self.kv);
        let replaced = ctx.scoped("allocating activations", || -> Result<bool> {
            Ok(acts.ensure(&ctx, c, sizes)? | kv.ensure(&ctx, pos_offset + n)?)
        })??;
        let subs = Self::slots_per_step(&self.weights, resolved.len());
        if subs > self.subs {
            self.arena = ParamArena::new(&ctx, self.program.len() * subs);
            self.subs = subs;
            self.binds.clear();
        }
        if replaced {
            self.binds.clear();
        }
        let edits = ctx.scoped("uploading the interventions", || -> Result<Vec<PassEdit>> {
            resolved
                .into_iter()
                .map(|r| {
                    let flags = intervene::flags(&r);
                    let flag_buf = ctx.storage("intervention flags", (flags.len() * 4) as u64, wgpu::BufferUsages::empty())?;
                    ctx.queue.write_buffer(&flag_buf, 0, bytemuck::cast_slice(&flags));
                    let values = upload_f32(&ctx, "intervention values", r.values.as_deref().unwrap_or(&[0.0]))?;
                    Ok(PassEdit { resolved: r, flags: flag_buf, values })
                })
                .collect()
        })??;
        let cs = rope::cos_sin_table(&self.model.inv_freq, pos_offset, n); // [n, d_head/2, 2]
        let cs_local = self.model.inv_freq_local.as_ref().map(|f| rope::cos_sin_table(f, pos_offset, n)); // [n, d_head/2, 2]
        let positions: Vec<u32> = (pos_offset..pos_offset + n).map(|p| u32::try_from(p).unwrap_or(u32::MAX)).collect(); // [n]
        let types = vec![0u32; n]; // [n]
        let (q, a) = (&self.ctx.queue, &self.acts);
        self.ctx.scoped("uploading the pass inputs", || {
            q.write_buffer(&a.ids.buf, 0, bytemuck::cast_slice(ids));
            q.write_buffer(&a.pos_ids.buf, 0, bytemuck::cast_slice(&positions));
            q.write_buffer(&a.type_ids.buf, 0, bytemuck::cast_slice(&types));
            q.write_buffer(&a.cs.buf, 0, bytemuck::cast_slice(&cs));
            if let Some(local) = &cs_local {
                q.write_buffer(&a.cs_local.buf, 0, bytemuck::cast_slice(local));
            }
        })?;
        self.trace = Trace::new(ids.to_vec(), pos_offset, options.sampling.temperature);
        let shape = PassShape { dims, pos_offset, temperature: options.sampling.temperature };
        self.pass = Some(Pass { shape, options, edits, next: 0, only_layer: None });
        Ok(())
    }

    /// The steps from the next one up to and including `last_index`.
    fn pending(&self, last_index: usize) -> Vec<Step> {
        let next = self.pass.as_ref().map_or(self.program.len(), |p| p.next);
        self.program.iter().copied().skip(next).take((last_index + 1).saturating_sub(next)).collect()
    }
}

/// Where `step` runs in `program` (program order is step order).
fn index_in(program: &[Step], step: Step) -> usize {
    program.binary_search(&step).unwrap_or_else(|i| i.saturating_sub(1))
}

fn no_pass() -> EngineError {
    EngineError::Input("no pass in progress: call begin() first".into())
}

impl Executor for GpuExecutor {
    fn config(&self) -> &LlamaConfig {
        &self.model.config
    }

    fn device_name(&self) -> String {
        format!("{} ({} weights)", self.ctx.name(), self.kernels.format.name())
    }

    fn set_gpu_timing(&mut self, on: bool) -> bool {
        self.timer = if on { GpuTimer::new(&self.ctx) } else { None };
        self.timer.is_some()
    }

    fn take_gpu_time(&mut self) -> Option<GpuTime> {
        self.timer.as_mut().map(GpuTimer::take)
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Gpu
    }

    fn begin(&mut self, ids: &[u32], options: PassOptions) -> Result<()> {
        // An unfinished pass is dropped with its cache rows, as on the CPU.
        if let Some(pass) = self.pass.take()
            && pass.next < self.program.len()
        {
            self.kv.truncate(pass.shape.pos_offset);
        }
        if std::mem::take(&mut self.partial_cache) {
            self.kv.truncate(0);
        }
        let pos_offset = self.cache_len();
        self.start_pass(ids, options, pos_offset)
    }

    fn next_step(&self) -> Option<Step> {
        let pass = self.pass.as_ref()?;
        self.program.get(pass.next).copied()
    }

    fn step(&mut self) -> Result<Option<Step>> {
        let Some(step) = self.next_step() else {
            return Ok(None);
        };
        self.run_steps(&[step])?;
        Ok(Some(step))
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
        self.kv.cached()
    }

    fn kv_cache_bytes(&self) -> usize {
        self.kv.bytes()
    }

    fn reset(&mut self) {
        self.pass = None;
        self.kv.truncate(0);
        self.partial_cache = false;
        self.trace = Trace::default();
    }

    fn begin_at(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor) -> Result<()> {
        let (n_layers, d_model) = (self.model.config.n_layers(), self.model.config.d_model());
        if layer >= n_layers {
            return Err(EngineError::Input(format!("layer {layer} is past the model's {n_layers} layers")));
        }
        let want = [ids.len(), d_model];
        if resid_pre.shape() != want {
            return Err(EngineError::Shape(format!(
                "begin at layer {layer}: the residual stream is {} but the pass needs {want:?}",
                resid_pre.dims_string()
            )));
        }
        let values: Vec<f32> = resid_pre.data.iter().copied().collect(); // [pos, d_model]
        self.reset();
        self.begin(ids, options)?;
        self.partial_cache = true;
        let (q, x) = (&self.ctx.queue, &self.acts.x.buf);
        self.ctx.scoped("uploading the residual stream", || q.write_buffer(x, 0, bytemuck::cast_slice(&values)))?;
        let start = index_in(&self.program, Step::Layer(layer, LayerOp::Ln1));
        if let Some(pass) = &mut self.pass {
            pass.next = start;
        }
        Ok(())
    }

    fn begin_rows_at(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor, first: usize) -> Result<()> {
        if first == 0 {
            return self.begin_at(ids, options, layer, resid_pre);
        }
        let split = crate::recompute::RowsSplit::new(&self.model.config, ids, layer, resid_pre, first, &options)?;
        // ln1 → k, v → rope over the rows before the window: the op before `scores` caches them.
        self.begin_at(&ids[..first], split.before_options, layer, &split.before)?;
        self.run_to(Step::Layer(layer, self.kv_ready))?;
        // Dropped as it is, so its cache rows stay (`begin_at` marked the cache partial).
        self.pass = None;
        let window: Vec<f32> = resid_pre.data.slice(ndarray::s![first.., ..]).iter().copied().collect(); // [window, d_model]
        self.start_pass(&ids[first..], options, first)?;
        let (q, x) = (&self.ctx.queue, &self.acts.x.buf);
        self.ctx.scoped("uploading the residual stream", || q.write_buffer(x, 0, bytemuck::cast_slice(&window)))?;
        if let Some(pass) = &mut self.pass {
            pass.next = index_in(&self.program, Step::Layer(layer, LayerOp::Ln1));
            pass.only_layer = Some(layer);
        }
        Ok(())
    }

    /// One submit for every step up to `target` (the default would submit per step).
    fn run_to(&mut self, target: Step) -> Result<()> {
        let n = self.model.config.n_layers();
        if target.layer().is_some_and(|l| l >= n) {
            return Err(EngineError::Input(format!("step `{target}` is past the model's {n} layers")));
        }
        let steps = self.pending(index_in(&self.program, target));
        self.run_steps(&steps)
    }

    fn run_to_end(&mut self) -> Result<()> {
        let steps = self.pending(self.program.len().saturating_sub(1));
        self.run_steps(&steps)
    }

    /// Groups of up to `batch` steps, each one submit and one read-back; the outputs of a
    /// group go to `sink` step by step once it is read back.
    fn stream_to(&mut self, last: Step, batch: usize, sink: &mut Sink<'_>) -> Result<()> {
        let n = self.model.config.n_layers();
        if last.layer().is_some_and(|l| l >= n) {
            return Err(EngineError::Input(format!("step `{last}` is past the model's {n} layers")));
        }
        let steps = self.pending(index_in(&self.program, last));
        self.run_batches(&steps, batch, &mut |me, group| {
            let mut go_on = true;
            for &step in group {
                let out = StepOutput::take(&mut me.trace, step);
                go_on &= sink(out).is_continue();
            }
            Ok(go_on)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_executor_can_move_to_a_worker_thread() {
        fn send<T: Send>() {}
        send::<super::GpuExecutor>();
    }
}
