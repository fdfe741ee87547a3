//! `hook_logits` of a model kept as downloaded (an LM head of quantized blocks) kept as the
//! final norm's rows and worked out when read: the CPU pass computes only the rows it samples
//! from, and the trace runs the same LM head on the recorded rows when a reader asks (at
//! Gemma's 262,144-token vocabulary every row is 1 MiB). The values read are bit for bit those
//! of a pass that computes and stores every row (an identity edit on `hook_logits` makes it do
//! so), and so are the sample, `last_logits` and `hook_probs`. f32 heads keep them stored. The
//! real Gemma 3 270M GGUF (native Q4_K_M blocks) is checked too when it is cached.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::exec::intervene::{ActivationPrecision, Edit, Intervention};
use glassbox_engine::exec::trace::{CaptureFilter, Trace};
use glassbox_engine::load::fetch::KnownModel;
use glassbox_engine::{HookKey, Model, WeightsMode};
use glassbox_tests::as_downloaded::q4_0_model;
use glassbox_tests::gpu::{cpu_pass, input_ids, load};

fn stored(model: &Arc<Model>, ids: &[u32]) -> Trace {
    let edit = Intervention::new(HookKey::Logits, Edit::Scale(1.0));
    cpu_pass(model, ids, PassOptions { interventions: vec![edit], ..PassOptions::default() })
}

/// The derived logits of a full-capture pass equal the stored ones, and everything the pass
/// took from its own last rows agrees with them.
fn check(model: &Arc<Model>, ids: &[u32], what: &str) {
    let plain = cpu_pass(model, ids, PassOptions::default());
    assert!(plain.is_pending(HookKey::Logits), "{what}: nothing has read the logits yet");
    let before = plain.bytes();
    let kept = stored(model, ids);
    assert!(!kept.is_pending(HookKey::Logits), "{what}: an edited hook is held as computed");
    let logits = plain.get(HookKey::Logits).unwrap();
    assert_eq!(logits.shape(), [ids.len(), model.config.vocab_size], "{what}");
    assert_eq!(Some(logits), kept.get(HookKey::Logits), "{what}: derived = computed, bit for bit");
    assert_eq!(plain.get(HookKey::Probs), kept.get(HookKey::Probs), "{what}: hook_probs");
    assert_eq!((plain.sampled, &plain.last_logits), (kept.sampled, &kept.last_logits), "{what}: the sample");
    let last = logits.as_2d().unwrap().row(ids.len() - 1).to_vec();
    assert_eq!(Some(last), plain.last_logits, "{what}: the last row is the one sampled from");
    assert_eq!(plain.bytes(), before + logits.data.len() * 4, "{what}: reading works them out once");
}

#[test]
fn logits_are_kept_as_the_final_norm_until_read() {
    // Tied and untied heads, Gemma, Qwen 2/3, OLMo 2 (the fixtures whose rows are whole Q4_0 blocks).
    for name in ["tiny-gqa-tied", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2"] {
        let q4 = Arc::new(q4_0_model(&load(name)));
        check(&q4, &input_ids(name), name);
    }
}

#[test]
fn f32_edited_rounded_or_short_logits_are_stored() {
    let f32 = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    assert!(!cpu_pass(&f32, &ids, PassOptions::default()).is_pending(HookKey::Logits));
    let model = Arc::new(q4_0_model(&f32));
    let rounded = cpu_pass(&model, &ids, PassOptions { activations: ActivationPrecision::Bf16, ..PassOptions::default() });
    assert!(!rounded.is_pending(HookKey::Logits));
    let short = cpu_pass(&model, &ids[..2], PassOptions::default());
    assert!(!short.is_pending(HookKey::Logits));
    // Uncaptured, the pass keeps its one sampled row as before, and records nothing.
    let quiet = cpu_pass(&model, &ids, PassOptions::capture(CaptureFilter::Nothing));
    assert!(quiet.get(HookKey::Logits).is_none());
    let plain = cpu_pass(&model, &ids, PassOptions::default());
    assert_eq!(quiet.sampled, plain.sampled);
}

#[test]
fn gemma3_270m_native_logits_derived_equal_computed() {
    let Some(dir) = KnownModel::Gemma3_270m.dir().ok().filter(|d| glassbox_engine::load::fetch::is_complete(d)) else {
        assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but Gemma 3 270M is not cached");
        eprintln!("note: skipping: Gemma 3 270M is not cached (run `glassbox fetch gemma-3-270m`)");
        return;
    };
    let model = Arc::new(Model::load_with(&dir, WeightsMode::Native).unwrap_or_else(|e| panic!("{e}")));
    let ids: Vec<u32> = (0..24).map(|i| 2 + i * 977 % 30_000).collect();
    check(&model, &ids, "gemma-3-270m native");
}
