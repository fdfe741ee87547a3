//! Training, run in the same place the model is inspected: the backward pass of every
//! forward op of every family (a story in reverse), AdamW with its schedule, data-parallel
//! workers, mixed precision, presets that train tiny models from scratch, and checkpoints
//! that Glassbox and transformers open.

pub mod adamw;
pub mod backward;
mod backward_block;
pub mod checkpoint;
pub mod compare;
pub mod data;
pub mod eval;
pub mod experiments;
pub mod grad_acts;
pub mod grad_norms;
pub mod grad_ops;
pub mod hf_config;
pub mod hf_export;
pub mod loss;
pub mod parallel;
pub mod params;
pub mod precision;
pub mod presets;
pub mod recipes;
pub mod rng;
pub mod tokenizer_train;
pub mod trainer;

pub use adamw::{AdamW, AdamWConfig, LrSchedule, clip_global_norm};
pub use backward::{Backward, Gradients, Objective, backward, backward_for, backward_program};
pub use parallel::{BatchGradients, batch_gradients, batch_gradients_for};
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

/// Loss and every gradient of the next-token loss of one sequence on a loaded model.
pub fn gradients_of(model: &Arc<Model>, params: &Params, ids: &[u32]) -> Result<Gradients> {
    gradients_for(model, params, ids, &Objective::NextToken)
}

/// Loss and every gradient of `objective` on one sequence (what `glassbox grad` writes).
pub fn gradients_for(model: &Arc<Model>, params: &Params, ids: &[u32], objective: &Objective) -> Result<Gradients> {
    let fwd = forward_for_backward(model, ids)?;
    backward_for(&model.config, params, &fwd, Precision::F32, objective)
}
