//! `glassbox task generate|sentiment|qa|extract --text TEXT`: the article's four uses on the
//! instruct model, with the trace behind each answer summarized.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use glassbox_engine::tasks::{self, TaskKind, TaskOutput};
use serde_json::json;

use super::output::outln;
use super::model_arg::{load_model, make_executor};
use glassbox_engine::{Device, Precision};

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum TaskName {
    Generate,
    Sentiment,
    Qa,
    Extract,
}

#[derive(Args, Debug)]
pub struct TaskArgs {
    #[arg(value_enum)]
    pub task: TaskName,
    /// The input text (for qa: the question)
    #[arg(long, required_unless_present = "preset")]
    pub text: Option<String>,
    /// qa only: a passage to answer from
    #[arg(long)]
    pub context: Option<String>,
    /// One of the article's examples instead of --text: medical-note, contract, stock-news, smartwatch-review, llama-question
    #[arg(long, conflicts_with = "text")]
    pub preset: Option<String>,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long)]
    pub json: bool,
}

pub fn run(model_path: Option<PathBuf>, args: TaskArgs) -> Result<()> {
    let text = match (&args.text, &args.preset) {
        (Some(t), _) => t.clone(),
        (None, Some(name)) => {
            let names: Vec<&str> = tasks::PRESETS.iter().map(|p| p.name).collect();
            tasks::preset(name)
                .with_context(|| format!("no preset `{name}` (presets: {})", names.join(", ")))?
                .text
                .to_string()
        }
        (None, None) => bail!("give --text or --preset"),
    };
    let model = load_model(model_path)?;
    let mut exec = make_executor(model.clone(), args.device, Precision::F32)?;
    let exec = exec.as_mut();
    let out = match args.task {
        TaskName::Generate => tasks::generate_text(&model, exec, &text)?,
        TaskName::Sentiment => tasks::analyze_sentiment(&model, exec, &text)?,
        TaskName::Qa => tasks::answer_question(&model, exec, &text, args.context.as_deref())?,
        TaskName::Extract => tasks::extract_key_information(&model, exec, &text)?,
    };
    if args.json {
        outln!("{}", serde_json::to_string(&to_json(&out))?)?;
    } else {
        print_text(&out)?;
    }
    Ok(())
}

fn to_json(out: &TaskOutput) -> serde_json::Value {
    json!({
        "task": out.kind.name(),
        "input": out.input,
        "prompt": out.prompt,
        "prompt_ids": out.prompt_ids,
        "answer": out.answer,
        "generated_ids": out.generated_ids,
        "generated_text": out.generated_text,
        "sentiment": out.sentiment.as_ref().map(|s| json!({
            "label": s.label,
            "probs": s.probs.iter().map(|(l, p)| (l.to_string(), json!(p))).collect::<serde_json::Map<_, _>>(),
            "raw_probs": s.raw.iter().map(|(l, p)| (l.to_string(), json!(p))).collect::<serde_json::Map<_, _>>(),
        })),
        "trace": {"n_tokens": out.trace.n_tokens(), "hooks": out.trace.len(), "bytes": out.trace.bytes()},
    })
}

fn print_text(out: &TaskOutput) -> Result<()> {
    outln!("task: {}   ({} prompt tokens; the trace holds {} hooks)", out.kind.name(), out.prompt_ids.len(), out.trace.len())?;
    if let Some(s) = &out.sentiment {
        outln!("label: {}", s.label)?;
        for ((label, p), (_, raw)) in s.probs.iter().zip(&s.raw) {
            outln!("  {label:<9} {p:.3}   (raw probability of its first tokens {raw:.4})")?;
        }
        outln!("the model's own words: {}", out.generated_text)?;
    } else {
        outln!("{}", out.answer)?;
    }
    if out.kind == TaskKind::Sentiment && out.sentiment.is_none() {
        outln!("(no label scores)")?;
    }
    Ok(())
}
