//! The model picker in the app: Ctrl+O and the first-run button open it, and a model it
//! loaded replaces the current one (the old model is freed first: its worker thread ends and
//! its GPU buffers go with it).

use std::path::PathBuf;
use std::sync::Arc;

use egui::{Key, KeyboardShortcut, Modifiers};
use glassbox_engine::Model;
use glassbox_engine::load::fetch::KnownModel;

use super::{GlassboxApp, Phase};
use crate::gui::recent;
use crate::gui::theme::Theme;

pub const OPEN_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);

impl GlassboxApp {
    /// Once a frame: the shortcut, the first-run screen's button, the window and a model it
    /// has loaded.
    pub(super) fn picker_frame(&mut self, ctx: &egui::Context) {
        // Workshop mode locks the picker: the sessions bring their models.
        let locked = self.workshop.is_some();
        if ctx.input_mut(|i| i.consume_shortcut(&OPEN_SHORTCUT)) && !locked {
            self.picker.show();
        }
        if let Phase::Start(fr) = &mut self.phase
            && std::mem::take(&mut fr.want_picker)
            && !locked
        {
            self.picker.show();
        }
        self.picker.window(ctx, self.lang, &Theme::new(self.dark));
        if let Some((model, path)) = self.picker.poll(ctx) {
            self.switch_model(model, path, ctx);
            self.run_pending_action(ctx);
        }
    }

    /// `path` joins the recent models (under the known models' own names); returns the name.
    pub(crate) fn remember_opened(&mut self, path: &std::path::Path) -> String {
        let name = known_name(&self.picker, path).unwrap_or_else(|| recent::display_name(path));
        recent::remember(&mut self.picker.recent, &name, path);
        name
    }

    /// `model` (loaded from `path`) becomes the app's model; prompt, view and settings stay.
    pub(super) fn switch_model(&mut self, model: Arc<Model>, path: PathBuf, ctx: &egui::Context) {
        let name = self.remember_opened(&path);
        // The new session starts from what the old one showed (from the first-run screen:
        // what was saved); the cursor from the start (another family has other steps).
        if let Some(mut p) = self.persisted() {
            p.cursor = "embed".into();
            self.restored = Some(p);
        }
        self.enter_ready(model, None, Some(ctx));
        let now = ctx.input(|i| i.time);
        let opened = self.lang.tf(format!("Opened {name} ({})", path.display()), format!("已打开 {name}（{}）", path.display()));
        self.notices.push((opened, Some(now)));
        if self.picker.known_dir(KnownModel::Gemma3_270m).is_some_and(|d| d == path) {
            let terms = path.join(glassbox_engine::load::fetch::GEMMA_TERMS_FILE).display().to_string();
            self.notices.push((self.lang.tf(
                format!("Gemma is provided under and subject to the Gemma Terms of Use (ai.google.dev/gemma/terms; a copy: {terms})."),
                format!("Gemma 依据 Gemma 使用条款提供并受其约束（ai.google.dev/gemma/terms；副本：{terms}）。"),
            ), None));
        }
    }
}

fn known_name(picker: &crate::gui::model_picker::ModelPicker, path: &std::path::Path) -> Option<String> {
    KnownModel::ALL.into_iter().find(|&k| picker.known_dir(k).is_some_and(|d| d == path)).map(|k| match k {
        KnownModel::SmolLm2 => "SmolLM2-135M-Instruct".to_string(),
        KnownModel::Gemma3_270m => "Gemma 3 270M".to_string(),
    })
}
