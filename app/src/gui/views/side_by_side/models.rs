//! Where model B comes from: the cached real models, the config-only models of
//! `assets/models/`, the other families' lesson models (Qwen 2.5, Qwen 3, OLMo 2, Phi-3,
//! GPT-2, and Gemma 3 when not cached: their weights when cached, else their bundled config),
//! and any folder the user types.

use std::path::Path;

use egui::Ui;
use glassbox_engine::LlamaConfig;
use glassbox_engine::load::fetch::{KnownModel, is_complete, models_cache_root};

use super::{Candidate, SideBySideView};
use crate::gui::session::Session;
use crate::gui::views::ViewCtx;
use crate::gui::worker::side_by_side::ModelRef;

/// The lesson models of the other families (`lesson_numbers::MODELS` ids), so that a lesson
/// can put each family beside the loaded one (`compare-qwen3`, …).
const OTHERS: [&str; 6] = ["qwen2.5-0.5b", "qwen3-0.6b", "olmo-2-0425-1b", "phi-3-mini-4k", "gpt2", "gemma-3-270m"];

/// Each other family's model: with its weights when the cache holds them (and it is not the
/// loaded one), else config-only. A cached Gemma 3 is already offered by its name.
fn other_families(loaded_dir: &Path) -> Vec<Candidate> {
    let mut out = Vec::new();
    for id in OTHERS {
        let Ok(config) = crate::gui::lesson_numbers::model_config(id) else { continue };
        let dir = models_cache_root().ok().map(|r| r.join(id)).filter(|d| is_complete(d));
        if dir.as_deref() == Some(loaded_dir) || (id == "gemma-3-270m" && dir.is_some()) {
            continue;
        }
        out.push(Candidate { name: id.to_string(), loaded: false, config, model: dir.map(ModelRef::Dir) });
    }
    out
}

impl SideBySideView {
    /// The app's model first, then the cached real models it is not, then the bundled
    /// config-only ones, then the other families' lesson models; B defaults to Gemma 3 270M when cached, else SmolLM2, else the first
    /// other entry.
    pub fn fill_candidates(&mut self, s: &Session) {
        let m = &s.model;
        let loaded = Candidate {
            name: m.source.name.clone(),
            loaded: true,
            config: m.config.clone(),
            model: Some(ModelRef::Loaded(std::sync::Arc::clone(m))),
        };
        let mut list = vec![loaded];
        for known in [KnownModel::Gemma3_270m, KnownModel::SmolLm2] {
            let Ok(dir) = known.dir() else { continue };
            if dir == m.source.dir || !is_complete(&dir) {
                continue;
            }
            if let Ok(config) = LlamaConfig::from_file(&dir.join("config.json")) {
                list.push(Candidate { name: known.name().to_string(), loaded: false, config, model: Some(ModelRef::Dir(dir)) });
            }
        }
        for card in crate::gui::model_table::bundled().unwrap_or_default() {
            list.push(Candidate { name: card.name, loaded: false, config: card.config, model: None });
        }
        list.extend(other_families(&m.source.dir));
        self.candidates = list;
        self.a = 0;
        self.b = if self.candidates.len() > 1 { 1 } else { 0 };
        if self.prompt.is_empty() {
            self.prompt = s.prompt.clone();
        }
    }

    /// Adds the model in `dir` (its config.json; weights loaded when the runs start) to the
    /// pickers and makes it B, or says in one line why not.
    pub fn add_folder(&mut self, dir: &Path) -> Result<(), String> {
        let config = LlamaConfig::from_file(&dir.join("config.json")).map_err(|e| e.to_string())?;
        glassbox_engine::load::arch::Arch::from_config(&config)?;
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        self.candidates.push(Candidate { name, loaded: false, config, model: Some(ModelRef::Dir(dir.to_path_buf())) });
        self.b = self.candidates.len() - 1;
        self.result = None;
        self.error = None;
        Ok(())
    }

    pub(super) fn folder_ui(&mut self, ui: &mut Ui, cx: &ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label(cx.tr("Model B from a folder (config.json and weights):", "从文件夹选模型 B（含 config.json 与权重）："));
            ui.add(egui::TextEdit::singleline(&mut self.folder).desired_width(320.0)).labelled_by(label.id);
            if ui.button(cx.tr("Use as B", "设为模型 B")).clicked() {
                let dir = std::path::PathBuf::from(self.folder.trim());
                self.folder_error = self.add_folder(&dir).err();
            }
        });
        if let Some(e) = &self.folder_error {
            ui.colored_label(cx.theme.error(), e);
        }
    }
}
