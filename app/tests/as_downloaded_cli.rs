//! `glassbox compare --weights-b f32-ref`: a GGUF kept as downloaded beside its blocks
//! dequantized to f32, hook by hook (the block-type fixtures need no model download).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{assert_one_line_error, glassbox, json_of};

fn fixture(ty: &str) -> String {
    format!("{}/../tests/fixtures/gguf-blocks/{ty}/model.gguf", env!("CARGO_MANIFEST_DIR"))
}

const TYPES: [&str; 11] = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M"];

/// The CPU, and the GPU where an adapter exists (required in CI): lavapipe runs each block
/// type's WGSL prelude against the same device's f32 path.
fn devices() -> Vec<&'static str> {
    let gpu = glassbox_tests::gpu::ctx().is_some();
    if gpu { vec!["cpu", "gpu"] } else { vec!["cpu"] }
}

#[test]
fn every_block_type_as_downloaded_agrees_with_its_f32_reference_at_every_hook() {
    for device in devices() {
        for ty in TYPES {
            let model = fixture(ty);
            let v = json_of(&glassbox(&["compare", "--model", &model, "--prompt", "The capital of France is", "--weights-b", "f32-ref", "--device", device, "--json"]));
            assert!(v["first_apart"].is_null(), "{ty} on {device}: {v}");
            let worst = v["hooks"].as_array().unwrap().iter().map(|h| h["rel_l2"].as_f64().unwrap()).fold(0.0, f64::max);
            assert!(worst <= 1e-5, "{ty} on {device}: worst relative L2 {worst}");
            eprintln!("{ty} on {device}: worst relative L2 {worst:.1e}");
        }
    }
}

#[test]
fn as_downloaded_and_the_f32_reference_agree_at_every_hook() {
    for ty in ["Q4_K_M", "Q5_1", "Q6_K"] {
        let model = fixture(ty);
        let v = json_of(&glassbox(&["compare", "--model", &model, "--prompt", "The capital of France is", "--weights-b", "f32-ref", "--json"]));
        assert!(v["first_apart"].is_null(), "{ty}: {v}");
        let hooks = v["hooks"].as_array().unwrap();
        assert!(hooks.len() > 40, "{ty}: every hook compared");
        let worst = hooks.iter().map(|h| h["rel_l2"].as_f64().unwrap()).fold(0.0, f64::max);
        assert!(worst <= 1e-5, "{ty}: worst relative L2 {worst}");
        // The same blocks re-rounded to 4 bits do part: the comparison can see a difference.
        let q4 = json_of(&glassbox(&["compare", "--model", &model, "--prompt", "The capital of France is", "--weights-b", "q4", "--json"]));
        assert!(!q4["first_apart"].is_null(), "{ty}: 4-bit weights part from the file's");
    }
}

#[test]
fn the_f32_reference_of_f32_weights_is_one_line() {
    let out = glassbox(&["compare", "--model", &fixture("Q8_0"), "--weights", "f32", "--prompt", "The capital", "--weights-b", "f32-ref"]);
    assert_one_line_error(&out, "--weights native");
}
