//! The four tiny fixtures (transformers 5.24, f32, eager): every hook of the CPU reference
//! within DESIGN §6, and 8-token greedy generation with and without the KV cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, generate, generate_uncached};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{HookKey, Model};
use glassbox_tests::{FIXTURES, first_divergence, fixtures_dir, read_goldens};

fn load(name: &str) -> Arc<Model> {
    Arc::new(Model::load(&fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn input_ids(goldens: &std::collections::BTreeMap<String, glassbox_tests::Golden>) -> Vec<u32> {
    goldens["input_ids"].values.iter().map(|&v| v as u32).collect()
}

#[test]
fn every_hook_matches_transformers_on_all_fixtures() {
    for name in FIXTURES {
        let model = load(name);
        let goldens = read_goldens(&fixtures_dir().join(name).join("golden.safetensors")).unwrap();
        let ids = input_ids(&goldens);
        let mut exec = CpuExecutor::new(model.clone());
        let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
        // Every golden hook must have been recorded, not silently skipped.
        for golden_name in goldens.keys().filter(|k| k.as_str() != "input_ids") {
            let key: HookKey = golden_name.parse().unwrap();
            assert!(trace.get(key).is_some(), "{name}: {golden_name} was not captured");
        }
        if let Some(diff) = first_divergence(&trace, &goldens, glassbox_tests::tolerance::FIXTURE_HOOK_REL as f32) {
            panic!("{name}: first diverging hook: {diff}");
        }
    }
}

#[test]
fn greedy_generation_matches_with_and_without_cache() {
    // The Llama fixtures and the causal ones of the other families (GPT-2, Gemma 3).
    for name in FIXTURES.into_iter().chain(["tiny-gpt2", "tiny-gemma3"]) {
        let model = load(name);
        let (ids, want) = glassbox_tests::golden_generation(name);
        let mut exec = CpuExecutor::new(model.clone());
        let cached = generate(&mut exec, &ids, 8, SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
        assert_eq!(cached, want, "{name}: cached generation");
        let uncached = generate_uncached(&mut exec, &ids, 8, &[]).unwrap();
        assert_eq!(uncached, want, "{name}: uncached generation");
    }
}

#[test]
fn stepping_stops_anywhere_and_resumes_to_the_same_trace() {
    let model = load("tiny-gqa-tied");
    let goldens = read_goldens(&fixtures_dir().join("tiny-gqa-tied/golden.safetensors")).unwrap();
    let ids = input_ids(&goldens);
    let mut exec = CpuExecutor::new(model.clone());
    exec.begin(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
    let stop: glassbox_engine::Step = "blocks.1.softmax".parse().unwrap();
    exec.run_to(stop).unwrap();
    assert_eq!(exec.trace().last_step, Some(stop));
    assert!(exec.trace().get("blocks.1.attn.hook_pattern".parse().unwrap()).is_some());
    assert!(exec.trace().get("blocks.1.attn.hook_z".parse().unwrap()).is_none(), "ran past the stop");
    exec.run_to_end().unwrap();
    let trace = exec.take_trace();
    assert!(first_divergence(&trace, &goldens, 1e-4).is_none());
}

#[test]
fn cached_pass_matches_the_uncached_rows() {
    // The second half of the prompt run on top of the cache must give the same hooks as the
    // corresponding rows of one whole pass.
    let model = load("tiny-llama31-rope-scaling");
    let goldens = read_goldens(&fixtures_dir().join("tiny-llama31-rope-scaling/golden.safetensors")).unwrap();
    let ids = input_ids(&goldens);
    let split = ids.len() / 2;
    let mut exec = CpuExecutor::new(model.clone());
    exec.forward(&ids[..split], PassOptions::capture(CaptureFilter::Nothing)).unwrap();
    assert_eq!(exec.cache_len(), split);
    let tail = exec.forward(&ids[split..], PassOptions::capture(CaptureFilter::All)).unwrap();
    assert_eq!(tail.pos_offset, split);
    for key in ["blocks.1.hook_resid_post", "hook_logits"] {
        let ours = tail.get(key.parse().unwrap()).unwrap().as_2d().unwrap().to_owned();
        let golden = &goldens[key];
        let cols = golden.shape[1];
        let reference = &golden.values[split * cols..];
        let err = glassbox_tests::max_abs_diff(ours.as_slice().unwrap(), reference);
        assert!(err < 1e-4, "{key}: cached rows differ by {err}");
    }
}

#[test]
fn abandoned_pass_leaves_the_cache_as_it_was() {
    let model = load("tiny-gqa-tied");
    let mut exec = CpuExecutor::new(model.clone());
    exec.forward(&[1, 2, 3], PassOptions::capture(CaptureFilter::Nothing)).unwrap();
    exec.begin(&[4, 5], PassOptions::default()).unwrap();
    exec.run_to("blocks.1.rope".parse().unwrap()).unwrap();
    exec.begin(&[6], PassOptions::default()).unwrap();
    assert_eq!(exec.trace().pos_offset, 3);
}

#[test]
fn head_ablation_zeroes_that_heads_output_only() {
    let model = load("tiny-gqa-tied");
    let mut exec = CpuExecutor::new(model.clone());
    let options = PassOptions::default().with_ablated_heads(&[(1, 2)]);
    let trace = exec.forward(&[5, 6, 7, 8], options).unwrap();
    let z = trace.get("blocks.1.attn.hook_z".parse().unwrap()).unwrap().as_3d().unwrap();
    assert!(z.slice(ndarray::s![.., 2, ..]).iter().all(|&v| v == 0.0));
    assert!(z.slice(ndarray::s![.., 1, ..]).iter().any(|&v| v != 0.0));
}

#[test]
fn out_of_vocabulary_ids_are_a_clear_error() {
    let model = load("tiny-gqa-tied");
    let mut exec = CpuExecutor::new(model);
    let err = exec.begin(&[1, 97], PassOptions::default()).unwrap_err();
    assert!(err.to_string().contains("97"), "{err}");
}
