//! `glassbox dla`: direct logit attribution at the last position.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::experiments::attribution;
use glassbox_engine::{Device, Precision};
use serde_json::json;

use super::model_arg::{load_model, make_executor, text_ids, token_id};
use super::output::outln;

#[derive(Args, Debug)]
pub struct DlaArgs {
    #[arg(long)]
    pub prompt: String,
    /// The token whose logit is split, e.g. " Paris" (or #ID)
    #[arg(long)]
    pub target: String,
    /// Split the logit difference target − this token instead
    #[arg(long)]
    pub minus: Option<String>,
    /// How many of the largest components to print (text output)
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long)]
    pub json: bool,
}

pub fn run(model_path: Option<PathBuf>, args: DlaArgs) -> Result<()> {
    let model = load_model(model_path)?;
    let ids = text_ids(&model, "--prompt", &args.prompt)?;
    let target = token_id(&model, "--target", &args.target)?;
    let minus = args.minus.as_deref().map(|m| token_id(&model, "--minus", m)).transpose()?;
    let mut exec = make_executor(model.clone(), args.device, Precision::F32)?;
    let trace = exec.forward(&ids, PassOptions::capture(attribution::capture()))?;
    let a = attribution::attribute(&model, &trace, target, minus)?;
    if args.json {
        let components: Vec<_> = a.components.iter().map(|c| json!({"name": c.name, "value": c.value})).collect();
        let out = json!({
            "device": exec.device_name(),
            "token_ids": ids,
            "target_id": target,
            "minus_id": minus,
            "logit": a.logit,
            "sum_of_components": a.sum(),
            "components": components,
        });
        return outln!("{}", serde_json::to_string(&out)?);
    }
    let what = match minus {
        Some(m) => format!("logit[{target}] − logit[{m}]"),
        None => format!("logit[{target}]"),
    };
    outln!("{what} = {:.4}; the components sum to {:.4}", a.logit, a.sum())?;
    let mut ranked: Vec<_> = a.components.iter().collect();
    ranked.sort_by(|x, y| y.value.abs().total_cmp(&x.value.abs()));
    for c in ranked.into_iter().take(args.top) {
        outln!("  {:<8} {:>+9.4}", c.name, c.value)?;
    }
    Ok(())
}
