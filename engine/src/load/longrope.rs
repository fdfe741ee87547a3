//! Phi-3's `longrope` (Phi-3-mini-128k, Phi-3.5-mini), as transformers 5.24 runs it
//! (`_compute_longrope_parameters` and `dynamic_rope_update`): two sets of per-frequency
//! divisors, `short_factor` while a pass ends within the context the model was pretrained on and
//! `long_factor` once it ends past it, and cos and sin both multiplied by an attention factor.
//!
//! The choice is made per forward call on `max(position_ids) + 1`: a pass continued from the KV
//! cache picks by where it ends, and the keys already cached keep the rotation they were given,
//! as transformers' `generate` does.

use super::config::{LlamaConfig, RopeParameters};

/// Phi-3's class default for `original_max_position_embeddings`: transformers gives a Phi-3
/// config this top-level value over the one inside `rope_scaling` when the file has none.
const PHI3_ORIGINAL_CONTEXT: usize = 4096;

/// The RoPE one pass applies to one block: the frequencies, and the factor on cos and sin
/// (longrope's attention factor; 1 for every other kind).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope<'a> {
    pub inv_freq: &'a [f32],
    pub scale: f32,
}

impl<'a> Rope<'a> {
    /// Frequencies alone, cos and sin as they are.
    pub fn plain(inv_freq: &'a [f32]) -> Self {
        Rope { inv_freq, scale: 1.0 }
    }
}

/// What longrope adds to the short table held as the model's `inv_freq`.
#[derive(Debug, Clone, PartialEq)]
pub struct LongRope {
    /// The frequencies divided by `long_factor`.
    pub long_inv_freq: Vec<f32>,
    /// A pass that ends past this many positions uses the long frequencies.
    pub original_max_position_embeddings: usize,
    /// Multiplies cos and sin at every length.
    pub attention_factor: f32,
}

impl LongRope {
    /// The RoPE of a pass over positions `..end`: short frequencies within the original
    /// context, long ones past it.
    pub fn pick<'a>(&'a self, short: &'a [f32], end: usize) -> Rope<'a> {
        let inv_freq = if end > self.original_max_position_embeddings { &self.long_inv_freq } else { short };
        Rope { inv_freq, scale: self.attention_factor }
    }
}

/// Whether a pass of `n` new positions after `cache_len` cached ones must instead run the whole
/// sequence again: it crosses the original context while the cache still holds keys the short
/// factors rotated. transformers' Phi-3 `generate` drops its cache there
/// (`prepare_inputs_for_generation`), so every later token sees keys rotated by the long ones.
pub fn cache_goes_stale(longrope: Option<&LongRope>, cache_len: usize, n: usize) -> bool {
    longrope.is_some_and(|l| cache_len > 0 && cache_len <= l.original_max_position_embeddings && cache_len + n > l.original_max_position_embeddings)
}

/// A pass's RoPE given the short (or only) table and longrope where the model has it.
pub fn pick<'a>(inv_freq: &'a [f32], longrope: Option<&'a LongRope>, end: usize) -> Rope<'a> {
    match longrope {
        Some(l) => l.pick(inv_freq, end),
        None => Rope::plain(inv_freq),
    }
}

/// The numbers `rope_kind` reads off a `longrope` entry, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongRopeParams {
    pub original_max_position_embeddings: usize,
    pub attention_factor: f64,
}

/// `original_max_position_embeddings` and the attention factor of a `longrope` entry, or why
/// they cannot be had.
pub(crate) fn params(c: &LlamaConfig, p: &RopeParameters) -> Result<LongRopeParams, String> {
    let phi3 = c.model_type.as_deref() == Some("phi3");
    let original = c
        .original_max_position_embeddings
        .or(if phi3 { Some(PHI3_ORIGINAL_CONTEXT) } else { p.original_max_position_embeddings })
        .unwrap_or(c.max_position_embeddings);
    if original == 0 {
        return Err("longrope's `original_max_position_embeddings` must be ≥ 1".into());
    }
    // transformers: `factor` is the context's growth (Phi-3-mini-128k: 131072 / 4096 = 32).
    let factor = p.factor.unwrap_or(c.max_position_embeddings as f64 / original as f64);
    let attention_factor = match p.attention_factor {
        Some(a) => a,
        None if factor <= 1.0 => 1.0,
        None => (1.0 + factor.ln() / (original as f64).ln()).sqrt(),
    };
    if !(attention_factor.is_finite() && attention_factor > 0.0) {
        return Err(format!("longrope's attention factor {attention_factor} must be a finite number > 0 (check `attention_factor` / `factor`)"));
    }
    Ok(LongRopeParams { original_max_position_embeddings: original, attention_factor })
}

/// Both factor lists, each one per rotated pair (`head_dim / 2`) of finite numbers > 0.
pub(crate) fn factors<'a>(p: &'a RopeParameters, d_head: usize) -> Result<(&'a [f64], &'a [f64]), String> {
    let check = |list: Option<&'a Vec<f64>>, name: &str| -> Result<&'a [f64], String> {
        let list = list.ok_or_else(|| format!("rope scaling `longrope` needs `{name}`"))?;
        if list.len() * 2 != d_head {
            return Err(format!("longrope `{name}` has {} entries; head_dim {d_head} needs {}", list.len(), d_head / 2));
        }
        match list.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
            Some(bad) => Err(format!("longrope `{name}` holds {bad}; every factor must be a finite number > 0")),
            None => Ok(list),
        }
    };
    Ok((check(p.short_factor.as_ref(), "short_factor")?, check(p.long_factor.as_ref(), "long_factor")?))
}

/// `1 / (factor[i] · θ^(2i/d))`, transformers' longrope frequencies (the exponent in f32 as
/// it computes it, the rest in f64 then f32).
pub fn inv_freq(d_head: usize, theta: f64, factors: &[f64]) -> Vec<f32> {
    factors
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            let exponent = (2 * i) as f32 / d_head as f32;
            (1.0 / (f * theta.powf(f64::from(exponent)))) as f32
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load::config::RopeKind;

    /// Phi-3-mini-128k-instruct's config.json shape (4.x keys), shrunk to 4 heads of 8.
    fn phi3(extra: &str, scaling: &str) -> Result<LlamaConfig, String> {
        let text = format!(
            r#"{{"model_type": "phi3", "vocab_size": 97, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 131072,
            "rope_theta": 10000.0 {extra}, "rope_scaling": {{"type": "longrope" {scaling}}}}}"#
        );
        LlamaConfig::from_json(&text, Path::new("config.json")).map_err(|e| e.to_string())
    }
    const FACTORS: &str = r#", "short_factor": [1.0, 1.5, 2.0, 4.0], "long_factor": [2.0, 3.0, 8.0, 16.0]"#;

    #[test]
    fn the_128k_form_reads_both_tables_and_the_papers_attention_factor() {
        let c = phi3(r#", "original_max_position_embeddings": 4096"#, FACTORS).unwrap();
        let want = (1.0 + 32f64.ln() / 4096f64.ln()).sqrt();
        assert!(matches!(c.rope_kind().unwrap(), RopeKind::LongRope { original_max_position_embeddings: 4096, attention_factor } if attention_factor == want));
        let long = c.longrope().unwrap();
        assert_eq!(c.inv_freq(), inv_freq(8, 10_000.0, &[1.0, 1.5, 2.0, 4.0]));
        assert_eq!(long.long_inv_freq, inv_freq(8, 10_000.0, &[2.0, 3.0, 8.0, 16.0]));
        assert_eq!(c.inv_freq()[0], 1.0);
        assert_eq!(long.long_inv_freq[3], (1.0 / (16.0 * 10_000f64.powf(0.75))) as f32);
        let inv = c.inv_freq();
        assert_eq!(long.pick(&inv, 4096).inv_freq, &inv[..], "a pass ending at the original context stays short");
        assert_eq!(long.pick(&inv, 4097).inv_freq, &long.long_inv_freq[..]);
        assert_eq!(long.pick(&inv, 1).scale, want as f32);
    }

    #[test]
    fn a_given_attention_factor_wins_and_phi3_falls_back_to_4096() {
        let c = phi3("", &format!(r#"{FACTORS}, "attention_factor": 1.5, "original_max_position_embeddings": 64"#)).unwrap();
        let long = c.longrope().unwrap();
        assert_eq!((long.attention_factor, long.original_max_position_embeddings), (1.5, 4096));
    }

    #[test]
    fn bad_factor_lists_are_one_line_errors_naming_the_field() {
        for (scaling, field) in [
            (r#", "short_factor": [1.0, 1.0, 1.0], "long_factor": [1.0, 1.0, 1.0, 1.0]"#, "short_factor"),
            (r#", "short_factor": [1.0, 1.0, 1.0, 1.0], "long_factor": [1.0, 0.0, 1.0, 1.0]"#, "long_factor"),
            (r#", "short_factor": [1.0, 1.0, 1.0, 1.0]"#, "long_factor"),
            (&format!(r#"{FACTORS}, "attention_factor": -1.0"#), "attention_factor"),
        ] {
            let err = phi3("", scaling).unwrap_err();
            assert!(err.contains(field) && !err.contains('\n'), "{field}: {err}");
        }
    }

    #[test]
    fn the_cache_goes_stale_only_when_a_pass_crosses_the_original_context() {
        let l = LongRope { long_inv_freq: vec![1.0], original_max_position_embeddings: 16, attention_factor: 1.0 };
        let stale = |cache_len, n| cache_goes_stale(Some(&l), cache_len, n);
        assert!(stale(16, 1) && stale(12, 5) && stale(1, 16));
        assert!(!stale(0, 24) && !stale(15, 1) && !stale(17, 1) && !stale(12, 4));
        assert!(!cache_goes_stale(None, 16, 1));
    }

    #[test]
    fn the_5x_form_reads_the_same() {
        let text = r#"{"model_type": "phi3", "vocab_size": 97, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 64,
            "original_max_position_embeddings": 16, "rope_parameters": {"rope_type": "longrope",
            "rope_theta": 500.0, "partial_rotary_factor": 1.0, "original_max_position_embeddings": 16,
            "short_factor": [1.0, 1.5, 2.0, 4.0], "long_factor": [2.0, 3.0, 8.0, 16.0]}}"#;
        let c = LlamaConfig::from_json(text, Path::new("config.json")).unwrap();
        let long = c.longrope().unwrap();
        assert_eq!(long.original_max_position_embeddings, 16);
        assert_eq!(long.attention_factor, (1.0 + 4f64.ln() / 16f64.ln()).sqrt() as f32);
        assert_eq!(c.inv_freq(), inv_freq(8, 500.0, &[1.0, 1.5, 2.0, 4.0]));
    }
}
