//! `glassbox grad`: one forward and backward pass; every parameter's gradient and the main
//! hook gradients written as safetensors (the layout of the fixtures' `grad.safetensors`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use glassbox_engine::train::{self, Params, checkpoint};
use serde_json::json;

use super::model_arg::load_model;

#[derive(Args, Debug)]
pub struct GradArgs {
    /// Token ids, comma-separated (at least 2: the loss predicts each next token)
    #[arg(long, value_delimiter = ',', required_unless_present = "prompt")]
    pub token_ids: Option<Vec<u32>>,
    /// Text instead of ids (needs the model's tokenizer.json)
    #[arg(long, conflicts_with = "token_ids")]
    pub prompt: Option<String>,
    /// Output file (.safetensors)
    #[arg(long)]
    pub out: PathBuf,
    /// Print {"loss", ...} as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(model_path: Option<PathBuf>, args: GradArgs) -> Result<()> {
    let model = load_model(model_path)?;
    let ids = match (&args.token_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(p)) => model
            .tokenizer
            .as_ref()
            .context("this model folder has no tokenizer.json: pass --token-ids instead of --prompt")?
            .encode(p)?,
        (None, None) => bail!("pass --token-ids or --prompt"),
    };
    if ids.len() < 2 {
        bail!("--token-ids needs at least 2 tokens: the loss predicts each token from the ones before it");
    }
    let params = Params::load_dir(&model.source.dir, &model.config)
        .with_context(|| format!("reading the weights of {}", model.source.dir.display()))?;
    let grads = train::gradients_of(&model, &params, &ids)?;
    checkpoint::save_gradients(&args.out, &model.config, &grads, &ids)
        .with_context(|| format!("writing {}", args.out.display()))?;
    if args.json {
        let out = json!({
            "loss": grads.loss.loss,
            "token_ids": ids,
            "per_position_loss": grads.loss.per_position,
            "grad_norm": grads.params.global_norm(),
            "out": args.out,
        });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("loss {:.6} over {} predictions; gradients of {} parameters written to {}",
            grads.loss.loss, ids.len() - 1, grads.params.len(), args.out.display());
    }
    Ok(())
}
