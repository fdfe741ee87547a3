//! Training: a tiny Llama trained from scratch beside the views that inspect it. Preset,
//! start / pause / reset, live loss and learning-rate curves, gradient norms per layer and
//! per data-parallel worker, the induction score, samples, the bf16 loss over the f32 one,
//! a checkpoint slider that opens any saved checkpoint as the app's model, and one training
//! step laid open op by op, and recipes compared (`compare.rs`). The training runs on its own thread (`train_worker`); this view
//! only sends commands and draws the reports it gets back.

pub mod compare;
mod plots;
mod step_through;

use std::path::PathBuf;

use egui::{RichText, Ui};
use glassbox_engine::train::recipes::Recipe;
use glassbox_engine::train::{EvalReport, Precision, Preset, StepReport, TrainOptions};

use super::{Request, ViewCtx};
use crate::gui::train_worker::{TrainCmd, TrainMsg, TrainSetup, TrainWorker};

/// f32 only, bf16 only, or both (the bf16 curve drawn over the f32 one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrecisionMode {
    #[default]
    F32,
    Bf16,
    Both,
}

/// The view's two pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrainTab {
    #[default]
    Curves,
    StepThrough,
    /// `glassbox train --compare`'s runs overlaid (`compare.rs`).
    Compare,
}

/// What a lesson's try-it action asks of this view.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRequest {
    pub preset: Preset,
    pub workers: usize,
    pub precision: PrecisionMode,
    /// Pause after this many steps.
    pub steps: Option<usize>,
    /// Then lay one step open.
    pub inspect: bool,
}

/// Everything the run has reported, in order.
#[derive(Default)]
pub struct History {
    pub steps: Vec<StepReport>,
    pub bf16_steps: Vec<StepReport>,
    pub evals: Vec<EvalReport>,
    pub bf16_evals: Vec<EvalReport>,
    pub checkpoints: Vec<(usize, PathBuf)>,
}

pub struct TrainingView {
    pub preset: Preset,
    /// The architecture trained (Llama's recipe by default; GPT-2, BERT, Gemma 3, OLMo 2 and
    /// the Llama variants step through their own backward the same way).
    pub recipe: Recipe,
    pub workers: usize,
    pub precision: PrecisionMode,
    pub delay_ms: u64,
    /// Checkpoints go to `run_root/<preset>/`.
    pub run_root: PathBuf,
    worker: Option<TrainWorker>,
    pub history: History,
    pub running: bool,
    pub finished: bool,
    pub error: Option<String>,
    pub summary: Option<String>,
    /// A held-out sequence as prompt text, for opening a checkpoint in the views.
    pub probe: String,
    pub total_steps: usize,
    pub checkpoint_index: usize,
    pub step_through: step_through::StepThrough,
    pub tab: TrainTab,
    pub compare: compare::Compare,
    /// Inspect as soon as the run pauses (a lesson's "train N steps, then lay one open").
    inspect_when_paused: bool,
}

impl Default for TrainingView {
    fn default() -> Self {
        Self {
            preset: Preset::Induction,
            recipe: Recipe::Llama,
            workers: 1,
            precision: PrecisionMode::F32,
            delay_ms: 0,
            run_root: default_run_root(),
            worker: None,
            history: History::default(),
            running: false,
            finished: false,
            error: None,
            summary: None,
            probe: String::new(),
            total_steps: 0,
            checkpoint_index: 0,
            step_through: step_through::StepThrough::default(),
            tab: TrainTab::Curves,
            compare: compare::Compare::default(),
            inspect_when_paused: false,
        }
    }
}

/// `$GLASSBOX_TRAIN_DIR`, else `$XDG_CACHE_HOME/glassbox/training`, else `~/.cache/…`, else
/// the temp folder.
fn default_run_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("GLASSBOX_TRAIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("glassbox").join("training")
}

impl TrainingView {
    pub fn run_dir(&self) -> PathBuf {
        match self.recipe {
            Recipe::Llama => self.run_root.join(self.preset.name()),
            r => self.run_root.join(format!("{}-{}", self.preset.name(), r.name())),
        }
    }

    fn send(&mut self, cmd: TrainCmd, ctx: &egui::Context) {
        if self.worker.is_none() {
            match TrainWorker::spawn(Some(ctx.clone())) {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    self.error = Some(format!("could not start the training thread: {e:#}"));
                    return;
                }
            }
        }
        if let Some(w) = &self.worker {
            w.send(cmd);
        }
    }

    /// Starts a fresh run with the view's settings (`stop_after`: pause after that many).
    pub fn start(&mut self, ctx: &egui::Context, stop_after: Option<usize>) {
        self.history = History::default();
        self.step_through = step_through::StepThrough::default();
        self.checkpoint_index = 0;
        self.error = None;
        self.finished = false;
        let options = TrainOptions {
            preset: self.preset,
            recipe: self.recipe,
            workers: self.workers,
            precision: if self.precision == PrecisionMode::Bf16 { Precision::Bf16 } else { Precision::F32 },
            out: Some(self.run_dir()),
            ..TrainOptions::default()
        };
        let setup = TrainSetup {
            options,
            compare_bf16: self.precision == PrecisionMode::Both,
            stop_after,
            delay_ms: self.delay_ms,
        };
        self.send(TrainCmd::Start(setup), ctx);
        self.running = stop_after != Some(0);
    }

    pub fn pause(&mut self, ctx: &egui::Context) {
        self.send(TrainCmd::Pause, ctx);
    }

    pub fn resume(&mut self, ctx: &egui::Context) {
        self.send(TrainCmd::Resume(None), ctx);
    }

    /// Continue for `n` more steps, then pause.
    pub fn resume_for(&mut self, ctx: &egui::Context, n: usize) {
        self.send(TrainCmd::Resume(Some(n)), ctx);
        self.running = true;
    }

    /// One step laid open (the run pauses there).
    pub fn inspect(&mut self, ctx: &egui::Context) {
        self.send(TrainCmd::Inspect, ctx);
    }

    /// Stops the thread and forgets the run.
    pub fn reset(&mut self) {
        self.worker = None;
        self.history = History::default();
        self.step_through = step_through::StepThrough::default();
        self.running = false;
        self.finished = false;
        self.summary = None;
        self.error = None;
    }

    /// A lesson's try-it action.
    pub fn apply(&mut self, req: &TrainRequest, ctx: &egui::Context) {
        self.preset = req.preset;
        self.workers = req.workers;
        self.precision = req.precision;
        self.start(ctx, req.steps);
        self.inspect_when_paused = req.inspect;
        if req.inspect && req.steps == Some(0) {
            self.inspect_when_paused = false;
            self.inspect(ctx);
        }
    }

    /// Folds in what the training thread reported; true if anything arrived.
    pub fn poll(&mut self, ctx: &egui::Context) -> bool {
        let mut any = false;
        while let Some(msg) = self.worker.as_ref().and_then(TrainWorker::try_recv) {
            any = true;
            match msg {
                TrainMsg::Started { summary, total_steps, probe, .. } => {
                    self.summary = Some(summary);
                    self.probe = probe;
                    self.total_steps = total_steps;
                }
                TrainMsg::Step { bf16, report } => match bf16 {
                    false => self.history.steps.push(report),
                    true => self.history.bf16_steps.push(report),
                },
                TrainMsg::Eval { bf16, report } => match bf16 {
                    false => self.history.evals.push(report),
                    true => self.history.bf16_evals.push(report),
                },
                TrainMsg::Checkpoint { step, dir } => {
                    let follow = self.checkpoint_index + 1 >= self.history.checkpoints.len();
                    self.history.checkpoints.push((step, dir));
                    if follow {
                        self.checkpoint_index = self.history.checkpoints.len() - 1;
                    }
                }
                TrainMsg::Inspected(insp) => {
                    self.step_through.set(*insp);
                    self.tab = TrainTab::StepThrough;
                }
                TrainMsg::Running(on) => {
                    self.running = on;
                    if !on && std::mem::take(&mut self.inspect_when_paused) && !self.finished {
                        self.inspect(ctx);
                    }
                }
                TrainMsg::Finished => self.finished = true,
                TrainMsg::Error(e) => self.error = Some(e),
            }
        }
        any
    }

    /// The best induction head of the evaluation at `step`, if there was one.
    pub fn best_head_at(&self, step: usize) -> Option<(usize, usize)> {
        let e = self.history.evals.iter().rev().find(|e| e.step <= step)?;
        Some((e.best_head[0], e.best_head[1]))
    }

    pub fn step(&self) -> usize {
        self.history.steps.last().map_or(0, |r| r.step)
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let ctx = ui.ctx().clone();
        self.poll(&ctx);
        ui.heading(cx.tr("Training: a tiny Llama learns", "训练：一个小 Llama 在学习"));
        // Presenter mode: the curves; the settings are chosen before.
        if !cx.presenting {
            ui.label(RichText::new(cx.tr(
                "The same Llama code as the other views, run forward and backward on a model small enough to train here. Training runs on its own thread.",
                "和其他视图相同的 Llama 代码，在一个小到可以当场训练的模型上做前向和反向传播。训练在单独的线程里运行。",
            )).color(cx.theme.muted()));
            self.controls_ui(ui, cx);
        }
        if let Some(e) = &self.error {
            ui.colored_label(cx.theme.error(), e);
        }
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.tab, TrainTab::Curves, RichText::new(cx.tr("Curves", "曲线")).strong());
            ui.selectable_value(
                &mut self.tab,
                TrainTab::StepThrough,
                RichText::new(cx.tr("Step through one training step", "逐步查看一个训练步")).strong(),
            );
            ui.selectable_value(&mut self.tab, TrainTab::Compare, RichText::new(cx.tr("Compare recipes", "比较配方")).strong());
            if let Some(i) = self.step_through.inspection() {
                let n = i.step.report.step;
                ui.label(RichText::new(cx.lang.tf(format!("(step {n} laid open)"), format!("（已展开第 {n} 步）"))).color(cx.theme.muted()));
            }
        });
        ui.separator();
        egui::ScrollArea::vertical().id_salt("training").show(ui, |ui| match self.tab {
            TrainTab::Curves => {
                plots::curves_ui(ui, cx, &self.history, self.preset, self.workers);
                self.samples_ui(ui, cx);
                self.checkpoints_ui(ui, cx);
            }
            TrainTab::StepThrough => {
                let can_inspect = self.worker.is_some() && !self.finished;
                let head = self.best_head_at(self.step());
                if self.step_through.ui(ui, cx, can_inspect, head) {
                    self.inspect(&ctx);
                }
            }
            TrainTab::Compare => self.compare.ui(ui, cx),
        });
    }

    /// Which architecture to train: every recipe the engine's backward runs.
    fn recipe_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let label = ui.label(cx.tr("Architecture:", "架构："));
        egui::ComboBox::from_id_salt("train-recipe")
            .selected_text(self.recipe.name())
            .show_ui(ui, |ui| {
                for r in Recipe::ALL {
                    ui.selectable_value(&mut self.recipe, r, r.name());
                }
            })
            .response
            .labelled_by(label.id);
    }

    fn controls_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let ctx = ui.ctx().clone();
        ui.horizontal_wrapped(|ui| {
            ui.label(cx.tr("Preset:", "预设："));
            for p in Preset::ALL {
                let label = match p {
                    Preset::Induction => cx.tr("induction (repeated random tokens)", "归纳（重复的随机词元）"),
                    Preset::Text => cx.tr("text (English + Chinese corpus)", "文本（中英文语料）"),
                };
                ui.selectable_value(&mut self.preset, p, label);
            }
            ui.separator();
            self.recipe_ui(ui, cx);
            ui.separator();
            let label = ui.label(cx.tr("Workers:", "工作者："));
            egui::ComboBox::from_id_salt("train-workers")
                .selected_text(self.workers.to_string())
                .show_ui(ui, |ui| {
                    for w in [1, 2, 4, 8] {
                        ui.selectable_value(&mut self.workers, w, w.to_string());
                    }
                })
                .response
                .labelled_by(label.id);
            ui.separator();
            ui.label(cx.tr("Precision:", "精度："));
            ui.selectable_value(&mut self.precision, PrecisionMode::F32, "f32");
            ui.selectable_value(&mut self.precision, PrecisionMode::Bf16, "bf16");
            ui.selectable_value(&mut self.precision, PrecisionMode::Both, cx.tr("f32 + bf16", "f32 + bf16"));
            ui.separator();
            let label = ui.label(cx.tr("Pause per step:", "每步暂停："));
            let before = self.delay_ms;
            egui::ComboBox::from_id_salt("train-delay")
                .selected_text(format!("{} ms", self.delay_ms))
                .show_ui(ui, |ui| {
                    for ms in [0, 20, 50, 100, 300] {
                        ui.selectable_value(&mut self.delay_ms, ms, format!("{ms} ms"));
                    }
                })
                .response
                .labelled_by(label.id);
            if before != self.delay_ms {
                self.send(TrainCmd::SetDelay(self.delay_ms), &ctx);
            }
        });
        ui.horizontal_wrapped(|ui| {
            if ui.button(RichText::new(cx.tr("Start", "开始")).strong()).clicked() {
                self.start(&ctx, None);
            }
            let started = self.worker.is_some() && !self.history.evals.is_empty();
            if self.running {
                if ui.button(cx.tr("Pause", "暂停")).clicked() {
                    self.pause(&ctx);
                }
            } else if ui
                .add_enabled(started && !self.finished, egui::Button::new(cx.tr("Resume", "继续")))
                .clicked()
            {
                self.resume(&ctx);
            }
            if ui.add_enabled(self.worker.is_some(), egui::Button::new(cx.tr("Reset", "重置"))).clicked() {
                self.reset();
            }
            ui.separator();
            let step = self.step();
            let status = if self.finished {
                cx.lang.tf(format!("finished: {step} steps"), format!("已完成：{step} 步"))
            } else if self.running {
                cx.lang.tf(format!("training… step {step} / {}", self.total_steps), format!("训练中……第 {step} / {} 步", self.total_steps))
            } else if self.worker.is_some() && !self.history.evals.is_empty() {
                cx.lang.tf(format!("paused at step {step} / {}", self.total_steps), format!("暂停在第 {step} / {} 步", self.total_steps))
            } else {
                cx.tr("not started", "尚未开始").to_string()
            };
            ui.label(RichText::new(status).strong());
            if self.running {
                ui.spinner();
            }
            if let Some(r) = self.history.steps.last() {
                let rate = if r.seconds > 0.0 { 1.0 / r.seconds } else { 0.0 };
                ui.label(RichText::new(format!("{rate:.0} steps/s")).color(cx.theme.muted()));
            }
        });
        if let Some(s) = &self.summary {
            ui.label(RichText::new(s).monospace().color(cx.theme.muted()));
        }
    }

    fn samples_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let with_samples: Vec<&EvalReport> = self.history.evals.iter().filter(|e| !e.samples.is_empty()).collect();
        if with_samples.is_empty() {
            return;
        }
        ui.label(RichText::new(cx.tr("Samples (temperature 0.7), every evaluation:", "采样（温度 0.7），每次评估一次：")).strong());
        egui::ScrollArea::vertical().id_salt("train-samples").max_height(160.0).stick_to_bottom(true).show(ui, |ui| {
            for e in with_samples {
                for s in &e.samples {
                    ui.label(RichText::new(format!("{:>4}  {}", e.step, displayable(ui, s))).monospace());
                }
            }
        });
    }

    fn checkpoints_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let n = self.history.checkpoints.len();
        if n == 0 {
            return;
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(cx.tr("Checkpoint:", "检查点：")).strong());
            self.checkpoint_index = self.checkpoint_index.min(n - 1);
            let steps: Vec<usize> = self.history.checkpoints.iter().map(|(s, _)| *s).collect();
            ui.add(
                egui::Slider::new(&mut self.checkpoint_index, 0..=n - 1)
                    .custom_formatter(|i, _| cx.lang.tf(format!("step {}", steps.get(i as usize).copied().unwrap_or(0)), format!("第 {} 步", steps.get(i as usize).copied().unwrap_or(0)))),
            );
            let (step, dir) = &self.history.checkpoints[self.checkpoint_index];
            if ui
                .button(cx.tr("Open in the views", "在各视图中打开"))
                .on_hover_text(dir.display().to_string())
                .clicked()
            {
                cx.requests.push(Request::OpenModel {
                    dir: dir.clone(),
                    prompt: self.probe.clone(),
                    note: cx.lang.tf(format!("checkpoint at step {step}"), format!("第 {step} 步的检查点")),
                    head: self.best_head_at(*step),
                    grads: None,
                });
            }
        });
        ui.label(RichText::new(cx.tr(
            "Opens the saved weights as the app's model: every view (attention, residual, output…) then shows this checkpoint on a held-out sequence.",
            "把保存的权重作为应用的模型打开：之后每个视图（注意力、残差、输出……）都显示这个检查点在一条留出序列上的结果。",
        )).color(cx.theme.muted()));
    }
}

/// `text` with characters the fonts cannot draw replaced by `?` (a sample from an
/// untrained model is arbitrary bytes).
pub fn displayable(ui: &Ui, text: &str) -> String {
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    ui.ctx().fonts_mut(|f| {
        text.chars()
            .map(|c| if c.is_control() && c != '\n' { '?' } else if c == '\n' { '⏎' } else if f.has_glyph(&font, c) { c } else { '?' })
            .collect()
    })
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("training");

impl super::View for TrainingView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Training", "训练")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["recipes"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        if mode != "recipes" {
            return false;
        }
        self.tab = TrainTab::Compare;
        true
    }

    fn mode(&self) -> Option<&'static str> {
        (self.tab == TrainTab::Compare).then_some("recipes")
    }

    /// Opening a checkpoint as the model must not stop the run.
    fn keeps_across_models(&self) -> bool {
        true
    }

    fn tick(&mut self, ctx: &egui::Context, _s: &mut crate::gui::session::Session) {
        self.poll(ctx);
    }

    fn busy(&self, _s: &crate::gui::session::Session, _shown: bool) -> bool {
        self.running
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        TrainingView::ui(self, ui, cx);
    }
}
