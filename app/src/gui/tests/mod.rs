//! GUI tests: the app driven by labels with egui_kittest on a fixture model (no download),
//! the worker's streamed trace against a one-shot pass, lessons, fonts, export.
//! Tests that need the real SmolLM2 skip (with a message) when it is not in the cache.

mod app_flow;
mod exercises;
mod experiments;
mod exports;
mod families;
mod fonts_cover;
mod gpu_faults;
mod lesson_numbers;
mod lessons_check;
mod lesson_rules;
mod long_prompt;
mod misc;
mod model_picker;
mod no_black_figure;
mod registry;
mod reliability;
mod presenter;
mod screenshots_check;
mod sessions;
mod side_by_side;
mod ui_language;
mod training_view;
mod training_compare;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui_kittest::Harness;
use glassbox_engine::Model;

use super::app::GlassboxApp;
use super::state::PersistedState;
use super::worker::Worker;
use glassbox_engine::Device;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// SmolLM2's head layout (9 heads, 3 K/V heads, d_head 64, d_model 576), 2 layers, random
/// weights, no tokenizer: prompts are typed as token ids.
pub fn fixture_model() -> Arc<Model> {
    let dir = repo_root().join("tests/fixtures/tiny-smollm2-shape");
    Arc::new(Model::load(&dir).expect("fixture model loads"))
}

/// The fixture's own golden input, as a prompt of ids (it has no tokenizer).
pub fn fixture_ids() -> String {
    let ids = glassbox_tests::gpu::input_ids("tiny-smollm2-shape");
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

/// The real model, fetched into the cache on first use (as the workspace tests do). `None`
/// with a note when it cannot be had — unless `GLASSBOX_REQUIRE_MODEL` is set (CI).
pub fn smollm2() -> Option<Arc<Model>> {
    static MODEL: std::sync::OnceLock<Option<Arc<Model>>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            match glassbox_engine::load::fetch::fetch_default_model(&mut |p| eprintln!("fetch: {p}")) {
                Ok(dir) => Some(Arc::new(Model::load(&dir).expect("SmolLM2 loads"))),
                Err(e) if std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_some() => {
                    panic!(
                        "SmolLM2 is required (GLASSBOX_REQUIRE_MODEL) but could not be fetched: {e}"
                    )
                }
                Err(e) => {
                    eprintln!("note: skipping SmolLM2 checks: {e}");
                    None
                }
            }
        })
        .clone()
}

/// Gemma 3 270M from Glassbox's cache (`glassbox fetch gemma-3-270m` puts it there). `None`
/// with a note when it is not cached — unless `GLASSBOX_REQUIRE_MODEL` is set (CI fetches it).
pub fn gemma() -> Option<Arc<Model>> {
    static MODEL: std::sync::OnceLock<Option<Arc<Model>>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = glassbox_engine::load::fetch::KnownModel::Gemma3_270m.dir().ok();
            match dir.filter(|d| glassbox_engine::load::fetch::is_complete(d)) {
                Some(dir) => Some(Arc::new(Model::load(&dir).expect("Gemma 3 270M loads"))),
                None if std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_some() => {
                    panic!("Gemma 3 270M is required (GLASSBOX_REQUIRE_MODEL) but is not cached: run `glassbox fetch gemma-3-270m`")
                }
                None => {
                    eprintln!("note: skipping Gemma 3 270M checks: not cached");
                    None
                }
            }
        })
        .clone()
}

/// A session on `model` with its worker run inline (synchronously), no prompt yet.
pub fn inline_session(model: &Arc<Model>) -> crate::gui::session::Session {
    let worker = Worker::inline(Arc::clone(model), Device::Cpu).expect("worker");
    crate::gui::session::Session::new(Arc::clone(model), worker)
}

/// The app on `model`, worker run inline (synchronously), nothing persisted.
pub fn app_on(model: Arc<Model>, prompt: &str) -> GlassboxApp {
    app_with_lesson(model, prompt, "08-scores-mask-softmax")
}

/// The app on `model` with lesson `lesson` open.
pub fn app_with_lesson(model: Arc<Model>, prompt: &str, lesson: &str) -> GlassboxApp {
    let worker = Worker::inline(Arc::clone(&model), Device::Cpu).expect("worker");
    let state = PersistedState {
        prompt: prompt.to_string(),
        open_lesson: Some(lesson.into()),
        ..PersistedState::default()
    };
    GlassboxApp::with_model(model, worker, state)
}

impl crate::gui::views::Views {
    /// A registered view by its type.
    pub fn the<T: crate::gui::views::View>(&mut self) -> &mut T {
        self.get_mut::<T>().expect("a registered view")
    }
}

pub fn harness(app: GlassboxApp) -> Harness<'static, GlassboxApp> {
    Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .with_max_steps(50)
        .with_context_setup(super::fonts::install)
        .build_ui_state(|ui, app: &mut GlassboxApp| app.show(ui), app)
}
