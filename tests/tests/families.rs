//! GPT-2, BERT and Gemma 3 beside Llama: the tiny fixtures (transformers 5.24, f32, eager)
//! hook by hook on the CPU reference (their greedy generation is in `fixtures.rs`), Gemma's
//! sliding window, BERT's two-way attention and masked-LM logits at every position.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::load::arch::{AttnMask, Family};
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::program::step::Program;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{BlockHook, HookKey, Model};
use glassbox_tests::{Golden, fixtures_dir, read_goldens};

const FAMILIES: [(&str, Family); 3] = [("tiny-gpt2", Family::Gpt2), ("tiny-bert-mlm", Family::Bert), ("tiny-gemma3", Family::Gemma3)];

fn load(name: &str) -> Arc<Model> {
    Arc::new(Model::load(&fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn goldens(name: &str) -> std::collections::BTreeMap<String, Golden> {
    read_goldens(&fixtures_dir().join(name).join("golden.safetensors")).unwrap()
}

/// transformers records Gemma's `q_norm`/`k_norm` outputs head-major (`[heads, T, d_head]`,
/// after its transpose); Glassbox keeps q and k position-major as TransformerLens does
/// (`[T, heads, d_head]`, like `hook_q`): the golden is compared in that layout.
fn position_major(mut g: std::collections::BTreeMap<String, Golden>) -> std::collections::BTreeMap<String, Golden> {
    for (name, t) in g.iter_mut().filter(|(n, _)| n.ends_with("hook_q_normed") || n.ends_with("hook_k_normed")) {
        let [h, p, d] = t.shape[..] else { panic!("{name}: shape {:?}", t.shape) };
        let mut out = vec![0.0; t.values.len()];
        for (i, v) in t.values.iter().enumerate() {
            let (hh, pp, dd) = (i / (p * d), (i / d) % p, i % d);
            out[(pp * h + hh) * d + dd] = *v;
        }
        *t = Golden { shape: vec![p, h, d], values: out };
    }
    g
}

fn ids_of(g: &std::collections::BTreeMap<String, Golden>) -> Vec<u32> {
    g["input_ids"].values.iter().map(|&v| v as u32).collect()
}

#[test]
fn every_hook_matches_transformers_on_gpt2_bert_and_gemma3() {
    for (name, family) in FAMILIES {
        let model = load(name);
        assert_eq!(model.arch.family, family, "{name}");
        glassbox_tests::assert_every_hook_matches(name, model, &position_major(goldens(name)), 14);
    }
}

#[test]
fn gemma3_sliding_layers_see_only_their_window_and_the_global_layer_sees_everything() {
    let model = load("tiny-gemma3");
    assert_eq!(model.arch.mask(0), AttnMask::Sliding { window: 4 });
    let ids = ids_of(&goldens("tiny-gemma3"));
    let mut exec = CpuExecutor::new(model.clone());
    let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
    let local = trace.get(HookKey::Block(0, BlockHook::Pattern)).unwrap().data.clone(); // [heads, q, k]
    let global = trace.get(HookKey::Block(3, BlockHook::Pattern)).unwrap().data.clone();
    let last = ids.len() - 1;
    for h in 0..4 {
        assert!((0..=last - 4).all(|k| local[[h, last, k]] == 0.0), "head {h}: a key outside the window has weight");
        assert!(local[[h, last, last - 3]] > 0.0, "the window's first key is seen");
        assert!(global[[h, last, 0]] > 0.0, "the global layer sees position 0");
    }
}

#[test]
fn bert_sees_both_ways_and_predicts_the_masked_labels() {
    let model = load("tiny-bert-mlm");
    let goldens = goldens("tiny-bert-mlm");
    let ids = ids_of(&goldens);
    let mut exec = CpuExecutor::new(model.clone());
    let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
    let pattern = trace.get(HookKey::Block(0, BlockHook::Pattern)).unwrap().data.clone();
    assert!(pattern[[0, 0, ids.len() - 1]] > 0.0, "position 0 attends to the last position");
    let logits = trace.get(HookKey::Logits).unwrap().data.clone();
    assert_eq!(logits.shape(), [ids.len(), model.config.vocab_size], "MLM logits at every position");
    assert!(Program::of(&model.config).hooks().contains(&HookKey::MlmTransform));
    assert!(!model.arch.generates());
}

#[test]
fn a_config_that_contradicts_itself_is_a_one_line_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(fixtures_dir().join("tiny-gemma3/config.json")).unwrap();
    std::fs::copy(fixtures_dir().join("tiny-gemma3/model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    let cases = [
        ("\"sliding_window\": 4", "\"sliding_window\": 0", "sliding_window"),
        ("\"query_pre_attn_scalar\": 16", "\"query_pre_attn_scalar\": 0", "query_pre_attn_scalar"),
        ("\"full_attention\"\n  ]", "\"full_attention\", \"full_attention\"\n  ]", "layer_types"),
        ("\"model_type\": \"gemma3_text\"", "\"model_type\": \"t5\"", "gemma3_text"),
    ];
    for (from, to, field) in cases {
        assert!(base.contains(from), "fixture config changed: {from}");
        std::fs::write(dir.path().join("config.json"), base.replace(from, to)).unwrap();
        let err = Model::load(dir.path()).err().expect("a bad config must not load").to_string();
        assert!(err.contains(field) && !err.contains('\n'), "{field}: {err}");
    }
}

#[test]
fn a_gemma3_checkpoint_without_its_qk_norms_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures_dir().join("tiny-gemma3");
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.tensors().into_iter().filter(|(n, _)| !n.contains("q_norm") && !n.contains("k_norm")).collect();
    safetensors::serialize_to_file(kept, None, &dir.path().join("model.safetensors")).unwrap();
    let err = Model::load(dir.path()).err().expect("missing QK-norm weights must not load").to_string();
    assert!(err.contains("q_norm") && err.contains("k_norm") && !err.contains('\n'), "{err}");
}
