//! The side-by-side view: two architectures' blocks aligned with the differences marked, the
//! component table, and one prompt run in both models — on tiny fixtures (a SmolLM2-shaped
//! Llama against a tiny Gemma 3), and on the real SmolLM2 against Gemma 3 270M when both
//! are cached.

use std::sync::Arc;

use egui_kittest::kittest::Queryable;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::experiments::analysis::{last_logits, top_k};
use glassbox_engine::load::fetch::{KnownModel, is_complete};
use glassbox_engine::{CaptureFilter, Model};

use egui_kittest::Harness;

use super::{app_on, fixture_ids, fixture_model, repo_root, smollm2};
use crate::gui::app::GlassboxApp;
use crate::gui::views::side_by_side::{self, SideBySideView};

/// The app on the side-by-side view, tall enough that the runs (below the table) are on
/// screen to be clicked.
fn harness(app: GlassboxApp) -> Harness<'static, GlassboxApp> {
    Harness::builder()
        .with_size(egui::vec2(1600.0, 2000.0))
        .with_max_steps(50)
        .with_context_setup(crate::gui::fonts::install)
        .build_ui_state(|ui, app: &mut GlassboxApp| app.show(ui), app)
}

fn tiny_gemma() -> Arc<Model> {
    Arc::new(Model::load(&repo_root().join("tests/fixtures/tiny-gemma3")).expect("tiny Gemma 3 loads"))
}

/// The engine's own next-token top 1 of `ids`, as the view prints its probability.
fn top1_percent(model: &Arc<Model>, ids: &[u32]) -> String {
    let mut exec = CpuExecutor::new(Arc::clone(model));
    exec.begin(ids, PassOptions::capture(CaptureFilter::All)).expect("begin");
    exec.run_to_end().expect("pass");
    let top = top_k(&last_logits(exec.trace()).expect("logits"), 1, 1.0);
    format!("{:.1}%", 100.0 * top[0].prob)
}

const TABLE_ROWS: [&str; 9] = [
    "Token embedding",
    "Attention projections",
    "Attention over the context",
    "MLP projections",
    "Norms",
    "Output head",
    "Total",
    "KV cache per token",
    "KV cache at 4096 tokens",
];

#[test]
fn side_by_side_tiny_llama_against_tiny_gemma() {
    let gemma = tiny_gemma();
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.state_mut().view = side_by_side::ID;
    // The left panel's diagram names components too ("Token embedding").
    h.state_mut().show_diagram = false;
    h.run();
    {
        let v = &mut h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
        v.inline = true;
        v.add_model_b("tiny-gemma3", Arc::clone(&gemma));
        v.prompt = "1 2 3 4 5 6".into();
    }
    h.run();
    for row in TABLE_ROWS {
        h.get_by_label(row);
    }
    // Gemma's qk_norm, ln1_post and ln2_post; GeGLU's gelu_mul for SwiGLU's silu_mul.
    assert_eq!(h.query_all_by_label_contains("only in B ▶").count(), 3);
    assert_eq!(h.query_all_by_label("≠ changed").count(), 1);
    assert_eq!(h.query_all_by_label("◀ only in A").count(), 0);
    // Only the Gemma side runs gelu_mul (the app's own diagram is the Llama's).
    assert_eq!(h.query_all_by_label("gelu_mul").count(), 1);

    h.get_by_label("Run both models").click();
    h.run();
    h.run();
    let v = &h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
    assert!(v.error.is_none(), "{:?}", v.error);
    assert!(v.result.is_some());
    for label in ["Next token (A)", "Next token (B)", "Logit lens, last position (A)", "Logit lens, last position (B)"] {
        h.get_by_label(label);
    }
    // B's distribution is the engine's: its top-1 probability is on screen.
    let want = top1_percent(&gemma, &[1, 2, 3, 4, 5, 6]);
    assert!(h.query_all_by_label(&want).count() >= 1, "B's top-1 probability {want} is not shown");
    // A pattern with its layer and head pickers on each side.
    assert_eq!(h.query_all_by_label("Attention pattern").count(), 2);
}

#[test]
fn side_by_side_config_only_model_shows_no_runs() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.state_mut().view = side_by_side::ID;
    h.run();
    let chose = h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view").choose_b("llama 3.1 405b");
    assert!(chose, "the bundled Llama 3.1 405B config is offered");
    h.run();
    assert!(h.query_all_by_label("Llama 3.1 405B (config only)").count() >= 2, "the picker and the headers name it");
    h.get_by_label("Total");
    assert!(h.query_by_label("Run both models").is_none());
}

/// The real pair, when both are cached: SmolLM2-135M against Gemma 3 270M.
#[test]
fn side_by_side_smollm2_against_gemma_3_270m() {
    let gemma_cached = KnownModel::Gemma3_270m.dir().is_ok_and(|d| is_complete(&d));
    let require = std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_some();
    let Some(model) = smollm2() else { return };
    if !gemma_cached {
        assert!(!require, "Gemma 3 270M is required (GLASSBOX_REQUIRE_MODEL) but not cached: glassbox fetch gemma-3-270m");
        eprintln!("note: skipping the real side-by-side check: Gemma 3 270M is not cached");
        return;
    }
    let mut h = harness(app_on(model, "The capital of France is"));
    h.state_mut().view = side_by_side::ID;
    h.run();
    {
        let v = &mut h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
        v.inline = true;
        assert!(v.choose_b("gemma"), "the cached Gemma is offered as model B");
        v.prompt = "The capital of France is".into();
    }
    h.run();
    assert_eq!(h.query_all_by_label_contains("only in B ▶").count(), 3);
    h.get_by_label("Run both models").click();
    h.run();
    h.run();
    let v = &h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
    assert!(v.error.is_none(), "{:?}", v.error);
    let r = v.result.as_ref().expect("both runs");
    assert_eq!((r.a.patterns.len(), r.b.patterns.len()), (30, 18));
    // Both models have the answer among their first five (Gemma 3 270M, a base model, puts
    // " the" first: 19% against Paris's 8%).
    for run in [&r.a, &r.b] {
        assert!(run.top[..5].iter().any(|(t, _)| t == " Paris"), "{}'s top 5: {:?}", run.name, &run.top[..5]);
    }
    assert!(h.query_all_by_label("␣Paris").count() >= 2);
}

/// The app on fixture `a` in the side-by-side view, with fixture folder `b` typed as model B
/// and both run inline.
fn fixture_pair(a: &str, b: &str) -> Harness<'static, GlassboxApp> {
    let model = Arc::new(Model::load(&repo_root().join("tests/fixtures").join(a)).expect("fixture A loads"));
    let mut h = harness(app_on(model, "1 2 3 4 5 6"));
    h.state_mut().view = side_by_side::ID;
    h.state_mut().show_diagram = false;
    h.run();
    {
        let v = &mut h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
        v.inline = true;
        v.folder = repo_root().join("tests/fixtures").join(b).display().to_string();
        v.prompt = "1 2 3 4 5 6".into();
    }
    h.run();
    h.get_by_label("Use as B").click();
    h.run();
    h.run();
    h
}

fn run_both(h: &mut Harness<'static, GlassboxApp>) {
    h.get_by_label("Run both models").click();
    h.run();
    h.run();
    let v = &h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
    assert!(v.folder_error.is_none() && v.error.is_none(), "{:?} {:?}", v.folder_error, v.error);
    assert!(v.result.is_some());
}

#[test]
fn side_by_side_qwen3_against_olmo2_from_a_folder() {
    let mut h = fixture_pair("tiny-qwen3", "tiny-olmo2");
    assert!(h.query_all_by_label("tiny-olmo2").count() >= 2, "the picker and the header name B");
    // Qwen 3's pre-norms only in A; OLMo 2's norms after each sublayer only in B, in words.
    assert_eq!(h.query_all_by_label_contains("◀ only in A").count(), 2);
    assert_eq!(h.query_all_by_label_contains("B: norm after the sublayer, none before").count(), 2);
    // Both run QK-norm, of a different width.
    h.get_by_label("≠ A: QK-norm per head; B: QK-norm over the whole width");
    h.get_by_label("Total");
    run_both(&mut h);
}

#[test]
fn side_by_side_phi3_against_llama_marks_the_fused_weights() {
    let mut h = fixture_pair("tiny-phi3", "tiny-smollm2-shape");
    assert_eq!(h.query_all_by_label("≠ A: one fused weight").count(), 5, "q, k, v, gate, up");
    run_both(&mut h);
    // Qwen 2's biases against Llama, through the bundled config of the real model.
    let v = &mut h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
    v.a = v.b;
    assert!(v.choose_b("qwen2.5"), "the bundled Qwen 2.5 config is offered");
    h.run();
    assert_eq!(h.query_all_by_label("≠ B: with bias").count(), 3, "q, k, v");
}

#[test]
fn side_by_side_refuses_a_folder_without_a_model() {
    let mut h = fixture_pair("tiny-qwen2", "configs");
    let v = &h.state_mut().ready().expect("ready").views.get_mut::<SideBySideView>().expect("side-by-side view");
    assert!(v.folder_error.is_some());
    h.get_by_label_contains("No such file");
}
