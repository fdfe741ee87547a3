//! The one weight layout every family loads into: Llama's structure and checkpoint names
//! (`q_proj`, `gate_proj`, `input_layernorm`), with the parts Llama lacks (biases, LayerNorm
//! biases, QK-norm, sandwich norms, learned positions, the MLM head) as `Option`s.
//! `families.rs` maps each checkpoint onto it; both executors read it.

use ndarray::Array1;

use crate::error::{EngineError, Result};
use crate::load::matrix::Matrix;

/// Every family's weights in Llama's layout and names (`families.rs` maps each checkpoint onto
/// it); the parts Llama lacks are `Option`s.
#[derive(Clone)]
pub struct Attention {
    pub q_proj: Matrix, // [n_heads·d_head, d_model]
    pub k_proj: Matrix, // [n_kv_heads·d_head, d_model]
    pub v_proj: Matrix, // [n_kv_heads·d_head, d_model]
    pub o_proj: Matrix, // [d_model, n_heads·d_head]
    /// GPT-2, BERT; Qwen 2 (q, k, v only).
    pub bias: Option<AttnBias>,
    /// QK-norm weights (Gemma's with `1 + w` folded in): one head wide, or all heads wide
    /// where the norm spans them (OLMo 2).
    pub q_norm: Option<Array1<f32>>, // [d_head] or [n_heads·d_head]
    pub k_norm: Option<Array1<f32>>, // [d_head] or [n_kv_heads·d_head]
}

#[derive(Clone)]
pub struct AttnBias {
    pub q_proj: Array1<f32>, // [n_heads·d_head]
    pub k_proj: Array1<f32>, // [n_kv_heads·d_head]
    pub v_proj: Array1<f32>, // [n_kv_heads·d_head]
    /// `None` where only q, k and v have biases (Qwen 2).
    pub o_proj: Option<Array1<f32>>, // [d_model]
}

#[derive(Clone)]
pub struct Mlp {
    /// The projection whose output is `mlp.hook_pre`: Llama's gate, GPT-2's `c_fc`, BERT's
    /// `intermediate.dense`.
    pub gate_proj: Matrix, // [d_mlp, d_model]
    /// The gated MLP's linear branch (`None` in an ungated one).
    pub up_proj: Option<Matrix>, // [d_mlp, d_model]
    pub down_proj: Matrix, // [d_model, d_mlp]
    pub bias: Option<MlpBias>,
}

#[derive(Clone)]
pub struct MlpBias {
    pub gate_proj: Array1<f32>, // [d_mlp]
    pub down_proj: Array1<f32>, // [d_model]
}

impl Mlp {
    /// The linear branch, for code that runs gated MLPs only.
    pub fn up(&self) -> Result<&Matrix> {
        self.up_proj.as_ref().ok_or_else(|| EngineError::Input("this model's MLP has no gate (up_proj): not supported here".into()))
    }
}

#[derive(Clone)]
pub struct DecoderLayer {
    /// The norm before attention (BERT: after the attention add; `None`: OLMo 2 has none).
    pub input_layernorm: Option<Array1<f32>>, // [d_model]
    pub self_attn: Attention,
    /// The norm before the MLP (Gemma's `pre_feedforward_layernorm`; BERT: after the MLP add;
    /// `None`: OLMo 2 has none).
    pub post_attention_layernorm: Option<Array1<f32>>, // [d_model]
    pub mlp: Mlp,
    /// LayerNorm biases of the two norms above.
    pub norm_bias: Option<[Array1<f32>; 2]>, // [d_model] × 2
    /// Norms on each sublayer's output before the add: Gemma's sandwich norms (`1 + w` folded
    /// in) and OLMo 2's (both named `post_attention_layernorm`, `post_feedforward_layernorm`).
    pub sublayer_out_norm: Option<[Array1<f32>; 2]>, // [d_model] × 2
}

/// Learned absolute positions (GPT-2), plus BERT's token types and embedding LayerNorm.
#[derive(Clone)]
pub struct LearnedPositions {
    pub position_embeddings: Matrix, // [max_positions, d_model]
    pub token_type_embeddings: Option<Matrix>, // [type_vocab, d_model]
    /// Weight and bias.
    pub layer_norm: Option<[Array1<f32>; 2]>, // [d_model] × 2
}

/// BERT's masked-LM head: dense + activation + LayerNorm, then the tied decoder plus a bias.
#[derive(Clone)]
pub struct MlmHead {
    pub dense: Matrix, // [d_model, d_model]
    pub dense_bias: Array1<f32>, // [d_model]
    pub layer_norm: [Array1<f32>; 2], // [d_model] × 2
    pub decoder_bias: Array1<f32>, // [vocab]
}

#[derive(Clone)]
pub struct LlamaWeights {
    pub embed_tokens: Matrix, // [vocab, d_model]
    pub positions: Option<LearnedPositions>,
    pub layers: Vec<DecoderLayer>,
    /// The final norm (`None`: BERT has none).
    pub norm: Option<Array1<f32>>, // [d_model]
    pub norm_bias: Option<Array1<f32>>, // [d_model]
    pub mlm: Option<MlmHead>,
    /// `None` when the checkpoint ties the output head to `embed_tokens`.
    pub lm_head: Option<Matrix>, // [vocab, d_model]
}

impl LlamaWeights {
    /// The one place tied embeddings are resolved.
    pub fn lm_head(&self) -> &Matrix {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }
}

/// A tensor of the model, by kind.
pub enum Named<'a> {
    Matrix(&'a Matrix),
    Vector(&'a Array1<f32>),
}

