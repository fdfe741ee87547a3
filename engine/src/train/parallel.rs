//! Data parallelism, honestly simulated (article §2.5): a batch is split into `workers`
//! equal shards; each shard runs forward + backward on its own thread with its own executor
//! (a replica of the same weights); the shard gradients are averaged (the all-reduce) and
//! the optimizer takes one step. The all-reduce adds every sequence's gradient in batch
//! order (not the shards' means), so any number of workers takes the same step, bit for bit.

use std::sync::Arc;

use super::backward::{Objective, backward_for};
use super::params::Params;
use super::precision::{Precision, round_trace};
use crate::load::config::LlamaConfig;
use crate::exec::cpu::CpuExecutor;
use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions};
use crate::load::model::Model;
use crate::exec::trace::CaptureFilter;

/// The averaged gradient of one batch, and what each worker saw.
#[derive(Debug, Clone)]
pub struct BatchGradients {
    /// Mean next-token loss over the batch.
    pub loss: f32,
    /// Mean gradient over the batch, under checkpoint names.
    pub grads: Params,
    /// Each worker's shard gradient norm before the all-reduce.
    pub worker_norms: Vec<f32>,
    pub worker_losses: Vec<f32>,
}

/// One worker: each sequence of its shard's loss and gradient, in order.
fn shard_gradients(
    c: &LlamaConfig,
    params: &Params,
    model: &Arc<Model>,
    shard: &[(&Vec<u32>, &Objective)],
    precision: Precision,
) -> Result<Vec<(f32, Params)>> {
    let mut exec = CpuExecutor::new(Arc::clone(model));
    shard
        .iter()
        .map(|(ids, objective)| {
            exec.reset();
            let fwd = exec.forward(ids, PassOptions::capture(CaptureFilter::All))?;
            let fwd = round_trace(fwd, precision);
            let g = backward_for(c, params, &fwd, precision, objective)?;
            Ok((g.loss.loss, g.params))
        })
        .collect()
}

/// The mean loss and gradient of sequences, added in their order.
fn mean_of(per_sequence: &[(f32, Params)], zeros: &Params) -> (f32, Params) {
    let mut sum = zeros.clone();
    let mut loss = 0.0f64;
    for (l, g) in per_sequence {
        loss += f64::from(*l);
        sum.add_assign(g);
    }
    let n = per_sequence.len().max(1);
    sum.scale(1.0 / n as f32);
    ((loss / n as f64) as f32, sum)
}

/// The batch's mean next-token gradient with `workers` data-parallel replicas. `params` are
/// the weights the passes compute with (already rounded for bf16) and `model` the same
/// weights as a runnable model.
pub fn batch_gradients(
    c: &LlamaConfig,
    params: &Params,
    model: &Arc<Model>,
    batch: &[Vec<u32>],
    workers: usize,
    precision: Precision,
) -> Result<BatchGradients> {
    let objectives = vec![Objective::NextToken; batch.len()];
    batch_gradients_for(c, params, model, batch, &objectives, workers, precision)
}

/// The same with each sequence's own objective (BERT: its masked-LM labels).
pub fn batch_gradients_for(
    c: &LlamaConfig,
    params: &Params,
    model: &Arc<Model>,
    batch: &[Vec<u32>],
    objectives: &[Objective],
    workers: usize,
    precision: Precision,
) -> Result<BatchGradients> {
    if objectives.len() != batch.len() {
        return Err(EngineError::Input(format!("{} objectives for {} sequences", objectives.len(), batch.len())));
    }
    let batch: Vec<(&Vec<u32>, &Objective)> = batch.iter().zip(objectives).collect();
    if workers == 0 || batch.is_empty() || !batch.len().is_multiple_of(workers) {
        return Err(EngineError::Input(format!(
            "a batch of {} sequences cannot be split into {workers} equal shards; choose a worker count that divides the batch size",
            batch.len()
        )));
    }
    let shard_len = batch.len() / workers;
    let results: Vec<Result<Vec<(f32, Params)>>> = if workers == 1 {
        vec![shard_gradients(c, params, model, &batch, precision)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .chunks(shard_len)
                .enumerate()
                .map(|(i, shard)| {
                    std::thread::Builder::new()
                        .name(format!("glassbox-dp-worker-{i}"))
                        .spawn_scoped(scope, move || shard_gradients(c, params, model, shard, precision))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|_| Err(EngineError::Input("a data-parallel worker panicked".into()))),
                    Err(e) => Err(EngineError::Input(format!("could not start a worker thread: {e}"))),
                })
                .collect()
        })
    };
    // All-reduce (mean): every sequence's gradient added in batch order, so neither thread
    // timing nor the number of shards changes a bit of the result.
    let zeros = params.zeros_like();
    let (mut all, mut worker_norms, mut worker_losses) = (Vec::with_capacity(batch.len()), Vec::new(), Vec::new());
    for r in results {
        let shard = r?;
        let (loss, mean) = mean_of(&shard, &zeros);
        worker_norms.push(mean.global_norm());
        worker_losses.push(loss);
        all.extend(shard);
    }
    let (loss, grads) = mean_of(&all, &zeros);
    Ok(BatchGradients {
        loss,
        grads,
        worker_norms,
        worker_losses,
    })
}
