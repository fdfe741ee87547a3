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
    RotQ,
    RotK,
    /// Scaled q·k before the causal mask. A Glassbox extension: TransformerLens has none.
    RawScores,
    AttnScores,
    Pattern,
    Z,
    AttnOut,
    ResidMid,
    Ln2Scale,
    Ln2Normalized,
    MlpPre,
    MlpPreLinear,
    MlpPost,
    MlpOut,
    ResidPost,
}

impl BlockHook {
    pub const ALL: [BlockHook; 21] = [
        BlockHook::ResidPre,
        BlockHook::Ln1Scale,
        BlockHook::Ln1Normalized,
        BlockHook::Q,
        BlockHook::K,
        BlockHook::V,
        BlockHook::RotQ,
        BlockHook::RotK,
        BlockHook::RawScores,
        BlockHook::AttnScores,
        BlockHook::Pattern,
        BlockHook::Z,
        BlockHook::AttnOut,
        BlockHook::ResidMid,
        BlockHook::Ln2Scale,
        BlockHook::Ln2Normalized,
        BlockHook::MlpPre,
        BlockHook::MlpPreLinear,
        BlockHook::MlpPost,
        BlockHook::MlpOut,
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
            BlockHook::RotQ => "attn.hook_rot_q",
            BlockHook::RotK => "attn.hook_rot_k",
            BlockHook::RawScores => "attn.hook_raw_scores",
            BlockHook::AttnScores => "attn.hook_attn_scores",
            BlockHook::Pattern => "attn.hook_pattern",
            BlockHook::Z => "attn.hook_z",
            BlockHook::AttnOut => "hook_attn_out",
            BlockHook::ResidMid => "hook_resid_mid",
            BlockHook::Ln2Scale => "ln2.hook_scale",
            BlockHook::Ln2Normalized => "ln2.hook_normalized",
            BlockHook::MlpPre => "mlp.hook_pre",
            BlockHook::MlpPreLinear => "mlp.hook_pre_linear",
            BlockHook::MlpPost => "mlp.hook_post",
            BlockHook::MlpOut => "hook_mlp_out",
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
    Block(usize, BlockHook),
    LnFinalScale,
    LnFinalNormalized,
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
            HookKey::Block(_, h) => HookKind::Block(h),
            HookKey::LnFinalScale => HookKind::LnFinalScale,
            HookKey::LnFinalNormalized => HookKind::LnFinalNormalized,
            HookKey::Logits => HookKind::Logits,
            HookKey::Probs => HookKind::Probs,
        }
    }

    /// Every key of an `n_layers` model, in forward order.
    pub fn all(n_layers: usize) -> Vec<HookKey> {
        let mut keys = vec![HookKey::Embed];
        for l in 0..n_layers {
            keys.extend(BlockHook::ALL.iter().map(|&h| HookKey::Block(l, h)));
        }
        keys.extend([
            HookKey::LnFinalScale,
            HookKey::LnFinalNormalized,
            HookKey::Logits,
            HookKey::Probs,
        ]);
        keys
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookKind {
    Embed,
    Block(BlockHook),
    LnFinalScale,
    LnFinalNormalized,
    Logits,
    Probs,
}

impl HookKind {
    /// The key of this kind in block `layer` (ignored for the hooks outside the blocks).
    pub fn at(self, layer: usize) -> HookKey {
        match self {
            HookKind::Embed => HookKey::Embed,
            HookKind::Block(h) => HookKey::Block(layer, h),
            HookKind::LnFinalScale => HookKey::LnFinalScale,
            HookKind::LnFinalNormalized => HookKey::LnFinalNormalized,
            HookKind::Logits => HookKey::Logits,
            HookKind::Probs => HookKey::Probs,
        }
    }

    /// Parses a layer-free name: `hook_embed`, `attn.hook_pattern`, `hook_logits`, …
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hook_embed" => Some(HookKind::Embed),
            "ln_final.hook_scale" => Some(HookKind::LnFinalScale),
            "ln_final.hook_normalized" => Some(HookKind::LnFinalNormalized),
            "hook_logits" => Some(HookKind::Logits),
            "hook_probs" => Some(HookKind::Probs),
            other => BlockHook::from_name(other).map(HookKind::Block),
        }
    }
}

impl fmt::Display for HookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookKey::Embed => f.write_str("hook_embed"),
            HookKey::Block(l, h) => write!(f, "blocks.{l}.{}", h.name()),
            HookKey::LnFinalScale => f.write_str("ln_final.hook_scale"),
            HookKey::LnFinalNormalized => f.write_str("ln_final.hook_normalized"),
            HookKey::Logits => f.write_str("hook_logits"),
            HookKey::Probs => f.write_str("hook_probs"),
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
            HookKind::Embed => Ok(HookKey::Embed),
            HookKind::LnFinalScale => Ok(HookKey::LnFinalScale),
            HookKind::LnFinalNormalized => Ok(HookKey::LnFinalNormalized),
            HookKind::Logits => Ok(HookKey::Logits),
            HookKind::Probs => Ok(HookKey::Probs),
            HookKind::Block(_) => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_through_its_string_form() {
        for key in HookKey::all(3) {
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
