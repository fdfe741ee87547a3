use std::path::Path;

use super::*;
use crate::load::gguf::builder::{GgufBuilder, matrix, tiny_llama};

fn write_gguf(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join("tiny.gguf");
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("{e}");
    }
    path
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    match std::fs::read_to_string(path).map(|t| serde_json::from_str(&t)) {
        Ok(Ok(v)) => v,
        other => panic!("{}: {other:?}", path.display()),
    }
}

#[test]
fn unpermute_tiny_matrix() {
    // 2 heads of 4 rows, 2 columns; the value names the GGUF row.
    let gguf: Vec<f32> = (0..8).flat_map(|r| [r as f32, r as f32 + 0.5]).collect();
    let hf = unpermute_rows(&gguf, 2, 2);
    let rows: Vec<f32> = hf.chunks(2).map(|r| r[0]).collect();
    assert_eq!(rows, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
    assert_eq!(hf[1], 0.5);
}

#[test]
fn permute_then_unpermute_is_identity() {
    let hf = matrix(24, 3);
    for heads in [1, 2, 3, 6] {
        let there = permute_rows(&hf, 3, heads);
        assert_ne!(there, hf, "heads = {heads}");
        assert_eq!(unpermute_rows(&there, 3, heads), hf, "heads = {heads}");
        assert_eq!(permute_rows(&unpermute_rows(&hf, 3, heads), 3, heads), hf);
    }
}

#[test]
fn names_map_to_hf() {
    assert_eq!(
        hf_tensor_name("token_embd.weight").as_deref(),
        Some("model.embed_tokens.weight")
    );
    assert_eq!(
        hf_tensor_name("blk.12.ffn_down.weight").as_deref(),
        Some("model.layers.12.mlp.down_proj.weight")
    );
    assert_eq!(
        hf_tensor_name("blk.3.attn_output.weight").as_deref(),
        Some("model.layers.3.self_attn.o_proj.weight")
    );
    assert_eq!(
        hf_tensor_name("output.weight").as_deref(),
        Some("lm_head.weight")
    );
    assert_eq!(hf_tensor_name("blk.x.attn_q.weight"), None);
    assert_eq!(hf_tensor_name("blk.0.attn_q.bias"), None);
}

#[test]
fn tiny_model_converts_end_to_end() -> Result<(), GgufError> {
    let tmp = tempdir();
    let gguf = write_gguf(tmp.path(), &tiny_llama(false).build());
    let out = tmp.path().join("hf");
    std::fs::create_dir(&out).map_err(|e| GgufError::io(&out, e))?;
    let mut last = 0.0;
    convert_gguf_to_hf(&gguf, &out, &mut |_, f| last = f)?;
    assert_eq!(last, 1.0);

    let bytes = std::fs::read(out.join("model.safetensors")).map_err(|e| GgufError::io(&out, e))?;
    let st = match safetensors::SafeTensors::deserialize(&bytes) {
        Ok(st) => st,
        Err(e) => panic!("{e}"),
    };
    let mut names = st.names();
    names.sort();
    assert_eq!(names.len(), 11);
    assert!(!names.iter().any(|n| n.starts_with("lm_head")));
    let get = |name: &str| match st.tensor(name) {
        Ok(t) => {
            assert_eq!(t.dtype(), safetensors::Dtype::F32);
            let v: Vec<f32> = t
                .data()
                .chunks(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (t.shape().to_vec(), v)
        }
        Err(e) => panic!("{name}: {e}"),
    };
    let (shape, q) = get("model.layers.0.self_attn.q_proj.weight");
    assert_eq!(shape, vec![32, 32]);
    // HF row 1 is GGUF row 2; HF row 8 (second half of head 0) is GGUF row 1.
    assert_eq!(q[32], 200.0);
    assert_eq!(q[8 * 32], 100.0);
    assert_eq!(q, unpermute_rows(&matrix(32, 32), 32, 2));
    let (shape, k) = get("model.layers.0.self_attn.k_proj.weight");
    assert_eq!(shape, vec![16, 32]);
    assert_eq!(k, unpermute_rows(&matrix(16, 32), 32, 1));
    let (shape, v) = get("model.layers.0.self_attn.v_proj.weight");
    assert_eq!(shape, vec![16, 32]);
    assert_eq!(v, matrix(16, 32), "V is not permuted");
    let (shape, down) = get("model.layers.0.mlp.down_proj.weight");
    assert_eq!(shape, vec![32, 8]);
    assert_eq!(down, matrix(32, 8));
    let (shape, embd) = get("model.embed_tokens.weight");
    assert_eq!(shape, vec![10, 32]);
    assert_eq!(embd[5], 2.5);

    let config = read_json(&out.join("config.json"));
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(config["num_key_value_heads"], 1);
    assert_eq!(config["head_dim"], 16);
    assert_eq!(config["vocab_size"], 10);
    assert_eq!(config["rope_theta"], 100000.0);
    assert_eq!(config["rms_norm_eps"], 1e-5);
    assert_eq!(config["bos_token_id"], 0);
    assert!(config.get("rope_scaling").is_none());
    let tok_cfg = read_json(&out.join("tokenizer_config.json"));
    assert_eq!(tok_cfg["eos_token"], "<|end|>");
    assert_eq!(tok_cfg["chat_template"], "{{ messages }}");
    assert_eq!(tok_cfg["model_max_length"], 64);
    match tokenizers::Tokenizer::from_file(out.join("tokenizer.json")) {
        Ok(t) => assert_eq!(t.get_vocab_size(true), 10),
        Err(e) => panic!("{e}"),
    }
    Ok(())
}

#[test]
fn untied_model_writes_lm_head() -> Result<(), GgufError> {
    let file = GgufFile::from_bytes(Path::new("t.gguf"), tiny_llama(true).build())?;
    let plan = planned_tensors(&file)?;
    assert!(
        plan.iter()
            .any(|t| t.hf_name == "lm_head.weight" && t.hf_shape == vec![10, 32])
    );
    assert_eq!(build_config_json(&file)?["tie_word_embeddings"], false);
    Ok(())
}

#[test]
fn unknown_tensor_name_is_an_error() -> Result<(), GgufError> {
    let file = GgufFile::from_bytes(
        Path::new("t.gguf"),
        tiny_llama(false)
            .f32_tensor("blk.0.attn_q.bias", &[32], &matrix(1, 32))
            .build(),
    )?;
    let msg = planned_tensors(&file)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        matches!(&msg, Err(m) if m.contains("tensor `blk.0.attn_q.bias`: has no Llama")),
        "{msg:?}"
    );
    Ok(())
}

#[test]
fn unsupported_quant_type_fails_before_writing() -> Result<(), GgufError> {
    let file = GgufFile::from_bytes(
        Path::new("t.gguf"),
        tiny_llama(false)
            .tensor("output.weight", &[256, 1], 10, &[0u8; 84])
            .build(),
    )?;
    let msg = planned_tensors(&file)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        matches!(&msg, Err(m) if m.contains("tensor `output.weight`: ggml type 10 (Q2_K) is not supported")),
        "{msg:?}"
    );
    Ok(())
}

#[test]
fn non_llama_architecture_is_an_error() -> Result<(), GgufError> {
    let file = GgufFile::from_bytes(
        Path::new("q.gguf"),
        GgufBuilder::new()
            .kv_str("general.architecture", "t5")
            .build(),
    )?;
    let msg = build_config_json(&file)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(matches!(&msg, Err(m) if m.contains("`t5`") && m.contains("qwen3")), "{msg:?}");
    Ok(())
}

/// Needs the converted default model; skipped (with a note) where it has not been fetched.
/// Reads only the safetensors header, so it stays fast.
#[test]
fn converted_default_model_has_expected_config_and_tensors() {
    let dir = match crate::load::fetch::default_model_dir() {
        Ok(d) if crate::load::fetch::is_complete(&d) => d,
        _ => {
            crate::skip_unless_required("the default model is not converted (run `glassbox fetch`)");
            return;
        }
    };
    let config = read_json(&dir.join("config.json"));
    for (key, want) in [
        ("num_hidden_layers", serde_json::json!(30)),
        ("hidden_size", serde_json::json!(576)),
        ("num_attention_heads", serde_json::json!(9)),
        ("num_key_value_heads", serde_json::json!(3)),
        ("intermediate_size", serde_json::json!(1536)),
        ("vocab_size", serde_json::json!(49152)),
        ("rope_theta", serde_json::json!(100000.0)),
        ("tie_word_embeddings", serde_json::json!(true)),
    ] {
        assert_eq!(config[key], want, "{key}");
    }
    let header = match std::fs::File::open(dir.join("model.safetensors")).and_then(|mut f| {
        use std::io::Read;
        let mut len = [0u8; 8];
        f.read_exact(&mut len)?;
        let mut buf = vec![0u8; u64::from_le_bytes(len) as usize];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let header: serde_json::Value = match serde_json::from_slice(&header) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    let tensors = header.as_object().map_or(0, |o| o.len() - 1);
    assert_eq!(tensors, 30 * 9 + 2);
    assert_eq!(
        header["model.embed_tokens.weight"]["shape"],
        serde_json::json!([49152, 576])
    );
    assert_eq!(
        header["model.layers.29.self_attn.k_proj.weight"]["shape"],
        serde_json::json!([192, 576])
    );
    assert_eq!(
        header["model.layers.0.mlp.down_proj.weight"]["shape"],
        serde_json::json!([576, 1536])
    );
    assert!(header.get("lm_head.weight").is_none());
}

#[test]
fn infinite_rope_base_is_an_error_not_a_default() {
    for theta in [f32::INFINITY, f32::NAN, 0.5] {
        let file = GgufFile::from_bytes(
            Path::new("t.gguf"),
            tiny_llama(false).set_f32("llama.rope.freq_base", theta).build(),
        );
        let msg = match file.and_then(|f| build_config_json(&f)) {
            Ok(v) => panic!("θ = {theta} accepted: {v}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("llama.rope.freq_base") && msg.contains("finite"), "{msg}");
    }
}

#[test]
fn non_positive_linear_rope_factor_is_an_error() {
    for factor in [0.0f32, -1.0] {
        let file = GgufFile::from_bytes(
            Path::new("t.gguf"),
            tiny_llama(false)
                .kv_str("llama.rope.scaling.type", "linear")
                .kv_f32("llama.rope.scaling.factor", factor)
                .build(),
        );
        let msg = match file.and_then(|f| build_config_json(&f)) {
            Ok(v) => panic!("factor {factor} accepted: {v}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("llama.rope.scaling.factor"), "{msg}");
    }
}
