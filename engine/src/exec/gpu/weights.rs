//! The model's weights on the GPU: every matrix in its own format (`matrix.rs`: f32 or f16
//! rows, or a GGUF matrix's blocks as downloaded), norms and biases as f32 vectors.

use ndarray::ArrayView1;

use crate::error::{EngineError, Result};
use crate::exec::gpu::context::GpuContext;
use crate::exec::gpu::kernels::{WeightFormat, WeightPipelines};
use crate::load::model::Model;

pub use crate::exec::gpu::matrix::{GpuMatrix, MatrixChunk};

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
    /// `None`: no norm before attention (OLMo 2).
    pub ln1: Option<wgpu::Buffer>, // [d_model]
    pub q: GpuMatrix,      // [n_heads·d_head, d_model]
    pub k: GpuMatrix,      // [n_kv_heads·d_head, d_model]
    pub v: GpuMatrix,      // [n_kv_heads·d_head, d_model]
    pub o: GpuMatrix,      // [d_model, n_heads·d_head]
    pub ln2: Option<wgpu::Buffer>, // [d_model]
    pub gate: GpuMatrix,   // [d_mlp, d_model]
    /// `None` in an ungated MLP (GPT-2, BERT).
    pub up: Option<GpuMatrix>, // [d_mlp, d_model]
    pub down: GpuMatrix,   // [d_model, d_mlp]
    /// Biases of q, k, v (GPT-2, BERT, Qwen 2).
    pub attn_bias: Option<[wgpu::Buffer; 3]>, // [q_dim], [kv_dim] × 2
    /// o_proj's bias (GPT-2, BERT).
    pub o_bias: Option<wgpu::Buffer>, // [d_model]
    /// Biases of the MLP's first projection and of down.
    pub mlp_bias: Option<[wgpu::Buffer; 2]>, // [d_mlp], [d_model]
    /// LayerNorm biases of ln1 and ln2.
    pub norm_bias: Option<[wgpu::Buffer; 2]>, // [d_model] × 2
    /// QK-norm weights (q, k): per head, or all heads wide (OLMo 2).
    pub qk_norm: Option<[wgpu::Buffer; 2]>, // [d_head] × 2, or [q_dim], [kv_dim]
    /// Norms on the attention and MLP outputs (Gemma's sandwich, OLMo 2).
    pub sublayer_out_norm: Option<[wgpu::Buffer; 2]>, // [d_model] × 2
}

/// Learned positions (GPT-2, BERT), BERT's token types and embedding LayerNorm.
pub struct GpuPositions {
    pub table: GpuMatrix, // [max_positions, d_model]
    pub token_types: Option<GpuMatrix>, // [type_vocab, d_model]
    pub layer_norm: Option<[wgpu::Buffer; 2]>, // [d_model] × 2 (weight, bias)
}

/// BERT's masked-LM head.
pub struct GpuMlm {
    pub dense: GpuMatrix, // [d_model, d_model]
    pub dense_bias: wgpu::Buffer, // [d_model]
    pub layer_norm: [wgpu::Buffer; 2], // [d_model] × 2
    pub decoder_bias: wgpu::Buffer, // [vocab]
}

pub struct GpuWeights {
    /// The format of matrices held as f32 (the precision's); GGUF matrices keep their own.
    pub format: WeightFormat,
    pub embed: GpuMatrix, // [vocab, d_model]
    pub positions: Option<GpuPositions>,
    pub layers: Vec<GpuLayer>,
    /// The final norm (`None`: BERT has none) and its LayerNorm bias.
    pub norm: Option<wgpu::Buffer>, // [d_model]
    pub norm_bias: Option<wgpu::Buffer>, // [d_model]
    pub mlm: Option<GpuMlm>,
    /// `None` when tied to `embed`.
    pub lm_head: Option<GpuMatrix>, // [vocab, d_model]
}

/// The weights the family's program needs are all there (a model built in code with another
/// family's config may lack some): the pass never meets a missing one.
fn check_parts(model: &Model) -> Result<()> {
    use crate::load::arch::{NormKind, NormPlacement, Positions};
    let (arch, w) = (&model.arch, &model.weights);
    let layers = |f: &dyn Fn(&crate::load::model::DecoderLayer) -> bool| w.layers.iter().all(f);
    let needs = [
        (arch.norm == NormKind::Layer && !layers(&|l| l.norm_bias.is_some()), "LayerNorm biases"),
        (arch.final_norm && w.norm.is_none(), "the final norm"),
        (arch.final_norm && arch.norm == NormKind::Layer && w.norm_bias.is_none(), "the final LayerNorm's bias"),
        (arch.qk_norm && !layers(&|l| l.self_attn.q_norm.is_some() && l.self_attn.k_norm.is_some()), "QK-norm weights"),
        (arch.placement.normed_output() && !layers(&|l| l.sublayer_out_norm.is_some()), "post-sublayer norms"),
        (arch.placement != NormPlacement::PostSublayer && !layers(&|l| l.input_layernorm.is_some() && l.post_attention_layernorm.is_some()), "the blocks' norms"),
        (arch.mlp.gated() && !layers(&|l| l.mlp.up_proj.is_some()), "up_proj"),
        (matches!(arch.positions, Positions::Learned { .. }) && w.positions.is_none(), "position_embeddings"),
        (arch.positions == (Positions::Learned { token_types: true }) && w.positions.as_ref().is_none_or(|p| p.token_type_embeddings.is_none()), "token_type_embeddings"),
        (arch.embed_norm && w.positions.as_ref().is_none_or(|p| p.layer_norm.is_none()), "embeddings.LayerNorm"),
        (arch.mlm_head && w.mlm.is_none(), "cls.predictions.transform"),
    ];
    match needs.iter().find(|(missing, _)| *missing) {
        Some((_, what)) => Err(EngineError::Input(format!("this model has no {what}, which its config.json's family needs"))),
        None => Ok(()),
    }
}

/// Two vectors uploaded as a pair.
fn pair(ctx: &GpuContext, label: &str, v: &[ndarray::Array1<f32>; 2]) -> Result<[wgpu::Buffer; 2]> {
    Ok([upload_vector(ctx, &format!("{label}[0]"), v[0].view())?, upload_vector(ctx, &format!("{label}[1]"), v[1].view())?])
}

impl GpuWeights {
    /// Uploads every weight; `max_chunk_bytes` caps one buffer (the adapter's binding limit,
    /// or less in tests that exercise the split). Each matrix's kernels come from `pipelines`,
    /// built there for each format the first time it is met.
    pub fn upload(ctx: &GpuContext, model: &Model, format: WeightFormat, max_chunk_bytes: u64, pipelines: &WeightPipelines) -> Result<Self> {
        check_parts(model)?;
        let w = &model.weights;
        // f32 weights are uploaded from where they lie; bf16/f16 ones are widened a chunk at a
        // time on the way; GGUF blocks go up as they are.
        let m = |label: &str, a: &crate::load::matrix::Matrix| GpuMatrix::from_matrix(ctx, pipelines, label, a, format, max_chunk_bytes);
        let vector = |label: &str, v: &ndarray::Array1<f32>| upload_vector(ctx, label, v.view());
        let layers = w
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let name = |s: &str| format!("blocks.{l}.{s}");
                let (a, mlp) = (&layer.self_attn, &layer.mlp);
                let attn_bias = a
                    .bias
                    .as_ref()
                    .map(|b| -> Result<[wgpu::Buffer; 3]> { Ok([vector(&name("q_bias"), &b.q_proj)?, vector(&name("k_bias"), &b.k_proj)?, vector(&name("v_bias"), &b.v_proj)?]) })
                    .transpose()?;
                let o_bias = a.bias.as_ref().and_then(|b| b.o_proj.as_ref()).map(|b| vector(&name("o_bias"), b)).transpose()?;
                let mlp_bias = mlp
                    .bias
                    .as_ref()
                    .map(|b| -> Result<[wgpu::Buffer; 2]> { Ok([vector(&name("mlp_in_bias"), &b.gate_proj)?, vector(&name("down_bias"), &b.down_proj)?]) })
                    .transpose()?;
                let qk_norm = match (&a.q_norm, &a.k_norm) {
                    (Some(q), Some(k)) => Some([vector(&name("q_norm"), q)?, vector(&name("k_norm"), k)?]),
                    _ => None,
                };
                Ok(GpuLayer {
                    ln1: layer.input_layernorm.as_ref().map(|g| vector(&name("ln1"), g)).transpose()?,
                    q: m(&name("q_proj"), &a.q_proj)?,
                    k: m(&name("k_proj"), &a.k_proj)?,
                    v: m(&name("v_proj"), &a.v_proj)?,
                    o: m(&name("o_proj"), &a.o_proj)?,
                    ln2: layer.post_attention_layernorm.as_ref().map(|g| vector(&name("ln2"), g)).transpose()?,
                    gate: m(&name("gate_proj"), &mlp.gate_proj)?,
                    up: mlp.up_proj.as_ref().map(|up| m(&name("up_proj"), up)).transpose()?,
                    down: m(&name("down_proj"), &mlp.down_proj)?,
                    attn_bias,
                    o_bias,
                    mlp_bias,
                    norm_bias: layer.norm_bias.as_ref().map(|b| pair(ctx, &name("norm_bias"), b)).transpose()?,
                    qk_norm,
                    sublayer_out_norm: layer.sublayer_out_norm.as_ref().map(|n| pair(ctx, &name("sublayer_out_norm"), n)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let positions = w
            .positions
            .as_ref()
            .map(|p| -> Result<GpuPositions> {
                Ok(GpuPositions {
                    table: m("position_embeddings", &p.position_embeddings)?,
                    token_types: p.token_type_embeddings.as_ref().map(|t| m("token_type_embeddings", t)).transpose()?,
                    layer_norm: p.layer_norm.as_ref().map(|n| pair(ctx, "embeddings.LayerNorm", n)).transpose()?,
                })
            })
            .transpose()?;
        let mlm = w
            .mlm
            .as_ref()
            .map(|h| -> Result<GpuMlm> {
                Ok(GpuMlm {
                    dense: m("cls.predictions.transform.dense", &h.dense)?,
                    dense_bias: vector("cls.predictions.transform.dense.bias", &h.dense_bias)?,
                    layer_norm: pair(ctx, "cls.predictions.transform.LayerNorm", &h.layer_norm)?,
                    decoder_bias: vector("cls.predictions.bias", &h.decoder_bias)?,
                })
            })
            .transpose()?;
        Ok(Self {
            format,
            embed: m("embed_tokens", &w.embed_tokens)?,
            positions,
            layers,
            norm: w.norm.as_ref().map(|n| vector("norm", n)).transpose()?,
            norm_bias: w.norm_bias.as_ref().map(|b| vector("norm_bias", b)).transpose()?,
            mlm,
            lm_head: w.lm_head.as_ref().map(|a| m("lm_head", a)).transpose()?,
        })
    }

    pub fn lm_head(&self) -> &GpuMatrix {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// Every matrix held, once.
    fn matrices(&self) -> Vec<&GpuMatrix> {
        let mut all: Vec<&GpuMatrix> = self.layers.iter().flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.down].into_iter().chain(l.up.as_ref())).collect();
        all.push(&self.embed);
        all.extend(self.lm_head.as_ref());
        if let Some(p) = &self.positions {
            all.push(&p.table);
            all.extend(p.token_types.as_ref());
        }
        all.extend(self.mlm.as_ref().map(|h| &h.dense));
        all
    }

    /// Most chunks any matrix was split into (sizes the per-step params slots).
    pub fn max_chunks(&self) -> usize {
        self.matrices().iter().map(|m| m.chunks.len()).max().unwrap_or(1)
    }

    /// Bytes the matrices take on the GPU (norms and biases aside).
    pub fn bytes(&self) -> u64 {
        self.matrices().iter().map(|m| m.bytes()).sum()
    }

    /// The formats the matrices are held in, each once, in upload order.
    pub fn formats(&self) -> Vec<WeightFormat> {
        let mut all: Vec<WeightFormat> = Vec::new();
        for m in self.matrices() {
            if !all.contains(&m.format) {
                all.push(m.format);
            }
        }
        all
    }
}
