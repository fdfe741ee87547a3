//! GPU time of the executor's work, from timestamp queries written at the start and end of
//! every compute pass. Wall-clock figures include recording, submits and read-back; this says
//! how long the GPU itself computed, so a benchmark can print the two apart. Reading the
//! timestamps waits for each submit, so timed runs are kept apart from wall-clock runs.

use crate::error::Result;
use crate::exec::gpu::context::{GpuContext, map_read};
use crate::exec::executor::GpuTime;

/// Query pairs per submit; passes beyond it run untimed (and are counted as such).
const PAIRS: u32 = 2048;

pub struct GpuTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
    used: u32,
    total: GpuTime,
}

impl GpuTimer {
    /// Whether `ctx`'s device was opened with timestamp queries.
    pub fn supported(ctx: &GpuContext) -> bool {
        ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// `None` where the device was opened without `TIMESTAMP_QUERY`.
    pub fn new(ctx: &GpuContext) -> Option<Self> {
        if !Self::supported(ctx) {
            return None;
        }
        let bytes = u64::from(PAIRS) * 2 * 8;
        let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: PAIRS * 2,
        });
        let buffer = |label, usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: bytes, usage, mapped_at_creation: false })
        };
        Some(Self {
            queries,
            resolve: buffer("timestamps", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            readback: buffer("timestamps read back", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            period_ns: f64::from(ctx.queue.get_timestamp_period()),
            used: 0,
            total: GpuTime::default(),
        })
    }

    /// The timestamp writes for the next compute pass, or `None` when the set is full.
    pub(crate) fn next_pass(&mut self) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        if self.used >= PAIRS {
            self.total.untimed += 1;
            return None;
        }
        let at = self.used * 2;
        self.used += 1;
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(at),
            end_of_pass_write_index: Some(at + 1),
        })
    }

    /// Records the copy of this submit's timestamps (call before finishing the encoder).
    pub(crate) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        if self.used > 0 {
            encoder.resolve_query_set(&self.queries, 0..self.used * 2, &self.resolve, 0);
            encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, u64::from(self.used) * 16);
        }
    }

    /// Waits for the submit and adds its passes' time (call after submitting).
    pub(crate) fn collect(&mut self, ctx: &GpuContext) -> Result<()> {
        let pairs = std::mem::take(&mut self.used);
        if pairs == 0 {
            return Ok(());
        }
        let ticks = map_read(ctx, &self.readback, u64::from(pairs) * 16, bytemuck::pod_collect_to_vec::<u8, u64>)?;
        for pair in ticks.chunks_exact(2) {
            self.total.ns += pair[1].saturating_sub(pair[0]) as f64 * self.period_ns;
            self.total.passes += 1;
        }
        Ok(())
    }

    /// The time summed so far, and a fresh start.
    pub fn take(&mut self) -> GpuTime {
        std::mem::take(&mut self.total)
    }
}
