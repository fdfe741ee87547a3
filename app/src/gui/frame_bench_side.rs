//! Frame time of the side-by-side view with both models' runs present (SmolLM2 against
//! Gemma 3 270M when both are cached): the whole window rendered headlessly as in
//! `frame_bench.rs`, the pointer sweeping the two attention patterns.
//! `glassbox bench --frames` calls [`side_by_side_frame_bench`].

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use egui::{Event, RawInput, Rect, pos2, vec2};
use glassbox_engine::load::fetch::{KnownModel, is_complete};
use glassbox_engine::{Device, Model};

use super::app::GlassboxApp;
use super::state::PersistedState;
use super::views::side_by_side::{self, SideBySideView};
use super::worker::Worker;

/// The bench's prompt (both tokenizers split it into about a dozen tokens).
pub const SIDE_BENCH_PROMPT: &str = "The capital of France is Paris. The capital of Italy is";

/// Model B for `a`: Gemma 3 270M if cached, else SmolLM2 — whichever `a` is not.
fn model_b_name(a: &Model) -> Option<&'static str> {
    [KnownModel::Gemma3_270m, KnownModel::SmolLm2].into_iter().find_map(|k| {
        let dir = k.dir().ok()?;
        (dir != a.source.dir && is_complete(&dir)).then(|| k.name())
    })
}

/// Runs the prompt in `model` and model B (inline), then renders `frames` frames of the
/// window on the side-by-side view, 1600 × 1000 points. Returns `None` when no model B is
/// cached, else (B's name, median ms, p95 ms), two warm-up frames excluded.
pub fn side_by_side_frame_bench(model: Arc<Model>, frames: usize) -> Result<Option<(String, f64, f64)>> {
    let Some(b) = model_b_name(&model) else { return Ok(None) };
    if frames == 0 {
        bail!("need at least one frame");
    }
    let worker = Worker::inline(Arc::clone(&model), Device::Cpu)?;
    let state = PersistedState { prompt: SIDE_BENCH_PROMPT.into(), view: side_by_side::ID, open_lesson: None, ..PersistedState::default() };
    let mut app = GlassboxApp::with_model(model, worker, state);
    app.view = side_by_side::ID;
    let ctx = egui::Context::default();
    super::fonts::install(&ctx);
    let screen = Rect::from_min_size(pos2(0.0, 0.0), vec2(1600.0, 1000.0));
    let input = |f: usize, pointer| RawInput { screen_rect: Some(screen), time: Some(f as f64 / 60.0), events: vec![Event::PointerMoved(pointer)], ..RawInput::default() };
    // The first frame fills the pickers.
    let _ = ctx.run_ui(input(0, pos2(0.0, 0.0)), |ui| app.show(ui));
    let Some(r) = app.ready() else { bail!("the app did not start") };
    let Some(view) = r.views.get_mut::<SideBySideView>() else { bail!("no side-by-side view") };
    view.inline = true;
    view.prompt = SIDE_BENCH_PROMPT.into();
    if !view.choose_b(b) || !view.run_chosen(&ctx) {
        bail!("{b} is cached but could not be chosen as model B");
    }
    if let Some(e) = &view.error {
        bail!("the side-by-side runs failed: {e}");
    }
    let mut times = Vec::with_capacity(frames);
    for f in 0..frames + 2 {
        let t = f as f32 / (frames + 2) as f32;
        let pointer = pos2(100.0 + 1400.0 * t, 200.0 + 700.0 * (t * 5.0).fract());
        let start = Instant::now();
        let out = ctx.run_ui(input(f + 1, pointer), |ui| app.show(ui));
        std::hint::black_box(ctx.tessellate(out.shapes, out.pixels_per_point));
        if f >= 2 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(Some((b.to_string(), pick(0.5), pick(0.95))))
}
