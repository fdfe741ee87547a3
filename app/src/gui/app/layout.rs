//! The ready app's frame: prompt bar, notices, status and timeline, diagram and lesson
//! panels, the tab row and the view; then what the views and the lesson panel asked for.

use egui::{CentralPanel, Panel, ScrollArea, Ui};

use super::bars::{Nav, controls_ui, long_bar_ui, presenter_header_ui, prompt_bar_ui, status_ui};
use super::{GlassboxApp, NARROW_WIDTH, NOTICE_SECONDS, Phase};
use crate::gui::export;
use crate::gui::i18n::Lang;
use crate::gui::lesson_panel::PanelEvents;
use crate::gui::{lesson_numbers, lessons};
use glassbox_engine::load::fetch::KnownModel;
use crate::gui::session::Session;
use crate::gui::theme::Theme;
use crate::gui::views::{Request, ViewCtx, ViewId, Views, diagram};

/// What every panel of one frame shares.
#[derive(Clone, Copy)]
struct Frame {
    lang: Lang,
    theme: Theme,
    presenting: bool,
    /// Below `NARROW_WIDTH`: status, timeline strip and diagram panel give way to the view.
    narrow: bool,
    width: f32,
}

impl Frame {
    fn cx<'a>(&self, s: &'a mut Session, requests: &'a mut Vec<Request>, export: bool) -> ViewCtx<'a> {
        ViewCtx { s, lang: self.lang, theme: self.theme, requests, export, presenting: self.presenting }
    }
}

impl GlassboxApp {
    pub(super) fn main_ui(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        let now = ui.input(|i| i.time);
        let export = std::mem::take(&mut self.export_next);
        let mut requests: Vec<Request> = Vec::new();
        let Phase::Ready(r) = &mut self.phase else {
            return;
        };
        r.views.tick(&ctx, &mut r.s);
        if !self.presenting {
            let (lang, locked) = (self.lang, self.workshop.is_some());
            Panel::top("prompt").show(ui, |ui| prompt_bar_ui(ui, &mut r.s, &mut r.prompt, lang, locked));
        }
        let theme = Theme::new(self.dark);
        notices_ui(ui, &mut self.notices, &theme, now);
        // On a narrow window (a projector at 150 %) the status bar and the timeline strip give
        // way to the view (the step buttons stay), and so does the diagram panel.
        let width = ui.available_width();
        let f = Frame { lang: self.lang, theme, presenting: self.presenting, narrow: width < NARROW_WIDTH, width };
        let nav = self.bottom_panels_ui(ui, f, &mut requests);
        self.diagram_panel_ui(ui, f, &mut requests);
        let ev = self.lesson_panel_ui(ui, f);
        self.central_ui(ui, f, export, &mut requests);
        self.lesson_events(ev, &ctx);
        self.handout_frame(export, &mut requests, now);
        for req in requests {
            self.request(req, &ctx, now);
        }
        match nav {
            Some(Nav::Step(d)) => self.move_cursor(d),
            Some(Nav::Layer(d)) => self.jump_layer(d),
            Some(Nav::To(i)) => self.cursor_to(i),
            None => {}
        }
    }

    /// Status bar and the step controls with the timeline strip.
    fn bottom_panels_ui(&mut self, ui: &mut Ui, f: Frame, requests: &mut Vec<Request>) -> Option<Nav> {
        let Phase::Ready(r) = &mut self.phase else { return None };
        if f.presenting {
            return None;
        }
        if !f.narrow {
            Panel::bottom("status").show(ui, |ui| status_ui(ui, &mut r.s, f.lang, &f.theme));
        }
        let playing = &mut self.playing;
        Panel::bottom("timeline")
            .show(ui, |ui| {
                let step_view = ViewId::for_step(r.s.cursor_step());
                let view_title = step_view.map_or("", |v| r.views.title_of(v, f.lang, &r.s));
                let nav = controls_ui(ui, &r.s, f.lang, view_title, playing);
                if !f.narrow {
                    r.views.timeline.ui(ui, &mut f.cx(&mut r.s, requests, false));
                }
                nav
            })
            .inner
    }

    /// The compact diagram at the left; the Model view is the diagram, so never both.
    fn diagram_panel_ui(&mut self, ui: &mut Ui, f: Frame, requests: &mut Vec<Request>) {
        let show = self.show_diagram && !f.presenting && !f.narrow && self.view != diagram::ID;
        let Phase::Ready(r) = &mut self.phase else { return };
        let Some(d) = r.views.get_mut::<diagram::DiagramView>().filter(|_| show) else {
            return;
        };
        // Side panels scale with the window (and the zoom), so the view always keeps room.
        Panel::left("diagram")
            .default_size((f.width * 0.19).clamp(200.0, 320.0))
            .max_size(f.width * 0.3)
            .show(ui, |ui| {
                ScrollArea::vertical().id_salt("diagram").show(ui, |ui| {
                    d.ui(ui, &mut f.cx(&mut r.s, requests, false));
                });
            });
    }

    fn lesson_panel_ui(&mut self, ui: &mut Ui, f: Frame) -> PanelEvents {
        let Phase::Ready(r) = &mut self.phase else { return PanelEvents::default() };
        if !self.show_lesson || f.presenting {
            return PanelEvents::default();
        }
        let (default, max) = if f.narrow {
            ((f.width * 0.3).clamp(220.0, 300.0), f.width * 0.42)
        } else {
            ((f.width * 0.27).clamp(260.0, 460.0), f.width * 0.4)
        };
        let lessons = &mut self.lessons;
        Panel::right("lesson")
            .default_size(default)
            .max_size(max)
            .show(ui, |ui| lessons.ui_with_pass(ui, f.lang, &f.theme, &r.s.model.config, Some(&r.s)))
            .inner
    }

    /// The tab row and the current view.
    fn central_ui(&mut self, ui: &mut Ui, f: Frame, export: bool, requests: &mut Vec<Request>) {
        let Phase::Ready(r) = &mut self.phase else { return };
        let (view, export_next) = (&mut self.view, &mut self.export_next);
        CentralPanel::default().show(ui, |ui| {
            if f.presenting {
                presenter_header_ui(ui, &r.s, f.lang, &f.theme);
            }
            tabs_ui(ui, f, &r.views, &r.s, view, export_next);
            ui.separator();
            if r.s.is_long() {
                if !f.presenting {
                    long_bar_ui(ui, &mut r.s, f.lang, &f.theme);
                }
                if let Some(detail) = r.views.detail_needed(*view, &r.s) {
                    r.s.want_detail(detail);
                }
            }
            r.views.show(*view, ui, &mut f.cx(&mut r.s, requests, export));
        });
    }

    /// Lesson panel: a chosen lesson opens its view; an action runs.
    fn lesson_events(&mut self, ev: PanelEvents, ctx: &egui::Context) {
        let lang = self.lang;
        if let Some(v) = ev.opened.as_deref().and_then(|id| self.lessons.library.get(lang, id)).and_then(lessons::Lesson::view) {
            self.view = v;
        }
        let Some(action) = ev.action else { return };
        let lesson_view = self
            .lessons
            .open
            .as_deref()
            .and_then(|id| self.lessons.library.get(lang, id))
            .and_then(lessons::Lesson::view);
        self.run_lesson_action(action, lesson_view, ctx);
    }

    /// Runs a lesson action; one that names another model (`model = ".."`) first opens it
    /// through the picker (progress, Gemma's terms) and runs when it has loaded.
    pub(super) fn run_lesson_action(&mut self, action: lessons::Action, lesson_view: Option<ViewId>, ctx: &egui::Context) {
        if self.workshop.is_some() && (action.prompt.is_some() || action.chat.is_some() || action.model.is_some()) {
            let text = self.lang.tr(
                "This try-it changes the prompt or the model, which workshop mode keeps to the session's.",
                "这个动手试试会改变提示词或模型，而研讨模式固定使用会话自带的。",
            );
            self.notices.push((text.to_string(), Some(ctx.input(|i| i.time))));
            return;
        }
        let Phase::Ready(r) = &mut self.phase else { return };
        if let Some(known) = action.model.as_deref().and_then(|m| other_model(m, &r.s.model.config)) {
            self.pending_action = Some((action, lesson_view));
            self.picker.show();
            self.picker.open_known(ctx, known);
            return;
        }
        let outcome = lessons::run_action(&action, &mut r.s);
        self.view = super::apply_outcome(&mut r.views, &mut r.s, ctx, &action, outcome, lesson_view).unwrap_or(self.view);
    }

    /// After a model switch: the lesson action that asked for the model.
    pub(super) fn run_pending_action(&mut self, ctx: &egui::Context) {
        if let Some((action, view)) = self.pending_action.take() {
            self.run_lesson_action(action, view, ctx);
        }
    }

    /// One thing a view asked for.
    fn request(&mut self, req: Request, ctx: &egui::Context, now: f64) {
        match req {
            Request::Goto(step) => self.goto(step),
            Request::Generate(n) => {
                if let Some(r) = self.ready() {
                    r.s.generate(n);
                }
            }
            Request::Task { kind, text, options } => {
                if let Some(r) = self.ready() {
                    r.s.run_task(kind, text, options);
                }
            }
            Request::Open(v) => self.view = v,
            Request::Mode(m) => {
                if let Some(v) = self.ready().and_then(|r| r.views.set_mode(m)) {
                    self.view = v;
                }
            }
            Request::OpenModel { dir, prompt, note, head, grads } => {
                self.open_model(&dir, prompt, &note, head, ctx);
                if let Some((grads, at)) = grads {
                    self.open_gradients(*grads, at);
                }
            }
            Request::Export(fig) => match export::save_figure(&fig) {
                Ok(path) => {
                    let text = self.lang.tf(
                        format!("Figure saved: {} (and .svg)", path.display()),
                        format!("图表已保存：{}（以及 .svg）", path.display()),
                    );
                    self.notices.push((text, Some(now)));
                }
                Err(e) => self.notices.push((format!("{e:#}"), None)),
            },
        }
    }
}

/// Messages above the view, each with a × to dismiss it; fading ones go after a while.
fn notices_ui(ui: &mut Ui, notices: &mut Vec<(String, Option<f64>)>, theme: &Theme, now: f64) {
    notices.retain(|(_, at)| at.is_none_or(|t| now - t < NOTICE_SECONDS));
    // A fading notice must go even if nothing else repaints the window.
    if let Some(left) = notices.iter().filter_map(|(_, at)| *at).map(|t| NOTICE_SECONDS - (now - t)).reduce(f64::min) {
        ui.ctx().request_repaint_after(std::time::Duration::from_secs_f64(left.max(0.05)));
    }
    if notices.is_empty() {
        return;
    }
    Panel::top("notices").show(ui, |ui| {
        let mut remove = None;
        for (i, (n, _)) in notices.iter().enumerate() {
            ui.horizontal(|ui| {
                if ui.small_button("×").clicked() {
                    remove = Some(i);
                }
                ui.colored_label(theme.accent(), n.as_str());
            });
        }
        if let Some(i) = remove {
            notices.remove(i);
        }
    });
}

/// One row of tabs, one per registered view; if the window is too narrow even for that, it
/// scrolls sideways.
fn tabs_ui(ui: &mut Ui, f: Frame, views: &Views, s: &Session, view: &mut ViewId, export_next: &mut bool) {
    if f.presenting || f.narrow {
        // Back-row text (or a projector's zoom) does not fit one row: the tabs wrap rather
        // than scroll out of sight.
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing.x = 4.0;
            ui.spacing_mut().button_padding.x = 4.0;
            for v in views.iter() {
                ui.selectable_value(view, ViewId(v.id()), v.short_title_for(f.lang, s));
            }
        });
        return;
    }
    ScrollArea::horizontal()
        .id_salt("view-tabs")
        .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::AlwaysHidden)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                // Compact on a projector, or wherever the full titles would not fit: short
                // titles, smaller text, Export in the menu (and Ctrl+E) only.
                let compact = f.presenting || f.narrow || tabs_width(ui, views, s, f.lang) > ui.available_width();
                if compact {
                    ui.style_mut().text_styles.insert(egui::TextStyle::Button, egui::FontId::proportional(13.0));
                    ui.spacing_mut().item_spacing.x = 3.0;
                    ui.spacing_mut().button_padding.x = 3.0;
                }
                for v in views.iter() {
                    let title = if compact { v.short_title_for(f.lang, s) } else { v.title_for(f.lang, s) };
                    ui.selectable_value(view, ViewId(v.id()), title);
                }
                if !compact {
                    ui.separator();
                    if ui.button(f.lang.tr("Export PNG", "导出 PNG")).clicked() {
                        *export_next = true;
                    }
                }
            });
        });
}

/// The width the full titles (and the Export button) need.
fn tabs_width(ui: &mut Ui, views: &Views, s: &Session, lang: Lang) -> f32 {
    let font = egui::TextStyle::Button.resolve(ui.style());
    ui.fonts_mut(|fonts| {
        views
            .iter()
            .map(|v| fonts.layout_no_wrap(v.title_for(lang, s).to_string(), font.clone(), egui::Color32::WHITE).size().x + 16.0)
            .sum::<f32>()
            + 110.0
    })
}

/// The known model lesson model `id` names, unless `loaded` is already it.
fn other_model(id: &str, loaded: &glassbox_engine::LlamaConfig) -> Option<KnownModel> {
    let wanted = lesson_numbers::model_config(id).ok()?;
    if lesson_numbers::same_model(loaded, &wanted) {
        return None;
    }
    KnownModel::from_name(id)
}
