//! `glassbox train`: a preset's tiny Llama trained from scratch, one line per step on
//! stderr, JSON on stdout with `--json`, checkpoints as HF folders under `--out`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use glassbox_engine::train::{Event, Precision, Preset, TrainOptions, Trainer};
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
    #[arg(long, value_enum)]
    pub preset: PresetArg,
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
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.out.is_file() {
        bail!("{}: --out must be a folder, not a file", args.out.display());
    }
    let options = TrainOptions {
        preset: match args.preset {
            PresetArg::Induction => Preset::Induction,
            PresetArg::Text => Preset::Text,
        },
        steps: args.steps,
        seed: args.seed,
        workers: args.workers,
        precision: match args.precision {
            TrainPrecision::F32 => Precision::F32,
            TrainPrecision::Bf16 => Precision::Bf16,
        },
        out: Some(args.out.clone()),
        eval_every: args.eval_every,
    };
    let mut trainer = Trainer::new(options)?;
    let c = trainer.config().clone();
    eprintln!(
        "glassbox: training `{}`: {} layers, d_model {}, {} heads ({} kv), vocab {}, {} parameters; {} steps of {} sequences × {} tokens, {} worker(s), {}",
        trainer.options.preset.name(), c.n_layers(), c.d_model(), c.n_heads(), c.n_kv_heads(), c.vocab_size,
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
