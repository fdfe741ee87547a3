//! Two architectures side by side: model A (the app's) against model B (Gemma 3 270M or
//! SmolLM2 from the cache, any model folder the user types — Qwen, OLMo 2, Phi-3, the tiny
//! fixtures —, or a config-only Llama 3.1 from `assets/models/`). Their blocks
//! aligned op by op with the differences marked, a table of each component's parameters,
//! FLOPs and KV cache at a context the user sets (engine `arch_stats`), and — when both
//! models have weights — one prompt run in both (`worker/side_by_side.rs`): chosen heads'
//! attention patterns, both logit lenses, both next-token distributions.

mod diagram;
mod models;
mod runs;
mod table;

use egui::{RichText, Ui};
use glassbox_engine::LlamaConfig;

use super::ViewCtx;
use crate::gui::i18n::Lang;
use crate::gui::session::Session;
use crate::gui::heatmap::CachedTexture;
use crate::gui::worker::side_by_side::{ModelRef, SideResult, SideRunner};

/// Points of width from which the diagram sits beside the table and the runs.
const WIDE: f32 = 1180.0;

/// A model the pickers offer.
#[derive(Clone)]
pub struct Candidate {
    pub name: String,
    /// The app's own model (labelled so).
    pub loaded: bool,
    pub config: LlamaConfig,
    /// Weights to run; `None` for a config-only entry (diagram and table only).
    pub model: Option<ModelRef>,
}

impl Candidate {
    /// The name, and what it is when it is not an ordinary cached model.
    pub fn label(&self, lang: Lang) -> String {
        let n = &self.name;
        match (self.loaded, self.model.is_some()) {
            (true, _) => lang.tf(format!("{n} (loaded)"), format!("{n}（已加载）")),
            (false, true) => n.clone(),
            (false, false) => lang.tf(format!("{n} (config only)"), format!("{n}（仅配置）")),
        }
    }
}

/// One side's choices for the runs.
#[derive(Default, Clone, Copy)]
pub struct HeadPick {
    pub layer: usize,
    pub head: usize,
}

/// The view's state, kept across frames.
pub struct SideBySideView {
    /// Filled on first show (the cache is looked at once).
    pub candidates: Vec<Candidate>,
    pub a: usize,
    pub b: usize,
    /// Context length of the table's "at a context" rows.
    pub context: usize,
    pub prompt: String,
    /// Runs the job inside `start` (tests, the frame benchmark).
    pub inline: bool,
    runner: Option<SideRunner>,
    /// What the job in progress is doing (English, Chinese).
    pub stage: Option<(String, String)>,
    pub result: Option<Box<SideResult>>,
    pub error: Option<String>,
    pub picks: [HeadPick; 2],
    textures: [CachedTexture; 2],
    /// Scroll the runs to the top of the view next frame (screenshot scripts).
    pub scroll_to_runs: bool,
    /// A lesson's mode: the model to make B next frame, and whether to run both then.
    pending: Option<(&'static str, bool)>,
    /// The folder typed into "Model B from a folder", and why the last one was refused.
    pub folder: String,
    pub folder_error: Option<String>,
}

impl Default for SideBySideView {
    fn default() -> Self {
        Self {
            candidates: Vec::new(),
            a: 0,
            b: 0,
            context: 4096,
            prompt: String::new(),
            inline: false,
            runner: None,
            stage: None,
            result: None,
            error: None,
            picks: [HeadPick::default(); 2],
            textures: Default::default(),
            scroll_to_runs: false,
            pending: None,
            folder: String::new(),
            folder_error: None,
        }
    }
}

impl SideBySideView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if self.candidates.is_empty() {
            self.fill_candidates(cx.s);
        }
        self.apply_pending(ui.ctx(), cx.s);
        self.poll();
        egui::ScrollArea::vertical().id_salt("side-by-side").auto_shrink([false, false]).show(ui, |ui| {
            ui.heading(cx.tr("Two architectures side by side", "两种架构并排对比"));
            self.pickers_ui(ui, cx);
            self.folder_ui(ui, cx);
            let (Some(a), Some(b)) = (self.candidates.get(self.a), self.candidates.get(self.b)) else { return };
            let (a, b) = (a.clone(), b.clone());
            ui.add_space(8.0);
            // The diagram is tall and narrow: beside the table and the runs where the width
            // allows, above them where it does not.
            // WIDE holds at the usual text size; presenter mode's larger text needs more.
            let em = crate::gui::theme::font_px(ui, 15.0) / 15.0;
            if ui.available_width() >= WIDE * em {
                ui.horizontal_top(|ui| {
                    ui.vertical(|ui| diagram::aligned_blocks_ui(ui, cx, &a, &b));
                    ui.separator();
                    ui.vertical(|ui| self.table_and_runs_ui(ui, cx, &a, &b));
                });
            } else {
                diagram::aligned_blocks_ui(ui, cx, &a, &b);
                ui.add_space(12.0);
                self.table_and_runs_ui(ui, cx, &a, &b);
            }
        });
    }

    fn table_and_runs_ui(&mut self, ui: &mut Ui, cx: &ViewCtx<'_>, a: &Candidate, b: &Candidate) {
        table::components_ui(ui, cx, a, b, &mut self.context);
        ui.add_space(12.0);
        runs::runs_ui(ui, cx, self, a, b);
    }

    /// Adds a model with weights to the pickers and makes it B (tests: a tiny fixture).
    #[cfg(test)]
    pub fn add_model_b(&mut self, label: &str, model: std::sync::Arc<glassbox_engine::Model>) {
        let config = model.config.clone();
        self.candidates.push(Candidate { name: label.to_string(), loaded: false, config, model: Some(ModelRef::Loaded(model)) });
        self.b = self.candidates.len() - 1;
    }

    /// Picks B by the start of its name (screenshot scripts: `gemma`); false if none.
    pub fn choose_b(&mut self, name: &str) -> bool {
        let name = name.to_lowercase();
        match self.candidates.iter().position(|c| c.name.to_lowercase().starts_with(&name)) {
            Some(i) => {
                self.b = i;
                true
            }
            None => false,
        }
    }

    fn pickers_ui(&mut self, ui: &mut Ui, cx: &ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            let before = (self.a, self.b);
            for (side, pick) in [("A", &mut self.a), ("B", &mut self.b)] {
                let label = ui.label(RichText::new(cx.lang.tf(format!("Model {side}"), format!("模型 {side}"))).strong());
                let shown = self.candidates.get(*pick).map(|c| c.label(cx.lang)).unwrap_or_default();
                let combo = egui::ComboBox::from_id_salt(("side-pick", side)).selected_text(shown).width(260.0).show_ui(ui, |ui| {
                    for (i, c) in self.candidates.iter().enumerate() {
                        ui.selectable_value(pick, i, c.label(cx.lang));
                    }
                });
                combo.response.labelled_by(label.id);
                ui.add_space(12.0);
            }
            if before != (self.a, self.b) {
                self.result = None;
                self.error = None;
                self.stage = None;
                self.picks = [HeadPick::default(); 2];
            }
        });
    }

    /// Starts the runs of the chosen pair (scripts, the frame benchmark); false when one of
    /// them has no weights or the pickers are not filled yet.
    pub fn run_chosen(&mut self, ctx: &egui::Context) -> bool {
        let model = |i: usize| self.candidates.get(i).and_then(|c| c.model.clone());
        let (Some(a), Some(b)) = (model(self.a), model(self.b)) else { return false };
        self.start(ctx, a, b);
        true
    }

    /// Starts the runs of `prompt` in both models.
    pub fn start(&mut self, ctx: &egui::Context, a: ModelRef, b: ModelRef) {
        let inline = self.inline;
        let runner = self.runner.get_or_insert_with(|| SideRunner::new(inline));
        self.error = None;
        self.stage = Some(("Starting…".into(), "正在开始……".into()));
        runner.start(self.prompt.clone(), a, b, (!inline).then(|| ctx.clone()));
        self.poll();
    }

    fn poll(&mut self) {
        use crate::gui::worker::side_by_side::SideEvent;
        let Some(runner) = &mut self.runner else { return };
        for event in runner.poll() {
            match event {
                SideEvent::Stage(en, zh) => self.stage = Some((en, zh)),
                SideEvent::Done(result) => {
                    self.stage = None;
                    self.clamp_picks(&result);
                    self.result = Some(result);
                }
                SideEvent::Failed(message) => {
                    self.stage = None;
                    self.error = Some(message);
                }
            }
        }
    }

    fn clamp_picks(&mut self, r: &SideResult) {
        for (pick, run) in self.picks.iter_mut().zip([&r.a, &r.b]) {
            pick.layer = pick.layer.min(run.patterns.len().saturating_sub(1));
            let heads = run.patterns.get(pick.layer).map_or(1, |t| t.shape()[0]);
            pick.head = pick.head.min(heads.saturating_sub(1));
        }
    }

    /// A lesson's pair (`compare-gemma`, `compare-llama-405b`): B chosen among the models
    /// other than the loaded one, and with weights on both sides both runs started.
    fn apply_pending(&mut self, ctx: &egui::Context, s: &Session) {
        let Some((name, run)) = self.pending.take() else { return };
        let other = self.candidates.iter().skip(1).position(|c| c.name.to_lowercase().starts_with(name)).map(|i| i + 1);
        let fallback = self.candidates.len().min(2).saturating_sub(1);
        self.b = other.unwrap_or(fallback);
        self.result = None;
        if run {
            self.prompt = s.prompt.clone();
            self.run_chosen(ctx);
        }
    }

    /// True while a job runs.
    pub fn running(&self) -> bool {
        self.stage.is_some()
    }
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("side-by-side");

impl super::View for SideBySideView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: Lang) -> &'static str {
        lang.tr("Side by side", "并排比较")
    }

    fn short_title(&self, lang: Lang) -> &'static str {
        lang.tr("A | B", "A | B")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["compare-gemma", "compare-llama-405b", "compare-qwen2", "compare-qwen3", "compare-olmo2", "compare-phi3", "compare-gpt2"]
    }

    /// The other families' pairs run both models only when B's weights are cached (else B is
    /// its bundled config: the diagram and the table).
    fn set_mode(&mut self, mode: &str) -> bool {
        self.pending = match mode {
            "compare-gemma" => Some(("gemma", true)),
            "compare-llama-405b" => Some(("llama 3.1 405b", false)),
            "compare-qwen2" => Some(("qwen2.5", true)),
            "compare-qwen3" => Some(("qwen3", true)),
            "compare-olmo2" => Some(("olmo-2", true)),
            "compare-phi3" => Some(("phi-3", true)),
            "compare-gpt2" => Some(("gpt2", true)),
            _ => return false,
        };
        true
    }

    fn busy(&self, _s: &Session, _shown: bool) -> bool {
        self.running() || self.pending.is_some()
    }

    fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        SideBySideView::ui(self, ui, cx);
    }
}
