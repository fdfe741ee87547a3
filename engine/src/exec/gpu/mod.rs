//! The GPU executor: the same `Step` program as the CPU reference, one wgpu compute kernel
//! (or a few) per step, recording the same `Trace`.
//!
//! - [`context`]: the device (owned, or borrowed from the app), limits, error handling.
//! - [`kernels`]: one `.wgsl` per op with its params struct; pipelines built once.
//! - [`weights`], [`matrix`]: weights uploaded as f32 or f16, or a GGUF's blocks as they are
//!   (each matrix in its own format), split where one binding cannot hold them.
//! - [`executor`]: `GpuExecutor`, stepping, read-back of what the capture filter asks for.
//! - [`ops`]: single kernels on ndarray inputs, for tests against `cpu::ops`.

pub mod context;
pub mod executor;
pub mod kernels;
pub mod matrix;
pub mod ops;
mod program;
mod recorder;
mod state;
pub mod timer;
pub mod weights;

/// The wgpu this engine is built with, for callers that hand in their own device.
pub use wgpu;

pub use context::GpuContext;
pub use executor::GpuExecutor;
pub use kernels::WeightFormat;


/// Construction options beyond the precision, mostly for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct GpuOptions {
    pub precision: Precision,
    /// Use packed-u32 f16 even where the adapter has shader-f16 (to test that path).
    pub force_packed_f16: bool,
    /// Cap on one weight buffer below the adapter's binding limit (to test the split).
    pub max_chunk_bytes: Option<u64>,
    /// Cap on the bytes one submit reads back (default 1 GiB, or the binding limit); a run
    /// that captures more is split into several submits.
    pub max_readback_bytes: Option<u64>,
}

impl GpuOptions {
    pub fn precision(precision: Precision) -> Self {
        Self { precision, ..Self::default() }
    }
}

/// The message when wgpu finds no adapter at all.
pub const NO_ADAPTER: &str = "no GPU adapter found (wgpu saw no Vulkan, Metal, DX12 or GL device; \
     on Linux, `mesa-vulkan-drivers` provides a CPU Vulkan)";

/// How weights are held. The CPU reference computes in f32; f16 weights need the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    #[default]
    F32,
    /// Weights stored f16 (half the memory traffic), widened to f32 in the kernels.
    F16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            _ => Err(format!("`{s}` is not a weight precision (f32 or f16)")),
        }
    }
}
