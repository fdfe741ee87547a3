//! Gemma 3 (`general.architecture = gemma3`) GGUF → the Hugging Face `gemma3_text` layout that
//! transformers' `Gemma3ForCausalLM` loads: tensor names, llama.cpp's `+1` on every norm weight
//! undone, and `config.json` in the transformers 5.x form.
//!
//! What was checked against transformers' own GGUF loader (`modeling_gguf_pytorch_utils.py`):
//! - names come from gguf-py's tensor map for `MODEL_ARCH.GEMMA3` (`ffn_norm` is the
//!   *pre*-feed-forward norm here, not Llama's `post_attention_layernorm`);
//! - `TENSOR_PROCESSORS["gemma3"]` is `Gemma2TensorProcessor`, which subtracts 1 from every tensor
//!   whose name contains `norm.weight` (llama.cpp's converter added `norm_shift = 1` to each, since
//!   Gemma's RMSNorm computes `x̂ · (1 + w)`), q_norm/k_norm included;
//! - Q/K are not permuted: the permutation is `LlamaTensorProcessor`'s alone, and llama.cpp's
//!   Gemma converter does not permute (Gemma's RoPE is rotate-half in both);
//! - `query_pre_attn_scalar` has no GGUF key; transformers keeps the `Gemma3TextConfig` default
//!   (256), which equals `head_dim` for the 270M model.

use serde_json::{Map, Value, json};

use super::GgufError;
use super::config_json::json_f32;
use super::convert::hf_tensor_name;
use super::reader::GgufFile;

pub(crate) const ARCH: &str = "gemma3";

/// Every `sliding_window_pattern`-th layer attends globally (layers 5, 11, 17 of 18).
const SLIDING_WINDOW_PATTERN: usize = 6;
/// RoPE base of the sliding-window layers: not in the GGUF; transformers' default.
const LOCAL_ROPE_THETA: f32 = 10_000.0;
/// transformers' `Gemma3TextConfig` default, used when the GGUF has no such key (it never does).
const QUERY_PRE_ATTN_SCALAR: u32 = 256;

/// The per-layer tensors of a `Gemma3ForCausalLM` checkpoint (after `model.layers.N.`).
pub const GEMMA3_LAYER_TENSORS: [&str; 13] = [
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "self_attn.q_norm.weight",
    "self_attn.k_norm.weight",
    "post_attention_layernorm.weight",
    "pre_feedforward_layernorm.weight",
    "post_feedforward_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
];

/// The Hugging Face name of a Gemma 3 GGUF tensor (gguf-py's `MODEL_ARCH.GEMMA3` map, read
/// backwards), or None when `Gemma3ForCausalLM` has no such weight: the parts whose names differ
/// from Llama's here, the rest as [`hf_tensor_name`] maps them.
pub fn gemma3_hf_tensor_name(gguf_name: &str) -> Option<String> {
    let block = gguf_name.strip_suffix(".weight").and_then(|b| b.strip_prefix("blk.")).and_then(|r| r.split_once('.'));
    if let Some((layer, part)) = block {
        let layer: usize = layer.parse().ok()?;
        let gemma_part = match part {
            "attn_q_norm" => Some("self_attn.q_norm"),
            "attn_k_norm" => Some("self_attn.k_norm"),
            "post_attention_norm" => Some("post_attention_layernorm"),
            // Llama's `ffn_norm` is its post-attention norm; Gemma's is the pre-MLP one.
            "ffn_norm" => Some("pre_feedforward_layernorm"),
            "post_ffw_norm" => Some("post_feedforward_layernorm"),
            _ => None,
        };
        if let Some(hf_part) = gemma_part {
            return Some(format!("model.layers.{layer}.{hf_part}.weight"));
        }
    }
    hf_tensor_name(gguf_name)
}

/// True for the tensors llama.cpp stored as `w + 1` (every RMSNorm weight): transformers'
/// `Gemma2TensorProcessor` test, `"norm.weight" in name`, on the GGUF name.
pub fn has_norm_shift(gguf_name: &str) -> bool {
    gguf_name.contains("norm.weight")
}

/// `layer_types` as transformers writes it: `full_attention` on every 6th layer.
pub fn layer_types(n_layers: usize) -> Vec<&'static str> {
    (0..n_layers)
        .map(|i| {
            if (i + 1) % SLIDING_WINDOW_PATTERN == 0 {
                "full_attention"
            } else {
                "sliding_attention"
            }
        })
        .collect()
}

/// `config.json` for `Gemma3ForCausalLM` (transformers 5.x, `model_type = gemma3_text`).
pub fn build_gemma3_config_json(gguf: &GgufFile) -> Result<Value, GgufError> {
    let key = |k: &str| format!("{ARCH}.{k}");
    let path = gguf.path();
    let hidden = gguf.get_u32(&key("embedding_length"))?;
    let heads = gguf.get_u32(&key("attention.head_count"))?;
    let kv_heads = gguf.opt_u32(&key("attention.head_count_kv"))?.unwrap_or(heads);
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(GgufError::metadata(
            path,
            &key("attention.head_count_kv"),
            format!("{kv_heads} key/value heads do not divide {heads} attention heads"),
        ));
    }
    // Gemma's head size is not hidden / heads (640 / 4 ≠ 256): the key is required.
    let head_dim = gguf.get_u32(&key("attention.key_length"))?;
    if let Some(v) = gguf.opt_u32(&key("attention.value_length"))?
        && v != head_dim
    {
        return Err(GgufError::metadata(
            path,
            &key("attention.value_length"),
            format!("{v} differs from attention.key_length {head_dim}; Gemma 3 has one head size"),
        ));
    }
    // Bounded before `layer_types` allocates a name per layer.
    let n_layers = super::convert::block_count(gguf, ARCH)? as usize;
    let vocab_size = gguf.get_str_array("tokenizer.ggml.tokens")?.len();
    let theta_key = key("rope.freq_base");
    let rope_theta = gguf.opt_f32(&theta_key)?.unwrap_or(1_000_000.0);
    if !(rope_theta.is_finite() && rope_theta > 1.0) {
        return Err(GgufError::metadata(
            path,
            &theta_key,
            format!("RoPE base {rope_theta} must be a finite number > 1"),
        ));
    }
    let eps_key = key("attention.layer_norm_rms_epsilon");
    let eps = gguf.opt_f32(&eps_key)?.unwrap_or(1e-6);
    if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
        return Err(GgufError::metadata(
            path,
            &eps_key,
            format!("RMSNorm epsilon {eps} must be a finite number in (0, 1)"),
        ));
    }
    let window_key = key("attention.sliding_window");
    let sliding_window = gguf.get_u32(&window_key)?;
    if sliding_window == 0 {
        return Err(GgufError::metadata(path, &window_key, "a window of 0 tokens attends to nothing"));
    }
    let tied = gguf.tensor("output.weight").is_none();
    let id = |k: &str| gguf.opt_u32(k);

    let mut cfg = Map::new();
    cfg.insert("_sliding_window_pattern".into(), json!(SLIDING_WINDOW_PATTERN));
    cfg.insert("architectures".into(), json!(["Gemma3ForCausalLM"]));
    cfg.insert("attention_bias".into(), json!(false));
    cfg.insert("attention_dropout".into(), json!(0.0));
    cfg.insert("attn_logit_softcapping".into(), Value::Null);
    cfg.insert("bos_token_id".into(), json!(id("tokenizer.ggml.bos_token_id")?));
    cfg.insert("dtype".into(), json!("float32"));
    cfg.insert("eos_token_id".into(), json!(id("tokenizer.ggml.eos_token_id")?));
    cfg.insert("final_logit_softcapping".into(), Value::Null);
    cfg.insert("head_dim".into(), json!(head_dim));
    cfg.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
    cfg.insert("hidden_size".into(), json!(hidden));
    cfg.insert("initializer_range".into(), json!(0.02));
    cfg.insert(
        "intermediate_size".into(),
        json!(gguf.get_u32(&key("feed_forward_length"))?),
    );
    cfg.insert("layer_types".into(), json!(layer_types(n_layers)));
    cfg.insert(
        "max_position_embeddings".into(),
        json!(gguf.get_u32(&key("context_length"))?),
    );
    cfg.insert("model_type".into(), json!("gemma3_text"));
    cfg.insert("num_attention_heads".into(), json!(heads));
    cfg.insert("num_hidden_layers".into(), json!(n_layers));
    cfg.insert("num_key_value_heads".into(), json!(kv_heads));
    cfg.insert("pad_token_id".into(), json!(id("tokenizer.ggml.padding_token_id")?));
    cfg.insert("query_pre_attn_scalar".into(), json!(QUERY_PRE_ATTN_SCALAR));
    cfg.insert("rms_norm_eps".into(), json_f32(eps));
    cfg.insert(
        "rope_parameters".into(),
        json!({
            "full_attention": {"rope_theta": json_f32(rope_theta), "rope_type": "default"},
            "sliding_attention": {"rope_theta": json_f32(LOCAL_ROPE_THETA), "rope_type": "default"},
        }),
    );
    cfg.insert("sliding_window".into(), json!(sliding_window));
    cfg.insert("tie_word_embeddings".into(), json!(tied));
    cfg.insert("use_bidirectional_attention".into(), json!(false));
    cfg.insert("use_cache".into(), json!(true));
    cfg.insert("vocab_size".into(), json!(vocab_size));
    Ok(Value::Object(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::gguf::builder::{matrix, tiny_gemma3};

    #[test]
    fn names_follow_gguf_py_gemma3_map() {
        let cases = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
            ("blk.17.attn_q.weight", "model.layers.17.self_attn.q_proj.weight"),
            ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight"),
            ("blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight"),
            ("blk.1.attn_output.weight", "model.layers.1.self_attn.o_proj.weight"),
            ("blk.2.attn_q_norm.weight", "model.layers.2.self_attn.q_norm.weight"),
            ("blk.2.attn_k_norm.weight", "model.layers.2.self_attn.k_norm.weight"),
            ("blk.3.post_attention_norm.weight", "model.layers.3.post_attention_layernorm.weight"),
            ("blk.3.ffn_norm.weight", "model.layers.3.pre_feedforward_layernorm.weight"),
            ("blk.3.post_ffw_norm.weight", "model.layers.3.post_feedforward_layernorm.weight"),
            ("blk.4.ffn_gate.weight", "model.layers.4.mlp.gate_proj.weight"),
            ("blk.4.ffn_up.weight", "model.layers.4.mlp.up_proj.weight"),
            ("blk.4.ffn_down.weight", "model.layers.4.mlp.down_proj.weight"),
        ];
        for (gguf, hf) in cases {
            assert_eq!(gemma3_hf_tensor_name(gguf).as_deref(), Some(hf), "{gguf}");
        }
        assert_eq!(gemma3_hf_tensor_name("blk.0.attn_q.bias"), None);
        assert_eq!(gemma3_hf_tensor_name("blk.0.ffn_gate_inp.weight"), None);
    }

    #[test]
    fn every_norm_and_only_norms_are_shifted() {
        for n in [
            "output_norm.weight",
            "blk.0.attn_norm.weight",
            "blk.0.attn_q_norm.weight",
            "blk.0.attn_k_norm.weight",
            "blk.0.post_attention_norm.weight",
            "blk.0.ffn_norm.weight",
            "blk.0.post_ffw_norm.weight",
        ] {
            assert!(has_norm_shift(n), "{n}");
        }
        for n in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.0.attn_output.weight"] {
            assert!(!has_norm_shift(n), "{n}");
        }
    }

    #[test]
    fn every_sixth_layer_is_global() {
        let t = layer_types(18);
        let full: Vec<usize> = (0..18).filter(|&i| t[i] == "full_attention").collect();
        assert_eq!(full, [5, 11, 17]);
        assert_eq!(layer_types(4), ["sliding_attention"; 4]);
    }

    #[test]
    fn tiny_gemma3_converts_to_the_hf_layout() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let gguf = tmp.path().join("tiny-gemma3.gguf");
        std::fs::write(&gguf, tiny_gemma3().build()).unwrap_or_else(|e| panic!("{e}"));
        let out = tmp.path().join("hf");
        std::fs::create_dir(&out).unwrap_or_else(|e| panic!("{e}"));
        crate::load::gguf::convert_gguf_to_hf(&gguf, &out, &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));

        let read = |f: &str| std::fs::read(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let config: Value = serde_json::from_slice(&read("config.json")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config["model_type"], "gemma3_text");
        assert_eq!(config["architectures"], json!(["Gemma3ForCausalLM"]));
        assert_eq!(config["head_dim"], 16);
        assert_eq!(config["num_key_value_heads"], 1);
        assert_eq!(config["sliding_window"], 4);
        assert_eq!(config["layer_types"], json!(["sliding_attention", "sliding_attention"]));
        assert_eq!(config["rope_parameters"]["full_attention"]["rope_theta"], 1_000_000.0);
        assert_eq!(config["rope_parameters"]["sliding_attention"]["rope_theta"], 10_000.0);
        assert_eq!(config["vocab_size"], 8);
        assert_eq!(config["tie_word_embeddings"], true);
        assert_eq!(config["bos_token_id"], 2);

        let st_bytes = read("model.safetensors");
        let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap_or_else(|e| panic!("{e}"));
        let values = |name: &str| -> Vec<f32> {
            let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
        names.sort();
        let mut want = vec!["model.embed_tokens.weight".to_string(), "model.norm.weight".to_string()];
        for l in 0..2 {
            want.extend(GEMMA3_LAYER_TENSORS.iter().map(|t| format!("model.layers.{l}.{t}")));
        }
        want.sort();
        assert_eq!(names, want);
        // Every norm shifted back by exactly 1; nothing else touched, Q/K rows in file order.
        let shifted = |n: u64| matrix(1, n).iter().map(|v| v - 1.0).collect::<Vec<f32>>();
        assert_eq!(values("model.norm.weight"), shifted(32));
        for leaf in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] {
            assert_eq!(values(&format!("model.layers.1.{leaf}.weight")), shifted(32), "{leaf}");
        }
        assert_eq!(values("model.layers.0.self_attn.q_norm.weight"), shifted(16));
        assert_eq!(values("model.layers.0.self_attn.k_norm.weight"), shifted(16));
        assert_eq!(values("model.layers.0.self_attn.q_proj.weight"), matrix(32, 32));
        assert_eq!(values("model.layers.0.self_attn.k_proj.weight"), matrix(16, 32));
        assert_eq!(values("model.embed_tokens.weight"), matrix(8, 32));
        assert_eq!(st.tensor("model.layers.0.self_attn.o_proj.weight").map(|t| t.shape().to_vec()).ok(), Some(vec![32, 32]));

        let tok: tokenizers::Tokenizer = serde_json::from_slice(&read("tokenizer.json")).unwrap_or_else(|e| panic!("{e}"));
        let ids = tok.encode("a  a", true).unwrap_or_else(|e| panic!("{e}")).get_ids().to_vec();
        assert_eq!(ids, [2, 6, 4, 6]);
        let tc: Value = serde_json::from_slice(&read("tokenizer_config.json")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tc["add_bos_token"], true);
        assert_eq!(tc["bos_token"], "<bos>");
    }

    #[test]
    fn missing_gemma_tensors_are_listed() {
        let bytes = tiny_gemma3().remove_tensor("blk.1.post_ffw_norm.weight").build();
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let gguf = tmp.path().join("t.gguf");
        std::fs::write(&gguf, bytes).unwrap_or_else(|e| panic!("{e}"));
        let file = crate::load::gguf::GgufFile::open(&gguf).unwrap_or_else(|e| panic!("{e}"));
        let msg = crate::load::gguf::planned_tensors(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("model.layers.1.post_feedforward_layernorm.weight"), "{msg}");
    }

    /// A claimed 4 billion layers is an error naming the key, not a 4-billion-entry
    /// `layer_types` list.
    #[test]
    fn absurd_block_count_is_an_error_before_allocating() {
        let bytes = tiny_gemma3().set_u32("gemma3.block_count", u32::MAX).build();
        let file = crate::load::gguf::GgufFile::from_bytes(std::path::Path::new("t.gguf"), bytes).unwrap_or_else(|e| panic!("{e}"));
        let msg = crate::load::gguf::build_config_json(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg,
            "t.gguf: metadata key `gemma3.block_count`: 4294967295 layers is not a real model (at most 4096)"
        );
    }

    /// llama.cpp's `+1`-stored QK norms missing: one line naming every absent tensor, before
    /// any data is read.
    #[test]
    fn missing_qk_norms_are_named_on_one_line() {
        let bytes = tiny_gemma3()
            .remove_tensor("blk.0.attn_q_norm.weight")
            .remove_tensor("blk.1.attn_k_norm.weight")
            .build();
        let file = crate::load::gguf::GgufFile::from_bytes(std::path::Path::new("t.gguf"), bytes).unwrap_or_else(|e| panic!("{e}"));
        let msg = crate::load::gguf::planned_tensors(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("t.gguf: unsupported model: 2 tensors"), "{msg}");
        assert!(msg.contains("model.layers.0.self_attn.q_norm.weight"), "{msg}");
        assert!(msg.contains("model.layers.1.self_attn.k_norm.weight"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    /// Q5_0 and Q5_1 matrices convert (dequantized as `dequantize` reads them); a file cut one
    /// byte into the last Q5 block is one line naming that tensor.
    #[test]
    fn q5_tensors_convert_and_truncated_blocks_name_the_tensor() {
        use crate::load::gguf::GgmlType;
        use crate::load::gguf::builder::q5_blocks;
        use crate::load::gguf::dequant::dequantize;
        let name = "blk.1.ffn_up.weight";
        for (ty, with_min) in [(GgmlType::Q5_0, false), (GgmlType::Q5_1, true)] {
            let blocks = q5_blocks(256, with_min);
            // Moved to the end of the file, so cutting the file cuts its blocks.
            let bytes = tiny_gemma3().remove_tensor(name).tensor(name, &[32, 8], ty.id(), &blocks).build();
            let file = crate::load::gguf::GgufFile::from_bytes(std::path::Path::new("q5.gguf"), bytes.clone())
                .unwrap_or_else(|e| panic!("{ty}: {e}"));
            let plan = crate::load::gguf::planned_tensors(&file).unwrap_or_else(|e| panic!("{ty}: {e}"));
            let t = plan.iter().find(|t| t.gguf_name == name).unwrap_or_else(|| panic!("{ty}: {name} not planned"));
            assert_eq!((t.hf_name.as_str(), t.hf_shape.as_slice()), ("model.layers.1.mlp.up_proj.weight", &[8usize, 32][..]));
            let (_, values) = file.tensor_f32(name).unwrap_or_else(|e| panic!("{ty}: {e}"));
            assert_eq!(Ok(values), dequantize(ty, &blocks, 256), "{ty}");

            // Cut one byte into its last block.
            let cut = bytes[..bytes.len() - 1].to_vec();
            let msg = crate::load::gguf::GgufFile::from_bytes(std::path::Path::new("q5.gguf"), cut)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(&format!("tensor `{name}`")), "{ty}: {msg}");
            assert!(!msg.contains('\n'), "{ty}: {msg}");
        }
    }
}
