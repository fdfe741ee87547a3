//! The GPU executor: the same `Step` program as the CPU reference, one wgpu compute kernel
//! (or a few) per step, recording the same `Trace`.
//!
//! - [`context`]: the device (owned, or borrowed from the app), limits, error handling.
//! - [`kernels`]: one `.wgsl` per op with its params struct; pipelines built once.
//! - [`weights`]: weights uploaded as f32 or f16, split where one binding cannot hold them.
//! - [`executor`]: `GpuExecutor`, stepping, read-back of what the capture filter asks for.
//! - [`ops`]: single kernels on ndarray inputs, for tests against `cpu::ops`.

pub mod context;
pub mod executor;
pub mod kernels;
pub mod ops;
mod program;
mod recorder;
mod state;
pub mod weights;

use std::sync::Arc;

/// The wgpu this engine is built with, for callers that hand in their own device.
pub use wgpu;

pub use context::GpuContext;
pub use executor::GpuExecutor;
pub use kernels::WeightFormat;

use crate::cpu::CpuExecutor;
use crate::error::{EngineError, Result};
use crate::executor::Executor;
use crate::model::Model;

/// How the GPU executor stores weights. Compute is f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuPrecision {
    #[default]
    F32,
    /// Weights stored f16 (half the memory traffic), widened to f32 in the kernels.
    F16,
}

/// Construction options beyond the precision, mostly for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct GpuOptions {
    pub precision: GpuPrecision,
    /// Use packed-u32 f16 even where the adapter has shader-f16 (to test that path).
    pub force_packed_f16: bool,
    /// Cap on one weight buffer below the adapter's binding limit (to test the split).
    pub max_chunk_bytes: Option<u64>,
    /// Cap on the bytes one submit reads back (default 1 GiB, or the binding limit); a run
    /// that captures more is split into several submits.
    pub max_readback_bytes: Option<u64>,
}

impl GpuOptions {
    pub fn precision(precision: GpuPrecision) -> Self {
        Self { precision, ..Self::default() }
    }
}

/// The message when wgpu finds no adapter at all.
pub const NO_ADAPTER: &str = "no GPU adapter found (wgpu saw no Vulkan, Metal, DX12 or GL device; \
     on Linux, `mesa-vulkan-drivers` provides a CPU Vulkan)";

/// A GPU executor on the best adapter, with its own device.
pub fn try_gpu_executor(model: Arc<Model>, precision: GpuPrecision) -> Result<GpuExecutor> {
    let ctx = GpuContext::new()?.ok_or_else(|| EngineError::Gpu(NO_ADAPTER.into()))?;
    GpuExecutor::new(model, ctx, GpuOptions::precision(precision))
}

/// The GPU executor if an adapter works, else the CPU reference plus a one-line notice saying
/// why (for the caller to show).
pub fn gpu_or_cpu(model: Arc<Model>, precision: GpuPrecision) -> (Box<dyn Executor>, Option<String>) {
    let ctx = match GpuContext::new() {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return cpu_with_notice(model, NO_ADAPTER.to_string()),
        Err(e) => return cpu_with_notice(model, e.to_string()),
    };
    // A software rasterizer (llvmpipe/lavapipe, WARP) runs the kernels on the CPU far slower
    // than the CPU reference itself: choose it only when asked for by name (`--device gpu`).
    if ctx.info.device_type == wgpu::DeviceType::Cpu {
        return cpu_with_notice(model, format!("only a software GPU was found ({})", ctx.name()));
    }
    match GpuExecutor::new(Arc::clone(&model), ctx, GpuOptions::precision(precision)) {
        Ok(gpu) => (Box::new(gpu), None),
        Err(e) => cpu_with_notice(model, e.to_string()),
    }
}

fn cpu_with_notice(model: Arc<Model>, why: String) -> (Box<dyn Executor>, Option<String>) {
    let notice = format!("{why}; running on the CPU (f32 reference)");
    (Box::new(CpuExecutor::new(model)), Some(notice))
}
