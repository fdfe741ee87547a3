//! `glassbox trace`: one forward pass, summarized as JSON or text.

use std::path::PathBuf;

use std::ops::ControlFlow;

use anyhow::{Context, Result, bail};
use clap::Args;
use glassbox_engine::experiments::analysis;
use glassbox_engine::long::budget::{self, DEFAULT_BUDGET, MIB, Plan};
use glassbox_engine::long::overview::{OverviewOptions, run_overview};
use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::program::hooks::{BlockHook, HookKey, HookKind};
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::Model;
use serde_json::json;

use super::output::outln;
use super::model_arg::{input_ids, load_model, token_texts};
use super::{InputArgs, InterventionArgs};

#[derive(Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub edits: InterventionArgs,
    #[command(flatten)]
    pub engine: super::engine::EngineArgs,
    /// How many of the most likely next tokens to list
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Also record these hooks (comma-separated names such as `attn.hook_pattern` or
    /// `blocks.3.hook_mlp_out`, or `all`); the JSON then reports how much the trace holds. The
    /// pass then runs in one piece whatever `--budget-mib` says: what it records is asked for
    #[arg(long, value_name = "HOOKS")]
    pub capture: Option<String>,
    /// Memory budget (MiB) for what the pass keeps: a longer prompt runs in chunks and keeps
    /// only the residual stream and per-position summaries
    #[arg(long, default_value_t = DEFAULT_BUDGET / MIB)]
    pub budget_mib: u64,
    /// The mask token's id, for a masked LM's predictions at each masked position (default:
    /// the tokenizer's `[MASK]`)
    #[arg(long)]
    pub mask_id: Option<u32>,
    /// Print JSON (the fields acceptance checks read)
    #[arg(long)]
    pub json: bool,
}

/// What the summary reads (the embedding, the stream entering block 0, every residual, the
/// logits), plus `extra`.
fn capture_filter(extra: Option<&str>) -> Result<CaptureFilter> {
    let needed = [HookKind::Embed, HookKind::Block(BlockHook::ResidPost), HookKind::Logits];
    let block0 = HookKey::Block(0, BlockHook::ResidPre);
    let summary = || CaptureFilter::Select { keys: [block0].into(), kinds: needed.into_iter().collect() };
    Ok(match extra.map(str::trim) {
        Some("all") => CaptureFilter::All,
        None | Some("") => summary(),
        Some(list) => match CaptureFilter::parse(list).map_err(|e| anyhow::anyhow!("--capture: {e}"))? {
            CaptureFilter::Select { mut keys, mut kinds } => {
                kinds.extend(needed);
                keys.insert(block0);
                CaptureFilter::Select { keys, kinds }
            }
            _ => summary(),
        },
    })
}

/// What `trace` prints, from a full capture or a long pass's overview.
struct Summary {
    last: Vec<f32>,
    argmax: Vec<u32>,
    norms: Vec<Vec<f32>>,
    lens: Vec<Vec<u32>>,
    /// A masked LM's top tokens at each masked position.
    masked: Vec<(usize, Vec<analysis::Ranked>)>,
    /// `None` for a full capture; else the bytes the overview kept.
    overview_bytes: Option<usize>,
    /// Hooks recorded and their size.
    captured: (usize, f64),
}

pub fn run(model_path: Option<PathBuf>, args: TraceArgs) -> Result<()> {
    let model = load_model(model_path.clone())?;
    let ids = input_ids(&model, &args.input)?;
    let mut exec = super::engine::executor(model.clone(), model_path, args.input.device, args.input.precision, &args.engine)?;
    let c = &model.config;
    let n_layers = c.n_layers();
    let options = args.edits.apply(PassOptions::default(), n_layers, c.n_heads())?;
    let budget = args.budget_mib.saturating_mul(MIB);
    // Every row's logits and residual stream fit the budget: one pass with those hooks.
    // Else the overview in chunks, which keeps the stream and reduces the logits per row.
    let plan = if args.capture.is_some() { Plan::Full } else { budget::plan(c, ids.len(), budget) };
    let summary = match plan {
        Plan::Full => {
            let capture = capture_filter(args.capture.as_deref())?;
            let trace = exec.forward(&ids, PassOptions { capture, ..options })?;
            if let Some(bad) = trace.non_finite {
                eprintln!("glassbox: warning: {bad}");
            }
            Summary {
                last: analysis::last_logits(&trace)?,
                argmax: analysis::argmax_rows(&trace)?,
                norms: analysis::residual_norms(&trace, n_layers)?,
                lens: lens_of(&model, &trace, ids.len() - 1)?,
                masked: masked_predictions(&model, &trace, &ids, args.mask_id, args.top_k)?,
                overview_bytes: None,
                captured: (trace.len(), mib(trace.bytes())),
            }
        }
        Plan::Overview(opts) => {
            let opts = OverviewOptions { keep_mid: false, ..opts };
            let ov = run_overview(&mut *exec, &ids, &options, opts, &mut |_| ControlFlow::Continue(()))?
                .context("the long pass stopped before its end")?;
            if let Some(bad) = ov.trace.non_finite {
                eprintln!("glassbox: warning: {bad}");
            }
            Summary {
                last: ov.trace.last_logits.clone().context("the long pass left no logits")?,
                argmax: ov.top.iter().map(|t| t.first().map_or(0, |r| r.id)).collect(),
                norms: ov.residual_norms.clone(),
                lens: lens_of(&model, &ov.trace, ids.len() - 1)?,
                masked: Vec::new(),
                overview_bytes: Some(ov.bytes()),
                captured: (ov.trace.len(), mib(ov.bytes())),
            }
        }
        Plan::Refused { need } => bail!(
            "{} tokens need --budget-mib {} at least (the residual stream of every position); it is {}",
            ids.len(),
            need.div_ceil(MIB),
            args.budget_mib
        ),
    };
    let Summary { last, argmax, norms, lens, masked, overview_bytes, captured: (captured_hooks, captured_mib) } = summary;
    if let Some(bytes) = overview_bytes {
        eprintln!("glassbox: {} tokens run in chunks within the {} MiB budget; kept {}", ids.len(), args.budget_mib, budget::human(bytes as u64));
    }
    let top = analysis::top_k(&last, args.top_k, 1.0);
    let tokens = token_texts(&model, &ids);
    let top_json = top_json_of(&model, &top);
    if args.json {
        let out = json!({
            "device": exec.device_name(),
            "token_ids": ids,
            "tokens": tokens,
            "argmax": argmax,
            "top_k": top_json,
            "residual_norms": norms,
            "logit_lens": lens,
            "masked": masked.iter().map(|(pos, top)| json!({"position": pos, "top_k": top_json_of(&model, top)})).collect::<Vec<_>>(),
            "overview_bytes": overview_bytes,
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

fn top_json_of(model: &Model, top: &[analysis::Ranked]) -> Vec<serde_json::Value> {
    top.iter().map(|r| json!({"id": r.id, "token": token_texts(model, &[r.id])[0], "logit": r.logit, "prob": r.prob})).collect()
}

/// The logit lens at `position`, or none for a model whose output head is no lens (BERT).
fn lens_of(model: &Model, trace: &glassbox_engine::Trace, position: usize) -> Result<Vec<Vec<u32>>> {
    if model.arch.mlm_head {
        return Ok(Vec::new());
    }
    Ok(analysis::logit_lens_at(model, trace, position, 5)?)
}

/// A masked LM: the top `k` tokens at every position holding the mask id.
fn masked_predictions(model: &Model, trace: &glassbox_engine::Trace, ids: &[u32], mask_id: Option<u32>, k: usize) -> Result<Vec<(usize, Vec<analysis::Ranked>)>> {
    if !model.arch.mlm_head {
        return Ok(Vec::new());
    }
    let Some(mask) = mask_id.or_else(|| model.tokenizer.as_ref().and_then(|t| t.token_id("[MASK]"))) else {
        bail!("a masked LM predicts at its mask positions: pass --mask-id N (this model has no tokenizer with a [MASK] token)");
    };
    let logits = trace.get(glassbox_engine::HookKey::Logits).and_then(|t| t.as_2d()).context("the pass recorded no logits")?;
    Ok(ids
        .iter()
        .enumerate()
        .filter(|(_, id)| **id == mask)
        .map(|(pos, _)| (pos, analysis::top_k(&logits.row(pos).to_vec(), k, 1.0)))
        .collect())
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}
