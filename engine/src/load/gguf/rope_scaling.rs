//! `rope_scaling` for config.json. llama.cpp keeps linear scaling as keys but bakes Llama 3
//! scaling into a `rope_freqs` tensor of per-frequency divisors; transformers wants the
//! parameters instead. We recover them by matching the tensor against the parameter sets
//! Meta ships and refuse anything that does not match, because a wrong RoPE gives fluent
//! nonsense rather than an error.

use serde_json::{Value, json};

use super::GgufError;
use super::config_json::json_f32;
use super::reader::GgufFile;

/// (low_freq_factor, high_freq_factor, original_max_position_embeddings) used by Llama 3.1,
/// 3.2 and 3.3; only the overall factor differs between them.
const LLAMA3_CANDIDATES: &[(f32, f32, u32)] = &[(1.0, 4.0, 8192)];

pub(crate) fn rope_scaling(
    gguf: &GgufFile,
    arch: &str,
    head_dim: u32,
    rope_theta: f32,
) -> Result<Option<Value>, GgufError> {
    let type_key = format!("{arch}.rope.scaling.type");
    let from_keys = match gguf.opt_str(&type_key)? {
        None | Some("none") => None,
        Some("linear") => {
            let factor_key = format!("{arch}.rope.scaling.factor");
            let factor = gguf.get_f32(&factor_key)?;
            if !(factor.is_finite() && factor > 0.0) {
                return Err(GgufError::metadata(
                    gguf.path(),
                    &factor_key,
                    format!("linear RoPE scaling factor {factor} must be a finite number > 0"),
                ));
            }
            Some(json!({"rope_type": "linear", "factor": json_f32(factor)}))
        }
        Some(other) => {
            return Err(GgufError::metadata(
                gguf.path(),
                &type_key,
                format!("RoPE scaling `{other}` is not supported (only linear and Llama 3)"),
            ));
        }
    };
    if gguf.tensor("rope_freqs.weight").is_none() {
        return Ok(from_keys);
    }
    if from_keys.is_some() {
        return Err(GgufError::unsupported(
            gguf.path(),
            "both rope.scaling keys and a rope_freqs tensor are present",
        ));
    }
    let (_, divisors) = gguf.tensor_f32("rope_freqs.weight")?;
    llama3_params(&divisors, head_dim, rope_theta)
        .map(Some)
        .ok_or_else(|| {
            GgufError::tensor(
                gguf.path(),
                "rope_freqs.weight",
                "does not match Llama 3 RoPE scaling with low_freq_factor 1, high_freq_factor 4, \
                 original context 8192; this RoPE variant is not supported",
            )
        })
}

/// The tensors in which llama.cpp's Phi-3 converter stores `longrope`'s factors.
pub(crate) const LONGROPE_TENSORS: [&str; 2] = ["rope_factors_short.weight", "rope_factors_long.weight"];

/// Phi-3 128k / Phi-3.5 as llama.cpp writes them (`conversion/phi.py`): the factors as two
/// f32 tensors, the pretraining context as `{arch}.rope.scaling.original_context_length` and the
/// factor on cos and sin it computed as `{arch}.rope.scaling.attn_factor`; no scaling type key.
/// Gives config.json's `rope_scaling` and top-level `original_max_position_embeddings`, or None
/// when the file has no factors.
pub(crate) fn longrope(gguf: &GgufFile, arch: &str, head_dim: usize) -> Result<Option<(Value, u32)>, GgufError> {
    let present = LONGROPE_TENSORS.iter().filter(|n| gguf.tensor(n).is_some()).count();
    if present == 0 {
        return Ok(None);
    }
    let mut lists = Vec::with_capacity(2);
    for name in LONGROPE_TENSORS {
        if gguf.tensor(name).is_none() {
            return Err(GgufError::tensor(gguf.path(), name, "is missing: longrope needs both rope_factors_short and rope_factors_long"));
        }
        let (_, factors) = gguf.tensor_f32(name)?;
        if factors.len() * 2 != head_dim || factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
            return Err(GgufError::tensor(
                gguf.path(),
                name,
                format!("holds {} factors; head_dim {head_dim} needs {} finite numbers > 0", factors.len(), head_dim / 2),
            ));
        }
        lists.push(factors.into_iter().map(json_f32).collect::<Vec<_>>());
    }
    let original_key = format!("{arch}.rope.scaling.original_context_length");
    let original = gguf.get_u32(&original_key)?;
    if original == 0 {
        return Err(GgufError::metadata(gguf.path(), &original_key, "must be ≥ 1"));
    }
    let mut scaling = json!({"type": "longrope", "short_factor": lists[0], "long_factor": lists[1]});
    if let Some(attn) = gguf.opt_f32(&format!("{arch}.rope.scaling.attn_factor"))? {
        scaling["attention_factor"] = json_f32(attn);
    }
    Ok(Some((scaling, original)))
}

pub(crate) fn llama3_params(divisors: &[f32], head_dim: u32, theta: f32) -> Option<Value> {
    if divisors.len() * 2 != head_dim as usize {
        return None;
    }
    let factor = divisors.iter().copied().fold(1.0f32, f32::max);
    LLAMA3_CANDIDATES.iter().find_map(|&(low, high, orig)| {
        let expected = llama3_divisors(head_dim, theta, factor, low, high, orig);
        let matches = expected
            .iter()
            .zip(divisors)
            .all(|(e, g)| (e - g).abs() <= 1e-3 * e.abs().max(1.0));
        matches.then(|| {
            json!({
                "rope_type": "llama3",
                "factor": json_f32(factor),
                "low_freq_factor": json_f32(low),
                "high_freq_factor": json_f32(high),
                "original_max_position_embeddings": orig,
            })
        })
    })
}

/// transformers' `_compute_llama3_parameters`, expressed as the divisor llama.cpp stores.
fn llama3_divisors(
    head_dim: u32,
    theta: f32,
    factor: f32,
    low: f32,
    high: f32,
    orig: u32,
) -> Vec<f32> {
    let orig = orig as f64;
    let (low, high, factor) = (f64::from(low), f64::from(high), f64::from(factor));
    let low_wavelen = orig / low;
    let high_wavelen = orig / high;
    (0..head_dim / 2)
        .map(|i| {
            let inv_freq = 1.0 / f64::from(theta).powf(f64::from(2 * i) / f64::from(head_dim));
            let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
            let d = if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (orig / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            };
            d as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_params_recovered_from_their_own_divisors() {
        let divisors = llama3_divisors(64, 500_000.0, 32.0, 1.0, 4.0, 8192);
        let v = llama3_params(&divisors, 64, 500_000.0);
        assert_eq!(
            v,
            Some(
                json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
            )
        );
    }

    #[test]
    fn llama3_params_refuse_unknown_divisors() {
        let mut divisors = llama3_divisors(64, 500_000.0, 8.0, 1.0, 4.0, 8192);
        divisors[20] *= 1.5;
        assert_eq!(llama3_params(&divisors, 64, 500_000.0), None);
    }
}
