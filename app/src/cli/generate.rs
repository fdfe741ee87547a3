//! `glassbox generate`: greedy unless a sampling flag is given; stops at end-of-sequence.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use glassbox_engine::executor::{PassOptions, generate_with};
use glassbox_engine::sampling::SamplingParams;
use serde_json::json;

use super::model_arg::{input_ids, load_model, make_executor};
use super::{InputArgs, InterventionArgs};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub edits: InterventionArgs,
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
    let model = load_model(model_path)?;
    let ids = input_ids(&model, &args.input)?;
    let mut exec = make_executor(model.clone(), args.input.device, args.input.precision)?;
    let eos = model.config.eos_ids();
    let streaming = !args.json && model.tokenizer.is_some();
    let mut on_token = |id: u32| {
        if streaming && let Some(t) = &model.tokenizer {
            print!("{}", t.display(id));
            let _ = std::io::stdout().flush();
        }
    };
    let c = &model.config;
    let options = args.edits.apply(PassOptions { sampling, ..PassOptions::default() }, c.n_layers(), c.n_heads())?;
    let generated = generate_with(exec.as_mut(), &ids, args.max_new_tokens, &options, &eos, &mut on_token)?;
    let text = match &model.tokenizer {
        Some(t) => t.decode(&generated)?,
        None => String::new(),
    };
    if args.json {
        let out = json!({"token_ids": ids, "generated_ids": generated, "text": text});
        println!("{}", serde_json::to_string(&out)?);
    } else if streaming {
        println!();
    } else {
        println!("{generated:?}");
    }
    Ok(())
}
