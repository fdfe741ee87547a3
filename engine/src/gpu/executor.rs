//! `GpuExecutor`: runs the `Step` program on the GPU. A run of steps (`run_to`, `run_to_end`)
//! is one group: recorded without waiting (submitted in pieces so the GPU starts early), the
//! tensors the capture filter asks for copied into one read-back buffer as they are produced,
//! that buffer mapped once at the end. `step()` is a group of one. Activations and the KV
//! cache stay on the GPU between steps and passes.

use std::sync::Arc;

use rayon::prelude::*;

use crate::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::executor::{Executor, PassOptions};
use crate::gpu::context::{GpuContext, map_read};
use crate::gpu::kernels::{Kernels, WeightFormat, rope};
use crate::gpu::program::{Capture, PassShape, StepEnv, Target};
use crate::gpu::recorder::{BindCache, ParamArena, Params, ReadbackPool, Recorder};
use crate::gpu::state::{Activations, KvCache, Sizes};
use crate::gpu::weights::GpuWeights;
use crate::gpu::{GpuOptions, GpuPrecision};
use crate::hooks::HookKey;
use crate::model::Model;
use crate::sampling::Sampler;
use crate::step::{LayerOp, Step};
use crate::tensor::Tensor;
use crate::trace::Trace;

/// Most bytes one group reads back by default; a longer run is split into several submits.
const READBACK_BUDGET: u64 = 1 << 30;

struct Pass {
    shape: PassShape,
    options: PassOptions,
    /// Index of the next step in the program.
    next: usize,
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
    /// Params slots per step: the most dispatches one step records (chunked matrices).
    subs: usize,
    /// Most bytes one submit reads back.
    readback_budget: u64,
    pass: Option<Pass>,
    trace: Trace,
}

impl GpuExecutor {
    /// Uploads the weights and builds every pipeline on `ctx`'s device.
    pub fn new(model: Arc<Model>, ctx: Arc<GpuContext>, options: GpuOptions) -> Result<Self> {
        let c = &model.config;
        let format = match options.precision {
            GpuPrecision::F32 => WeightFormat::F32,
            GpuPrecision::F16 if ctx.has_shader_f16() && !options.force_packed_f16 => WeightFormat::F16Native,
            GpuPrecision::F16 => WeightFormat::F16Packed,
        };
        if model.inv_freq.len() * 2 != c.d_head() {
            return Err(EngineError::Gpu(format!(
                "RoPE table has {} frequencies for d_head {}",
                model.inv_freq.len(),
                c.d_head()
            )));
        }
        let max_chunk = options.max_chunk_bytes.unwrap_or(u64::MAX).min(ctx.max_binding_bytes());
        let kernels = Kernels::new(&ctx, format)?;
        let weights = ctx.scoped("uploading the weights", || GpuWeights::upload(&ctx, &model, format, max_chunk))??;
        let program = Step::program(c.n_layers());
        let subs = weights.max_chunks().max(1);
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
            trace: Trace::default(),
            model,
            ctx,
        })
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
            k: &self.kernels,
            w: &self.weights,
            a: &self.acts,
            kv: &self.kv,
            pass: pass.shape,
            capture: &pass.options.capture,
        }
    }

    /// Runs `steps` (the next ones of the pass, in order) in as few submits as the read-back
    /// budget allows.
    fn run_steps(&mut self, steps: &[Step]) -> Result<()> {
        let budget = self.readback_budget;
        let mut start = 0;
        while start < steps.len() {
            let end = {
                let pass = self.pass.as_ref().ok_or_else(no_pass)?;
                let env = self.env(pass);
                let mut bytes = 0u64;
                let mut end = start;
                while end < steps.len() {
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
            start = end;
        }
        Ok(())
    }

    /// Records `steps` (submitted in pieces of ~100 dispatches so the GPU starts early), then
    /// maps the read-back buffer once and fills the trace.
    fn run_group(&mut self, steps: &[Step]) -> Result<()> {
        let pass = self.pass.as_ref().ok_or_else(no_pass)?;
        let n_layers = self.model.config.n_layers();
        // Not `self.env(pass)`: the arena and bind cache are borrowed mutably below.
        let env = StepEnv {
            c: &self.model.config,
            k: &self.kernels,
            w: &self.weights,
            a: &self.acts,
            kv: &self.kv,
            pass: pass.shape,
            capture: &pass.options.capture,
        };
        let per_step: Vec<Vec<Capture<'_>>> = steps.iter().map(|&s| env.captures(s)).collect();
        let total: u64 = per_step.iter().flatten().map(|c| c.len as u64 * 4).sum();
        self.ctx.check_size("one group's read-back", total)?;
        let ctx = Arc::clone(&self.ctx);
        let pool = &mut self.readback;
        let readback = ctx.scoped("allocating the read-back buffer", || pool.get(&ctx, total))?;
        let (arena, binds) = (&mut self.arena, &mut self.binds);
        let subs = self.subs;
        let mut placed: Vec<(Target, u64, usize)> = Vec::new(); // (what, byte offset, len)
        ctx.scoped(&format!("running {}..{}", steps[0], steps[steps.len() - 1]), || {
            let mut rec = Recorder::new(&ctx);
            let mut at = 0u64;
            for (&step, captures) in steps.iter().zip(&per_step) {
                for (sub, d) in env.dispatches(step).iter().enumerate() {
                    let slot = (step.index(n_layers) * subs + sub) as u32;
                    rec.dispatch(d, Params::Slot(arena, binds, slot));
                }
                for c in captures {
                    let bytes = c.len as u64 * 4;
                    rec.copy(c.buffer, c.offset as u64 * 4, &readback, at, bytes);
                    placed.push((c.target.clone(), at, c.len));
                    at += bytes;
                }
                rec.flush_if_long(arena);
            }
            rec.submit(Some(arena));
        })?;
        let values = map_read(&ctx, &readback, total, |bytes| {
            placed
                .par_iter()
                .map(|(_, at, len)| bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[*at as usize..*at as usize + len * 4]))
                .collect::<Vec<Vec<f32>>>()
        })?;
        let sampling = pass.options.sampling;
        let rope_rows = pass.shape.pos_offset + pass.shape.n;
        for ((target, _, _), values) in placed.into_iter().zip(values) {
            match target {
                Target::Hook { key, dims, shape } => {
                    let tensor = Tensor::from_vec(dims, &shape, values)
                        .ok_or_else(|| EngineError::Gpu(format!("{key}: read back the wrong number of values")))?;
                    self.trace.insert(key, tensor);
                }
                Target::SampleRow => self.trace.sampled = Some(Sampler::new(sampling).sample(&values)),
            }
        }
        for &step in steps {
            if let Step::Layer(l, LayerOp::Rope) = step {
                self.kv.len[l] = rope_rows;
            }
        }
        self.trace.last_step = steps.last().copied();
        if let Some(pass) = &mut self.pass {
            pass.next += steps.len();
        }
        Ok(())
    }

    /// The steps from the next one up to and including `last_index`.
    fn pending(&self, last_index: usize) -> Vec<Step> {
        let next = self.pass.as_ref().map_or(self.program.len(), |p| p.next);
        self.program.iter().copied().skip(next).take((last_index + 1).saturating_sub(next)).collect()
    }
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

    fn begin(&mut self, ids: &[u32], options: PassOptions) -> Result<()> {
        // An unfinished pass is dropped with its cache rows, as on the CPU.
        if let Some(pass) = self.pass.take()
            && pass.next < self.program.len()
        {
            self.kv.truncate(pass.shape.pos_offset);
        }
        let pos_offset = self.cache_len();
        let n = ids.len();
        let c = &self.model.config;
        crate::executor::check_pass_input(c, ids, pos_offset)?;
        let capture = &options.capture;
        let all_rows = capture.wants(HookKey::Logits) || capture.wants(HookKey::Probs);
        let sizes = Sizes {
            n,
            k_len: pos_offset + n,
            logit_rows: if all_rows { n } else { 1 },
            probs: capture.wants(HookKey::Probs),
        };
        let ctx = Arc::clone(&self.ctx);
        let (acts, kv) = (&mut self.acts, &mut self.kv);
        let replaced = ctx.scoped("allocating activations", || -> Result<bool> {
            Ok(acts.ensure(&ctx, c, sizes)? | kv.ensure(&ctx, pos_offset + n)?)
        })??;
        if replaced {
            self.binds.clear();
        }
        let mut ablate = vec![0u32; c.n_layers() * c.n_heads()]; // [n_layers, n_heads]
        for &(l, h) in &options.ablate_heads {
            if l < c.n_layers() && h < c.n_heads() {
                ablate[l * c.n_heads() + h] = 1;
            }
        }
        let cs = rope::cos_sin_table(&self.model.inv_freq, pos_offset, n); // [n, d_head/2, 2]
        let (q, a) = (&self.ctx.queue, &self.acts);
        self.ctx.scoped("uploading the pass inputs", || {
            q.write_buffer(&a.ids.buf, 0, bytemuck::cast_slice(ids));
            q.write_buffer(&a.cs.buf, 0, bytemuck::cast_slice(&cs));
            q.write_buffer(&a.ablate.buf, 0, bytemuck::cast_slice(&ablate));
        })?;
        self.trace = Trace::new(ids.to_vec(), pos_offset, options.sampling.temperature);
        let shape = PassShape {
            n,
            pos_offset,
            logit_rows: sizes.logit_rows,
            temperature: options.sampling.temperature,
        };
        self.pass = Some(Pass { shape, options, next: 0 });
        Ok(())
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

    fn take_trace(&mut self) -> Trace {
        std::mem::take(&mut self.trace)
    }

    fn cache_len(&self) -> usize {
        self.kv.cached()
    }

    fn reset(&mut self) {
        self.pass = None;
        self.kv.truncate(0);
        self.trace = Trace::default();
    }

    /// One submit for every step up to `target` (the default would submit per step).
    fn run_to(&mut self, target: Step) -> Result<()> {
        let n = self.model.config.n_layers();
        if target.layer().is_some_and(|l| l >= n) {
            return Err(EngineError::Input(format!("step `{target}` is past the model's {n} layers")));
        }
        let steps = self.pending(target.index(n));
        self.run_steps(&steps)
    }

    fn run_to_end(&mut self) -> Result<()> {
        let steps = self.pending(self.program.len().saturating_sub(1));
        self.run_steps(&steps)
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
