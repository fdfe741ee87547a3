//! Bad GGUF input for the native loader (`WeightsMode::Native`, issue 22 item 6): each a
//! one-line error naming the file, the tensor and what to do, never a panic. Built with the
//! engine's GGUF builder: a NaN or infinite block scale, blocks cut short, a K-quant row that
//! is not whole 256-value blocks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use glassbox_engine::load::gguf::builder::{f16_bytes, tiny_llama};
use glassbox_engine::{Model, WeightsMode};

/// `rows` rows of 32 values as Q8_0 blocks; row `bad` (if any) with the f16 scale `scale`.
fn q8_rows(rows: usize, bad: Option<(usize, u16)>) -> Vec<u8> {
    (0..rows)
        .flat_map(|r| {
            let mut b = match bad {
                Some((row, bits)) if row == r => bits.to_le_bytes().to_vec(),
                _ => f16_bytes(0.02).to_vec(),
            };
            b.extend((0..32).map(|i| (i as u8).wrapping_mul(5)));
            b
        })
        .collect()
}

fn load_err(bytes: Vec<u8>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, bytes).unwrap();
    let err = Model::load_with(&path, WeightsMode::Native).err().expect("a broken GGUF loaded").to_string();
    assert!(err.contains("model.gguf") && !err.contains('\n'), "{err}");
    err
}

#[test]
fn native_nan_and_infinite_scales_name_the_block() {
    for (bits, what) in [(0x7e00u16, "a NaN"), (0x7c00, "an infinite"), (0xfc00, "an infinite")] {
        let gguf = tiny_llama(false).replace_tensor("blk.0.attn_output.weight", &[32, 32], 8, &q8_rows(32, Some((3, bits)))).build();
        let err = load_err(gguf);
        assert!(err.contains("tensor `blk.0.attn_output.weight`: block at row 3, column 0 has"), "{err}");
        assert!(err.contains(&format!("{what} scale; the file is damaged, download it again")), "{err}");
    }
}

#[test]
fn native_blocks_cut_short_name_the_tensor() {
    let mut gguf = tiny_llama(false).replace_tensor("output_norm.weight", &[32], 0, &[0u8; 128]).build();
    for cut in [1, 64, 127] {
        gguf.truncate(gguf.len() - cut);
        let err = load_err(gguf.clone());
        assert!(err.contains("tensor `") && err.contains("cut short, download it again"), "{err}");
    }
}

#[test]
fn native_k_quant_rows_must_be_whole_blocks() {
    // Q4_K (12), Q5_K (13) and Q6_K (14) rows of 32 values: their blocks hold 256.
    for ty in [12u32, 13, 14] {
        let err = load_err(tiny_llama(false).replace_tensor("blk.0.attn_output.weight", &[32, 32], ty, &[0u8; 210 * 4]).build());
        assert!(err.contains("tensor `blk.0.attn_output.weight`") && err.contains("block size 256") && err.contains("again"), "{err}");
    }
}
