//! `glassbox compare`: run B beside run A and say where they part.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;
use glassbox_engine::exec::executor::{PassOptions, Switches};
use glassbox_engine::experiments::compare::{self, Comparison};
use glassbox_engine::experiments::quantize::{WeightQuant, quantized_model};
use glassbox_engine::{ActivationPrecision, Device, Precision};
use serde_json::json;

use super::model_arg::{load_model, make_executor, text_ids, token_texts};
use super::output::outln;
use super::InterventionArgs;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run A's prompt (and B's, unless --prompt-b)
    #[arg(long)]
    pub prompt: String,
    /// B's prompt: as many tokens as A's (a clean/corrupted pair)
    #[arg(long)]
    pub prompt_b: Option<String>,
    /// B rounds every activation to this precision: f32, f16 or bf16
    #[arg(long, default_value = "f32")]
    pub activations_b: ActivationPrecision,
    /// B's weights rounded through this format: f32, bf16, int8 or q4; or f32-ref, the f32
    /// reference of a model kept as downloaded (its blocks dequantized once)
    #[arg(long, default_value = "f32")]
    pub weights_b: WeightQuant,
    /// B runs without RoPE
    #[arg(long)]
    pub no_rope_b: bool,
    /// B runs without the causal mask (bidirectional, BERT-style)
    #[arg(long)]
    pub no_causal_mask_b: bool,
    /// B's ablations (same syntax as on `trace`)
    #[command(flatten)]
    pub edits: InterventionArgs,
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long)]
    pub json: bool,
}

pub fn run(model_path: Option<PathBuf>, args: CompareArgs) -> Result<()> {
    let model = load_model(model_path)?;
    let ids_a = text_ids(&model, "--prompt", &args.prompt)?;
    let ids_b = match &args.prompt_b {
        Some(p) => text_ids(&model, "--prompt-b", p)?,
        None => ids_a.clone(),
    };
    if ids_a.len() != ids_b.len() {
        bail!("--prompt-b has {} tokens and --prompt {}: compare prompts of the same length", ids_b.len(), ids_a.len());
    }
    let c = &model.config;
    let options_b = PassOptions {
        activations: args.activations_b,
        switches: Switches { no_rope: args.no_rope_b, no_causal_mask: args.no_causal_mask_b },
        ..args.edits.apply(PassOptions::default(), c.n_layers(), c.n_heads())?
    };
    let mut exec_a = make_executor(model.clone(), args.device, Precision::F32)?;
    let a = exec_a.forward(&ids_a, PassOptions::default())?;
    drop(exec_a);
    let model_b = match args.weights_b {
        WeightQuant::F32 => model.clone(),
        q => Arc::new(quantized_model(&model, q)?),
    };
    let b = make_executor(model_b, args.device, Precision::F32)?.forward(&ids_b, options_b)?;
    let cmp = compare::compare(&a, &b, args.top_k)?;
    report(&model, &cmp, args.json)
}

fn report(model: &glassbox_engine::Model, cmp: &Comparison, as_json: bool) -> Result<()> {
    let top = |r: &[glassbox_engine::experiments::analysis::Ranked]| -> Vec<serde_json::Value> {
        r.iter().map(|e| json!({"id": e.id, "token": token_texts(model, &[e.id])[0], "logit": e.logit, "prob": e.prob})).collect()
    };
    if as_json {
        let hooks: Vec<_> = cmp.hooks.iter().map(|h| json!({"hook": h.key.to_string(), "rel_l2": h.rel_l2})).collect();
        let out = json!({
            "first_apart": cmp.first_apart.map(|k| k.to_string()),
            "residual_rel_l2": cmp.residual,
            "kl": cmp.kl,
            "top_a": top(&cmp.top_a),
            "top_b": top(&cmp.top_b),
            "hooks": hooks,
        });
        return outln!("{}", serde_json::to_string(&out)?);
    }
    match cmp.first_apart {
        Some(k) => outln!("the runs first part at {k}")?,
        None => outln!("the runs agree at every hook (relative L2 ≤ {:e})", compare::APART)?,
    }
    outln!("residual stream, ‖B − A‖ / ‖A‖ after the embedding and each block:")?;
    for (i, d) in cmp.residual.iter().enumerate() {
        let label = if i == 0 { "embed".to_string() } else { format!("L{}", i - 1) };
        outln!("  {label:<6} {d:.3e}")?;
    }
    if let Some(kl) = cmp.kl.last() {
        outln!("KL(A ‖ B) of the next token at the last position: {kl:.4e}")?;
    }
    outln!("{:<28} {}", "A", "B")?;
    for (x, y) in cmp.top_a.iter().zip(&cmp.top_b) {
        let cell = |e: &glassbox_engine::experiments::analysis::Ranked| format!("{:<14} {:.3}", format!("{:?}", token_texts(model, &[e.id])[0]), e.prob);
        outln!("{:<28} {}", cell(x), cell(y))?;
    }
    Ok(())
}
