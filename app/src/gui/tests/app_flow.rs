//! The app driven like a person would: by labels and keys.

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use super::{app_on, fixture_ids, fixture_model, harness};
use crate::gui::views::registry;

#[test]
fn prompt_step_to_layer_1_attention_pick_head_temperature_and_language() {
    let mut h = harness(app_on(fixture_model(), ""));
    h.run();

    // Type a prompt (token ids: the fixture has no tokenizer) and press Run.
    let input = h.get_by_role(egui::Role::TextInput);
    input.focus();
    input.type_text(&fixture_ids());
    h.run();
    h.get_by_label("Run").click();
    h.run();
    {
        let r = h.state_mut().ready().expect("model ready");
        assert_eq!(r.s.n_tokens(), 17, "{:?}", r.s.error);
        assert!(!r.s.running);
        assert!(r.s.analysis.is_some(), "the pass finished and was analysed");
    }
    // Leave the text field, then walk with the keyboard: Shift+→ twice = layer 1,
    // → seven times = ln1 → q → k → v → rope → scores → mask → softmax.
    h.get_by_label("Model").click();
    h.run();
    h.key_press_modifiers(Modifiers::SHIFT, Key::ArrowRight);
    h.run();
    h.key_press_modifiers(Modifiers::SHIFT, Key::ArrowRight);
    h.run();
    for _ in 0..7 {
        h.key_press(Key::ArrowRight);
        h.run();
    }
    {
        let app = h.state_mut();
        assert_eq!(app.view, crate::gui::views::attention::ID, "the view follows the step");
        let r = app.ready().expect("ready");
        assert_eq!(r.s.cursor_step(), Step::Layer(1, LayerOp::Softmax));
    }
    h.get_by_label_contains("Attention pattern softmax(scores) · L1 H0");

    // Pick head 4: the heading and the K/V group follow.
    h.get_by_label("H4").click();
    h.run();
    assert_eq!(h.state_mut().ready().expect("ready").s.sel.head, 4);
    h.get_by_label_contains("L1 H4");
    h.get_by_label_contains("K/V head 1 (shared by heads 3–5)");

    // End → the sample step and the Output view; then move the temperature slider.
    h.key_press(Key::End);
    h.run();
    assert_eq!(h.state().view, crate::gui::views::output::ID);
    let before = h
        .state_mut()
        .ready()
        .map(|r| r.views.the::<crate::gui::views::output::OutputView>().softmax.clone())
        .expect("ready");
    assert!(!before.is_empty());
    let top_label = format!("{:.4}", before[0].prob);
    // Shown twice at T = 1 with top-k/top-p off: the softmax and the sampling distribution.
    assert!(h.get_all_by_label(&top_label).count() >= 1);
    h.get_by_role_and_label(egui::Role::Slider, "temperature")
        .set_value_accesskit(0.3);
    h.run();
    let r = h.state_mut().ready().expect("ready");
    assert!(
        (r.s.sampling.temperature - 0.3).abs() < 1e-6,
        "slider moved: {}",
        r.s.sampling.temperature
    );
    let after = r.views.the::<crate::gui::views::output::OutputView>().softmax.clone();
    assert_eq!(before[0].id, after[0].id, "temperature keeps the order");
    assert!(
        after[0].prob > before[0].prob + 1e-3,
        "T = 0.3 sharpens: {} → {}",
        before[0].prob,
        after[0].prob
    );
    assert!(
        h.get_all_by_label(&format!("{:.4}", after[0].prob)).count() >= 1,
        "the new probability is shown"
    );
    if !after.iter().any(|e| format!("{:.4}", e.prob) == top_label) {
        assert!(
            h.query_by_label(&top_label).is_none(),
            "the old probability is gone"
        );
    }

    // Switch language: the UI and the lesson panel turn Chinese.
    h.get_by_label("中文").click();
    h.run();
    h.get_by_label("运行");
    h.get_by_label("课程");
    h.get_by_role_and_label(egui::Role::Slider, "温度");
    h.get_by_label("English").click();
    h.run();
    h.get_by_label("Run");
}

#[test]
fn hover_read_out_equals_the_trace_value() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    {
        let app = h.state_mut();
        let r = app.ready().expect("ready");
        r.s.goto(Step::Layer(1, LayerOp::Softmax));
        r.s.sel.head = 7;
        app.view = crate::gui::views::attention::ID;
    }
    h.run();
    let (rect, rows, cols) = h
        .state_mut()
        .ready()
        .and_then(|r| r.views.the::<crate::gui::views::attention::AttentionView>().head_cells)
        .expect("heatmap drawn");
    assert_eq!((rows, cols), (17, 17));
    for (q, k) in [(9usize, 4usize), (16, 0), (3, 3)] {
        let cell = rect.width() / cols as f32;
        let pos = rect.min + egui::vec2((k as f32 + 0.5) * cell, (q as f32 + 0.5) * cell);
        h.hover_at(pos);
        h.run();
        let r = h.state_mut().ready().expect("ready");
        let readout = r.views.the::<crate::gui::views::attention::AttentionView>().readout.clone().expect("hover read-out");
        let key = HookKey::Block(1, BlockHook::Pattern);
        let t = r.s.trace.get(key).and_then(|t| t.as_3d()).expect("pattern");
        assert_eq!(
            (readout.key, readout.head, readout.q, readout.k),
            (key, 7, q, k)
        );
        assert_eq!(
            readout.value,
            t[[7, q, k]],
            "the read-out is the trace's value, bit for bit"
        );
        h.get_by_label(&readout.text());
    }
}

#[test]
fn every_view_renders_on_the_fixture_in_both_languages() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    for lang in crate::gui::i18n::Lang::ALL {
        h.state_mut().lang = lang;
        for step in [
            "embed",
            "blocks.0.ln1",
            "blocks.1.rope",
            "blocks.1.scores",
            "blocks.1.mask",
            "blocks.1.z",
            "blocks.1.o_proj",
            "blocks.0.attn_add",
            "blocks.1.silu_mul",
            "ln_final",
            "sample",
        ] {
            let step: Step = step.parse().expect("step");
            h.state_mut().ready().expect("ready").s.goto(step);
            for view in registry::catalog().iter().map(|v| v.id) {
                h.state_mut().view = view;
                h.run();
            }
        }
        use crate::gui::views::attention::AttnMode;
        for mode in [AttnMode::Layer, AttnMode::Overview, AttnMode::Lines] {
            h.state_mut().view = crate::gui::views::attention::ID;
            h.state_mut().ready().expect("ready").views.the::<crate::gui::views::attention::AttentionView>().mode = mode;
            h.run();
        }
        use crate::gui::views::residual::ResidualMode;
        for mode in [ResidualMode::Writes, ResidualMode::Lens] {
            h.state_mut().view = crate::gui::views::residual::ID;
            h.state_mut().ready().expect("ready").views.the::<crate::gui::views::residual::ResidualView>().mode = mode;
            h.run();
            h.run();
        }
    }
    let r = h.state_mut().ready().expect("ready");
    assert!(
        matches!(r.s.lens, Some(Ok(_))),
        "logit lens computed on the worker"
    );
}

#[test]
fn diagram_buttons_and_generation_grow_the_kv_cache() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    h.get_by_label("L1").click();
    h.run();
    h.get_by_label("softmax").click();
    h.run();
    assert_eq!(
        h.state_mut().ready().expect("ready").s.cursor_step(),
        Step::Layer(1, LayerOp::Softmax)
    );
    h.state_mut().view = crate::gui::views::output::ID;
    h.run();
    h.get_by_label("Generate N").click();
    h.run();
    let r = h.state_mut().ready().expect("ready");
    // Greedy default T = 1 samples; the fixture has no EOS, so all 20 tokens come.
    assert_eq!(r.s.generated.len(), 20, "{:?}", r.s.error);
    assert_eq!(r.s.n_tokens(), 37, "the full sequence is traced again");
    assert_eq!(r.s.cache_len, 37);
}

/// The first-run screen: no model yet; a wrong path is reported, a right one loads (on its
/// own thread) and the main window appears.
#[test]
fn first_run_screen_opens_a_model_folder() {
    use crate::gui::app::{GlassboxApp, Phase};
    let mut app = app_on(fixture_model(), "");
    app.phase = Phase::Start(crate::gui::first_run::FirstRun::idle());
    let mut h = harness(app);
    h.run();
    h.get_by_label("No model is in the cache yet.");
    h.get_by_label_contains("Download SmolLM2-135M-Instruct");
    let field = h.get_by_role(egui::Role::TextInput);
    field.focus();
    field.type_text("/no/such/folder");
    h.run();
    h.get_by_label("Open").click();
    h.run();
    h.get_by_label_contains("/no/such/folder: no such folder or file");
    let dir = super::repo_root().join("tests/fixtures/tiny-smollm2-shape");
    if let Phase::Start(fr) = &mut h.state_mut().phase {
        fr.path_text = dir.display().to_string();
    }
    h.run();
    h.get_by_label("Open").click();
    for _ in 0..200 {
        h.step();
        if matches!(h.state().phase, Phase::Ready(_)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let app: &mut GlassboxApp = h.state_mut();
    let r = app.ready().expect("the model loaded from the folder");
    assert_eq!(r.s.model.config.n_heads(), 9);
}
