//! Recording a group of dispatches into one command encoder: params go into a uniform arena
//! written once per submit, bind groups are cached across passes, copies for read-back are
//! interleaved where the data is still live, and the whole group is one submit.

use std::collections::HashMap;

use crate::error::Result;
use crate::exec::gpu::context::GpuContext;
use crate::exec::gpu::kernels::Dispatch;
use crate::exec::gpu::timer::GpuTimer;

/// Bytes between params slots: the largest `min_uniform_buffer_offset_alignment` allowed.
pub const SLOT_BYTES: u64 = 256;

/// One uniform buffer holding a params slot per (step, sub-dispatch), so a cached bind group
/// keeps pointing at the right params while the values change from pass to pass.
pub struct ParamArena {
    buffer: wgpu::Buffer,
    shadow: Vec<u8>,
    dirty: Option<(usize, usize)>,
}

impl ParamArena {
    pub fn new(ctx: &GpuContext, slots: usize) -> Self {
        let bytes = (slots.max(1) as u64) * SLOT_BYTES;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params arena"),
            size: bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self { buffer, shadow: vec![0; bytes as usize], dirty: None }
    }

    /// Stores `params` in `slot`; returns the slot's byte offset.
    fn set(&mut self, slot: u32, params: &[u8]) -> u64 {
        let start = slot as usize * SLOT_BYTES as usize;
        let end = start + params.len();
        self.shadow[start..end].copy_from_slice(params);
        self.dirty = Some(match self.dirty {
            Some((a, b)) => (a.min(start), b.max(end)),
            None => (start, end),
        });
        start as u64
    }

    fn flush(&mut self, queue: &wgpu::Queue) {
        if let Some((a, b)) = self.dirty.take() {
            // write_buffer needs a length that is a multiple of 4; params are whole u32s.
            let b = b.next_multiple_of(4).min(self.shadow.len());
            queue.write_buffer(&self.buffer, a as u64, &self.shadow[a..b]);
        }
    }
}

type BindKey = (&'static str, u32, Vec<wgpu::Buffer>);

/// Bind groups by (kernel, params slot, buffers). Creating ~500 bind groups per decoded token
/// would cost more CPU time than the GPU spends on the token.
#[derive(Default)]
pub struct BindCache {
    map: HashMap<BindKey, wgpu::BindGroup>,
}

impl BindCache {
    /// Cap on entries: reallocated buffers leave stale keys behind; dropping them all now and
    /// then is simpler than tracking which are stale.
    const MAX: usize = 16_384;

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// Where a dispatch's params live: a slot in the arena (cached bind group), or a one-off
/// uniform buffer (tests and other single dispatches).
pub enum Params<'r> {
    Slot(&'r mut ParamArena, &'r mut BindCache, u32),
    OneOff,
}

pub struct Recorder<'c> {
    ctx: &'c GpuContext,
    encoder: wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    /// Dispatches recorded since the last submit.
    pending: usize,
    /// Timestamps around every compute pass, when a benchmark asks for GPU time.
    timer: Option<&'c mut GpuTimer>,
}

/// A long group is submitted in pieces of about this many dispatches, so the GPU starts on the
/// first layers while the CPU is still recording the last ones.
const DISPATCHES_PER_SUBMIT: usize = 96;

impl<'c> Recorder<'c> {
    pub fn new(ctx: &'c GpuContext) -> Self {
        Self { ctx, encoder: encoder(ctx), pass: None, pending: 0, timer: None }
    }

    /// Times every compute pass with `timer` (each submit then waits for the GPU).
    pub fn timed(mut self, timer: Option<&'c mut GpuTimer>) -> Self {
        self.timer = timer;
        self
    }

    pub fn dispatch(&mut self, d: &Dispatch<'_>, params: Params<'_>) {
        let group = match params {
            Params::Slot(arena, cache, slot) => {
                let offset = arena.set(slot, &d.params);
                let key: BindKey = (d.kernel.name, slot, d.buffers.iter().map(|&b| b.clone()).collect());
                if cache.map.len() >= BindCache::MAX {
                    cache.clear();
                }
                let ctx = self.ctx;
                cache
                    .map
                    .entry(key)
                    .or_insert_with(|| bind_group(ctx, d, &arena.buffer, offset))
                    .clone()
            }
            Params::OneOff => {
                let uniform = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("params"),
                    size: (d.params.len() as u64).next_multiple_of(16),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.ctx.queue.write_buffer(&uniform, 0, &d.params);
                bind_group(self.ctx, d, &uniform, 0)
            }
        };
        let (encoder, timer) = (&mut self.encoder, &mut self.timer);
        let pass = self.pass.get_or_insert_with(|| {
            let timestamp_writes = timer.as_deref_mut().and_then(GpuTimer::next_pass);
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("glassbox"), timestamp_writes }).forget_lifetime()
        });
        pass.set_pipeline(&d.kernel.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(d.grid[0], d.grid[1], d.grid[2]);
        self.pending += 1;
    }

    /// Submits what is recorded so far if it is a good piece of work (call between steps);
    /// the copies already recorded stay ordered before everything after.
    pub fn flush_if_long(&mut self, arena: &mut ParamArena) -> Result<()> {
        if self.pending >= DISPATCHES_PER_SUBMIT {
            self.pass = None;
            arena.flush(&self.ctx.queue);
            if let Some(timer) = &self.timer {
                timer.resolve(&mut self.encoder);
            }
            let done = std::mem::replace(&mut self.encoder, encoder(self.ctx));
            self.ctx.queue.submit([done.finish()]);
            self.pending = 0;
            if let Some(timer) = self.timer.as_deref_mut() {
                timer.collect(self.ctx)?;
            }
        }
        Ok(())
    }

    /// Copies `bytes` from `src` to `dst`, after every dispatch recorded so far.
    pub fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, bytes: u64) {
        self.pass = None; // a copy is an encoder command: the compute pass must end first
        if bytes > 0 {
            self.encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, bytes);
        }
    }

    /// Writes the params (if an arena was used) and submits everything as one command buffer.
    pub fn submit(mut self, arena: Option<&mut ParamArena>) -> Result<wgpu::SubmissionIndex> {
        self.pass = None;
        if let Some(arena) = arena {
            arena.flush(&self.ctx.queue);
        }
        if let Some(timer) = &self.timer {
            timer.resolve(&mut self.encoder);
        }
        let index = self.ctx.queue.submit([self.encoder.finish()]);
        if let Some(timer) = self.timer {
            timer.collect(self.ctx)?;
        }
        Ok(index)
    }
}

fn encoder(ctx: &GpuContext) -> wgpu::CommandEncoder {
    ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("glassbox steps") })
}

fn bind_group(ctx: &GpuContext, d: &Dispatch<'_>, uniform: &wgpu::Buffer, offset: u64) -> wgpu::BindGroup {
    let size = wgpu::BufferSize::new((d.params.len() as u64).next_multiple_of(16));
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: uniform, offset, size }),
    }];
    entries.extend(d.buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry {
        binding: i as u32 + 1,
        resource: b.as_entire_binding(),
    }));
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(d.kernel.name),
        layout: &d.kernel.layout,
        entries: &entries,
    })
}

/// A grow-only MAP_READ buffer reused for every group's read-back.
#[derive(Default)]
pub struct ReadbackPool {
    buffer: Option<wgpu::Buffer>,
}

impl ReadbackPool {
    pub fn get(&mut self, ctx: &GpuContext, bytes: u64) -> wgpu::Buffer {
        // Powers of two so a growing run reallocates rarely, but never past the device limit.
        let bytes = bytes.max(256).next_power_of_two().min(ctx.limits.max_buffer_size).max(bytes);
        match &self.buffer {
            Some(b) if b.size() >= bytes => b.clone(),
            _ => {
                let b = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read back"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.buffer = Some(b.clone());
                b
            }
        }
    }
}
