use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::exec::cpu::CpuExecutor;
use crate::exec::executor::{Executor, PassOptions};
use crate::load::gguf::builder::{GgufBuilder, f16_bytes, tiny_gemma3, tiny_llama};
use crate::load::gguf::{convert_gguf_to_hf, unpermute_rows};
use crate::load::model::{Model, Named, WeightsMode};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// `rows` rows of `cols` values as Q8_0 blocks (f16 scale, 32 signed bytes), distinct per row.
fn q8_0(rows: usize, cols: usize, scale: f32) -> Vec<u8> {
    let mut out = Vec::new();
    for r in 0..rows {
        for b in 0..cols / 32 {
            out.extend(f16_bytes(scale * (1.0 + r as f32 * 0.1)));
            out.extend((0..32).map(|i| ((i * 7 + r as i32 * 13 + b as i32 * 3) % 50 - 25) as i8 as u8));
        }
    }
    out
}

/// The tiny Llama with Q and K (permuted by llama.cpp) and o_proj stored as Q8_0.
fn tiny_llama_q8() -> GgufBuilder {
    tiny_llama(false)
        .replace_tensor("blk.0.attn_q.weight", &[32, 32], 8, &q8_0(32, 32, 0.01))
        .replace_tensor("blk.0.attn_k.weight", &[32, 16], 8, &q8_0(16, 32, 0.02))
        .replace_tensor("blk.0.attn_output.weight", &[32, 32], 8, &q8_0(32, 32, 0.03))
}

/// The GGUF loaded natively and through the converter.
fn both(bytes: &[u8]) -> (Model, Model) {
    let tmp = tempdir();
    let gguf = write(tmp.path(), "tiny.gguf", bytes);
    let out = tmp.path().join("converted");
    std::fs::create_dir(&out).unwrap_or_else(|e| panic!("{e}"));
    convert_gguf_to_hf(&gguf, &out, &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));
    let native = Model::load_with(&gguf, WeightsMode::Native).unwrap_or_else(|e| panic!("{e}"));
    let f32 = Model::load_with(&out, WeightsMode::F32).unwrap_or_else(|e| panic!("{e}"));
    (native, f32)
}

/// Every weight equal bit for bit (the same dequantizer), and every hook of a pass equal
/// within float rounding.
fn assert_same(native: Model, f32: Model) {
    assert_eq!(native.weights_mode(), WeightsMode::Native);
    assert_eq!(f32.weights_mode(), WeightsMode::F32);
    let (a, b) = (native.weights.named(), f32.weights.named());
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        match (x, y) {
            (Named::Matrix(x), Named::Matrix(y)) => assert_eq!(x.to_f32(), y.to_f32(), "{name}"),
            (Named::Vector(x), Named::Vector(y)) => assert_eq!(x, y, "{name}"),
            _ => panic!("{name}: a matrix and a vector"),
        }
    }
    let ids = [1, 2, 3, 4, 5];
    let ta = CpuExecutor::new(Arc::new(native)).forward(&ids, PassOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let tb = CpuExecutor::new(Arc::new(f32)).forward(&ids, PassOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    ta.materialize();
    tb.materialize();
    assert!(ta.len() > 10 && ta.len() == tb.len());
    for (key, x) in ta.iter() {
        let Some(y) = tb.get(key) else { panic!("{key:?} missing") };
        let scale = y.data.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = x.data.iter().zip(y.data.iter()).fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff <= 1e-5 * scale, "{key:?}: differs by {diff}");
    }
}

#[test]
fn row_bytes_unpermute_moves_rows_as_the_f32_one_does() {
    let values = crate::load::gguf::builder::matrix(24, 3);
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    for heads in [1, 2, 3, 6] {
        let moved: Vec<f32> = unpermute_row_bytes(&bytes, 12, heads).chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        assert_eq!(moved, unpermute_rows(&values, 3, heads), "heads = {heads}");
    }
}

#[test]
fn tiny_llama_native_equals_converted() {
    let (native, f32) = both(&tiny_llama(false).build());
    assert_eq!(native.source.weights_note, "F32 weights (token embedding Q8_0), as downloaded");
    assert_eq!(native.weights.embed_tokens.quant_type(), Some(crate::load::gguf::GgmlType::Q8_0));
    assert_same(native, f32);
}

#[test]
fn tiny_llama_with_quantized_q_and_k_equals_converted() {
    let (native, f32) = both(&tiny_llama_q8().build());
    let q = &native.weights.layers[0].self_attn.q_proj;
    assert_eq!(q.quant_type(), Some(crate::load::gguf::GgmlType::Q8_0));
    // The un-permuted copy is owned; o_proj stays in the map: both count where they lie.
    assert!(native.weights_resident_bytes() < f32.weights_resident_bytes());
    assert_same(native, f32);
}

#[test]
fn tiny_gemma3_native_equals_converted() {
    let (native, f32) = both(&tiny_gemma3().build());
    assert_same(native, f32);
}

#[test]
fn a_folder_loads_natively_from_the_gguf_beside_it() {
    let tmp = tempdir();
    let gguf = write(tmp.path(), "tiny.gguf", &tiny_llama(false).build());
    assert_eq!(WeightsMode::default_for(&gguf), WeightsMode::Native);
    assert_eq!(WeightsMode::default_for(tmp.path()), WeightsMode::F32);
    let out = tmp.path().join("converted");
    std::fs::create_dir(&out).unwrap_or_else(|e| panic!("{e}"));
    convert_gguf_to_hf(&gguf, &out, &mut |_, _| {}).unwrap_or_else(|e| panic!("{e}"));
    let err = Model::load_with(&out, WeightsMode::Native).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("no .gguf beside") && err.contains("glassbox fetch"), "{err}");
    std::fs::copy(&gguf, out.join("tiny.gguf")).unwrap_or_else(|e| panic!("{e}"));
    let m = Model::load_with(&out, WeightsMode::Native).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.weights_mode(), WeightsMode::Native);
}

/// The error text of loading `bytes` natively.
fn native_err(bytes: Vec<u8>) -> String {
    let tmp = tempdir();
    let gguf = write(tmp.path(), "bad.gguf", &bytes);
    match Model::load_with(&gguf, WeightsMode::Native) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_nan_or_infinite_scale_is_refused_naming_the_block() {
    let mut q = q8_0(32, 32, 0.01);
    // Row 7's block: f16 NaN as its scale.
    q[7 * 34..7 * 34 + 2].copy_from_slice(&0x7e00u16.to_le_bytes());
    let err = native_err(tiny_llama_q8().replace_tensor("blk.0.attn_output.weight", &[32, 32], 8, &q).build());
    assert!(err.contains("bad.gguf") && err.contains("`blk.0.attn_output.weight`"), "{err}");
    assert!(err.contains("block at row 7, column 0 has a NaN scale; the file is damaged, download it again"), "{err}");
    assert!(!err.contains('\n'));
    q[7 * 34..7 * 34 + 2].copy_from_slice(&0x7c00u16.to_le_bytes());
    let err = native_err(tiny_llama_q8().replace_tensor("blk.0.attn_output.weight", &[32, 32], 8, &q).build());
    assert!(err.contains("has an infinite scale"), "{err}");
}

#[test]
fn a_truncated_file_is_refused_naming_the_tensor() {
    let mut bytes = tiny_llama_q8().build();
    bytes.truncate(bytes.len() - 40);
    let err = native_err(bytes);
    assert!(err.contains("bad.gguf") && err.contains("tensor `") && err.contains("download it again"), "{err}");
}

#[test]
fn a_k_quant_row_that_is_not_whole_blocks_is_refused() {
    // Q4_K (type 12) with 32 values a row: its blocks hold 256.
    let err = native_err(tiny_llama(false).replace_tensor("blk.0.attn_output.weight", &[32, 32], 12, &[0u8; 144 * 4]).build());
    assert!(err.contains("`blk.0.attn_output.weight`") && err.contains("256"), "{err}");
}
