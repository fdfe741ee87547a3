//! `config.json` in the transformers 4.x `LlamaConfig` form, from the GGUF `llama.*` keys.

use serde_json::{Map, Value, json};

use super::GgufError;
use super::reader::GgufFile;
use super::rope_scaling::rope_scaling;

const DEFAULT_ROPE_THETA: f32 = 10_000.0;
/// llama.cpp's default when a Llama GGUF omits the epsilon.
const DEFAULT_RMS_EPS: f32 = 1e-5;

/// The architecture prefix of the metadata keys: Llama-layout models and Gemma 3 convert.
pub(crate) fn architecture(gguf: &GgufFile) -> Result<&str, GgufError> {
    let arch = gguf.get_str("general.architecture")?;
    if arch != "llama" && arch != super::gemma3::ARCH && !super::variants::ARCHS.contains(&arch) {
        return Err(GgufError::unsupported(
            gguf.path(),
            format!(
                "general.architecture is `{arch}`; Glassbox converts only `llama` GGUF files \
                 (Llama, SmolLM, Mistral-style checkpoints), `gemma3`, `qwen2`, `qwen3`, `olmo2` and `phi3`"
            ),
        ));
    }
    Ok(arch)
}

pub fn build_config_json(gguf: &GgufFile) -> Result<Value, GgufError> {
    let arch = architecture(gguf)?;
    if arch == super::gemma3::ARCH {
        let config = super::gemma3::build_gemma3_config_json(gguf)?;
        let vocab = config["vocab_size"].as_u64().unwrap_or_default() as usize;
        check_embedding_rows(gguf, vocab)?;
        return Ok(config);
    }
    let key = |k: &str| format!("{arch}.{k}");
    let hidden = gguf.get_u32(&key("embedding_length"))?;
    let heads = gguf.get_u32(&key("attention.head_count"))?;
    let kv_heads = gguf
        .opt_u32(&key("attention.head_count_kv"))?
        .unwrap_or(heads);
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(GgufError::metadata(
            gguf.path(),
            &key("attention.head_count_kv"),
            format!("{kv_heads} key/value heads do not divide {heads} attention heads"),
        ));
    }
    let head_dim = match gguf.opt_u32(&key("attention.key_length"))? {
        Some(d) => d,
        None if hidden % heads == 0 => hidden / heads,
        None => {
            return Err(GgufError::metadata(
                gguf.path(),
                &key("embedding_length"),
                format!("{hidden} is not divisible by {heads} heads and key_length is absent"),
            ));
        }
    };
    let rope_dims_key = key("rope.dimension_count");
    if let Some(rope_dims) = gguf.opt_u32(&rope_dims_key)?
        && rope_dims != head_dim
    {
        return Err(GgufError::metadata(
            gguf.path(),
            &rope_dims_key,
            format!(
                "RoPE on {rope_dims} of {head_dim} head dimensions (partial rotary) is not Llama"
            ),
        ));
    }
    let vocab_size = gguf.get_str_array("tokenizer.ggml.tokens")?.len();
    check_embedding_rows(gguf, vocab_size)?;
    let theta_key = key("rope.freq_base");
    let rope_theta = gguf.opt_f32(&theta_key)?.unwrap_or(DEFAULT_ROPE_THETA);
    // JSON has no inf or NaN: written as null, config.json would quietly fall back to the
    // default θ and the model would run with the wrong positions.
    if !(rope_theta.is_finite() && rope_theta > 1.0) {
        return Err(GgufError::metadata(
            gguf.path(),
            &theta_key,
            format!("RoPE base {rope_theta} must be a finite number > 1"),
        ));
    }
    let eps_key = key("attention.layer_norm_rms_epsilon");
    let eps = gguf.opt_f32(&eps_key)?.unwrap_or(DEFAULT_RMS_EPS);
    if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
        return Err(GgufError::metadata(
            gguf.path(),
            &eps_key,
            format!("RMSNorm epsilon {eps} must be a finite number in (0, 1)"),
        ));
    }
    let tied = gguf.tensor("output.weight").is_none();

    let mut cfg = Map::new();
    cfg.insert("architectures".into(), json!(["LlamaForCausalLM"]));
    cfg.insert("model_type".into(), json!("llama"));
    cfg.insert("vocab_size".into(), json!(vocab_size));
    cfg.insert("hidden_size".into(), json!(hidden));
    cfg.insert(
        "intermediate_size".into(),
        json!(gguf.get_u32(&key("feed_forward_length"))?),
    );
    cfg.insert(
        "num_hidden_layers".into(),
        json!(gguf.get_u32(&key("block_count"))?),
    );
    cfg.insert("num_attention_heads".into(), json!(heads));
    cfg.insert("num_key_value_heads".into(), json!(kv_heads));
    cfg.insert("head_dim".into(), json!(head_dim));
    cfg.insert("rms_norm_eps".into(), json_f32(eps));
    cfg.insert("rope_theta".into(), json_f32(rope_theta));
    cfg.insert(
        "max_position_embeddings".into(),
        json!(gguf.get_u32(&key("context_length"))?),
    );
    cfg.insert("tie_word_embeddings".into(), json!(tied));
    for (hf, gg) in [
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
        ("pad_token_id", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some(id) = gguf.opt_u32(gg)? {
            cfg.insert(hf.into(), json!(id));
        }
    }
    if let Some(scaling) = rope_scaling(gguf, arch, head_dim, rope_theta)? {
        cfg.insert("rope_scaling".into(), scaling);
    }
    cfg.insert("attention_bias".into(), json!(false));
    cfg.insert("mlp_bias".into(), json!(false));
    cfg.insert("torch_dtype".into(), json!("float32"));
    cfg.insert("hidden_act".into(), json!("silu"));
    if arch != "llama" {
        return super::variants::config_json(gguf, arch, cfg);
    }
    Ok(Value::Object(cfg))
}

/// f32 values printed through f64 pick up noise digits (1e-5 → 9.999999747378752e-6);
/// going through the shortest f32 text keeps config.json readable and round-trips exactly.
pub(crate) fn json_f32(v: f32) -> Value {
    v.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn check_embedding_rows(gguf: &GgufFile, vocab_size: usize) -> Result<(), GgufError> {
    let name = "token_embd.weight";
    let info = gguf
        .tensor(name)
        .ok_or_else(|| GgufError::tensor(gguf.path(), name, "is missing"))?;
    match info.hf_shape().first() {
        Some(&rows) if rows == vocab_size => Ok(()),
        _ => Err(GgufError::tensor(
            gguf.path(),
            name,
            format!(
                "shape {:?} does not have {vocab_size} rows, the length of tokenizer.ggml.tokens",
                info.hf_shape()
            ),
        )),
    }
}
