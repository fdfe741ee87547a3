use std::path::Path;

use super::*;
use crate::load::gguf::builder::{GgufBuilder, put_str};

fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(Path::new("bad.gguf"), bytes)
}

fn parse_err(bytes: Vec<u8>) -> String {
    match parse(bytes) {
        Ok(_) => panic!("expected a parse error"),
        Err(e) => e.to_string(),
    }
}

fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(n_tensors.to_le_bytes());
    bytes.extend(n_kv.to_le_bytes());
    bytes
}

fn one_f32_tensor() -> GgufBuilder {
    GgufBuilder::new()
        .kv_str("general.architecture", "llama")
        .f32_tensor("blk.0.attn_norm.weight", &[4], &[1.0, 2.0, 3.0, 4.0])
}

#[test]
fn parses_metadata_and_tensor() -> Result<(), GgufError> {
    let f = parse(one_f32_tensor().kv_u32("llama.block_count", 7).build())?;
    assert_eq!(f.get_str("general.architecture")?, "llama");
    assert_eq!(f.get_u32("llama.block_count")?, 7);
    assert_eq!(f.tensors().len(), 1);
    let (shape, values) = f.tensor_f32("blk.0.attn_norm.weight")?;
    assert_eq!(shape, vec![4]);
    assert_eq!(values, vec![1.0, 2.0, 3.0, 4.0]);
    Ok(())
}

#[test]
fn bad_magic_is_rejected() {
    let mut bytes = one_f32_tensor().build();
    bytes[..4].copy_from_slice(b"GGML");
    let msg = parse_err(bytes);
    assert!(msg.contains("bad.gguf") && msg.contains("magic"), "{msg}");
}

#[test]
fn unsupported_version_is_rejected() {
    let mut bytes = one_f32_tensor().build();
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    let msg = parse_err(bytes);
    assert!(msg.contains("version 1"), "{msg}");
}

#[test]
fn huge_tensor_count_is_rejected_before_allocating() {
    let msg = parse_err(one_f32_tensor().build_with_counts(1 << 60, 1));
    assert!(msg.contains("tensor count is 1152921504606846976"), "{msg}");
}

#[test]
fn huge_kv_count_is_rejected_before_allocating() {
    let msg = parse_err(one_f32_tensor().build_with_counts(1, u64::MAX));
    assert!(
        msg.contains("metadata key/value count is 18446744073709551615"),
        "{msg}"
    );
}

#[test]
fn string_longer_than_file_is_rejected() {
    let mut value = Vec::new();
    value.extend((1u64 << 60).to_le_bytes());
    value.extend(b"short");
    let msg = parse_err(GgufBuilder::new().kv_raw("general.name", 8, &value).build());
    assert!(msg.contains("metadata key `general.name`"), "{msg}");
    assert!(msg.contains("claims 1152921504606846976 bytes"), "{msg}");
}

#[test]
fn key_longer_than_file_is_rejected() {
    let mut bytes = header(0, 1);
    bytes.extend(u64::MAX.to_le_bytes());
    bytes.extend([0u8; 8]);
    let msg = parse_err(bytes);
    assert!(
        msg.contains("metadata key #0 claims 18446744073709551615 bytes"),
        "{msg}"
    );
}

#[test]
fn huge_array_is_rejected_before_allocating() {
    let mut value = Vec::new();
    value.extend(8u32.to_le_bytes());
    value.extend((1u64 << 62).to_le_bytes());
    let msg = parse_err(
        GgufBuilder::new()
            .kv_raw("tokenizer.ggml.tokens", 9, &value)
            .build(),
    );
    assert!(
        msg.contains("`tokenizer.ggml.tokens`") && msg.contains("array claims"),
        "{msg}"
    );
}

#[test]
fn too_many_dims_are_rejected() {
    let msg = parse_err(
        GgufBuilder::new()
            .tensor_info("blk.0.attn_q.weight", &[1, 1, 1, 1, 1], 0, 0)
            .build(),
    );
    assert!(
        msg.contains("tensor `blk.0.attn_q.weight`: has 5 dimensions"),
        "{msg}"
    );
}

#[test]
fn unsupported_quant_type_names_tensor_and_type() -> Result<(), GgufError> {
    let f = parse(
        GgufBuilder::new()
            .tensor("blk.0.ffn_up.weight", &[256, 1], 10, &[0u8; 84])
            .build(),
    )?;
    let msg = match f.tensor_f32("blk.0.ffn_up.weight") {
        Ok(_) => panic!("Q2_K must not decode"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("tensor `blk.0.ffn_up.weight`"), "{msg}");
    assert!(
        msg.contains("ggml type 10 (Q2_K) is not supported"),
        "{msg}"
    );
    assert!(msg.contains("Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"), "{msg}");
    Ok(())
}

#[test]
fn tensor_data_past_end_of_file_is_rejected() {
    let bytes = one_f32_tensor()
        .tensor_info("blk.0.ffn_norm.weight", &[1024], 0, 64)
        .build();
    let len = bytes.len();
    let msg = parse_err(bytes);
    assert!(msg.contains("tensor `blk.0.ffn_norm.weight`"), "{msg}");
    assert!(
        msg.contains("data offset 64 + 4096 bytes") && msg.contains(&format!("({len} bytes)")),
        "{msg}"
    );
}

#[test]
fn tensor_offset_overflow_is_rejected() {
    let msg = parse_err(
        GgufBuilder::new()
            .tensor_info("token_embd.weight", &[32, 1 << 40], 8, u64::MAX - 31)
            .build(),
    );
    assert!(
        msg.contains("tensor `token_embd.weight`") && msg.contains("runs past"),
        "{msg}"
    );
}

#[test]
fn truncated_tensor_table_is_rejected() {
    let mut bytes = header(1, 0);
    put_str(&mut bytes, "output.weight");
    bytes.extend(2u32.to_le_bytes());
    bytes.extend(8u64.to_le_bytes());
    let msg = parse_err(bytes);
    assert!(
        msg.contains("tensor `output.weight`: dimension 1 needs 8 bytes"),
        "{msg}"
    );
}

#[test]
fn missing_and_mistyped_keys_name_the_key() -> Result<(), GgufError> {
    let f = parse(one_f32_tensor().build())?;
    let missing = f.get_u32("llama.block_count").map_err(|e| e.to_string());
    assert_eq!(
        missing,
        Err("bad.gguf: metadata key `llama.block_count`: is missing".to_string())
    );
    let mistyped = match f.get_u32("general.architecture") {
        Ok(_) => panic!("a string is not a u32"),
        Err(e) => e.to_string(),
    };
    assert!(
        mistyped.contains("`general.architecture`: expected a non-negative integer"),
        "{mistyped}"
    );
    Ok(())
}

#[test]
fn duplicate_key_is_rejected() {
    let msg = parse_err(one_f32_tensor().kv_u32("a", 1).kv_u32("a", 2).build());
    assert!(
        msg.contains("metadata key `a`: appears more than once"),
        "{msg}"
    );
}

#[test]
fn deep_nested_arrays_are_rejected() {
    let mut value = Vec::new();
    for _ in 0..10 {
        value.extend(9u32.to_le_bytes());
        value.extend(1u64.to_le_bytes());
    }
    value.extend(4u32.to_le_bytes());
    value.extend(0u64.to_le_bytes());
    let msg = parse_err(GgufBuilder::new().kv_raw("x", 9, &value).build());
    assert!(msg.contains("nested"), "{msg}");
}

#[test]
fn open_reads_through_mmap_and_names_missing_file() -> Result<(), GgufError> {
    let dir = tempfile::tempdir().map_err(|e| GgufError::io(Path::new("tmp"), e))?;
    let path = dir.path().join("ok.gguf");
    std::fs::write(&path, one_f32_tensor().build()).map_err(|e| GgufError::io(&path, e))?;
    let f = GgufFile::open(&path)?;
    assert_eq!(
        f.tensor_f32("blk.0.attn_norm.weight")?.1,
        vec![1.0, 2.0, 3.0, 4.0]
    );
    let missing = dir.path().join("missing.gguf");
    let msg = GgufFile::open(&missing)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        matches!(&msg, Err(m) if m.contains("missing.gguf")),
        "{msg:?}"
    );
    Ok(())
}

#[test]
fn empty_file_is_rejected() -> Result<(), GgufError> {
    let dir = tempfile::tempdir().map_err(|e| GgufError::io(Path::new("tmp"), e))?;
    let path = dir.path().join("empty.gguf");
    std::fs::write(&path, b"").map_err(|e| GgufError::io(&path, e))?;
    let msg = GgufFile::open(&path).map(|_| ()).map_err(|e| e.to_string());
    assert!(
        matches!(&msg, Err(m) if m.contains("empty.gguf: not a valid GGUF file: magic needs 4 bytes")),
        "{msg:?}"
    );
    Ok(())
}

#[test]
fn one_level_of_nested_arrays_is_read_two_are_not() -> Result<(), GgufError> {
    let inner = |b: &mut Vec<u8>| {
        b.extend(4u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(7u32.to_le_bytes());
    };
    let mut one = 9u32.to_le_bytes().to_vec();
    one.extend(1u64.to_le_bytes());
    inner(&mut one);
    let f = parse(GgufBuilder::new().kv_raw("x", 9, &one).build())?;
    assert!(matches!(f.metadata("x"), Some(GgufValue::Array { items, .. }) if items.len() == 1));
    let mut two = 9u32.to_le_bytes().to_vec();
    two.extend(1u64.to_le_bytes());
    two.extend(9u32.to_le_bytes());
    two.extend(1u64.to_le_bytes());
    inner(&mut two);
    let msg = parse_err(GgufBuilder::new().kv_raw("x", 9, &two).build());
    assert!(msg.contains("nested more than 1 deep"), "{msg}");
    Ok(())
}

#[test]
fn unaligned_tensor_offset_is_rejected() {
    let bytes = GgufBuilder::new()
        .f32_tensor("a.weight", &[8], &[1.0; 8])
        .tensor_info("b.weight", &[4], 0, 4)
        .build();
    let msg = parse_err(bytes);
    assert!(
        msg.contains("tensor `b.weight`") && msg.contains("not a multiple of the file's alignment 32"),
        "{msg}"
    );
}

#[test]
fn overlapping_tensors_are_rejected() {
    // b starts at 32, inside a's 64 bytes (offsets 0..64).
    let bytes = GgufBuilder::new()
        .f32_tensor("a.weight", &[16], &[1.0; 16])
        .f32_tensor("c.weight", &[16], &[2.0; 16])
        .tensor_info("b.weight", &[8], 0, 32)
        .build();
    let msg = parse_err(bytes);
    assert!(msg.contains("overlaps tensor `a.weight`"), "{msg}");
}

#[test]
fn absurd_alignment_is_rejected() {
    for (value, ty) in [(0u32, 4u32), (13, 4), (1 << 30, 4)] {
        let msg = parse_err(
            GgufBuilder::new()
                .kv_raw("general.alignment", ty, &value.to_le_bytes())
                .build(),
        );
        assert!(msg.contains("general.alignment"), "{value}: {msg}");
    }
    let msg = parse_err(GgufBuilder::new().kv_str("general.alignment", "32").build());
    assert!(msg.contains("general.alignment"), "{msg}");
}

#[test]
fn escape_sequences_in_keys_never_reach_the_message() {
    let key = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}";
    let mut bytes = GgufBuilder::new().kv_u32(key, 1).kv_u32(key, 2).build();
    let msg = parse_err(std::mem::take(&mut bytes));
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
    assert!(msg.contains("evil\\u{1b}[2J"), "{msg}");
}
