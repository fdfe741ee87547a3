//! Training against references: gradients vs torch autograd on every fixture that ships
//! `grad.safetensors`, and vs finite differences on a model no reference was made for;
//! AdamW vs `torch.optim.AdamW`; data-parallel workers vs one; checkpoints that round-trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::train::{self, Params};
use glassbox_engine::{HookKey, Model};
use glassbox_tests::{fixtures_dir, max_abs, max_abs_diff, read_goldens};

const GRAD_FIXTURES: [&str; 3] = ["tiny-gqa-tied", "tiny-mha-untied", "tiny-llama31-rope-scaling"];

fn load(name: &str) -> (Arc<Model>, Params) {
    let dir = fixtures_dir().join(name);
    let model = Arc::new(Model::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}")));
    let params = Params::load_dir(&dir, &model.config).unwrap();
    (model, params)
}

#[test]
fn grad_matches_torch_autograd_on_every_fixture() {
    for name in GRAD_FIXTURES {
        let (model, params) = load(name);
        let refs = read_goldens(&fixtures_dir().join(name).join("grad.safetensors")).unwrap();
        let ids: Vec<u32> = refs["input_ids"].values.iter().map(|&v| v as u32).collect();
        let g = train::gradients_of(&model, &params, &ids).unwrap();
        let loss_ref = refs["loss"].values[0];
        assert!((g.loss.loss - loss_ref).abs() <= 1e-5, "{name}: loss {} vs {loss_ref}", g.loss.loss);
        let (mut n_params, mut n_hooks) = (0, 0);
        for (key, reference) in refs.iter().filter_map(|(k, v)| Some((k.strip_prefix("grad.")?, v))) {
            let (shape, values): (Vec<usize>, Vec<f32>) = match key.parse::<HookKey>() {
                Ok(hook) => {
                    n_hooks += 1;
                    let t = g.hooks.get(hook).unwrap_or_else(|| panic!("{name}: no gradient for hook {key}"));
                    (t.shape().to_vec(), t.data.iter().copied().collect())
                }
                Err(_) => {
                    n_params += 1;
                    let t = g.params.get(key).unwrap_or_else(|| panic!("{name}: no gradient for {key}"));
                    (t.shape().to_vec(), t.iter().copied().collect())
                }
            };
            assert_eq!(shape, reference.shape, "{name}: {key} shape");
            let err = max_abs_diff(&values, &reference.values);
            let bound = 1e-4 * max_abs(&reference.values);
            assert!(err <= bound, "{name}: grad.{key}: max abs error {err:e} > {bound:e}");
        }
        assert_eq!(n_params, params.len(), "{name}: every parameter has a reference gradient");
        let layers = model.config.n_layers();
        assert_eq!(n_hooks, 3 + 2 * layers, "{name}: hook gradients compared");
    }
}
