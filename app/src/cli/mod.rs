//! Command-line interface. The JSON field names are read by acceptance checks: keep them.

mod arch;
mod bench;
mod compare;
mod compare_figure;
mod dla;
mod engine;
mod export;
mod heads;
mod patch;
mod rpc_server;
mod generate;
mod grad;
mod task;
mod model_arg;
pub(crate) mod output;
mod trace;
mod train;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::{Device, HookKey, Intervention, Model, Precision};
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "glassbox", version, about = "Step through a real Llama-family model's forward pass and see every number")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Model: an HF Llama-family folder, a .gguf file, or a model to fetch by name
    /// (smollm2-135m, gemma-3-270m) (default: the cached SmolLM2-135M-Instruct)
    #[arg(long, global = true, env = "GLASSBOX_MODEL")]
    pub model: Option<PathBuf>,
    /// Weights: native (a GGUF's blocks as downloaded, computed in place; from a .gguf file, or
    /// the one `glassbox fetch` keeps beside a model's converted files) or f32 (default: native
    /// for a .gguf file, f32 for a folder)
    #[arg(long, global = true, env = "GLASSBOX_WEIGHTS", value_name = "native|f32", value_parser = crate::weights_choice::parse)]
    pub weights: Option<glassbox_engine::WeightsMode>,
    /// Open a saved session (NAME.glassbox.json) in the window: its model, prompt, step, view
    #[arg(long, value_name = "FILE", conflicts_with = "workshop")]
    pub session: Option<PathBuf>,
    /// Workshop mode: a JSON file {"workshop": "title", "sessions": ["a.glassbox.json", …]};
    /// the prompt and the model picker are locked, PgDn / PgUp move through the sessions
    #[arg(long, value_name = "FILE")]
    pub workshop: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one forward pass and print what it recorded
    Trace(trace::TraceArgs),
    /// Continue a prompt token by token
    Generate(generate::GenerateArgs),
    /// Download and convert a model into the cache: smollm2-135m (the default) or gemma-3-270m
    Fetch {
        /// Which model (smollm2-135m, gemma-3-270m)
        name: Option<String>,
    },
    /// Convert a GGUF file into an HF folder (config.json, model.safetensors, tokenizer.json)
    Convert {
        gguf: PathBuf,
        out_dir: PathBuf,
    },
    /// An architecture's numbers from its config alone: parameters by component, KV cache, FLOPs
    Arch(arch::ArchArgs),
    /// Measure load, prefill and decode speed
    Bench(bench::BenchArgs),
    /// The article's four uses: generate, sentiment, qa, extract
    Task(task::TaskArgs),
    /// Activation patching, clean → corrupt: which layer and position (or head) restores the answer
    Patch(patch::PatchArgs),
    /// Direct logit attribution: each head's and MLP's share of a logit
    Dla(dla::DlaArgs),
    /// The head catalog: previous-token, first-token, induction and duplicate-token scores
    Heads(heads::HeadsArgs),
    /// Hooks of one pass as .npz / .npy for NumPy
    Export(export::ExportArgs),
    /// Run B beside run A (other prompt, precision, weights, ablations, RoPE or mask off)
    Compare(compare::CompareArgs),
    /// Loss and every gradient of one sequence, written as safetensors
    Grad(grad::GradArgs),
    /// Train a tiny model from scratch on a preset (induction | text); --compare trains recipes side by side
    Train(train::TrainArgs),
    /// Serve this machine's CPU to `--rpc` (llama.cpp's RPC backend; 127.0.0.1 unless --host)
    RpcServer(rpc_server::RpcServerArgs),
}

/// What every model-running command shares.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Text to run
    #[arg(long, conflicts_with_all = ["token_ids", "prompt_file"], required_unless_present_any = ["token_ids", "prompt_file"])]
    pub prompt: Option<String>,
    /// Read the text to run from a file (prompts too long for a command line)
    #[arg(long, conflicts_with = "token_ids", value_name = "PATH")]
    pub prompt_file: Option<std::path::PathBuf>,
    /// Exact token ids, comma-separated, instead of --prompt
    #[arg(long, value_delimiter = ',')]
    pub token_ids: Option<Vec<u32>>,
    /// Wrap the prompt in the model's chat template (one user message)
    #[arg(long)]
    pub chat: bool,
    /// Where to run: auto (the GPU if a hardware one works, else the CPU), cpu or gpu
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Weight precision: f32, or f16 (GPU only)
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

/// Interventions for commands that run the model (`trace`, `generate`).
#[derive(Args, Debug, Clone, Default)]
pub struct InterventionArgs {
    /// Heads to ablate, `L.H` (layer.head), comma-separated: that head's `blocks.L.attn.hook_z`
    /// is zeroed at every position
    #[arg(long, value_delimiter = ',', value_name = "L.H")]
    pub ablate_heads: Vec<String>,
    /// MLP layers to ablate, comma-separated: `blocks.L.hook_mlp_out` is zeroed
    #[arg(long, value_delimiter = ',', value_name = "L")]
    pub ablate_mlp: Vec<usize>,
}

impl InterventionArgs {
    /// The flags as engine interventions, checked against the model's size.
    pub fn interventions(&self, n_layers: usize, n_heads: usize) -> Result<Vec<Intervention>> {
        let mut out = Vec::new();
        for spec in &self.ablate_heads {
            let parsed = spec.split_once('.').and_then(|(l, h)| Some((l.trim().parse::<usize>().ok()?, h.trim().parse::<usize>().ok()?)));
            let Some((l, h)) = parsed else {
                bail!("--ablate-heads: `{spec}` is not LAYER.HEAD (e.g. 0.4 for layer 0, head 4)");
            };
            if l >= n_layers || h >= n_heads {
                bail!("--ablate-heads: `{spec}` is outside this model ({n_layers} layers × {n_heads} heads, counted from 0)");
            }
            out.push(Intervention::zero_heads(l, vec![h]));
        }
        for &l in &self.ablate_mlp {
            if l >= n_layers {
                bail!("--ablate-mlp: layer {l} is outside this model ({n_layers} layers, counted from 0)");
            }
            out.push(Intervention::zero(HookKey::Block(l, glassbox_engine::BlockHook::MlpOut)));
        }
        Ok(out)
    }

    /// `options` with these interventions added.
    pub fn apply(&self, options: PassOptions, n_layers: usize, n_heads: usize) -> Result<PassOptions> {
        let mut options = options;
        options.interventions.extend(self.interventions(n_layers, n_heads)?);
        Ok(options)
    }
}

/// What the CLI needs from the GUI module, handed in by `main` (the two never import each
/// other): the GUI figures of `glassbox bench --frames`.
pub struct GuiHooks {
    /// (model, tokens, frames) → (median ms, p95 ms) of the attention overview's frames.
    pub frame_bench: FrameBench,
    /// (model, tokens) → (bytes of the captured tensors, bytes the UI and the model thread
    /// hold for them) after one pass in the app.
    pub trace_memory: fn(Arc<Model>, usize) -> Result<(usize, usize)>,
    /// (model, device) → (cells, patched passes, seconds) of a `resid_pre` patching grid run
    /// through the app's model thread, as the Experiments view runs it.
    pub patching: PatchingBench,
    /// (model, frames) → (model B, median ms, p95 ms) of the side-by-side view with both runs
    /// present; `None` when no model B is cached.
    pub side_by_side_frames: fn(Arc<Model>, usize) -> Result<Option<(String, f64, f64)>>,
}

pub type FrameBench = fn(Arc<Model>, usize, usize) -> Result<(f64, f64)>;
pub type PatchingBench = fn(Arc<Model>, glassbox_engine::Device) -> Result<(usize, usize, f64)>;

/// `--model NAME` for the GUI: a model known by name becomes its cached folder (fetched here,
/// with progress on stderr, before the window opens); paths pass through.
pub fn resolve_named_model(model: Option<PathBuf>) -> Result<Option<PathBuf>> {
    model_arg::resolve_named(model)
}

pub fn run(model: Option<PathBuf>, command: Command, gui: &GuiHooks) -> Result<()> {
    match command {
        Command::Trace(args) => trace::run(model, args),
        Command::Generate(args) => generate::run(model, args),
        Command::Fetch { name } => output::outln!("{}", model_arg::fetch(name.as_deref())?.display()),
        Command::Convert { gguf, out_dir } => model_arg::convert(&gguf, &out_dir),
        Command::Arch(args) => arch::run(model, args),
        Command::Bench(args) => bench::run(model, args, gui),
        Command::Task(args) => task::run(model, args),
        Command::Patch(args) => patch::run(model, args),
        Command::Dla(args) => dla::run(model, args),
        Command::Heads(args) => heads::run(model, args),
        Command::Export(args) => export::run(model, args),
        Command::Compare(args) => compare::run(model, args),
        Command::Grad(args) => grad::run(model, args),
        Command::Train(args) => train::run(args),
        Command::RpcServer(args) => rpc_server::run(args),
    }
}
