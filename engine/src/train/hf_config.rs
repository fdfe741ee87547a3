//! `config.json` of a trained model in its family's own form, the one transformers 5.x reads
//! (`GPT2LMHeadModel`'s `n_embd`…, `BertForMaskedLM`, `Gemma3ForCausalLM` with its layer types
//! and per-type RoPE, Llama, Qwen 2/3, OLMo 2, Phi-3), so the folder `save_checkpoint` writes
//! opens there too. A recipe variant no transformers class runs (a Llama with post-norm, no
//! positions, learned positions or an ungated MLP) gets Llama's config and its Glassbox
//! `glassbox_variant` object, which only Glassbox reads ([`transformers_runs`] says which).

use serde_json::{Map, Value, json};

use crate::load::arch::{Arch, AttnMask, Family, MlpKind, NormKind, NormPlacement, Positions};
use crate::load::config::{LlamaConfig, RopeKind};

/// The family's config.json for `c`.
pub fn hf_config_json(c: &LlamaConfig) -> Value {
    let arch = c.arch();
    let mut v = match arch.family {
        Family::Gpt2 => gpt2(c),
        Family::Bert => bert(c),
        Family::Gemma3 => gemma3(c, &arch),
        Family::Llama | Family::Qwen2 | Family::Qwen3 | Family::Olmo2 | Family::Phi3 => llama_like(c, &arch),
    };
    if let Some(obj) = v.as_object_mut() {
        obj.extend(common(c));
        if let Some(variant) = variant_extension(c) {
            obj.insert("glassbox_variant".into(), variant);
        }
    }
    v
}

/// Whether a transformers class computes what this config describes: every family as
/// released; not a Llama whose switches differ from Llama's own recipe.
pub fn transformers_runs(c: &LlamaConfig) -> bool {
    let a = c.arch();
    a.family != Family::Llama || is_plain_llama(&a)
}

fn is_plain_llama(a: &Arch) -> bool {
    a.norm == NormKind::Rms
        && a.placement == NormPlacement::Pre
        && a.positions == Positions::Rope
        && a.mlp == MlpKind::SwiGlu
        && !(a.biases || a.qkv_bias || a.qk_norm || a.fused_projections || a.embed_norm || a.mlm_head)
        && a.final_norm
        && a.embed_scale.is_none()
}

/// The Glassbox extension object a variant's config carries (whatever `LlamaConfig` holds
/// under `glassbox_variant`), read through serde so every field it gains is written back.
fn variant_extension(c: &LlamaConfig) -> Option<Value> {
    let v = serde_json::to_value(c).ok()?;
    v.get("glassbox_variant").filter(|x| !x.is_null()).cloned()
}

/// Keys every family's config has.
fn common(c: &LlamaConfig) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("vocab_size".into(), c.vocab_size.into());
    m.insert("bos_token_id".into(), json!(c.bos_token_id));
    m.insert("eos_token_id".into(), json!(c.eos_token_id));
    m.insert("pad_token_id".into(), json!(c.pad_token_id));
    m.insert("initializer_range".into(), json!(0.02));
    m.insert("use_cache".into(), json!(true));
    m.insert("dtype".into(), json!("float32"));
    m.insert("tie_word_embeddings".into(), json!(c.arch().tied_head));
    m
}

/// One `rope_parameters` entry: θ and the scaling (llama3, linear) the config has.
fn rope_entry(c: &LlamaConfig, theta: f64, scaled: bool) -> Value {
    let mut e = json!({"rope_theta": theta, "rope_type": "default"});
    match c.rope_kind() {
        Ok(RopeKind::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) if scaled => {
            e = json!({"rope_theta": theta, "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor, "original_max_position_embeddings": original_max_position_embeddings});
        }
        Ok(RopeKind::Linear { factor }) if scaled => e = json!({"rope_theta": theta, "rope_type": "linear", "factor": factor}),
        Ok(RopeKind::LongRope { original_max_position_embeddings, attention_factor }) if scaled => {
            if let Some((short, long)) = c.longrope_factors() {
                e = json!({"rope_theta": theta, "rope_type": "longrope", "short_factor": short, "long_factor": long,
                    "original_max_position_embeddings": original_max_position_embeddings, "attention_factor": attention_factor});
            }
        }
        _ => {}
    }
    e
}

/// Llama, Qwen 2, Qwen 3, OLMo 2, Phi-3 (and a Llama variant): the same keys, the family's class.
fn llama_like(c: &LlamaConfig, arch: &Arch) -> Value {
    let (class, model_type) = match arch.family {
        Family::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        Family::Qwen3 => ("Qwen3ForCausalLM", "qwen3"),
        Family::Olmo2 => ("Olmo2ForCausalLM", "olmo2"),
        Family::Phi3 => ("Phi3ForCausalLM", "phi3"),
        _ => ("LlamaForCausalLM", "llama"),
    };
    let mut rope = rope_entry(c, c.rope_theta(), true);
    let mut v = json!({
        "architectures": [class],
        "model_type": model_type,
        "hidden_size": c.d_model(),
        "intermediate_size": c.d_mlp(),
        "num_hidden_layers": c.n_layers(),
        "num_attention_heads": c.n_heads(),
        "num_key_value_heads": c.n_kv_heads(),
        "head_dim": c.d_head(),
        // A variant's activation lives in `glassbox_variant`: the family's loader reads silu here.
        "hidden_act": "silu",
        "max_position_embeddings": c.max_position_embeddings,
        "rms_norm_eps": c.rms_norm_eps,
        "attention_dropout": 0.0,
    });
    let Some(obj) = v.as_object_mut() else { return v };
    // Qwen 2 always has its q/k/v biases and Phi-3 none: their configs have no switch.
    if !matches!(arch.family, Family::Qwen2 | Family::Phi3) {
        obj.insert("attention_bias".into(), json!(false));
    }
    if let Some(eps) = c.layer_norm_eps {
        obj.insert("layer_norm_eps".into(), json!(eps));
    }
    match arch.family {
        Family::Qwen2 | Family::Qwen3 => {
            obj.insert("use_sliding_window".into(), json!(false));
            obj.insert("sliding_window".into(), Value::Null);
            // transformers' default; unused while `use_sliding_window` is false.
            obj.insert("max_window_layers".into(), json!(28));
            obj.insert("layer_types".into(), json!(vec!["full_attention"; c.n_layers()]));
        }
        Family::Phi3 => {
            let window = match arch.mask(0) {
                AttnMask::Sliding { window } => json!(window),
                _ => Value::Null,
            };
            obj.insert("sliding_window".into(), window);
            // transformers reads longrope's switch point from here, over `rope_parameters`.
            let original = match c.rope_kind() {
                Ok(RopeKind::LongRope { original_max_position_embeddings, .. }) => original_max_position_embeddings,
                _ => c.max_position_embeddings,
            };
            obj.insert("original_max_position_embeddings".into(), json!(original));
            obj.insert("resid_pdrop".into(), json!(0.0));
            obj.insert("embd_pdrop".into(), json!(0.0));
            // Phi-3 derives the head width from hidden_size / heads.
            obj.remove("head_dim");
            if let Some(r) = rope.as_object_mut() {
                r.insert("partial_rotary_factor".into(), json!(1.0));
            }
        }
        Family::Llama => {
            obj.insert("mlp_bias".into(), json!(false));
            obj.insert("pretraining_tp".into(), json!(1));
            // transformers 4.x reads θ here, 5.x in `rope_parameters`.
            obj.insert("rope_theta".into(), json!(c.rope_theta()));
        }
        _ => {}
    }
    obj.insert("rope_parameters".into(), rope);
    v
}

fn gemma3(c: &LlamaConfig, arch: &Arch) -> Value {
    let layer_types: Vec<&str> = arch
        .layers
        .iter()
        .map(|l| if matches!(l.mask, AttnMask::Sliding { .. }) { "sliding_attention" } else { "full_attention" })
        .collect();
    let window = arch.layers.iter().find_map(|l| match l.mask {
        AttnMask::Sliding { window } => Some(window),
        _ => None,
    });
    let local_theta = c.rope_theta_local().unwrap_or(10_000.0);
    json!({
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "hidden_size": c.d_model(),
        "intermediate_size": c.d_mlp(),
        "num_hidden_layers": c.n_layers(),
        "num_attention_heads": c.n_heads(),
        "num_key_value_heads": c.n_kv_heads(),
        "head_dim": c.d_head(),
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": c.max_position_embeddings,
        "rms_norm_eps": c.rms_norm_eps,
        "query_pre_attn_scalar": whole_if_whole(c.query_pre_attn_scalar.unwrap_or(c.d_head() as f64)),
        "sliding_window": window.unwrap_or(c.max_position_embeddings),
        "layer_types": layer_types,
        "rope_parameters": {
            "full_attention": rope_entry(c, c.rope_theta(), true),
            "sliding_attention": rope_entry(c, local_theta, false),
        },
        "attention_bias": false,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": null,
        "final_logit_softcapping": null,
        "use_bidirectional_attention": false,
    })
}

/// transformers' strict config classes want an int where the field is one (Gemma's
/// `query_pre_attn_scalar`); the config struct reads it as a float.
fn whole_if_whole(x: f64) -> Value {
    if x.fract() == 0.0 && x >= 0.0 && x < u64::MAX as f64 { json!(x as u64) } else { json!(x) }
}

fn gpt2(c: &LlamaConfig) -> Value {
    json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_embd": c.d_model(),
        "n_head": c.n_heads(),
        "n_layer": c.n_layers(),
        "n_positions": c.max_position_embeddings,
        "n_inner": c.d_mlp(),
        "activation_function": c.hidden_act.clone().unwrap_or_else(|| "gelu_new".into()),
        "layer_norm_epsilon": c.layer_norm_eps.unwrap_or(1e-5),
        "attn_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "resid_pdrop": 0.0,
        "scale_attn_by_inverse_layer_idx": false,
        "scale_attn_weights": true,
        "reorder_and_upcast_attn": false,
        "add_cross_attention": false,
    })
}

fn bert(c: &LlamaConfig) -> Value {
    json!({
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "hidden_size": c.d_model(),
        "intermediate_size": c.d_mlp(),
        "num_hidden_layers": c.n_layers(),
        "num_attention_heads": c.n_heads(),
        "hidden_act": c.hidden_act.clone().unwrap_or_else(|| "gelu".into()),
        "layer_norm_eps": c.layer_norm_eps.unwrap_or(1e-12),
        "max_position_embeddings": c.max_position_embeddings,
        "type_vocab_size": c.type_vocab_size.unwrap_or(2),
        "attention_probs_dropout_prob": 0.0,
        "hidden_dropout_prob": 0.0,
        "classifier_dropout": null,
        "is_decoder": false,
        "add_cross_attention": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Llama whose switches differ from Llama's recipe is no `LlamaForCausalLM`.
    #[test]
    fn a_changed_switch_makes_a_variant() {
        let c = crate::train::presets::tiny_config(40, 16, 24, 1, 4, 2, true);
        let plain = c.arch();
        assert!(is_plain_llama(&plain) && transformers_runs(&c));
        let variants = [
            Arch { placement: NormPlacement::Post, ..plain.clone() },
            Arch { norm: NormKind::Layer, ..plain.clone() },
            Arch { positions: Positions::Learned { token_types: false }, ..plain.clone() },
            Arch { mlp: MlpKind::Plain(crate::load::arch::Activation::Relu), ..plain.clone() },
        ];
        assert!(variants.iter().all(|a| !is_plain_llama(a)));
    }
}
