//! Command-line interface. The JSON field names are read by acceptance checks: keep them.

mod bench;
mod generate;
mod grad;
mod task;
mod model_arg;
mod trace;
mod train;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

pub use model_arg::make_executor;

#[derive(Parser, Debug)]
#[command(name = "glassbox", version, about = "Step through a real Llama-family model's forward pass and see every number")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Model: an HF Llama-family folder or a .gguf file (default: the cached SmolLM2-135M-Instruct)
    #[arg(long, global = true, env = "GLASSBOX_MODEL")]
    pub model: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one forward pass and print what it recorded
    Trace(trace::TraceArgs),
    /// Continue a prompt token by token
    Generate(generate::GenerateArgs),
    /// Download and convert the default model into the cache
    Fetch,
    /// Convert a GGUF file into an HF folder (config.json, model.safetensors, tokenizer.json)
    Convert {
        gguf: PathBuf,
        out_dir: PathBuf,
    },
    /// Measure load, prefill and decode speed
    Bench(bench::BenchArgs),
    /// The article's four uses: generate, sentiment, qa, extract
    Task(task::TaskArgs),
    /// Loss and every gradient of one sequence, written as safetensors
    Grad(grad::GradArgs),
    /// Train a tiny Llama from scratch on a preset (induction | text)
    Train(train::TrainArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Device {
    /// The GPU if one is found, else the CPU with a notice
    #[default]
    Auto,
    Cpu,
    Gpu,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Precision {
    #[default]
    F32,
    F16,
}

/// What every model-running command shares.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Text to run
    #[arg(long, conflicts_with = "token_ids", required_unless_present = "token_ids")]
    pub prompt: Option<String>,
    /// Exact token ids, comma-separated, instead of --prompt
    #[arg(long, value_delimiter = ',')]
    pub token_ids: Option<Vec<u32>>,
    /// Wrap the prompt in the model's chat template (one user message)
    #[arg(long)]
    pub chat: bool,
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
}

pub fn run(cli: Cli) -> Result<()> {
    let model = cli.model;
    match cli.command {
        None => crate::gui::run(model),
        Some(Command::Trace(args)) => trace::run(model, args),
        Some(Command::Generate(args)) => generate::run(model, args),
        Some(Command::Fetch) => model_arg::fetch().map(|dir| println!("{}", dir.display())),
        Some(Command::Convert { gguf, out_dir }) => model_arg::convert(&gguf, &out_dir),
        Some(Command::Bench(args)) => bench::run(model, args),
        Some(Command::Task(args)) => task::run(model, args),
        Some(Command::Grad(args)) => grad::run(model, args),
        Some(Command::Train(args)) => train::run(args),
    }
}
