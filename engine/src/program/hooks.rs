//! Typed hook keys with TransformerLens string forms (`blocks.3.attn.hook_pattern`).
//!
//! Code uses [`HookKey`]; people read its `Display` form; files and the CLI parse it back.

use std::fmt;
use std::str::FromStr;

/// A hook inside decoder block `L` (the part after `blocks.L.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockHook {
    ResidPre,
    Ln1Scale,
    Ln1Normalized,
    Q,
    K,
    V,
    /// Gemma: q and k after their per-head RMSNorm, before RoPE.
    QNormed,
    KNormed,
    RotQ,
    RotK,
    /// Scaled q·k before the causal mask. A Glassbox extension: TransformerLens has none.
    RawScores,
    AttnScores,
    Pattern,
    Z,
    AttnOut,
    /// Gemma: the attention output normed before it is added (sandwich norm).
    Ln1PostScale,
    Ln1PostNormalized,
    /// BERT: `resid_pre + attn_out` before the LayerNorm that makes it `resid_mid`.
    ResidMidPreNorm,
    ResidMid,
    Ln2Scale,
    Ln2Normalized,
    MlpPre,
    MlpPreLinear,
    MlpPost,
    MlpOut,
    Ln2PostScale,
    Ln2PostNormalized,
    /// BERT: `resid_mid + mlp_out` before the LayerNorm that makes it `resid_post`.
    ResidPostPreNorm,
    ResidPost,
}

impl BlockHook {
    /// Every block hook of every family, in the order a block produces them.
    pub const ALL: [BlockHook; 29] = [
        BlockHook::ResidPre,
        BlockHook::Ln1Scale,
        BlockHook::Ln1Normalized,
        BlockHook::Q,
        BlockHook::K,
        BlockHook::V,
        BlockHook::QNormed,
        BlockHook::KNormed,
        BlockHook::RotQ,
        BlockHook::RotK,
        BlockHook::RawScores,
        BlockHook::AttnScores,
        BlockHook::Pattern,
        BlockHook::Z,
        BlockHook::AttnOut,
        BlockHook::Ln1PostScale,
        BlockHook::Ln1PostNormalized,
        BlockHook::ResidMidPreNorm,
        BlockHook::ResidMid,
        BlockHook::Ln2Scale,
        BlockHook::Ln2Normalized,
        BlockHook::MlpPre,
        BlockHook::MlpPreLinear,
        BlockHook::MlpPost,
        BlockHook::MlpOut,
        BlockHook::Ln2PostScale,
        BlockHook::Ln2PostNormalized,
        BlockHook::ResidPostPreNorm,
        BlockHook::ResidPost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BlockHook::ResidPre => "hook_resid_pre",
            BlockHook::Ln1Scale => "ln1.hook_scale",
            BlockHook::Ln1Normalized => "ln1.hook_normalized",
            BlockHook::Q => "attn.hook_q",
            BlockHook::K => "attn.hook_k",
            BlockHook::V => "attn.hook_v",
            BlockHook::QNormed => "attn.hook_q_normed",
            BlockHook::KNormed => "attn.hook_k_normed",
            BlockHook::RotQ => "attn.hook_rot_q",
            BlockHook::RotK => "attn.hook_rot_k",
            BlockHook::RawScores => "attn.hook_raw_scores",
            BlockHook::AttnScores => "attn.hook_attn_scores",
            BlockHook::Pattern => "attn.hook_pattern",
            BlockHook::Z => "attn.hook_z",
            BlockHook::AttnOut => "hook_attn_out",
            BlockHook::Ln1PostScale => "ln1_post.hook_scale",
            BlockHook::Ln1PostNormalized => "ln1_post.hook_normalized",
            BlockHook::ResidMidPreNorm => "hook_resid_mid_pre_norm",
            BlockHook::ResidMid => "hook_resid_mid",
            BlockHook::Ln2Scale => "ln2.hook_scale",
            BlockHook::Ln2Normalized => "ln2.hook_normalized",
            BlockHook::MlpPre => "mlp.hook_pre",
            BlockHook::MlpPreLinear => "mlp.hook_pre_linear",
            BlockHook::MlpPost => "mlp.hook_post",
            BlockHook::MlpOut => "hook_mlp_out",
            BlockHook::Ln2PostScale => "ln2_post.hook_scale",
            BlockHook::Ln2PostNormalized => "ln2_post.hook_normalized",
            BlockHook::ResidPostPreNorm => "hook_resid_post_pre_norm",
            BlockHook::ResidPost => "hook_resid_post",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// Any recorded tensor of one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookKey {
    Embed,
    /// GPT-2, BERT: the learned position rows added to the token embedding.
    PosEmbed,
    /// BERT: the token-type (segment) rows.
    TokenTypeEmbed,
    /// BERT: the LayerNorm over the summed embeddings.
    EmbedLnScale,
    EmbedLnNormalized,
    Block(usize, BlockHook),
    LnFinalScale,
    LnFinalNormalized,
    /// BERT: the MLM head's dense + GELU + LayerNorm, before the decoder.
    MlmTransform,
    Logits,
    Probs,
}

impl HookKey {
    pub fn block(layer: usize, hook: BlockHook) -> Self {
        HookKey::Block(layer, hook)
    }

    pub fn layer(self) -> Option<usize> {
        match self {
            HookKey::Block(l, _) => Some(l),
            _ => None,
        }
    }

    /// The key with the layer index dropped, for filters like "every pattern".
    pub fn kind(self) -> HookKind {
        match self {
            HookKey::Embed => HookKind::Embed,
            HookKey::PosEmbed => HookKind::PosEmbed,
            HookKey::TokenTypeEmbed => HookKind::TokenTypeEmbed,
            HookKey::EmbedLnScale => HookKind::EmbedLnScale,
            HookKey::EmbedLnNormalized => HookKind::EmbedLnNormalized,
            HookKey::MlmTransform => HookKind::MlmTransform,
            HookKey::Block(_, h) => HookKind::Block(h),
            HookKey::LnFinalScale => HookKind::LnFinalScale,
            HookKey::LnFinalNormalized => HookKind::LnFinalNormalized,
            HookKey::Logits => HookKind::Logits,
            HookKey::Probs => HookKind::Probs,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookKind {
    Embed,
    /// GPT-2, BERT: the learned position rows added to the token embedding.
    PosEmbed,
    /// BERT: the token-type (segment) rows.
    TokenTypeEmbed,
    /// BERT: the LayerNorm over the summed embeddings.
    EmbedLnScale,
    EmbedLnNormalized,
    Block(BlockHook),
    LnFinalScale,
    LnFinalNormalized,
    /// BERT: the MLM head's dense + GELU + LayerNorm, before the decoder.
    MlmTransform,
    Logits,
    Probs,
}

impl HookKind {
    /// The key of this kind in block `layer` (ignored for the hooks outside the blocks).
    pub fn at(self, layer: usize) -> HookKey {
        match self {
            HookKind::Embed => HookKey::Embed,
            HookKind::PosEmbed => HookKey::PosEmbed,
            HookKind::TokenTypeEmbed => HookKey::TokenTypeEmbed,
            HookKind::EmbedLnScale => HookKey::EmbedLnScale,
            HookKind::EmbedLnNormalized => HookKey::EmbedLnNormalized,
            HookKind::MlmTransform => HookKey::MlmTransform,
            HookKind::Block(h) => HookKey::Block(layer, h),
            HookKind::LnFinalScale => HookKey::LnFinalScale,
            HookKind::LnFinalNormalized => HookKey::LnFinalNormalized,
            HookKind::Logits => HookKey::Logits,
            HookKind::Probs => HookKey::Probs,
        }
    }

    /// The hooks outside the blocks, with their names.
    const TOP: [(HookKind, &'static str); 10] = [
        (HookKind::Embed, "hook_embed"),
        (HookKind::PosEmbed, "hook_pos_embed"),
        (HookKind::TokenTypeEmbed, "hook_token_type_embed"),
        (HookKind::EmbedLnScale, "embed.ln.hook_scale"),
        (HookKind::EmbedLnNormalized, "embed.ln.hook_normalized"),
        (HookKind::LnFinalScale, "ln_final.hook_scale"),
        (HookKind::LnFinalNormalized, "ln_final.hook_normalized"),
        (HookKind::MlmTransform, "hook_mlm_transform"),
        (HookKind::Logits, "hook_logits"),
        (HookKind::Probs, "hook_probs"),
    ];

    /// Parses a layer-free name: `hook_embed`, `attn.hook_pattern`, `hook_logits`, …
    pub fn from_name(name: &str) -> Option<Self> {
        Self::TOP
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(k, _)| *k)
            .or_else(|| BlockHook::from_name(name).map(HookKind::Block))
    }

    /// The name without the `blocks.L.` prefix.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Block(h) => h.name(),
            top => Self::TOP.iter().find(|(k, _)| *k == top).map_or("", |(_, n)| n),
        }
    }
}

impl fmt::Display for HookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookKey::Block(l, h) => write!(f, "blocks.{l}.{}", h.name()),
            top => f.write_str(top.kind().name()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a hook name (expected e.g. `hook_embed`, `blocks.3.attn.hook_pattern`, `hook_logits`)")]
pub struct ParseHookError(pub String);

impl FromStr for HookKey {
    type Err = ParseHookError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseHookError(s.to_string());
        if let Some(rest) = s.strip_prefix("blocks.") {
            let (layer, name) = rest.split_once('.').ok_or_else(bad)?;
            let layer: usize = layer.parse().map_err(|_| bad())?;
            let hook = BlockHook::from_name(name).ok_or_else(bad)?;
            return Ok(HookKey::Block(layer, hook));
        }
        match HookKind::from_name(s).ok_or_else(bad)? {
            HookKind::Block(_) => Err(bad()),
            top => Ok(top.at(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_through_its_string_form() {
        let keys = HookKind::TOP.iter().map(|(k, _)| k.at(0)).chain((0..3).flat_map(|l| BlockHook::ALL.map(|h| HookKey::Block(l, h))));
        for key in keys {
            let s = key.to_string();
            assert_eq!(s.parse::<HookKey>().unwrap(), key, "{s}");
        }
        assert_eq!(
            HookKey::block(3, BlockHook::Pattern).to_string(),
            "blocks.3.attn.hook_pattern"
        );
    }

    #[test]
    fn bad_names_are_errors() {
        for s in ["blocks.x.attn.hook_q", "blocks.1.attn.hook_nope", "attn.hook_q", "hook_nope"] {
            assert!(s.parse::<HookKey>().is_err(), "{s}");
        }
    }
}
