//! The GPU backend (`GpuExecutor` = the pass driver over it): runs the `Step` program on the
//! GPU. A run of steps (`run_to`, `run_to_end`) is one group: recorded without waiting (submitted in pieces so the GPU starts early), the
//! tensors the capture filter asks for copied into one read-back buffer as they are produced,
//! that buffer mapped once at the end. `step()` is a group of one. Activations and the KV
//! cache stay on the GPU between steps and passes.

use std::sync::Arc;

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::error::{EngineError, Result};
use crate::exec::driver::{Backend, Driver, PassPlan};
use crate::exec::executor::BackendKind;
use crate::exec::gpu::GpuOptions;
use crate::exec::gpu::context::{GpuContext, map_read};
use crate::exec::gpu::kernels::{Cmd, Kernels, WeightFormat, intervene, rope};
use crate::exec::gpu::program::{Capture, PassEdit, StepEnv, Target};
use crate::exec::gpu::recorder::{BindCache, ParamArena, Params, ReadbackPool, Recorder};
use crate::exec::gpu::state::{Activations, KvCache, Sizes};
use crate::exec::executor::GpuTime;
use crate::exec::gpu::timer::GpuTimer;
use crate::exec::gpu::weights::{GpuWeights, upload_f32};
use crate::exec::gpu::Precision;
use crate::program::hooks::HookKey;
use crate::load::longrope::Rope;
use crate::load::model::Model;
use crate::exec::sampling::Sampler;
use crate::program::op::Step;
use crate::exec::tensor::Tensor;
use crate::exec::trace::Trace;

/// Most bytes one group reads back by default; a longer run is split into several submits.
const READBACK_BUDGET: u64 = 1 << 30;

/// The pass in progress, as the GPU holds it.
struct Pass {
    /// The interventions, uploaded (in the plan's order).
    edits: Vec<PassEdit>,
}

/// The GPU executor: the shared pass driver over the GPU backend.
pub type GpuExecutor = Driver<GpuBackend>;

impl GpuExecutor {
    /// Uploads the weights and builds every pipeline on `ctx`'s device.
    pub fn new(model: Arc<Model>, ctx: Arc<GpuContext>, options: GpuOptions) -> Result<Self> {
        Ok(Driver::with_backend(GpuBackend::new(model, ctx, options)?))
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.backend().ctx
    }

    /// The format of matrices held as f32 (the precision's); see [`GpuExecutor::weight_formats`].
    pub fn weight_format(&self) -> WeightFormat {
        self.backend().kernels.format
    }

    /// Every format the matrices are held in (a GGUF's block types, kept as downloaded).
    pub fn weight_formats(&self) -> Vec<WeightFormat> {
        self.backend().weights.formats()
    }

    /// Bytes of weights held on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.backend().weights.bytes()
    }
}

pub struct GpuBackend {
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
    /// Params slots per step: the most dispatches one step records (chunked matrices,
    /// rounding, interventions); the arena grows when a pass needs more.
    subs: usize,
    /// Most bytes one submit reads back.
    readback_budget: u64,
    pass: Option<Pass>,
    /// Set while a benchmark measures GPU time (`Executor::set_gpu_timing`).
    timer: Option<GpuTimer>,
}

impl GpuBackend {
    fn new(model: Arc<Model>, ctx: Arc<GpuContext>, options: GpuOptions) -> Result<Self> {
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
        let weights = ctx.scoped("uploading the weights", || GpuWeights::upload(&ctx, &model, format, max_chunk, &kernels.weights))??;
        let program = crate::program::step::Program::new(&model.arch).steps().to_vec();
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
            subs,
            readback_budget: options.max_readback_bytes.unwrap_or(READBACK_BUDGET).min(ctx.max_binding_bytes()),
            pass: None,
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

    fn env<'a>(&'a self, plan: &'a PassPlan, pass: &'a Pass) -> StepEnv<'a> {
        step_env(&self.model, &self.kernels, &self.weights, &self.acts, &self.kv, plan, pass)
    }

    /// How many of `steps` fit the read-back budget in one group (at least one).
    fn fits(&self, plan: &PassPlan, steps: &[Step]) -> usize {
        let Some(pass) = self.pass.as_ref() else { return 1 };
        let env = self.env(plan, pass);
        let mut bytes = 0u64;
        let mut end = 0;
        while end < steps.len() {
            let step_bytes: u64 = env.captures(steps[end]).iter().map(|c| c.len as u64 * 4).sum();
            if end > 0 && bytes + step_bytes > self.readback_budget {
                break;
            }
            bytes += step_bytes;
            end += 1;
        }
        end.max(1)
    }

    /// Records `steps` (submitted in pieces of ~100 dispatches so the GPU starts early), then
    /// maps the read-back buffer once and fills the trace.
    fn run_group(&mut self, plan: &PassPlan, steps: &[Step], trace: &mut Trace) -> Result<()> {
        let pass = self.pass.as_ref().ok_or_else(no_pass)?;
        let program = &self.program;
        // Field by field, not `self.env(…)`: the arena and bind cache are borrowed mutably below.
        let env = step_env(&self.model, &self.kernels, &self.weights, &self.acts, &self.kv, plan, pass);
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
        let sampling = plan.options.sampling;
        let rope_rows = plan.dims.k_len;
        for ((target, _, _), values) in placed.into_iter().zip(values) {
            match target {
                Target::Hook { key, dims, shape } => {
                    let tensor = Tensor::from_vec(dims, &shape, values)
                        .ok_or_else(|| EngineError::Gpu(format!("{key}: read back the wrong number of values")))?;
                    trace.check_finite(key, tensor.data.view());
                    trace.insert(key, tensor);
                }
                Target::SampleRow => {
                    trace.check_finite(HookKey::Logits, ndarray::ArrayView1::from(&values).into_dyn());
                    trace.sampled = Some(Sampler::new(sampling).sample(&values));
                    trace.last_logits = Some(values);
                }
            }
        }
        for &step in steps {
            if let Step::Layer(l, op) = step
                && op == plan.kv_ready
            {
                self.kv.len[l] = rope_rows;
            }
        }
        Ok(())
    }

    /// Sets up a pass (which cache rows stay is the driver's business): buffers,
    /// interventions, token ids and the RoPE table.
    fn start_pass(&mut self, plan: &PassPlan) -> Result<()> {
        let (ids, options, dims, pos_offset) = (&plan.ids[..], &plan.options, plan.dims, plan.pos_offset);
        let n = ids.len();
        let c = &self.model.config;
        let resolved = plan.edits.clone();
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
        // The pass's end picks longrope's table, as on the CPU.
        let cs = rope::cos_sin_table(self.model.rope_global(pos_offset + n), pos_offset, n); // [n, d_head/2, 2]
        let cs_local = self.model.inv_freq_local.as_ref().map(|f| rope::cos_sin_table(Rope::plain(f), pos_offset, n)); // [n, d_head/2, 2]
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
        self.pass = Some(Pass { edits });
        Ok(())
    }
}

/// What a step reads: the model, the kernels, what lives on the device (weights,
/// activations, KV cache), the plan and the uploaded interventions.
fn step_env<'a>(model: &'a Model, k: &'a Kernels, w: &'a GpuWeights, a: &'a Activations, kv: &'a KvCache, plan: &'a PassPlan, pass: &'a Pass) -> StepEnv<'a> {
    let local_rope = model.inv_freq_local.is_some();
    StepEnv { c: &model.config, arch: &model.arch, local_rope, k, w, a, kv, plan, edits: &pass.edits }
}

/// Where `step` runs in `program` (program order is step order).
fn index_in(program: &[Step], step: Step) -> usize {
    program.binary_search(&step).unwrap_or_else(|i| i.saturating_sub(1))
}

fn no_pass() -> EngineError {
    EngineError::Input("no pass in progress: call begin() first".into())
}

impl Backend for GpuBackend {
    fn model(&self) -> &Arc<Model> {
        &self.model
    }

    fn device_name(&self) -> String {
        let formats: Vec<&str> = self.weights.formats().iter().map(|f| f.name()).collect();
        format!("{} ({} weights)", self.ctx.name(), formats.join(", "))
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Gpu
    }

    fn start(&mut self, plan: &PassPlan) -> Result<()> {
        self.start_pass(plan)
    }

    fn load_resid(&mut self, x: ArrayView2<'_, f32>) -> Result<()> {
        let values: Vec<f32> = x.iter().copied().collect(); // [pos, d_model]
        let (q, buf) = (&self.ctx.queue, &self.acts.x.buf);
        self.ctx.scoped("uploading the residual stream", || q.write_buffer(buf, 0, bytemuck::cast_slice(&values)))
    }

    fn group_len(&self, plan: &PassPlan, steps: &[Step]) -> usize {
        self.fits(plan, steps)
    }

    fn run(&mut self, plan: &PassPlan, steps: &[Step], trace: &mut Trace) -> Result<()> {
        self.run_group(plan, steps, trace)
    }

    fn cache_len(&self) -> usize {
        self.kv.cached()
    }

    fn kv_cache_bytes(&self) -> usize {
        self.kv.bytes()
    }

    fn truncate_cache(&mut self, len: usize) {
        self.kv.truncate(len);
    }

    fn set_gpu_timing(&mut self, on: bool) -> bool {
        self.timer = if on { GpuTimer::new(&self.ctx) } else { None };
        self.timer.is_some()
    }

    fn take_gpu_time(&mut self) -> Option<GpuTime> {
        self.timer.as_mut().map(GpuTimer::take)
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
