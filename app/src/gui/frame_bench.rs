//! Frame time of the app showing its heaviest view, the attention overview (all layers ×
//! heads) at `n_tokens`, rendered headlessly with a bare `egui::Context`: layout, painting
//! and tessellation on the CPU, which is what limits the frame rate (the GPU then draws a
//! few textured quads and text).
//! `glassbox bench --frames` calls [`attention_overview_frame_bench`].

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use egui::{Event, RawInput, Rect, pos2, vec2};
use glassbox_engine::Model;

use super::app::GlassboxApp;
use super::state::PersistedState;
use super::views::attention::{self, AttentionView};
use super::views::attention::AttnMode;
use super::worker::Worker;
use glassbox_engine::Device;

/// Ids for the benchmark: the bench prompt tokenized and repeated, or a fixed pattern.
fn bench_ids(model: &Model, n: usize) -> Vec<u32> {
    let text = "The quick brown fox jumps over the lazy dog. A teacher explains attention to a class of students, one step at a time. ";
    let mut ids = model
        .tokenizer
        .as_ref()
        .and_then(|t| t.encode(text).ok())
        .unwrap_or_default();
    if ids.is_empty() {
        let vocab = model.config.vocab_size.max(2) as u64;
        ids = (0..n as u64)
            .map(|i| ((i * 7919 + 13) % vocab) as u32)
            .collect();
    }
    ids.iter().copied().cycle().take(n).collect()
}

/// Runs the model once over `n_tokens` (CPU, every hook), then renders `frames` frames of
/// the whole window — prompt bar, diagram, lesson panel (Markdown), timeline, status bar —
/// with the attention overview as the view and the pointer moving over its cells (so the
/// hover read-outs run too), 1600 × 1000 points.
/// Returns (median, p95) CPU frame time in milliseconds, excluding two warm-up frames
/// (the first builds the overview texture once; `GLASSBOX_BENCH_DEBUG=1` prints them).
pub fn attention_overview_frame_bench(
    model: Arc<Model>,
    n_tokens: usize,
    frames: usize,
) -> Result<(f64, f64)> {
    if n_tokens == 0 || frames == 0 {
        bail!("need at least one token and one frame");
    }
    let worker = Worker::inline(Arc::clone(&model), Device::Cpu)?;
    let state = PersistedState {
        prompt: String::new(),
        view: attention::ID,
        open_lesson: Some("09-attention-patterns".into()),
        ..PersistedState::default()
    };
    let mut app = GlassboxApp::with_model(Arc::clone(&model), worker, state);
    let Some(r) = app.ready() else {
        bail!("the app did not start")
    };
    r.s.fixed_ids = Some(bench_ids(&model, n_tokens));
    r.s.run();
    r.s.poll();
    if let Some(e) = &r.s.error {
        bail!("the benchmark pass failed: {e}");
    }
    r.s.goto(glassbox_engine::Step::Layer(
        0,
        glassbox_engine::LayerOp::Softmax,
    ));
    if let Some(a) = r.views.get_mut::<AttentionView>() {
        a.mode = AttnMode::Overview;
    }
    app.view = attention::ID;
    let debug = std::env::var_os("GLASSBOX_BENCH_DEBUG").is_some();
    let ctx = egui::Context::default();
    super::fonts::install(&ctx);
    let screen = Rect::from_min_size(pos2(0.0, 0.0), vec2(1600.0, 1000.0));
    let mut times = Vec::with_capacity(frames);
    let mut read_outs = 0;
    for f in 0..frames + 2 {
        let t = f as f32 / (frames + 2) as f32;
        // Sweeps the overview (it sits between the diagram and the lesson panel).
        let pointer = pos2(330.0 + 800.0 * t, 150.0 + 700.0 * ((t * 7.0).fract()));
        let input = RawInput {
            screen_rect: Some(screen),
            time: Some(f as f64 / 60.0),
            events: vec![Event::PointerMoved(pointer)],
            ..RawInput::default()
        };
        let start = Instant::now();
        let out = ctx.run_ui(input, |ui| app.show(ui));
        let prims = ctx.tessellate(out.shapes, out.pixels_per_point);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if debug && f == 2 {
            let vertices: usize = prims
                .iter()
                .map(|p| match &p.primitive {
                    egui::epaint::Primitive::Mesh(m) => m.vertices.len(),
                    _ => 0,
                })
                .sum();
            let readout = app.ready().and_then(|r| r.views.get::<AttentionView>()?.readout.clone());
            eprintln!(
                "frame: {} primitives, {vertices} vertices, read-out {readout:?}",
                prims.len()
            );
        }
        std::hint::black_box(prims);
        read_outs += usize::from(
            app.ready()
                .and_then(|r| r.views.get::<AttentionView>()).is_some_and(|a| a.readout.is_some()),
        );
        if f >= 2 {
            times.push(ms);
        } else if debug {
            eprintln!("warm-up frame {f}: {ms:.1} ms");
        }
    }
    if debug {
        eprintln!(
            "{read_outs} of {} frames showed a hover read-out",
            frames + 2
        );
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok((pick(0.5), pick(0.95)))
}

/// Memory of one pass in the app: the bytes of the tensors it captured, and the bytes held for
/// them by the UI's trace and the model thread together (the same allocations are counted
/// once). Equal when nothing is copied between the thread and the UI.
#[derive(Debug, Clone, Copy)]
pub struct TraceMemory {
    pub captured_bytes: usize,
    pub held_bytes: usize,
}

/// Runs `n_tokens` through the app's worker (inline) with full capture and measures
/// [`TraceMemory`].
pub fn trace_memory(model: Arc<Model>, n_tokens: usize) -> Result<TraceMemory> {
    let worker = Worker::inline(Arc::clone(&model), Device::Cpu)?;
    let mut s = super::session::Session::new(Arc::clone(&model), worker);
    s.fixed_ids = Some(bench_ids(&model, n_tokens));
    s.run();
    s.poll();
    if let Some(e) = &s.error {
        bail!("the pass failed: {e}");
    }
    let Some(kept) = s.worker().finished_trace() else {
        bail!("the worker kept no view of the finished pass");
    };
    let mut seen = std::collections::HashSet::new();
    let mut held = 0;
    for (_, t) in s.trace.iter().chain(kept.iter()) {
        if seen.insert(Arc::as_ptr(t)) {
            held += t.data.len() * 4;
        }
    }
    Ok(TraceMemory { captured_bytes: s.trace.bytes(), held_bytes: held })
}

/// The clean/corrupt pair of the patching benchmark: six SmolLM2 tokens each.
pub const PATCH_BENCH: (&str, &str, &str, &str) = ("The capital city of France is", "The capital city of Italy is", " Paris", " Rome");

/// A `resid_pre` patching grid (every layer × every position of the pair above) through the
/// app's own path: the "glassbox-model" thread, a unit at a time, its events polled as the
/// Experiments view polls them. Returns (cells, patched passes, seconds as the job reports).
pub fn patching_bench(model: Arc<Model>, device: Device) -> Result<(usize, usize, f64)> {
    use super::session::Session;
    use super::worker::experiments::{Event, Job, Tokens};
    use glassbox_engine::experiments::patching::PatchHook;
    let worker = Worker::spawn(Arc::clone(&model), device, None, None)?;
    let mut s = Session::new(model, worker);
    let (clean, corrupt, answer, wrong) = PATCH_BENCH;
    let job = Job::Patch {
        clean: Tokens::Text(clean.into()),
        corrupt: Tokens::Text(corrupt.into()),
        answer: answer.into(),
        wrong: wrong.into(),
        hooks: vec![PatchHook::ResidPre],
    };
    let id = s.start_experiment(job);
    let (mut cells, mut passes) = (0, 0);
    let start = Instant::now();
    loop {
        s.poll();
        for (got, event) in std::mem::take(&mut s.experiment_events) {
            if got != id {
                continue;
            }
            match event {
                Event::PatchCell { .. } => cells += 1,
                Event::PatchGridDone { passes: p, .. } => passes = p,
                Event::Done { seconds, .. } => return Ok((cells, passes, seconds)),
                Event::Failed(e) => bail!("patching: {e}"),
                Event::Cancelled => bail!("patching was cancelled"),
                _ => {}
            }
        }
        if start.elapsed().as_secs() > 3600 {
            bail!("patching did not finish in an hour");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
