//! The lesson panel: pick a lesson (or let the step choose it), run its try-it actions,
//! read its body (egui_commonmark).

use egui::{RichText, ScrollArea, Ui};
use egui_commonmark::{CommonMarkCache, CommonMarkViewer};

use super::i18n::Lang;
use glassbox_engine::LlamaConfig;

use glassbox_engine::load::arch_stats::ArchStats;

use super::lesson_answers;
use super::lesson_numbers;
use super::lessons::{self, Action, Lesson, Library};
use super::session::Session;
use super::theme::Theme;

pub struct LessonPanel {
    pub library: Library,
    /// The last body filled in with a model's numbers, keyed by what it depends on.
    filled: Option<(FillKey, Filled)>,
    /// Id of the open lesson (the same id in both languages).
    pub open: Option<String>,
    /// Switch to the lesson that explains the cursor's step when the cursor moves.
    pub follow: bool,
    cache: CommonMarkCache,
    /// The questions whose answer the student has asked to see: (lesson id, index).
    revealed: std::collections::BTreeSet<(String, usize)>,
    /// Scroll the body down to the questions on the next frame (the `reveal` script command).
    scroll_to_questions: bool,
}

/// What the user did in the panel this frame.
#[derive(Default)]
pub struct PanelEvents {
    /// A lesson was chosen from the list (the app opens its view).
    pub opened: Option<String>,
    pub action: Option<Action>,
}

impl LessonPanel {
    pub fn new(library: Library, open: Option<String>) -> Self {
        Self {
            library,
            open,
            follow: true,
            filled: None,
            cache: CommonMarkCache::default(),
            revealed: Default::default(),
            scroll_to_questions: false,
        }
    }

    /// Shows every answer of the open lesson and scrolls to them (screenshot scripts).
    pub fn reveal_all(&mut self) {
        let Some(id) = self.open.clone() else { return };
        let n = self.library.en.iter().chain(&self.library.zh).filter(|l| l.id() == id).map(|l| l.front.questions.len()).max().unwrap_or(0);
        self.revealed.extend((0..n).map(|i| (id.clone(), i)));
        self.scroll_to_questions = true;
    }

    /// The panel without a pass: questions that read one say to run the prompt first.
    #[cfg(test)]
    pub fn ui(&mut self, ui: &mut Ui, lang: Lang, theme: &Theme, config: &LlamaConfig) -> PanelEvents {
        self.ui_with_pass(ui, lang, theme, config, None)
    }

    /// The panel, its questions' answers read from `s`'s pass.
    pub fn ui_with_pass(
        &mut self,
        ui: &mut Ui,
        lang: Lang,
        theme: &Theme,
        config: &LlamaConfig,
        s: Option<&Session>,
    ) -> PanelEvents {
        let mut ev = PanelEvents::default();
        ui.horizontal(|ui| {
            ui.heading(lang.tr("Lesson", "课程"));
            ui.checkbox(&mut self.follow, lang.tr("follow the step", "跟随当前步骤"));
        });
        let lessons = self.library.lessons(lang);
        let current_title = self
            .open
            .as_deref()
            .and_then(|id| lessons.iter().find(|l| l.id() == id))
            .map_or_else(
                || lang.tr("(choose a lesson)", "（选择一课）").to_string(),
                |l| l.front.title.clone(),
            );
        let label = ui.label(lang.tr("Open a lesson:", "打开一课："));
        egui::ComboBox::from_id_salt("lesson-list")
            .selected_text(current_title)
            .width((ui.available_width() - 12.0).max(120.0))
            .show_ui(ui, |ui| {
                for l in lessons {
                    let num = l.id().split('-').next().unwrap_or_default();
                    if ui
                        .selectable_label(
                            self.open.as_deref() == Some(l.id()),
                            format!("{num}  {}", l.front.title),
                        )
                        .clicked()
                    {
                        ev.opened = Some(l.id().to_string());
                    }
                }
            })
            .response
            .labelled_by(label.id);
        for e in &self.library.errors {
            ui.colored_label(theme.error(), e.as_str());
        }
        if let Some(id) = &ev.opened {
            self.open = Some(id.clone());
        }
        let Some((lesson, fallback)) = self
            .open
            .as_deref()
            .and_then(|id| self.library.get_or_other(lang, id))
        else {
            return ev;
        };
        ui.separator();
        if fallback {
            ui.colored_label(
                theme.error(),
                lang.tr(
                    "This lesson has no English version yet; it is shown in Chinese.",
                    "这一课还没有中文版；下面显示的是英文版。",
                ),
            );
        }
        ui.label(RichText::new(&lesson.front.title).size(20.0).strong());
        if !lesson.front.hooks.is_empty() {
            ui.label(
                RichText::new(lesson.front.hooks.join("  "))
                    .monospace()
                    .small()
                    .color(theme.muted()),
            );
        }
        let off: Vec<String> = lessons::facts_mismatch(&lesson.front, config).iter().map(|m| m.text(lang)).collect();
        if !off.is_empty() {
            ui.colored_label(
                theme.error(),
                lang.tf(
                    format!(
                        "This lesson is written for SmolLM2; the loaded model differs: {}",
                        off.join(", ")
                    ),
                    format!(
                        "本课是按 SmolLM2 写的；当前加载的模型不同：{}",
                        off.join("，")
                    ),
                ),
            );
        }
        ui.label(RichText::new(lang.tr("Try it:", "动手试试：")).strong());
        ui.horizontal_wrapped(|ui| {
            for a in &lesson.front.actions {
                let problems = match a.model.as_deref().map(lesson_numbers::model_config) {
                    Some(Ok(c)) => lessons::check_action(a, &c),
                    Some(Err(e)) => vec![e],
                    None => lessons::check_action(a, config),
                };
                let button = ui.add_enabled(
                    problems.is_empty(),
                    egui::Button::new(
                        RichText::new(format!("▶ {}", a.label)).color(theme.accent()),
                    ),
                );
                if button.clicked() {
                    ev.action = Some(a.clone());
                }
                if !problems.is_empty() {
                    button.on_disabled_hover_text(problems.join("; "));
                }
            }
        });
        ui.separator();
        let key = FillKey { id: lesson.id().to_string(), lang, params: ArchStats::new(config).params().total() };
        if self.filled.as_ref().is_none_or(|(k, _)| *k != key) {
            let filled = fill_body(lesson, config);
            self.filled = Some((key, filled));
        }
        let Some((_, filled)) = &self.filled else { return ev };
        if let Some(note) = filled.source_note(lang) {
            ui.label(RichText::new(note).small().color(theme.muted()));
        }
        if !filled.unknown.is_empty() {
            ui.colored_label(theme.error(), format!("{{{{{}}}}}: ?", filled.unknown.join("}}, {{")));
        }
        let body = filled.body.clone();
        let questions = Questions {
            id: lesson.id().to_string(),
            list: lesson.front.questions.clone(),
            config: filled.config.clone(),
        };
        ScrollArea::vertical()
            .id_salt("lesson-body")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                CommonMarkViewer::new().show(ui, &mut self.cache, &body);
                if std::mem::take(&mut self.scroll_to_questions) {
                    ui.scroll_to_cursor(Some(egui::Align::Min));
                }
                questions_ui(ui, lang, theme, &questions, s, &mut self.revealed);
            });
        ev
    }
}

/// A lesson's questions and the config their numbers come from.
struct Questions {
    id: String,
    list: Vec<lessons::Question>,
    config: LlamaConfig,
}

/// The exercises after the body: each question, and its answer once "Show answer" is clicked
/// (computed then, from the config and the pass, never stored in the lesson).
fn questions_ui(
    ui: &mut Ui,
    lang: Lang,
    theme: &Theme,
    q: &Questions,
    s: Option<&Session>,
    revealed: &mut std::collections::BTreeSet<(String, usize)>,
) {
    if q.list.is_empty() {
        return;
    }
    ui.separator();
    ui.label(RichText::new(lang.tr("Exercises", "练习")).size(18.0).strong());
    for (i, question) in q.list.iter().enumerate() {
        let text = lesson_answers::question_text(question, &q.config);
        ui.label(RichText::new(format!("{}. {text}", i + 1)).strong());
        let key = (q.id.clone(), i);
        let open = revealed.contains(&key);
        let label = if open { lang.tr("Hide answer", "隐藏答案") } else { lang.tr("Show answer", "显示答案") };
        if ui.button(label).clicked() {
            if open {
                revealed.remove(&key);
            } else {
                revealed.insert(key);
            }
        }
        if open {
            let answer = lesson_answers::answer(&question.answer, &q.config, s);
            let color = if matches!(answer, lesson_answers::Answer::Ready(_)) { theme.accent() } else { theme.error() };
            ui.label(RichText::new(answer.text(lang)).color(color));
        }
        ui.add_space(6.0);
    }
}

#[derive(PartialEq)]
struct FillKey {
    id: String,
    lang: Lang,
    params: u64,
}

/// A body with its `{{numbers}}` filled in, and whose numbers they are.
struct Filled {
    body: String,
    unknown: Vec<String>,
    /// The lesson's model when it is not the loaded one (its numbers come from its config).
    other_model: Option<String>,
    /// The config the numbers came from (the questions' too).
    config: LlamaConfig,
}

impl Filled {
    fn source_note(&self, lang: Lang) -> Option<String> {
        let m = self.other_model.as_deref()?;
        Some(lang.tf(
            format!("The numbers below are {m}'s, from its config.json (the loaded model is another); its buttons open the model they name."),
            format!("下面的数字取自 {m} 的 config.json（当前加载的是另一个模型）；课中的按钮会打开它们指定的模型。"),
        ))
    }
}

/// The body with the numbers of the model it is about: the loaded model's when that is
/// the lesson's model (or the lesson names none), else the named model's config.
fn fill_body(lesson: &Lesson, loaded: &glassbox_engine::LlamaConfig) -> Filled {
    let (config, other_model) = lesson_numbers::lesson_config(lesson.front.model.as_deref(), loaded);
    let (body, unknown) = lesson_numbers::fill(&lesson.body, &config);
    Filled { body, unknown, other_model, config }
}
