//! The llama.cpp engine against Glassbox's own CPU executor on the same GGUF: every hook both
//! record has the same shape, the per-hook relative error is printed (llama.cpp quantizes the
//! activations to 8 bits inside its products; Glassbox keeps them f32) and bounded loosely, and
//! the next token at the last position agrees: the tiny Q4_1 fixture, SmolLM2 Q4_1, Gemma 3 270M
//! Q4_K_M.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use glassbox_engine::exec::backend;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::sampling::argmax;
use glassbox_engine::{CaptureFilter, Device, Model, Precision, Trace};
use glassbox_engine::load::fetch::KnownModel;
use glassbox_llamacpp::{LlamaCppExecutor, Options};
use glassbox_tests::as_downloaded::{kept_gguf, tiny_q4_1_gguf};


fn capture_all(exec: &mut dyn Executor, ids: &[u32]) -> Trace {
    exec.forward(ids, PassOptions::capture(CaptureFilter::All)).unwrap()
}

fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

/// Runs both executors over a short prompt with every hook captured and compares them.
fn compare(gguf: &Path, bound: f64) {
    let model = Arc::new(Model::load(gguf).unwrap());
    let ids: Vec<u32> = match &model.tokenizer {
        Some(tok) if model.config.vocab_size > 1000 => tok.encode_prompt("The capital of France is").unwrap(),
        _ => vec![1, 40, 7, 200, 33, 5],
    };
    let ours = capture_all(&mut *backend::open(model.clone(), Device::Cpu, Precision::F32, None).unwrap().exec, &ids);
    let theirs = capture_all(&mut LlamaCppExecutor::open(model.clone(), gguf, &Options::default()).unwrap(), &ids);
    let mut worst = (0.0, String::new());
    let mut compared = 0;
    for (key, t) in theirs.iter() {
        let Some(reference) = ours.get(key) else { continue };
        assert_eq!(t.shape(), reference.shape(), "{}: {key}", gguf.display());
        let a: Vec<f32> = t.data.iter().copied().collect();
        let b: Vec<f32> = reference.data.iter().copied().collect();
        let e = relative_error(&a, &b);
        eprintln!("{:<40} relative error {e:.2e}", key.to_string());
        if e > worst.0 {
            worst = (e, key.to_string());
        }
        compared += 1;
    }
    eprintln!("{}: {compared} hooks compared, worst {:.2e} at {}", gguf.display(), worst.0, worst.1);
    assert!(compared > 10 * model.config.n_layers(), "{compared} hooks compared");
    assert!(worst.0 < bound, "{}: {} is {:.3} away from Glassbox's", gguf.display(), worst.1, worst.0);
    let top1 = |t: &Trace| argmax(t.last_logits.as_deref().unwrap());
    assert_eq!(top1(&theirs), top1(&ours), "{}: the next token differs", gguf.display());
}

#[test]
fn tiny_q4_1_fixture_is_close_to_glassbox() {
    compare(&tiny_q4_1_gguf(), 0.25);
}

#[test]
fn smollm2_q4_1_is_close_to_glassbox() {
    if let Some(gguf) = kept_gguf(KnownModel::SmolLm2) {
        compare(&gguf, 0.25);
    }
}

#[test]
fn gemma_3_270m_q4_k_m_is_close_to_glassbox() {
    if let Some(gguf) = kept_gguf(KnownModel::Gemma3_270m) {
        compare(&gguf, 0.25);
    }
}
