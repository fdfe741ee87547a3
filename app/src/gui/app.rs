//! The `eframe::App`: layout (prompt bar, diagram, view, lesson panel, timeline, status bar),
//! keyboard, the request loop between views and the session, persistence and scripting.

use std::path::PathBuf;
use std::sync::Arc;

use egui::{CentralPanel, Key, Modifiers, Panel, RichText, Ui};
use glassbox_engine::exec::gpu::GpuContext;
use glassbox_engine::{Model, Step};

use super::first_run::FirstRun;
use super::i18n::Lang;
use super::lesson_panel::LessonPanel;
use super::lessons::{self, Library};
use super::model_picker::ModelPicker;
use super::prompt_input::{self, PromptInput};
use super::saved_session::dialog::SessionDialog;
use super::saved_session::frame::Startup;
use super::workshop::{self, Workshop};
use super::screenshot::Script;
use super::session::{Gradients, Session};
use super::state::{self, PersistedState};
use super::theme::Theme;
use super::views::experiments::{self, ExperimentsView};
use super::views::tasks::{self, TasksView};
use super::views::training::{self, TrainingView};
use super::views::{ViewId, Views, attention};
use super::worker::Worker;
use glassbox_engine::Device;

mod bars;
mod handout_export;
mod hook_export;
mod layout;
mod open_model;
mod script_cmds;

/// What an action asks of the views beyond the session: a training run, an experiment, the
/// Tasks view on a task (with the action's sampling), or a sub-panel; else the lesson's own
/// view. Returns the view to show.
pub(super) fn apply_outcome(
    views: &mut Views,
    s: &mut Session,
    ctx: &egui::Context,
    action: &lessons::Action,
    outcome: lessons::ActionOutcome,
    lesson_view: Option<ViewId>,
) -> Option<ViewId> {
    if let (Some(req), Some(t)) = (&outcome.train, views.get_mut::<TrainingView>()) {
        t.apply(req, ctx);
    }
    if let (Some(spec), Some(x)) = (&outcome.experiment, views.get_mut::<ExperimentsView>()) {
        x.start(spec, s);
    }
    if let Some((task, input)) = outcome.task {
        let t = views.get_mut::<TasksView>()?;
        t.task = task;
        if let Some(text) = input {
            t.input = text;
        }
        let s = &mut t.sampling;
        if let Some(t) = action.temperature {
            s.temperature = t.max(0.0);
        }
        if let Some(p) = action.top_p {
            s.top_p = p.clamp(0.01, 1.0);
        }
        if let Some(k) = action.top_k {
            s.top_k = k;
        }
        return Some(tasks::ID);
    }
    if outcome.train.is_some() {
        return Some(training::ID);
    }
    if outcome.experiment.is_some() {
        return Some(experiments::ID);
    }
    if let Some(mode) = &outcome.mode {
        return views.set_mode(mode);
    }
    lesson_view
}

/// The memory budget setting (View menu): what a pass may keep for the views.
fn budget_ui(ui: &mut Ui, s: &mut Session, lang: Lang) {
    use glassbox_engine::long::budget::{MAX_BUDGET, MIB, MIN_BUDGET};
    ui.horizontal(|ui| {
        let label = ui.label(lang.tr("Memory budget (MiB):", "内存预算（MiB）："));
        let mut mib = s.budget / MIB;
        let drag = egui::DragValue::new(&mut mib).range(MIN_BUDGET / MIB..=MAX_BUDGET / MIB).speed(16.0);
        if ui.add(drag).labelled_by(label.id).on_hover_text(lang.tr(
            "What a pass keeps for the views. Longer prompts keep the residual stream of every position and recompute a layer's detail when it is shown. Applies from the next Run.",
            "一次前向传播为视图保存的数据上限。较长的提示词只保存每个位置的残差流，某层的细节在显示时重新计算。下次运行时生效。",
        )).changed() {
            s.budget = mib * MIB;
        }
    });
}

/// How long a "figure saved" notice stays.
const NOTICE_SECONDS: f64 = 8.0;
/// Below this width (logical points) the diagram panel gives way to the view.
const NARROW_WIDTH: f32 = 1100.0;

pub struct Ready {
    pub s: Session,
    pub views: Views,
    /// The prompt box's caps and background tokenization.
    pub prompt: PromptInput,
}

pub enum Phase {
    Start(FirstRun),
    Ready(Box<Ready>),
}

pub struct GlassboxApp {
    pub phase: Phase,
    pub lang: Lang,
    pub dark: bool,
    pub view: ViewId,
    /// Moving the cursor opens the view of its step.
    pub follow_cursor: bool,
    /// The side panels can be hidden (projector: room for the view).
    pub show_diagram: bool,
    pub show_lesson: bool,
    /// Presenter mode (F5 or View → Presenter mode): the current figure fills the window with
    /// larger labels; prompt, timeline, status and side panels are hidden; the step keys
    /// still work. Esc or F5 leaves it.
    pub presenting: bool,
    pub lessons: LessonPanel,
    /// Messages above the view; `Some(time)` ones fade after a while (a saved figure), the
    /// rest stay until dismissed (a damaged state file, a failed executor).
    pub notices: Vec<(String, Option<f64>)>,
    pub playing: bool,
    last_tick: f64,
    zoom: f32,
    applied_style: Option<(bool, u32, bool)>,
    pub(super) export_next: bool,
    device: Device,
    /// eframe's wgpu device: the model runs on it when it is a hardware GPU (one device per
    /// process).
    gpu: Option<Arc<GpuContext>>,
    state_path: Option<PathBuf>,
    /// Applied to the session when the model has loaded.
    pub(crate) restored: Option<PersistedState>,
    last_saved: Option<PersistedState>,
    last_save_time: f64,
    script: Option<Script>,
    /// "Open model…" (`model_picker.rs`, `app/open_model.rs`).
    pub picker: ModelPicker,
    /// A lesson action waiting for the model it names to load (then it runs on it).
    pending_action: Option<(lessons::Action, Option<ViewId>)>,
    /// File → Export handout… (`app/handout_export.rs`).
    handout: handout_export::HandoutState,
    /// Save session… / Open session… (`saved_session/`).
    pub session_dialog: SessionDialog,
    /// Workshop mode: the sessions' list; prompt and model picker locked (`workshop.rs`).
    pub workshop: Option<Workshop>,
    /// `--session` / `--workshop`, opened once the window is up.
    pub startup: Option<Startup>,
}

impl GlassboxApp {
    /// The window's app: state from disk, the model loaded (or fetched) in the background.
    pub fn new(ctx: &egui::Context, model: Option<PathBuf>, script: Option<Script>, gpu: Option<Arc<GpuContext>>) -> Self {
        let state_path = state::default_path();
        let (restored, notice) = match &state_path {
            Some(p) => state::load(p),
            None => (PersistedState::default(), None),
        };
        // `GLASSBOX_DEVICE=auto|cpu|gpu` picks the executor (default: the GPU if one works).
        let device = std::env::var("GLASSBOX_DEVICE").ok().and_then(|d| d.parse().ok()).unwrap_or(Device::Auto);
        let mut app = Self::blank(Phase::Start(FirstRun::new(ctx, model)), restored, device);
        app.gpu = gpu;
        app.state_path = state_path;
        app.script = script;
        app.notices.extend(notice.map(|n| (n, None)));
        app
    }

    /// An app on an already loaded model with a given worker (tests, benchmarks).
    pub fn with_model(model: Arc<Model>, worker: Worker, restored: PersistedState) -> Self {
        let mut app = Self::blank(Phase::Start(FirstRun::idle()), restored, Device::Cpu);
        app.enter_ready(model, Some(worker), None);
        app
    }

    fn blank(phase: Phase, restored: PersistedState, device: Device) -> Self {
        let library = Library::load(Library::find_dir());
        // `--weights` (or GLASSBOX_WEIGHTS) wins over the saved setting.
        if crate::weights_choice::get().is_none() {
            crate::weights_choice::set(restored.weights);
        }
        Self {
            phase,
            lang: restored.lang,
            dark: restored.dark,
            view: restored.view,
            follow_cursor: restored.follow_cursor,
            show_diagram: restored.show_diagram,
            show_lesson: restored.show_lesson,
            presenting: false,
            lessons: LessonPanel::new(library, restored.open_lesson.clone()),
            picker: ModelPicker::new(restored.recent_models.clone()),
            pending_action: None,
            handout: Default::default(),
            session_dialog: SessionDialog::default(),
            workshop: None,
            startup: None,
            notices: Vec::new(),
            playing: false,
            last_tick: 0.0,
            zoom: restored.zoom,
            applied_style: None,
            export_next: false,
            device,
            gpu: None,
            state_path: None,
            restored: Some(restored),
            last_saved: None,
            last_save_time: 0.0,
            script: None,
        }
    }

    /// Driven by a screenshot script.
    pub fn scripted(&self) -> bool {
        self.script.is_some()
    }

    pub fn ready(&mut self) -> Option<&mut Ready> {
        match &mut self.phase {
            Phase::Ready(r) => Some(r),
            Phase::Start(_) => None,
        }
    }

    pub(crate) fn enter_ready(
        &mut self,
        model: Arc<Model>,
        worker: Option<Worker>,
        ctx: Option<&egui::Context>,
    ) {
        // The old model goes first (its worker thread ends, its GPU buffers are released): two
        // models never hold memory at once. The Training view outlives the model: opening a
        // checkpoint must not stop the run.
        // Views that outlive the model are taken over; the rest go with it.
        let mut views = Views::default();
        if let Phase::Ready(mut r) = std::mem::replace(&mut self.phase, Phase::Start(FirstRun::idle())) {
            views.keep_from(&mut r.views);
        }
        let worker = match worker {
            Some(w) => Ok(w),
            None => Worker::spawn(Arc::clone(&model), self.device, self.gpu.clone(), ctx.cloned()),
        };
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                if let Phase::Start(fr) = &mut self.phase {
                    fr.error = Some(format!("{e:#}"));
                }
                return;
            }
        };
        // What loading found (NaN weights, ignored tensors, a replaced chat template).
        self.notices
            .extend(model.warnings().iter().map(|w| (w.clone(), None)));
        super::saved_session::warm_identity(&model.source.dir);
        let mut s = Session::new(model, worker);
        let mut prompt = PromptInput::default();
        self.restore(&mut s);
        if !s.prompt.trim().is_empty() {
            // Through the prompt box's path: long prompts are tokenized off this thread and
            // cut to the token cap.
            prompt.run(&ctx.cloned().unwrap_or_default(), &mut s, self.lang);
        }
        self.phase = Phase::Ready(Box::new(Ready { s, views, prompt }));
    }

    /// The saved state (prompt, selection, sampling, cursor, budget) applied to a session on
    /// the model just loaded; the cursor and selection clamped to its size.
    fn restore(&mut self, s: &mut Session) {
        let Some(r) = self.restored.take() else { return };
        s.prompt = r.prompt;
        if let Some(total) = prompt_input::cap_chars(&mut s.prompt, prompt_input::CHAR_CAP) {
            self.notices.push((
                format!("The saved prompt had {total} characters; it was cut to {}.", prompt_input::CHAR_CAP),
                None,
            ));
        }
        s.chat = r.chat
            && s.model
                .tokenizer
                .as_ref()
                .is_some_and(|t| t.has_chat_template());
        s.sel = r.selection;
        s.sampling.temperature = r.temperature;
        s.sampling.top_k = r.top_k;
        s.sampling.top_p = r.top_p;
        s.budget = r.budget_mib * glassbox_engine::long::budget::MIB;
        if let Ok(step) = r.cursor.parse::<Step>()
            && step.layer().is_none_or(|l| l < s.n_layers())
        {
            s.goto(step);
        }
        s.sel.layer = s.sel.layer.min(s.n_layers().saturating_sub(1));
        s.sel.head = s.sel.head.min(s.model.config.n_heads().saturating_sub(1));
    }

    /// Opens a model folder (a training checkpoint) as the app's model, runs `prompt` on it
    /// and shows it in the attention view.
    fn open_model(
        &mut self,
        dir: &std::path::Path,
        prompt: String,
        note: &str,
        head: Option<(usize, usize)>,
        ctx: &egui::Context,
    ) {
        let now = ctx.input(|i| i.time);
        match crate::weights_choice::load(dir) {
            Ok(model) => {
                self.enter_ready(Arc::new(model), None, Some(ctx));
                if let Phase::Ready(r) = &mut self.phase {
                    r.s.prompt = prompt;
                    if !r.s.prompt.trim().is_empty() {
                        r.s.run();
                    }
                    let (layer, head) = head.unwrap_or((r.s.n_layers().saturating_sub(1), 0));
                    r.s.goto(Step::Layer(layer.min(r.s.n_layers().saturating_sub(1)), glassbox_engine::LayerOp::Softmax));
                    r.s.sel.head = head.min(r.s.model.config.n_heads().saturating_sub(1));
                }
                self.view = attention::ID;
                let text = self.lang.tf(
                    format!("Opened {note} as the model: every view shows it ({})", dir.display()),
                    format!("已把{note}作为模型打开：每个视图都显示它（{}）", dir.display()),
                );
                self.notices.push((text, Some(now)));
            }
            Err(e) => self.notices.push((format!("{}: {e}", dir.display()), None)),
        }
    }

    /// Gives the session a training step's gradients for the sequence just opened, shown
    /// at `at` (the cursor goes there, the view follows).
    fn open_gradients(&mut self, grads: Gradients, at: Step) {
        let Phase::Ready(r) = &mut self.phase else { return };
        r.s.grads = Some(grads);
        r.s.goto(at);
        self.view = ViewId::for_step(at).unwrap_or(self.view);
    }

    pub fn persisted(&self) -> Option<PersistedState> {
        let Phase::Ready(r) = &self.phase else {
            return None;
        };
        let s = &r.s;
        Some(PersistedState {
            prompt: s.prompt.clone(),
            chat: s.chat,
            selection: s.sel,
            cursor: s.cursor_step().to_string(),
            lang: self.lang,
            dark: self.dark,
            zoom: self.zoom,
            view: self.view,
            open_lesson: self.lessons.open.clone(),
            follow_cursor: self.follow_cursor,
            show_diagram: self.show_diagram,
            show_lesson: self.show_lesson,
            temperature: s.sampling.temperature,
            top_k: s.sampling.top_k,
            top_p: s.sampling.top_p,
            budget_mib: s.budget / glassbox_engine::long::budget::MIB,
            recent_models: self.picker.recent.clone(),
            weights: crate::weights_choice::get(),
        })
    }

    pub fn save_state(&mut self) {
        let (Some(path), Some(st)) = (self.state_path.clone(), self.persisted()) else {
            return;
        };
        if self.last_saved.as_ref() == Some(&st) {
            return;
        }
        match state::save(&path, &st) {
            Ok(()) => self.last_saved = Some(st),
            Err(e) => {
                self.notices
                    .push((format!("could not save the state: {e:#}"), None));
                self.state_path = None;
            }
        }
    }

    fn apply_style(&mut self, ctx: &egui::Context) {
        // Ctrl +/− is handled by egui; keep our copy for persistence.
        let zoom_now = ctx.zoom_factor();
        if self.applied_style.is_some() {
            self.zoom = zoom_now;
        }
        let want = (self.dark, self.zoom.to_bits(), self.presenting);
        if self.applied_style == Some(want) {
            return;
        }
        ctx.set_theme(if self.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        if (zoom_now - self.zoom).abs() > 1e-3 {
            ctx.set_zoom_factor(self.zoom);
        }
        if self.applied_style.map(|s| s.2) != Some(self.presenting) {
            // A little larger than egui's defaults: this is read from the back of a room. In
            // presenter mode every text style is at least the back-row size (heatmap axes and colour
            // bars follow `Small`).
            let p = self.presenting;
            ctx.all_styles_mut(|style| {
                use egui::{FontFamily, FontId, TextStyle};
                let mut set = |ts: TextStyle, size: f32, family: FontFamily| {
                    style.text_styles.insert(ts, FontId::new(size, family));
                };
                // Presenter mode: nothing under `PRESENTER_PX` (the back row at 1280×720);
                // figures raise their own label sizes to it through `theme::font_px`.
                let at_least = |px: f32| if p { px.max(super::theme::PRESENTER_PX) } else { px };
                set(TextStyle::Body, at_least(15.0), FontFamily::Proportional);
                set(TextStyle::Button, at_least(15.0), FontFamily::Proportional);
                set(TextStyle::Heading, 22.0, FontFamily::Proportional);
                set(TextStyle::Monospace, at_least(14.0), FontFamily::Monospace);
                set(TextStyle::Small, if p { super::theme::PRESENTER_PX } else { 11.0 }, FontFamily::Proportional);
            });
        }
        self.applied_style = Some(want);
    }

    /// Moves the cursor; the view and the lesson follow if asked to.
    fn goto(&mut self, step: Step) {
        let Phase::Ready(r) = &mut self.phase else {
            return;
        };
        r.s.goto(step);
        self.after_cursor_move();
    }

    fn after_cursor_move(&mut self) {
        let Phase::Ready(r) = &self.phase else { return };
        let step = r.s.cursor_step();
        if self.follow_cursor
            && let Some(v) = ViewId::for_step(step)
        {
            self.view = v;
        }
        if self.lessons.follow
            && let Some(l) =
                self.lessons
                    .library
                    .for_step(self.lang, step, self.lessons.open.as_deref())
        {
            self.lessons.open = Some(l.id().to_string());
        }
    }

    fn move_cursor(&mut self, delta: isize) {
        let Phase::Ready(r) = &mut self.phase else {
            return;
        };
        let i = (r.s.cursor as isize + delta).clamp(0, r.s.last_index() as isize) as usize;
        r.s.set_cursor(i);
        self.after_cursor_move();
    }

    fn jump_layer(&mut self, delta: isize) {
        let Phase::Ready(r) = &mut self.phase else {
            return;
        };
        r.s.jump_layer(delta);
        self.after_cursor_move();
    }

    fn cursor_to(&mut self, index: usize) {
        let Phase::Ready(r) = &mut self.phase else {
            return;
        };
        r.s.set_cursor(index);
        self.after_cursor_move();
    }

    fn keyboard(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() || !matches!(self.phase, Phase::Ready(_)) {
            return;
        }
        let (mut step, mut layer, mut home, mut end, mut play) =
            (0isize, 0isize, false, false, false);
        ctx.input_mut(|i| {
            // Shift variants first: plain arrows would also match them.
            if i.consume_key(Modifiers::SHIFT, Key::ArrowRight) {
                layer += 1;
            }
            if i.consume_key(Modifiers::SHIFT, Key::ArrowLeft) {
                layer -= 1;
            }
            if i.consume_key(Modifiers::NONE, Key::ArrowRight) {
                step += 1;
            }
            if i.consume_key(Modifiers::NONE, Key::ArrowLeft) {
                step -= 1;
            }
            home = i.consume_key(Modifiers::NONE, Key::Home);
            end = i.consume_key(Modifiers::NONE, Key::End);
            play = i.consume_key(Modifiers::NONE, Key::Space);
            if i.consume_key(Modifiers::COMMAND, Key::E) {
                self.export_next = true;
            }
            if i.consume_key(Modifiers::NONE, Key::F5) {
                self.presenting = !self.presenting;
            }
            if self.presenting && i.consume_key(Modifiers::NONE, Key::Escape) {
                self.presenting = false;
            }
        });
        if layer != 0 {
            self.jump_layer(layer);
        }
        if step != 0 {
            self.move_cursor(step);
        }
        if home {
            self.cursor_to(0);
        }
        if end {
            self.cursor_to(usize::MAX);
        }
        if play {
            self.playing = !self.playing;
        }
    }

    /// Space: one step every 0.3 s, waiting for the worker when it is behind.
    fn play_tick(&mut self, ctx: &egui::Context) {
        if !self.playing {
            return;
        }
        let now = ctx.input(|i| i.time);
        let Phase::Ready(r) = &self.phase else { return };
        if r.s.cursor >= r.s.last_index() {
            self.playing = false;
            return;
        }
        if now - self.last_tick >= 0.3 && (r.s.step_ready(r.s.cursor + 1) || !r.s.running) {
            self.last_tick = now;
            self.move_cursor(1);
        }
        ctx.request_repaint_after(std::time::Duration::from_millis(100));
    }

    fn autosave(&mut self, ctx: &egui::Context) {
        let now = ctx.input(|i| i.time);
        if now - self.last_save_time > 2.0 {
            self.last_save_time = now;
            self.save_state();
        }
    }

    /// One frame of the whole app.
    pub fn show(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        self.apply_style(&ctx);
        match &mut self.phase {
            Phase::Start(fr) => {
                if let Some(model) = fr.poll() {
                    let target = fr.target.take();
                    self.enter_ready(model, None, Some(&ctx));
                    if let Some(p) = target {
                        self.remember_opened(&p);
                    }
                }
            }
            Phase::Ready(r) => {
                r.s.poll();
                self.notices
                    .extend(r.s.notices.drain(..).map(|n| (n, None)));
            }
        }
        self.run_script(&ctx);
        self.sessions_frame(&ctx);
        self.keyboard(&ctx);
        self.play_tick(&ctx);
        self.menu_ui(ui);
        match &mut self.phase {
            Phase::Start(fr) => {
                CentralPanel::default().show(ui, |ui| fr.ui(ui, self.lang, &Theme::new(self.dark)));
            }
            Phase::Ready(_) => self.main_ui(ui),
        }
        self.picker_frame(&ctx);
        self.handout_dialog_ui(&ctx);
        self.autosave(&ctx);
    }

    fn menu_ui(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        let step_hooks = self.step_hooks();
        let mut hooks = None;
        let mut workshop_step = 0;
        Panel::top("menu").show(ui, |ui| {
            egui::MenuBar::new().ui(ui, |ui| {
                ui.menu_button(lang.tr("File", "文件"), |ui| {
                    let open = egui::Button::new(lang.tr("Open model…", "打开模型……"))
                        .shortcut_text(ui.ctx().format_shortcut(&open_model::OPEN_SHORTCUT));
                    let locked = self.workshop.is_some();
                    let open = ui.add_enabled(!locked, open);
                    if locked {
                        open.on_disabled_hover_text(workshop::locked_text(lang));
                    } else if open.clicked() {
                        self.picker.show();
                    }
                    self.session_menu_ui(ui);
                    ui.separator();
                    if ui
                        .button(lang.tr("Export the current figure (PNG and SVG)", "导出当前图表（PNG 和 SVG）"))
                        .clicked()
                    {
                        self.export_next = true;
                    }
                    hooks = hook_export::hooks_menu_ui(ui, lang, &step_hooks);
                    self.handout_menu_ui(ui);
                    ui.separator();
                    if ui.button(lang.tr("Quit", "退出")).clicked() {
                        ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                });
                ui.menu_button(lang.tr("View", "视图"), |ui| self.view_menu_ui(ui));
                if let Some(w) = &self.workshop {
                    workshop_step = workshop::bar_ui(ui, w, lang);
                }
                self.menu_bar_right_ui(ui);
            });
        });
        self.workshop_step(workshop_step, ui.ctx());
        if let Some(what) = hooks {
            let now = ui.input(|i| i.time);
            self.export_hooks(what, now);
        }
    }

    /// File menu: Save session… (Ctrl+S), Open session… (Ctrl+Shift+O).
    fn session_menu_ui(&mut self, ui: &mut Ui) {
        use super::saved_session::dialog::Purpose;
        use super::saved_session::frame::{OPEN_SHORTCUT, SAVE_SHORTCUT};
        let lang = self.lang;
        let save = egui::Button::new(lang.tr("Save session…", "保存会话……")).shortcut_text(ui.ctx().format_shortcut(&SAVE_SHORTCUT));
        if ui.add_enabled(matches!(self.phase, Phase::Ready(_)), save).clicked() {
            self.session_dialog.show(Purpose::Save);
        }
        let open = egui::Button::new(lang.tr("Open session…", "打开会话……")).shortcut_text(ui.ctx().format_shortcut(&OPEN_SHORTCUT));
        if ui.add(open).clicked() {
            self.session_dialog.show(Purpose::Open);
        }
    }

    /// View menu: theme, zoom, presenter mode, which panels show, the memory budget.
    fn view_menu_ui(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        if ui.button(lang.tr("Light theme", "浅色主题")).clicked() {
            self.dark = false;
        }
        if ui.button(lang.tr("Dark theme", "深色主题")).clicked() {
            self.dark = true;
        }
        ui.separator();
        if ui
            .button(lang.tr("Zoom in (Ctrl +)", "放大（Ctrl +）"))
            .clicked()
        {
            egui::gui_zoom::zoom_in(ui.ctx());
        }
        if ui
            .button(lang.tr("Zoom out (Ctrl −)", "缩小（Ctrl −）"))
            .clicked()
        {
            egui::gui_zoom::zoom_out(ui.ctx());
        }
        if ui
            .button(lang.tr("Presentation zoom (150%)", "演示缩放（150%）"))
            .clicked()
        {
            ui.ctx().set_zoom_factor(1.5);
        }
        if ui.button(lang.tr("Reset zoom", "恢复缩放")).clicked() {
            ui.ctx().set_zoom_factor(1.0);
        }
        ui.separator();
        ui.checkbox(
            &mut self.presenting,
            lang.tr("Presenter mode (F5, Esc leaves)", "演示模式（F5；Esc 退出）"),
        );
        ui.checkbox(
            &mut self.follow_cursor,
            lang.tr(
                "Open the view of the current step",
                "自动打开当前步骤的视图",
            ),
        );
        ui.checkbox(
            &mut self.show_diagram,
            lang.tr("Show the model diagram", "显示模型结构图"),
        );
        ui.checkbox(
            &mut self.show_lesson,
            lang.tr("Show the lesson panel", "显示课程面板"),
        );
        if let Phase::Ready(r) = &mut self.phase {
            ui.separator();
            budget_ui(ui, &mut r.s, lang);
        }
    }

    /// The bar's quick settings: language, theme, presenter mode, the zoom shown.
    fn menu_bar_right_ui(&mut self, ui: &mut Ui) {
        let lang = self.lang;
        ui.separator();
        for l in Lang::ALL {
            ui.selectable_value(&mut self.lang, l, l.native_name());
        }
        ui.separator();
        let theme_label = if self.dark {
            lang.tr("Light", "浅色")
        } else {
            lang.tr("Dark", "深色")
        };
        if ui.button(theme_label).clicked() {
            self.dark = !self.dark;
        }
        let present = if self.presenting {
            lang.tr("Leave presenter mode (Esc)", "退出演示模式（Esc）")
        } else {
            lang.tr("Present (F5)", "演示（F5）")
        };
        if ui.button(present).clicked() {
            self.presenting = !self.presenting;
        }
        ui.label(RichText::new(format!("{:.0}%", self.zoom * 100.0)).weak());
    }
}
