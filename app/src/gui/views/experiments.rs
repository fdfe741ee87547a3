//! The Experiments view: controlled experiments on the loaded model, each a sub-panel
//! (`MODES`: `compare`, `patching`, `attribution`, `catalog`). The model thread runs them
//! (`worker::experiments`) a unit at a time, with progress and Cancel; this view only
//! arranges, colours and links what comes back: a click on a cell opens that layer, head or
//! position in the other views.

pub mod attribution;
pub mod catalog;
pub mod compare;
pub mod grid;
pub mod patching;

use egui::{RichText, Ui};
use glassbox_engine::experiments::patching::PatchHook;
use glassbox_engine::experiments::quantize::WeightQuant;
use glassbox_engine::{ActivationPrecision, LayerOp, LlamaConfig, Step};
use serde::Deserialize;

use super::{Request, ViewCtx};
use crate::gui::session::Session;
use crate::gui::worker::experiments::{Event, Job};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpMode {
    #[default]
    Compare,
    Patching,
    Attribution,
    Catalog,
}

/// A job on the model thread as a panel sees it: progress with Cancel, then what happened.
#[derive(Default)]
pub struct Runner {
    pub id: Option<u64>,
    pub done: usize,
    pub total: usize,
    pub error: Option<String>,
    pub cancelled: bool,
    /// Device and seconds of the last finished job.
    pub finished: Option<(String, f64)>,
}

impl Runner {
    pub fn start(&mut self, s: &mut Session, job: Job) {
        *self = Runner { id: Some(s.start_experiment(job)), ..Runner::default() };
    }

    /// A problem found before anything ran (a bad input).
    pub fn fail(&mut self, message: String) {
        self.error = Some(message);
    }

    pub fn busy(&self) -> bool {
        self.id.is_some()
    }

    /// Takes the events every job reports; hands back the ones that carry results.
    pub fn on_event(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Progress { done, total } => (self.done, self.total) = (done, total),
            Event::Done { seconds, device } => {
                self.id = None;
                self.finished = Some((device, seconds));
            }
            Event::Failed(message) => {
                self.id = None;
                self.error = Some(message);
            }
            Event::Cancelled => {
                self.id = None;
                self.cancelled = true;
            }
            other => return Some(other),
        }
        None
    }

    /// Progress bar and Cancel while running; afterwards the error, or where and how long.
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if let Some(id) = self.id {
            ui.horizontal(|ui| {
                let frac = if self.total > 0 { self.done as f32 / self.total as f32 } else { 0.0 };
                let text = cx.lang.tf(format!("{} of {} passes", self.done, self.total), format!("已完成 {} / {} 次前向传播", self.done, self.total));
                ui.add(egui::ProgressBar::new(frac).desired_width(320.0).text(text).animate(true));
                if ui.button(cx.tr("Cancel", "取消")).clicked() {
                    cx.s.cancel_experiment(id);
                }
            });
            // Replies arrive from the model thread; keep polling while it works.
            ui.ctx().request_repaint_after(std::time::Duration::from_millis(50));
        } else if let Some(e) = &self.error {
            ui.colored_label(cx.theme.error(), e.as_str());
        } else if self.cancelled {
            ui.label(RichText::new(cx.tr("Cancelled.", "已取消。")).color(cx.theme.muted()));
        } else if let Some((device, seconds)) = &self.finished {
            let device = cx.lang.engine_text(device);
            ui.label(RichText::new(cx.lang.tf(format!("Ran on {device} in {seconds:.2} s."), format!("在 {device} 上运行，用时 {seconds:.2} 秒。"))).color(cx.theme.muted()));
        }
    }
}

/// An experiment a lesson action runs (`experiment = { kind = "…", … }`); A (or the clean
/// prompt) is the session's prompt after the action's `prompt`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// `compare`, `ladder`, `patch`, `dla` or `heads`.
    pub kind: String,
    /// compare: B's prompt (same number of tokens).
    pub prompt_b: Option<String>,
    /// compare: `f16` or `bf16` activations in B.
    pub activations: Option<String>,
    /// compare: `bf16`, `int8` or `q4` weights in B.
    pub weights: Option<String>,
    pub no_rope: Option<bool>,
    pub no_causal_mask: Option<bool>,
    /// compare: `[layer, head]` pairs ablated in B.
    pub ablate_heads: Option<Vec<[usize; 2]>>,
    /// compare: layers whose MLP output is zeroed in B.
    pub ablate_mlps: Option<Vec<usize>>,
    /// compare, ladder: the heatmap shown as A | B | B − A (`pattern`, `mlp`, `residual`).
    pub show: Option<String>,
    /// patch: the corrupt prompt, the clean answer and the corrupt one.
    pub corrupt: Option<String>,
    pub answer: Option<String>,
    pub wrong: Option<String>,
    /// patch: `resid_pre`, `attn_out`, `mlp_out`, `z` or `all`.
    pub hook: Option<String>,
    /// dla: the token whose logit is split (absent: the model's top-1), and an optional
    /// second one (a difference).
    pub target: Option<String>,
    pub minus: Option<String>,
    /// heads: the built-in probe (`true`) or the prompt (`false`, the default for lessons).
    pub probe: Option<bool>,
}

const KINDS: [&str; 5] = ["compare", "ladder", "patch", "dla", "heads"];

impl ExperimentSpec {
    pub fn mode(&self) -> ExpMode {
        match self.kind.as_str() {
            "patch" => ExpMode::Patching,
            "dla" => ExpMode::Attribution,
            "heads" => ExpMode::Catalog,
            _ => ExpMode::Compare,
        }
    }

    fn hooks(&self) -> Result<Vec<PatchHook>, String> {
        match self.hook.as_deref().unwrap_or("resid_pre") {
            "all" => Ok(PatchHook::ALL.to_vec()),
            h => Ok(vec![h.parse::<PatchHook>()?]),
        }
    }

    /// Checks the spec against the lesson format and the model (empty = fine).
    pub fn check(&self, c: &LlamaConfig) -> Vec<String> {
        let mut errs = Vec::new();
        if !KINDS.contains(&self.kind.as_str()) {
            errs.push(format!("unknown experiment kind `{}` ({})", self.kind, KINDS.join(", ")));
        }
        let k = self.kind.as_str();
        let only = |set: bool, kinds: &[&str], name: &str, errs: &mut Vec<String>| {
            if set && !kinds.contains(&k) {
                errs.push(format!("`{name}` is for {} experiments, not `{k}`", kinds.join("/")));
            }
        };
        only(self.prompt_b.is_some(), &["compare"], "prompt_b", &mut errs);
        only(self.activations.is_some(), &["compare"], "activations", &mut errs);
        only(self.weights.is_some(), &["compare"], "weights", &mut errs);
        only(self.no_rope.is_some(), &["compare"], "no_rope", &mut errs);
        only(self.no_causal_mask.is_some(), &["compare"], "no_causal_mask", &mut errs);
        only(self.ablate_heads.is_some(), &["compare"], "ablate_heads", &mut errs);
        only(self.ablate_mlps.is_some(), &["compare"], "ablate_mlps", &mut errs);
        only(self.show.is_some(), &["compare", "ladder"], "show", &mut errs);
        only(self.corrupt.is_some() || self.answer.is_some() || self.wrong.is_some() || self.hook.is_some(), &["patch"], "corrupt/answer/wrong/hook", &mut errs);
        only(self.target.is_some() || self.minus.is_some(), &["dla"], "target/minus", &mut errs);
        only(self.probe.is_some(), &["heads"], "probe", &mut errs);
        if let Some(a) = &self.activations
            && !matches!(a.parse::<ActivationPrecision>(), Ok(ActivationPrecision::F16 | ActivationPrecision::Bf16))
        {
            errs.push(format!("activations `{a}`: f16 or bf16"));
        }
        if let Some(w) = &self.weights
            && !matches!(w.parse::<WeightQuant>(), Ok(WeightQuant::Bf16 | WeightQuant::Int8 | WeightQuant::Q4 | WeightQuant::F32Reference))
        {
            errs.push(format!("weights `{w}`: bf16, int8, q4 or f32-ref"));
        }
        if let Some(m) = &self.show
            && compare::MapKind::from_name(m).is_none()
        {
            errs.push(format!("show `{m}`: pattern, mlp or residual"));
        }
        for &[l, h] in self.ablate_heads.iter().flatten() {
            if l >= c.n_layers() || h >= c.n_heads() {
                errs.push(format!("ablate_heads [{l}, {h}] out of range"));
            }
        }
        if self.ablate_mlps.iter().flatten().any(|&l| l >= c.n_layers()) {
            errs.push("ablate_mlps out of range".into());
        }
        match k {
            "compare" if self.compare_variant().is_none() => errs.push("a compare experiment needs one difference (prompt_b, activations, weights, no_rope, no_causal_mask, ablate_heads or ablate_mlps)".into()),
            "patch" if self.corrupt.is_none() || self.answer.is_none() || self.wrong.is_none() => errs.push("a patch experiment needs corrupt, answer and wrong".into()),
            "patch" => errs.extend(self.hooks().err()),
            _ => {}
        }
        errs
    }

    /// compare: the controls this spec sets, or `None` if B would equal A.
    fn compare_variant(&self) -> Option<compare::Diff> {
        let interventions = self.no_rope.unwrap_or(false)
            || self.no_causal_mask.unwrap_or(false)
            || self.ablate_heads.as_ref().is_some_and(|h| !h.is_empty())
            || self.ablate_mlps.as_ref().is_some_and(|m| !m.is_empty());
        let picked = [
            (self.prompt_b.is_some(), compare::Diff::Prompt),
            (self.activations.is_some(), compare::Diff::Activations),
            (self.weights.is_some(), compare::Diff::Weights),
            (interventions, compare::Diff::Interventions),
        ];
        let mut chosen = picked.iter().filter(|(on, _)| *on).map(|&(_, d)| d);
        match (chosen.next(), chosen.next()) {
            (Some(d), None) => Some(d),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct ExperimentsView {
    pub mode: ExpMode,
    pub compare: compare::CompareState,
    pub patching: patching::PatchState,
    pub attribution: attribution::DlaState,
    pub catalog: catalog::CatalogState,
}

impl ExperimentsView {
    /// Hands every event the model thread reported to the panel whose job it is (every
    /// frame, whichever view is shown).
    pub fn absorb(&mut self, s: &mut Session) {
        for (id, event) in std::mem::take(&mut s.experiment_events) {
            if self.compare.runner.id == Some(id) {
                self.compare.on_event(event, s);
            } else if self.patching.runner.id == Some(id) {
                self.patching.on_event(event);
            } else if self.attribution.runner.id == Some(id) {
                self.attribution.on_event(event);
            } else if self.catalog.runner.id == Some(id) {
                self.catalog.on_event(event, s);
            }
        }
    }

    pub fn busy(&self) -> bool {
        self.compare.runner.busy() || self.patching.runner.busy() || self.attribution.runner.busy() || self.catalog.runner.busy()
    }

    /// Runs a lesson's experiment on the session's prompt and opens its panel.
    pub fn start(&mut self, spec: &ExperimentSpec, s: &mut Session) {
        self.mode = spec.mode();
        match spec.kind.as_str() {
            "ladder" | "compare" => {
                let c = &mut self.compare;
                c.diff = if spec.kind == "ladder" { compare::Diff::Ladder } else { spec.compare_variant().unwrap_or_default() };
                if let Some(p) = &spec.prompt_b {
                    c.prompt_b = p.clone();
                }
                if let Some(a) = spec.activations.as_deref().and_then(|a| a.parse().ok()) {
                    c.activations = a;
                }
                if let Some(w) = spec.weights.as_deref().and_then(|w| w.parse().ok()) {
                    c.weights = w;
                }
                c.no_rope = spec.no_rope.unwrap_or(false);
                c.no_causal_mask = spec.no_causal_mask.unwrap_or(false);
                let heads: Vec<String> = spec.ablate_heads.iter().flatten().map(|[l, h]| format!("L{l}H{h}")).collect();
                c.heads_text = heads.join(" ");
                let mlps: Vec<String> = spec.ablate_mlps.iter().flatten().map(ToString::to_string).collect();
                c.mlps_text = mlps.join(" ");
                if let Some(m) = spec.show.as_deref().and_then(compare::MapKind::from_name) {
                    c.map = m;
                }
                c.layer = s.sel.layer;
                c.head = s.sel.head;
                c.run(s);
            }
            "patch" => {
                let p = &mut self.patching;
                p.clean = s.prompt.clone();
                p.corrupt = spec.corrupt.clone().unwrap_or_default();
                p.answer = spec.answer.clone().unwrap_or_default();
                p.wrong = spec.wrong.clone().unwrap_or_default();
                match spec.hooks() {
                    Ok(hooks) => {
                        p.hooks = hooks;
                        p.run(s);
                    }
                    Err(e) => p.runner.fail(e),
                }
            }
            "dla" => {
                let d = &mut self.attribution;
                d.target = spec.target.clone().unwrap_or_default();
                d.minus = spec.minus.clone().unwrap_or_default();
                d.run(s);
            }
            "heads" => {
                self.catalog.probe = spec.probe.unwrap_or(false);
                self.catalog.run(s);
            }
            _ => {}
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if !cx.presenting {
            ui.horizontal_wrapped(|ui| {
                for (m, en, zh) in [
                    (ExpMode::Compare, "Compare two runs", "比较两次运行"),
                    (ExpMode::Patching, "Activation patching", "激活修补"),
                    (ExpMode::Attribution, "Direct logit attribution", "直接 logit 归因"),
                    (ExpMode::Catalog, "Head catalog", "注意力头目录"),
                ] {
                    ui.selectable_value(&mut self.mode, m, cx.tr(en, zh));
                }
            });
            ui.separator();
        }
        egui::ScrollArea::vertical().id_salt("experiments").auto_shrink([false, false]).show(ui, |ui| match self.mode {
            ExpMode::Compare => self.compare.ui(ui, cx),
            ExpMode::Patching => self.patching.ui(ui, cx),
            ExpMode::Attribution => self.attribution.ui(ui, cx),
            ExpMode::Catalog => self.catalog.ui(ui, cx),
        });
    }
}

/// Opens a head in the attention view: its pattern at layer `layer`, one-head mode.
pub fn open_head(cx: &mut ViewCtx<'_>, layer: usize, head: usize) {
    cx.s.sel.head = head;
    cx.requests.push(Request::Goto(Step::Layer(layer, LayerOp::Softmax)));
    cx.requests.push(Request::Mode("head"));
}

/// Opens an MLP (the down projection of `layer`) in the MLP view.
pub fn open_mlp(cx: &mut ViewCtx<'_>, layer: usize) {
    cx.requests.push(Request::Goto(Step::Layer(layer, LayerOp::Down)));
    cx.requests.push(Request::Mode("heatmaps"));
}

/// Opens a position of a block's residual stream, attention output or MLP output.
pub fn open_position(cx: &mut ViewCtx<'_>, hook: PatchHook, layer: usize, position: usize) {
    cx.s.sel.position = position;
    match hook {
        PatchHook::ResidPre => {
            cx.requests.push(Request::Goto(Step::Layer(layer, LayerOp::Ln1)));
            cx.requests.push(Request::Open(super::residual::ID));
        }
        PatchHook::AttnOut => {
            cx.requests.push(Request::Goto(Step::Layer(layer, LayerOp::OProj)));
            cx.requests.push(Request::Mode("head"));
        }
        PatchHook::MlpOut => open_mlp(cx, layer),
        PatchHook::Z => open_head(cx, layer, position),
    }
}

/// The session runs `ids` (shown as `text`) unless its pass already covers exactly them: a
/// click on a cell of another prompt's experiment opens that prompt's pass.
pub fn show_ids(cx: &mut ViewCtx<'_>, ids: &[u32], text: &str) {
    if cx.s.trace.token_ids != ids || cx.s.trace.pos_offset != 0 {
        cx.s.prompt = text.to_string();
        cx.s.chat = false;
        cx.s.fixed_ids = Some(ids.to_vec());
        cx.s.run();
    }
}

/// The text of `ids` for the prompt box (ids as numbers for a model without a tokenizer).
pub fn ids_text(s: &Session, ids: &[u32]) -> String {
    match &s.model.tokenizer {
        Some(t) => t.decode(ids).unwrap_or_default(),
        None => ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "),
    }
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("experiments");

impl super::View for ExperimentsView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Experiments", "实验")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["compare", "patching", "attribution", "catalog"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "compare" => self.mode = ExpMode::Compare,
            "patching" => self.mode = ExpMode::Patching,
            "attribution" => self.mode = ExpMode::Attribution,
            "catalog" => self.mode = ExpMode::Catalog,
            _ => return false,
        }
        true
    }

    fn mode(&self) -> Option<&'static str> {
        Some(match self.mode {
            ExpMode::Compare => "compare",
            ExpMode::Patching => "patching",
            ExpMode::Attribution => "attribution",
            ExpMode::Catalog => "catalog",
        })
    }

    fn tick(&mut self, _ctx: &egui::Context, s: &mut crate::gui::session::Session) {
        self.absorb(s);
    }

    fn busy(&self, _s: &crate::gui::session::Session, _shown: bool) -> bool {
        ExperimentsView::busy(self)
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        ExperimentsView::ui(self, ui, cx);
    }
}
