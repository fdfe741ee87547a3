//! The real models' GGUFs loaded natively (`WeightsMode::Native`: SmolLM2's Q4_1 and Gemma 3
//! 270M's Q4_K_M blocks computed in place) against the same GGUFs converted to f32: every hook
//! of a pass equal within float rounding (the blocks dequantize to the very f32 values the
//! converter wrote; only the order of the sums differs). The GGUFs are found in the cache,
//! beside the converted files, where `glassbox fetch` keeps them; skipped without them unless
//! `GLASSBOX_REQUIRE_MODEL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::load::fetch::KnownModel;
use glassbox_engine::{Model, WeightsMode};
use glassbox_tests::as_downloaded::kept_gguf;

/// (native, f32) of a fetched model, or None (skipped) when the cache lacks it or its GGUF.
fn both(known: KnownModel) -> Option<(Model, Model)> {
    kept_gguf(known)?;
    let dir = known.dir().ok()?;
    let native = Model::load_with(&dir, WeightsMode::Native).unwrap_or_else(|e| panic!("{e}"));
    let f32 = Model::load_with(&dir, WeightsMode::F32).unwrap_or_else(|e| panic!("{e}"));
    Some((native, f32))
}

/// Every hook of one pass over `ids`: the largest difference relative to max(1, max |f32|).
fn worst_hook(native: Model, f32: Model, ids: &[u32]) -> (String, f32, usize) {
    let ta = CpuExecutor::new(Arc::new(native)).forward(ids, PassOptions::default()).unwrap();
    let tb = CpuExecutor::new(Arc::new(f32)).forward(ids, PassOptions::default()).unwrap();
    ta.materialize();
    tb.materialize();
    assert_eq!(ta.len(), tb.len());
    let mut worst = (String::new(), 0.0f32, ta.len());
    for (key, x) in ta.iter() {
        let y = tb.get(key).unwrap_or_else(|| panic!("{key:?} missing"));
        let scale = y.data.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = x.data.iter().zip(y.data.iter()).fold(0.0f32, |m, (p, q)| m.max((p - q).abs())) / scale;
        if diff > worst.1 || diff.is_nan() {
            worst = (format!("{key:?}"), diff, worst.2);
        }
    }
    assert_eq!(ta.sampled, tb.sampled);
    worst
}

fn check(known: KnownModel, note: &str) {
    let Some((native, f32)) = both(known) else { return };
    assert_eq!(native.weights_mode(), WeightsMode::Native);
    assert_eq!(native.source.weights_note, note);
    assert_eq!((&native.source.name, &native.source.dir), (&f32.source.name, &f32.source.dir), "the folder names the model");
    // The blocks take a fraction of the f32 copy's bytes.
    assert!(native.weights_resident_bytes() * 3 < f32.weights_resident_bytes());
    let ids: Vec<u32> = native.tokenizer.as_ref().unwrap().encode_prompt("The capital of France is Paris, and").unwrap();
    let (hook, diff, n) = worst_hook(native, f32, &ids);
    eprintln!("{}: {n} hooks over {} tokens, worst {hook} at {diff:.1e} (relative to max(1, max |f32|))", known.name(), ids.len());
    assert!(diff <= 1e-4, "{hook} differs by {diff}");
}

#[test]
fn smollm2_q4_1_native_equals_f32_on_every_hook() {
    check(KnownModel::SmolLm2, "Q4_1 weights (token embedding Q8_0), as downloaded");
}

#[test]
fn gemma3_270m_q4_k_m_native_equals_f32_on_every_hook() {
    check(KnownModel::Gemma3_270m, "Q5_0 weights (token embedding Q8_0), as downloaded");
}

/// The first 1,000 tokens of the article (`lessons/article/`) through SmolLM2 as downloaded and
/// as f32: the largest logit difference and the share of positions whose top-1 token agrees.
#[test]
fn smollm2_native_agrees_with_f32_over_a_1000_token_text() {
    use glassbox_tests::tolerance::{NATIVE_LOGITS_ABS, NATIVE_TOP1_AGREEMENT};
    let Some((native, f32)) = both(KnownModel::SmolLm2) else { return };
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lessons/article/llama31-article.zh.txt")).unwrap();
    let ids: Vec<u32> = native.tokenizer.as_ref().unwrap().encode(&text).unwrap().into_iter().take(1000).collect();
    assert_eq!(ids.len(), 1000);
    let logits = |m: Model| {
        let t = CpuExecutor::new(Arc::new(m)).forward(&ids, PassOptions::capture(glassbox_engine::CaptureFilter::keys([glassbox_engine::HookKey::Logits]))).unwrap();
        glassbox_tests::gpu::logits(&t)
    };
    let (a, b) = (logits(native), logits(f32));
    let max = a.iter().zip(b.iter()).fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    let argmax = |r: ndarray::ArrayView1<f32>| r.iter().enumerate().fold((0, f32::MIN), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0;
    let agree = a.outer_iter().zip(b.outer_iter()).filter(|(x, y)| argmax(x.view()) == argmax(y.view())).count() as f64 / 1000.0;
    eprintln!("SmolLM2 over 1,000 tokens: max |Δlogit| {max:.2e}, top-1 agreement {:.1} %", agree * 100.0);
    assert!(f64::from(max) <= NATIVE_LOGITS_ABS, "max |Δlogit| {max}");
    assert!(agree >= NATIVE_TOP1_AGREEMENT, "top-1 agreement {agree}");
}
