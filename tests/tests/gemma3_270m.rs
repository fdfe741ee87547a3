//! The real Gemma 3 270M (Q4_K_M GGUF, dequantized to f32) against transformers on three
//! prompts: English, Chinese, and 941 tokens that run past the 512-token sliding window.
//! Last-position logits over the whole 262,144-token vocabulary, every layer's output (its
//! norm at every position, its values at the last), the patterns of layer 0 (local) and 5
//! (global), and 8 greedy tokens. Needs `glassbox fetch gemma-3-270m`: skipped without it
//! unless `GLASSBOX_REQUIRE_MODEL` is set (CI sets it and fetches the model first). The
//! tokenizer's ids are checked in `gemma_convert.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, generate};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{BlockHook, HookKey, HookKind, Model};
use glassbox_tests::{Golden, fixtures_dir, max_abs, max_abs_diff, read_goldens, values_of};

fn gemma() -> Option<Arc<Model>> {
    let dir = glassbox_engine::load::fetch::KnownModel::Gemma3_270m.dir().ok()?;
    if !glassbox_engine::load::fetch::is_complete(&dir) {
        assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but {} holds no converted model", dir.display());
        eprintln!("note: skipping Gemma 3 270M checks: run `glassbox fetch gemma-3-270m`");
        return None;
    }
    Some(Arc::new(Model::load(&dir).unwrap_or_else(|e| panic!("loading Gemma 3 270M: {e}"))))
}

fn goldens() -> BTreeMap<String, Golden> {
    read_goldens(&fixtures_dir().join("gemma-3-270m/golden.safetensors")).unwrap()
}

fn ids(g: &BTreeMap<String, Golden>, p: usize) -> Vec<u32> {
    g[&format!("p{p}.input_ids")].values.iter().map(|&v| v as u32).collect()
}

/// Max |ours − ref| relative to max(1, max |ref|).
fn rel(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len());
    max_abs_diff(ours, reference) / max_abs(reference).max(1.0)
}

#[test]
fn gemma3_270m_matches_transformers_on_three_prompts() {
    let Some(model) = gemma() else { return };
    let g = goldens();
    let n_layers = model.config.n_layers();
    for p in 0..3 {
        let ids = ids(&g, p);
        let capture = CaptureFilter::Select {
            keys: [HookKey::Block(0, BlockHook::Pattern), HookKey::Block(5, BlockHook::Pattern), HookKey::Logits].into(),
            kinds: [HookKind::Block(BlockHook::ResidPost)].into(),
        };
        let mut exec = CpuExecutor::new(model.clone());
        let trace = exec.forward(&ids, PassOptions::capture(capture)).unwrap();
        let t = ids.len();
        let logits = values_of(trace.get(HookKey::Logits).unwrap());
        let last = &logits[logits.len() - model.config.vocab_size..];
        let logit_err = max_abs_diff(last, &g[&format!("p{p}.logits_last")].values);
        let (mut norm_err, mut last_err) = (0.0f32, 0.0f32);
        for l in 0..n_layers {
            let resid = trace.get(HookKey::Block(l, BlockHook::ResidPost)).unwrap().as_2d().unwrap();
            let norms: Vec<f32> = resid.outer_iter().map(|r| r.dot(&r).sqrt()).collect();
            let want = &g[&format!("p{p}.resid_post_norms")].values[l * t..(l + 1) * t];
            norm_err = norm_err.max(rel(&norms, want));
            let want_last = &g[&format!("p{p}.resid_post_last")].values[l * 640..(l + 1) * 640];
            last_err = last_err.max(rel(&resid.row(t - 1).to_vec(), want_last));
        }
        let mut pattern_err = 0.0f32;
        for l in [0, 5] {
            let ours = trace.get(HookKey::Block(l, BlockHook::Pattern)).unwrap().data.clone(); // [heads, T, T]
            let (name, rows) = if p == 2 { (format!("p2.blocks.{l}.attn.hook_pattern_last8"), t - 8..t) } else { (format!("p{p}.blocks.{l}.attn.hook_pattern"), 0..t) };
            let ours: Vec<f32> = ours.slice(ndarray::s![.., rows, ..]).iter().copied().collect();
            pattern_err = pattern_err.max(max_abs_diff(&ours, &g[&name].values));
        }
        eprintln!("gemma p{p} ({t} tokens): logits max abs {logit_err:.1e}, resid norms {norm_err:.1e}, last resid {last_err:.1e}, patterns {pattern_err:.1e}");
        assert!(logit_err <= glassbox_tests::tolerance::GEMMA_LOGITS_ABS as f32, "p{p}: logits differ by {logit_err}");
        assert!(norm_err.max(last_err) <= glassbox_tests::tolerance::GEMMA_RESID_REL as f32, "p{p}: residuals differ by {norm_err} / {last_err}");
        assert!(pattern_err <= glassbox_tests::tolerance::GEMMA_PATTERN_ABS as f32, "p{p}: patterns differ by {pattern_err}");
        if p == 2 {
            // Layer 0 is local: the last query sees the 512 keys up to itself, nothing older.
            let local = trace.get(HookKey::Block(0, BlockHook::Pattern)).unwrap().data.clone();
            assert!((0..t - 512).all(|k| (0..4).all(|h| local[[h, t - 1, k]] == 0.0)));
        }
    }
}

#[test]
fn gemma3_270m_greedy_tokens_match() {
    let Some(model) = gemma() else { return };
    let g = goldens();
    for p in 0..2 {
        let ids = ids(&g, p);
        let want: Vec<u32> = g[&format!("p{p}.generated_ids")].values.iter().map(|&v| v as u32).collect();
        let mut exec = CpuExecutor::new(model.clone());
        let got = generate(&mut exec, &ids, 8, SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
        assert_eq!(got, want, "p{p}");
    }
}

/// The GPU executor on the real model (lavapipe in CI: ~45 s): the English prompt's last
/// logits against transformers over the whole vocabulary, and the same argmax.
#[test]
fn gemma3_270m_on_the_gpu_matches_transformers() {
    let Some(model) = gemma() else { return };
    let ctx = glassbox_tests::gpu_or_skip!();
    let g = goldens();
    let ids = ids(&g, 0);
    let mut exec = glassbox_tests::gpu::gpu_exec(&ctx, &model, glassbox_engine::exec::gpu::GpuOptions::default());
    let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::keys([HookKey::Logits]))).unwrap();
    let logits = values_of(trace.get(HookKey::Logits).unwrap());
    let last = &logits[logits.len() - model.config.vocab_size..];
    let want = &g["p0.logits_last"].values;
    let err = max_abs_diff(last, want);
    eprintln!("gemma on the GPU: logits max abs {err:.1e}");
    assert!(err <= glassbox_tests::tolerance::GPU_VS_REFERENCE_ABS as f32, "GPU logits differ by {err}");
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
    assert_eq!(argmax(last), argmax(want));
}
