//! `glassbox task generate|sentiment|qa|extract --text TEXT`: the article's four uses on the
//! instruct model, with the trace behind each answer summarized. `glassbox task --list`
//! prints the presets (`--json`: `name`, `task`, `text`, `from_article`). Answers are sampled
//! (default temperature 0.7, top-p 0.9, a fresh seed each run, printed so a run can be
//! repeated with `--seed`); `--temperature 0` is greedy.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::article::tasks::{self, TaskKind, TaskOptions, TaskOutput};
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
    #[arg(value_enum, required_unless_present = "list")]
    pub task: Option<TaskName>,
    /// Print the presets (the article's examples and Glassbox's own) and exit
    #[arg(long)]
    pub list: bool,
    /// The input text (for qa: the question)
    #[arg(long, required_unless_present_any = ["preset", "list"])]
    pub text: Option<String>,
    /// qa only: a passage to answer from
    #[arg(long)]
    pub context: Option<String>,
    /// A preset instead of --text (`--list` names them; `article-*` are the article's own examples)
    #[arg(long, conflicts_with = "text")]
    pub preset: Option<String>,
    /// Sampling temperature; 0 = greedy (always the most likely token)
    #[arg(long, default_value_t = tasks::DEFAULT_TEMPERATURE)]
    pub temperature: f32,
    /// Keep the smallest set of tokens whose probability reaches p (1 = off)
    #[arg(long, default_value_t = tasks::DEFAULT_TOP_P)]
    pub top_p: f32,
    /// Keep only the k most likely tokens (0 = off)
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Seed of the draw (default: a new one each run, printed)
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long)]
    pub json: bool,
}

/// The sampling a run uses; a bad value is a one-line error naming the flag.
fn options(args: &TaskArgs) -> Result<TaskOptions> {
    if !(args.temperature >= 0.0 && args.temperature.is_finite()) {
        bail!("--temperature must be 0 (greedy) or more, got {}", args.temperature);
    }
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1], got {}", args.top_p);
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    Ok(TaskOptions {
        sampling: SamplingParams {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed,
        },
    })
}

/// Every preset, one line each (or one JSON array): the article's examples are marked, so a
/// class can tell them from Glassbox's own.
fn list(json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(&tasks::PRESETS[..])?)?;
        return Ok(());
    }
    for p in &tasks::PRESETS {
        let whose = if p.from_article { "article" } else { "glassbox" };
        outln!("{:<20} {:<9} {:<8} {}", p.name, p.kind.name(), whose, p.text)?;
    }
    Ok(())
}

pub fn run(model_path: Option<PathBuf>, args: TaskArgs) -> Result<()> {
    if args.list {
        return list(args.json);
    }
    let Some(task) = args.task else { bail!("name a task: generate, sentiment, qa or extract") };
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
    let opts = options(&args)?;
    let model = load_model(model_path)?;
    let mut exec = make_executor(model.clone(), args.device, Precision::F32)?;
    let exec = exec.as_mut();
    let out = match task {
        TaskName::Generate => tasks::generate_text(&model, exec, &text, &opts)?,
        TaskName::Sentiment => tasks::analyze_sentiment(&model, exec, &text, &opts)?,
        TaskName::Qa => tasks::answer_question(&model, exec, &text, args.context.as_deref(), &opts)?,
        TaskName::Extract => tasks::extract_key_information(&model, exec, &text, &opts)?,
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
        "sampling": {
            "temperature": out.sampling.temperature,
            "top_k": out.sampling.top_k,
            "top_p": out.sampling.top_p,
            "seed": out.sampling.seed,
            "greedy": out.sampling.is_greedy(),
        },
        "trace": {"n_tokens": out.trace.n_tokens(), "hooks": out.trace.len(), "bytes": out.trace.bytes()},
    })
}

fn print_text(out: &TaskOutput) -> Result<()> {
    outln!("task: {}   ({} prompt tokens; the trace holds {} hooks)", out.kind.name(), out.prompt_ids.len(), out.trace.len())?;
    let p = out.sampling;
    if p.is_greedy() {
        outln!("decoding: greedy (temperature 0)")?;
    } else {
        outln!(
            "decoding: sampled, temperature {} · top-p {} · top-k {} · seed {} (repeat with --seed {})",
            p.temperature,
            p.top_p,
            if p.top_k == 0 { "off".to_string() } else { p.top_k.to_string() },
            p.seed,
            p.seed
        )?;
    }
    if let Some(s) = &out.sentiment {
        outln!("answer: {}   (what the model wrote: {:?})", out.answer, out.generated_text)?;
        outln!("most likely label: {}", s.label)?;
        for ((label, p), (_, raw)) in s.probs.iter().zip(&s.raw) {
            outln!("  {label:<9} {p:.3}   (raw probability of its first tokens {raw:.4})")?;
        }
    } else {
        outln!("{}", out.answer)?;
    }
    if out.kind == TaskKind::Sentiment && out.sentiment.is_none() {
        outln!("(no label scores)")?;
    }
    Ok(())
}
