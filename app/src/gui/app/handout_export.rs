//! File → Export handout…: a folder is chosen, then on the next frame the current view
//! exports its figure(s) as it does for File → Export, and they go into the handout with the
//! open lesson's text and questions (`gui/handout.rs`) instead of the figures folder.

use std::path::PathBuf;

use egui::Ui;

use super::{GlassboxApp, Phase};
use crate::gui::export::{self, Figure};
use crate::gui::handout;
use crate::gui::views::Request;

/// The folder dialog and a handout waiting for its figures.
#[derive(Default)]
pub struct HandoutState {
    /// The dialog's folder field, while it is open.
    dialog: Option<String>,
    /// Write the handout into this folder with the figures the views export this frame.
    pending: Option<PathBuf>,
}

impl GlassboxApp {
    /// The File menu's entry.
    pub(super) fn handout_menu_ui(&mut self, ui: &mut Ui) {
        let label = self.lang.tr("Export handout…", "导出讲义……");
        if ui.add_enabled(self.lessons.open.is_some(), egui::Button::new(label)).clicked() {
            self.handout.dialog = Some(export::export_dir().join("handouts").display().to_string());
        }
    }

    /// The folder dialog (a path field: it works the same on every desktop and under a script).
    pub(super) fn handout_dialog_ui(&mut self, ctx: &egui::Context) {
        let lang = self.lang;
        let Some(dir) = self.handout.dialog.as_mut() else { return };
        let (mut go, mut close) = (false, false);
        egui::Window::new(lang.tr("Export handout", "导出讲义")).collapsible(false).show(ctx, |ui| {
            let label = ui.label(lang.tr(
                "The lesson, the current figures (PNG) and the questions as Markdown, with the answer sheet apart, into this folder:",
                "本课内容、当前图表（PNG）和练习题写成 Markdown，答案另成一页，保存到这个文件夹：",
            ));
            ui.text_edit_singleline(dir).labelled_by(label.id);
            ui.horizontal(|ui| {
                go = ui.button(lang.tr("Export", "导出")).clicked();
                close = ui.button(lang.tr("Cancel", "取消")).clicked();
            });
        });
        if go {
            let dir = PathBuf::from(dir.trim());
            self.start_handout(dir);
        }
        if go || close {
            self.handout.dialog = None;
        }
    }

    /// Asks the view for its figures on the next frame; the handout is written then.
    pub(crate) fn start_handout(&mut self, dir: PathBuf) {
        self.handout.pending = Some(dir);
        self.export_next = true;
    }

    /// In a frame whose views exported (`export`): takes their figures out of `requests` and
    /// writes the pending handout with them.
    pub(super) fn handout_frame(&mut self, export: bool, requests: &mut Vec<Request>, now: f64) {
        if !export {
            return;
        }
        let Some(dir) = self.handout.pending.take() else { return };
        let mut figures: Vec<Figure> = Vec::new();
        requests.retain_mut(|r| match r {
            Request::Export(fig) => {
                figures.push(fig.clone());
                false
            }
            _ => true,
        });
        let notice = self.write_handout(&dir, &figures);
        let fades = notice.is_ok();
        let text = notice.unwrap_or_else(|e| format!("{e:#}"));
        self.notices.push((text, fades.then_some(now)));
    }

    fn write_handout(&self, dir: &std::path::Path, figures: &[Figure]) -> anyhow::Result<String> {
        let lang = self.lang;
        let Phase::Ready(r) = &self.phase else { anyhow::bail!("no model loaded") };
        let lesson = self
            .lessons
            .open
            .as_deref()
            .and_then(|id| self.lessons.library.get_or_other(lang, id))
            .map(|(l, _)| l)
            .ok_or_else(|| anyhow::anyhow!(lang.tr("Open a lesson first.", "请先打开一课。")))?;
        let shots = crate::gui::lessons::Library::find_dir().map(|d| d.join("..").join("screenshots"));
        let h = handout::write(dir, lesson, lang, &r.s.model.config, Some(&r.s), figures, shots.as_deref())?;
        Ok(lang.tf(
            format!(
                "Handout saved: {} ({} figures, {} screenshots) and {}",
                h.lesson.display(),
                h.figures.len(),
                h.screenshots.len(),
                h.answers.display()
            ),
            format!(
                "讲义已保存：{}（{} 张图，{} 张截图）以及 {}",
                h.lesson.display(),
                h.figures.len(),
                h.screenshots.len(),
                h.answers.display()
            ),
        ))
    }
}
