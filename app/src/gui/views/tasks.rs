//! Tasks: the article's four uses (engine `tasks`: generate_text, analyze_sentiment,
//! answer_question, extract_key_information) on the instruct model. Running one shows its
//! answer — for sentiment, the probabilities of the label words — and its prompt pass
//! becomes the trace every other view shows ("open the trace").

use egui::{RichText, TextEdit, Ui};
use glassbox_engine::tasks::{PRESETS, TaskKind};

use super::{Request, ViewCtx, ViewKind};

/// The lessons' own examples, next to the engine's presets.
const LESSON_EXAMPLES: [(TaskKind, &str); 3] = [
    (
        TaskKind::Sentiment,
        "Shares of the company fell 12% after it cut its full-year profit forecast.",
    ),
    (
        TaskKind::Qa,
        "Context: Llama 3.1 is a family of open-weight language models released by Meta in July 2024, in 8B, 70B and 405B sizes, with a context window of 128K tokens. Question: What sizes does Llama 3.1 come in?",
    ),
    (
        TaskKind::Extract,
        "Patient note: A 58-year-old man reports chest pain for two days. He has type 2 diabetes and takes metformin 500 mg twice daily. He is allergic to penicillin. Blood pressure 150/95.",
    ),
];

pub struct TasksView {
    pub task: TaskKind,
    pub input: String,
}

impl Default for TasksView {
    fn default() -> Self {
        Self {
            task: TaskKind::Sentiment,
            input: String::new(),
        }
    }
}

fn title(kind: TaskKind, cx: &ViewCtx<'_>) -> &'static str {
    match kind {
        TaskKind::Generate => cx.tr("Text generation (legal clause)", "文本生成（法律条款）"),
        TaskKind::Sentiment => cx.tr("Sentiment (finance, reviews)", "情感分析（金融、评论）"),
        TaskKind::Qa => cx.tr("Question answering", "问答"),
        TaskKind::Extract => cx.tr(
            "Key-information extraction (medical)",
            "关键信息抽取（医疗）",
        ),
    }
}

impl TasksView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.heading(cx.tr("Tasks: the article's four uses", "任务：文章中的四种应用"));
        ui.label(RichText::new(cx.tr(
            "Each task wraps your text in an instruction with the chat template and runs the same forward pass you step through; the prompt pass becomes the trace of every view.",
            "每个任务都用对话模板把你的文本包装成一条指令，然后运行你一步步看过的同一个前向传播；提示词的这次前向传播会成为所有视图显示的记录。",
        )).color(cx.theme.muted()));
        if !cx.s.has_tokenizer() {
            ui.colored_label(
                cx.theme.error(),
                cx.tr(
                    "This model has no tokenizer or chat template: tasks need one.",
                    "这个模型没有分词器或对话模板：任务需要它们。",
                ),
            );
        }
        ui.horizontal_wrapped(|ui| {
            for t in TaskKind::ALL {
                ui.selectable_value(&mut self.task, t, title(t, cx));
            }
        });
        ui.label(
            RichText::new(cx.tr(
                "Examples (from the article and the lessons):",
                "例子（来自文章和课程）：",
            ))
            .strong(),
        );
        let examples = PRESETS
            .iter()
            .map(|p| (p.kind, p.text))
            .chain(LESSON_EXAMPLES);
        for (kind, text) in examples {
            if ui
                .button(format!(
                    "{} · {}",
                    title(kind, cx),
                    crate::gui::heatmap::short_label(text, 70)
                ))
                .clicked()
            {
                self.task = kind;
                self.input = text.to_string();
            }
        }
        ui.add(
            TextEdit::multiline(&mut self.input)
                .desired_rows(3)
                .desired_width(f32::INFINITY)
                .hint_text(cx.tr("the task's text", "任务的文本")),
        );
        ui.horizontal(|ui| {
            let ok = !self.input.trim().is_empty() && !cx.s.running && cx.s.has_tokenizer();
            if ui
                .add_enabled(
                    ok,
                    egui::Button::new(RichText::new(cx.tr("Run task", "运行任务")).strong()),
                )
                .clicked()
            {
                cx.requests.push(Request::Task {
                    kind: self.task,
                    text: self.input.clone(),
                });
            }
            if cx.s.task_running {
                ui.spinner();
                ui.label(cx.tr("running on the worker…", "正在后台运行……"));
            }
        });
        ui.separator();
        self.result_ui(ui, cx);
    }

    fn result_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let Some(r) = cx.s.task.clone() else { return };
        ui.label(
            RichText::new(format!(
                "{} — {}",
                title(r.kind, cx),
                cx.tr("answer", "回答")
            ))
            .strong()
            .size(17.0),
        );
        ui.label(
            RichText::new(format!("{} {}", cx.tr("Input:", "输入："), r.input))
                .color(cx.theme.muted()),
        );
        ui.label(RichText::new(&r.answer).size(18.0));
        if let Some(sent) = &r.sentiment {
            ui.label(RichText::new(cx.tr(
                "Why this label: the model's probability of each label word as the first answer token (renormalized over the three; raw = share of the whole distribution).",
                "为什么是这个标签：模型在回答第一个词元处给每个标签词的概率（在三者之间重新归一化；raw = 占整个分布的比例）。",
            )).color(cx.theme.muted()));
            for ((label, p), (_, raw)) in sent.probs.iter().zip(&sent.raw) {
                ui.horizontal(|ui| {
                    ui.add_sized(
                        [90.0, 18.0],
                        egui::Label::new(RichText::new(*label).monospace()),
                    );
                    ui.add(
                        egui::ProgressBar::new(*p)
                            .desired_width(260.0)
                            .text(format!("{p:.3}")),
                    );
                    ui.label(RichText::new(format!("raw {raw:.4}")).monospace());
                });
            }
        }
        if r.kind == TaskKind::Sentiment && !r.generated_text.is_empty() {
            ui.label(cx.lang.tf(
                format!("It also wrote: “{}”", r.generated_text),
                format!("它还生成了：“{}”", r.generated_text),
            ));
        }
        egui::CollapsingHeader::new(cx.tr("The chat prompt it ran", "实际运行的对话提示词")).show(
            ui,
            |ui| {
                ui.label(RichText::new(&r.prompt).monospace());
            },
        );
        ui.horizontal(|ui| {
            ui.label(cx.tr("Open its trace:", "打开它的计算记录："));
            for v in [
                ViewKind::Tokens,
                ViewKind::Attention,
                ViewKind::Residual,
                ViewKind::Output,
            ] {
                if ui.button(v.title(cx.lang)).clicked() {
                    cx.requests.push(Request::Open(v));
                }
            }
        });
        ui.label(RichText::new(cx.tr(
            "A 135M model writes fluent English but invents facts and often ignores instructions: compare with what the lesson says.",
            "135M 参数的小模型能写通顺的英文，但会编造事实、常常不按指令做：对照课程里的说明看看。",
        )).color(cx.theme.muted()));
    }
}
