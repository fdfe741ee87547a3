//! `glassbox export`: hooks of one pass as `.npz` (or `.npy` for one tensor) for notebooks.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::experiments::npy;
use glassbox_engine::program::step::Program;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{Device, Precision};

use super::model_arg::{load_model, text_ids};
use super::output::outln;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long, conflicts_with = "token_ids", required_unless_present = "token_ids")]
    pub prompt: Option<String>,
    /// Exact token ids, comma-separated, instead of --prompt (BERT: the mask id in place)
    #[arg(long, value_delimiter = ',')]
    pub token_ids: Option<Vec<u32>>,
    /// Hook names, comma-separated: `blocks.3.attn.hook_pattern`, or layer-free
    /// `attn.hook_pattern` for every layer
    #[arg(long)]
    pub hooks: String,
    /// `FILE.npz` (every hook, named by hook) or `FILE.npy` (exactly one tensor)
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[command(flatten)]
    pub engine: super::engine::EngineArgs,
}

pub fn run(model_path: Option<PathBuf>, args: ExportArgs) -> Result<()> {
    let capture = CaptureFilter::parse(&args.hooks)?;
    if capture == CaptureFilter::Nothing {
        bail!("--hooks names no hook");
    }
    let npz = match args.out.extension().and_then(|e| e.to_str()) {
        Some("npz") => true,
        Some("npy") => false,
        _ => bail!("--out {}: give a .npz or .npy file", args.out.display()),
    };
    let model = load_model(model_path.clone())?;
    let absent = capture.not_recorded(&Program::of(&model.config));
    if !absent.is_empty() {
        bail!(
            "--hooks: this model ({} layers, {}) does not record {}; `glassbox trace --capture all --json` lists what it records",
            model.config.n_layers(),
            model.arch.family.name(),
            absent.join(", ")
        );
    }
    let ids = match (&args.token_ids, &args.prompt) {
        (Some(ids), _) if ids.is_empty() => bail!("--token-ids is empty"),
        (Some(ids), _) => ids.clone(),
        (None, prompt) => text_ids(&model, "--prompt", prompt.as_deref().unwrap_or_default())?,
    };
    let mut exec = super::engine::executor(model.clone(), model_path, args.device, Precision::F32, &args.engine)?;
    let trace = exec.forward(&ids, PassOptions::capture(capture))?;
    let entries: Vec<(String, &glassbox_engine::Tensor)> = trace.iter().map(|(k, t)| (k.to_string(), &**t)).collect();
    if npz {
        npy::write_npz(&args.out, &entries)?;
    } else {
        let [(_, t)] = entries.as_slice() else {
            bail!("--out {}: a .npy holds one tensor and {} were captured; use .npz", args.out.display(), entries.len());
        };
        npy::write_npy(&args.out, t)?;
    }
    outln!("{} ({} tensors: {})", args.out.display(), entries.len(), entries.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "))
}
