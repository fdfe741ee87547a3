//! The Training view driven by its labels: a run that trains on its own thread while the UI
//! keeps drawing, pause, one step laid open op by op, a checkpoint opened as the app's model,
//! and the run carried on to the phase change.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::{app_on, fixture_ids, fixture_model, harness};
use crate::gui::app::GlassboxApp;
use crate::gui::views::fmt_val;
use crate::gui::views::training::TrainingView;

fn training<'a>(h: &'a mut Harness<'static, GlassboxApp>) -> &'a mut TrainingView {
    h.state_mut().ready().expect("ready").views.the::<crate::gui::views::training::TrainingView>()
}

/// Frames until `done` holds (the training thread repaints as it reports).
fn frames_until(h: &mut Harness<'static, GlassboxApp>, what: &str, done: impl Fn(&TrainingView) -> bool) {
    let start = Instant::now();
    while !done(training(h)) {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(3);
}

/// Lays the first training step open at once (a lesson's "train 0 steps, then lay one open")
/// and waits for it.
fn lay_open_the_first_step(h: &mut Harness<'static, GlassboxApp>) {
    let ctx = h.ctx.clone();
    training(h).apply(
        &crate::gui::views::training::TrainRequest {
            preset: glassbox_engine::train::Preset::Induction,
            workers: 1,
            precision: crate::gui::views::training::PrecisionMode::F32,
            steps: Some(0),
            inspect: true,
        },
        &ctx,
    );
    frames_until(h, "the inspection", |t| t.step_through.inspection().is_some() && !t.running);
}

/// The app on the fixture model, its Training view open, runs saved under `run_root`.
fn on_training_view(run_root: &std::path::Path) -> Harness<'static, GlassboxApp> {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    training(&mut h).run_root = run_root.to_path_buf();
    h.get_by_label("Training").click();
    h.run();
    h
}

#[test]
fn train_pause_step_through_open_a_checkpoint_and_reach_the_phase_change() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut h = on_training_view(tmp.path());
    assert_eq!(h.state().view, crate::gui::views::training::ID);
    h.get_by_label("not started");

    // Start: the view keeps drawing while the thread trains.
    h.get_by_label("Start").click();
    h.run_steps(2);
    frames_until(&mut h, "a few steps", |t| t.step() >= 5);
    h.get_by_label_contains("training… step");
    h.get_by_label("Pause").click();
    h.run_steps(2);
    frames_until(&mut h, "the pause", |t| !t.running);
    let paused_at = training(&mut h).step();
    assert!(paused_at < 250, "paused before the end, at {paused_at}");
    h.get_by_label_contains(&format!("paused at step {paused_at} / 250"));
    assert!(!training(&mut h).history.evals.is_empty(), "step 0 was evaluated");

    // One step laid open: forward, loss, backward op by op, the AdamW update.
    h.get_by_label("Step through one training step").click();
    h.run_steps(2);
    h.get_by_label("Lay open the next training step").click();
    h.run_steps(2);
    frames_until(&mut h, "the inspection", |t| t.step_through.inspection().is_some() && !t.running);
    h.get_by_label_contains("1 · Forward");
    h.get_by_label_contains("2 · Loss: mean next-token cross-entropy");
    h.get_by_label_contains("backward of `probs` (1 of 38)");
    h.get_by_label_contains("∂loss/∂ hook_logits [pos=25, vocab=64]");
    h.get_by_label("Next op").click();
    h.run_steps(2);
    h.get_by_label_contains("backward of `logits` (2 of 38)");
    h.get_by_label_contains("∂loss/∂ ln_final.hook_normalized");
    h.get_by_label_contains("4 · AdamW update of one matrix");
    h.get_by_label_contains("max |Δw|");
    assert_eq!(training(&mut h).step(), paused_at + 1, "the laid-open step is a real training step");

    // A checkpoint opens as the app's model; the run survives the switch.
    h.get_by_label("Curves").click();
    h.run_steps(2);
    h.get_by_label("Open in the views").click();
    h.run_steps(3);
    {
        let app = h.state_mut();
        assert_eq!(app.view, crate::gui::views::attention::ID);
        let r = app.ready().expect("ready");
        assert_eq!(r.s.model.config.vocab_size, 64, "the checkpoint is the model now");
        assert!(r.s.model.source.weights_note.contains("trained by Glassbox"));
        assert!(!r.views.the::<crate::gui::views::training::TrainingView>().history.steps.is_empty(), "the training view kept its run");
    }
    let start = Instant::now();
    while h.state_mut().ready().expect("ready").s.n_tokens() != 25 {
        assert!(start.elapsed() < Duration::from_secs(30), "the held-out sequence ran");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }

    // Back to training: resume to the end and see the phase change.
    h.get_by_label("Training").click();
    h.run_steps(2);
    h.get_by_label("Resume").click();
    h.run_steps(2);
    frames_until(&mut h, "the end of the run", |t| t.finished);
    h.get_by_label_contains("finished: 250 steps");
    let t = training(&mut h);
    let (first, last) = (&t.history.evals[0], t.history.evals.last().expect("evals"));
    assert!(last.loss < first.loss / 2.0 && last.induction_score > 0.4, "{} → {}, score {}", first.loss, last.loss, last.induction_score);
    h.get_by_label_contains("Best induction head at step 250");
}

#[test]
fn four_workers_and_the_bf16_overlay_report_what_the_curves_draw() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    {
        let t = training(&mut h);
        t.run_root = tmp.path().to_path_buf();
    }
    h.get_by_label("Training").click();
    h.run();
    let ctx = h.ctx.clone();
    {
        let t = training(&mut h);
        t.workers = 4;
        t.precision = crate::gui::views::training::PrecisionMode::Both;
        t.start(&ctx, Some(12));
    }
    frames_until(&mut h, "12 steps", |t| !t.running && t.step() >= 12);
    let t = training(&mut h);
    assert_eq!(t.history.steps.len(), 12);
    assert_eq!(t.history.bf16_steps.len(), 12, "the bf16 twin trained in lockstep");
    assert!(t.history.steps.iter().all(|r| r.worker_grad_norms.len() == 4));
    // Any one step's loss may agree to all 24 bits by chance (step 12 does, here); the run may not.
    let differ = t.history.steps.iter().zip(&t.history.bf16_steps).filter(|(a, b)| a.loss != b.loss).count();
    assert!(differ >= 6, "bf16 really rounds: only {differ} of 12 losses differ from f32");
    h.run_steps(2);
    h.get_by_label("Gradient norm of each data-parallel worker (before the all-reduce)");
}

#[test]
fn a_training_steps_gradients_show_in_the_attention_view_and_step_backward_op_by_op() {
    use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

    let tmp = tempfile::tempdir().expect("temp dir");
    let mut h = on_training_view(tmp.path());
    lay_open_the_first_step(&mut h);
    // The engine's numbers for the step laid open, to compare with what the views show.
    let (n, loss, engine_grads) = {
        let insp = training(&mut h).step_through.inspection().expect("laid open");
        (insp.step.report.step, insp.step.grads.loss.loss, insp.step.grads.hooks.clone())
    };
    h.get_by_label("Show the gradients in the views").click();
    h.run_steps(2);
    let start = Instant::now();
    while h.state_mut().ready().expect("ready").s.n_tokens() != 25 || h.state_mut().ready().expect("ready").s.running {
        assert!(start.elapsed() < Duration::from_secs(30), "the laid-open sequence ran");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(3);

    // The attention view of the first laid-open layer shows ∂loss/∂pattern, labelled so.
    let (layer, cursor) = {
        let app = h.state_mut();
        assert_eq!(app.view, crate::gui::views::attention::ID);
        let r = app.ready().expect("ready");
        assert!(r.s.grads.as_ref().is_some_and(|g| g.on), "gradients are loaded and on");
        let layer = r.s.view_layer();
        assert_eq!(r.s.cursor_step(), Step::Layer(layer, LayerOp::Softmax));
        (layer, r.s.cursor)
    };
    let key = HookKey::Block(layer, BlockHook::Pattern);
    h.get_by_label("Show gradients ∂loss/∂… instead of activations");
    h.get_by_label(&format!("training step {n} · loss {loss:.4}"));
    // The title names the hook as a gradient (its shape follows after a space).
    h.get_by_label_contains(&format!("∂loss/∂{key} "));
    h.get_by_label_contains("red = raising the value raises the loss");
    h.get_by_label_contains(&format!("backward of `blocks.{layer}.softmax`"));
    h.get_by_label("∂loss/∂p");

    // Hovering a cell reads the gradient, bit for bit, not the activation.
    let (rect, rows, cols) = h.state_mut().ready().and_then(|r| r.views.the::<crate::gui::views::attention::AttentionView>().head_cells).expect("heatmap drawn");
    assert_eq!((rows, cols), (25, 25));
    let (q, k) = (20usize, 7usize);
    let cell = rect.width() / cols as f32;
    h.hover_at(rect.min + egui::vec2((k as f32 + 0.5) * cell, (q as f32 + 0.5) * cell));
    h.run();
    let (readout, grad, activation) = {
        let r = h.state_mut().ready().expect("ready");
        let readout = r.views.the::<crate::gui::views::attention::AttentionView>().readout.clone().expect("hover read-out");
        let head = readout.head;
        let grad = engine_grads.get(key).and_then(|t| t.as_3d()).expect("∂pattern from train::backward")[[head, q, k]];
        let activation = r.s.trace.get(key).and_then(|t| t.as_3d()).expect("pattern")[[head, q, k]];
        (readout, grad, activation)
    };
    assert_eq!((readout.key, readout.q, readout.k), (key, q, k));
    assert_eq!(readout.value, grad, "the read-out is the engine's gradient");
    // The number on screen is the gradient's, and could not be mistaken for the activation's.
    let (shown, other) = (fmt_val(grad), fmt_val(activation));
    assert_ne!(shown, other);
    h.get_by_label(&format!("∂loss/∂{key}[head {}, q {q}, k {k}] = {shown}", readout.head));

    // One op further back: the cursor moves through the reverse program (softmax → mask).
    h.get_by_label("Backward: next op ▶").click();
    h.run_steps(2);
    assert_eq!(h.state_mut().ready().expect("ready").s.cursor, cursor - 1);
    h.get_by_label_contains(&format!("backward of `blocks.{layer}.mask`"));
    h.get_by_label_contains(&format!("∂loss/∂blocks.{layer}.attn.hook_attn_scores"));
    h.get_by_label("◀ Backward: previous op").click();
    h.run_steps(2);
    assert_eq!(h.state_mut().ready().expect("ready").s.cursor, cursor);

    // Switched off, the same view shows the activations again.
    h.get_by_label("Show gradients ∂loss/∂… instead of activations").click();
    h.run_steps(2);
    assert!(h.state_mut().ready().expect("ready").s.grads.as_ref().is_some_and(|g| !g.on));
    assert!(h.query_by_label_contains(&format!("∂loss/∂{key}")).is_none(), "no gradient label left");
    h.get_by_label("p (attention pattern)");
}

/// The architecture picked in the view is what trains: GPT-2's step laid open holds the
/// gradients only its recipe has (learned positions, LayerNorm biases), the backward ran
/// through its own ops (`act`, not `silu_mul`), and the views show them.
#[test]
fn another_architecture_trains_and_its_backward_steps_through_its_own_ops() {
    use glassbox_engine::{LayerOp, Step};

    let tmp = tempfile::tempdir().expect("temp dir");
    let mut h = on_training_view(tmp.path());
    h.get_by_label("Architecture:").click();
    h.run();
    h.get_by_label("gpt2").click();
    h.run();
    assert_eq!(training(&mut h).recipe, glassbox_engine::train::recipes::Recipe::Gpt2);
    lay_open_the_first_step(&mut h);
    let insp = training(&mut h).step_through.inspection().expect("laid open");
    let grads = &insp.step.grads;
    for name in ["model.embed_positions.weight", "model.layers.0.input_layernorm.bias", "model.layers.1.mlp.down_proj.bias"] {
        let g = grads.params.get(name).unwrap_or_else(|| panic!("no gradient for {name}"));
        assert!(g.iter().any(|v| *v != 0.0), "{name}: all zero");
    }
    let ran: Vec<Step> = grads.recorded.iter().map(|(s, _)| *s).collect();
    assert!(ran.contains(&Step::Layer(0, LayerOp::Act)) && ran.contains(&Step::PosEmbed), "GPT-2's own ops: {ran:?}");
    assert!(!ran.iter().any(|s| matches!(s, Step::Layer(_, LayerOp::SiluMul | LayerOp::Rope))), "no Llama op ran backward");
    assert!(tmp.path().join("induction-gpt2").is_dir(), "its run folder is its own");
}
