//! "Browse…": the desktop's own file dialog (`rfd`; on Linux the XDG desktop portal over
//! D-Bus) on a thread, so the window keeps drawing while it is open; where there is no
//! portal, a message says so and the typed path stays the way in.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use egui::Ui;

use super::ModelPicker;
use crate::gui::i18n::Lang;

/// A dialog that answers faster than this did not open (no portal answered).
const NO_DIALOG: Duration = Duration::from_millis(400);

pub(super) struct Dialog {
    rx: Receiver<Option<PathBuf>>,
    started: Instant,
    lang: Lang,
}

/// Whether a file dialog can open at all: on Linux, a D-Bus session bus to reach the portal.
pub(crate) fn dialog_possible() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| PathBuf::from(d).join("bus").exists())
}

pub(crate) fn no_dialog_message(lang: Lang) -> String {
    lang.tr(
        "No file dialog could open (this desktop has no file-chooser portal, xdg-desktop-portal). Type or paste the path below.",
        "无法打开文件对话框（此桌面没有文件选择门户 xdg-desktop-portal）。请在下面输入或粘贴路径。",
    )
    .to_string()
}

impl ModelPicker {
    fn start_dialog(&mut self, ctx: &egui::Context, lang: Lang, folder: bool) {
        if !dialog_possible() {
            self.message = Some(no_dialog_message(lang));
            return;
        }
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let title = if folder {
            lang.tr("Open a model folder", "打开模型文件夹")
        } else {
            lang.tr("Open a .gguf file", "打开 .gguf 文件")
        };
        let spawned = std::thread::Builder::new().name("glassbox-file-dialog".into()).spawn(move || {
            let dialog = rfd::FileDialog::new().set_title(title);
            let picked = if folder {
                dialog.pick_folder()
            } else {
                dialog.add_filter("GGUF", &["gguf"]).pick_file()
            };
            let _ = tx.send(picked);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.dialog = Some(Dialog { rx, started: Instant::now(), lang }),
            Err(e) => self.message = Some(format!("could not start a thread: {e}")),
        }
    }

    /// The path the dialog returned, once.
    pub(super) fn poll_dialog(&mut self) -> Option<PathBuf> {
        let d = self.dialog.as_ref()?;
        let answer = match d.rx.try_recv() {
            Ok(answer) => answer,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => None,
        };
        if answer.is_none() && d.started.elapsed() < NO_DIALOG {
            self.message = Some(no_dialog_message(d.lang));
        }
        self.dialog = None;
        answer
    }

    pub(super) fn browse_ui(&mut self, ui: &mut Ui, lang: Lang) {
        ui.add_space(10.0);
        ui.label(egui::RichText::new(lang.tr("Browse…", "从磁盘打开……")).heading().size(18.0));
        ui.separator();
        let waiting = self.dialog.is_some();
        ui.horizontal(|ui| {
            if ui.add_enabled(!waiting, egui::Button::new(lang.tr("Choose a model folder…", "选择模型文件夹……"))).clicked() {
                self.start_dialog(ui.ctx(), lang, true);
            }
            if ui.add_enabled(!waiting, egui::Button::new(lang.tr("Choose a .gguf file…", "选择 .gguf 文件……"))).clicked() {
                self.start_dialog(ui.ctx(), lang, false);
            }
            if waiting {
                ui.spinner();
            }
        });
        ui.label(lang.tr(
            "Or type the path of a Hugging Face folder (config.json + .safetensors) or a .gguf file:",
            "或者输入 Hugging Face 文件夹（config.json + .safetensors）或 .gguf 文件的路径：",
        ));
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut self.path_text).desired_width(520.0).hint_text("/path/to/model or model.gguf"));
            let ok = !self.path_text.trim().is_empty();
            if ui.add_enabled(ok, egui::Button::new(lang.tr("Open", "打开"))).clicked() {
                let path = PathBuf::from(self.path_text.trim());
                self.open_path(ui.ctx(), path);
            }
        });
    }
}
