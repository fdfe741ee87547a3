//! The worker's streamed deltas, figure export, and the frame benchmark.

use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::{CaptureFilter, Step};

use super::{fixture_ids, fixture_model, inline_session};
use glassbox_engine::Device;
use crate::gui::export::{Figure, write_figure};
use crate::gui::session::Session;
use crate::gui::theme::Colormap;
use crate::gui::worker::Worker;

#[test]
fn streamed_deltas_rebuild_exactly_the_one_shot_trace() {
    let model = fixture_model();
    let mut s = inline_session(&model);
    s.prompt = fixture_ids();
    s.run();
    s.poll();
    let ids = s.prompt_ids().expect("ids");
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let options = PassOptions { sampling: s.sampling, ..PassOptions::capture(CaptureFilter::All) };
    let mut options = options;
    options.sampling.seed = 1;
    let reference = exec.forward(&ids, options).expect("pass");
    let keys: Vec<_> = reference.keys().collect();
    assert_eq!(s.trace.keys().collect::<Vec<_>>(), keys);
    for k in keys {
        assert_eq!(s.trace.get(k), reference.get(k), "{k}");
    }
    assert_eq!(s.trace.last_step, Some(Step::Sample));
    assert_eq!(s.computed, Some(s.last_index()));
    assert_eq!(s.trace.sampled, reference.sampled);
    assert_eq!(s.cache_len, ids.len());
}

#[test]
fn a_superseded_pass_is_ignored() {
    let model = fixture_model();
    let mut s = inline_session(&model);
    s.prompt = "1 2 3".into();
    s.run();
    s.prompt = "4 5 6 7".into();
    s.run();
    s.poll();
    assert_eq!(s.trace.token_ids, vec![4, 5, 6, 7]);
}

#[test]
fn figures_export_as_png_with_chinese_labels() {
    let dir = std::env::temp_dir().join(format!("glassbox-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let heat = Figure::Heatmap {
        title: "注意力 blocks.1 head 3".into(),
        rows: 3,
        cols: 3,
        values: vec![1.0, f32::NAN, f32::NAN, 0.4, 0.6, f32::NAN, 0.2, 0.3, 0.5],
        row_labels: vec!["0 我".into(), "1 们".into(), "2 好".into()],
        col_labels: vec!["0 我".into(), "1 们".into(), "2 好".into()],
        row_title: "查询位置".into(),
        col_title: "键位置".into(),
        map: Colormap::Viridis,
        scale: crate::gui::heatmap::ColorScale::fixed(0.0, 1.0),
        unit: "p".into(),
    };
    let bars = Figure::Bars {
        title: "softmax".into(),
        labels: vec!["␣Paris".into(), "␣the".into(), "␣Rome".into()],
        values: vec![0.6, 0.1, -2.5],
    };
    for (i, fig) in [heat, bars].iter().enumerate() {
        let path = dir.join(format!("f{i}.png"));
        write_figure(fig, &path).expect("export");
        let bytes = std::fs::read(&path).expect("png written");
        assert_eq!(&bytes[..4], b"\x89PNG");
    }
}

#[test]
fn frame_bench_runs_on_the_fixture() {
    let (median, p95) =
        crate::gui::frame_bench::attention_overview_frame_bench(fixture_model(), 32, 6)
            .expect("bench");
    assert!(
        median > 0.0 && p95 >= median && p95.is_finite(),
        "{median} {p95}"
    );
}

/// The figure for the issue: the overview at 128 tokens × 9 heads × 30 layers on SmolLM2.
/// `cargo test --release -p glassbox frame_bench_smollm2 -- --ignored --nocapture`
#[test]
fn the_app_holds_one_copy_of_a_passs_tensors() {
    let model = fixture_model();
    let m = crate::gui::frame_bench::trace_memory(Arc::clone(&model), 17).expect("a pass");
    let reference = glassbox_tests::gpu::cpu_pass(&model, &glassbox_tests::gpu::input_ids("tiny-smollm2-shape"), PassOptions::default());
    eprintln!("17 tokens: captured {} bytes, held by the UI and the model thread {} bytes", m.captured_bytes, m.held_bytes);
    // Every hook's numbers, as a reader sees them (the reference trace keeps some derived or
    // shared until read; the stream hands each over on its own).
    let every_hook: usize = reference.iter().map(|(_, t)| t.data.len() * 4).sum();
    assert_eq!(m.captured_bytes, every_hook, "the UI has every captured tensor");
    assert_eq!(m.held_bytes, m.captured_bytes, "and the model thread shares them instead of keeping copies");
}

/// The real "glassbox-model" thread: replies arrive on the channel, in order.
#[test]
fn the_worker_thread_streams_a_pass() {
    let model = fixture_model();
    let worker = Worker::spawn(Arc::clone(&model), Device::Cpu, None, None).expect("thread");
    let mut s = Session::new(Arc::clone(&model), worker);
    s.prompt = fixture_ids();
    s.run();
    let start = std::time::Instant::now();
    while (s.running || s.analysis.is_none()) && start.elapsed().as_secs() < 60 {
        s.poll();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(s.device, "CPU (f32 reference)");
    assert_eq!(s.n_tokens(), 17);
    assert_eq!(s.computed, Some(s.last_index()), "every step arrived");
    assert!(
        s.analysis
            .as_ref()
            .is_some_and(|a| a.losses.as_ref().is_some_and(|l| l.len() == 16))
    );
}

/// Bars start at the zero line: a negative value points left of it, with its own length
/// (the export used to clamp it to nothing).
#[test]
fn exported_bars_draw_negative_values_left_of_zero() {
    use crate::gui::export::bar_span;
    let (min, max, span) = (-2.0, 6.0, 800.0);
    let zero = bar_span(0.0, min, max, span).0;
    let (a, b) = bar_span(-2.0, min, max, span);
    assert_eq!(b, zero);
    assert!(zero - a > 150, "the −2 bar has a length: {a}..{b}");
    let (c, d) = bar_span(6.0, min, max, span);
    assert_eq!(c, zero);
    assert!(d - c > 3 * (zero - a) - 2, "6 is three times as long as −2");
}

/// Exported heatmaps: rows tall enough for a label each (up to 60 rows), and labels in a
/// size a slide can show.
#[test]
fn exported_heatmap_rows_are_labelled_and_readable() {
    use crate::gui::export::heatmap_cells;
    let (cw, ch) = heatmap_cells(60, 18, true);
    assert!(ch >= 18, "60 layer rows get {ch} px each");
    assert!(cw >= 18, "18 positions get {cw} px each");
    let (cw, ch) = heatmap_cells(18, 1536, false);
    assert!(cw >= 1 && ch >= 18, "{cw} × {ch}");
}

/// The Output view's bars follow the pass, not only the sampling settings: an ablation rerun
/// with the same settings must not keep the previous pass's probabilities. Between `rerun()`
/// and the worker's replies the old trace is still shown under the new pass number; a frame
/// drawn then must not pin the old bars to the new pass.
#[test]
fn the_output_view_recomputes_after_an_ablation_rerun() {
    use crate::gui::i18n::Lang;
    use crate::gui::theme::Theme;
    use crate::gui::views::{ViewCtx, output::OutputView};
    let model = fixture_model();
    let mut s = inline_session(&model);
    s.prompt = fixture_ids();
    s.run();
    s.poll();
    s.goto(Step::Sample);
    let ctx = egui::Context::default();
    crate::gui::fonts::install(&ctx);
    let mut view = OutputView::default();
    let frame = |s: &mut Session, view: &mut OutputView| {
        let mut requests = Vec::new();
        let _ = ctx.run_ui(egui::RawInput::default(), |ui| {
            let mut cx = ViewCtx {
                s,
                lang: Lang::En,
                theme: Theme::new(false),
                requests: &mut requests,
                export: false,
                presenting: false,
            };
            view.ui(ui, &mut cx);
        });
    };
    frame(&mut s, &mut view);
    let before = view.softmax.clone();
    assert!(!before.is_empty());
    s.ablate = (0..2).flat_map(|l| (0..9).map(move |h| (l, h))).collect();
    s.rerun();
    frame(&mut s, &mut view); // replies not folded in yet: the old trace, the new pass number
    s.poll();
    frame(&mut s, &mut view);
    let logits = s
        .trace
        .get(glassbox_engine::HookKey::Logits)
        .and_then(|t| t.as_2d())
        .expect("logits");
    let pos = s.sel.position.min(logits.nrows() - 1);
    let row = logits.row(pos).to_vec();
    let expect = glassbox_engine::experiments::analysis::top_k(&row, view.softmax.len(), s.sampling.temperature);
    assert_eq!(view.softmax, expect, "the bars are the ablated pass's");
    assert_ne!(view.softmax, before, "ablating every head changes the distribution");
}

/// The API the Tasks view shows is the code `tests/tests/api_snippet.rs` compiles and runs.
#[test]
fn the_tasks_views_api_snippet_is_the_tested_code() {
    let file = std::fs::read_to_string(super::repo_root().join("tests/tests/api_snippet.rs"))
        .expect("api_snippet.rs");
    let tested: Vec<&str> = file
        .split("// snippet-start")
        .nth(1)
        .and_then(|s| s.split("// snippet-end").next())
        .expect("snippet markers")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let shown: Vec<&str> = crate::gui::views::tasks::API_SNIPPET.lines().map(str::trim).collect();
    assert_eq!(shown, tested);
}
