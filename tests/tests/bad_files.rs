//! Bad model files give a clear error naming the file, tensor or field — never a panic and
//! never a large allocation. (GGUF reader cases live beside the reader in engine/src/load/gguf.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use glassbox_engine::Model;
use glassbox_tests::fixtures_dir;

/// A copy of the tiny GQA fixture in a temp dir, to break one thing at a time.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures_dir().join("tiny-gqa-tied").join(f), dir.join(f)).unwrap();
    }
    (tmp, dir)
}

fn load_err(dir: &Path) -> String {
    match Model::load(dir) {
        Ok(_) => panic!("{} loaded, but it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} not in config");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// Rewrites model.safetensors with `edit` applied to the (name → (shape, f32 values)) map.
fn edit_tensors(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let vals = v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (n, v.shape().to_vec(), vals)
        })
        .collect();
    edit(&mut tensors);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = raw
        .iter()
        .map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn truncated_safetensors_names_the_file() {
    let (_tmp, dir) = fixture_copy();
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("model.safetensors") && err.contains("not a valid safetensors"), "{err}");
}

#[test]
fn safetensors_header_longer_than_the_file_is_rejected() {
    let (_tmp, dir) = fixture_copy();
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn safetensors_header_with_offsets_past_the_end_is_rejected() {
    let (_tmp, dir) = fixture_copy();
    let path = dir.join("model.safetensors");
    let header = br#"{"model.norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[0,99999999]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 256]);
    std::fs::write(&path, &bytes).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let (_tmp, dir) = fixture_copy();
    edit_tensors(&dir, |t| t.retain(|(n, _, _)| n != "model.layers.1.mlp.up_proj.weight"));
    let err = load_err(&dir);
    assert!(err.contains("model.layers.1.mlp.up_proj.weight") && err.contains("missing"), "{err}");
}

#[test]
fn mis_shaped_tensor_names_both_shapes() {
    let (_tmp, dir) = fixture_copy();
    edit_tensors(&dir, |t| {
        for (n, s, v) in t.iter_mut() {
            if n == "model.layers.0.self_attn.k_proj.weight" {
                *s = vec![16, 64];
                v.truncate(16 * 64);
            }
        }
    });
    let err = load_err(&dir);
    assert!(err.contains("k_proj") && err.contains("[16, 64]") && err.contains("[32, 64]"), "{err}");
}

#[test]
fn absurd_config_size_is_rejected_before_loading_weights() {
    let (_tmp, dir) = fixture_copy();
    edit_config(&dir, "\"intermediate_size\": 160", "\"intermediate_size\": 4000000000000");
    let err = load_err(&dir);
    assert!(err.contains("config.json") && err.contains("intermediate_size"), "{err}");
}

#[test]
fn inconsistent_config_heads_are_rejected() {
    let (_tmp, dir) = fixture_copy();
    edit_config(&dir, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
    let err = load_err(&dir);
    assert!(err.contains("num_key_value_heads"), "{err}");
}

#[test]
fn config_that_is_not_json_is_rejected() {
    let (_tmp, dir) = fixture_copy();
    std::fs::write(dir.join("config.json"), "{ this is not json").unwrap();
    let err = load_err(&dir);
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn untied_model_without_lm_head_is_rejected() {
    let (_tmp, dir) = fixture_copy();
    edit_config(&dir, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
    let err = load_err(&dir);
    assert!(err.contains("lm_head.weight"), "{err}");
}

#[test]
fn tokenizer_with_more_tokens_than_the_model_is_rejected() {
    let (_tmp, dir) = fixture_copy();
    // A byte-level BPE vocabulary of 256 tokens for a model with vocab_size 97.
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..256).map(|i| (format!("t{i}"), serde_json::json!(i))).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": []}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("tokenizer.json") && err.contains("vocab_size = 97"), "{err}");
}

#[test]
fn bad_gguf_file_given_as_model_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("broken.gguf");
    std::fs::write(&path, b"NOPE\x03\x00\x00\x00 definitely not a gguf file").unwrap();
    let err = load_err(&path);
    assert!(err.contains("broken.gguf") && err.to_lowercase().contains("magic"), "{err}");
}

#[test]
fn folder_without_weights_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures_dir().join("tiny-gqa-tied/config.json"), tmp.path().join("config.json")).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("no model.safetensors"), "{err}");
}

