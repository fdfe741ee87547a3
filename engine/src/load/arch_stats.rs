//! An architecture's numbers from its config alone (`glassbox arch`): parameters by component,
//! KV-cache values per token and at a context length (sliding-window layers hold only their
//! window), matmul FLOPs per token, and each layer's attention kind. Pure functions of
//! `LlamaConfig` and the `Arch` read from it: no weights are read.
//!
//! Parameters are counted as transformers' `sum(p.numel() for p in model.parameters())` counts
//! them (the causal-LM class, or `BertForMaskedLM`): a tied tensor once. The figures are checked
//! against that sum for every config in `tests/fixtures/arch_params.json`
//! (`scripts/arch-params-golden.py`).

use serde::Serialize;

use crate::load::arch::{Arch, AttnMask, NormKind, NormPlacement, Positions};
use crate::load::config::LlamaConfig;

/// Parameters by component. Every parameter is in exactly one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ParamCounts {
    /// The token embedding (`vocab × d_model`); when the head is tied, the head's weight too.
    pub embedding: u64,
    /// Learned position rows (GPT-2 `wpe`, BERT `position_embeddings`); 0 with RoPE.
    pub positions: u64,
    /// BERT's token-type rows; 0 elsewhere.
    pub token_types: u64,
    /// q, k, v and output projections with their biases (QK-norm is under `norms`).
    pub attention: u64,
    /// The MLP's projections with their biases.
    pub mlp: u64,
    /// Every norm's weight (and bias, for LayerNorm): in the blocks, Gemma's per-head QK-norm,
    /// BERT's embedding LayerNorm, the final norm. Not the MLM head's LayerNorm (`head`).
    pub norms: u64,
    /// What the output head adds beyond the embedding: an untied `lm_head`, or BERT's MLM head
    /// (transform dense + LayerNorm + decoder bias; its decoder weight is the tied embedding).
    pub head: u64,
}

impl ParamCounts {
    pub fn total(&self) -> u64 {
        self.embedding + self.positions + self.token_types + self.attention + self.mlp + self.norms + self.head
    }
}

/// Forward FLOPs of one token by component, for the token at position `context − 1`.
/// The matmul components (`attention`, `mlp`, `head`) sum to
/// [`ArchStats::flops_per_token_forward`]; the others are the element-wise work around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ComponentFlops {
    /// Element-wise work on the looked-up row (a lookup itself is no arithmetic): Gemma's
    /// √d_model scale, the added position and token-type rows; `d_model` FLOPs each.
    pub embedding: u64,
    /// q, k, v and output projections (2 × weights; biases not counted).
    pub attention: u64,
    /// Attention itself at the context: q·k and the weighted sum of values over the keys each
    /// layer reads ([`ArchStats::attention_flops_at_context`]).
    pub attention_at_context: u64,
    /// The MLP's projections (2 × weights; biases and the activation not counted).
    pub mlp: u64,
    /// Every normalised value: RMSNorm 4 FLOPs (square, sum, × 1/rms, × weight), LayerNorm 7
    /// (mean, subtract, square, sum, × 1/σ, × weight, + bias); Gemma's QK-norm per head, the
    /// final norm, BERT's embedding and MLM-head norms.
    pub norms: u64,
    /// The output head's matmul (`vocab × d_model`, tied or not) and BERT's MLM transform.
    pub head: u64,
}

impl ComponentFlops {
    pub fn total(&self) -> u64 {
        self.embedding + self.attention + self.attention_at_context + self.mlp + self.norms + self.head
    }
}

/// One layer's attention as `glassbox arch` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LayerType {
    pub layer: usize,
    /// `full` (causal, every earlier key), `sliding` (the last `window` keys), `bidirectional`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
}

impl LlamaConfig {
    /// Parameters as transformers counts them (a tied head once), for every family: the sum of
    /// [`ArchStats::params`]'s components.
    pub fn n_params(&self) -> u64 {
        ArchStats::new(self).params().total()
    }
}

/// The numbers of one architecture, computed from its config.
#[derive(Debug, Clone)]
pub struct ArchStats<'a> {
    config: &'a LlamaConfig,
    arch: Arch,
}

impl<'a> ArchStats<'a> {
    pub fn new(config: &'a LlamaConfig) -> Self {
        Self { config, arch: config.arch() }
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Weights plus bias of one norm over `width` values (RMSNorm has no bias).
    fn norm_params(&self, width: u64) -> u64 {
        match self.arch.norm {
            NormKind::Rms => width,
            NormKind::Layer => 2 * width,
        }
    }

    /// Parameters by component, as transformers counts them.
    pub fn params(&self) -> ParamCounts {
        let c = self.config;
        let a = &self.arch;
        let (d, v, f) = (c.d_model() as u64, c.vocab_size as u64, c.d_mlp() as u64);
        let (q, kv) = (c.q_dim() as u64, c.kv_dim() as u64);
        let layers = c.n_layers() as u64;

        let (positions, token_types) = match a.positions {
            Positions::Rope | Positions::None => (0, 0),
            Positions::Learned { token_types } => {
                // transformers' BertConfig default is 2 token types, as the loader assumes.
                let types = if token_types { c.type_vocab_size.unwrap_or(2) as u64 * d } else { 0 };
                (c.max_position_embeddings as u64 * d, types)
            }
        };
        let attn_bias = if a.biases {
            q + 2 * kv + d
        } else if a.qkv_bias {
            q + 2 * kv
        } else {
            0
        };
        let attention = 2 * d * q + 2 * d * kv + attn_bias;
        let mlp_bias = if a.biases { f + d } else { 0 };
        let mlp = if a.mlp.gated() { 3 * d * f } else { 2 * d * f + mlp_bias };
        let block_norms = match a.placement {
            NormPlacement::Pre | NormPlacement::Post | NormPlacement::PostSublayer => 2,
            NormPlacement::Sandwich => 4,
        } * self.norm_params(d);
        // QK-norm: one RMSNorm of head_dim weights each for q and k, shared by heads (Gemma,
        // Qwen 3), or one as wide as all heads (OLMo 2).
        let qk_norm = match (a.qk_norm, a.qk_norm_whole) {
            (false, _) => 0,
            (true, false) => 2 * c.d_head() as u64,
            (true, true) => q + kv,
        };
        let outer_norms = [a.embed_norm, a.final_norm].iter().filter(|&&on| on).count() as u64 * self.norm_params(d);
        let untied = if a.tied_head { 0 } else { v * d };
        let mlm = if a.mlm_head { d * d + d + self.norm_params(d) + v } else { 0 };
        ParamCounts {
            embedding: v * d,
            positions,
            token_types,
            attention: layers * attention,
            mlp: layers * mlp,
            norms: layers * (block_norms + qk_norm) + outer_norms,
            head: untied + mlm,
        }
    }

    /// Each layer's attention kind and window.
    pub fn layer_types(&self) -> Vec<LayerType> {
        (0..self.config.n_layers())
            .map(|layer| {
                let (kind, window) = match self.arch.mask(layer) {
                    AttnMask::Causal => ("full", None),
                    AttnMask::Sliding { window } => ("sliding", Some(window)),
                    AttnMask::Bidirectional => ("bidirectional", None),
                };
                LayerType { layer, kind, window }
            })
            .collect()
    }

    /// Keys layer `layer` holds (and its last query reads) for a sequence of `context` tokens:
    /// a sliding-window layer only its window.
    fn keys_at(&self, layer: usize, context: u64) -> u64 {
        match self.arch.mask(layer) {
            AttnMask::Sliding { window } => context.min(window as u64),
            AttnMask::Causal | AttnMask::Bidirectional => context,
        }
    }

    /// K and V values one token adds to a full cache: 2 × layers × kv_heads × head_dim.
    pub fn kv_values_per_token(&self) -> u64 {
        2 * self.config.n_layers() as u64 * self.config.kv_dim() as u64
    }

    /// K and V values cached for a sequence of `context` tokens, each sliding-window layer
    /// holding only its last `window` tokens (what the next query can see is the window
    /// before it; the cache is counted at its largest, the last window of the sequence).
    pub fn kv_values_at_context(&self, context: usize) -> u64 {
        let per_row = 2 * self.config.kv_dim() as u64;
        (0..self.config.n_layers()).map(|l| per_row * self.keys_at(l, context as u64)).sum()
    }

    /// Forward FLOPs per token in the weight matmuls: 2 (a multiply and an add) × every weight
    /// a token's row is multiplied by — q/k/v/o and MLP projections in every layer, BERT's MLM
    /// transform, and the output head (`vocab × d_model`, INCLUDED whether or not it is tied to
    /// the embedding: the product runs either way). Excluded: embedding and position lookups,
    /// norms, biases, activations, and the attention scores and weighted sum, which grow with
    /// context ([`Self::attention_flops_at_context`]).
    pub fn flops_per_token_forward(&self) -> u64 {
        let f = self.flops_by_component(1);
        f.attention + f.mlp + f.head
    }

    /// Keys each layer holds for a sequence of `context` tokens (a sliding layer its window).
    pub fn kv_keys_held(&self, context: usize) -> Vec<u64> {
        (0..self.config.n_layers()).map(|l| self.keys_at(l, context as u64)).collect()
    }

    /// Bytes of [`Self::kv_values_at_context`] at `bytes_per_value` (4 for f32, 2 for f16/bf16).
    pub fn kv_bytes_at_context(&self, context: usize, bytes_per_value: u64) -> u64 {
        self.kv_values_at_context(context) * bytes_per_value
    }

    /// FLOPs per normalised value of this architecture's norm (see [`ComponentFlops::norms`]).
    fn norm_flops(&self) -> u64 {
        match self.arch.norm {
            NormKind::Rms => 4,
            NormKind::Layer => 7,
        }
    }

    /// Values one token's norms normalise: the block's norms, QK-norm over every q and k head,
    /// the embedding, final and MLM-head norms.
    fn normed_values_per_token(&self) -> u64 {
        let c = self.config;
        let a = &self.arch;
        let d = c.d_model() as u64;
        let block = match a.placement {
            NormPlacement::Pre | NormPlacement::Post | NormPlacement::PostSublayer => 2,
            NormPlacement::Sandwich => 4,
        } * d;
        let qk = if a.qk_norm { (c.n_heads() + c.n_kv_heads()) as u64 * c.d_head() as u64 } else { 0 };
        let outer = [a.embed_norm, a.final_norm, a.mlm_head].iter().filter(|&&on| on).count() as u64 * d;
        c.n_layers() as u64 * (block + qk) + outer
    }

    /// Forward FLOPs of the token at position `context − 1`, by component.
    pub fn flops_by_component(&self, context: usize) -> ComponentFlops {
        let c = self.config;
        let (d, v, f) = (c.d_model() as u64, c.vocab_size as u64, c.d_mlp() as u64);
        let (q, kv) = (c.q_dim() as u64, c.kv_dim() as u64);
        let layers = c.n_layers() as u64;
        let embedding = match self.arch.positions {
            Positions::Rope | Positions::None => 0,
            Positions::Learned { token_types } => d + if token_types { d } else { 0 },
        } + if self.arch.embed_scale.is_some() { d } else { 0 };
        let mlp = if self.arch.mlp.gated() { 3 * d * f } else { 2 * d * f };
        let mlm_transform = if self.arch.mlm_head { d * d } else { 0 };
        ComponentFlops {
            embedding,
            attention: 2 * layers * (2 * d * q + 2 * d * kv),
            attention_at_context: self.attention_flops_at_context(context),
            mlp: 2 * layers * mlp,
            norms: self.norm_flops() * self.normed_values_per_token(),
            head: 2 * (v * d + mlm_transform),
        }
    }

    /// Forward FLOPs of attention itself for the token at position `context − 1` (it reads
    /// `context` keys, or a sliding layer's window): per layer and head, 2 × head_dim per key
    /// for q·k and 2 × head_dim per key for the weighted sum of values. Softmax, mask and
    /// scaling are not counted.
    pub fn attention_flops_at_context(&self, context: usize) -> u64 {
        let per_key = 4 * self.config.n_heads() as u64 * self.config.d_head() as u64;
        (0..self.config.n_layers()).map(|l| per_key * self.keys_at(l, context as u64)).sum()
    }

    /// Everything `glassbox arch --json` prints, at a context of `context` tokens.
    pub fn report(&self, context: usize) -> ArchReport {
        let c = self.config;
        let params = self.params();
        ArchReport {
            family: self.arch.family.name(),
            layers: c.n_layers(),
            d_model: c.d_model(),
            d_mlp: c.d_mlp(),
            heads: c.n_heads(),
            kv_heads: c.n_kv_heads(),
            head_dim: c.d_head(),
            vocab: c.vocab_size,
            max_context: c.max_position_embeddings,
            tied_head: self.arch.tied_head,
            params_total: params.total(),
            params,
            kv_values_per_token: self.kv_values_per_token(),
            flops_per_token_forward: self.flops_per_token_forward(),
            context,
            kv_values_at_context: self.kv_values_at_context(context),
            attention_flops_per_token_at_context: self.attention_flops_at_context(context),
            flops_by_component: self.flops_by_component(context),
            layer_types: self.layer_types(),
        }
    }
}

/// The `glassbox arch --json` object (field names are read by scripts: keep them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchReport {
    pub family: &'static str,
    pub layers: usize,
    pub d_model: usize,
    pub d_mlp: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    /// `max_position_embeddings`.
    pub max_context: usize,
    pub tied_head: bool,
    pub params_total: u64,
    pub params: ParamCounts,
    pub kv_values_per_token: u64,
    /// See [`ArchStats::flops_per_token_forward`]: weight matmuls only, LM head included.
    pub flops_per_token_forward: u64,
    /// The context length the two fields below are for.
    pub context: usize,
    pub kv_values_at_context: u64,
    pub attention_flops_per_token_at_context: u64,
    /// Every FLOP of the token at the context, by component ([`ComponentFlops`]).
    pub flops_by_component: ComponentFlops,
    pub layer_types: Vec<LayerType>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
    }

    /// transformers' totals (`scripts/arch-params-golden.py`), exactly, for every config in the
    /// fixture: the real SmolLM2, Gemma 3 270M and Llama 3.1 8B configs, the tiny fixtures and
    /// unseen configs of every family.
    #[test]
    fn arch_stats_params_match_transformers_exactly() {
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join("arch_params.json")).unwrap()).unwrap();
        let models = golden["models"].as_object().unwrap();
        assert!(models.len() >= 15, "{} configs", models.len());
        for (rel, want) in models {
            let config = LlamaConfig::from_file(&fixtures().join(rel)).unwrap();
            let params = ArchStats::new(&config).params();
            assert_eq!(params.total(), want["params_total"].as_u64().unwrap(), "{rel}: {params:?}");
            let ours = serde_json::to_value(params).unwrap();
            for (part, n) in want["params"].as_object().unwrap() {
                assert_eq!(ours[part], *n, "{rel}: component {part}");
            }
        }
    }

    #[test]
    fn arch_stats_llama_8b_and_gemma_windows() {
        let llama = LlamaConfig::from_file(&fixtures().join("configs/llama-3.1-8b.json")).unwrap();
        let s = ArchStats::new(&llama);
        assert_eq!(s.params().total(), 8_030_261_248);
        assert_eq!(s.kv_values_per_token(), 2 * 32 * 8 * 128);
        assert_eq!(s.kv_values_at_context(1000), 1000 * s.kv_values_per_token());

        let gemma = LlamaConfig::from_file(&fixtures().join("configs/gemma-3-270m.json")).unwrap();
        let s = ArchStats::new(&gemma);
        let types = s.layer_types();
        assert_eq!(types[0], LayerType { layer: 0, kind: "sliding", window: Some(512) });
        assert_eq!(types[5], LayerType { layer: 5, kind: "full", window: None });
        let per_row = 2 * 256;
        // 15 sliding layers hold 512 rows, 3 full layers all 4096.
        assert_eq!(s.kv_values_at_context(4096), per_row * (15 * 512 + 3 * 4096));
        assert_eq!(s.kv_values_at_context(100), 100 * s.kv_values_per_token());
        // Tied head: the 262144 × 640 product still runs once per token.
        let p = s.params();
        let matmuls = p.attention + p.mlp + 262_144 * 640;
        assert_eq!(s.flops_per_token_forward(), 2 * matmuls);
        assert_eq!(s.attention_flops_at_context(1), 4 * 4 * 256 * 18);
    }

    /// SmolLM2-135M by hand: d 576, 30 layers, 9 heads and 3 K/V heads of 64, d_mlp 1536,
    /// vocab 49152, RMSNorm before each sublayer, RoPE, tied head.
    #[test]
    fn arch_stats_component_flops_smollm2_by_hand() {
        let c = LlamaConfig::from_file(&fixtures().join("configs/smollm2-135m.json")).unwrap();
        let s = ArchStats::new(&c);
        let f = s.flops_by_component(1000);
        assert_eq!(f.embedding, 0);
        assert_eq!(f.attention, 30 * 2 * (2 * 576 * 576 + 2 * 576 * 192));
        assert_eq!(f.attention, 53_084_160);
        assert_eq!(f.attention_at_context, 30 * 4 * 9 * 64 * 1000);
        assert_eq!(f.mlp, 30 * 2 * 3 * 576 * 1536);
        // Two norms of 576 per layer and the final one, 4 FLOPs per value.
        assert_eq!(f.norms, 4 * (30 * 2 * 576 + 576));
        assert_eq!(f.head, 2 * 49_152 * 576);
        assert_eq!(f.attention + f.mlp + f.head, s.flops_per_token_forward());
        assert_eq!(f.total(), 53_084_160 + 69_120_000 + 159_252_480 + 140_544 + 56_623_104);
        assert_eq!(s.kv_values_per_token(), 2 * 30 * 192);
        assert_eq!(s.kv_bytes_at_context(1000, 2), 2 * 1000 * 2 * 30 * 192);
    }

    /// Gemma 3 270M by hand: d 640, 18 layers (every sixth full, the others a 512 window),
    /// 4 heads and 1 K/V head of 256, d_mlp 2048, vocab 262144, sandwich norms, QK-norm,
    /// the embedding scaled by √640.
    #[test]
    fn arch_stats_component_flops_and_windowed_kv_gemma_by_hand() {
        let c = LlamaConfig::from_file(&fixtures().join("configs/gemma-3-270m.json")).unwrap();
        let s = ArchStats::new(&c);
        let held = s.kv_keys_held(4096);
        assert_eq!(held.iter().filter(|&&k| k == 512).count(), 15);
        assert_eq!(held.iter().filter(|&&k| k == 4096).count(), 3);
        assert_eq!(s.kv_values_at_context(4096), 2 * 256 * (15 * 512 + 3 * 4096));
        assert_eq!(s.kv_bytes_at_context(4096, 4), 4 * 2 * 256 * 19_968);
        let f = s.flops_by_component(4096);
        assert_eq!(f.embedding, 640);
        assert_eq!(f.attention, 18 * 2 * (2 * 640 * 1024 + 2 * 640 * 256));
        assert_eq!(f.attention_at_context, 4 * 4 * 256 * (15 * 512 + 3 * 4096));
        assert_eq!(f.mlp, 18 * 2 * 3 * 640 * 2048);
        // Four norms of 640 and QK-norm over 4 + 1 heads of 256 per layer, the final norm.
        assert_eq!(f.norms, 4 * (18 * (4 * 640 + 5 * 256) + 640));
        assert_eq!(f.head, 2 * 262_144 * 640);
        // Below the window every layer reads every key.
        assert_eq!(s.flops_by_component(100).attention_at_context, 4 * 4 * 256 * 100 * 18);
        let report = serde_json::to_value(s.report(4096)).unwrap();
        assert_eq!(report["flops_by_component"]["norms"], f.norms);
    }
}
