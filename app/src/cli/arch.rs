//! `glassbox arch`: an architecture's numbers from its config alone (no weights are read):
//! parameters by component, KV-cache values, FLOPs per token, each layer's attention kind.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use glassbox_engine::LlamaConfig;
use glassbox_engine::load::arch_stats::{ArchReport, ArchStats};
use glassbox_engine::load::gguf::{GgufFile, build_config_json};

use super::model_arg::resolve_model_path;
use super::output::outln;

#[derive(Args, Debug)]
pub struct ArchArgs {
    /// Context length for the KV values and attention FLOPs at a context (default: the
    /// model's max_position_embeddings)
    #[arg(long)]
    pub context: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(model_path: Option<PathBuf>, args: ArchArgs) -> Result<()> {
    let path = resolve_model_path(model_path)?;
    let config = read_config(&path)?;
    let context = args.context.unwrap_or(config.max_position_embeddings);
    if context == 0 {
        bail!("--context 0: a context holds at least one token");
    }
    let report = ArchStats::new(&config).report(context);
    if args.json {
        return outln!("{}", serde_json::to_string(&report)?);
    }
    print_text(&report)
}

/// The config of a model folder (only `config.json` is read), a `config.json`-like file, or a
/// `.gguf` file's metadata (the config its conversion would write).
fn read_config(path: &Path) -> Result<LlamaConfig> {
    if path.is_dir() {
        let file = path.join("config.json");
        if !file.is_file() {
            bail!("{}: no config.json in this folder (pass a model folder, a config.json or a .gguf file)", path.display());
        }
        return Ok(LlamaConfig::from_file(&file)?);
    }
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        let gguf = GgufFile::open(path)?;
        let json = build_config_json(&gguf)?;
        return LlamaConfig::from_json(&json.to_string(), path).with_context(|| format!("{}: the config its metadata gives", path.display()));
    }
    Ok(LlamaConfig::from_file(path)?)
}

fn print_text(r: &ArchReport) -> Result<()> {
    let p = &r.params;
    outln!(
        "{}: {} layers, d_model {}, d_mlp {}, {} heads ({} K/V) of {}, vocab {}, context {}{}",
        r.family, r.layers, r.d_model, r.d_mlp, r.heads, r.kv_heads, r.head_dim, r.vocab, r.max_context,
        if r.tied_head { ", tied head" } else { "" }
    )?;
    outln!("parameters  {:>15}", r.params_total)?;
    for (name, n) in [
        ("embedding", p.embedding),
        ("positions", p.positions),
        ("token_types", p.token_types),
        ("attention", p.attention),
        ("mlp", p.mlp),
        ("norms", p.norms),
        ("head", p.head),
    ] {
        if n > 0 {
            outln!("  {name:<11} {n:>14}  {:5.1}%", 100.0 * n as f64 / r.params_total.max(1) as f64)?;
        }
    }
    outln!("FLOPs/token (weight matmuls, LM head included)  {}", r.flops_per_token_forward)?;
    let f = &r.flops_by_component;
    outln!(
        "FLOPs of the last token at the context by component: embedding {}, attention {} + {} over the keys, mlp {}, norms {}, head {} (total {})",
        f.embedding, f.attention, f.attention_at_context, f.mlp, f.norms, f.head, f.total()
    )?;
    outln!("KV values per token                             {}", r.kv_values_per_token)?;
    outln!("at a context of {} tokens: KV values {}, attention FLOPs of the last token {}", r.context, r.kv_values_at_context, r.attention_flops_per_token_at_context)?;
    let mut runs: Vec<(usize, usize, String)> = Vec::new();
    for t in &r.layer_types {
        let kind = match t.window {
            Some(w) => format!("{} {w}", t.kind),
            None => t.kind.to_string(),
        };
        match runs.last_mut() {
            Some(last) if last.2 == kind => last.1 = t.layer,
            _ => runs.push((t.layer, t.layer, kind)),
        }
    }
    let layers: Vec<String> = runs
        .iter()
        .map(|(a, b, kind)| if a == b { format!("{a}: {kind}") } else { format!("{a}-{b}: {kind}") })
        .collect();
    outln!("layers  {}", layers.join(", "))
}
