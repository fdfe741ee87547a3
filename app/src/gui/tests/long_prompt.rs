//! A prompt whose full capture would not fit the memory budget: the app runs it as a long
//! pass (the overview in chunks, then one block's detail recomputed for the window of rows
//! the views show), and every view still works, by label. The fixture stands in for
//! SmolLM2 with a budget small enough that 1,024 of its tokens need the long path (the same
//! path an 8,192-token SmolLM2 prompt takes under the default budget: `budget` tests,
//! `scripts/long-prompt.sh`).

use egui_kittest::kittest::Queryable;
use glassbox_engine::long::budget::{self, MIB, MIN_BUDGET, Plan};
use glassbox_engine::exec::tensor::Dim;
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use super::{app_on, fixture_model, harness};
use crate::gui::views::attention::AttnMode;
use crate::gui::views::residual::ResidualMode;

const N: usize = 1024;

/// Some label shows `text` (several may: headings repeat positions).
fn shows(h: &egui_kittest::Harness<'static, crate::gui::app::GlassboxApp>, text: &str) {
    assert!(h.query_all_by_label_contains(text).count() > 0, "no label contains {text:?}");
}

/// The trace the views read holds the window's rows of `key`.
fn assert_window_has(h: &mut egui_kittest::Harness<'static, crate::gui::app::GlassboxApp>, keys: &[HookKey]) {
    let r = h.state_mut().ready().expect("ready");
    assert!(r.s.error.is_none(), "{:?}", r.s.error);
    for &key in keys {
        let t = r.s.trace.get(key).unwrap_or_else(|| panic!("{key} missing (notices {:?})", r.s.notices));
        let rows = t.dims.iter().position(|d| matches!(d, Dim::Pos | Dim::QPos)).map(|axis| t.shape()[axis]);
        // `hook_probs` holds the last row's distribution only (as in any pass).
        let want = if key == HookKey::Probs { 1 } else { 256 };
        assert_eq!(rows, Some(want), "{key}: the window's rows");
    }
    let held = r.s.trace_bytes() as u64;
    assert!(held <= r.s.budget, "{} held, budget {}", budget::human(held), budget::human(r.s.budget));
}

#[test]
fn a_long_prompt_opens_within_the_budget_and_every_view_works() {
    let model = fixture_model();
    let ids: Vec<String> = (0..N).map(|i| ((i * 37 + 5) % 300).to_string()).collect();
    assert!(matches!(budget::plan(&model.config, N, MIN_BUDGET), Plan::Overview(_)), "the fixture at {N} tokens needs the long path");
    assert_eq!(budget::plan(&model.config, N, budget::DEFAULT_BUDGET), Plan::Full, "under the default it would be captured fully");
    let mut h = harness(app_on(model, &ids.join(" ")));
    h.run();
    h.state_mut().ready().expect("ready").s.budget = MIN_BUDGET;
    h.get_by_label("Run").click();
    h.run();
    {
        let r = h.state_mut().ready().expect("ready");
        assert!(r.s.is_long(), "{:?}", r.s.error);
        let l = r.s.long.as_ref().expect("long");
        assert!(l.overview.is_some(), "the overview finished");
        assert_eq!((l.start, l.rows), (N - 256, 256), "the window starts at the end of the prompt");
        assert_eq!(r.s.n_tokens(), 256);
    }
    shows(&h, &format!("Long prompt, {N} tokens: the views show positions"));
    shows(&h, &format!("of {}", budget::human(MIN_BUDGET)));

    // Tokens and embedding: the window's rows of what the overview kept.
    h.state_mut().view = crate::gui::views::tokens::ID;
    h.run();
    shows(&h, &format!("(positions {}–{} of {N}: move the window above)", N - 256, N - 1));
    h.state_mut().ready().expect("ready").s.goto(Step::Embed);
    h.state_mut().view = crate::gui::views::embedding_norm::EMBEDDING_ID;
    h.run();
    assert_window_has(&mut h, &[HookKey::Embed]);
    shows(&h, &format!("Position {}", N - 1));

    // A block's views: the block is recomputed for the window.
    for (step, view, title) in [
        (Step::Layer(1, LayerOp::Ln1), crate::gui::views::embedding_norm::RMSNORM_ID, None),
        (Step::Layer(1, LayerOp::Rope), crate::gui::views::qkv_rope::ID, Some(format!("Position {} ", N - 1))),
        (Step::Layer(1, LayerOp::Softmax), crate::gui::views::attention::ID, Some("Attention pattern softmax(scores) · L1 H0".to_string())),
        (Step::Layer(0, LayerOp::SiluMul), crate::gui::views::mlp::ID, Some(format!("position {}", N - 1))),
    ] {
        h.state_mut().ready().expect("ready").s.goto(step);
        h.state_mut().view = view;
        h.run();
        let layer = step.layer().expect("a block step");
        assert_window_has(&mut h, &[HookKey::Block(layer, BlockHook::Ln1Normalized), HookKey::Block(layer, BlockHook::Pattern), HookKey::Block(layer, BlockHook::MlpPost)]);
        if let Some(title) = title {
            shows(&h, &title);
        }
    }
    // The attention of the window's queries over its own keys, and what went to earlier ones.
    h.state_mut().ready().expect("ready").s.goto(Step::Layer(1, LayerOp::Softmax));
    h.state_mut().view = crate::gui::views::attention::ID;
    h.run();
    shows(&h, &format!("Keys shown: positions {}–{}.", N - 256, N - 1));
    {
        let r = h.state_mut().ready().expect("ready");
        let p = r.s.trace.get(HookKey::Block(1, BlockHook::Pattern)).and_then(|t| t.as_3d()).expect("pattern");
        assert_eq!(p.dim(), (9, 256, 256), "cut to the window's keys");
        let cut = r.s.long.as_ref().and_then(|l| l.key_cut(1)).expect("cut");
        let before = cut.weight_before.as_ref().and_then(|t| t.as_2d()).expect("weight before");
        // Each query's weights over every key sum to 1: the window's part plus the earlier part.
        for q in [0, 100, 255] {
            let sum: f32 = p.slice(ndarray::s![0, q, ..]).sum() + before[[0, q]];
            assert!((sum - 1.0).abs() < 1e-4, "query {q}: {sum}");
        }
    }
    // The all-heads overview draws the engine's pooled map of every position.
    h.state_mut().ready().expect("ready").views.the::<crate::gui::views::attention::AttentionView>().mode = AttnMode::Overview;
    h.run();
    shows(&h, &format!("All {N} positions: each cell is the largest weight among 8 × 8"));
    h.state_mut().ready().expect("ready").views.the::<crate::gui::views::attention::AttentionView>().mode = AttnMode::Head;

    // Residual stream: norms, writes and the logit lens for the window.
    for mode in [ResidualMode::Norms, ResidualMode::Writes, ResidualMode::Lens] {
        h.state_mut().ready().expect("ready").views.the::<crate::gui::views::residual::ResidualView>().mode = mode;
        h.state_mut().view = crate::gui::views::residual::ID;
        h.run();
        h.run();
    }
    {
        let r = h.state_mut().ready().expect("ready");
        let a = r.s.analysis.as_ref().expect("window summaries");
        assert_eq!(a.residual_norms.as_ref().map(|n| n[0].len()), Some(256));
        let lens = r.s.lens.as_ref().expect("lens asked and answered").as_ref().expect("lens ok");
        assert_eq!(lens.len(), 2);
        assert_eq!(lens[1][1].len(), 256, "the window's rows");
    }

    // Output: the output head recomputed for the window.
    h.state_mut().ready().expect("ready").s.goto(Step::Probs);
    h.state_mut().view = crate::gui::views::output::ID;
    h.run();
    assert_window_has(&mut h, &[HookKey::Logits, HookKey::Probs]);
    shows(&h, &format!("Next token after position {}", N - 1));

    // Move the window: the views follow to the earlier positions, recomputed again.
    h.get_by_label("◀ earlier").click();
    h.run();
    h.state_mut().ready().expect("ready").s.goto(Step::Layer(0, LayerOp::Softmax));
    h.state_mut().view = crate::gui::views::attention::ID;
    h.run();
    {
        let r = h.state_mut().ready().expect("ready");
        assert_eq!(r.s.pos_base(), N - 512);
        assert!(r.s.trace.get(HookKey::Block(0, BlockHook::Pattern)).is_some(), "{:?}", r.s.notices);
    }
    shows(&h, &format!("Keys shown: positions {}–{}.", N - 512, N - 257));
    assert_window_has(&mut h, &[HookKey::Block(0, BlockHook::Pattern)]);
    h.state_mut().view = crate::gui::views::diagram::ID;
    h.run();
    assert!(h.state_mut().ready().expect("ready").s.error.is_none());
    let budget_mib = h.state_mut().ready().expect("ready").s.budget / MIB;
    assert_eq!(budget_mib, MIN_BUDGET / MIB);
}
