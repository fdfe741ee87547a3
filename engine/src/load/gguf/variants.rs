//! Qwen 2, Qwen 3, OLMo 2 and Phi-3 GGUFs (`general.architecture` `qwen2`, `qwen3`, `olmo2`,
//! `phi3`) → the Hugging Face layout their transformers classes load.
//!
//! As checked against gguf-py 0.19 (`MODEL_TENSORS`, `get_tensor_name_map`) and transformers
//! 5.24's GGUF loader (`integrations/ggml.py`, `TENSOR_PROCESSORS`):
//! - no Q/K permutation to undo: only `LlamaTensorProcessor` un-permutes, and llama.cpp's
//!   converters for these four do not permute (their RoPE is rotate-half in both);
//! - Qwen 2's q/k/v biases are `blk.N.attn_{q,k,v}.bias`; Qwen 3's and OLMo 2's QK-norms are
//!   `attn_q_norm` / `attn_k_norm`; OLMo 2's norms after the sublayers are
//!   `post_attention_norm` (→ `post_attention_layernorm`) and `post_ffw_norm` and it has no
//!   `attn_norm` / `ffn_norm`;
//! - Phi-3 keeps its fused weights: `attn_qkv` is `qkv_proj`, and `ffn_up` is the fused
//!   `gate_up_proj` (there is no `ffn_gate`); 128k `longrope`'s `rope_factors_long`/`_short`
//!   tensors and `rope.scaling.*` keys become config.json's `rope_scaling` (`rope_scaling.rs`).

use serde_json::{Value, json};

use super::GgufError;
use super::reader::GgufFile;

/// The architectures this module converts.
pub(crate) const ARCHS: [&str; 4] = ["qwen2", "qwen3", "olmo2", "phi3"];

/// The transformers class each is loaded as.
fn class(arch: &str) -> &'static str {
    match arch {
        "qwen2" => "Qwen2ForCausalLM",
        "qwen3" => "Qwen3ForCausalLM",
        "olmo2" => "Olmo2ForCausalLM",
        _ => "Phi3ForCausalLM",
    }
}

/// The Hugging Face name of a tensor of `arch`, or None when its class has no such weight.
pub(crate) fn hf_tensor_name(arch: &str, gguf_name: &str) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let (layer, part) = gguf_name.strip_prefix("blk.")?.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (base, kind) = part.rsplit_once('.')?;
    let hf = match (arch, base, kind) {
        ("qwen2", "attn_q" | "attn_k" | "attn_v", "bias") => return Some(format!("model.layers.{layer}.{}.bias", projection(base)?)),
        (_, _, "bias") => return None,
        ("olmo2", "attn_norm" | "ffn_norm", _) => return None,
        ("olmo2", "post_attention_norm", _) => "post_attention_layernorm",
        ("olmo2", "post_ffw_norm", _) => "post_feedforward_layernorm",
        ("qwen3" | "olmo2", "attn_q_norm", _) => "self_attn.q_norm",
        ("qwen3" | "olmo2", "attn_k_norm", _) => "self_attn.k_norm",
        ("phi3", "attn_qkv", _) => "self_attn.qkv_proj",
        ("phi3", "ffn_up", _) => "mlp.gate_up_proj",
        ("phi3", "attn_q" | "attn_k" | "attn_v" | "ffn_gate", _) => return None,
        (_, "attn_norm", _) => "input_layernorm",
        (_, "ffn_norm", _) => "post_attention_layernorm",
        (_, "attn_output", _) => "self_attn.o_proj",
        (_, "ffn_gate", _) => "mlp.gate_proj",
        (_, "ffn_up", _) => "mlp.up_proj",
        (_, "ffn_down", _) => "mlp.down_proj",
        (_, "attn_q" | "attn_k" | "attn_v", _) => projection(base)?,
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.weight"))
}

fn projection(base: &str) -> Option<&'static str> {
    match base {
        "attn_q" => Some("self_attn.q_proj"),
        "attn_k" => Some("self_attn.k_proj"),
        "attn_v" => Some("self_attn.v_proj"),
        _ => None,
    }
}

/// The per-layer tensors (after `model.layers.N.`) a checkpoint of `arch` must hold.
pub(crate) fn layer_tensors(arch: &str) -> &'static [&'static str] {
    const QWEN2: &[&str] = &[
        "input_layernorm.weight",
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.q_proj.bias",
        "self_attn.k_proj.bias",
        "self_attn.v_proj.bias",
        "self_attn.o_proj.weight",
        "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
    ];
    const QWEN3: &[&str] = &[
        "input_layernorm.weight",
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.q_norm.weight",
        "self_attn.k_norm.weight",
        "self_attn.o_proj.weight",
        "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
    ];
    const OLMO2: &[&str] = &[
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.q_norm.weight",
        "self_attn.k_norm.weight",
        "self_attn.o_proj.weight",
        "post_attention_layernorm.weight",
        "post_feedforward_layernorm.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
    ];
    const PHI3: &[&str] = &[
        "input_layernorm.weight",
        "self_attn.qkv_proj.weight",
        "self_attn.o_proj.weight",
        "post_attention_layernorm.weight",
        "mlp.gate_up_proj.weight",
        "mlp.down_proj.weight",
    ];
    match arch {
        "qwen2" => QWEN2,
        "qwen3" => QWEN3,
        "olmo2" => OLMO2,
        _ => PHI3,
    }
}

/// The Llama-form config (built from the same `{arch}.*` keys) made into `arch`'s own:
/// its `model_type` and class, and Phi-3's sliding window and `longrope`.
pub(crate) fn config_json(gguf: &GgufFile, arch: &str, mut cfg: serde_json::Map<String, Value>) -> Result<Value, GgufError> {
    let head_dim = cfg.get("head_dim").and_then(Value::as_u64).unwrap_or_default() as usize;
    match super::rope_scaling::longrope(gguf, arch, head_dim)? {
        Some((scaling, original)) if arch == "phi3" => {
            cfg.insert("rope_scaling".into(), scaling);
            cfg.insert("original_max_position_embeddings".into(), json!(original));
        }
        Some(_) => {
            return Err(GgufError::unsupported(gguf.path(), format!("`rope_factors_*` tensors in a `{arch}` file: only Phi-3's longrope is read")));
        }
        None => {}
    }
    cfg.insert("architectures".into(), json!([class(arch)]));
    cfg.insert("model_type".into(), json!(arch));
    // Qwen 2's q/k/v biases are part of its class, not a config switch.
    cfg.remove("mlp_bias");
    // llama.cpp's converter writes 0 for a Phi-3 config without a window (`sliding_window: null`).
    if arch == "phi3"
        && let Some(window) = gguf.opt_u32("phi3.attention.sliding_window")?.filter(|&w| w > 0)
    {
        cfg.insert("sliding_window".into(), json!(window));
    }
    Ok(Value::Object(cfg))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_gguf_py_per_architecture() {
        let cases = [
            ("qwen2", "blk.1.attn_q.bias", Some("model.layers.1.self_attn.q_proj.bias")),
            ("qwen2", "blk.0.ffn_norm.weight", Some("model.layers.0.post_attention_layernorm.weight")),
            ("qwen3", "blk.0.attn_k_norm.weight", Some("model.layers.0.self_attn.k_norm.weight")),
            ("qwen3", "blk.0.attn_q.bias", None),
            ("olmo2", "blk.2.post_attention_norm.weight", Some("model.layers.2.post_attention_layernorm.weight")),
            ("olmo2", "blk.2.post_ffw_norm.weight", Some("model.layers.2.post_feedforward_layernorm.weight")),
            ("olmo2", "blk.0.attn_norm.weight", None),
            ("phi3", "blk.0.attn_qkv.weight", Some("model.layers.0.self_attn.qkv_proj.weight")),
            ("phi3", "blk.0.ffn_up.weight", Some("model.layers.0.mlp.gate_up_proj.weight")),
            ("phi3", "blk.0.ffn_gate.weight", None),
            ("phi3", "output.weight", Some("lm_head.weight")),
        ];
        for (arch, gguf, hf) in cases {
            assert_eq!(hf_tensor_name(arch, gguf).as_deref(), hf, "{arch} {gguf}");
        }
    }
}
