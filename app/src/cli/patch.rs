//! `glassbox patch`: activation patching, clean → corrupt, one grid of scores.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use glassbox_engine::experiments::patching::{PatchHook, PatchRuns, PatchSetup};
use glassbox_engine::{Device, Precision};
use serde_json::json;

use super::model_arg::{load_model, make_executor, text_ids, token_id};
use super::output::outln;

#[derive(Args, Debug)]
pub struct PatchArgs {
    /// The clean prompt (its answer is --answer)
    #[arg(long)]
    pub clean: String,
    /// The corrupt prompt, as many tokens as the clean one
    #[arg(long)]
    pub corrupt: String,
    /// The clean answer token, e.g. " Paris" (or #ID)
    #[arg(long)]
    pub answer: String,
    /// The corrupt answer token, e.g. " Rome" (or #ID)
    #[arg(long)]
    pub wrong: String,
    /// What to patch: resid_pre, attn_out, mlp_out (per layer and position) or z (per layer and head)
    #[arg(long)]
    pub hook: PatchHook,
    /// Only these layers, e.g. 0-3 (default: all)
    #[arg(long)]
    pub layers: Option<String>,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long)]
    pub json: bool,
}

/// `A-B` or `A` → the layers, checked against the model.
fn layer_range(spec: Option<&str>, n_layers: usize) -> Result<Vec<usize>> {
    let Some(spec) = spec else { return Ok((0..n_layers).collect()) };
    let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| anyhow::anyhow!("--layers: `{spec}` is not A-B"));
    let (a, b) = match spec.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(spec)?, parse(spec)?),
    };
    if a > b || b >= n_layers {
        bail!("--layers: `{spec}` is outside 0-{}", n_layers - 1);
    }
    Ok((a..=b).collect())
}

pub fn run(model_path: Option<PathBuf>, args: PatchArgs) -> Result<()> {
    let model = load_model(model_path)?;
    let setup = PatchSetup {
        clean: text_ids(&model, "--clean", &args.clean)?,
        corrupt: text_ids(&model, "--corrupt", &args.corrupt)?,
        answer: token_id(&model, "--answer", &args.answer)?,
        wrong: token_id(&model, "--wrong", &args.wrong)?,
    };
    let layers = layer_range(args.layers.as_deref(), model.config.n_layers())?;
    let mut exec = make_executor(model.clone(), args.device, Precision::F32)?;
    let start = Instant::now();
    let runs = PatchRuns::new(exec.as_mut(), &setup)?;
    if runs.clean_ld() == runs.corrupt_ld() {
        bail!("the clean and corrupt runs have the same logit difference ({}): nothing to restore", runs.clean_ld());
    }
    let columns = args.hook.columns(setup.corrupt.len(), model.config.n_heads());
    let total = layers.len() * columns;
    let mut scores = Vec::new();
    let report = |done: usize| {
        if done * 10 / total.max(1) != (done + 1) * 10 / total.max(1) || done + 1 == total {
            eprintln!("glassbox: patched {}/{total} ({:.1} s)", done + 1, start.elapsed().as_secs_f64());
        }
        ControlFlow::<()>::Continue(())
    };
    for (i, &layer) in layers.iter().enumerate() {
        let mut row = Vec::with_capacity(columns);
        for column in 0..columns {
            row.push(runs.score(exec.as_mut(), &setup, args.hook, layer, column)?);
            let _ = report(i * columns + column);
        }
        scores.push(row);
    }
    let seconds = start.elapsed().as_secs_f64();
    if args.json {
        let out = json!({
            "hook": args.hook.name(),
            "device": exec.device_name(),
            "layers": layers,
            "clean_ld": runs.clean_ld(),
            "corrupt_ld": runs.corrupt_ld(),
            "scores": scores,
            "passes": total + 2,
            "seconds": seconds,
        });
        return outln!("{}", serde_json::to_string(&out)?);
    }
    outln!("{} patched clean → corrupt on {} ({} passes, {seconds:.1} s)", args.hook.name(), exec.device_name(), total + 2)?;
    outln!("logit difference: clean {:.3}, corrupt {:.3}", runs.clean_ld(), runs.corrupt_ld())?;
    for (layer, row) in layers.iter().zip(&scores) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:>6.2}")).collect();
        outln!("L{layer:<3} {}", cells.join(" "))?;
    }
    Ok(())
}
