//! The app survives bad input with a notice and keeps drawing: a tokenizer.json that makes
//! the tokenizers crate panic, NaN weights (drawn and read as NaN), and a 1 MB paste
//! (RELIABILITY.md rows 7, 16, 19).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use egui_kittest::kittest::Queryable;
use glassbox_engine::Model;

use super::{app_on, fixture_ids, harness, repo_root};
use crate::gui::app::{GlassboxApp, Phase};
use crate::gui::first_run::FirstRun;
use crate::gui::prompt_input::CHAR_CAP;

/// The fixture's config and weights in a temp folder, to break one thing.
pub(super) fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        let from = repo_root().join("tests/fixtures/tiny-smollm2-shape").join(f);
        std::fs::copy(from, dir.join(f)).unwrap();
    }
    (tmp, dir)
}

/// Writes f32 `values` at the start of tensor `name` in a safetensors file.
pub(super) fn poke_f32(path: &Path, name: &str, values: &[f32]) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    for (i, v) in values.iter().enumerate() {
        bytes[start + 4 * i..start + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_tokenizer_that_crashes_the_tokenizers_crate_is_an_error_on_screen() {
    let (_tmp, dir) = fixture_copy();
    // A merge longer than every token: `tokenizers` 0.23 panics building this BPE.
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": {"a": 0, "bbbb": 1}, "merges": ["a bbbb"]}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();

    let mut app = app_on(super::fixture_model(), "");
    app.phase = Phase::Start(FirstRun::idle());
    let mut h = harness(app);
    h.run();
    if let Phase::Start(fr) = &mut h.state_mut().phase {
        fr.path_text = dir.display().to_string();
    }
    h.run();
    h.get_by_label("Open").click();
    for _ in 0..500 {
        h.step();
        if matches!(&h.state().phase, Phase::Start(fr) if !fr.busy()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    h.run();
    let app: &GlassboxApp = h.state();
    let Phase::Start(fr) = &app.phase else {
        panic!("a broken tokenizer must not load")
    };
    assert!(!fr.busy(), "still 'loading the model…'");
    let e = fr.error.clone().unwrap_or_default();
    assert!(e.contains("tokenizer.json") && e.contains("abbbb"), "{e}");
    h.get_by_label_contains("tokenizer.json");
    // The screen is still usable: another folder can be opened.
    h.get_by_label("Open");
    h.get_by_label_contains("Download SmolLM2-135M-Instruct");
}

#[test]
fn nan_weights_load_with_a_notice_and_the_app_keeps_stepping() {
    let (_tmp, dir) = fixture_copy();
    let st = dir.join("model.safetensors");
    poke_f32(&st, "model.layers.1.mlp.up_proj.weight", &[f32::NAN, f32::NAN, f32::INFINITY]);
    let model = Arc::new(Model::load(&dir).unwrap());
    let mut h = harness(app_on(model, &fixture_ids()));
    h.run();
    h.get_by_label_contains("model.layers.1.mlp.up_proj.weight (2 NaN, 1 inf)");
    {
        let r = h.state_mut().ready().expect("ready");
        assert_eq!(r.s.n_tokens(), 17, "{:?}", r.s.error);
    }
    let before = h.state_mut().ready().expect("ready").s.cursor;
    h.get_by_label("Step ▶").click();
    h.run();
    assert_eq!(h.state_mut().ready().expect("ready").s.cursor, before + 1);
}

#[test]
fn row07_nan_cells_have_their_own_colour_a_legend_entry_and_read_nan() {
    use glassbox_engine::{LayerOp, Step};
    // NaN in head 0's query weights of layer 0: that head's scores and pattern are NaN.
    let (_tmp, dir) = fixture_copy();
    poke_f32(&dir.join("model.safetensors"), "model.layers.0.self_attn.q_proj.weight", &[f32::NAN; 4]);
    let model = Arc::new(Model::load(&dir).unwrap());
    let mut h = harness(app_on(model, &fixture_ids()));
    h.run();
    let show = |h: &mut egui_kittest::Harness<'static, GlassboxApp>, head: usize| {
        let app = h.state_mut();
        app.view = crate::gui::views::attention::ID;
        let r = app.ready().expect("ready");
        r.s.goto(Step::Layer(0, LayerOp::Softmax));
        r.s.sel.head = head;
        h.run();
    };
    // A clean head of the same layer: no legend entry.
    show(&mut h, 4);
    assert!(h.query_by_label_contains("NaN / ±∞").is_none(), "a legend entry without NaN cells");
    show(&mut h, 0);
    // The 153 cells on and below the diagonal of the 17 × 17 pattern are NaN, each counted
    // from its colour; the masked cells above keep the mask's colour.
    h.get_by_label("NaN / ±∞ × 153");
    let (rect, _, cols) = h.state_mut().ready().and_then(|r| r.views.the::<crate::gui::views::attention::AttentionView>().head_cells).expect("heatmap drawn");
    let cell = rect.width() / cols as f32;
    h.hover_at(rect.min + egui::vec2(2.5 * cell, 9.5 * cell));
    h.run();
    let readout = h.state_mut().ready().and_then(|r| r.views.the::<crate::gui::views::attention::AttentionView>().readout.clone()).expect("read-out");
    assert!(readout.value.is_nan() && (readout.q, readout.k) == (9, 2), "{readout:?}");
    assert!(readout.text().ends_with("= NaN"), "{}", readout.text());
    h.get_by_label(&readout.text());
}

/// A tiny byte-level BPE model (the engine's GGUF test model, converted into a temp dir).
fn tokenizer_model() -> (tempfile::TempDir, Arc<Model>) {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("tiny.gguf");
    std::fs::write(&gguf, glassbox_engine::load::gguf::builder::tiny_llama(false).build()).unwrap();
    let out = tmp.path().join("hf");
    glassbox_engine::load::fetch::convert_to_folder(&gguf, &out, &mut |_| {}).unwrap();
    let model = Arc::new(Model::load(&out).unwrap());
    (tmp, model)
}

#[test]
fn a_1mb_paste_is_cut_with_a_notice_and_tokenized_while_the_ui_draws() {
    let (_tmp, model) = tokenizer_model();
    let context = model.config.max_position_embeddings;
    let mut h = harness(app_on(model, "ab"));
    h.run();
    let input = h.get_by_role(egui::Role::TextInput);
    input.focus();
    h.run();
    let big = "ab 12 ".repeat(1_000_000 / 6 + 1);
    h.event(egui::Event::Paste(big));
    h.run();
    h.get_by_label_contains(&format!("the prompt keeps the first {CHAR_CAP}"));
    let chars = h.state_mut().ready().expect("ready").s.prompt.chars().count();
    assert!((CHAR_CAP - 2..=CHAR_CAP).contains(&chars), "{chars}");

    // Hold the tokenizer thread shut: frames must keep coming while it works.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    h.state_mut().ready().expect("ready").prompt.gate = Some(Arc::clone(&gate));
    h.get_by_label("Run").click();
    for _ in 0..3 {
        h.step();
    }
    h.get_by_label("tokenizing…");
    assert!(h.state_mut().ready().expect("ready").prompt.tokenizing());

    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    for _ in 0..1000 {
        h.step();
        if !h.state_mut().ready().expect("ready").prompt.tokenizing() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    h.run();
    let r = h.state_mut().ready().expect("ready");
    assert!(!r.prompt.tokenizing());
    assert_eq!(r.s.n_tokens(), context, "cut to the model's context; {:?}", r.s.error);
    h.get_by_label_contains(&format!("only the first {context} are run"));
}

/// A lessons folder with lesson 01 in English only.
fn english_only_lessons() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let en = tmp.path().join("en");
    std::fs::create_dir_all(&en).unwrap();
    std::fs::create_dir_all(tmp.path().join("zh")).unwrap();
    let src = repo_root().join("lessons/en/01-overview.md");
    std::fs::copy(src, en.join("01-overview.md")).unwrap();
    tmp
}

#[test]
fn row28_a_missing_translation_falls_back_to_the_other_language_with_a_notice() {
    use crate::gui::i18n::Lang;
    use crate::gui::lesson_panel::LessonPanel;
    use crate::gui::lessons::Library;
    use crate::gui::theme::Theme;
    let tmp = english_only_lessons();
    let library = Library::load(Some(tmp.path().to_path_buf()));
    assert!(library.errors.is_empty(), "{:?}", library.errors);
    let title = library.get(Lang::En, "01-overview").unwrap().front.title.clone();
    let panel = LessonPanel::new(library, Some("01-overview".into()));
    let config = super::fixture_model().config.clone();
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(500.0, 900.0))
        .with_context_setup(crate::gui::fonts::install)
        .build_ui_state(
            move |ui, p: &mut LessonPanel| {
                p.ui(ui, Lang::Zh, &Theme::new(false), &config);
            },
            panel,
        );
    h.run();
    h.get_by_label("这一课还没有中文版；下面显示的是英文版。");
    h.get_by_label(&title);
}

#[test]
fn row28_a_missing_lessons_folder_is_a_notice() {
    let library = crate::gui::lessons::Library::load(Some(PathBuf::from("/no/such/lessons")));
    assert!(library.en.is_empty() && library.zh.is_empty());
    let e = library.errors.join("\n");
    assert!(e.contains("no lessons in /no/such/lessons"), "{e}");
}
