//! GGUF files: a bounds-checked reader, bit-exact dequantizers for the block formats small
//! Llama checkpoints ship in, and a converter to the Hugging Face folder layout the rest of
//! the engine loads (`config.json`, `model.safetensors`, `tokenizer.json`,
//! `tokenizer_config.json`).
//!
//! Every length read from the file is checked against the bytes that remain before anything
//! is allocated, so a corrupt or hostile file gives an error naming the key or tensor, never a
//! panic or a huge allocation.

mod config_json;
mod convert;
mod cursor;
pub mod dequant;
mod gemma3;
pub mod native;
pub mod gemma_tokenizer;
pub mod phi3_tokenizer;
mod reader;
mod rope_scaling;
mod safetensors_out;
mod tokenizer_json;
mod types;
mod variants;

pub mod builder;

use std::path::{Path, PathBuf};

use crate::printable::printable;

pub use config_json::build_config_json;
pub use gemma3::{GEMMA3_LAYER_TENSORS, gemma3_hf_tensor_name, has_norm_shift};
pub use convert::SOURCE_FILE;
pub use convert::{
    ConvertedTensor, storage_kinds, convert_gguf_to_hf, convert_gguf_to_hf_cancellable, hf_tensor_name, permute_rows, planned_tensors,
    unpermute_rows,
};
pub use reader::{GgufFile, TensorInfo};
pub use tokenizer_json::{
    bpe_tokenizer_json, build_gemma_tokenizer, build_tokenizer_config_json, build_tokenizer_json,
    pre_tokenizer_for,
};
pub use types::{GgmlType, GgufValue};

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The io error is part of the message, not a `source`: `{:#}` chains would print it twice.
    #[error("{}: {err}", .path.display())]
    Io { path: PathBuf, err: std::io::Error },
    /// The header, key/value section or tensor table is malformed.
    #[error("{}: not a valid GGUF file: {msg}", .path.display())]
    Format { path: PathBuf, msg: String },
    #[error("{}: metadata key `{key}`: {msg}", .path.display())]
    Metadata {
        path: PathBuf,
        key: String,
        msg: String,
    },
    #[error("{}: tensor `{tensor}`: {msg}", .path.display())]
    Tensor {
        path: PathBuf,
        tensor: String,
        msg: String,
    },
    /// The file is a valid GGUF but describes something the converter cannot represent.
    #[error("{}: unsupported model: {msg}", .path.display())]
    Unsupported { path: PathBuf, msg: String },
    #[error("{}: cannot write converted file: {msg}", .path.display())]
    Output { path: PathBuf, msg: String },
}

impl GgufError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            err: source,
        }
    }

    // Keys, names and messages quote text from the file: control characters are escaped
    // so a crafted key cannot send escape sequences to the user's terminal.

    pub(crate) fn metadata(path: &Path, key: &str, msg: impl Into<String>) -> Self {
        Self::Metadata {
            path: path.to_path_buf(),
            key: printable(key),
            msg: printable(&msg.into()),
        }
    }

    pub(crate) fn tensor(path: &Path, tensor: &str, msg: impl Into<String>) -> Self {
        Self::Tensor {
            path: path.to_path_buf(),
            tensor: printable(tensor),
            msg: printable(&msg.into()),
        }
    }

    pub(crate) fn unsupported(path: &Path, msg: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.to_path_buf(),
            msg: printable(&msg.into()),
        }
    }

    pub(crate) fn output(path: &Path, msg: impl Into<String>) -> Self {
        Self::Output {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}
