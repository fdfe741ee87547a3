//! One weight matrix on the GPU in its own format. f32-held matrices (and safetensors' bf16/f16
//! ones, widened a chunk at a time) keep the `[out, in]` layout with rows zero-padded to a
//! multiple of 4 elements (vec4 reads), stored f32 or f16 as the precision asks. A GGUF matrix
//! kept as downloaded goes up as it is: its blocks byte for byte (Q8_0 … Q6_K), or its f16 /
//! bf16 values, read by the prelude of its format. A matrix larger than one storage binding
//! is split into chunks of whole rows (every kernel that reads weights takes chunks).

use std::borrow::Cow;
use std::sync::Arc;

use ndarray::ArrayView2;

use crate::error::{EngineError, Result};
use crate::exec::gpu::context::GpuContext;
use crate::exec::gpu::kernels::{WeightFormat, WeightKernels, WeightPipelines};
use crate::load::gguf::GgmlType;
use crate::load::matrix::{Matrix, WeightData};

/// Rows `row_start .. row_start + rows` of a matrix.
pub struct MatrixChunk {
    pub buffer: wgpu::Buffer,
    pub row_start: usize,
    pub rows: usize,
}

pub struct GpuMatrix {
    pub rows: usize,
    pub cols: usize,
    /// Elements per stored row: `cols` rounded up to a multiple of 4 (row formats), `cols`
    /// itself (block formats: a row is whole blocks of 32 or 256).
    pub stride: usize,
    pub format: WeightFormat,
    /// The embed, matmul and gemv kernels built for `format`.
    pub kernels: Arc<WeightKernels>,
    pub chunks: Vec<MatrixChunk>,
}

/// Most elements in one chunk: the kernels index a chunk's elements in u32 (a 4-bit format
/// packs more elements than bytes, so the byte limit alone would not keep them under).
const MAX_CHUNK_ELEMENTS: u64 = 1 << 31;
/// Most bytes in one chunk: the block preludes address bytes in u32, whatever binding an
/// adapter allows.
const MAX_CHUNK_BYTES: u64 = (1 << 32) - 4;

/// Where a matrix's GPU bytes come from, for [`GpuMatrix::from_matrix`].
enum Source<'m> {
    /// f32 values (the precision's format): in place, or widened a chunk at a time.
    F32(&'m Matrix),
    /// GGUF blocks, uploaded as they are.
    Blocks { bytes: &'m [u8], row_bytes: usize },
    /// GGUF f16 or bf16 values, each row padded to the stride.
    Halves { bytes: &'m [u8] },
}

impl GpuMatrix {
    /// Uploads f32 values `w` [rows, cols] in `format` (a row format), split into chunks of at
    /// most `max_chunk_bytes`.
    pub fn upload(ctx: &GpuContext, pipelines: &WeightPipelines, label: &str, w: ArrayView2<f32>, format: WeightFormat, max_chunk_bytes: u64) -> Result<Self> {
        let (rows, cols) = w.dim();
        if format.bytes_per_element().is_none() {
            return Err(EngineError::Gpu(format!("`{label}`: f32 values cannot be uploaded as {} blocks", format.name())));
        }
        let layout = Layout::rows_of(format, rows, cols);
        layout.upload(ctx, pipelines, label, max_chunk_bytes, |start, n| {
            Ok(Cow::Owned(pack(w.slice(ndarray::s![start..start + n, ..]), layout.stride, format)))
        })
    }

    /// Uploads a model's matrix: a quantized one as its blocks, a GGUF f16/bf16 one as its
    /// values, anything else as f32 values in `format` (the precision's).
    pub fn from_matrix(ctx: &GpuContext, pipelines: &WeightPipelines, label: &str, m: &Matrix, format: WeightFormat, max_chunk_bytes: u64) -> Result<Self> {
        let (rows, cols) = m.dim();
        // A GGUF's f16 values stay f16: read natively where the adapter can (unless the packed
        // path was asked for).
        let f16 = if ctx.has_shader_f16() && format != WeightFormat::F16Packed { WeightFormat::F16Native } else { WeightFormat::F16Packed };
        let (layout, source) = match (m.quant_type(), m.rows().data) {
            (Some(GgmlType::F16), WeightData::Quant(q)) => (Layout::rows_of(f16, rows, cols), Source::Halves { bytes: q.bytes }),
            (Some(ty), WeightData::Quant(q)) => match WeightFormat::blocks_of(ty) {
                Some(WeightFormat::Bf16) => (Layout::rows_of(WeightFormat::Bf16, rows, cols), Source::Halves { bytes: q.bytes }),
                Some(blocks) => (Layout { format: blocks, rows, cols, stride: cols, row_bytes: q.row_bytes as u64 }, Source::Blocks { bytes: q.bytes, row_bytes: q.row_bytes }),
                None => (Layout::rows_of(format, rows, cols), Source::F32(m)),
            },
            _ => (Layout::rows_of(format, rows, cols), Source::F32(m)),
        };
        layout.upload(ctx, pipelines, label, max_chunk_bytes, |start, n| match &source {
            Source::Blocks { bytes, row_bytes } => bytes
                .get(start * row_bytes..(start + n) * row_bytes)
                .map(Cow::Borrowed)
                .ok_or_else(|| EngineError::Gpu(format!("`{label}`: its blocks end before row {}", start + n))),
            Source::Halves { bytes } => Ok(Cow::Owned(pad_rows(bytes, start, n, cols * 2, layout.stride * 2))),
            Source::F32(m) => Ok(Cow::Owned(match m.as_f32() {
                Some(view) => pack(view.slice(ndarray::s![start..start + n, ..]), layout.stride, format),
                None => pack(m.row_range(start, n).to_f32().view(), layout.stride, format),
            })),
        })
    }

    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.buffer.size()).sum()
    }
}

/// How a matrix lies on the GPU: its format, shape, stride and bytes per stored row.
#[derive(Clone, Copy)]
struct Layout {
    format: WeightFormat,
    rows: usize,
    cols: usize,
    stride: usize,
    row_bytes: u64,
}

impl Layout {
    /// A row format (f32, f16, bf16): rows padded to a multiple of 4 elements.
    fn rows_of(format: WeightFormat, rows: usize, cols: usize) -> Self {
        let stride = cols.next_multiple_of(4);
        Self { format, rows, cols, stride, row_bytes: stride as u64 * format.bytes_per_element().unwrap_or(4) }
    }

    /// Row chunks `(start, n)` under the binding limit and the element limit.
    fn chunks(&self, label: &str, max_chunk_bytes: u64) -> Result<Vec<(usize, usize)>> {
        let by_bytes = max_chunk_bytes.min(MAX_CHUNK_BYTES) / self.row_bytes.max(1);
        let by_elements = MAX_CHUNK_ELEMENTS / (self.stride as u64).max(1);
        let per_chunk = by_bytes.min(by_elements) as usize;
        if per_chunk == 0 {
            return Err(EngineError::Gpu(format!(
                "`{label}`: one row of {} values ({} bytes) exceeds the GPU's binding limit of {max_chunk_bytes} bytes",
                self.cols, self.row_bytes
            )));
        }
        if self.rows == 0 {
            return Ok(vec![(0, 0)]);
        }
        Ok((0..self.rows).step_by(per_chunk).map(|start| (start, per_chunk.min(self.rows - start))).collect())
    }

    /// One buffer per chunk, filled from `chunk_bytes(start, n)` (one chunk in host memory at
    /// a time, none for blocks: they are written from where they lie).
    fn upload<'b>(
        &self,
        ctx: &GpuContext,
        pipelines: &WeightPipelines,
        label: &str,
        max_chunk_bytes: u64,
        chunk_bytes: impl Fn(usize, usize) -> Result<Cow<'b, [u8]>>,
    ) -> Result<GpuMatrix> {
        let kernels = pipelines.get(ctx, self.format)?;
        let mut chunks = Vec::new();
        for (start, n) in self.chunks(label, max_chunk_bytes)? {
            let bytes = chunk_bytes(start, n)?;
            let chunk_label = format!("{label}[{start}..{}]", start + n);
            let buffer = ctx.storage(&chunk_label, (bytes.len() as u64).next_multiple_of(4), wgpu::BufferUsages::empty())?;
            write_padded(ctx, &buffer, &bytes);
            chunks.push(MatrixChunk { buffer, row_start: start, rows: n });
        }
        // Hands the staged copies to the GPU now, so that their host memory is freed matrix by
        // matrix rather than held until the first pass.
        ctx.queue.submit([]);
        Ok(GpuMatrix { rows: self.rows, cols: self.cols, stride: self.stride, format: self.format, kernels, chunks })
    }
}

/// Writes `bytes` at the start of `buffer`; a tail short of a whole word goes zero-padded.
fn write_padded(ctx: &GpuContext, buffer: &wgpu::Buffer, bytes: &[u8]) {
    let whole = bytes.len() / 4 * 4;
    if whole > 0 {
        ctx.queue.write_buffer(buffer, 0, &bytes[..whole]);
    }
    if whole < bytes.len() {
        let mut tail = [0u8; 4];
        tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
        ctx.queue.write_buffer(buffer, whole as u64, &tail);
    }
}

/// Rows `start .. start + n` of `row_bytes` each, each zero-padded to `padded` bytes.
fn pad_rows(bytes: &[u8], start: usize, n: usize, row_bytes: usize, padded: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * padded];
    for (r, dst) in out.chunks_exact_mut(padded.max(1)).enumerate() {
        let at = (start + r) * row_bytes;
        if let Some(row) = bytes.get(at..at + row_bytes) {
            dst[..row_bytes].copy_from_slice(row);
        }
    }
    out
}

/// Row-padded bytes of `w` in `format` (f16 and bf16 round to nearest even).
fn pack(w: ArrayView2<f32>, stride: usize, format: WeightFormat) -> Vec<u8> {
    fn rows<T: bytemuck::Pod + Default>(w: ArrayView2<f32>, stride: usize, from: impl Fn(f32) -> T) -> Vec<u8> {
        let cols = w.ncols();
        let mut out = vec![T::default(); w.nrows() * stride]; // [rows, stride]
        for (r, row) in w.outer_iter().enumerate() {
            for (dst, &v) in out[r * stride..r * stride + cols].iter_mut().zip(row) {
                *dst = from(v);
            }
        }
        bytemuck::cast_slice(&out).to_vec()
    }
    match format {
        WeightFormat::F16Native | WeightFormat::F16Packed => rows(w, stride, |v| half::f16::from_f32(v).to_bits()),
        WeightFormat::Bf16 => rows(w, stride, |v| half::bf16::from_f32(v).to_bits()),
        // The block formats take no f32 values (`from_matrix` uploads their blocks).
        _ => rows(w, stride, |v| v),
    }
}
