//! Presenter mode read from the back row: at 1280×720 (zoom 1) every view and every
//! sub-panel — Experiments and Training with results — paints no text under
//! `theme::PRESENTER_PX` and cuts no text at the edge of the screen or of its clip rect.
//! The painted shapes are read from the harness's output, as the renderer gets them.

use std::time::{Duration, Instant};

use egui::epaint::{ClippedShape, Shape};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::{app_on, fixture_ids, fixture_model};
use crate::gui::app::GlassboxApp;
use crate::gui::i18n::Lang;
use crate::gui::theme::PRESENTER_PX;
use crate::gui::views::training::TrainingView;
use crate::gui::views::{ViewId, registry};

/// A projector's window.
pub const PROJECTOR: egui::Vec2 = egui::vec2(1280.0, 720.0);

pub fn projector_harness(app: GlassboxApp) -> Harness<'static, GlassboxApp> {
    Harness::builder()
        .with_size(PROJECTOR)
        .with_max_steps(50)
        // Names of controls are the other tests' concern; this one reads the painted text.
        .with_accessibility_check(false)
        .with_context_setup(crate::gui::fonts::install)
        .build_ui_state(|ui, app: &mut GlassboxApp| app.show(ui), app)
}

/// One painted text: what it says, its font size, where it is and what clips it.
#[derive(Debug)]
pub struct PaintedText {
    pub text: String,
    pub px: f32,
    pub rect: egui::Rect,
    pub clip: egui::Rect,
}

/// Every non-empty text shape of the last frame.
pub fn painted_texts(out: &egui::FullOutput) -> Vec<PaintedText> {
    fn walk(shape: &Shape, clip: egui::Rect, acc: &mut Vec<PaintedText>) {
        match shape {
            Shape::Text(t) if !t.galley.text().trim().is_empty() => {
                let px = t.galley.job.sections.iter().map(|s| s.format.font_id.size).fold(f32::INFINITY, f32::min);
                acc.push(PaintedText { text: t.galley.text().to_string(), px, rect: t.visual_bounding_rect(), clip });
            }
            Shape::Vec(v) => v.iter().for_each(|s| walk(s, clip, acc)),
            _ => {}
        }
    }
    let mut acc = Vec::new();
    for ClippedShape { clip_rect, shape, .. } in &out.shapes {
        walk(shape, *clip_rect, &mut acc);
    }
    acc
}

/// What is wrong with the painted text for the back row: too small, or cut by the screen's
/// edge or its clip rect (text scrolled wholly out of sight, or the next line under a scroll
/// area's lower edge, is not a cut figure).
pub fn back_row_problems(texts: &[PaintedText]) -> Vec<String> {
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, PROJECTOR);
    let mut problems = Vec::new();
    for t in texts {
        let visible = t.clip.intersect(screen);
        if !visible.intersects(t.rect) {
            continue;
        }
        if t.px < PRESENTER_PX - 0.01 {
            problems.push(format!("{:.0} px: {:?}", t.px, short(&t.text)));
        }
        if !visible.expand(1.5).contains_rect(t.rect) && !scrolled_below(t.rect, visible) {
            problems.push(format!("clipped at {:?} by {:?}: {:?}", t.rect, visible, short(&t.text)));
        }
    }
    problems.extend(overlaps(texts, screen));
    problems
}

/// Pairs of visible texts drawn over each other (axis labels too close, L28 over L29).
pub fn overlaps(texts: &[PaintedText], screen: egui::Rect) -> Vec<String> {
    let shown: Vec<&PaintedText> = texts.iter().filter(|t| t.clip.intersect(screen).intersects(t.rect)).collect();
    let mut problems = Vec::new();
    for (i, a) in shown.iter().enumerate() {
        for b in &shown[i + 1..] {
            let both = a.rect.intersect(b.rect);
            let smaller = a.rect.area().min(b.rect.area()).max(1.0);
            // Glyph boxes of neighbouring lines may touch; a fifth of a label is an overlap.
            if both.is_positive() && both.area() > 0.2 * smaller {
                problems.push(format!("overlap: {:?} over {:?}", short(&a.text), short(&b.text)));
            }
        }
    }
    problems
}

/// Text cut only by the lower edge of its clip rect: the next line of a page taller than the
/// screen, which scrolls. (The shapes do not say whether a scroll area or the panel cut it,
/// so a figure running off the bottom passes here; the figures sized to the room subtract
/// their colour bar's height, and the screenshots are looked at.)
fn scrolled_below(text: egui::Rect, visible: egui::Rect) -> bool {
    text.min.y >= visible.min.y && text.max.y > visible.max.y && text.min.x >= visible.min.x - 1.5 && text.max.x <= visible.max.x + 1.5
}

fn short(s: &str) -> String {
    s.chars().take(50).collect()
}

/// A few training steps, paused, so the Training view has curves to draw.
pub fn train_a_little(h: &mut Harness<'static, GlassboxApp>, run_root: &std::path::Path) {
    let training = |h: &mut Harness<'static, GlassboxApp>| -> bool {
        let t = h.state_mut().ready().expect("ready").views.the::<TrainingView>();
        t.step() >= 6 && !t.history.evals.is_empty()
    };
    h.state_mut().ready().expect("ready").views.the::<TrainingView>().run_root = run_root.to_path_buf();
    h.state_mut().view = crate::gui::views::training::ID;
    h.run();
    h.get_by_label("Start").click();
    h.run_steps(2);
    let start = Instant::now();
    while !training(h) {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out training");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.get_by_label("Pause").click();
    let start = Instant::now();
    while h.state_mut().ready().expect("ready").views.the::<TrainingView>().running {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out pausing");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every registered view and sub-panel, in presenter mode, in `lang`: the problems found.
fn walk_views(h: &mut Harness<'static, GlassboxApp>, lang: Lang) -> Vec<String> {
    let views = registry::catalog();
    let mut screens: Vec<(ViewId, Option<&str>)> = views.iter().map(|v| (v.id, None)).collect();
    screens.extend(views.iter().flat_map(|v| v.modes.iter().map(|&m| (v.id, Some(m)))));
    let mut problems = Vec::new();
    for &(view, mode) in &screens {
        {
            let app = h.state_mut();
            app.lang = lang;
            app.presenting = true;
            let r = app.ready().expect("ready");
            r.s.goto(glassbox_engine::Step::Layer(1, glassbox_engine::LayerOp::Softmax));
            if let Some(m) = mode {
                r.views.set_mode(m);
            }
            app.view = view;
        }
        h.run();
        h.run();
        let texts = painted_texts(h.output());
        assert!(!texts.is_empty(), "{view:?} {mode:?} painted no text");
        if mode == Some("lens") {
            // Each cell of the lens names its top token: 2 layers × the prompt's tokens.
            let n = h.state_mut().ready().expect("ready").s.n_tokens();
            let cells = texts.iter().filter(|t| t.text.contains('#')).count();
            assert!(cells >= 2 * n, "the presenter lens shows {cells} token texts for {n} positions");
        }
        problems.extend(back_row_problems(&texts).into_iter().map(|p| format!("{lang:?} {view:?} {mode:?}: {p}")));
    }
    problems
}

#[test]
fn every_view_in_presenter_mode_is_readable_from_the_back_row() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut h = projector_harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    super::experiments::run_every_experiment(&mut h);
    train_a_little(&mut h, tmp.path());
    h.state_mut().show_lesson = false;
    if let Some(v) = h.state_mut().ready().and_then(|r| r.views.get_mut::<crate::gui::views::side_by_side::SideBySideView>()) {
        v.inline = true;
    }
    let mut problems = walk_views(&mut h, Lang::En);
    problems.extend(walk_views(&mut h, Lang::Zh));
    problems.dedup();
    assert!(problems.is_empty(), "{} problems for the back row:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_check_sees_small_and_cut_text() {
    let at = |x: f32, w: f32| egui::Rect::from_min_size(egui::pos2(x, 10.0), egui::vec2(w, 20.0));
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, PROJECTOR);
    let text = |px: f32, rect: egui::Rect, clip: egui::Rect| PaintedText { text: "L28".into(), px, rect, clip };
    assert!(back_row_problems(&[text(18.0, at(10.0, 40.0), screen)]).is_empty());
    assert_eq!(back_row_problems(&[text(14.0, at(10.0, 40.0), screen)]).len(), 1, "too small");
    assert_eq!(back_row_problems(&[text(18.0, at(1260.0, 40.0), screen)]).len(), 1, "cut by the screen");
    assert_eq!(back_row_problems(&[text(18.0, at(10.0, 40.0), at(0.0, 30.0))]).len(), 1, "cut by its clip rect");
    assert!(back_row_problems(&[text(12.0, at(2000.0, 40.0), screen)]).is_empty(), "out of sight");
    let viewport = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(600.0, 20.0));
    assert!(back_row_problems(&[text(18.0, at(10.0, 40.0), viewport)]).is_empty(), "the next line of a scroll area");
}

/// The logit lens of the real SmolLM2 (30 layers) on a projector: every row shown is
/// labelled without two labels on one line (L28 over L29), and its cells name their tokens.
#[test]
fn the_presenter_logit_lens_of_smollm2_shows_tokens_and_readable_layers() {
    let Some(model) = super::smollm2() else { return };
    let mut h = projector_harness(app_on(model, "The capital of France is Paris. The capital of Spain is"));
    h.run();
    {
        let app = h.state_mut();
        app.presenting = true;
        app.show_lesson = false;
        let r = app.ready().expect("ready");
        r.s.goto(glassbox_engine::Step::Layer(29, glassbox_engine::LayerOp::MlpAdd));
        r.views.set_mode("lens");
        app.view = crate::gui::views::residual::ID;
    }
    for _ in 0..4 {
        h.run();
    }
    let texts = painted_texts(h.output());
    let problems = back_row_problems(&texts);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let layers = texts.iter().filter(|t| t.text.starts_with('L') && t.text[1..].parse::<usize>().is_ok()).count();
    assert!(layers >= 8, "{layers} layer labels");
    assert!(texts.iter().any(|t| t.text == "L29"), "the last layer is labelled");
    let n = h.state_mut().ready().expect("ready").s.n_tokens();
    // Cells with text: more than the labels alone (positions + layers + the colour bar).
    assert!(texts.len() > n + layers + 10 + layers * n / 2, "{} texts: the cells name their tokens", texts.len());
}

/// The normal layout on a projector, 1280×720 at 150 % zoom: the Model view keeps its
/// configuration (`rope_theta` and its value) and the tab row on the screen.
#[test]
fn the_projector_model_view_cuts_nothing_at_the_side() {
    let Some(model) = super::smollm2() else { return };
    let worker = crate::gui::worker::Worker::inline(std::sync::Arc::clone(&model), glassbox_engine::Device::Cpu).expect("worker");
    let state = crate::gui::state::PersistedState {
        prompt: "The capital of France is".into(),
        open_lesson: Some("11-residual-stream".into()),
        zoom: 1.5,
        ..crate::gui::state::PersistedState::default()
    };
    let mut h = projector_harness(GlassboxApp::with_model(model, worker, state));
    h.state_mut().view = crate::gui::views::diagram::ID;
    for _ in 0..4 {
        h.run();
    }
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, PROJECTOR / 1.5);
    let texts = painted_texts(h.output());
    let cut: Vec<String> = texts
        .iter()
        .filter(|t| {
            let visible = t.clip.intersect(screen);
            visible.intersects(t.rect) && !visible.expand(1.5).contains_rect(t.rect) && !scrolled_below(t.rect, visible)
        })
        .map(|t| format!("{:?} at {:?} by {:?}", short(&t.text), t.rect, t.clip))
        .collect();
    assert!(cut.is_empty(), "cut at the side:\n{}", cut.join("\n"));
    let shown = |s: &str| texts.iter().any(|t| t.text.contains(s) && screen.contains_rect(t.rect));
    let all: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
    assert!(shown("rope_theta") && shown("100000"), "rope_theta and its value on the screen: {all:?}");
    for tab in ["Model", "Attention", "Residual", "Experiments"] {
        assert!(shown(tab), "the {tab} tab on the screen");
    }
}
