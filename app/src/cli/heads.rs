//! `glassbox heads`: the head catalog (previous-token, first-token, induction, duplicate).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::experiments::head_catalog::{self, HeadScores};
use glassbox_engine::{Device, Precision};
use serde_json::json;

use super::model_arg::{load_model, make_executor, text_ids};
use super::output::outln;

#[derive(Args, Debug)]
pub struct HeadsArgs {
    /// Exact token ids, comma-separated (default: the probe — seeded random tokens, twice)
    #[arg(long, value_delimiter = ',', conflicts_with = "prompt")]
    pub token_ids: Option<Vec<u32>>,
    /// Text instead of ids
    #[arg(long)]
    pub prompt: Option<String>,
    /// The probe's length (each half) and seed
    #[arg(long, default_value_t = 20)]
    pub probe_len: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long)]
    pub json: bool,
}

pub fn run(model_path: Option<PathBuf>, args: HeadsArgs) -> Result<()> {
    let model = load_model(model_path)?;
    let ids = match (&args.token_ids, &args.prompt) {
        (Some(ids), _) if ids.is_empty() => bail!("--token-ids is empty"),
        (Some(ids), _) => ids.clone(),
        (None, Some(p)) => text_ids(&model, "--prompt", p)?,
        (None, None) => head_catalog::probe_sequence(model.config.vocab_size, args.probe_len.max(2), args.seed),
    };
    let mut exec = make_executor(model.clone(), args.device, Precision::F32)?;
    let trace = exec.forward(&ids, PassOptions::capture(head_catalog::capture()))?;
    let s = head_catalog::head_scores(&trace, model.config.n_layers())?;
    if args.json {
        let out = json!({
            "device": exec.device_name(),
            "token_ids": ids,
            "previous_token": s.previous_token,
            "first_token": s.first_token,
            "induction": s.induction,
            "duplicate": s.duplicate,
        });
        return outln!("{}", serde_json::to_string(&out)?);
    }
    outln!("{} tokens on {}; the strongest head of each kind:", ids.len(), exec.device_name())?;
    for (name, scores) in [("previous-token", &s.previous_token), ("first-token", &s.first_token), ("induction", &s.induction), ("duplicate", &s.duplicate)] {
        if let Some((l, h, v)) = HeadScores::best(scores) {
            outln!("  {name:<15} L{l}.H{h}  {v:.3}")?;
        }
    }
    Ok(())
}
