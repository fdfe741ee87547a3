//! Training, run in the same place the model is inspected: the backward pass of every
//! forward op (a story in reverse), AdamW with its schedule, data-parallel workers, mixed
//! precision, two presets that train a tiny Llama from scratch, and checkpoints that any
//! Llama-family loader (Glassbox, transformers) opens.

pub mod adamw;
pub mod backward;
pub mod checkpoint;
pub mod compare;
pub mod data;
pub mod eval;
pub mod grad_ops;
pub mod loss;
pub mod objective_shim;
pub mod parallel;
pub mod params;
pub mod precision;
pub mod presets;
pub mod recipes;
pub mod rng;
pub mod tokenizer_train;
pub mod trainer;

pub use adamw::{AdamW, AdamWConfig, LrSchedule, clip_global_norm};
pub use backward::{Backward, Gradients, backward, backward_program};
pub use parallel::{BatchGradients, batch_gradients};
pub use params::Params;
pub use precision::Precision;
pub use presets::Preset;
pub use trainer::{EvalReport, Event, RunSummary, StepInspection, StepReport, TrainOptions, Trainer};


use std::sync::Arc;

use crate::exec::cpu::CpuExecutor;
use crate::error::Result;
use crate::exec::executor::{Executor, PassOptions};
use crate::load::model::Model;
use crate::exec::trace::{CaptureFilter, Trace};

/// The CPU reference forward pass with every hook captured: what the backward reads.
pub fn forward_for_backward(model: &Arc<Model>, ids: &[u32]) -> Result<Trace> {
    CpuExecutor::new(Arc::clone(model)).forward(ids, PassOptions::capture(CaptureFilter::All))
}

/// Loss and every gradient of one sequence on a loaded model (what `glassbox grad` writes).
pub fn gradients_of(model: &Arc<Model>, params: &Params, ids: &[u32]) -> Result<Gradients> {
    let fwd = forward_for_backward(model, ids)?;
    backward(&model.config, params, &fwd, Precision::F32)
}
