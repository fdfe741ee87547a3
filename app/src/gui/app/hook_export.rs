//! File → the recorded tensors for notebooks: one hook as `.npy`, the current step's hooks
//! or the whole pass as `.npz` (entries named by hook; `numpy.load` reads both).

use egui::Ui;
use glassbox_engine::HookKey;

use super::{GlassboxApp, Phase};
use crate::gui::export;
use crate::gui::i18n::Lang;

/// What to write.
pub enum HookExport {
    /// The hooks of the step under the cursor (`.npz`, or `.npy` if it has one).
    Step,
    One(HookKey),
    /// Every hook the pass recorded.
    Pass,
}

/// The menu entries; `step_hooks` are the cursor step's recorded hooks.
pub(super) fn hooks_menu_ui(ui: &mut Ui, lang: Lang, step_hooks: &[HookKey]) -> Option<HookExport> {
    let mut pick = None;
    let any = !step_hooks.is_empty();
    if ui.add_enabled(any, egui::Button::new(lang.tr("Export this step's hooks for numpy (.npz)", "导出当前步骤的钩子供 numpy 使用（.npz）"))).clicked() {
        pick = Some(HookExport::Step);
    }
    ui.add_enabled_ui(any, |ui| {
        ui.menu_button(lang.tr("Export one hook (.npy)", "导出一个钩子（.npy）"), |ui| {
            for &k in step_hooks {
                if ui.button(k.to_string()).clicked() {
                    pick = Some(HookExport::One(k));
                }
            }
        });
    });
    if ui.add_enabled(any, egui::Button::new(lang.tr("Export every hook of this pass (.npz)", "导出这次前向传播的所有钩子（.npz）"))).clicked() {
        pick = Some(HookExport::Pass);
    }
    pick
}

impl GlassboxApp {
    /// The cursor step's hooks the current pass recorded.
    pub(super) fn step_hooks(&self) -> Vec<HookKey> {
        match &self.phase {
            Phase::Ready(r) => r.s.cursor_step().hooks().into_iter().filter(|k| r.s.trace.get(*k).is_some()).collect(),
            Phase::Start(_) => Vec::new(),
        }
    }

    /// Writes the hooks into the export folder and says where.
    pub(super) fn export_hooks(&mut self, what: HookExport, now: f64) {
        let lang = self.lang;
        let Phase::Ready(r) = &self.phase else { return };
        let s = &r.s;
        let keys: Vec<HookKey> = match what {
            HookExport::Step => s.cursor_step().hooks(),
            HookExport::One(k) => vec![k],
            HookExport::Pass => s.trace.keys().collect(),
        };
        let name = match what {
            HookExport::Step => s.cursor_step().to_string(),
            HookExport::One(k) => k.to_string(),
            HookExport::Pass => "pass".into(),
        };
        let entries: Vec<(String, &glassbox_engine::Tensor)> = keys.iter().filter_map(|&k| Some((k.to_string(), s.trace.get(k)?))).collect();
        let notice = match export::save_hooks(&name, &entries) {
            Ok(path) => (
                lang.tf(
                    format!("{} tensors saved for numpy: {}", entries.len(), path.display()),
                    format!("已为 numpy 保存 {} 个张量：{}", entries.len(), path.display()),
                ),
                Some(now),
            ),
            Err(e) => (format!("{e:#}"), None),
        };
        self.notices.push(notice);
    }
}
