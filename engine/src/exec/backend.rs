//! Choosing an executor: the device (the CPU reference, the GPU, or the GPU with a fallback),
//! the weight precision, and the notice shown when a fallback happens. The CLI and the GUI
//! both open their executor here.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::exec::cpu::CpuExecutor;
use crate::error::{EngineError, Result};
use crate::exec::executor::Executor;
pub use crate::exec::gpu::Precision;
use crate::exec::gpu::{GpuContext, GpuExecutor, GpuOptions, NO_ADAPTER};
use crate::load::model::Model;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Device {
    /// The GPU if a hardware adapter works, else the CPU reference with a notice.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl Device {
    pub const ALL: [Device; 3] = [Device::Auto, Device::Cpu, Device::Gpu];

    pub fn name(self) -> &'static str {
        match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
        }
    }
}


impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("`{s}` is not a device (auto, cpu or gpu)"))
    }
}

/// An open executor and, when the request could not be met as asked, why (one line for the
/// user: "only a software GPU was found (…); running on the CPU (f32 reference)").
pub struct Backend {
    pub exec: Box<dyn Executor>,
    pub notice: Option<String>,
}

/// Opens an executor for `model`. `shared` is a GPU device someone else opened (the GUI
/// passes eframe's, so one process has one device); without it a GPU executor opens its own.
pub fn open(model: Arc<Model>, device: Device, precision: Precision, shared: Option<Arc<GpuContext>>) -> Result<Backend> {
    let gpu_ctx = |shared: Option<Arc<GpuContext>>| -> Result<Arc<GpuContext>> {
        match shared {
            Some(ctx) => Ok(ctx),
            None => GpuContext::new()?.ok_or_else(|| EngineError::Gpu(NO_ADAPTER.into())),
        }
    };
    match device {
        Device::Cpu if precision == Precision::F16 => Err(EngineError::Input(
            "f16 weights need the GPU (device gpu or auto); the CPU reference runs in f32".into(),
        )),
        Device::Cpu => Ok(Backend { exec: Box::new(CpuExecutor::new(model)), notice: None }),
        Device::Gpu => {
            let ctx = gpu_ctx(shared)?;
            let exec = GpuExecutor::new(model, ctx, GpuOptions::precision(precision))?;
            Ok(Backend { exec: Box::new(exec), notice: None })
        }
        Device::Auto => {
            let ctx = match gpu_ctx(shared) {
                Ok(ctx) => ctx,
                Err(e) => return Ok(cpu_fallback(model, &e.to_string())),
            };
            // A software rasterizer (llvmpipe/lavapipe, WARP) runs the kernels on the CPU far
            // slower than the CPU reference itself: use it only when asked for by name.
            if ctx.info.device_type == wgpu::DeviceType::Cpu {
                return Ok(cpu_fallback(model, &format!("only a software GPU was found ({})", ctx.name())));
            }
            match GpuExecutor::new(Arc::clone(&model), ctx, GpuOptions::precision(precision)) {
                Ok(gpu) => Ok(Backend { exec: Box::new(gpu), notice: None }),
                Err(e) => Ok(cpu_fallback(model, &e.to_string())),
            }
        }
    }
}

/// The CPU reference, with a notice saying why it replaced the GPU.
pub fn cpu_fallback(model: Arc<Model>, why: &str) -> Backend {
    Backend {
        exec: Box::new(CpuExecutor::new(model)),
        notice: Some(format!("{why}; running on the CPU (f32 reference)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_say_what_is_allowed() {
        for d in Device::ALL {
            assert_eq!(d.to_string().parse::<Device>(), Ok(d));
        }
        assert_eq!("f16".parse::<Precision>(), Ok(Precision::F16));
        assert!("tpu".parse::<Device>().unwrap_err().contains("auto, cpu or gpu"));
    }
}
