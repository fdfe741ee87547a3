//! `glassbox grad`: one forward and backward pass; every parameter's gradient and the main
//! hook gradients written as safetensors (the layout of the fixtures' `grad.safetensors`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use glassbox_engine::Model;
use glassbox_engine::train::{self, Objective, Params, checkpoint};
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
    /// Masked-LM labels, one per token, comma-separated: the id to predict, or -100 where a
    /// position is not scored (BERT-style models; causal models predict every next token)
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub mlm_labels: Option<Vec<i64>>,
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
    let objective = objective(&model, &args, ids.len())?;
    if objective == Objective::NextToken && ids.len() < 2 {
        bail!("--token-ids needs at least 2 tokens: the loss predicts each token from the ones before it");
    }
    let params = Params::load_dir(&model.source.dir, &model.config)
        .with_context(|| format!("reading the weights of {}", model.source.dir.display()))?;
    let grads = train::gradients_for(&model, &params, &ids, &objective)?;
    checkpoint::save_gradients(&args.out, &model.config, &grads, &ids)
        .with_context(|| format!("writing {}", args.out.display()))?;
    if args.json {
        let out = json!({
            "loss": grads.loss.loss,
            "token_ids": ids,
            "per_position_loss": grads.loss.per_position,
            "objective": if objective == Objective::NextToken { "next-token" } else { "masked-lm" },
            "grad_norm": grads.params.global_norm(),
            "out": args.out,
        });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("loss {:.6} over {} predictions; gradients of {} parameters written to {}",
            grads.loss.loss, grads.loss.per_position.len(), grads.params.len(), args.out.display());
    }
    Ok(())
}

/// A masked LM needs its labels; a causal LM predicts every next token and takes none.
fn objective(model: &Model, args: &GradArgs, n_ids: usize) -> Result<Objective> {
    match (&args.mlm_labels, model.arch.generates()) {
        (Some(labels), false) => {
            if labels.len() != n_ids {
                bail!("--mlm-labels has {} values for {n_ids} tokens: give one per token (-100 where a position is not scored)", labels.len());
            }
            Ok(Objective::MaskedLm { labels: labels.clone() })
        }
        (None, false) => bail!("this is a masked language model ({}): pass --mlm-labels, one per token, the id to predict or -100 where a position is not scored", model.arch.family.name()),
        (Some(_), true) => bail!("--mlm-labels is for masked language models; this {} model is trained on every next token", model.arch.family.name()),
        (None, true) => Ok(Objective::NextToken),
    }
}
