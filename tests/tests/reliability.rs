//! One test per row of `../shared/RELIABILITY.md` (bad input and faults), on small
//! generated files. Rows the engine answers are here; rows that need the binary or the
//! window live next to them and are named the same way (`rowNN_…`):
//!
//! | row | test |
//! |---|---|
//! | 1–21 | this file (`row01_…` to `row21_…`) |
//! | 7, 16, 19 in the window | `app/src/gui/tests/reliability.rs` (broken tokenizer, NaN weights, 1 MB paste) |
//! | 18, 20, 22, 27 and printing (closed pipe, full disk) | `app/tests/reliability_cli.rs` |
//! | 26 | `app/src/gui/state.rs` (`row26_…`: corrupt, non-UTF-8 and full-disk state files) |
//! | 28 | `app/src/gui/lessons.rs` (`row28_…`: missing translation, missing lessons folder) |
//! | 23, 24, 25 | this file (the engine: a device with small limits, a destroyed device, the check against the CPU reference); the window's fallback and check button in `app/src/gui/tests/reliability.rs` |
//!
//! GGUF and safetensors cases also seed the fuzz corpora (`glassbox_tests::fuzz`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::load::gguf::GgufFile;
use glassbox_engine::load::gguf::builder::{GgufBuilder, tiny_llama};
use glassbox_engine::load::tokenizer::{ChatMessage, Tokenizer};
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{HookKey, Model};
use glassbox_tests::broken::{
    edit_config, edit_tensors, fixture_copy, load_err, raw_safetensors, read_tensors,
    write_tensors,
};

const FIXTURE: &str = "tiny-gqa-tied";

fn gguf_err(bytes: Vec<u8>) -> String {
    match GgufFile::from_bytes(Path::new("bad.gguf"), bytes) {
        Ok(_) => panic!("a broken GGUF parsed"),
        Err(e) => e.to_string(),
    }
}

/// Converting `bytes` as a .gguf: the error message.
fn convert_err(bytes: Vec<u8>) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("bad.gguf");
    std::fs::write(&gguf, bytes).unwrap();
    match glassbox_engine::load::fetch::convert_to_folder(&gguf, &tmp.path().join("out"), &mut |_| {}) {
        Ok(()) => panic!("a broken GGUF converted"),
        Err(e) => e.to_string(),
    }
}

fn one_line(msg: &str) {
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

// ---------------------------------------------------------------- safetensors (rows 1–7)

#[test]
fn row01_absurd_safetensors_header_length() {
    let (_tmp, dir) = fixture_copy(FIXTURE);
    let path = dir.join("model.safetensors");
    let good = std::fs::read(&path).unwrap();
    for (len, needle) in [
        (u64::MAX, "HeaderTooLarge"),
        (200_000_000, "HeaderTooLarge"),
        (good.len() as u64, "InvalidHeaderLength"),
    ] {
        let mut bytes = good.clone();
        bytes[..8].copy_from_slice(&len.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = load_err(&dir);
        assert!(
            err.contains("model.safetensors: not a valid safetensors file: header length")
                && err.contains(needle),
            "{len}: {err}"
        );
        one_line(&err);
    }
}

#[test]
fn row02_truncated_or_junk_safetensors_say_expected_vs_actual_bytes() {
    let (_tmp, dir) = fixture_copy(FIXTURE);
    let path = dir.join("model.safetensors");
    let good = std::fs::read(&path).unwrap();
    let cut = good.len() - 1000;
    std::fs::write(&path, &good[..cut]).unwrap();
    let err = load_err(&dir);
    assert!(
        err.contains(&format!("should be {} bytes, but it is {cut} bytes", good.len()))
            && err.contains("truncated by 1000 bytes")
            && err.contains("MetadataIncompleteBuffer"),
        "{err}"
    );
    let mut junk = good.clone();
    junk.extend(b"trailing junk");
    std::fs::write(&path, &junk).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("13 bytes of trailing junk"), "{err}");
}

#[cfg(unix)]
#[test]
fn row02_damaged_hugging_face_blob_is_named_with_its_sha256() {
    use sha2::Digest as _;
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(glassbox_tests::fixtures_dir().join(FIXTURE).join("model.safetensors")).unwrap();
    let sha: String = sha2::Sha256::digest(&good).iter().map(|b| format!("{b:02x}")).collect();
    // models--org--name/{blobs/<sha256>, snapshots/<rev>/model.safetensors → blob}
    let repo = tmp.path().join("models--org--tiny");
    let blob = repo.join("blobs").join(&sha);
    let snap = repo.join("snapshots").join("rev1");
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(&blob, &good[..good.len() / 2]).unwrap();
    std::os::unix::fs::symlink(&blob, snap.join("model.safetensors")).unwrap();
    std::fs::copy(
        glassbox_tests::fixtures_dir().join(FIXTURE).join("config.json"),
        snap.join("config.json"),
    )
    .unwrap();
    let err = load_err(&snap);
    assert!(
        err.contains("Hugging Face cache blob") && err.contains("download the model again"),
        "{err}"
    );
}

#[test]
fn row03_bad_data_offsets_name_the_tensor() {
    let (_tmp, dir) = fixture_copy(FIXTURE);
    let path = dir.join("model.safetensors");
    let cases = [
        // b starts inside a
        (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, "overlaps"),
        // a gap between a and b
        (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#, "gap"),
        // ends before it starts
        (r#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, "InvalidOffset"),
    ];
    for (header, what) in cases {
        std::fs::write(&path, raw_safetensors(header, &[0u8; 20])).unwrap();
        let err = load_err(&dir);
        assert!(err.contains("InvalidOffset") && err.contains(what), "{header}: {err}");
        assert!(err.contains("tensor `"), "{err}");
    }
    // Negative offsets are not numbers the format has: a JSON error, still one line.
    std::fs::write(&path, raw_safetensors(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, &[0; 4])).unwrap();
    one_line(&load_err(&dir));
    // Ten thousand tensors aliasing the same bytes: refused at once, no work per alias.
    let mut header = String::from("{");
    for i in 0..10_000 {
        header.push_str(&format!(r#""t{i}":{{"dtype":"F32","shape":[256],"data_offsets":[0,1024]}},"#));
    }
    header.pop();
    header.push('}');
    std::fs::write(&path, raw_safetensors(&header, &[0u8; 1024])).unwrap();
    assert!(load_err(&dir).contains("InvalidOffset"));
}

#[test]
fn row04_shape_dtype_bytes_mismatch_names_the_tensor() {
    let (_tmp, dir) = fixture_copy(FIXTURE);
    let path = dir.join("model.safetensors");
    std::fs::write(&path, raw_safetensors(r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &[0; 8])).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("tensor `w`: shape [3] of F32 needs 12 bytes") && err.contains("TensorInvalidInfo"), "{err}");
    let overflow = format!(
        r#"{{"w":{{"dtype":"F32","shape":[{},{}],"data_offsets":[0,8]}}}}"#,
        1u64 << 40,
        1u64 << 40
    );
    std::fs::write(&path, raw_safetensors(&overflow, &[0; 8])).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("tensor `w`") && err.contains("ValidationOverflow"), "{err}");
    // A tensor the model needs in a dtype we do not compute with: named before loading.
    let (_tmp2, dir2) = fixture_copy(FIXTURE);
    let st = dir2.join("model.safetensors");
    let mut tensors = read_tensors(&st);
    let norm = tensors.iter().position(|t| t.0 == "model.norm.weight").unwrap();
    tensors.remove(norm);
    write_tensors(&st, &tensors, 0);
    // Append model.norm.weight as I64 by hand.
    let bytes = std::fs::read(&st).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data_len = bytes.len() - 8 - n;
    header["model.norm.weight"] = serde_json::json!({"dtype": "I64", "shape": [64], "data_offsets": [data_len, data_len + 512]});
    let mut data = bytes[8 + n..].to_vec();
    data.extend([0u8; 512]);
    std::fs::write(&st, raw_safetensors(&header.to_string(), &data)).unwrap();
    let err = load_err(&dir2);
    assert!(err.contains("`model.norm.weight`: dtype I64 is not supported"), "{err}");
}

#[test]
fn row05_wrong_model_lists_every_missing_or_mismatched_tensor() {
    // All of layer 1 missing, plus one mis-shaped tensor: one error lists both.
    let (_tmp, dir) = fixture_copy(FIXTURE);
    edit_tensors(&dir, |t| {
        t.retain(|(n, _, _)| !n.starts_with("model.layers.1."));
        for (n, s, v) in t.iter_mut() {
            if n == "model.layers.0.self_attn.k_proj.weight" {
                *s = vec![16, 64];
                v.truncate(16 * 64);
            }
        }
    });
    let err = load_err(&dir);
    assert!(err.contains("9 tensors are missing: model.layers.{1}.* (every layer tensor)"), "{err}");
    assert!(err.contains("`model.layers.0.self_attn.k_proj.weight` has shape [16, 64], config.json expects [32, 64]"), "{err}");
    one_line(&err);

    // Tied config, checkpoint with an lm_head: transformers ties, so do we (and say so).
    let (_tmp, dir) = fixture_copy(FIXTURE);
    edit_tensors(&dir, |t| {
        let embed = t.iter().find(|x| x.0 == "model.embed_tokens.weight").unwrap().clone();
        t.push(("lm_head.weight".into(), embed.1, vec![0.0; embed.2.len()]));
    });
    let model = Arc::new(Model::load(&dir).unwrap());
    assert!(model.warnings().iter().any(|w| w.contains("`lm_head.weight` is ignored")), "{:?}", model.warnings());
    let trace = CpuExecutor::new(model).forward(&[1, 2, 3], PassOptions::capture(CaptureFilter::All)).unwrap();
    let logits = trace.get(HookKey::Logits).unwrap();
    assert!(logits.data.iter().any(|&v| v != 0.0), "the zero lm_head was used");

    // Untied config without an lm_head.
    let (_tmp, dir) = fixture_copy(FIXTURE);
    edit_config(&dir, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
    let err = load_err(&dir);
    assert!(err.contains("lm_head.weight") && err.contains("tie_word_embeddings"), "{err}");

    // Fewer layers in config.json than in the checkpoint: loads, names the unused tensors.
    let (_tmp, dir) = fixture_copy(FIXTURE);
    edit_config(&dir, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    let model = Model::load(&dir).unwrap();
    assert!(
        model.warnings().iter().any(|w| w.contains("9 checkpoint tensors are not used")
            && w.contains("model.layers.{1}.*")),
        "{:?}",
        model.warnings()
    );
}

#[test]
fn row06_unaligned_header_loads_the_same_values() {
    let (_tmp, dir) = fixture_copy(FIXTURE);
    let path = dir.join("model.safetensors");
    let tensors = read_tensors(&path);
    let reference = Model::load(&dir).unwrap();
    // The weights are read in place from the file, which is rewritten below: keep copies.
    let (embed, down) = (reference.weights.embed_tokens.to_f32(), reference.weights.layers[1].mlp.down_proj.to_f32());
    drop(reference);
    // Pad the header so every f32 of the data starts off a 4-byte boundary.
    let misaligned = (1..=4).any(|pad| {
        write_tensors(&path, &tensors, pad);
        let n = u64::from_le_bytes(std::fs::read(&path).unwrap()[..8].try_into().unwrap());
        n % 4 != 0
    });
    assert!(misaligned);
    let model = Model::load(&dir).unwrap();
    assert_eq!(model.weights.embed_tokens.dtype_name(), "f32", "unaligned f32 data is copied, not read in place");
    assert_eq!(model.weights.embed_tokens.to_f32(), embed);
    assert_eq!(model.weights.layers[1].mlp.down_proj.to_f32(), down);
}

#[test]
fn row07_nan_and_inf_weights_are_reported_per_tensor() {
    let (_tmp, dir) = fixture_copy(FIXTURE);
    edit_tensors(&dir, |t| {
        for (n, _, v) in t.iter_mut() {
            if n == "model.layers.0.mlp.up_proj.weight" {
                v[0] = f32::NAN;
                v[5] = f32::INFINITY;
                v[6] = f32::NEG_INFINITY;
            }
        }
    });
    let model = Arc::new(Model::load(&dir).unwrap());
    let w = model.warnings().join("\n");
    assert!(w.contains("model.layers.0.mlp.up_proj.weight (1 NaN, 2 inf)"), "{w}");
    // The pass runs; what it computes is not a number, and is not presented as one.
    let trace = CpuExecutor::new(model).forward(&[1, 2, 3], PassOptions::capture(CaptureFilter::All)).unwrap();
    let logits = trace.get(HookKey::Logits).unwrap();
    assert!(logits.data.iter().any(|v| !v.is_finite()));
    // Comparisons treat NaN as divergence.
    assert_eq!(glassbox_tests::max_abs_diff(&[f32::NAN], &[1.0]), f32::INFINITY);
}

// ---------------------------------------------------------------- config (row 8)

#[test]
fn row08_config_missing_malformed_or_absurd_is_refused_naming_the_field() {
    let (_tmp, dir) = fixture_copy(FIXTURE);
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("config.json"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    for (from, to, field) in [
        ("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1e9", "num_hidden_layers"),
        ("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000000", "num_hidden_layers"),
        ("\"hidden_size\": 64", "\"hidden_size\": 65, \"head_dim_x\": 0", "hidden_size"),
        ("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "num_key_value_heads"),
        ("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": -1e-05", "rms_norm_eps"),
        ("\"rope_theta\": 10000.0", "\"rope_theta\": null", "rope_theta"),
        (
            "\"rope_type\": \"default\"",
            "\"rope_type\": \"linear\", \"factor\": 0.0",
            "factor",
        ),
        ("{", "{ this is not json", "config.json"),
    ] {
        let (_tmp, dir) = fixture_copy(FIXTURE);
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        // head_dim is given, so hidden % heads is only checked without it.
        let text = if field == "hidden_size" { text.replace("\"head_dim\": 16,", "") } else { text };
        std::fs::write(dir.join("config.json"), text).unwrap();
        edit_config(&dir, from, to);
        let err = load_err(&dir);
        assert!(err.contains("config.json") && err.contains(field), "{to}: {err}");
        one_line(&err);
    }
}

// ---------------------------------------------------------------- GGUF (rows 9–15)

#[test]
fn row09_gguf_bad_magic_versions_and_empty_files() {
    let good = tiny_llama(false).build();
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"GGML");
    assert!(gguf_err(magic).contains("magic"));
    for v in [1u32, 4, 0xffff] {
        let mut b = good.clone();
        b[4..8].copy_from_slice(&v.to_le_bytes());
        assert!(gguf_err(b).contains(&format!("version {v} is not supported")));
    }
    assert!(gguf_err(Vec::new()).contains("magic"));
    assert!(gguf_err(b"GGUF".to_vec()).contains("version"));
}

#[test]
fn row10_gguf_counts_that_cannot_fit_are_refused_before_allocating() {
    let b = tiny_llama(false);
    for (n_tensors, n_kv) in [(u64::MAX, 1), (1, u64::MAX), (u64::MAX / 24 + 1, 0)] {
        let err = gguf_err(b.build_with_counts(n_tensors, n_kv));
        assert!(err.contains("cannot fit"), "{err}");
    }
}

#[test]
fn row11_gguf_string_lengths_and_keys_are_bounds_checked() {
    // A value string claiming u64::MAX bytes.
    let mut v = u64::MAX.to_le_bytes().to_vec();
    v.extend(b"short");
    assert!(gguf_err(GgufBuilder::new().kv_raw("general.name", 8, &v).build()).contains("claims"));
    // A key claiming more than the file.
    let mut raw = b"GGUF".to_vec();
    raw.extend(3u32.to_le_bytes());
    raw.extend(0u64.to_le_bytes());
    raw.extend(1u64.to_le_bytes());
    raw.extend(1_000_000u64.to_le_bytes());
    raw.extend(b"key");
    raw.extend([0u8; 16]);
    assert!(gguf_err(raw).contains("metadata key #0"));
    // Empty and duplicate keys.
    assert!(gguf_err(GgufBuilder::new().kv_u32("", 1).build()).contains("empty"));
    assert!(gguf_err(GgufBuilder::new().kv_u32("a", 1).kv_u32("a", 2).build()).contains("more than once"));
}

#[test]
fn row12_gguf_dimensions_never_overflow() {
    let five = GgufBuilder::new().tensor_info("w", &[1, 1, 1, 1, 1], 0, 0).build();
    assert!(gguf_err(five).contains("5 dimensions"));
    // A "negative" dimension read as u64, and the 2^42+1 product of PR #18674.
    let neg = GgufBuilder::new().tensor_info("w", &[u64::MAX, 2], 0, 0).build();
    assert!(gguf_err(neg).contains("overflow"));
    let big = GgufBuilder::new().tensor_info("w", &[(1 << 42) + 1, 1 << 22], 0, 0).build();
    assert!(gguf_err(big).contains("overflow"));
    // Huge but not overflowing: the byte length is checked against the file.
    let huge = GgufBuilder::new().tensor_info("w", &[1 << 30, 1 << 20], 0, 0).build();
    assert!(gguf_err(huge).contains("runs past the end of the file"));
}

#[test]
fn row13_corrupt_type_ids_differ_from_unsupported_quantizations() {
    let corrupt = GgufBuilder::new().tensor_info("w", &[32], 99, 0).build();
    let err = gguf_err(corrupt);
    assert!(err.contains("type id 99 is not a ggml type") && err.contains("corrupt"), "{err}");
    let negative = GgufBuilder::new().tensor_info("w", &[32], u32::MAX, 0).build();
    assert!(gguf_err(negative).contains("corrupt"));
    let ragged = GgufBuilder::new().tensor("w", &[33], 8, &[0u8; 34]).build();
    assert!(gguf_err(ragged).contains("not a multiple of the Q8_0 block size 32"));
    let ragged_k = GgufBuilder::new().tensor("w", &[128], 12, &[0u8; 144]).build();
    assert!(gguf_err(ragged_k).contains("not a multiple of the Q4_K block size 256"));
    // Valid but not decoded here (Q2_K): the clear "unsupported" error, listing what is.
    let err = convert_err(tiny_llama(false).replace_tensor("blk.0.ffn_up.weight", &[256, 8], 10, &[0u8; 8 * 84]).build());
    assert!(
        err.contains("ggml type 10 (Q2_K) is not supported (Glassbox reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"),
        "{err}"
    );
}

#[test]
fn row14_gguf_offsets_alignment_and_short_data() {
    let unaligned = GgufBuilder::new().f32_tensor("a", &[8], &[1.0; 8]).tensor_info("b", &[4], 0, 4).build();
    assert!(gguf_err(unaligned).contains("not a multiple of the file's alignment"));
    let overlap = GgufBuilder::new()
        .f32_tensor("a", &[16], &[1.0; 16])
        .f32_tensor("c", &[16], &[1.0; 16])
        .tensor_info("b", &[8], 0, 32)
        .build();
    assert!(gguf_err(overlap).contains("overlaps"));
    for a in [0u32, 13, 1 << 30] {
        let b = GgufBuilder::new().kv_u32("general.alignment", a).build();
        assert!(gguf_err(b).contains("general.alignment"), "{a}");
    }
    assert!(gguf_err(GgufBuilder::new().kv_str("general.alignment", "32").build()).contains("general.alignment"));
    let mut short = GgufBuilder::new().f32_tensor("a", &[8], &[1.0; 8]).build();
    short.pop();
    assert!(gguf_err(short).contains("runs past the end of the file"));
    // The converted model would run with garbage: an overlapping table is refused at convert.
    let err = convert_err(
        tiny_llama(false)
            .remove_tensor("output_norm.weight")
            .tensor_info("output_norm.weight", &[32], 0, 0)
            .build(),
    );
    assert!(err.contains("overlaps"), "{err}");
}

#[test]
fn row15_gguf_tokenizer_metadata_that_lies_is_refused() {
    let types = convert_err(
        tiny_llama(false)
            .remove_kv("tokenizer.ggml.token_type")
            .kv_i32_array("tokenizer.ggml.token_type", &[3, 1])
            .build(),
    );
    assert!(types.contains("token_type has 2 entries but tokenizer.ggml.tokens has 10"), "{types}");
    let bos = convert_err(tiny_llama(false).set_u32("tokenizer.ggml.bos_token_id", 10).build());
    assert!(bos.contains("token id 10 is outside the 10-token vocabulary"), "{bos}");
    let blocks = convert_err(tiny_llama(false).set_u32("llama.block_count", 600).build());
    assert!(blocks.contains("5391 tensors that llama.block_count = 600 needs are missing") && blocks.contains("model.layers.{1-599}.*"), "{blocks}");
    // Merges that would build a tokenizer the tokenizers crate panics on.
    let merges = convert_err(tiny_llama(false).set_str_array("tokenizer.ggml.merges", &["ab ab"]).build());
    assert!(merges.contains("makes \"abab\", which is not a token"), "{merges}");
    let spm = convert_err(tiny_llama(false).set_str("tokenizer.ggml.model", "llama").build());
    assert!(spm.contains("tokenizer model `llama` is not supported"), "{spm}");
    // Nested arrays deeper than one level.
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend(1u64.to_le_bytes());
    nested.extend(9u32.to_le_bytes());
    nested.extend(1u64.to_le_bytes());
    nested.extend(9u32.to_le_bytes());
    nested.extend(0u64.to_le_bytes());
    assert!(gguf_err(tiny_llama(false).kv_raw("tokenizer.ggml.scores", 9, &nested).build()).contains("nested"));
}

// ---------------------------------------------------------------- tokenizer, template (16, 17)

fn tokenizer_dir(tokenizer_json: &str, config: Option<&str>) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("tokenizer.json"), tokenizer_json).unwrap();
    if let Some(c) = config {
        std::fs::write(tmp.path().join("tokenizer_config.json"), c).unwrap();
    }
    tmp
}

fn bpe(vocab: serde_json::Value, merges: serde_json::Value, prefix: serde_json::Value, decoder: serde_json::Value) -> String {
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": decoder,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": prefix, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    })
    .to_string()
}

fn tokenizer_err(json: &str) -> String {
    let tmp = tokenizer_dir(json, None);
    match Tokenizer::load_dir(tmp.path(), 1000) {
        Ok(_) => panic!("a broken tokenizer.json loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn row16_malformed_tokenizer_json_is_an_error_not_a_panic() {
    use serde_json::{Value, json};
    let guarded_before = glassbox_engine::load::guard::caught_count();
    // An over-long merge (tokenizers #2094: bpe/model.rs panics).
    let long = tokenizer_err(&bpe(json!({"a": 0, "bbbb": 1}), json!(["a bbbb"]), Value::Null, Value::Null));
    assert!(long.contains("tokenizer.json") && long.contains("merges[0]") && long.contains("abbbb"), "{long}");
    // A merge of a token that is not in the vocabulary.
    let oov = tokenizer_err(&bpe(json!({"a": 0, "b": 1, "ab": 2}), json!(["a z"]), Value::Null, Value::Null));
    assert!(oov.contains("\"z\", which is not in the vocabulary"), "{oov}");
    // A continuing_subword_prefix longer than a merge's right part (an underflow).
    let prefix = tokenizer_err(&bpe(json!({"a": 0, "b": 1, "ab": 2}), json!(["a b"]), json!("####"), Value::Null));
    assert!(prefix.contains("continuing_subword_prefix"), "{prefix}");
    // A syntax error inside "decoder" (decoders/mod.rs `expect("Helper")`), and a cut file.
    let decoder = json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true});
    let good = bpe(json!({"a": 0, "b": 1, "ab": 2}), json!(["a b"]), Value::Null, decoder);
    let broken_decoder = good.replace("\"type\":\"ByteLevel\"", "\"type\":\"ByteLevel\",,");
    assert_ne!(broken_decoder, good);
    assert!(tokenizer_err(&broken_decoder).contains("not valid JSON"));
    assert!(tokenizer_err(&good[..good.len() / 2]).contains("not valid JSON"));
    assert!(tokenizer_err("").contains("not valid JSON"));
    // More tokens than the model has rows for.
    let vocab: serde_json::Map<String, Value> = (0..1200).map(|i| (format!("t{i}"), json!(i))).collect();
    let big = tokenizer_err(&bpe(Value::Object(vocab), json!([]), Value::Null, Value::Null));
    assert!(big.contains("1200 tokens") && big.contains("vocab_size = 1000"), "{big}");
    // Every refusal above came from the checks, not from a caught crash.
    assert_eq!(glassbox_engine::load::guard::caught_count(), guarded_before);
    // The good file loads.
    assert!(Tokenizer::load_dir(tokenizer_dir(&good, None).path(), 1000).unwrap().is_some());
}

#[test]
fn row17_hostile_chat_template_falls_back_to_chatml_with_a_warning() {
    use serde_json::{Value, json};
    let tok = bpe(json!({"a": 0, "b": 1, "ab": 2}), json!(["a b"]), Value::Null, Value::Null);
    for evil in [
        "{% for i in range(100000000) %}x{% endfor %}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{% for m in messages %}",
    ] {
        let config = json!({"chat_template": evil}).to_string();
        let tmp = tokenizer_dir(&tok, Some(&config));
        let t = Tokenizer::load_dir(tmp.path(), 10).unwrap().unwrap();
        assert!(t.warnings().iter().any(|w| w.contains("ChatML")), "{evil}: {:?}", t.warnings());
        let out = t.apply_chat_template(&[ChatMessage::user("hi")], true).unwrap();
        assert_eq!(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }
    // SSTI probes find nothing to reach: the sandbox has no Python objects.
    let ssti = json!({"chat_template": "{{ ''.__class__.__mro__ }}{{ messages[0].content }}"}).to_string();
    let tmp = tokenizer_dir(&tok, Some(&ssti));
    let t = Tokenizer::load_dir(tmp.path(), 10).unwrap().unwrap();
    let out = t.apply_chat_template(&[ChatMessage::user("hi")], true).unwrap();
    assert!(!out.contains("class"), "{out}");
    // The list form of chat_template is accepted.
    let list = json!({"chat_template": [{"name": "tool_use", "template": "TOOLS"},
                                        {"name": "default", "template": "[{{ messages[0].content }}]"}]})
    .to_string();
    let tmp = tokenizer_dir(&tok, Some(&list));
    let t = Tokenizer::load_dir(tmp.path(), 10).unwrap().unwrap();
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    assert_eq!(t.apply_chat_template(&[ChatMessage::user("hi")], false).unwrap(), "[hi]");
}

// ---------------------------------------------------------------- input (rows 18–21)

fn fixture_model() -> Arc<Model> {
    Arc::new(Model::load(&glassbox_tests::fixtures_dir().join(FIXTURE)).unwrap())
}

#[test]
fn row18_an_empty_pass_is_refused_before_any_work() {
    let mut exec = CpuExecutor::new(fixture_model());
    let err = exec.forward(&[], PassOptions::default()).unwrap_err().to_string();
    assert!(err.contains("no tokens"), "{err}");
    let err = glassbox_engine::exec::executor::generate(&mut exec, &[], 4, Default::default(), &[], &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no tokens"), "{err}");
}

/// The engine half of `glassbox generate | head`: a callback that says stop ends the
/// generation after that token, with the ids chosen so far.
#[test]
fn generation_stops_when_its_callback_breaks() {
    use std::ops::ControlFlow;
    let model = fixture_model();
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let all = glassbox_engine::exec::executor::generate(&mut exec, &[1, 2, 3], 20, Default::default(), &[], &mut |_| {}).unwrap();
    assert_eq!(all.len(), 20);
    let mut seen = 0;
    let some = glassbox_engine::exec::executor::generate(&mut exec, &[1, 2, 3], 20, Default::default(), &[], &mut |_| {
        seen += 1;
        if seen == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .unwrap();
    assert_eq!(seen, 3, "no token is computed after the stop");
    assert_eq!(some, all[..3], "the ids chosen before the stop are returned");
}

#[test]
fn row19_a_prompt_longer_than_the_context_is_refused() {
    let model = fixture_model();
    let context = model.config.max_position_embeddings;
    let mut exec = CpuExecutor::new(model);
    let ids = vec![1u32; context + 1];
    let err = exec.forward(&ids, PassOptions::default()).unwrap_err().to_string();
    assert!(err.contains(&format!("exceed the model's context of {context} positions")), "{err}");
    // 10^6 characters without a space tokenize (in the background in the GUI) without
    // pathological cost in the tokenizer wrapper.
    let (_tmp, dir) = glassbox_tests::fixture_with_tokenizer("tiny-smollm2-shape");
    let t = Tokenizer::load_dir(&dir, 1000).unwrap().unwrap();
    let ids = t.encode(&"x".repeat(1_000_000)).unwrap();
    assert_eq!(ids.len(), 1_000_000);
}

#[test]
fn row20_partial_utf8_tokens_show_their_bytes() {
    // GPT-2's byte alphabet: 0xE6 → 'æ', 0xB7 → '·', 0xB1 → '±'. "深" is E6 B7 B1.
    let json = serde_json::json!({
        "version": "1.0", "added_tokens": [], "normalizer": null, "post_processor": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "vocab": {"æ": 0, "·": 1, "±": 2}, "merges": []}
    })
    .to_string();
    let tmp = tokenizer_dir(&json, None);
    let t = Tokenizer::load_dir(tmp.path(), 3).unwrap().unwrap();
    let ids = t.encode("深").unwrap();
    assert_eq!(ids, vec![0, 1, 2]);
    assert_eq!(t.display(0), "<E6>");
    assert_eq!(t.token_bytes(0), vec![0xE6]);
    assert_eq!(t.decode(&ids).unwrap(), "深");
}

#[test]
fn row21_out_of_vocabulary_ids_are_refused_or_shown_never_dropped() {
    let mut exec = CpuExecutor::new(fixture_model());
    let err = exec.forward(&[1, 97], PassOptions::default()).unwrap_err().to_string();
    assert!(err.contains("token id 97 is outside the vocabulary"), "{err}");
    let (_tmp, dir) = glassbox_tests::fixture_with_tokenizer("tiny-smollm2-shape");
    let t = Tokenizer::load_dir(&dir, 1000).unwrap().unwrap();
    let ids = t.encode("ab").unwrap();
    let text = t.decode(&[ids[0], 999, ids[1]]).unwrap();
    assert_eq!(text, "a[#999]b");
    assert_eq!(t.display(999), "[#999]");
}

// ---------------------------------------------------------------- the GPU (rows 23–25)
//
// On lavapipe in CI (`GLASSBOX_REQUIRE_GPU=1`); a skip with a note where there is no adapter.
// The window's half (the fallback to the CPU with a notice, the check button) is in
// `app/src/gui/tests/reliability.rs`.

/// A device whose storage bindings hold 32 KiB (a WebGPU browser allows 128 MiB; the
/// fixture is small, so the limit is too).
fn small_device() -> Option<Arc<glassbox_engine::exec::gpu::GpuContext>> {
    glassbox_tests::gpu::own_ctx(|a| glassbox_engine::exec::gpu::wgpu::Limits { max_storage_buffer_binding_size: 32 << 10, ..a.limits() })
}

#[test]
fn row23_a_tensor_over_the_device_limit_is_refused_before_allocating_naming_it() {
    use glassbox_engine::exec::gpu::{GpuExecutor, GpuOptions};
    use glassbox_tests::gpu::{compare_traces, cpu_pass};
    let Some(ctx) = small_device() else { return };
    assert_eq!(ctx.max_binding_bytes(), 32 << 10);
    let model = fixture_model();
    // Weights larger than one binding (gate_proj is 40 KiB) are split, and a short pass
    // still matches the reference.
    let mut gpu = GpuExecutor::new(Arc::clone(&model), Arc::clone(&ctx), GpuOptions::default()).unwrap();
    let short: Vec<u32> = (1..9).collect();
    let options = PassOptions::capture(CaptureFilter::All);
    let trace = gpu.forward(&short, options.clone()).unwrap();
    compare_traces(&trace, &cpu_pass(&model, &short, options.clone()), glassbox_tests::tolerance::PASS_HOOK).unwrap();
    // 100 tokens: 4 heads × 100 × 100 scores need 156 KiB. Refused before allocating, with
    // the tensor, the sizes and what to do in one line.
    let long: Vec<u32> = (0..100).map(|i| i % 90 + 1).collect();
    gpu.reset();
    let err = gpu.forward(&long, options.clone()).unwrap_err().to_string();
    one_line(&err);
    assert!(err.contains("`attention scores` needs 156.2 KiB"), "{err}");
    assert!(err.contains("at most 32.0 KiB per buffer binding"), "{err}");
    assert!(err.contains("use fewer tokens") && err.contains("run on the CPU"), "{err}");
    // Nothing was half-done: the device and the executor still work.
    ctx.check_fault().unwrap();
    gpu.reset();
    let again = gpu.forward(&short, options).unwrap();
    assert_eq!(again.sampled, trace.sampled);
}

#[test]
fn row24_a_lost_device_ends_the_pass_with_an_error_and_keeps_the_trace_so_far() {
    use glassbox_engine::exec::gpu::{GpuExecutor, GpuOptions};
    use glassbox_engine::{LayerOp, Step};
    let Some(ctx) = glassbox_tests::gpu::own_ctx(|a| a.limits()) else { return };
    let model = fixture_model();
    let ids: Vec<u32> = (1..12).collect();
    let mut gpu = GpuExecutor::new(Arc::clone(&model), Arc::clone(&ctx), GpuOptions::default()).unwrap();
    gpu.begin(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
    gpu.run_to(Step::Layer(0, LayerOp::Softmax)).unwrap();
    let before: Vec<HookKey> = gpu.trace().keys().collect();
    assert!(before.contains(&HookKey::Block(0, glassbox_engine::BlockHook::Pattern)));
    // What a driver reset or an unplugged eGPU does, on purpose.
    ctx.device.destroy();
    let start = std::time::Instant::now();
    let err = gpu.step().unwrap_err().to_string();
    eprintln!("the step after the loss: {err}");
    one_line(&err);
    assert!(err.contains("lost"), "{err}");
    assert_eq!(gpu.trace().keys().collect::<Vec<_>>(), before, "the trace so far is kept");
    assert_eq!(gpu.trace().get(HookKey::Embed).unwrap().shape(), [11, 64]);
    // Later passes fail the same way, at once: no panic, no wait for a device that is gone.
    let err = gpu.forward(&ids, PassOptions::default()).unwrap_err().to_string();
    assert!(err.contains("lost"), "{err}");
    assert!(start.elapsed() < ctx.wait_limit(), "no pass waited out the limit");
}

#[test]
fn row25_a_gpu_result_that_parts_from_the_reference_is_named_with_its_first_hook() {
    use glassbox_engine::exec::gpu::{GpuExecutor, GpuOptions};
    use glassbox_engine::exec::reference_check::{check_against_cpu, f16_bound, f32_bound};
    use glassbox_engine::{BlockHook, Precision};
    let Some(ctx) = glassbox_tests::gpu::ctx() else { return };
    let model = fixture_model();
    let ids = glassbox_tests::gpu::input_ids(FIXTURE);
    let options = PassOptions::capture(CaptureFilter::All);
    let mut gpu = GpuExecutor::new(Arc::clone(&model), Arc::clone(&ctx), GpuOptions::default()).unwrap();
    // A sound GPU pass agrees at every hook.
    let trace = gpu.forward(&ids, options.clone()).unwrap();
    let check = check_against_cpu(&model, &trace, &options, &f32_bound).unwrap();
    assert!(check.agrees(), "{check}");
    assert_eq!(check.hooks.len(), trace.keys().count());
    assert!(check.to_string().starts_with("the GPU matches the CPU reference at all"), "{check}");
    // A wrong GPU result: head 1 of layer 1 zeroed on the GPU only. The check names the
    // first hook where the runs part, with its layer, op, NMSE and max |Δ|.
    gpu.reset();
    let wrong = gpu.forward(&ids, options.clone().with_ablated_heads(&[(1, 1)])).unwrap();
    let check = check_against_cpu(&model, &wrong, &options, &f32_bound).unwrap();
    let first = check.first_divergence().expect("the one-sided ablation is found");
    assert_eq!(first.key, HookKey::Block(1, BlockHook::Z));
    assert!(first.nmse > 1e-3 && first.max_abs > 0.0, "{first:?}");
    let text = check.to_string();
    one_line(&text);
    assert!(text.contains("blocks.1.attn.hook_z (layer 1, op z)") && text.contains("NMSE") && text.contains("max |Δ|"), "{text}");
    // Every hook before it agrees.
    assert!(check.hooks.iter().take_while(|h| h.key != first.key).all(|h| !h.diverges()));
    // f16 weights drift from the f32 reference within their own bound, not within f32's.
    let mut f16 = GpuExecutor::new(Arc::clone(&model), Arc::clone(&ctx), GpuOptions::precision(Precision::F16)).unwrap();
    let half = f16.forward(&ids, options.clone()).unwrap();
    let check = check_against_cpu(&model, &half, &options, &f16_bound).unwrap();
    eprintln!("f16 weights vs the f32 reference: {check}");
    assert!(check.first_divergence().is_none(), "{check}");
    let tight = check_against_cpu(&model, &half, &options, &|_| 1e-12).unwrap();
    assert!(tight.first_divergence().is_some(), "f16 weights differ from f32 weights");
}
