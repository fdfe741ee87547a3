//! The Training view driven by its labels: a run that trains on its own thread while the UI
//! keeps drawing, pause, one step laid open op by op, a checkpoint opened as the app's model,
//! and the run carried on to the phase change.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::{app_on, fixture_ids, fixture_model, harness};
use crate::gui::app::GlassboxApp;
use crate::gui::views::ViewKind;
use crate::gui::views::training::TrainingView;

fn training<'a>(h: &'a mut Harness<'static, GlassboxApp>) -> &'a mut TrainingView {
    &mut h.state_mut().ready().expect("ready").views.training
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

#[test]
fn train_pause_step_through_open_a_checkpoint_and_reach_the_phase_change() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    training(&mut h).run_root = tmp.path().to_path_buf();
    h.get_by_label("Training").click();
    h.run();
    assert_eq!(h.state().view, ViewKind::Training);
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
        assert_eq!(app.view, ViewKind::Attention);
        let r = app.ready().expect("ready");
        assert_eq!(r.s.model.config.vocab_size, 64, "the checkpoint is the model now");
        assert!(r.s.model.source.weights_note.contains("trained by Glassbox"));
        assert!(!r.views.training.history.steps.is_empty(), "the training view kept its run");
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
    assert_ne!(t.history.steps[11].loss, t.history.bf16_steps[11].loss, "bf16 really rounds");
    h.run_steps(2);
    h.get_by_label("Gradient norm of each data-parallel worker (before the all-reduce)");
}
