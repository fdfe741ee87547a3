//! Canonical parameters for every family and the checkpoints written from them: each tiny
//! fixture (written by transformers' `save_pretrained`) read into `Params` and exported back is
//! the same file, tensor for tensor; a saved checkpoint loads back to the same logits and
//! `Arch`; fresh parameters count what `glassbox arch` counts and run a forward pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::load::layout_named::layout_shapes;
use glassbox_engine::load::model::ModelSource;
use glassbox_engine::train::checkpoint::{VARIANT_README, save_checkpoint, save_gradients};
use glassbox_engine::train::hf_export::{Export, to_hf};
use glassbox_engine::train::{self, Params};
use glassbox_engine::load::layout::LlamaWeights;
use glassbox_engine::{CaptureFilter, HookKey, Model};
use glassbox_tests::{fixtures_dir, max_abs_diff, read_goldens};

/// Every family, plus Llama's untied head and llama3 RoPE scaling.
const FAMILY_FIXTURES: [&str; 10] = [
    "tiny-gqa-tied",
    "tiny-mha-untied",
    "tiny-llama31-rope-scaling",
    "tiny-gpt2",
    "tiny-bert-mlm",
    "tiny-gemma3",
    "tiny-qwen2",
    "tiny-qwen3",
    "tiny-olmo2",
    "tiny-phi3",
];

fn load(name: &str) -> (Arc<Model>, Params) {
    let dir = fixtures_dir().join(name);
    let model = Arc::new(Model::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}")));
    let params = Params::load_dir(&dir, &model.config).unwrap_or_else(|e| panic!("{name}: {e}"));
    (model, params)
}

fn logits(model: &Arc<Model>, ids: &[u32]) -> Vec<f32> {
    let trace = CpuExecutor::new(Arc::clone(model))
        .forward(ids, PassOptions::capture(CaptureFilter::keys([HookKey::Logits])))
        .unwrap();
    trace.get(HookKey::Logits).unwrap().data.iter().copied().collect()
}

fn golden_ids(name: &str) -> Vec<u32> {
    let g = read_goldens(&fixtures_dir().join(name).join("golden.safetensors")).unwrap();
    g["input_ids"].values.iter().map(|&v| v as u32).collect()
}

#[test]
fn exported_values_are_the_checkpoint_transformers_wrote() {
    for name in FAMILY_FIXTURES {
        let (model, params) = load(name);
        let reference = read_goldens(&fixtures_dir().join(name).join("model.safetensors")).unwrap();
        let exported = to_hf(&model.config, &params, Export::Values).unwrap();
        let names: BTreeSet<&str> = exported.iter().map(|(n, _)| n.as_str()).collect();
        let expected: BTreeSet<&str> = reference.keys().map(String::as_str).collect();
        assert_eq!(names, expected, "{name}: tensor names");
        assert_eq!(names.len(), exported.len(), "{name}: a name written twice");
        let gemma_norm = |n: &str| name == "tiny-gemma3" && n.ends_with("norm.weight");
        for (tensor, t) in &exported {
            let r = &reference[tensor];
            assert_eq!(t.shape(), r.shape.as_slice(), "{name}: {tensor} shape");
            let values: Vec<f32> = t.iter().copied().collect();
            if gemma_norm(tensor) {
                let err = max_abs_diff(&values, &r.values);
                assert!(err <= 1e-7, "{name}: {tensor}: w = folded − 1 off by {err:e}");
            } else {
                let same = values.iter().zip(&r.values).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{name}: {tensor}: values are not bit-identical");
            }
        }
    }
}

/// A gradient goes through the same renaming, fusing and transposing as its weight, but
/// Gemma's `1 + w` has derivative 1: no `− 1` on a gradient.
#[test]
fn exported_gradients_are_shaped_and_named_like_the_weights() {
    for name in FAMILY_FIXTURES {
        let (model, params) = load(name);
        let values = to_hf(&model.config, &params, Export::Values).unwrap();
        let grads = to_hf(&model.config, &params, Export::Gradients).unwrap();
        for ((vn, v), (gn, g)) in values.iter().zip(&grads) {
            assert_eq!((vn, v.shape()), (gn, g.shape()), "{name}");
            let offset = if name == "tiny-gemma3" && vn.ends_with("norm.weight") { 1.0 } else { 0.0 };
            let same = v.iter().zip(g.iter()).all(|(a, b)| (a + offset).to_bits() == b.to_bits());
            assert!(same, "{name}: {vn}: a gradient export must differ from the values' by {offset} only");
        }
    }
}

/// `GLASSBOX_EXPORT_DIR` keeps the folders for `scripts/check_hf_checkpoint.py` (transformers).
#[test]
fn saved_checkpoints_load_back_to_the_same_logits_and_arch() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::env::var_os("GLASSBOX_EXPORT_DIR").map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    for name in FAMILY_FIXTURES {
        let (model, params) = load(name);
        let dir = root.join(name);
        save_checkpoint(&dir, &model.config, &params, None, "test").unwrap();
        let back = Arc::new(Model::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}")));
        assert_eq!(back.arch, model.arch, "{name}: Arch");
        assert!(!dir.join(VARIANT_README).exists(), "{name}: transformers runs every released family");
        let ids = golden_ids(name);
        let (a, b) = (logits(&model, &ids), logits(&back, &ids));
        let err = max_abs_diff(&a, &b);
        assert!(err <= 1e-6, "{name}: logits differ by {err:e} after save → load");
        let again = Params::load_dir(&dir, &back.config).unwrap();
        assert_eq!(again, params, "{name}: Params round-trip");
    }
}

#[test]
fn fresh_params_count_what_glassbox_arch_counts_and_run() {
    for name in FAMILY_FIXTURES {
        let c = Model::load(&fixtures_dir().join(name)).unwrap().config;
        let p = Params::init(&c, 3, 0.02);
        assert_eq!(p.n_values() as u64, c.n_params(), "{name}: parameters vs glassbox arch");
        let shapes = layout_shapes(&c);
        assert_eq!(p.len(), shapes.len(), "{name}");
        let biases: Vec<_> = p.iter().filter(|(n, _)| n.ends_with(".bias")).collect();
        assert!(biases.iter().all(|(_, t)| t.iter().all(|&v| v == 0.0)), "{name}: biases start at 0");
        let source = ModelSource { dir: name.into(), name: name.into(), weights_note: String::new() };
        let model = Arc::new(p.to_model(&c, None, source).unwrap_or_else(|e| panic!("{name}: {e}")));
        let out = logits(&model, &[1, 5, 7, 2]);
        assert_eq!(out.len(), 4 * c.vocab_size, "{name}");
        assert!(out.iter().all(|v| v.is_finite()), "{name}: logits finite");
    }
}

#[test]
fn named_lists_every_tensor_of_the_layout_in_its_order() {
    for name in FAMILY_FIXTURES {
        let (model, _) = load(name);
        let named: Vec<String> = model.weights.named().into_iter().map(|(n, _)| n).collect();
        let layout: Vec<String> = layout_shapes(&model.config).into_iter().map(|(n, _)| n).collect();
        assert_eq!(named, layout, "{name}");
    }
}

#[test]
fn from_named_names_a_missing_or_misshaped_tensor_and_its_shape() {
    let (model, params) = load("tiny-gpt2");
    let c = &model.config;
    let missing = "model.layers.1.mlp.down_proj.bias";
    let err = LlamaWeights::from_named(c, &|n| if n == missing { None } else { params.get(n).cloned() }).err().unwrap().to_string();
    assert!(err.contains(missing) && err.contains("[48]"), "{err}");
    let wrong = "model.embed_positions.weight";
    let err = LlamaWeights::from_named(c, &|n| if n == wrong { Some(ndarray::ArrayD::zeros(vec![3, 48])) } else { params.get(n).cloned() })
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(wrong) && err.contains("[64, 48]"), "{err}");
}

/// Phi-3 runs Llama's backward (its fused weights are viewed apart): the gradient file names
/// and fuses them as transformers does, and agrees with torch's.
#[test]
fn saved_gradients_fuse_like_the_checkpoint_and_match_torch() {
    let name = "tiny-phi3";
    let (model, params) = load(name);
    let refs = read_goldens(&fixtures_dir().join(name).join("grad.safetensors")).unwrap();
    let ids: Vec<u32> = refs["input_ids"].values.iter().map(|&v| v as u32).collect();
    let g = train::gradients_of(&model, &params, &ids).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("grad.safetensors");
    save_gradients(&path, &model.config, &g, &ids).unwrap();
    let ours = read_goldens(&path).unwrap();
    let mut compared = 0;
    for (key, r) in refs.iter().filter(|(k, _)| k.starts_with("grad.model.")) {
        let t = ours.get(key).unwrap_or_else(|| panic!("{name}: {key} not written"));
        assert_eq!(t.shape, r.shape, "{name}: {key}");
        let bound = 1e-4 * glassbox_tests::max_abs(&r.values);
        assert!(max_abs_diff(&t.values, &r.values) <= bound, "{name}: {key}");
        compared += 1;
    }
    assert!(ours.contains_key("grad.model.layers.0.self_attn.qkv_proj.weight"));
    assert_eq!(compared, params.len() - 3 * model.config.n_layers(), "{name}: every fused parameter compared");
}

/// The config.json written is the one transformers wrote for the fixture, key for key, but for
/// what it writes and reads nothing from (its version, GPT-2's sequence-summary head settings,
/// Gemma's 4.x `_sliding_window_pattern` beside `layer_types`) and Llama's 4.x `rope_theta`.
#[test]
fn config_json_is_the_one_transformers_wrote() {
    let ignored = ["transformers_version", "_sliding_window_pattern", "summary_activation", "summary_first_dropout", "summary_proj_to_labels", "summary_type", "summary_use_proj"];
    for name in FAMILY_FIXTURES {
        let path = fixtures_dir().join(name).join("config.json");
        let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let c = glassbox_engine::LlamaConfig::from_file(&path).unwrap();
        let ours = train::hf_config::hf_config_json(&c);
        let (ours, reference) = (ours.as_object().unwrap(), reference.as_object().unwrap());
        for (key, value) in reference.iter().filter(|(k, _)| !ignored.contains(&k.as_str())) {
            assert_eq!(ours.get(key), Some(value), "{name}: `{key}`");
        }
        let extra: Vec<&String> = ours.keys().filter(|k| !reference.contains_key(*k) && !(c.model_type.as_deref() == Some("llama") && *k == "rope_theta")).collect();
        assert!(extra.is_empty(), "{name}: keys transformers does not write: {extra:?}");
        assert!(train::hf_config::transformers_runs(&c), "{name}");
    }
}
