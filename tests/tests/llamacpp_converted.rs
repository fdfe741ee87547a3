//! GGUFs written by llama.cpp's own converter (`convert_hf_to_gguf.py`, `--outtype f16`) from
//! tiny Qwen 2, Qwen 3, OLMo 2 and Phi-3 checkpoints (`fixtures/llamacpp-converted`,
//! `scripts/make_llamacpp_converted_fixtures.py`; weights f16-exact, so nothing is lost): each
//! loads natively (f16 blocks in place) and converted to f32, gives transformers' logits on the
//! HF folder it came from, on the CPU and the GPU, and tokenizes as transformers does there.
//!
//! GPU checks print a note and pass without an adapter, unless `GLASSBOX_REQUIRE_GPU=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::gpu::GpuOptions;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{HookKey, Model, WeightsMode};
use glassbox_tests::tolerance::FIXTURE_HOOK_REL;
use glassbox_tests::{Golden, fixtures_dir, max_abs, max_abs_diff, read_goldens};

const FAMILIES: [&str; 4] = ["qwen2", "qwen3", "olmo2", "phi3"];

fn dir() -> std::path::PathBuf {
    fixtures_dir().join("llamacpp-converted")
}

/// The GGUF natively and converted to an f32 folder (kept alive by the returned tempdir).
fn both(family: &str) -> (Vec<(&'static str, Arc<Model>)>, tempfile::TempDir) {
    let gguf = dir().join(format!("{family}.gguf"));
    let native = Model::load_with(&gguf, WeightsMode::Native).unwrap_or_else(|e| panic!("{family} natively: {e}"));
    assert_eq!(native.weights_mode(), WeightsMode::Native, "{family}: f16 matrices kept as stored");
    let out = tempfile::tempdir().unwrap();
    glassbox_engine::load::gguf::convert_gguf_to_hf(&gguf, out.path(), &mut |_, _| {}).unwrap_or_else(|e| panic!("{family}: {e}"));
    let converted = Model::load(out.path()).unwrap_or_else(|e| panic!("{family} converted: {e}"));
    (vec![("native", Arc::new(native)), ("f32", Arc::new(converted))], out)
}

fn check_logits(what: &str, exec: &mut dyn Executor, golden: &BTreeMap<String, Golden>, family: &str) {
    let ids: Vec<u32> = golden[&format!("{family}.input_ids")].values.iter().map(|&v| v as u32).collect();
    let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::keys([HookKey::Logits]))).unwrap();
    let ours: Vec<f32> = trace.get(HookKey::Logits).unwrap().data.iter().copied().collect();
    let want = &golden[&format!("{family}.hook_logits")].values;
    let err = max_abs_diff(&ours, want) / max_abs(want).max(1.0);
    assert!(f64::from(err) <= FIXTURE_HOOK_REL, "{what}: logits off by {err:e} of max(1, max |ref|)");
    eprintln!("{what}: logits within {err:.1e}");
}

#[test]
fn each_family_from_llama_cpps_converter_gives_transformers_logits() {
    let golden = read_goldens(&dir().join("golden.safetensors")).unwrap();
    for family in FAMILIES {
        let (models, _keep) = both(family);
        for (how, model) in models {
            check_logits(&format!("{family} {how}"), &mut CpuExecutor::new(model), &golden, family);
        }
    }
}

#[test]
fn each_family_from_llama_cpps_converter_tokenizes_as_transformers() {
    let text = std::fs::read_to_string(dir().join("golden.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    for family in FAMILIES {
        let (models, _keep) = both(family);
        let case = &golden[family];
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        for (how, model) in models {
            let tok = model.tokenizer.as_ref().unwrap_or_else(|| panic!("{family} {how}: no tokenizer"));
            assert_eq!(tok.encode_prompt(case["text"].as_str().unwrap()).unwrap(), want, "{family} {how}");
        }
    }
}

#[test]
fn each_family_from_llama_cpps_converter_on_the_gpu() {
    let ctx = glassbox_tests::gpu_or_skip!();
    let golden = read_goldens(&dir().join("golden.safetensors")).unwrap();
    for family in FAMILIES {
        let (models, _keep) = both(family);
        for (how, model) in models {
            let mut gpu = glassbox_tests::gpu::gpu_exec(&ctx, &model, GpuOptions::default());
            check_logits(&format!("{family} {how} on the GPU"), &mut gpu, &golden, family);
        }
    }
}
