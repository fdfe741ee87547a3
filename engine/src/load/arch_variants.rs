//! Qwen 2, Qwen 3, OLMo 2 and Phi-3: Llama's recipe (RMSNorm, RoPE, SwiGLU, causal) with a few
//! switches changed. Each difference is a field of [`Arch`]; the pass reads the fields.

use crate::load::arch::{Arch, AttnMask, Family, LayerArch, NormPlacement, llama_unchecked, uniform};
use crate::load::config::LlamaConfig;

/// The description of a `qwen2`, `qwen3`, `olmo2` or `phi3` config, or a one-line reason.
pub(crate) fn of(c: &LlamaConfig) -> Result<Arch, String> {
    let kind = c.model_type.as_deref().unwrap_or_default();
    if let Some(act) = &c.hidden_act
        && act != "silu"
    {
        return Err(format!("`hidden_act` = `{act}` is not supported ({kind} uses silu)"));
    }
    if c.attention_bias || c.mlp_bias {
        return Err(format!("`attention_bias`/`mlp_bias` = true is not supported for {kind} (its released checkpoints have none)"));
    }
    let factor = c.partial_rotary_factor();
    if factor != 1.0 {
        return Err(format!("`partial_rotary_factor` = {factor} is not supported (only 1.0: RoPE over the whole head)"));
    }
    let base = llama_unchecked(c);
    match kind {
        "qwen2" => Ok(Arch { family: Family::Qwen2, qkv_bias: true, layers: qwen_layers(c)?, ..base }),
        "qwen3" => Ok(Arch { family: Family::Qwen3, qk_norm: true, layers: qwen_layers(c)?, ..base }),
        "olmo2" => Ok(Arch { family: Family::Olmo2, placement: NormPlacement::PostSublayer, qk_norm: true, qk_norm_whole: true, ..base }),
        "phi3" => Ok(Arch { family: Family::Phi3, fused_projections: true, layers: phi3_layers(c)?, ..base }),
        other => Err(format!("`model_type` = `{other}` is not one of qwen2, qwen3, olmo2, phi3")),
    }
}

/// Qwen's released checkpoints attend to every earlier key; its optional sliding window
/// (`use_sliding_window`, per `max_window_layers`) is refused rather than run wrong.
fn qwen_layers(c: &LlamaConfig) -> Result<Vec<LayerArch>, String> {
    let sliding_types = c.layer_types.as_ref().is_some_and(|t| t.iter().any(|t| t != "full_attention"));
    if c.use_sliding_window == Some(true) || sliding_types {
        return Err("`use_sliding_window` = true (or a `layer_types` entry other than full_attention) is not supported for Qwen: only full attention".into());
    }
    Ok(uniform(c, AttnMask::Causal))
}

/// transformers gives every Phi-3 layer the config's `sliding_window` when it is set
/// (Phi-3-mini-4k: 2047): key position > query position − window.
fn phi3_layers(c: &LlamaConfig) -> Result<Vec<LayerArch>, String> {
    match c.sliding_window {
        Some(0) => Err("`sliding_window` = 0 must be ≥ 1 (a query must see at least itself)".into()),
        Some(window) => Ok(uniform(c, AttnMask::Sliding { window })),
        None => Ok(uniform(c, AttnMask::Causal)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<LlamaConfig, String> {
        LlamaConfig::from_json(text, Path::new("config.json")).map_err(|e| e.to_string())
    }

    fn config(model_type: &str, extra: &str) -> String {
        format!(
            r#"{{"model_type": "{model_type}", "vocab_size": 97, "hidden_size": 64, "intermediate_size": 160,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32 {extra}}}"#
        )
    }

    #[test]
    fn each_family_sets_its_own_switches() {
        let arch = |t: &str, extra: &str| Arch::from_config(&parse(&config(t, extra)).unwrap()).unwrap();
        let q2 = arch("qwen2", "");
        assert!(q2.qkv_bias && !q2.biases && !q2.qk_norm && q2.placement == NormPlacement::Pre);
        let q3 = arch("qwen3", "");
        assert!(q3.qk_norm && !q3.qk_norm_whole && q3.score_scale == 1.0 / 32f32.sqrt());
        let o2 = arch("olmo2", "");
        assert!(o2.qk_norm && o2.qk_norm_whole && o2.placement == NormPlacement::PostSublayer);
        assert!(!o2.placement.pre() && o2.placement.normed_output());
        let p3 = arch("phi3", r#", "sliding_window": 2047"#);
        assert!(p3.fused_projections && p3.mask(1) == AttnMask::Sliding { window: 2047 });
    }

    #[test]
    fn what_is_not_supported_is_a_one_line_error_naming_the_field() {
        let cases = [
            config("qwen2", r#", "use_sliding_window": true"#),
            config("qwen3", r#", "attention_bias": true"#),
            config("phi3", r#", "partial_rotary_factor": 0.75"#),
            config("phi3", r#", "rope_scaling": {"type": "longrope", "short_factor": [1.0], "long_factor": [1.0]}"#),
            config("olmo2", r#", "hidden_act": "gelu""#),
        ];
        for (text, field) in cases.iter().zip(["use_sliding_window", "attention_bias", "partial_rotary_factor", "longrope", "hidden_act"]) {
            let err = parse(text).unwrap_err();
            assert!(err.contains(field) && !err.contains('\n'), "{field}: {err}");
        }
    }
}
