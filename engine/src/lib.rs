//! Glassbox engine: a transformer (Llama, Gemma 3, GPT-2, BERT) run one operation at a time,
//! with every intermediate tensor recorded under its TransformerLens hook name.
//!
//! The folders follow the data: [`load`] a model → its [`program`] of ops → [`exec`]ute it
//! (CPU reference or GPU) into a [`exec::trace::Trace`]; [`long`] prompts inside a memory
//! budget; [`experiments`] and analysis on traces; the [`article`]'s demonstrations;
//! [`train`]ing. No GUI here: the app reads traces.

pub mod article;
pub mod error;
pub mod exec;
pub mod experiments;
pub mod load;
pub mod long;
pub mod printable;
pub mod program;
pub mod train;

/// A test that cannot run here says why and passes, unless `GLASSBOX_REQUIRE_MODEL` is set
/// (CI), where missing the model is a failure.
#[cfg(test)]
pub(crate) fn skip_unless_required(why: &str) {
    assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but {why}");
    eprintln!("skipping: {why}");
}

pub use error::{EngineError, Result};
pub use exec::backend::{Device, Precision};
pub use exec::intervene::{ActivationPrecision, Edit, Intervention};
pub use exec::tensor::{Dim, Tensor};
pub use exec::trace::{CaptureFilter, Trace};
pub use load::config::LlamaConfig;
pub use load::model::{Model, WeightsMode};
pub use program::hooks::{BlockHook, HookKey, HookKind};
pub use program::op::{LayerOp, Step};
