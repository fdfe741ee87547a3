//! Phi-3's `longrope` (Phi-3-mini-128k, Phi-3.5-mini) against transformers 5.24 on an unseen
//! tiny checkpoint (`fixtures/unseen/phi3-longrope`, `scripts/make_longrope_fixture.py`): its
//! original context is 16, so the 12-token prompt runs on the short factors and the 24-token one
//! on the long factors, both with cos and sin × the attention factor. Every hook on the CPU and
//! the GPU, greedy generation through the KV cache (which crosses into the long factors while
//! the cached keys keep the short ones, as transformers' `generate` does), and the same weights
//! from a GGUF written as llama.cpp's converter writes them. Its gradients past the original
//! context are checked with every unseen checkpoint's (`training_families.rs`).
//!
//! GPU tests print a note and pass without an adapter, unless `GLASSBOX_REQUIRE_GPU=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use glassbox_engine::Model;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, generate};
use glassbox_engine::exec::gpu::GpuOptions;
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::load::config::RopeKind;
use glassbox_tests::gpu::{compare_traces, cpu_pass, gpu_exec};
use glassbox_tests::tolerance::{FIXTURE_HOOK_REL, PASS_HOOK};
use glassbox_tests::{Golden, first_divergence, fixtures_dir, gpu_or_skip, read_goldens};

const NAME: &str = "unseen/phi3-longrope";
const PROMPTS: [&str; 2] = ["short", "long"];

fn dir() -> PathBuf {
    fixtures_dir().join(NAME)
}

fn load() -> Arc<Model> {
    Arc::new(Model::load(&dir()).unwrap_or_else(|e| panic!("{NAME}: {e}")))
}

fn goldens(prompt: &str) -> BTreeMap<String, Golden> {
    read_goldens(&dir().join(format!("golden-{prompt}.safetensors"))).unwrap()
}

fn ids_of(g: &BTreeMap<String, Golden>) -> Vec<u32> {
    g["input_ids"].values.iter().map(|&v| v as u32).collect()
}

fn assert_matches(how: &str, model: Arc<Model>) {
    for prompt in PROMPTS {
        glassbox_tests::assert_every_hook_matches(&format!("{NAME} {prompt} ({how})"), model.clone(), &goldens(prompt), 30);
    }
}

#[test]
fn the_config_gives_transformers_frequencies_and_attention_factor() {
    let model = load();
    let text = std::fs::read_to_string(dir().join("rope.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = |key: &str| -> Vec<f32> { serde_json::from_value(want[key].clone()).unwrap() };
    let long = model.longrope.as_ref().expect("a longrope model");
    let close = |ours: &[f32], theirs: &[f32], what: &str| {
        assert_eq!(ours.len(), theirs.len(), "{what}");
        for (a, b) in ours.iter().zip(theirs) {
            assert!((a - b).abs() <= 2.0 * f32::EPSILON * b.abs(), "{what}: {ours:?} vs transformers {theirs:?}");
        }
    };
    close(&model.inv_freq, &list("short_inv_freq"), "short inv_freq");
    close(&long.long_inv_freq, &list("long_inv_freq"), "long inv_freq");
    assert!((f64::from(long.attention_factor) - want["attention_factor"].as_f64().unwrap()).abs() < 1e-6);
    assert_eq!(long.original_max_position_embeddings, 16);
    assert!(matches!(model.config.rope_kind(), Ok(RopeKind::LongRope { original_max_position_embeddings: 16, .. })));
}

#[test]
fn every_hook_matches_transformers_within_and_past_the_original_context() {
    assert_matches("folder", load());
}

/// The long golden really needs the long factors: without them its rotated q already differs.
#[test]
fn the_long_prompt_is_not_matched_by_the_short_factors() {
    let mut plain = Model::load(&dir()).unwrap();
    plain.longrope = None;
    let g = goldens("long");
    let trace = CpuExecutor::new(Arc::new(plain)).forward(&ids_of(&g), PassOptions::capture(CaptureFilter::All)).unwrap();
    let diff = first_divergence(&trace, &g, FIXTURE_HOOK_REL as f32).expect("short factors must not match the long golden");
    assert!(diff.contains("hook_rot_q"), "{diff}");
}

#[test]
fn greedy_generation_through_the_cache_matches_transformers_generate() {
    let model = load();
    let (ids, want) = glassbox_tests::golden_generation(NAME);
    let mut exec = CpuExecutor::new(model);
    let got = generate(&mut exec, &ids, want.len(), SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
    assert_eq!(got, want, "cached greedy generation (crosses position 16)");
}

#[test]
fn a_gguf_written_as_llama_cpp_writes_it_loads_converted_and_natively() {
    let gguf = dir().join("phi3-longrope.gguf");
    let out = tempfile::tempdir().unwrap();
    glassbox_engine::load::gguf::convert_gguf_to_hf(&gguf, out.path(), &mut |_, _| {}).unwrap();
    assert_matches("GGUF converted", Arc::new(Model::load(out.path()).unwrap()));
    assert_matches("GGUF native", Arc::new(Model::load_with(&gguf, glassbox_engine::WeightsMode::Native).unwrap()));
}

#[test]
fn every_hook_on_the_gpu_matches_transformers_and_the_cpu() {
    let ctx = gpu_or_skip!();
    let model = load();
    let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
    for prompt in PROMPTS {
        let g = goldens(prompt);
        let ids = ids_of(&g);
        gpu.reset();
        let got = gpu.forward(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
        if let Some(diff) = first_divergence(&got, &g, FIXTURE_HOOK_REL as f32) {
            panic!("{prompt} on the GPU: first diverging hook: {diff}");
        }
        let cpu = cpu_pass(&model, &ids, PassOptions::capture(CaptureFilter::All));
        let worst = compare_traces(&got, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("{prompt}, GPU vs CPU: {e}"));
        eprintln!("{prompt}: {} hooks, worst NMSE vs CPU {:.2e}", got.len(), worst.nmse);
    }
}

/// A pass continued from the cache that ends past position 16 rotates its new positions by the
/// long factors; the first half's keys stay as the short factors rotated them.
#[test]
fn a_pass_crossing_the_original_context_from_the_gpu_cache_matches_the_cpu() {
    let ctx = gpu_or_skip!();
    let model = load();
    let ids = ids_of(&goldens("long"));
    let mut cpu = CpuExecutor::new(model.clone());
    let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
    for e in [&mut cpu as &mut dyn Executor, &mut gpu] {
        e.forward(&ids[..12], PassOptions::capture(CaptureFilter::Nothing)).unwrap();
    }
    let want = cpu.forward(&ids[12..], PassOptions::capture(CaptureFilter::All)).unwrap();
    let got = gpu.forward(&ids[12..], PassOptions::capture(CaptureFilter::All)).unwrap();
    compare_traces(&got, &want, PASS_HOOK).unwrap_or_else(|e| panic!("cached second half: {e}"));
    let (prompt, expected) = glassbox_tests::golden_generation(NAME);
    gpu.reset();
    let generated = generate(&mut gpu, &prompt, expected.len(), SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
    assert_eq!(generated, expected, "cached greedy generation on the GPU");
}

/// A trained longrope model exported for transformers (`hf_config_json`) keeps its RoPE: both
/// factor lists, the original context at the top level (where Phi-3 reads it) and the factor.
#[test]
fn the_exported_config_keeps_longrope() {
    let model = load();
    let json = glassbox_engine::train::hf_config::hf_config_json(&model.config);
    assert_eq!(json["original_max_position_embeddings"], 16, "{json}");
    let again = glassbox_engine::LlamaConfig::from_json(&json.to_string(), std::path::Path::new("exported config.json")).unwrap();
    assert_eq!(again.longrope(), model.longrope);
    assert_eq!(again.inv_freq(), model.inv_freq);
}
