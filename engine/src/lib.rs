//! Glassbox engine: a Llama-family decoder run one operation at a time, with every
//! intermediate tensor recorded under its TransformerLens hook name.
//!
//! No GUI here: the app reads [`trace::Trace`] values produced by an [`executor::Executor`].

pub mod activations;
pub mod arch;
pub mod analysis;
pub mod augment;
pub mod backend;
pub mod budget;
pub mod chat_template;
pub mod config;
pub mod cpu;
pub mod error;
pub mod executor;
pub mod experiments;
pub mod families;
pub mod fetch;
pub mod gguf;
pub mod gpu;
pub mod graph;
pub mod guard;
pub mod hooks;
pub mod intervene;
pub mod load_check;
pub mod matrix;
pub mod model;
pub mod norms;
pub mod op_table;
pub mod overview;
pub mod recompute;
pub mod reference_check;
pub mod safetensors_check;
pub mod sampling;
pub mod step;
pub mod tasks;
pub mod tensor;
pub mod tokenizer;
pub mod tokenizer_check;
pub mod trace;
pub mod train;
pub mod weights;

/// A test that cannot run here says why and passes, unless `GLASSBOX_REQUIRE_MODEL` is set
/// (CI), where missing the model is a failure.
#[cfg(test)]
pub(crate) fn skip_unless_required(why: &str) {
    assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but {why}");
    eprintln!("skipping: {why}");
}

pub use config::LlamaConfig;
pub use backend::{Device, Precision};
pub use error::{EngineError, Result};
pub use hooks::{BlockHook, HookKey, HookKind};
pub use intervene::{ActivationPrecision, Edit, Intervention};
pub use model::Model;
pub use step::{LayerOp, Step};
pub use tensor::{Dim, Tensor};
pub use trace::{CaptureFilter, Trace};
