//! The backward pass of every family against torch autograd: the fixtures made with
//! transformers (`tiny-gpt2`, `tiny-bert-mlm`, `tiny-gemma3`, `tiny-qwen2`, `tiny-qwen3`,
//! `tiny-olmo2`, `tiny-phi3`) and checkpoints of each family no fixture reference was made
//! for (`fixtures/unseen/*`, other sizes and settings). Parameter gradients are compared under
//! the checkpoint's own names (GPT-2's fused, transposed `c_attn`, Phi-3's `qkv_proj`, Gemma's
//! norms), hook gradients under their hook names; BERT's loss is the masked-LM loss on the
//! reference's labels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use glassbox_engine::train::hf_export::{Export, to_hf};
use glassbox_engine::train::{self, Objective, Params};
use glassbox_engine::{HookKey, Model};
use glassbox_tests::{fixtures_dir, max_abs, max_abs_diff, read_goldens};

const FAMILIES: [&str; 7] = ["tiny-gpt2", "tiny-bert-mlm", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"];

/// (parameters compared, hooks compared)
fn matches_torch(dir: &Path) -> (usize, usize) {
    let name = dir.display();
    let model = Arc::new(Model::load(dir).unwrap_or_else(|e| panic!("{name}: {e}")));
    let params = Params::load_dir(dir, &model.config).unwrap_or_else(|e| panic!("{name}: {e}"));
    let refs = read_goldens(&dir.join("grad.safetensors")).unwrap();
    let ids: Vec<u32> = refs["input_ids"].values.iter().map(|&v| v as u32).collect();
    let objective = match refs.get("labels") {
        Some(l) => Objective::MaskedLm { labels: l.values.iter().map(|&v| v as i64).collect() },
        None => Objective::NextToken,
    };
    let g = train::gradients_for(&model, &params, &ids, &objective).unwrap_or_else(|e| panic!("{name}: {e}"));
    let loss_ref = refs["loss"].values[0];
    assert!((g.loss.loss - loss_ref).abs() <= 1e-5 * loss_ref.abs().max(1.0), "{name}: loss {} vs {loss_ref}", g.loss.loss);
    let ours: BTreeMap<String, Vec<f32>> = to_hf(&model.config, &g.params, Export::Gradients)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.iter().copied().collect()))
        .collect();
    let (mut n_params, mut n_hooks) = (0, 0);
    for (key, reference) in refs.iter().filter_map(|(k, v)| Some((k.strip_prefix("grad.")?, v))) {
        let values: Vec<f32> = match key.parse::<HookKey>() {
            Ok(hook) => {
                n_hooks += 1;
                let t = g.hooks.get(hook).unwrap_or_else(|| panic!("{name}: no gradient for hook {key}"));
                assert_eq!(t.shape(), reference.shape.as_slice(), "{name}: {key} shape");
                t.data.iter().copied().collect()
            }
            Err(_) => {
                n_params += 1;
                ours.get(key).unwrap_or_else(|| panic!("{name}: no gradient for {key}")).clone()
            }
        };
        assert_eq!(values.len(), reference.values.len(), "{name}: {key} size");
        let err = max_abs_diff(&values, &reference.values);
        // A gradient that is 0 in exact arithmetic (BERT's key bias: softmax ignores a
        // constant per row) holds only torch's rounding: an absolute floor there.
        let bound = (1e-4 * max_abs(&reference.values)).max(1e-6);
        assert!(err <= bound, "{name}: grad.{key}: max abs error {err:e} > {bound:e}");
    }
    assert_eq!(n_params, ours.len(), "{name}: every parameter torch has, and no other");
    (n_params, n_hooks)
}

#[test]
fn every_family_matches_torch_autograd_on_its_fixture() {
    for name in FAMILIES {
        let (params, hooks) = matches_torch(&fixtures_dir().join(name));
        assert!(params >= 10 && hooks >= 5, "{name}: {params} parameters, {hooks} hooks compared");
    }
}

#[test]
fn every_family_matches_torch_autograd_on_unseen_checkpoints() {
    let root = fixtures_dir().join("unseen");
    let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().filter_map(|e| Some(e.ok()?.path())).filter(|p| p.join("grad.safetensors").is_file()).collect();
    dirs.sort();
    assert!(dirs.len() >= 8, "unseen checkpoints: {dirs:?}");
    for dir in dirs {
        let golden = read_goldens(&dir.join("golden.safetensors")).unwrap();
        let model = Arc::new(Model::load(&dir).unwrap());
        let ids: Vec<u32> = golden["input_ids"].values.iter().map(|&v| v as u32).collect();
        let trace = train::forward_for_backward(&model, &ids).unwrap();
        let logits: Vec<f32> = trace.get(HookKey::Logits).unwrap().data.iter().copied().collect();
        let want = &golden["hook_logits"].values;
        assert!(max_abs_diff(&logits, want) <= 1e-4 * max_abs(want).max(1.0), "{}: logits", dir.display());
        matches_torch(&dir);
    }
}
