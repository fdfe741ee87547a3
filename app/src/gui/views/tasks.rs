//! Tasks: the article's four uses (engine `tasks`: generate_text, analyze_sentiment,
//! answer_question, extract_key_information) on the instruct model. Running one shows its
//! answer — for sentiment, the probabilities of the label words — and its prompt pass
//! becomes the trace every other view shows ("open the trace").

use egui::{RichText, Slider, TextEdit, Ui};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::article::tasks::{PRESETS, TaskKind, TaskOptions};

use super::{Request, ViewCtx};

/// The article's code imports `from llama3 import Llama3Model`: no such package exists. This
/// is Glassbox's real API for the same task; `tests/tests/api_snippet.rs` compiles and runs
/// exactly these lines, so the panel cannot show code that does not work.
pub const API_SNIPPET: &str = r#"let model = Arc::new(Model::load(&model_dir)?);
let mut exec = CpuExecutor::new(model.clone());
let options = TaskOptions::default(); // temperature 0.7, top-p 0.9
let out = tasks::analyze_sentiment(&model, &mut exec, text, &options)?;
println!("{} {:?}", out.answer, out.sentiment.map(|s| s.probs));"#;

/// The same from the command line.
pub const CLI_SNIPPET: &str =
    "glassbox task sentiment --preset stock-news --temperature 0.7 --top-p 0.9 --seed 1";

/// The lessons' own examples, next to the engine's presets.
pub const LESSON_EXAMPLES: [(TaskKind, &str); 3] = [
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
    /// Sampling for the next run (default temperature 0.7, top-p 0.9, as lesson 17 says).
    pub sampling: SamplingParams,
    /// Keep the seed between runs (same answer again); off = a new seed per run.
    pub fixed_seed: bool,
    /// Unfold the "article's API and the real one" note on the next frame.
    pub open_code: bool,
}

impl Default for TasksView {
    fn default() -> Self {
        Self {
            task: TaskKind::Sentiment,
            input: String::new(),
            sampling: TaskOptions::with_seed(1).sampling,
            fixed_seed: false,
            open_code: false,
        }
    }
}

impl TasksView {
    /// The options of the next run; without a fixed seed each run draws a new one.
    pub fn next_options(&mut self) -> TaskOptions {
        let options = TaskOptions {
            sampling: self.sampling,
        };
        if !self.fixed_seed {
            self.sampling.seed = self.sampling.seed.wrapping_add(1);
        }
        options
    }
}

/// A sentiment label in the UI language.
pub fn label_text(label: &str, cx: &ViewCtx<'_>) -> String {
    let zh = match label {
        "positive" => "积极",
        "negative" => "消极",
        "neutral" => "中性",
        other => other,
    };
    cx.lang.tf(label.to_string(), format!("{zh}（{label}）"))
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
        egui::ScrollArea::vertical()
            .id_salt("tasks")
            .auto_shrink([false, false])
            .show(ui, |ui| self.content_ui(ui, cx));
    }

    fn content_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
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
        egui::CollapsingHeader::new(
            RichText::new(cx.tr(
                "Examples (the article's own, verbatim, and Glassbox's)",
                "例子（文章原例，一字不改；以及 Glassbox 自带的）",
            ))
            .strong(),
        )
        .default_open(!cx.presenting)
        .show(ui, |ui| {
            let examples = PRESETS
                .iter()
                .map(|p| (p.kind, p.text, p.from_article))
                .chain(LESSON_EXAMPLES.iter().map(|&(k, t)| (k, t, false)));
            for (kind, text, from_article) in examples {
                let whose = if from_article {
                    cx.tr("the article's", "文章原例")
                } else {
                    cx.tr("Glassbox's", "Glassbox 自带")
                };
                if ui
                    .button(format!(
                        "{whose} · {} · {}",
                        title(kind, cx),
                        crate::gui::heatmap::short_label(text, 60)
                    ))
                    .clicked()
                {
                    self.task = kind;
                    self.input = text.to_string();
                }
            }
        });
        ui.add(
            TextEdit::multiline(&mut self.input)
                .desired_rows(3)
                .desired_width(f32::INFINITY)
                .hint_text(cx.tr("the task's text", "任务的文本")),
        );
        self.sampling_ui(ui, cx);
        ui.horizontal(|ui| {
            let ok = !self.input.trim().is_empty() && !cx.s.running && cx.s.has_tokenizer();
            if ui
                .add_enabled(
                    ok,
                    egui::Button::new(RichText::new(cx.tr("Run task", "运行任务")).strong()),
                )
                .clicked()
            {
                let options = self.next_options();
                cx.requests.push(Request::Task {
                    kind: self.task,
                    text: self.input.clone(),
                    options,
                });
            }
            if cx.s.task_running {
                ui.spinner();
                ui.label(cx.tr("running on the worker…", "正在后台运行……"));
            }
        });
        ui.separator();
        self.result_ui(ui, cx);
        if !cx.presenting || self.open_code {
            api_note_ui(ui, cx, std::mem::take(&mut self.open_code));
        }
    }

    /// Temperature, top-p, top-k and seed of the next run.
    fn sampling_ui(&mut self, ui: &mut Ui, cx: &ViewCtx<'_>) {
        let s = &mut self.sampling;
        ui.horizontal_wrapped(|ui| {
            ui.label(cx.tr("Decoding:", "解码方式："));
            ui.add(
                Slider::new(&mut s.temperature, 0.0..=2.0)
                    .step_by(0.05)
                    .text(cx.tr("temperature (0 = greedy)", "温度（0 = 贪心）")),
            );
            ui.add(
                Slider::new(&mut s.top_p, 0.05..=1.0)
                    .step_by(0.05)
                    .text(cx.tr("top-p", "top-p")),
            );
            ui.add(
                Slider::new(&mut s.top_k, 0..=100).text(cx.tr("top-k (0 = off)", "top-k（0 = 关闭）")),
            );
            let seed_label = ui.label(cx.tr("seed", "随机种子"));
            ui.add(egui::DragValue::new(&mut s.seed)).labelled_by(seed_label.id);
            ui.checkbox(&mut self.fixed_seed, cx.tr("keep the seed", "固定种子"));
        });
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
            .size(crate::gui::theme::font_px(ui, 17.0)),
        );
        ui.label(
            RichText::new(format!("{} {}", cx.tr("Input:", "输入："), r.input))
                .color(cx.theme.muted()),
        );
        let answer = if r.kind == TaskKind::Sentiment {
            label_text(&r.answer, cx)
        } else {
            r.answer.clone()
        };
        ui.label(RichText::new(answer).size(crate::gui::theme::font_px(ui, 18.0)));
        ui.label(
            RichText::new(settings_text(&r.sampling, cx))
                .monospace()
                .color(cx.theme.muted()),
        );
        if let Some(sent) = &r.sentiment {
            ui.label(cx.lang.tf(
                format!("It wrote: “{}”. Most likely label: {}.", r.generated_text, label_text(sent.label, cx)),
                format!("它写的是：“{}”。最可能的标签：{}。", r.generated_text, label_text(sent.label, cx)),
            ));
            ui.label(RichText::new(cx.tr(
                "The answer is what the model wrote (sampled). Below: its probability of each label word as the first answer token (renormalized over the three; raw = share of the whole distribution).",
                "答案是模型写出的内容（采样得到）。下面是模型在回答第一个词元处给每个标签词的概率（在三者之间重新归一化；raw = 占整个分布的比例）。",
            )).color(cx.theme.muted()));
            for ((label, p), (_, raw)) in sent.probs.iter().zip(&sent.raw) {
                ui.horizontal(|ui| {
                    ui.add_sized(
                        [130.0, 18.0],
                        egui::Label::new(RichText::new(label_text(label, cx)).monospace()),
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
        egui::CollapsingHeader::new(cx.tr("The chat prompt it ran", "实际运行的对话提示词")).show(
            ui,
            |ui| {
                ui.label(RichText::new(&r.prompt).monospace());
            },
        );
        ui.horizontal(|ui| {
            ui.label(cx.tr("Open its trace:", "打开它的计算记录："));
            for v in [super::tokens::ID, super::attention::ID, super::residual::ID, super::output::ID] {
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

/// "sampled: temperature 0.7 · top-p 0.9 · top-k off · seed 12" or "greedy".
pub fn settings_text(p: &SamplingParams, cx: &ViewCtx<'_>) -> String {
    if p.is_greedy() {
        return cx
            .tr(
                "Decoded greedily (temperature 0): the same answer every run.",
                "贪心解码（温度 0）：每次运行答案都相同。",
            )
            .to_string();
    }
    let k = if p.top_k == 0 {
        cx.tr("off", "关闭").to_string()
    } else {
        p.top_k.to_string()
    };
    cx.lang.tf(
        format!(
            "Sampled with temperature {:.2} · top-p {:.2} · top-k {k} · seed {}: another seed can give another answer.",
            p.temperature, p.top_p, p.seed
        ),
        format!(
            "采样设置：温度 {:.2} · top-p {:.2} · top-k {k} · 随机种子 {}：换一个种子，答案可能不同。",
            p.temperature, p.top_p, p.seed
        ),
    )
}

/// The article's `from llama3 import Llama3Model` does not exist; Glassbox's real API beside it.
fn api_note_ui(ui: &mut Ui, cx: &ViewCtx<'_>, open: bool) {
    egui::CollapsingHeader::new(cx.tr(
        "Code: the article's API and the real one",
        "代码：文章里的接口与真实的接口",
    ))
    .open(open.then_some(true))
    .show(ui, |ui| {
        if open {
            ui.scroll_to_cursor(Some(egui::Align::TOP));
        }
        ui.label(cx.tr(
            "The article shows Python code starting with this import. No package called llama3 with a Llama3Model class exists; the line fails with ModuleNotFoundError.",
            "文章展示的 Python 代码以下面这行导入开头。并不存在名为 llama3、带有 Llama3Model 类的包；这一行会报 ModuleNotFoundError。",
        ));
        ui.label(
            RichText::new("from llama3 import Llama3Model   # does not exist")
                .monospace()
                .color(cx.theme.error()),
        );
        ui.label(cx.tr(
            "Glassbox's real API for the sentiment task (Rust; these exact lines are compiled and run by a test):",
            "Glassbox 中情感分析任务的真实接口（Rust；测试会编译并运行这几行代码）：",
        ));
        ui.label(RichText::new(API_SNIPPET).monospace());
        ui.label(cx.tr("Or from the command line:", "或者在命令行里："));
        ui.label(RichText::new(CLI_SNIPPET).monospace());
        ui.label(cx.tr(
            "In Python, Llama models are loaded with Hugging Face transformers (AutoModelForCausalLM), not with a llama3 package.",
            "在 Python 里，Llama 模型通常用 Hugging Face transformers（AutoModelForCausalLM）加载，而不是一个 llama3 包。",
        ));
    });
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("tasks");

impl super::View for TasksView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Tasks", "任务")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["code"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "code" => self.open_code = true,
            _ => return false,
        }
        true
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        TasksView::ui(self, ui, cx);
    }
}
