//! One error type for the engine. Every variant names the file, tensor or field at fault
//! and, where it helps, what to do about it.

use std::path::PathBuf;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The io error is part of the message, not a `source`: `{:#}` chains would print it twice.
    #[error("{}: {err}", .path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: invalid config: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{file}: tensor `{tensor}`: {msg}")]
    Tensor {
        file: PathBuf,
        tensor: String,
        msg: String,
    },
    #[error("{path}: {msg}")]
    Safetensors { path: PathBuf, msg: String },
    /// The checkpoint and config.json disagree (every problem listed in `msg`).
    #[error("{path}: does not match config.json: {msg}")]
    Mismatch { path: PathBuf, msg: String },
    #[error(transparent)]
    Gguf(#[from] crate::load::gguf::GgufError),
    #[error(transparent)]
    Fetch(#[from] crate::load::fetch::FetchError),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("GPU: {0}")]
    Gpu(String),
    /// A tensor of the wrong shape reached an op: a bug, reported instead of hidden.
    #[error("shape mismatch: {0}")]
    Shape(String),
}

impl EngineError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            err: source,
        }
    }
}

pub use crate::printable::printable;
