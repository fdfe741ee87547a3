//! The model's weights on the GPU. Matrices keep the `[out, in]` layout with rows zero-padded
//! to a multiple of 4 (vec4 reads), stored f32 or f16; a matrix larger than one storage
//! binding is split into row chunks (every kernel that reads weights takes chunks).

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{EngineError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::WeightFormat;
use crate::model::Model;

/// Rows `row_start .. row_start + rows` of a matrix.
pub struct MatrixChunk {
    pub buffer: wgpu::Buffer,
    pub row_start: usize,
    pub rows: usize,
}

pub struct GpuMatrix {
    pub rows: usize,
    pub cols: usize,
    /// Elements per stored row: `cols` rounded up to a multiple of 4.
    pub stride: usize,
    pub chunks: Vec<MatrixChunk>,
}

impl GpuMatrix {
    /// Uploads `w` [rows, cols], split into chunks of at most `max_chunk_bytes`.
    pub fn upload(ctx: &GpuContext, label: &str, w: ArrayView2<f32>, format: WeightFormat, max_chunk_bytes: u64) -> Result<Self> {
        let (rows, cols) = w.dim();
        let stride = cols.next_multiple_of(4);
        let row_bytes = stride as u64 * format.bytes_per_element();
        let rows_per_chunk = (max_chunk_bytes / row_bytes.max(1)) as usize;
        if rows_per_chunk == 0 {
            return Err(EngineError::Gpu(format!(
                "`{label}`: one row of {cols} values ({row_bytes} bytes) exceeds the GPU's binding limit of {max_chunk_bytes} bytes"
            )));
        }
        let mut chunks = Vec::new();
        let mut row_start = 0;
        while row_start < rows.max(1) {
            let n = rows_per_chunk.min(rows - row_start).max(1);
            let part = w.slice(ndarray::s![row_start..(row_start + n).min(rows), ..]);
            let bytes = pack(part, stride, format);
            let chunk_label = format!("{label}[{row_start}..{}]", row_start + n);
            let buffer = ctx.storage(&chunk_label, bytes.len() as u64, wgpu::BufferUsages::empty())?;
            ctx.queue.write_buffer(&buffer, 0, &bytes);
            chunks.push(MatrixChunk { buffer, row_start, rows: n });
            row_start += n;
        }
        Ok(Self { rows, cols, stride, chunks })
    }

    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.buffer.size()).sum()
    }
}

/// Row-padded bytes of `w` in `format` (f16 rounds to nearest even).
fn pack(w: ArrayView2<f32>, stride: usize, format: WeightFormat) -> Vec<u8> {
    let cols = w.ncols();
    match format {
        WeightFormat::F32 => {
            let mut out = vec![0f32; w.nrows() * stride]; // [rows, stride]
            for (r, row) in w.outer_iter().enumerate() {
                for (dst, &v) in out[r * stride..r * stride + cols].iter_mut().zip(row) {
                    *dst = v;
                }
            }
            bytemuck::cast_slice(&out).to_vec()
        }
        WeightFormat::F16Native | WeightFormat::F16Packed => {
            let mut out = vec![half::f16::ZERO; w.nrows() * stride]; // [rows, stride]
            for (r, row) in w.outer_iter().enumerate() {
                for (dst, &v) in out[r * stride..r * stride + cols].iter_mut().zip(row) {
                    *dst = half::f16::from_f32(v);
                }
            }
            bytemuck::cast_slice(&out).to_vec()
        }
    }
}

/// `v` as the f16 weight formats store it (round to nearest even), back in f32.
pub fn round_to_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// A vector (norm weights) in f32 whatever the weight format: it is tiny and feeds every row.
pub fn upload_vector(ctx: &GpuContext, label: &str, v: ArrayView1<f32>) -> Result<wgpu::Buffer> {
    let values: Vec<f32> = v.iter().copied().collect();
    upload_f32(ctx, label, &values)
}

pub fn upload_f32(ctx: &GpuContext, label: &str, values: &[f32]) -> Result<wgpu::Buffer> {
    let buffer = ctx.storage(label, (values.len() * 4) as u64, wgpu::BufferUsages::empty())?;
    if !values.is_empty() {
        ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(values));
    }
    Ok(buffer)
}

pub struct GpuLayer {
    pub ln1: wgpu::Buffer, // [d_model]
    pub q: GpuMatrix,      // [n_heads·d_head, d_model]
    pub k: GpuMatrix,      // [n_kv_heads·d_head, d_model]
    pub v: GpuMatrix,      // [n_kv_heads·d_head, d_model]
    pub o: GpuMatrix,      // [d_model, n_heads·d_head]
    pub ln2: wgpu::Buffer, // [d_model]
    pub gate: GpuMatrix,   // [d_mlp, d_model]
    pub up: GpuMatrix,     // [d_mlp, d_model]
    pub down: GpuMatrix,   // [d_model, d_mlp]
}

pub struct GpuWeights {
    pub format: WeightFormat,
    pub embed: GpuMatrix, // [vocab, d_model]
    pub layers: Vec<GpuLayer>,
    pub norm: wgpu::Buffer, // [d_model]
    /// `None` when tied to `embed`.
    pub lm_head: Option<GpuMatrix>, // [vocab, d_model]
}

impl GpuWeights {
    /// Uploads every weight; `max_chunk_bytes` caps one buffer (the adapter's binding limit,
    /// or less in tests that exercise the split).
    pub fn upload(ctx: &GpuContext, model: &Model, format: WeightFormat, max_chunk_bytes: u64) -> Result<Self> {
        let w = &model.weights;
        // f32 weights are uploaded from where they lie; bf16/f16 ones are widened one matrix at a
        // time on the way.
        let m = |label: &str, a: &crate::matrix::Matrix| match a.as_f32() {
            Some(view) => GpuMatrix::upload(ctx, label, view, format, max_chunk_bytes),
            None => GpuMatrix::upload(ctx, label, a.to_f32().view(), format, max_chunk_bytes),
        };
        let layers = w
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let name = |s: &str| format!("blocks.{l}.{s}");
                Ok(GpuLayer {
                    ln1: upload_vector(ctx, &name("ln1"), layer.input_layernorm.view())?,
                    q: m(&name("q_proj"), &layer.self_attn.q_proj)?,
                    k: m(&name("k_proj"), &layer.self_attn.k_proj)?,
                    v: m(&name("v_proj"), &layer.self_attn.v_proj)?,
                    o: m(&name("o_proj"), &layer.self_attn.o_proj)?,
                    ln2: upload_vector(ctx, &name("ln2"), layer.post_attention_layernorm.view())?,
                    gate: m(&name("gate_proj"), &layer.mlp.gate_proj)?,
                    up: m(&name("up_proj"), layer.mlp.up()?)?,
                    down: m(&name("down_proj"), &layer.mlp.down_proj)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            format,
            embed: m("embed_tokens", &w.embed_tokens)?,
            layers,
            norm: upload_vector(ctx, "norm", crate::analysis::rms_final_norm(model)?.view())?,
            lm_head: w.lm_head.as_ref().map(|a| m("lm_head", a)).transpose()?,
        })
    }

    pub fn lm_head(&self) -> &GpuMatrix {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// Most chunks any matrix was split into (sizes the per-step params slots).
    pub fn max_chunks(&self) -> usize {
        let per_layer = self.layers.iter().flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down]);
        per_layer
            .chain([&self.embed, self.lm_head()])
            .map(|m| m.chunks.len())
            .max()
            .unwrap_or(1)
    }

    pub fn bytes(&self) -> u64 {
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down].iter().map(|m| m.bytes()).sum::<u64>())
            .sum();
        layers + self.embed.bytes() + self.lm_head.as_ref().map_or(0, |m| m.bytes())
    }
}
