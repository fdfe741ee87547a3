//! What the GPU tests share: the one device (or a skip, unless `GLASSBOX_REQUIRE_GPU=1`, as in
//! CI), executors on fixtures, seeded random inputs, and comparisons against the CPU reference
//! that name the first diverging hook.

use std::sync::{Arc, OnceLock};

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::gpu::ops::GpuOps;
use glassbox_engine::exec::gpu::{GpuContext, GpuExecutor, GpuOptions, NO_ADAPTER, WeightFormat, wgpu};
use glassbox_engine::exec::sampling::argmax;
use glassbox_engine::exec::trace::Trace;
use glassbox_engine::{HookKey, Model, Precision, Step};
use ndarray::{Array2, Array3};

use crate::fixtures_dir;

/// The shared device, or `None` (with a note) where there is no adapter and none is required.
pub fn ctx() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| {
        let require = std::env::var("GLASSBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
        match GpuContext::new() {
            Ok(Some(c)) => {
                eprintln!("GPU tests run on {} (shader-f16: {})", c.name(), c.has_shader_f16());
                Some(c)
            }
            Ok(None) if require => panic!("GLASSBOX_REQUIRE_GPU=1 but {NO_ADAPTER}"),
            Err(e) if require => panic!("GLASSBOX_REQUIRE_GPU=1 but the adapter failed: {e}"),
            Ok(None) => {
                eprintln!("note: {NO_ADAPTER}; skipping GPU tests (GLASSBOX_REQUIRE_GPU=1 makes this a failure)");
                None
            }
            Err(e) => {
                eprintln!("note: the GPU adapter failed ({e}); skipping GPU tests");
                None
            }
        }
    })
    .clone()
}

/// A device of its own (not the shared one), with limits chosen from the adapter's: for
/// tests that shrink the limits or destroy the device. `None` (a skip) as in [`ctx`].
pub fn own_ctx(limits: impl FnOnce(&wgpu::Adapter) -> wgpu::Limits) -> Option<Arc<GpuContext>> {
    let require = std::env::var("GLASSBOX_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match GpuContext::with_limits(limits) {
        Ok(Some(c)) => Some(c),
        Ok(None) if require => panic!("GLASSBOX_REQUIRE_GPU=1 but {NO_ADAPTER}"),
        Err(e) if require => panic!("GLASSBOX_REQUIRE_GPU=1 but the adapter failed: {e}"),
        Ok(None) | Err(_) => {
            eprintln!("note: no usable GPU adapter; skipping");
            None
        }
    }
}

/// The shared device, or return from the test (a skip) where there is none.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {
        match $crate::gpu::ctx() {
            Some(c) => c,
            None => return,
        }
    };
}

/// f32 kernels, built once for all kernel tests.
pub fn ops_f32(ctx: &Arc<GpuContext>) -> &'static GpuOps {
    static OPS: OnceLock<GpuOps> = OnceLock::new();
    OPS.get_or_init(|| GpuOps::new(Arc::clone(ctx), WeightFormat::F32).expect("f32 kernels"))
}

pub fn load(name: &str) -> Arc<Model> {
    Arc::new(Model::load(&fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

pub fn gpu_exec(ctx: &Arc<GpuContext>, model: &Arc<Model>, options: GpuOptions) -> GpuExecutor {
    GpuExecutor::new(Arc::clone(model), Arc::clone(ctx), options).expect("GPU executor")
}

/// One pass on the CPU reference.
pub fn cpu_pass(model: &Arc<Model>, ids: &[u32], options: PassOptions) -> Trace {
    CpuExecutor::new(Arc::clone(model)).forward(ids, options).expect("CPU pass")
}

/// The fixture's golden input ids.
pub fn input_ids(name: &str) -> Vec<u32> {
    let goldens = crate::read_goldens(&fixtures_dir().join(name).join("golden.safetensors")).expect("goldens");
    goldens["input_ids"].values.iter().map(|&v| v as u32).collect()
}

/// Deterministic values in [-scale, scale) (xorshift; no dependency needed).
pub fn random(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

pub fn random2(shape: (usize, usize), seed: u64, scale: f32) -> Array2<f32> {
    Array2::from_shape_vec(shape, random(shape.0 * shape.1, seed, scale)).expect("shape")
}

pub fn random3(shape: (usize, usize, usize), seed: u64, scale: f32) -> Array3<f32> {
    Array3::from_shape_vec(shape, random(shape.0 * shape.1 * shape.2, seed, scale)).expect("shape")
}

#[derive(Debug, Clone, Copy)]
pub struct Diff {
    pub nmse: f64,
    pub max_abs: f32,
}

/// NMSE and max abs error over finite entries; NaN anywhere, or an infinity where the
/// reference has none (or the other way round), is an error.
pub fn diff(ours: &[f32], reference: &[f32]) -> Result<Diff, String> {
    if ours.len() != reference.len() {
        return Err(format!("{} values vs {} in the reference", ours.len(), reference.len()));
    }
    if let Some(i) = ours.iter().position(|v| v.is_nan()) {
        return Err(format!("NaN at flat index {i}"));
    }
    let mut max_abs = 0.0f32;
    for (i, (&a, &b)) in ours.iter().zip(reference).enumerate() {
        if a.is_finite() != b.is_finite() || (!a.is_finite() && a != b) {
            return Err(format!("flat index {i}: {a} vs {b}"));
        }
        if a.is_finite() {
            max_abs = max_abs.max((a - b).abs());
        }
    }
    Ok(Diff { nmse: crate::nmse(ours, reference), max_abs })
}

/// Panics with the NMSE and max abs error when `ours` is not within `bound` of `reference`
/// (an `EXACT` bound of 0 asks for equality).
#[track_caller]
pub fn check(name: &str, ours: &[f32], reference: &[f32], bound: f64) -> Diff {
    match diff(ours, reference) {
        Ok(d) if d.nmse <= bound && (bound > 0.0 || d.max_abs == 0.0) => {
            eprintln!("{name}: NMSE {:.2e}, max abs {:.2e}", d.nmse, d.max_abs);
            d
        }
        Ok(d) => panic!("{name}: NMSE {:.3e} (max abs {:.3e}) over the bound {bound:e}", d.nmse, d.max_abs),
        Err(e) => panic!("{name}: {e}"),
    }
}

pub fn flat<S: ndarray::Data<Elem = f32>, D: ndarray::Dimension>(a: &ndarray::ArrayBase<S, D>) -> Vec<f32> {
    a.iter().copied().collect()
}

/// Compares every hook of `gpu` with `cpu` in forward order with one NMSE bound; the first one
/// out of bounds is the error (layer, op, NMSE, max abs). Returns the worst NMSE and max abs.
pub fn compare_traces(gpu: &Trace, cpu: &Trace, bound: f64) -> Result<Diff, String> {
    compare_traces_with(gpu, cpu, |_| bound)
}

/// [`compare_traces`] with a bound per hook.
pub fn compare_traces_with(gpu: &Trace, cpu: &Trace, bound: impl Fn(HookKey) -> f64) -> Result<Diff, String> {
    let gpu_keys: Vec<HookKey> = gpu.keys().collect();
    let cpu_keys: Vec<HookKey> = cpu.keys().collect();
    if gpu_keys != cpu_keys {
        return Err(format!("recorded hooks differ: GPU {} vs CPU {}", gpu_keys.len(), cpu_keys.len()));
    }
    let mut worst = Diff { nmse: 0.0, max_abs: 0.0 };
    for key in cpu_keys {
        let (Some(g), Some(c)) = (gpu.get(key), cpu.get(key)) else { continue };
        let at = match Step::producing(key) {
            Step::Layer(l, op) => format!("{key} (layer {l}, op {})", op.name()),
            step => format!("{key} (step {step})"),
        };
        if g.shape() != c.shape() || g.dims != c.dims {
            return Err(format!("{at}: shape {} vs CPU {}", g.dims_string(), c.dims_string()));
        }
        let d = diff(&flat(&g.data), &flat(&c.data)).map_err(|e| format!("{at}: {e}"))?;
        if d.nmse > bound(key) {
            return Err(format!("{at}: NMSE {:.3e} > {:e}, max abs {:.3e}", d.nmse, bound(key), d.max_abs));
        }
        worst.nmse = worst.nmse.max(d.nmse);
        worst.max_abs = worst.max_abs.max(d.max_abs);
    }
    if gpu.sampled != cpu.sampled || gpu.last_step != cpu.last_step || gpu.pos_offset != cpu.pos_offset {
        return Err(format!(
            "trace fields differ: sampled {:?}/{:?}, last_step {:?}/{:?}, pos_offset {}/{}",
            gpu.sampled, cpu.sampled, gpu.last_step, cpu.last_step, gpu.pos_offset, cpu.pos_offset
        ));
    }
    Ok(worst)
}

pub fn logits(t: &Trace) -> Array2<f32> {
    t.get(HookKey::Logits)
        .and_then(|l| l.as_2d())
        .map(|v| v.to_owned())
        .unwrap_or_else(|| panic!("no hook_logits recorded"))
}

/// Max abs logit difference and whether every position's argmax agrees.
pub fn logits_agree(gpu: &Trace, cpu: &Trace) -> (f32, bool) {
    let (g, c) = (logits(gpu), logits(cpu));
    let err = crate::max_abs_diff(&flat(&g), &flat(&c));
    let same = g.outer_iter().zip(c.outer_iter()).all(|(a, b)| argmax(&a.to_vec()) == argmax(&b.to_vec()));
    (err, same)
}

/// Per position: does the f16-weight argmax equal the f32 one? And the mean KL(f32 ‖ f16) of
/// the softmaxed rows.
pub fn f16_agreement(f32_trace: &Trace, f16: &Trace) -> (Vec<bool>, f64) {
    use glassbox_engine::exec::sampling::softmax_with_temperature;
    let (c, h) = (logits(f32_trace), logits(f16));
    let mut agree = Vec::new();
    let mut kl = 0.0;
    for (a, b) in c.outer_iter().zip(h.outer_iter()) {
        let (a, b) = (a.to_vec(), b.to_vec());
        agree.push(argmax(&a) == argmax(&b));
        let (p, q) = (softmax_with_temperature(&a, 1.0), softmax_with_temperature(&b, 1.0));
        kl += p
            .iter()
            .zip(&q)
            .filter(|(p, _)| **p > 0.0)
            .map(|(&p, &q)| f64::from(p) * (f64::from(p) / f64::from(q).max(1e-30)).ln())
            .sum::<f64>();
    }
    (agree, kl / c.nrows() as f64)
}

/// The f16 weight paths the adapter has: packed in u32 always, native shader-f16 where present.
pub fn f16_options(ctx: &GpuContext) -> Vec<GpuOptions> {
    let packed = GpuOptions { precision: Precision::F16, force_packed_f16: true, ..GpuOptions::default() };
    let mut all = vec![packed];
    if ctx.has_shader_f16() {
        all.push(GpuOptions::precision(Precision::F16));
    }
    all
}
