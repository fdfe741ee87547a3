//! One compute kernel per op of the forward pass: each `.wgsl` file beside a small wrapper
//! holding its `#[repr(C)]` params struct (the mirror of the shader's `Params`) and a
//! function that describes one dispatch. Pipelines are built once: in [`Kernels::new`], and
//! the weight-reading ones per weight format, when the first matrix of it is uploaded.
//!
//! Binding convention for every kernel: binding 0 is the params uniform; the wrapper's
//! buffers follow from binding 1 in the order its `dispatch` takes them. Kernels that read
//! weights (embed, matmul, gemv) take them at binding 1 through a weight prelude, so one
//! kernel source serves f32, f16 (native or packed), bf16 and every GGUF block type; those
//! three are built per weight format a model uses.

pub mod add;
pub mod attend;
pub mod bias;
pub mod embed;
pub mod gemv;
pub mod intervene;
pub mod layernorm;
pub mod mask;
pub mod matmul;
pub mod probs;
pub mod qk_norm;
pub mod rmsnorm;
pub mod rope;
pub mod scores;
pub mod silu_mul;
pub mod softmax;

#[cfg(test)]
#[path = "params_layout_tests.rs"]
mod params_layout;

use std::sync::{Arc, Mutex};

use crate::error::{EngineError, Result};
use crate::exec::gpu::context::GpuContext;
use crate::load::gguf::GgmlType;

/// Threads per workgroup of the one-dimensional kernels (must match `@workgroup_size`).
pub const WG: u32 = 256;

/// How a weight matrix is stored on the GPU: f32 or f16 rows padded to a multiple of 4
/// elements, or a GGUF matrix as the file holds it (bf16 values; quantized blocks). Each
/// matrix has its own; the weight-reading kernels are built per format ([`WeightPipelines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    /// f16 read natively (`enable f16`); needs `SHADER_F16`.
    F16Native,
    /// f16 pairs packed in `u32`, unpacked with `unpack2x16float`; works on every adapter.
    F16Packed,
    /// bf16 pairs packed in `u32` (a GGUF's BF16 tensors).
    Bf16,
    /// GGUF blocks as downloaded, dequantized as the kernels read them.
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4K,
    Q5K,
    Q6K,
}

impl WeightFormat {
    /// Every format, for tests that build each kernel with each prelude.
    pub const ALL: [WeightFormat; 12] = [
        WeightFormat::F32,
        WeightFormat::F16Native,
        WeightFormat::F16Packed,
        WeightFormat::Bf16,
        WeightFormat::Q8_0,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q4K,
        WeightFormat::Q5K,
        WeightFormat::Q6K,
    ];

    /// The format that reads `ty`'s blocks as they are (`None`: an element type, F32/F16,
    /// which goes through the f32 or f16 row formats).
    pub fn blocks_of(ty: GgmlType) -> Option<Self> {
        Some(match ty {
            GgmlType::Bf16 => WeightFormat::Bf16,
            GgmlType::Q8_0 => WeightFormat::Q8_0,
            GgmlType::Q4_0 => WeightFormat::Q4_0,
            GgmlType::Q4_1 => WeightFormat::Q4_1,
            GgmlType::Q5_0 => WeightFormat::Q5_0,
            GgmlType::Q5_1 => WeightFormat::Q5_1,
            GgmlType::Q4K => WeightFormat::Q4K,
            GgmlType::Q5K => WeightFormat::Q5K,
            GgmlType::Q6K => WeightFormat::Q6K,
            GgmlType::F32 | GgmlType::F16 | GgmlType::Unsupported(_) => return None,
        })
    }

    /// Bytes per element of the row formats (f32, f16, bf16: rows padded to a multiple of 4
    /// elements); `None` for block formats, whose rows are whole blocks.
    pub fn bytes_per_element(self) -> Option<u64> {
        match self {
            WeightFormat::F32 => Some(4),
            WeightFormat::F16Native | WeightFormat::F16Packed | WeightFormat::Bf16 => Some(2),
            _ => None,
        }
    }

    /// The source of a weight-reading kernel (embed, matmul, gemv): its weight prelude, then
    /// the kernel. One function so the params layout test reflects what the pipeline builds.
    fn with_prelude(self, kernel: &str) -> String {
        let blocks = include_str!("weights_blocks.wgsl");
        let k_scales = include_str!("weights_k_scales.wgsl");
        let parts: &[&str] = match self {
            WeightFormat::F32 => &[include_str!("weights_f32.wgsl")],
            WeightFormat::F16Native => &[include_str!("weights_f16.wgsl")],
            WeightFormat::F16Packed => &[include_str!("weights_packed.wgsl")],
            WeightFormat::Bf16 => &[include_str!("weights_bf16.wgsl")],
            WeightFormat::Q8_0 => &[blocks, include_str!("weights_q8_0.wgsl")],
            WeightFormat::Q4_0 => &[blocks, include_str!("weights_q4_0.wgsl")],
            WeightFormat::Q4_1 => &[blocks, include_str!("weights_q4_1.wgsl")],
            WeightFormat::Q5_0 => &[blocks, include_str!("weights_q5_0.wgsl")],
            WeightFormat::Q5_1 => &[blocks, include_str!("weights_q5_1.wgsl")],
            WeightFormat::Q4K => &[blocks, k_scales, include_str!("weights_q4_k.wgsl")],
            WeightFormat::Q5K => &[blocks, k_scales, include_str!("weights_q5_k.wgsl")],
            WeightFormat::Q6K => &[blocks, include_str!("weights_q6_k.wgsl")],
        };
        format!("{}\n{kernel}", parts.join("\n"))
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16Native => "f16 (shader-f16)",
            WeightFormat::F16Packed => "f16 (packed in u32)",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Q8_0 => "Q8_0",
            WeightFormat::Q4_0 => "Q4_0",
            WeightFormat::Q4_1 => "Q4_1",
            WeightFormat::Q5_0 => "Q5_0",
            WeightFormat::Q5_1 => "Q5_1",
            WeightFormat::Q4K => "Q4_K",
            WeightFormat::Q5K => "Q5_K",
            WeightFormat::Q6K => "Q6_K",
        }
    }
}

/// The three kernels that read weights, built for one weight format.
pub struct WeightKernels {
    pub format: WeightFormat,
    pub embed: Kernel,
    pub matmul: Kernel,
    pub gemv: Kernel,
}

impl WeightKernels {
    fn build(ctx: &GpuContext, format: WeightFormat) -> Result<Self> {
        // One name per kernel whatever the format: bind groups are cached by (name, slot,
        // buffers), and the weight buffer among those buffers fixes the format.
        Ok(Self {
            format,
            embed: Kernel::build(ctx, "embed", &format.with_prelude(embed::SOURCE))?,
            matmul: Kernel::build(ctx, "matmul", &format.with_prelude(matmul::SOURCE))?,
            gemv: Kernel::build(ctx, "gemv", &format.with_prelude(gemv::SOURCE))?,
        })
    }
}

/// The weight kernels of each format a model's matrices use, built the first time a matrix of
/// that format is uploaded and shared by every matrix of it (a Q4_K_M file mixes four).
#[derive(Default)]
pub struct WeightPipelines {
    built: Mutex<Vec<Arc<WeightKernels>>>,
}

impl WeightPipelines {
    pub fn get(&self, ctx: &GpuContext, format: WeightFormat) -> Result<Arc<WeightKernels>> {
        let mut built = self.built.lock().map_err(|_| EngineError::Gpu("the weight pipeline cache is poisoned".into()))?;
        if let Some(k) = built.iter().find(|k| k.format == format) {
            return Ok(Arc::clone(k));
        }
        let k = Arc::new(WeightKernels::build(ctx, format)?);
        built.push(Arc::clone(&k));
        Ok(k)
    }

    /// The formats built so far, in the order first used.
    pub fn formats(&self) -> Vec<WeightFormat> {
        self.built.lock().map(|b| b.iter().map(|k| k.format).collect()).unwrap_or_default()
    }
}

/// A compute pipeline and its bind group layout.
pub struct Kernel {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

impl Kernel {
    fn build(ctx: &GpuContext, name: &'static str, source: &str) -> Result<Self> {
        ctx.scoped(&format!("building kernel `{name}`"), || {
            let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            let layout = pipeline.get_bind_group_layout(0);
            Self { name, pipeline, layout }
        })
    }
}

/// Every pipeline the executor uses: the weight-reading ones per format, as the weights need
/// them; the rest compiled once.
pub struct Kernels {
    /// The format of matrices held as f32 (the precision asked for: f32 or f16).
    pub format: WeightFormat,
    pub weights: WeightPipelines,
    pub rmsnorm: Kernel,
    pub layernorm: Kernel,
    pub qk_norm: Kernel,
    pub bias: Kernel,
    pub rope: Kernel,
    pub scores: Kernel,
    pub mask: Kernel,
    pub softmax: Kernel,
    pub attend: Kernel,
    pub silu_mul: Kernel,
    pub add: Kernel,
    pub probs: Kernel,
    pub intervene: Kernel,
}

impl Kernels {
    pub fn new(ctx: &GpuContext, format: WeightFormat) -> Result<Self> {
        Ok(Self {
            format,
            weights: WeightPipelines::default(),
            rmsnorm: Kernel::build(ctx, "rmsnorm", rmsnorm::SOURCE)?,
            layernorm: Kernel::build(ctx, "layernorm", layernorm::SOURCE)?,
            qk_norm: Kernel::build(ctx, "qk_norm", qk_norm::SOURCE)?,
            bias: Kernel::build(ctx, "bias", bias::SOURCE)?,
            rope: Kernel::build(ctx, "rope", rope::SOURCE)?,
            scores: Kernel::build(ctx, "scores", scores::SOURCE)?,
            mask: Kernel::build(ctx, "mask", mask::SOURCE)?,
            softmax: Kernel::build(ctx, "softmax", softmax::SOURCE)?,
            attend: Kernel::build(ctx, "attend", attend::SOURCE)?,
            silu_mul: Kernel::build(ctx, "silu_mul", silu_mul::SOURCE)?,
            add: Kernel::build(ctx, "add", add::SOURCE)?,
            probs: Kernel::build(ctx, "probs", probs::SOURCE)?,
            intervene: Kernel::build(ctx, "intervene", intervene::SOURCE)?,
        })
    }
}

/// One command of a step: a kernel launch, or a copy between buffers (appending to the KV
/// cache).
pub enum Cmd<'a> {
    Dispatch(Dispatch<'a>),
    Copy { src: &'a wgpu::Buffer, src_offset: u64, dst: &'a wgpu::Buffer, dst_offset: u64, bytes: u64 },
    /// The hook is final here: its read-back copy (if captured) goes in at this point, before
    /// a later hook of the same op reuses its slot (BERT's post-norm add, then norm, both in
    /// the residual stream) or an effect changes it (Gemma's embedding × √d).
    ReadHook(crate::program::hooks::HookKey),
}

/// One kernel launch: what to bind and how many workgroups.
pub struct Dispatch<'a> {
    pub kernel: &'a Kernel,
    /// The params struct's bytes (binding 0).
    pub params: Vec<u8>,
    /// Bindings 1.. in order.
    pub buffers: Vec<&'a wgpu::Buffer>,
    pub grid: [u32; 3],
}

impl<'a> Dispatch<'a> {
    pub fn new<P: bytemuck::Pod>(kernel: &'a Kernel, params: &P, buffers: Vec<&'a wgpu::Buffer>, grid: [u32; 3]) -> Self {
        Self {
            kernel,
            params: bytemuck::bytes_of(params).to_vec(),
            buffers,
            grid,
        }
    }
}

/// Largest workgroup count per grid dimension that every adapter allows (WebGPU minimum).
pub const MAX_GROUPS_PER_DIM: u32 = 65535;

/// `groups` workgroups folded into an x·y grid under the per-dimension limit; shaders
/// recover the linear index as `wg.y * num_workgroups.x + wg.x` and skip the overshoot.
pub fn grid(groups: usize) -> [u32; 3] {
    let groups = groups.max(1) as u64;
    let max = u64::from(MAX_GROUPS_PER_DIM);
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}

/// Grid with one thread per element of `len` elements.
pub fn grid_elements(len: usize) -> [u32; 3] {
    grid(len.div_ceil(WG as usize))
}

/// `value` as u32 for a params field; dims beyond u32 are rejected long before (binding limits).
pub fn u(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_fold_under_the_per_dimension_limit() {
        assert_eq!(grid(0), [1, 1, 1]);
        assert_eq!(grid(65535), [65535, 1, 1]);
        assert_eq!(grid(65536), [65535, 2, 1]);
        // One thread per logit of 2048 rows × 49152: 393216 groups.
        let [x, y, _] = grid_elements(2048 * 49152);
        assert!(x <= MAX_GROUPS_PER_DIM && u64::from(x) * u64::from(y) * 256 >= 2048 * 49152);
    }

    #[test]
    fn rope_table_is_the_cpu_angles() {
        let table = rope::cos_sin_table(crate::load::longrope::Rope::plain(&[1.0, 0.5]), 3, 2); // [2 positions, 2 freqs, (cos, sin)]
        assert_eq!(table.len(), 8);
        assert_eq!((table[0], table[1]), (3f32.cos(), 3f32.sin()));
        assert_eq!((table[6], table[7]), ((4f32 * 0.5).cos(), (4f32 * 0.5).sin()));
    }
}
