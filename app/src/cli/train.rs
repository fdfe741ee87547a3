//! `glassbox train`: a preset's tiny Llama trained from scratch, one line per step on
//! stderr, JSON on stdout with `--json`, checkpoints as HF folders under `--out`.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use glassbox_engine::train::compare::{CompareOptions, run_compare};
use glassbox_engine::train::recipes::Recipe;
use glassbox_engine::train::{Event, Precision, Preset, TrainOptions, Trainer};

use super::compare_figure;
use glassbox_engine::train::experiments::{Experiment, ExperimentOptions, run_experiment};
use serde_json::json;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// Random tokens repeated twice: watch an induction head form
    Induction,
    /// The bundled English + Chinese corpus with a BPE trained on it
    Text,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum TrainPrecision {
    #[default]
    F32,
    /// bf16 activations and gradients, f32 master weights
    Bf16,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[arg(long, value_enum, required_unless_present = "experiment")]
    pub preset: Option<PresetArg>,
    /// Optimizer steps (default: the preset's)
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Data-parallel workers (threads); must divide the batch size
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long, value_enum, default_value_t = TrainPrecision::F32)]
    pub precision: TrainPrecision,
    /// Evaluate and checkpoint every N steps (default: the preset's)
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Checkpoint folder (the final model; intermediate ones in OUT/checkpoints/)
    #[arg(long)]
    pub out: PathBuf,
    /// Print {"loss": [...], "eval": [...], "checkpoint": DIR, timing} as JSON
    #[arg(long)]
    pub json: bool,
    /// Train these recipes side by side (comma-separated: llama, gpt2, bert-mlm, gemma3, olmo2,
    /// llama-postnorm, llama-relu, llama-nope, llama-learned, article) on the same data, seed,
    /// parameter and step budget; writes OUT/compare.json, OUT/compare.png, OUT/compare.svg
    /// and each run's checkpoint in OUT/RECIPE/
    #[arg(long, value_name = "RECIPES")]
    pub compare: Option<String>,
    /// Train one recipe instead of the preset's Llama (a name as for --compare), sized to
    /// --budget or the preset's Llama's parameter count (`--arch gpt2` is the same)
    #[arg(long, visible_alias = "arch", conflicts_with = "compare")]
    pub recipe: Option<String>,
    /// The parameter budget the recipes are sized to (default: the preset's Llama's)
    #[arg(long)]
    pub budget: Option<usize>,
    /// Run one of the article's claims as an experiment (article, positions, objectives,
    /// window): its recipes on its task, then held-out measurements; writes OUT/compare.json
    /// (with `experiment`, each run's `final_eval`), the figures and each run's checkpoint
    #[arg(long, value_name = "NAME", conflicts_with_all = ["compare", "recipe", "preset", "budget"])]
    pub experiment: Option<String>,
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.out.is_file() {
        bail!("{}: --out must be a folder, not a file", args.out.display());
    }
    if let Some(name) = &args.experiment {
        return experiment(&args, name);
    }
    let preset = args.preset.ok_or_else(|| anyhow!("--preset is required (or --experiment)"))?;
    if let Some(list) = &args.compare {
        return compare(&args, preset, list);
    }
    let recipe = match &args.recipe {
        Some(name) => Recipe::from_name(name).ok_or_else(|| anyhow!("--recipe: unknown recipe `{name}` (known: {})", Recipe::names()))?,
        None => Recipe::Llama,
    };
    let options = TrainOptions {
        recipe,
        budget_params: args.budget,
        preset: preset_of(preset),
        steps: args.steps,
        seed: args.seed,
        workers: args.workers,
        precision: match args.precision {
            TrainPrecision::F32 => Precision::F32,
            TrainPrecision::Bf16 => Precision::Bf16,
        },
        out: Some(args.out.clone()),
        eval_every: args.eval_every,
        ..TrainOptions::default()
    };
    let mut trainer = Trainer::new(options)?;
    let c = trainer.config().clone();
    eprintln!(
        "glassbox: training `{}` ({}): {} layers, d_model {}, {} heads ({} kv), vocab {}, {} parameters; {} steps of {} sequences × {} tokens, {} worker(s), {}",
        trainer.options.preset.name(), trainer.options.recipe.name(), c.n_layers(), c.d_model(), c.n_heads(), c.n_kv_heads(), c.vocab_size,
        c.n_params(), trainer.total_steps(), trainer.spec.batch_size, trainer.spec.seq_len,
        trainer.options.workers, trainer.options.precision.name()
    );
    let summary = trainer.run(&mut |e| match e {
        Event::Step(r) if r.step % 10 == 0 || r.step == 1 => {
            eprintln!("step {:>4}  loss {:.4}  lr {:.2e}  |g| {:.3}  {:.0} ms", r.step, r.loss, r.lr, r.grad_norm, r.seconds * 1e3)
        }
        Event::Step(_) => {}
        Event::Eval(e) => {
            eprintln!(
                "eval @ {:>4}  held-out loss {:.4}  induction score {:.3} (L{}H{})",
                e.step, e.loss, e.induction_score, e.best_head[0], e.best_head[1]
            );
            for s in &e.samples {
                eprintln!("  sample: {s:?}");
            }
        }
    })?;
    if args.json {
        let evals: Vec<_> = summary
            .evals
            .iter()
            .map(|e| {
                json!({
                    "step": e.step,
                    "loss": e.loss,
                    "induction_score": e.induction_score,
                    "best_head": e.best_head,
                    "first_half_loss": e.other_loss,
                    "samples": e.samples,
                })
            })
            .collect();
        let out = json!({
            "preset": trainer.options.preset.name(),
            "recipe": trainer.options.recipe.name(),
            "loss": summary.losses,
            "eval": evals,
            "checkpoint": summary.checkpoint,
            "seconds": summary.seconds,
            "train_seconds": summary.train_seconds,
            "steps_per_second": summary.steps_per_second,
            "workers": trainer.options.workers,
            "precision": trainer.options.precision.name(),
        });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("{}", args.out.display());
    }
    Ok(())
}

fn preset_of(p: PresetArg) -> Preset {
    match p {
        PresetArg::Induction => Preset::Induction,
        PresetArg::Text => Preset::Text,
    }
}

/// `--compare`: every recipe in turn, a table, compare.json and the curves.
fn compare(args: &TrainArgs, preset: PresetArg, list: &str) -> Result<()> {
    if args.workers != 1 || args.precision != TrainPrecision::F32 {
        bail!("--compare trains with one worker in f32 (drop --workers / --precision)");
    }
    let recipes = Recipe::parse_list(list).map_err(|e| anyhow!("--compare: {e}"))?;
    let options = CompareOptions {
        preset: preset_of(preset),
        steps: args.steps,
        seed: args.seed,
        budget_params: args.budget,
        eval_every: args.eval_every,
        out: args.out.clone(),
    };
    let report = run_compare(&recipes, &options, &mut |recipe, e| match e {
        Event::Step(r) if r.step % 10 == 0 || r.step == 1 => eprintln!("{:<15} step {:>4}  loss {:.4}", recipe.name(), r.step, r.loss),
        Event::Eval(e) => eprintln!("{:<15} eval @ {:>4}  held-out loss {:.4}", recipe.name(), e.step, e.loss),
        Event::Step(_) => {}
    })?;
    compare_figure::write_figures(&report, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("{:<15} {:>9} {:>11} {:>15} {:>8}", "recipe", "params", "final loss", "final held-out", "steps/s");
    for run in &report.runs {
        let last = |v: Option<f32>| v.map_or("-".to_string(), |l| format!("{l:.4}"));
        println!(
            "{:<15} {:>9} {:>11} {:>15} {:>8.2}",
            run.recipe,
            run.params,
            last(run.loss.last().copied()),
            last(run.eval.last().map(|e| e.loss)),
            run.steps_per_second
        );
    }
    println!("{}", args.out.join(glassbox_engine::train::compare::REPORT_FILE).display());
    Ok(())
}

/// `--experiment`: the experiment's runs, a table of their final measurements, compare.json
/// and the curves.
fn experiment(args: &TrainArgs, name: &str) -> Result<()> {
    let e = Experiment::parse(name).map_err(|e| anyhow!("--experiment: {e}"))?;
    if args.workers != 1 || args.precision != TrainPrecision::F32 {
        bail!("--experiment trains with one worker in f32 (drop --workers / --precision)");
    }
    let options = ExperimentOptions { steps: args.steps, seed: args.seed, out: args.out.clone() };
    let report = run_experiment(e, &options, &mut |run, ev| match ev {
        Event::Step(r) if r.step % 10 == 0 || r.step == 1 => eprintln!("{run:<15} step {:>4}  loss {:.4}", r.step, r.loss),
        Event::Eval(ev) => eprintln!("{run:<15} eval @ {:>4}  held-out loss {:.4}", ev.step, ev.loss),
        Event::Step(_) => {}
    })?;
    compare_figure::write_figures(&report.compare, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string(&report.to_json()?)?);
        return Ok(());
    }
    let keys: Vec<&String> = report.final_evals.first().map(|m| m.keys().collect()).unwrap_or_default();
    let mut head = format!("{:<15} {:>9} {:>11} {:>8}", "run", "params", "final loss", "steps/s");
    for k in &keys {
        head += &format!(" {k:>15}");
    }
    println!("{head}");
    for (run, eval) in report.compare.runs.iter().zip(&report.final_evals) {
        let mut line = format!(
            "{:<15} {:>9} {:>11} {:>8.2}",
            run.recipe,
            run.params,
            run.loss.last().map_or("-".to_string(), |l| format!("{l:.4}")),
            run.steps_per_second
        );
        for k in &keys {
            line += &format!(" {:>15.4}", eval.get(*k).copied().unwrap_or(f64::NAN));
        }
        println!("{line}");
    }
    if let Some(sweep) = &report.lr_sweep {
        println!("{:<15} {:>9} {:>11} {:>9}", "lr sweep", "peak lr", "final loss", "diverged");
        for p in sweep {
            println!("{:<15} {:>9.2e} {:>11.4} {:>9}", p.recipe, p.peak_lr, p.final_loss, p.diverged);
        }
    }
    println!("{}", args.out.join(glassbox_engine::train::compare::REPORT_FILE).display());
    Ok(())
}
