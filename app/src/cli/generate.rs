//! `glassbox generate`: greedy unless a sampling flag is given; stops at end-of-sequence.

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use glassbox_engine::exec::executor::{PassOptions, generate_with};
use glassbox_engine::exec::sampling::SamplingParams;
use serde_json::json;

use super::output::{out, outln};
use super::model_arg::{input_ids, load_model};
use super::{InputArgs, InterventionArgs};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub edits: InterventionArgs,
    #[command(flatten)]
    pub engine: super::engine::EngineArgs,
    #[arg(long, default_value_t = 32)]
    pub max_new_tokens: usize,
    /// Sampling temperature (sampling is on when any of temperature/top-k/top-p is given)
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

impl GenerateArgs {
    fn sampling(&self) -> Result<SamplingParams> {
        if self.temperature.is_none() && self.top_k.is_none() && self.top_p.is_none() {
            return Ok(SamplingParams::greedy());
        }
        let temperature = self.temperature.unwrap_or(1.0);
        let top_p = self.top_p.unwrap_or(1.0);
        anyhow::ensure!(temperature.is_finite() && temperature >= 0.0, "--temperature must be ≥ 0");
        anyhow::ensure!(top_p > 0.0 && top_p <= 1.0, "--top-p must be in (0, 1]");
        Ok(SamplingParams { temperature, top_k: self.top_k.unwrap_or(0), top_p, seed: self.seed })
    }
}

pub fn run(model_path: Option<PathBuf>, args: GenerateArgs) -> Result<()> {
    let sampling = args.sampling()?;
    let model = load_model(model_path.clone())?;
    if !model.arch.generates() {
        anyhow::bail!(
            "{} is a masked language model: it fills in blanks rather than generating; run `glassbox trace --token-ids … --json` with the mask id in place to see its predictions",
            model.arch.family.name()
        );
    }
    let ids = input_ids(&model, &args.input)?;
    let mut exec = super::engine::executor(model.clone(), model_path, args.input.device, args.input.precision, &args.engine)?;
    let eos = model.config.eos_ids();
    let context = model.config.max_position_embeddings;
    // The prompt fills `ids.len()` positions and every new token but the last one more.
    let room = (context + 1).saturating_sub(ids.len());
    if room == 0 {
        anyhow::bail!(
            "the prompt's {} tokens leave no room in the model's context of {context} positions",
            ids.len()
        );
    }
    let max_new = args.max_new_tokens.min(room);
    if max_new < args.max_new_tokens {
        eprintln!(
            "glassbox: warning: --max-new-tokens {} runs past the model's context of {context} \
             positions (the prompt has {} tokens); stopping after {max_new} new tokens",
            args.max_new_tokens,
            ids.len()
        );
    }
    let streaming = !args.json && model.tokenizer.is_some();
    let mut generated_so_far = Vec::new();
    let mut write_error: Option<anyhow::Error> = None;
    // A failed write (a closed pipe: `glassbox generate … | head -c 10`) stops the
    // generation at once instead of computing tokens nobody reads.
    let mut on_token = |id: u32| {
        generated_so_far.push(id);
        if streaming
            && let Some(t) = &model.tokenizer
            && let Err(e) = out!("{}", terminal_text(&t.display(id)))
        {
            write_error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    };
    let c = &model.config;
    let options = args.edits.apply(PassOptions { sampling, ..PassOptions::default() }, c.n_layers(), c.n_heads())?;
    let result = generate_with(exec.as_mut(), &ids, max_new, &options, &eos, &mut on_token);
    if let Some(e) = write_error {
        return Err(e);
    }
    // On a failure part-way, what was generated is still printed (with the error in the
    // JSON), then the error is returned.
    let (generated, failure) = match result {
        Ok(g) => (g, None),
        Err(e) => (generated_so_far, Some(anyhow::Error::from(e))),
    };
    let stop_reason = if failure.is_some() {
        "error"
    } else if generated.last().is_some_and(|id| eos.contains(id)) {
        "eos"
    } else if generated.len() >= args.max_new_tokens {
        "max_new_tokens"
    } else {
        "context"
    };
    let text = match &model.tokenizer {
        Some(t) => t.decode(&generated)?,
        None => String::new(),
    };
    // What the cache holds at the end, beside what it would hold if no layer dropped rows
    // (a sliding-window layer on the CPU keeps only what a later query can see).
    let kv_bytes = exec.kv_cache_bytes();
    let kv_bytes_every_row = glassbox_engine::program::graph::kv_cache_bytes(c, c.n_kv_heads(), exec.cache_len(), std::mem::size_of::<f32>()) as usize;
    if args.json {
        let mut out = json!({"token_ids": ids, "generated_ids": generated, "text": text,
                             "stop_reason": stop_reason, "kv_cache_bytes": kv_bytes,
                             "kv_cache_bytes_every_row": kv_bytes_every_row});
        if let Some(e) = &failure {
            out["error"] = json!(format!("{e:#}"));
        }
        outln!("{}", serde_json::to_string(&out)?)?;
    } else {
        if streaming {
            outln!()?;
        } else {
            outln!("{generated:?}")?;
        }
        eprintln!("glassbox: KV cache: {} held for {} positions ({} if every layer kept every position)", size(kv_bytes), exec.cache_len(), size(kv_bytes_every_row));
    }
    match failure {
        Some(e) => Err(e.context(format!("generation stopped after {} tokens", generated.len()))),
        None => Ok(()),
    }
}

/// Bytes for a person: bytes, KiB or MiB.
fn size(bytes: usize) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.2} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// Generated text for a terminal: newlines and tabs kept, other control characters (an
/// escape sequence a model or tokenizer could emit) shown as `\u{1b}`.
fn terminal_text(text: &str) -> String {
    text.split_inclusive(['\n', '\t'])
        .map(|part| {
            let (body, end) = match part.strip_suffix(['\n', '\t']) {
                Some(b) => (b, &part[b.len()..]),
                None => (part, ""),
            };
            format!("{}{end}", glassbox_engine::error::printable(body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_text_keeps_lines_and_escapes_the_rest() {
        assert_eq!(super::terminal_text("a\nb\tc\u{1b}[2J"), "a\nb\tc\\u{1b}[2J");
    }
}
