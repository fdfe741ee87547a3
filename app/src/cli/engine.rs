//! `--engine glassbox|llamacpp` and `--rpc`: which engine runs a model. llama.cpp is the app's
//! optional `llamacpp` feature (the `glassbox-llamacpp` crate); without it, asking for it is a
//! one-line error that says how to build it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use glassbox_engine::exec::executor::Executor;
use glassbox_engine::{Device, Model, Precision};

use super::model_arg::{make_executor, resolve_model_path};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Engine {
    /// Glassbox's own executors (CPU reference or GPU)
    #[default]
    Glassbox,
    /// llama.cpp on the model's .gguf file (build with `--features llamacpp`)
    Llamacpp,
}

#[derive(Args, Debug, Clone, Default)]
pub struct EngineArgs {
    /// Which engine computes the pass: glassbox, or llamacpp (llama.cpp on the .gguf, its
    /// tensors recorded under the same hook names)
    #[arg(long, value_enum, default_value = "glassbox", env = "GLASSBOX_ENGINE")]
    pub engine: Engine,
    /// llama.cpp RPC servers (`glassbox rpc-server`), comma-separated HOST:PORT: the model's
    /// layers are split across them (needs --engine llamacpp)
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT")]
    pub rpc: Vec<String>,
}

/// The executor for these flags: Glassbox's on `device`, or llama.cpp on the model's GGUF.
pub fn executor(model: Arc<Model>, model_path: Option<PathBuf>, device: Device, precision: Precision, args: &EngineArgs) -> Result<Box<dyn Executor>> {
    match args.engine {
        Engine::Glassbox if !args.rpc.is_empty() => bail!("--rpc splits a model across llama.cpp's RPC servers: add --engine llamacpp"),
        Engine::Glassbox => make_executor(model, device, precision),
        Engine::Llamacpp => {
            let gguf = gguf_of(&resolve_model_path(model_path)?)?;
            llamacpp(model, &gguf, &args.rpc)
        }
    }
}

/// The `.gguf` llama.cpp runs: the file itself, or the one `glassbox fetch` keeps in a folder.
fn gguf_of(path: &Path) -> Result<PathBuf> {
    let file = if path.is_dir() {
        let ggufs: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "gguf")).collect();
        match ggufs.as_slice() {
            [one] => one.clone(),
            _ => bail!("--engine llamacpp runs a .gguf file and {} holds {}: pass --model FILE.gguf", path.display(), ggufs.len()),
        }
    } else {
        path.to_path_buf()
    };
    let mut magic = [0u8; 4];
    let is_gguf = std::fs::File::open(&file).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && &magic == b"GGUF";
    if !is_gguf {
        bail!("--engine llamacpp runs a .gguf file; {} is not one", file.display());
    }
    Ok(file)
}

#[cfg(feature = "llamacpp")]
fn llamacpp(model: Arc<Model>, gguf: &Path, rpc: &[String]) -> Result<Box<dyn Executor>> {
    let options = glassbox_llamacpp::Options { rpc: rpc.to_vec(), ..Default::default() };
    let exec = glassbox_llamacpp::LlamaCppExecutor::open(model, gguf, &options)?;
    eprintln!("glassbox: {}", glassbox_llamacpp::coverage());
    Ok(Box::new(exec))
}

#[cfg(not(feature = "llamacpp"))]
fn llamacpp(_model: Arc<Model>, _gguf: &Path, _rpc: &[String]) -> Result<Box<dyn Executor>> {
    bail!("{}", NOT_BUILT)
}

#[cfg(not(feature = "llamacpp"))]
pub const NOT_BUILT: &str = "this glassbox was built without the llama.cpp engine: rebuild with `cargo build --release --features llamacpp` (needs cmake and libclang)";
