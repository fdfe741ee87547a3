//! `glassbox trace`: one forward pass, summarized as JSON or text.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use glassbox_engine::analysis;
use glassbox_engine::executor::PassOptions;
use glassbox_engine::hooks::{BlockHook, HookKind};
use glassbox_engine::trace::CaptureFilter;
use serde_json::json;

use super::output::outln;
use super::model_arg::{input_ids, load_model, make_executor, token_texts};
use super::{InputArgs, InterventionArgs};

#[derive(Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub edits: InterventionArgs,
    /// How many of the most likely next tokens to list
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Print JSON (the fields acceptance checks read)
    #[arg(long)]
    pub json: bool,
}

pub fn run(model_path: Option<PathBuf>, args: TraceArgs) -> Result<()> {
    let model = load_model(model_path)?;
    let ids = input_ids(&model, &args.input)?;
    let mut exec = make_executor(model.clone(), args.input.device, args.input.precision)?;
    let capture = CaptureFilter::kinds([HookKind::Embed, HookKind::Block(BlockHook::ResidPost), HookKind::Logits]);
    let c = &model.config;
    let options = args.edits.apply(PassOptions::capture(capture), c.n_layers(), c.n_heads())?;
    let trace = exec.forward(&ids, options)?;
    if let Some(bad) = trace.non_finite {
        eprintln!("glassbox: warning: {bad}");
    }
    let n_layers = model.config.n_layers();
    let last = analysis::last_logits(&trace)?;
    let argmax = analysis::argmax_rows(&trace)?;
    let top = analysis::top_k(&last, args.top_k, 1.0);
    let tokens = token_texts(&model, &ids);
    let top_json: Vec<_> = top
        .iter()
        .map(|r| json!({"id": r.id, "token": token_texts(&model, &[r.id])[0], "logit": r.logit, "prob": r.prob}))
        .collect();
    let norms = analysis::residual_norms(&trace, n_layers)?;
    let lens = analysis::logit_lens_at(&model, &trace, ids.len() - 1, 5)?;
    if args.json {
        let out = json!({
            "device": exec.device_name(),
            "token_ids": ids,
            "tokens": tokens,
            "argmax": argmax,
            "top_k": top_json,
            "residual_norms": norms,
            "logit_lens": lens,
        });
        outln!("{}", serde_json::to_string(&out)?)?;
        return Ok(());
    }
    outln!("device: {}", exec.device_name())?;
    outln!("tokens ({}):", ids.len())?;
    for (id, t) in ids.iter().zip(&tokens) {
        outln!("  {id:>6}  {t:?}")?;
    }
    outln!("next token, top {}:", top.len())?;
    for r in &top {
        outln!("  {:>6}  {:<20} logit {:>8.3}  p {:.4}", r.id, format!("{:?}", token_texts(&model, &[r.id])[0]), r.logit, r.prob)?;
    }
    outln!("logit lens (top-1 at the last position, per residual):")?;
    for (k, ids) in lens.iter().enumerate() {
        let label = if k == 0 { "embed".to_string() } else { format!("block {}", k - 1) };
        outln!("  {label:<9} {:?}", token_texts(&model, &ids[..1])[0])?;
    }
    Ok(())
}
