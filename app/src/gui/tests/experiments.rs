//! The Experiments view and the head-ablation picker, driven by labels on the fixture model
//! (no download): each result is checked against the engine's own function on the same
//! input, so the view shows what the engine computes, and Cancel really stops a grid.

use std::ops::ControlFlow;
use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::experiments::head_catalog::{self, HeadScores};
use glassbox_engine::experiments::patching::{PatchHook, PatchSetup, patch_grid};
use glassbox_engine::experiments::{attribution, compare};
use glassbox_engine::{ActivationPrecision, BlockHook, CaptureFilter, HookKey, LayerOp, Step};

use super::{app_on, fixture_ids, fixture_model, harness, smollm2};
use crate::gui::app::GlassboxApp;
use crate::gui::views::experiments::ExperimentSpec;

/// Frames until no experiment runs (the inline worker advances one unit per frame).
pub fn until_idle(h: &mut Harness<'static, GlassboxApp>, max_frames: usize) -> usize {
    for frame in 0..max_frames {
        h.step();
        if !h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().busy() {
            return frame + 1;
        }
    }
    panic!("the experiment did not finish in {max_frames} frames");
}

/// A press and release at `pos`, as a mouse click.
fn click_at(h: &mut Harness<'static, GlassboxApp>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.drag_at(pos);
    h.drop_at(pos);
    h.run();
}

fn open_experiments(h: &mut Harness<'static, GlassboxApp>) {
    h.run();
    h.get_by_label("Experiments").click();
    h.run();
    assert_eq!(h.state().view, crate::gui::views::experiments::ID);
}

fn fixture_prompt_ids() -> Vec<u32> {
    fixture_ids().split_whitespace().map(|s| s.parse().expect("id")).collect()
}

/// Every experiment once on the fixture, so their panels have results (the Chinese-UI test
/// paints them).
pub fn run_every_experiment(h: &mut Harness<'static, GlassboxApp>) {
    h.run();
    let corrupt = {
        let mut ids = fixture_prompt_ids();
        ids[2] = 7;
        ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
    };
    let specs = [
        ExperimentSpec { kind: "patch".into(), corrupt: Some(corrupt), answer: Some("5".into()), wrong: Some("9".into()), hook: Some("z".into()), ..Default::default() },
        ExperimentSpec { kind: "dla".into(), ..Default::default() },
        ExperimentSpec { kind: "heads".into(), probe: Some(true), ..Default::default() },
        ExperimentSpec { kind: "ladder".into(), ..Default::default() },
    ];
    for spec in specs {
        {
            let r = h.state_mut().ready().expect("ready");
            r.views.the::<crate::gui::views::experiments::ExperimentsView>().start(&spec, &mut r.s);
        }
        until_idle(h, 400);
        let r = h.state_mut().ready().expect("ready");
        let x = &r.views.the::<crate::gui::views::experiments::ExperimentsView>();
        for runner in [&x.compare.runner, &x.patching.runner, &x.attribution.runner, &x.catalog.runner] {
            assert!(runner.error.is_none(), "{}: {:?}", spec.kind, runner.error);
        }
    }
}

#[test]
fn compare_mode_runs_and_shows_the_first_op_apart() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    open_experiments(&mut h);
    h.get_by_label("Compare two runs").click();
    h.get_by_label("activation precision").click();
    h.run();
    h.get_by_label("bf16").click();
    h.run();
    h.get_by_label("Run A and B").click();
    until_idle(&mut h, 50);
    h.run();
    // The same two runs straight through the engine.
    let model = fixture_model();
    let ids = fixture_prompt_ids();
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let a = exec.forward(&ids, PassOptions::capture(CaptureFilter::All)).expect("A");
    exec.reset();
    let b = exec
        .forward(&ids, PassOptions { activations: ActivationPrecision::Bf16, ..PassOptions::capture(CaptureFilter::All) })
        .expect("B");
    let want = compare::compare(&a, &b, 10).expect("compare");
    let first = want.first_apart.expect("bf16 rounding parts the runs");
    h.get_by_label(&first.to_string());
    assert!(h.query_all_by_label("bf16 activations").count() >= 2, "the run's row and its top-10 column");
    let r = h.state_mut().ready().expect("ready");
    let got = &r.views.the::<crate::gui::views::experiments::ExperimentsView>().compare.result.as_ref().expect("a result").b[0].2;
    assert_eq!(got.first_apart, Some(first));
    assert_eq!(got.residual, want.residual, "the divergence curve is the engine's");
    assert_eq!(got.kl, want.kl);

    // The ladder: four runs B, one row each, and the A | B | B − A heatmaps.
    h.get_by_label("the precision ladder").click();
    h.run();
    h.get_by_label("Run the ladder").click();
    until_idle(&mut h, 50);
    h.run();
    for label in ["f16 activations", "bf16 activations", "int8 weights (per row)", "4-bit weights (Q4_0 blocks)"] {
        assert!(h.query_all_by_label(label).count() >= 1, "{label}");
    }
    h.get_by_label("B − A");
    let r = h.state_mut().ready().expect("ready");
    assert_eq!(r.views.the::<crate::gui::views::experiments::ExperimentsView>().compare.result.as_ref().map(|r| r.b.len()), Some(4));
}

fn patch_setup(h: &mut Harness<'static, GlassboxApp>) -> PatchSetup {
    let clean = fixture_prompt_ids();
    let mut corrupt = clean.clone();
    corrupt[2] = 7;
    let text = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let p = &mut h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().patching;
    p.clean = text(&clean);
    p.corrupt = text(&corrupt);
    p.answer = "5".into();
    p.wrong = "#9".into();
    PatchSetup { clean, corrupt, answer: 5, wrong: 9 }
}

#[test]
fn a_patching_grid_runs_to_completion_and_cancel_stops_it() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    open_experiments(&mut h);
    h.get_by_label("Activation patching").click();
    h.run();
    let setup = patch_setup(&mut h);
    h.get_by_label("Run the patching grid").click();
    // 2 clean/corrupt passes, then 2 layers × 17 positions, one per frame.
    let frames = until_idle(&mut h, 100);
    assert!(frames >= 34, "the grid filled in cell by cell ({frames} frames)");
    h.run();
    let mut exec = CpuExecutor::new(fixture_model());
    let want = patch_grid(&mut exec, &setup, PatchHook::ResidPre, &mut |_, _| ControlFlow::Continue(()))
        .expect("grid")
        .expect("not cancelled");
    {
        let p = &h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().patching;
        assert!(p.runner.error.is_none(), "{:?}", p.runner.error);
        let g = &p.grids[0];
        assert_eq!((g.begun.rows, g.begun.cols, g.done), (2, 17, 34));
        let got: Vec<f32> = g.scores.clone();
        let want: Vec<f32> = want.scores.iter().flatten().copied().collect();
        for (x, y) in got.iter().zip(&want) {
            assert!((x - y).abs() <= 1e-6, "{got:?}\n{want:?}");
        }
        assert_eq!((p.runner.done, p.runner.total), (34, 34));
    }
    h.get_by_label_contains("34 cells, 36 passes so far");

    // A click on a cell opens that layer and position of the clean run.
    let cells = h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().patching.cells[0];
    let (cw, ch) = (cells.width() / 17.0, cells.height() / 2.0);
    let at = cells.min + egui::vec2(cw * 4.5, ch * 1.5);
    h.hover_at(at);
    h.run();
    h.get_by_label_contains("resid_pre · L1 · 4");
    click_at(&mut h, at);
    {
        let app = h.state_mut();
        assert_eq!(app.view, crate::gui::views::residual::ID);
        let r = app.ready().expect("ready");
        assert_eq!(r.s.sel.position, 4);
        assert_eq!(r.s.cursor_step(), Step::Layer(1, LayerOp::Ln1));
    }

    // Cancel half-way: the grid stops where it was.
    h.get_by_label("Experiments").click();
    h.run();
    h.get_by_label("Run the patching grid").click();
    for _ in 0..6 {
        h.step();
    }
    h.get_by_label("Cancel").click();
    h.step();
    h.step();
    let done = {
        let p = &h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().patching;
        assert!(p.runner.cancelled && !p.runner.busy(), "cancelled");
        let done = p.grids.first().map_or(0, |g| g.done);
        assert!(done > 0 && done < 34, "stopped part-way: {done} of 34 cells");
        done
    };
    h.run();
    h.get_by_label("Cancelled.");
    for _ in 0..10 {
        h.step();
    }
    let p = &h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().patching;
    assert_eq!(p.grids[0].done, done, "nothing ran after Cancel");
}

#[test]
fn dla_bars_sum_to_the_logit() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    open_experiments(&mut h);
    h.get_by_label("Direct logit attribution").click();
    h.run();
    h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().attribution.target = "12".into();
    h.get_by_label("Attribute").click();
    until_idle(&mut h, 10);
    h.run();
    let model = fixture_model();
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let trace = exec.forward(&fixture_prompt_ids(), PassOptions::capture(attribution::capture())).expect("pass");
    let want = attribution::attribute(&model, &trace, 12, None).expect("attribute");
    assert!((want.sum() - want.logit).abs() <= 1e-3 * want.logit.abs().max(1.0), "{} vs {}", want.sum(), want.logit);
    h.get_by_label_contains(&format!("logit[#12] = {:.4} · the components sum to {:.4}", want.logit, want.sum()));
    let ranked = {
        let d = &h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().attribution;
        let got = &d.result.as_ref().expect("a result").attribution;
        assert_eq!(got.components.len(), want.components.len());
        for (x, y) in got.components.iter().zip(&want.components) {
            assert_eq!(x.name, y.name);
            assert!((x.value - y.value).abs() <= 1e-5, "{}: {} vs {}", x.name, x.value, y.value);
        }
        d.ranked().into_iter().take(16).cloned().collect::<Vec<_>>()
    };
    // One bar per large component, named and valued as the engine says, largest first.
    for c in &ranked {
        h.get_by_label(&format!("{} {:+.4}", c.name, c.value));
    }
    assert!(ranked.windows(2).all(|w| w[0].value.abs() >= w[1].value.abs()));
    // A click on a head's bar opens that head.
    let Some(head) = ranked.iter().find(|c| c.head.is_some()) else { panic!("a head among the bars") };
    h.get_by_label(&format!("{} {:+.4}", head.name, head.value)).click();
    h.run();
    let app = h.state_mut();
    assert_eq!(app.view, crate::gui::views::attention::ID);
    let r = app.ready().expect("ready");
    assert_eq!((r.s.cursor_step(), r.s.sel.head), (Step::Layer(head.layer.expect("layer"), LayerOp::Softmax), head.head.expect("head")));
}

fn catalog_shows_the_best_induction_head(model: Arc<glassbox_engine::Model>, prompt: &str) -> (usize, usize, f32) {
    let mut h = harness(app_on(Arc::clone(&model), prompt));
    open_experiments(&mut h);
    h.get_by_label("Head catalog").click();
    h.run();
    h.get_by_label("Score every head").click();
    until_idle(&mut h, 10);
    h.run();
    let probe = head_catalog::probe_sequence(model.config.vocab_size, 20, 1);
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let trace = exec.forward(&probe, PassOptions::capture(head_catalog::capture())).expect("pass");
    let scores = head_catalog::head_scores(&trace, model.config.n_layers()).expect("scores");
    let (l, hd, v) = HeadScores::best(&scores.induction).expect("a best head");
    h.get_by_label(&format!("induction\nbest: L{l}.H{hd} ({v:.3})"));
    // A click on that head opens its pattern on the probe.
    let cells = h.state_mut().ready().expect("ready").views.the::<crate::gui::views::experiments::ExperimentsView>().catalog.cells[2].expect("drawn");
    let (n_layers, n_heads) = (model.config.n_layers() as f32, model.config.n_heads() as f32);
    let at = cells.min + egui::vec2(cells.width() * (hd as f32 + 0.5) / n_heads, cells.height() * (l as f32 + 0.5) / n_layers);
    click_at(&mut h, at);
    let app = h.state_mut();
    assert_eq!(app.view, crate::gui::views::attention::ID);
    let r = app.ready().expect("ready");
    r.s.poll();
    assert_eq!((r.s.cursor_step(), r.s.sel.head), (Step::Layer(l, LayerOp::Softmax), hd));
    assert_eq!(r.s.trace.token_ids, probe, "the attention view shows the probe");
    (l, hd, v)
}

#[test]
fn the_head_catalog_shows_the_best_induction_head() {
    catalog_shows_the_best_induction_head(fixture_model(), &fixture_ids());
    // On SmolLM2 the best head is a real induction head.
    if let Some(model) = smollm2() {
        let (l, hd, v) = catalog_shows_the_best_induction_head(model, "The capital of France is");
        assert!(v > 0.5, "L{l}.H{hd} scores only {v}");
    }
}

#[test]
fn the_picker_ablates_a_head() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    {
        let app = h.state_mut();
        app.view = crate::gui::views::attention::ID;
        app.ready().expect("ready").s.goto(Step::Layer(1, LayerOp::Softmax));
    }
    h.run();
    h.get_by_label("Ablate heads…").click();
    h.run();
    h.get_by_label("L1 H5").click();
    h.run();
    let z_head = |h: &mut Harness<'static, GlassboxApp>, head: usize| -> Vec<f32> {
        let r = h.state_mut().ready().expect("ready");
        let z = r.s.trace.get(HookKey::Block(1, BlockHook::Z)).and_then(|t| t.as_3d()).expect("z");
        z.slice(ndarray::s![.., head, ..]).iter().copied().collect()
    };
    assert_eq!(h.state_mut().ready().expect("ready").s.ablate, vec![(1, 5)]);
    assert!(z_head(&mut h, 5).iter().all(|&v| v == 0.0), "the recorded hook_z of L1 H5 is zero");
    assert!(z_head(&mut h, 4).iter().any(|&v| v != 0.0), "the other heads still write");
    h.get_by_label_contains("ablated heads: L1H5");
    // Click again: back on.
    h.get_by_label("L1 H5").click();
    h.run();
    assert!(h.state_mut().ready().expect("ready").s.ablate.is_empty());
    assert!(z_head(&mut h, 5).iter().any(|&v| v != 0.0));
    assert!(h.query_by_label_contains("ablated heads").is_none());
}

#[test]
fn a_model_kept_as_downloaded_meets_its_f32_reference_first_on_the_ladder() {
    let gguf = super::repo_root().join("tests/fixtures/gguf-blocks/Q4_K_M/model.gguf");
    let model = Arc::new(glassbox_engine::Model::load_with(&gguf, glassbox_engine::WeightsMode::Native).expect("the Q4_K_M fixture"));
    let mut h = harness(app_on(Arc::clone(&model), "The capital of France is"));
    open_experiments(&mut h);
    h.get_by_label("Compare two runs").click();
    h.run();
    h.get_by_label("Run the ladder").click();
    until_idle(&mut h, 80);
    h.run();
    assert!(h.query_all_by_label("f32 reference (the downloaded blocks dequantized)").count() >= 1);
    assert!(h.query_all_by_label("A (as downloaded)").count() >= 1, "A is named by its weights");
    let r = h.state_mut().ready().expect("ready");
    let result = r.views.the::<crate::gui::views::experiments::ExperimentsView>().compare.result.as_ref().expect("a result");
    assert_eq!(result.b.len(), 5, "the f32 reference, then the four rungs");
    let (first, _, cmp) = &result.b[0];
    assert_eq!(first.weights, glassbox_engine::experiments::quantize::WeightQuant::F32Reference);
    assert_eq!(cmp.first_apart, None, "the reference computes the same numbers up to rounding");
    assert!(result.b[4].2.first_apart.is_some(), "4-bit re-rounding parts from the file's blocks");
}
