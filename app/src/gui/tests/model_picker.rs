//! The model picker: what it lists, Gemma's terms before any download, opening a model from
//! it (the path field, and Gemma 3 270M stepped through op by op), and the previous model
//! freed on a switch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use glassbox_engine::Model;
use glassbox_engine::load::discover::ScanRoots;
use glassbox_engine::load::fetch::KnownModel;
use glassbox_engine::load::gguf::builder::{GgufBuilder, tiny_llama};

use super::{app_on, fixture_ids, fixture_model, harness, repo_root};
use crate::gui::app::GlassboxApp;
use crate::gui::i18n::Lang;
use crate::gui::model_picker::ModelPicker;
use crate::gui::recent::RecentModel;
use crate::gui::theme::Theme;

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A home with one LM Studio GGUF Glassbox runs and one it does not, and an empty cache.
fn fake_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let lms = home.path().join(".lmstudio/models/lmstudio-pub");
    write(&lms.join("tiny/tiny.gguf"), tiny_llama(true).build());
    write(&lms.join("mamba/mamba.gguf"), GgufBuilder::new().kv_str("general.architecture", "mamba").build());
    home
}

fn picker_on(home: &Path, recent: Vec<RecentModel>) -> ModelPicker {
    let mut p = ModelPicker::new(recent);
    p.roots = ScanRoots::under_home(home);
    p.show();
    p
}

fn picker_harness(picker: ModelPicker, lang: Lang) -> Harness<'static, ModelPicker> {
    Harness::builder()
        .with_size(egui::vec2(900.0, 800.0))
        .with_context_setup(crate::gui::fonts::install)
        .build_ui_state(
            move |ui, p: &mut ModelPicker| {
                let ctx = ui.ctx().clone();
                p.poll(&ctx);
                p.window(&ctx, lang, &Theme::new(false));
            },
            picker,
        )
}

fn recents() -> Vec<RecentModel> {
    vec![
        RecentModel { name: "my-fixture".into(), path: repo_root().join("tests/fixtures/tiny-gqa-tied") },
        RecentModel { name: "deleted-model".into(), path: PathBuf::from("/no/such/model") },
    ]
}

#[test]
fn lists_the_known_models_recent_and_found_ones_with_family_and_size() {
    let home = fake_home();
    let mut h = picker_harness(picker_on(home.path(), recents()), Lang::En);
    h.step();
    h.step();
    h.get_by_label("SmolLM2-135M-Instruct");
    h.get_by_label("Gemma 3 270M");
    h.get_by_label_contains("not downloaded: about 250 MB");
    h.get_by_label("my-fixture");
    h.get_by_label("deleted-model");
    h.get_by_label("missing: moved or deleted");
    h.get_by_label("lmstudio-pub/tiny.gguf");
    assert!(h.query_all_by_label_contains("llama · ").count() >= 2, "the fixture and the GGUF are Llamas");
    assert_eq!(h.query_all_by_label_contains("· LM Studio").count(), 2);
    h.get_by_label_contains("mamba · ");
    // Unsupported: listed, greyed, with why.
    h.get_by_label("lmstudio-pub/mamba.gguf");
    h.get_by_label_contains("cannot open: unsupported model: general.architecture is `mamba`");
    h.get_by_label("Choose a model folder…");
    h.get_by_label("Choose a .gguf file…");
}

#[test]
fn lists_in_chinese() {
    let home = fake_home();
    let mut h = picker_harness(picker_on(home.path(), recents()), Lang::Zh);
    h.step();
    h.step();
    for label in ["打开模型", "Glassbox 的模型", "最近打开", "在本机找到的模型", "从磁盘打开……", "选择模型文件夹……"] {
        h.get_by_label(label);
    }
    h.get_by_label("lmstudio-pub/tiny.gguf");
}

#[test]
fn gemma_terms_come_before_any_download() {
    let home = fake_home();
    let mut h = picker_harness(picker_on(home.path(), Vec::new()), Lang::En);
    h.step();
    h.get_by_label("Gemma 3 270M").click();
    h.step();
    h.step();
    assert!(h.state().gemma_terms);
    assert!(!h.state().loader.busy(), "nothing downloads before Accept");
    h.get_by_label_contains("Gemma Terms of Use found at ai.google.dev/gemma/terms");
    h.get_by_label("Back").click();
    h.step();
    h.step();
    assert!(!h.state().gemma_terms);
    h.get_by_label("Gemma 3 270M").click();
    h.step();
    h.step();
    h.get_by_label("Accept and download").click();
    h.step();
    h.step();
    assert!(h.state().loader.busy(), "Accept starts the fetch");
    // The fetch shows its progress with Cancel (a cached Gemma loads instead of downloading).
    h.get_by_label("Cancel").click();
    let start = Instant::now();
    while h.state().loader.busy() && start.elapsed() < Duration::from_secs(120) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!h.state().loader.busy());
}

/// Frames until `done` holds (the worker runs on its own thread), at most 2 minutes.
fn step_until(h: &mut Harness<'static, GlassboxApp>, mut done: impl FnMut(&mut GlassboxApp) -> bool) {
    let start = Instant::now();
    while !done(h.state_mut()) {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out");
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

fn model_of(app: &mut GlassboxApp) -> Option<Arc<Model>> {
    app.ready().map(|r| Arc::clone(&r.s.model))
}

/// Opens `path` through the picker's path field.
fn open_by_path(h: &mut Harness<'static, GlassboxApp>, path: &Path) {
    h.state_mut().picker.show();
    h.state_mut().picker.path_text = path.display().to_string();
    h.step();
    h.step();
    // The picker's window is drawn last: its "Open" is the last one.
    h.get_all_by_label("Open").last().expect("the picker's Open button").click();
    h.step();
}

fn wait_freed(weak: &Weak<Model>) {
    let start = Instant::now();
    while weak.upgrade().is_some() {
        assert!(start.elapsed() < Duration::from_secs(20), "the previous model is still held");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn switching_models_frees_the_previous_one_and_remembers_it() {
    let first = fixture_model();
    let weak = Arc::downgrade(&first);
    let mut h = harness(app_on(first, &fixture_ids()));
    h.run();
    let other = repo_root().join("tests/fixtures/tiny-gqa-tied");
    open_by_path(&mut h, &other);
    // The other fixture (4 heads, not 9) becomes the model.
    step_until(&mut h, |app| model_of(app).is_some_and(|m| m.config.n_heads() == 4));
    assert!(weak.upgrade().is_none(), "the first model was freed");
    let recent = &h.state().picker.recent;
    assert_eq!(recent[0].name, "tiny-gqa-tied");
    assert!(h.state().persisted().is_some_and(|p| p.recent_models == *recent), "persisted");
}

fn gemma_dir() -> Option<PathBuf> {
    let dir = KnownModel::Gemma3_270m.dir().ok()?;
    if glassbox_engine::load::fetch::is_complete(&dir) {
        return Some(dir);
    }
    assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "Gemma 3 270M is required but not cached");
    eprintln!("note: skipping the Gemma picker test: `glassbox fetch gemma-3-270m` first");
    None
}

#[test]
fn gemma_from_the_picker_opens_and_every_op_shows() {
    let Some(dir) = gemma_dir() else { return };
    let first = fixture_model();
    let weak = Arc::downgrade(&first);
    let mut h = harness(app_on(first, &fixture_ids()));
    h.run();
    h.key_press_modifiers(Modifiers::COMMAND, Key::O);
    h.step();
    h.step();
    assert!(h.state().picker.open, "Ctrl+O opens the picker");
    h.get_by_label("Gemma 3 270M").click();
    h.step();
    assert!(h.state().picker.loader.busy(), "loading Gemma");
    step_until(&mut h, |app| !app.picker.loader.busy());
    let gemma = model_of(h.state_mut()).expect("Gemma is the model");
    assert_eq!(gemma.config.model_type.as_deref(), Some("gemma3_text"));
    assert!(weak.upgrade().is_none(), "the fixture model was freed");
    assert_eq!(h.state().picker.recent[0].path, dir.canonicalize().unwrap());
    {
        let r = h.state_mut().ready().expect("ready");
        r.s.prompt = "The capital of France is".into();
        r.s.run();
    }
    step_until(&mut h, |app| app.ready().is_some_and(|r| !r.s.running && r.s.analysis.is_some()));
    let last = h.state_mut().ready().map(|r| r.s.last_index()).unwrap();
    assert!(last > 18 * 10, "Gemma's 18 layers of ops: {last}");
    h.key_press(Key::Home);
    for i in 0..=last {
        if i > 0 {
            h.key_press(Key::ArrowRight);
        }
        step_until(&mut h, |app| app.ready().is_some_and(|r| r.s.detail_pending().is_none()));
        let step = h.state_mut().ready().map(|r| (r.s.cursor, r.s.cursor_step())).unwrap();
        assert_eq!(step.0, i, "the cursor walks every op");
        assert!(h.query_by_label_contains("was not recorded").is_none(), "{:?}: not recorded", step.1);
        assert!(h.query_by_label_contains("Computing `").is_none(), "{:?}: still computing", step.1);
    }
    // Back to the fixture through the path field: Gemma's worker thread ends and frees it.
    let weak_gemma = Arc::downgrade(&gemma);
    drop(gemma);
    open_by_path(&mut h, &repo_root().join("tests/fixtures/tiny-smollm2-shape"));
    step_until(&mut h, |app| !app.picker.loader.busy());
    wait_freed(&weak_gemma);
}

/// A lesson's try-it button that names Gemma (`model = "gemma-3-270m"`) opens it through
/// the picker, then does the rest of the action on it.
#[test]
fn a_lesson_action_opens_the_model_it_names() {
    let Some(_) = gemma_dir() else { return };
    let app = super::app_with_lesson(fixture_model(), &fixture_ids(), "31-gemma3-choices");
    let mut h = harness(app);
    h.run();
    h.get_by_label_contains("QK-norm: queries and keys normalized per head").click();
    h.step();
    assert!(h.state().picker.loader.busy(), "loading Gemma");
    step_until(&mut h, |app| !app.picker.loader.busy());
    let r = h.state_mut().ready().expect("ready");
    assert_eq!(r.s.model.config.model_type.as_deref(), Some("gemma3_text"));
    assert_eq!(r.s.cursor_step().to_string(), "blocks.0.qk_norm", "the action ran on Gemma");
}

#[test]
fn the_file_menu_and_the_first_run_screen_open_the_picker() {
    let mut h = harness(app_on(fixture_model(), ""));
    h.run();
    h.get_by_label("File").click();
    h.run();
    h.get_by_label_contains("Open model…").click();
    h.step();
    h.step();
    assert!(h.state().picker.open, "File → Open model…");
    h.get_by_label("Open a model");

    let mut app = app_on(fixture_model(), "");
    app.phase = crate::gui::app::Phase::Start(crate::gui::first_run::FirstRun::idle());
    let mut h = harness(app);
    h.run();
    h.get_by_label("Open model… (Ctrl+O)").click();
    h.step();
    h.step();
    assert!(h.state().picker.open, "the first-run screen's button");
    h.get_by_label("SmolLM2-135M-Instruct");
}

/// Where no desktop portal can answer (no D-Bus session, as under CI's Xvfb), "Browse" says so
/// and the path field stays the way in.
#[test]
fn without_a_portal_the_file_dialog_gives_a_clear_message() {
    let bus = std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("bus"));
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() || bus.is_some_and(|b| b.exists()) {
        eprintln!("note: a D-Bus session is present; the no-portal message is not checked here");
        return;
    }
    let home = fake_home();
    let mut h = picker_harness(picker_on(home.path(), Vec::new()), Lang::En);
    h.step();
    h.get_by_label("Choose a model folder…").click();
    h.step();
    h.step();
    h.get_by_label_contains("No file dialog could open");
    h.get_by_role(egui::Role::TextInput);
}
