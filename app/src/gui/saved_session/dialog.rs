//! The Save session… / Open session… window: the desktop's file dialog on a thread (as
//! `model_picker/browse.rs` opens it), with a typed path beside it for desktops without one.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};

use egui::Ui;

use super::EXTENSION;
use crate::gui::i18n::Lang;
use crate::gui::model_picker::browse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Save,
    Open,
}

/// What the window decided this frame.
pub enum Chosen {
    Save(PathBuf),
    Open(PathBuf),
}

#[derive(Default)]
pub struct SessionDialog {
    pub purpose: Option<Purpose>,
    pub path_text: String,
    /// The last error (a refused session file), shown in the window.
    pub message: Option<String>,
    rx: Option<Receiver<Option<PathBuf>>>,
}

impl SessionDialog {
    pub fn show(&mut self, purpose: Purpose) {
        self.purpose = Some(purpose);
        self.message = None;
        if self.path_text.is_empty() && purpose == Purpose::Save {
            self.path_text = format!("lesson{EXTENSION}");
        }
    }

    /// Once a frame: the window, and the path chosen in it.
    pub fn window(&mut self, ctx: &egui::Context, lang: Lang, error_color: egui::Color32) -> Option<Chosen> {
        let purpose = self.purpose?;
        if let Some(rx) = &self.rx {
            match rx.try_recv() {
                Ok(Some(p)) => self.path_text = p.display().to_string(),
                Ok(None) | Err(TryRecvError::Disconnected) => {}
                Err(TryRecvError::Empty) => ctx.request_repaint_after(std::time::Duration::from_millis(100)),
            }
            if !matches!(rx.try_recv(), Err(TryRecvError::Empty)) {
                self.rx = None;
            }
        }
        let title = match purpose {
            Purpose::Save => lang.tr("Save session", "保存会话"),
            Purpose::Open => lang.tr("Open session", "打开会话"),
        };
        let mut open = true;
        let mut chosen = None;
        egui::Window::new(title)
            .id(egui::Id::unique("session_dialog"))
            .open(&mut open)
            .collapsible(false)
            .anchor(egui::Align2::CENTER_TOP, [0.0, 80.0])
            .show(ctx, |ui| chosen = self.contents_ui(ui, lang, purpose, error_color));
        if !open || chosen.is_some() {
            self.purpose = None;
        }
        chosen
    }

    fn contents_ui(&mut self, ui: &mut Ui, lang: Lang, purpose: Purpose, error_color: egui::Color32) -> Option<Chosen> {
        if let Some(m) = &self.message {
            ui.colored_label(error_color, m.as_str());
        }
        ui.label(lang.tr(
            "A session file (NAME.glassbox.json) keeps the model, prompt, step, view, ablations and experiment results.",
            "会话文件（名称.glassbox.json）保存模型、提示词、步骤、视图、消融和实验结果。",
        ));
        let mut chosen = None;
        ui.horizontal(|ui| {
            let edit = egui::TextEdit::singleline(&mut self.path_text).desired_width(460.0).hint_text("/path/to/lesson.glassbox.json");
            ui.add(edit).on_hover_text(lang.tr("The session file's path", "会话文件的路径"));
            if ui.add_enabled(self.rx.is_none(), egui::Button::new(lang.tr("Choose…", "选择……"))).clicked() {
                self.start_dialog(ui.ctx(), lang, purpose);
            }
            let go = match purpose {
                Purpose::Save => lang.tr("Save", "保存"),
                Purpose::Open => lang.tr("Open", "打开"),
            };
            let path = self.path_text.trim();
            if ui.add_enabled(!path.is_empty(), egui::Button::new(go)).clicked() {
                chosen = Some(finish(purpose, path));
            }
        });
        chosen
    }

    fn start_dialog(&mut self, ctx: &egui::Context, lang: Lang, purpose: Purpose) {
        if !browse::dialog_possible() {
            self.message = Some(browse::no_dialog_message(lang));
            return;
        }
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("glassbox-session-dialog".into()).spawn(move || {
            let dialog = rfd::FileDialog::new().add_filter("Glassbox session", &["json"]);
            let picked = match purpose {
                Purpose::Save => dialog.set_file_name(format!("lesson{EXTENSION}")).save_file(),
                Purpose::Open => dialog.pick_file(),
            };
            let _ = tx.send(picked);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.rx = Some(rx),
            Err(e) => self.message = Some(format!("could not start a thread: {e}")),
        }
    }
}

/// A saved file always ends in `.glassbox.json`.
fn finish(purpose: Purpose, path: &str) -> Chosen {
    match purpose {
        Purpose::Save if !path.ends_with(EXTENSION) => {
            let base = path.strip_suffix(".json").unwrap_or(path);
            Chosen::Save(PathBuf::from(format!("{base}{EXTENSION}")))
        }
        Purpose::Save => Chosen::Save(PathBuf::from(path)),
        Purpose::Open => Chosen::Open(PathBuf::from(path)),
    }
}
