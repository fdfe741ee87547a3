//! Glassbox engine: a Llama-family decoder run one operation at a time, with every
//! intermediate tensor recorded under its TransformerLens hook name.
//!
//! No GUI here: the app reads [`trace::Trace`] values produced by an [`executor::Executor`].

pub mod analysis;
pub mod config;
pub mod cpu;
pub mod error;
pub mod executor;
pub mod fetch;
pub mod gguf;
pub mod gpu;
pub mod hooks;
pub mod model;
pub mod sampling;
pub mod step;
pub mod tasks;
pub mod tensor;
pub mod tokenizer;
pub mod trace;
pub mod train;
pub mod weights;

pub use config::LlamaConfig;
pub use error::{EngineError, Result};
pub use hooks::{BlockHook, HookKey};
pub use model::Model;
pub use step::{LayerOp, Step};
pub use tensor::{Dim, Tensor};
pub use trace::{CaptureFilter, Trace};
