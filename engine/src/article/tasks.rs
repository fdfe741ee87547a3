//! The four uses the Llama 3.1 article lists, as tasks on the instruct model through its
//! chat template. Each returns its answer and the trace of the prompt pass behind it, so a
//! class can open the computation that produced the answer.
//!
//! A 135M-parameter model is small: these show how an instruct model is *asked* to do a task
//! and what it actually does, not production quality.
//!
//! Answers are sampled with [`TaskOptions`] (by default temperature 0.7, top-p 0.9, as chat
//! front-ends do), so two runs with different seeds can differ; temperature 0 is greedy.

use crate::experiments::analysis;
use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions};
use crate::load::model::Model;
use crate::exec::sampling::{SamplingParams, softmax_with_temperature};
use crate::load::tokenizer::{ChatMessage, Tokenizer};
use crate::exec::trace::{CaptureFilter, Trace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Generate,
    Sentiment,
    Qa,
    Extract,
}

impl TaskKind {
    pub const ALL: [TaskKind; 4] = [TaskKind::Generate, TaskKind::Sentiment, TaskKind::Qa, TaskKind::Extract];

    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Generate => "generate",
            TaskKind::Sentiment => "sentiment",
            TaskKind::Qa => "qa",
            TaskKind::Extract => "extract",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The label words sentiment compares, in this order.
pub const SENTIMENT_LABELS: [&str; 3] = ["positive", "negative", "neutral"];

/// What the model's next-token distribution says about each label.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SentimentScores {
    /// The label with the most probability (the answer is what the model wrote, sampled).
    pub label: &'static str,
    /// Probability mass of each label's first tokens, renormalized over the three labels.
    pub probs: Vec<(&'static str, f32)>,
    /// The same mass before renormalizing: how much of the distribution is on labels at all.
    pub raw: Vec<(&'static str, f32)>,
}

/// Default sampling of the tasks: what the lessons and chat front-ends use.
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
pub const DEFAULT_TOP_P: f32 = 0.9;

/// How a task decodes its answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskOptions {
    /// Temperature, top-k, top-p and the seed of the first answer token (token `i` draws
    /// with `seed + i`). `temperature <= 0` is greedy.
    pub sampling: SamplingParams,
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self {
            sampling: SamplingParams {
                temperature: DEFAULT_TEMPERATURE,
                top_k: 0,
                top_p: DEFAULT_TOP_P,
                seed: 0,
            },
        }
    }
}

impl TaskOptions {
    pub fn greedy() -> Self {
        Self { sampling: SamplingParams::greedy() }
    }

    pub fn with_seed(seed: u64) -> Self {
        let mut o = Self::default();
        o.sampling.seed = seed;
        o
    }
}

#[derive(Debug, Clone)]
pub struct TaskOutput {
    pub kind: TaskKind,
    pub input: String,
    /// The chat prompt as rendered by the template.
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    /// The answer: generated text, or the sentiment label.
    pub answer: String,
    pub generated_ids: Vec<u32>,
    pub generated_text: String,
    pub sentiment: Option<SentimentScores>,
    /// The sampling settings the answer was decoded with.
    pub sampling: SamplingParams,
    /// Every hook of the prompt pass.
    pub trace: Trace,
}

/// A ready-made input. `from_article` presets are the article's own examples, verbatim
/// (its ASCII commas and colons kept); the others are Glassbox's, written for the lessons.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Preset {
    pub name: &'static str,
    #[serde(rename = "task")]
    pub kind: TaskKind,
    pub text: &'static str,
    pub from_article: bool,
}

const fn article(name: &'static str, kind: TaskKind, text: &'static str) -> Preset {
    Preset { name, kind, text, from_article: true }
}

const fn own(name: &'static str, kind: TaskKind, text: &'static str) -> Preset {
    Preset { name, kind, text, from_article: false }
}

pub const PRESETS: [Preset; 15] = [
    // The article's six examples (§5.1–5.3 and §6), character for character.
    article("article-medical", TaskKind::Extract, "患者,男性,45岁,主诉头痛,持续两天。既往有高血压病史。"),
    article("article-contract", TaskKind::Generate, "根据《劳动合同法》,本合同的主要条款如下:"),
    article("article-future-ai", TaskKind::Generate, "未来的人工智能技术将会如何影响我们的生活"),
    article("article-stock-news", TaskKind::Sentiment, "某科技公司股价大幅上涨,市场反应积极。"),
    article("article-smartwatch", TaskKind::Sentiment, "这款智能手表功能强大,设计时尚,非常满意。"),
    article("article-question", TaskKind::Qa, "Llama3.1 的核心技术是什么?"),
    // Glassbox's own: the same four uses in English (SmolLM2 was trained mostly on English)
    // and in Chinese.
    own(
        "medical-note",
        TaskKind::Extract,
        "Patient: male, 58. Admitted with chest pain for 3 hours. History of hypertension for 10 years, takes amlodipine 5 mg once daily. ECG shows ST elevation; diagnosis: acute myocardial infarction.",
    ),
    own(
        "contract",
        TaskKind::Generate,
        "Write a clause for a software license agreement stating that the licensee may not sublicense the software without the licensor's written consent.",
    ),
    own(
        "stock-news",
        TaskKind::Sentiment,
        "Shares of the company jumped 12% after it reported record quarterly earnings and raised its full-year guidance.",
    ),
    own(
        "smartwatch-review",
        TaskKind::Sentiment,
        "I have worn this smartwatch for two weeks. The battery easily lasts five days and the heart-rate sensor is accurate, but the strap feels cheap.",
    ),
    own("llama-question", TaskKind::Qa, "What is Llama 3.1, and which company released it?"),
    own(
        "medical-note-zh",
        TaskKind::Extract,
        "病人：男，58 岁。因胸痛 3 小时入院。高血压病史 10 年，每天服用氨氯地平 5 毫克。心电图显示 ST 段抬高，诊断：急性心肌梗死。",
    ),
    own(
        "contract-zh",
        TaskKind::Generate,
        "请为一份软件许可合同写一条条款：未经许可方书面同意，被许可方不得将软件转授权给第三方。",
    ),
    own("stock-news-zh", TaskKind::Sentiment, "该公司公布创纪录的季度利润并上调全年预期后，股价上涨了 12%。"),
    own("llama-question-zh", TaskKind::Qa, "Llama 3.1 是什么？是哪家公司发布的？"),
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

const MAX_NEW_TOKENS: usize = 64;

fn tokenizer(model: &Model) -> Result<&Tokenizer> {
    model.tokenizer.as_ref().ok_or_else(|| {
        EngineError::Input("tasks need the model's tokenizer.json and chat template".into())
    })
}

/// The seed answer token `i` draws with: a SplitMix64 mix of (run seed, i), so the runs of
/// nearby seeds do not share draws (with `seed + i`, seed 1's second token would be seed 2's
/// first).
pub fn token_seed(seed: u64, i: usize) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `user` through the chat template: the prompt pass fully captured (its `Sample` step
/// draws the first answer token), then continuation on the KV cache with the same sampling
/// until end-of-sequence or `max_new` tokens.
fn run_chat(
    model: &Model,
    exec: &mut dyn Executor,
    kind: TaskKind,
    input: &str,
    user: String,
    max_new: usize,
    options: &TaskOptions,
) -> Result<TaskOutput> {
    let tok = tokenizer(model)?;
    if input.trim().is_empty() {
        return Err(EngineError::Input("the task's text is empty".into()));
    }
    let prompt = tok.apply_chat_template(&[ChatMessage::user(user)], true)?;
    let prompt_ids = tok.encode_prompt(&prompt)?;
    exec.reset();
    let sampling = options.sampling;
    let first = PassOptions {
        capture: CaptureFilter::All,
        sampling: SamplingParams {
            seed: token_seed(sampling.seed, 0),
            ..sampling
        },
        ..PassOptions::default()
    };
    let trace = exec.forward(&prompt_ids, first)?;
    let eos = model.config.eos_ids();
    let mut generated = Vec::new();
    let mut next = trace.sampled;
    while let Some(id) = next {
        if generated.len() >= max_new || eos.contains(&id) {
            break;
        }
        generated.push(id);
        let step = PassOptions {
            capture: CaptureFilter::Nothing,
            sampling: SamplingParams {
                seed: token_seed(sampling.seed, generated.len()),
                ..sampling
            },
            ..PassOptions::default()
        };
        next = exec.forward(&[id], step)?.sampled;
    }
    let generated_text = tok.decode(&generated)?.trim().to_string();
    Ok(TaskOutput {
        kind,
        input: input.to_string(),
        prompt,
        prompt_ids,
        answer: generated_text.clone(),
        generated_ids: generated,
        generated_text,
        sentiment: None,
        sampling,
        trace,
    })
}

/// Continues the user's text as the assistant (e.g. the contract clause).
pub fn generate_text(model: &Model, exec: &mut dyn Executor, text: &str, options: &TaskOptions) -> Result<TaskOutput> {
    run_chat(model, exec, TaskKind::Generate, text, text.to_string(), MAX_NEW_TOKENS, options)
}

/// Answers a question, optionally from a given context.
pub fn answer_question(
    model: &Model,
    exec: &mut dyn Executor,
    question: &str,
    context: Option<&str>,
    options: &TaskOptions,
) -> Result<TaskOutput> {
    let user = match context {
        Some(c) if !c.trim().is_empty() => format!("Answer the question using the context.\n\nContext: {c}\n\nQuestion: {question}"),
        _ => format!("Answer briefly: {question}"),
    };
    run_chat(model, exec, TaskKind::Qa, question, user, MAX_NEW_TOKENS, options)
}

/// Lists the key facts of a text (names, numbers, dates, drugs, conditions).
pub fn extract_key_information(model: &Model, exec: &mut dyn Executor, text: &str, options: &TaskOptions) -> Result<TaskOutput> {
    let user = format!(
        "Extract the key information from this text as a short list (who, what, numbers, dates, medications, conditions).\n\nText: {text}"
    );
    run_chat(model, exec, TaskKind::Extract, text, user, MAX_NEW_TOKENS, options)
}

/// Asks for one word and reads the model's probabilities of the three label words at the
/// first answer position, so the class sees *why* the label was chosen.
pub fn analyze_sentiment(model: &Model, exec: &mut dyn Executor, text: &str, options: &TaskOptions) -> Result<TaskOutput> {
    let user = format!(
        "Is the sentiment of this text positive, negative or neutral? Answer with one word.\n\nText: {text}"
    );
    let mut out = run_chat(model, exec, TaskKind::Sentiment, text, user, 8, options)?;
    let last = analysis::last_logits(&out.trace)?;
    let probs = softmax_with_temperature(&last, 1.0);
    let ids = label_first_tokens(tokenizer(model)?)?;
    let raw: Vec<(&'static str, f32)> = SENTIMENT_LABELS
        .iter()
        .zip(&ids)
        .map(|(&label, ids)| (label, ids.iter().map(|&i| probs[i as usize]).sum()))
        .collect();
    let total: f32 = raw.iter().map(|&(_, p)| p).sum::<f32>().max(f32::MIN_POSITIVE);
    let normalized: Vec<(&'static str, f32)> = raw.iter().map(|&(l, p)| (l, p / total)).collect();
    let label = normalized
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(SENTIMENT_LABELS[0], |&(l, _)| l);
    // The answer is what the model said (sampled); the probabilities say how likely each
    // label was. When its words name no label, the most likely label answers.
    out.answer = label_in(&out.generated_text).unwrap_or(label).to_string();
    out.sentiment = Some(SentimentScores { label, probs: normalized, raw });
    Ok(out)
}

/// The first of the three label words in `text`, as a whole word, any case.
pub fn label_in(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .find_map(|w| SENTIMENT_LABELS.iter().copied().find(|l| *l == w))
}

/// First token of each spelling of each label ("positive", "Positive", " positive", …);
/// a token that starts two labels' spellings counts for neither.
fn label_first_tokens(tok: &Tokenizer) -> Result<Vec<Vec<u32>>> {
    let mut per_label = Vec::new();
    for label in SENTIMENT_LABELS {
        let capital = format!("{}{}", label[..1].to_uppercase(), &label[1..]);
        let mut ids = Vec::new();
        for spelling in [label.to_string(), capital.clone(), format!(" {label}"), format!(" {capital}")] {
            if let Some(&first) = tok.encode(&spelling)?.first()
                && !ids.contains(&first)
            {
                ids.push(first);
            }
        }
        per_label.push(ids);
    }
    let shared: Vec<u32> = per_label
        .iter()
        .enumerate()
        .flat_map(|(i, ids)| {
            ids.iter()
                .filter(|id| per_label.iter().enumerate().any(|(j, o)| j != i && o.contains(id)))
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(per_label
        .into_iter()
        .map(|ids| ids.into_iter().filter(|id| !shared.contains(id)).collect())
        .collect())
}
