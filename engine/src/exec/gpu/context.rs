//! `GpuContext`: one wgpu device and queue, either owned (found here) or borrowed (the app
//! passes eframe's, so the GUI and the model share one device). It turns wgpu's error
//! callbacks into `EngineError::Gpu` values instead of panics, and knows the adapter limits
//! every allocation is checked against.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{EngineError, Result};

/// Longest wait for a hardware GPU (RELIABILITY.md row 24).
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Longest wait for a software rasterizer, which runs every kernel on the CPU.
const SOFTWARE_WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Why a device is not usable any more, as reported by wgpu's callbacks.
type Fault = Arc<Mutex<Option<String>>>;

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Set by the uncaptured-error handler and the device-lost callback (owned devices only;
    /// a borrowed device keeps its owner's handlers, and we rely on error scopes there).
    fault: Fault,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.info.name).finish()
    }
}

impl GpuContext {
    /// Finds the best adapter (high-performance preference) and opens a device on it with the
    /// adapter's own limits, so large weights fit where the hardware allows. `Ok(None)` when no
    /// adapter exists at all; `Err` when one exists but cannot be opened.
    pub fn new() -> Result<Option<Arc<Self>>> {
        Self::with_limits(|adapter| adapter.limits())
    }

    /// [`GpuContext::new`] with the device's limits chosen from the adapter's (never above
    /// them): a device as small as a WebGPU browser's, to test what does not fit.
    pub fn with_limits(limits: impl FnOnce(&wgpu::Adapter) -> wgpu::Limits) -> Result<Option<Arc<Self>>> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let Ok(adapter) = pollster::block_on(instance.request_adapter(&options)) else {
            return Ok(None);
        };
        let limits = limits(&adapter);
        Self::open(&adapter, limits).map(|ctx| Some(Arc::new(ctx)))
    }

    fn open(adapter: &wgpu::Adapter, limits: wgpu::Limits) -> Result<Self> {
        let info = adapter.get_info();
        // SHADER_F16 only where present; without it f16 weights are unpacked from u32 pairs.
        // TIMESTAMP_QUERY where present, for benchmarks that print GPU time apart from read-back.
        let features = adapter.features() & (wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY);
        let desc = wgpu::DeviceDescriptor {
            label: Some("glassbox"),
            required_features: features,
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| EngineError::Gpu(format!("{}: cannot open a device: {e}", info.name)))?;
        let fault: Fault = Arc::default();
        let on_error = Arc::clone(&fault);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = on_error.lock() {
                slot.get_or_insert_with(|| format!("uncaptured GPU error: {e}"));
            }
        }));
        let on_lost = Arc::clone(&fault);
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut slot) = on_lost.lock() {
                // One line: a driver's message may span several.
                let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
                let detail = if msg.is_empty() { String::new() } else { format!(": {msg}") };
                slot.get_or_insert_with(|| {
                    format!("the device was lost ({reason:?}{detail}), a driver reset or an unplugged GPU; retry, or run on the CPU (--device cpu)")
                });
            }
        });
        Ok(Self {
            limits: device.limits(),
            features: device.features(),
            device,
            queue,
            info,
            fault,
        })
    }

    /// Borrows a device someone else opened (eframe's). Its limits and features are whatever
    /// that device was created with; the executor checks every allocation against them.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Arc<Self> {
        Arc::new(Self {
            limits: device.limits(),
            features: device.features(),
            device,
            queue,
            info,
            fault: Arc::default(),
        })
    }

    /// e.g. "Vulkan llvmpipe (LLVM 19.1.7, 256 bits)".
    pub fn name(&self) -> String {
        format!("{:?} {}", self.info.backend, self.info.name)
    }

    pub fn has_shader_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// The largest buffer that one storage binding may cover.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// An error recorded by the callbacks since the device was opened, if any.
    pub fn check_fault(&self) -> Result<()> {
        match self.fault.lock() {
            Ok(slot) => match slot.as_ref() {
                Some(msg) => Err(EngineError::Gpu(msg.clone())),
                None => Ok(()),
            },
            Err(_) => Err(EngineError::Gpu("GPU error state is poisoned".into())),
        }
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes and turns what they
    /// caught into an error naming `what`. Every scope matters on a borrowed device, whose
    /// uncaptured-error handler is its owner's (wgpu's default one panics).
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_fault()?;
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        let internal = pollster::block_on(internal.pop());
        if let Some(e) = validation.or(oom).or(internal) {
            return Err(EngineError::Gpu(format!("{what}: {e}")));
        }
        self.check_fault()?;
        Ok(value)
    }

    /// How long a wait for the GPU may take before the device counts as lost or hung: 10 s
    /// on hardware (a Windows TDR resets a GPU after 2 s); a software rasterizer (lavapipe)
    /// legitimately takes minutes for one submit of a large model.
    pub fn wait_limit(&self) -> Duration {
        if self.info.device_type == wgpu::DeviceType::Cpu { SOFTWARE_WAIT_LIMIT } else { WAIT_LIMIT }
    }

    /// Blocks until the queue is idle, for at most `limit`.
    pub fn wait_for(&self, limit: Duration) -> Result<()> {
        let wait = wgpu::PollType::Wait { submission_index: None, timeout: Some(limit) };
        match self.device.poll(wait) {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(self.hung(limit)),
            Err(e) => Err(EngineError::Gpu(format!("waiting for the GPU: {e}"))),
        }
    }

    /// Blocks until the queue is idle, for at most [`GpuContext::wait_limit`].
    pub fn wait(&self) -> Result<()> {
        self.wait_for(self.wait_limit())
    }

    fn hung(&self, limit: Duration) -> EngineError {
        self.check_fault().err().unwrap_or_else(|| {
            EngineError::Gpu(format!(
                "{} did not finish its work within {} s: the device is lost or hung; retry, or run on the CPU (--device cpu)",
                self.info.name,
                limit.as_secs()
            ))
        })
    }

    /// A storage buffer of `bytes` (at least 16), after checking it against the limits.
    pub fn storage(&self, label: &str, bytes: u64, extra: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let bytes = bytes.max(16).next_multiple_of(16);
        self.check_size(label, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC
                | extra,
            mapped_at_creation: false,
        }))
    }

    /// Fails with a message naming the tensor when `bytes` exceeds one binding.
    pub fn check_size(&self, label: &str, bytes: u64) -> Result<()> {
        let max = self.max_binding_bytes();
        if bytes > max {
            return Err(EngineError::Gpu(format!(
                "`{label}` needs {} but {} allows at most {} per buffer binding \
                 (max_storage_buffer_binding_size / max_buffer_size); use fewer tokens or capture less, or run on the CPU",
                fmt_bytes(bytes),
                self.info.name,
                fmt_bytes(max)
            )));
        }
        Ok(())
    }

    /// Copies `bytes` of `src` (from `offset`) back to the CPU: one submit, one wait.
    pub fn read_back(&self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read back"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(src, offset, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        map_read(self, &staging, bytes, |b| b.to_vec())
    }
}

/// Maps `buffer[..bytes]`, waits, hands the bytes to `read`, and unmaps.
pub(crate) fn map_read<T>(ctx: &GpuContext, buffer: &wgpu::Buffer, bytes: u64, read: impl FnOnce(&[u8]) -> T) -> Result<T> {
    if bytes == 0 {
        return Ok(read(&[]));
    }
    let (sender, mapped) = std::sync::mpsc::channel();
    buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
        let _ = sender.send(r);
    });
    // Another thread polling the same device (eframe's, or parallel tests) may be the one that
    // runs our callback, a moment after our own poll returns: wait for the callback itself,
    // for at most the device's wait limit in all (a lost device never calls it).
    let limit = ctx.wait_limit();
    let deadline = Instant::now() + limit;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ctx.hung(limit));
        }
        ctx.wait_for(left)?;
        ctx.check_fault()?;
        match mapped.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(r) => break Some(r),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
        }
    };
    match outcome {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            ctx.check_fault()?;
            return Err(EngineError::Gpu(format!("mapping a read-back buffer: {e}")));
        }
        None => return Err(EngineError::Gpu("a read-back buffer never mapped".into())),
    }
    let value = {
        let view = buffer
            .get_mapped_range(0..bytes)
            .map_err(|e| EngineError::Gpu(format!("reading a mapped buffer: {e}")))?;
        read(&view)
    };
    buffer.unmap();
    Ok(value)
}

/// "96 B", "24.0 KiB", "130.5 MiB": sizes in messages, readable at any size.
pub fn fmt_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b => format!("{:.2} GiB", b as f64 / 1073741824.0),
    }
}
