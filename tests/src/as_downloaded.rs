//! Models kept as downloaded, built in memory: every matrix of a fixture written as llama.cpp's
//! Q4_0 blocks and held as `Matrix::quantized`, as the native GGUF loader holds a file's.

use glassbox_engine::Model;
use glassbox_engine::experiments::quantize::q4_0_blocks;
use glassbox_engine::load::gguf::GgmlType;
use glassbox_engine::load::matrix::{Matrix, QuantBytes};

/// `m` as Q4_0 blocks (rows a multiple of 32 values).
pub fn q4_0_matrix(m: &Matrix) -> Matrix {
    let f = m.to_f32();
    let bytes: Vec<u8> = f.outer_iter().flat_map(|row| q4_0_blocks(&row.to_vec()).unwrap()).collect();
    Matrix::quantized(GgmlType::Q4_0, QuantBytes::Owned(bytes.into()), f.nrows(), f.ncols()).unwrap()
}

/// `model` with every matrix (embedding and head included) kept as Q4_0 blocks.
pub fn q4_0_model(model: &Model) -> Model {
    let mut w = model.weights.clone();
    for l in &mut w.layers {
        let (a, m) = (&mut l.self_attn, &mut l.mlp);
        for matrix in [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj, &mut m.gate_proj, &mut m.down_proj].into_iter().chain(m.up_proj.as_mut()) {
            *matrix = q4_0_matrix(matrix);
        }
    }
    w.embed_tokens = q4_0_matrix(&w.embed_tokens);
    w.lm_head = w.lm_head.as_ref().map(q4_0_matrix);
    model.with_weights(w, "Q4_0 weights, as downloaded".into())
}

/// The GGUF `glassbox fetch` kept beside a known model's converted files, or `None` (skipped)
/// when the cache lacks it — a failure under `GLASSBOX_REQUIRE_MODEL`.
pub fn kept_gguf(known: glassbox_engine::load::fetch::KnownModel) -> Option<std::path::PathBuf> {
    let dir = known.dir().ok()?;
    let gguf = std::fs::read_dir(&dir)
        .ok()
        .and_then(|d| d.filter_map(|e| e.ok().map(|e| e.path())).find(|p| p.extension().is_some_and(|x| x == "gguf")));
    if gguf.is_none() || !glassbox_engine::load::fetch::is_complete(&dir) {
        let why = format!("{} holds no converted model with its GGUF beside it (run `glassbox fetch {}`)", dir.display(), known.name());
        assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but {why}");
        eprintln!("note: skipping: {why}");
        return None;
    }
    gguf
}

/// The tiny Llama in Q4_1 blocks (`tests/fixtures/gguf-blocks/Q4_1`).
pub fn tiny_q4_1_gguf() -> std::path::PathBuf {
    crate::fixtures_dir().join("gguf-blocks/Q4_1/model.gguf")
}
