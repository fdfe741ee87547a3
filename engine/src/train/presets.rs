//! The two presets the trainer runs out of the box. Each makes a fresh tiny Llama (RMSNorm,
//! RoPE, GQA, SwiGLU, tied embeddings: SmolLM2's family at toy size) and its data.
//! - `induction`: random tokens repeated twice. The second copy becomes predictable once an
//!   induction head forms, and its loss falls suddenly (the phase change).
//! - `text`: a small bilingual corpus shipped in `assets/training/`, tokenized with a
//!   byte-level BPE trained on it at start-up.

use super::adamw::{AdamWConfig, LrSchedule};
use crate::load::config::LlamaConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Induction,
    Text,
}

impl Preset {
    pub const ALL: [Preset; 2] = [Preset::Induction, Preset::Text];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Induction => "induction",
            Preset::Text => "text",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Sizes, data shape and optimizer settings.
    pub fn spec(self) -> PresetSpec {
        match self {
            Preset::Induction => PresetSpec {
                config: tiny_config(INDUCTION_VOCAB, 64, 128, 2, 4, 2, true),
                batch_size: 16,
                half: 12,
                seq_len: 1 + 2 * 12,
                steps: 250,
                schedule: LrSchedule { peak: 3e-3, warmup: 20, total: 250, min_lr: 3e-4 },
                adamw: AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() },
                clip: 1.0,
                init_std: 0.02,
                eval_every: 10,
            },
            Preset::Text => PresetSpec {
                config: tiny_config(TEXT_VOCAB, 64, 192, 2, 4, 2, true),
                batch_size: 16,
                half: 0,
                seq_len: 64,
                steps: 300,
                schedule: LrSchedule { peak: 2e-3, warmup: 20, total: 300, min_lr: 2e-4 },
                adamw: AdamWConfig::default(),
                clip: 1.0,
                init_std: 0.02,
                eval_every: 25,
            },
        }
    }
}

/// Token 0 is `<s>`, the start of every induction sequence; 1..vocab are the random tokens.
pub const INDUCTION_VOCAB: usize = 64;
/// The BPE's size: 256 byte tokens, `<s>`, and the merges learned from the corpus.
pub const TEXT_VOCAB: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub struct PresetSpec {
    pub config: LlamaConfig,
    pub batch_size: usize,
    /// Induction: the length of the random half (sequences are `<s>` + half + half).
    pub half: usize,
    pub seq_len: usize,
    pub steps: usize,
    pub schedule: LrSchedule,
    pub adamw: AdamWConfig,
    /// Global-norm clipping threshold (0 = off).
    pub clip: f32,
    pub init_std: f32,
    /// Evaluate (held-out loss, induction score, text samples) every N steps.
    pub eval_every: usize,
}

/// A Llama config of the given sizes (`d_head = d_model / heads`, RoPE θ = 10000).
pub fn tiny_config(
    vocab: usize,
    d_model: usize,
    d_mlp: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    tied: bool,
) -> LlamaConfig {
    LlamaConfig {
        architectures: Some(vec!["LlamaForCausalLM".into()]),
        model_type: Some("llama".into()),
        vocab_size: vocab,
        hidden_size: d_model,
        intermediate_size: d_mlp,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: Some(kv_heads),
        head_dim: Some(d_model / heads.max(1)),
        rms_norm_eps: 1e-5,
        rope_theta: Some(10_000.0),
        rope_scaling: None,
        rope_parameters: None,
        max_position_embeddings: 256,
        tie_word_embeddings: tied,
        bos_token_id: None,
        eos_token_id: None,
        pad_token_id: None,
        hidden_act: Some("silu".into()),
        attention_bias: false,
        mlp_bias: false,
        torch_dtype: None,
        dtype: Some("float32".into()),
        ..LlamaConfig::default()
    }
}
