//! The block-type fixtures (`tests/fixtures/gguf-blocks/`, made by
//! `scripts/make-random-gguf.py`) are what their README says: each matrix holds the named
//! GGML type, the engine's reference dequantizer gives gguf-py's values (`reference.json`)
//! bit for bit, and every file converts and runs a forward pass with finite logits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use glassbox_engine::Model;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::experiments::analysis::last_logits;
use glassbox_engine::load::gguf::dequant::dequantize;
use glassbox_engine::load::gguf::{GgmlType, GgufFile};

/// Fixture folder and the type of its matrices (`Q4_K_M`: the mixed recipe).
const FIXTURES: &[&str] = &[
    "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/gguf-blocks")
        .join(name)
}

/// The type llama.cpp's Q4_K_M recipe gives a tensor of the 2-layer fixture.
fn expected_type(fixture: &str, tensor: &str) -> String {
    if tensor.ends_with("norm.weight") {
        return "F32".into();
    }
    if fixture != "Q4_K_M" {
        return fixture.into();
    }
    // use_more_bits(1, 2) is true, use_more_bits(0, 2) false.
    let more = tensor == "output.weight"
        || tensor == "blk.1.attn_v.weight"
        || tensor == "blk.1.ffn_down.weight";
    if more { "Q6_K" } else { "Q4_K" }.into()
}

#[test]
fn every_matrix_holds_the_fixtures_block_type() {
    for name in FIXTURES {
        let gguf = GgufFile::open(&fixture(name).join("model.gguf")).unwrap();
        let mut seen = BTreeMap::new();
        for t in gguf.tensors() {
            assert_eq!(t.ggml_type.to_string(), expected_type(name, &t.name), "{name}: {}", t.name);
            *seen.entry(t.ggml_type.to_string()).or_insert(0) += 1;
        }
        assert_eq!(gguf.tensors().len(), 21, "{name}: {seen:?}");
    }
}

#[test]
fn reference_dequantizer_matches_gguf_py_on_the_fixtures() {
    for name in FIXTURES {
        let dir = fixture(name);
        let gguf = GgufFile::open(&dir.join("model.gguf")).unwrap();
        let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
        let reference: BTreeMap<String, Vec<f64>> = serde_json::from_str(&text).unwrap();
        assert_eq!(reference.len(), 4, "{name}");
        for (tensor, want) in &reference {
            let info = gguf.tensor(tensor).unwrap();
            let (block, block_bytes) = info.ggml_type.block_layout().unwrap();
            let blocks = want.len().div_ceil(block);
            let bytes = &gguf.tensor_bytes(info).unwrap()[..blocks * block_bytes];
            let got = dequantize(info.ggml_type, bytes, blocks * block).unwrap();
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert_eq!(g.to_bits(), (*w as f32).to_bits(), "{name} {tensor}[{i}]: {g} vs gguf-py {w}");
            }
            assert!(info.ggml_type != GgmlType::F32, "{name} {tensor} is a matrix");
        }
    }
}

#[test]
fn every_fixture_converts_and_runs() {
    for name in FIXTURES {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("hf");
        glassbox_engine::load::fetch::convert_to_folder(&fixture(name).join("model.gguf"), &out, &mut |_| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let model = Arc::new(Model::load(&out).unwrap());
        let mut exec = CpuExecutor::new(model.clone());
        let ids = model.tokenizer.as_ref().unwrap().encode("the quick brown fox").unwrap();
        assert!(ids.len() >= 3, "{name}: {ids:?}");
        let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
        let logits = last_logits(&trace).unwrap();
        assert_eq!(logits.len(), 300, "{name}");
        assert!(logits.iter().all(|v| v.is_finite()), "{name}: {logits:?}");
        let spread = logits.iter().cloned().fold(f32::MIN, f32::max)
            - logits.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 0.5, "{name}: the logits are spread out, {spread}");
    }
}
