//! The engine functions behind the lessons' live topics, checked against what the reference
//! executor recorded (and that executor against transformers' goldens elsewhere): SwiGLU's
//! product, RMSNorm, the shapes of the graph built per input, the KV cache length. On the
//! SmolLM2-shaped fixture, so no download is needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::article::{activations, norms};
use glassbox_engine::program::graph;
use glassbox_engine::{BlockHook, CaptureFilter, HookKey, Model};
use glassbox_tests::{fixtures_dir, max_abs, max_abs_diff, values_of};

const IDS: [u32; 17] = [179, 158, 199, 34, 148, 17, 98, 177, 248, 59, 179, 93, 111, 139, 181, 278, 3];

fn fixture() -> Arc<Model> {
    Arc::new(Model::load(&fixtures_dir().join("tiny-smollm2-shape")).unwrap())
}

#[test]
fn gate_values_reproduce_the_recorded_swiglu_product() {
    let model = fixture();
    let mut exec = CpuExecutor::new(model.clone());
    let trace = exec.forward(&IDS, PassOptions::capture(CaptureFilter::All)).unwrap();
    for (layer, pos) in [(0, 0), (1, 7), (1, 16)] {
        let g = activations::gate_values(&trace, layer, pos).unwrap();
        let post = trace.get(HookKey::Block(layer, BlockHook::MlpPost)).and_then(|t| t.as_2d()).unwrap();
        let want = post.row(pos).to_vec();
        let err = max_abs_diff(&g.swiglu, &want);
        assert!(err <= 1e-6 * max_abs(&want).max(1.0), "layer {layer} pos {pos}: {err}");
        // ReLU silences exactly the negative gates; their share is what the view reports.
        let zeros = g.relu.iter().filter(|&&v| v == 0.0).count();
        let negative = g.gate.iter().filter(|&&v| v <= 0.0).count();
        assert_eq!(zeros, negative);
        assert!((g.negative_share - g.gate.iter().filter(|&&v| v < 0.0).count() as f32 / g.gate.len() as f32).abs() < 1e-6);
        assert!((0.0..=1.0).contains(&g.negative_mass));
    }
    assert!(activations::gate_values(&trace, 1, 99).is_err(), "a position past the end is an error");
}

#[test]
fn rmsnorm_comparison_equals_the_recorded_ln1() {
    let model = fixture();
    let mut exec = CpuExecutor::new(model.clone());
    let trace = exec.forward(&IDS, PassOptions::capture(CaptureFilter::All)).unwrap();
    for layer in 0..model.config.n_layers() {
        let x = trace.get(HookKey::Block(layer, BlockHook::ResidPre)).and_then(|t| t.as_2d()).unwrap();
        let h = trace.get(HookKey::Block(layer, BlockHook::Ln1Normalized)).and_then(|t| t.as_2d()).unwrap();
        let scale = values_of(trace.get(HookKey::Block(layer, BlockHook::Ln1Scale)).unwrap());
        let w = model.weights.layers[layer].input_layernorm.as_ref().expect("a pre-norm model").view();
        for pos in [0, 5, 16] {
            let c = norms::compare(&x.row(pos).to_vec(), w, model.config.eps());
            let want = h.row(pos).to_vec();
            assert!(max_abs_diff(&c.rms_norm_scaled, &want) <= 1e-5 * max_abs(&want).max(1.0));
            assert!((c.rms - scale[pos]).abs() <= 1e-5 * scale[pos]);
            // LayerNorm's output is centred and of unit variance.
            let n = c.layer_norm.len() as f32;
            let mean = c.layer_norm.iter().sum::<f32>() / n;
            let var = c.layer_norm.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "{mean} {var}");
        }
    }
}

#[test]
fn predicted_shapes_equal_the_recorded_ones_for_prefill_and_decode() {
    let model = fixture();
    let c = model.config.clone();
    let mut exec = CpuExecutor::new(model.clone());
    let prefill = exec.forward(&IDS, PassOptions::capture(CaptureFilter::All)).unwrap();
    let check = |trace: &glassbox_engine::Trace, n_new: usize, n_past: usize| {
        let mut seen = 0;
        for step in graph::program_shapes(&c, n_new, n_past) {
            for (key, shape) in step.outputs {
                let t = trace.get(key).unwrap_or_else(|| panic!("{key} not recorded"));
                assert_eq!(t.shape(), shape.as_slice(), "{key} for {n_new} new after {n_past}");
                seen += 1;
            }
        }
        assert_eq!(seen, glassbox_engine::program::step::Program::of(&c).hooks().len());
    };
    check(&prefill, IDS.len(), 0);
    assert_eq!(exec.cache_len(), IDS.len());
    // One generated token on the cache: one query row against every cached position.
    let next = prefill.sampled.unwrap();
    let decode = exec.forward(&[next], PassOptions::capture(CaptureFilter::All)).unwrap();
    check(&decode, 1, IDS.len());
    assert_eq!(exec.cache_len(), IDS.len() + 1);
    let sizes = graph::kv_cache_sizes(&c, exec.cache_len());
    let per_position = c.n_layers() * 2 * c.n_kv_heads() * c.d_head() * 4;
    assert_eq!(sizes.gqa_f32, (per_position * exec.cache_len()) as u64);
    assert_eq!(sizes.mha_f32 * c.n_kv_heads() as u64, sizes.gqa_f32 * c.n_heads() as u64);
}
