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
    /// Also record these hooks (comma-separated names such as `attn.hook_pattern` or
    /// `blocks.3.hook_mlp_out`, or `all`); the JSON then reports how much the trace holds
    #[arg(long, value_name = "HOOKS")]
    pub capture: Option<String>,
    /// Print JSON (the fields acceptance checks read)
    #[arg(long)]
    pub json: bool,
}

/// What the summary reads (the embedding, every residual, the logits), plus `extra`.
fn capture_filter(extra: Option<&str>) -> Result<CaptureFilter> {
    let needed = [HookKind::Embed, HookKind::Block(BlockHook::ResidPost), HookKind::Logits];
    Ok(match extra.map(str::trim) {
        Some("all") => CaptureFilter::All,
        None | Some("") => CaptureFilter::kinds(needed),
        Some(list) => match CaptureFilter::parse(list).map_err(|e| anyhow::anyhow!("--capture: {e}"))? {
            CaptureFilter::Select { keys, mut kinds } => {
                kinds.extend(needed);
                CaptureFilter::Select { keys, kinds }
            }
            _ => CaptureFilter::kinds(needed),
        },
    })
}

pub fn run(model_path: Option<PathBuf>, args: TraceArgs) -> Result<()> {
    let model = load_model(model_path)?;
    let ids = input_ids(&model, &args.input)?;
    let mut exec = make_executor(model.clone(), args.input.device, args.input.precision)?;
    let capture = capture_filter(args.capture.as_deref())?;
    let c = &model.config;
    let options = args.edits.apply(PassOptions::capture(capture), c.n_layers(), c.n_heads())?;
    let trace = exec.forward(&ids, options)?;
    let (captured_hooks, captured_mib) = (trace.len(), trace.bytes() as f64 / (1 << 20) as f64);
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
            "captured_hooks": captured_hooks,
            "captured_mib": captured_mib,
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
