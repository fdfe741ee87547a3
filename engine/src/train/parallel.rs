//! Data parallelism, honestly simulated (article §2.5): a batch is split into `workers`
//! equal shards; each shard runs forward + backward on its own thread with its own executor
//! (a replica of the same weights); the shard gradients are averaged (the all-reduce) and
//! the optimizer takes one step. Averaging equal shards' mean gradients is the mean over
//! the whole batch, so N workers take the same step as one (up to float summation order).

use std::sync::Arc;

use super::backward::backward;
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

/// One worker: the mean loss and gradient over its shard.
fn shard_gradients(
    c: &LlamaConfig,
    params: &Params,
    model: &Arc<Model>,
    shard: &[Vec<u32>],
    precision: Precision,
) -> Result<(f32, Params)> {
    let mut exec = CpuExecutor::new(Arc::clone(model));
    let mut sum = params.zeros_like();
    let mut loss = 0.0f64;
    for ids in shard {
        exec.reset();
        let fwd = exec.forward(ids, PassOptions::capture(CaptureFilter::All))?;
        let fwd = round_trace(fwd, precision);
        let g = backward(c, params, &fwd, precision)?;
        loss += f64::from(g.loss.loss);
        sum.add_assign(&g.params);
    }
    let n = shard.len().max(1) as f32;
    sum.scale(1.0 / n);
    Ok(((loss / f64::from(n)) as f32, sum))
}

/// The batch's mean gradient with `workers` data-parallel replicas. `params` are the weights
/// the passes compute with (already rounded for bf16) and `model` the same weights as a
/// runnable model.
pub fn batch_gradients(
    c: &LlamaConfig,
    params: &Params,
    model: &Arc<Model>,
    batch: &[Vec<u32>],
    workers: usize,
    precision: Precision,
) -> Result<BatchGradients> {
    if workers == 0 || batch.is_empty() || !batch.len().is_multiple_of(workers) {
        return Err(EngineError::Input(format!(
            "a batch of {} sequences cannot be split into {workers} equal shards; choose a worker count that divides the batch size",
            batch.len()
        )));
    }
    let shard_len = batch.len() / workers;
    let results: Vec<Result<(f32, Params)>> = if workers == 1 {
        vec![shard_gradients(c, params, model, batch, precision)]
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
    // All-reduce (mean), in worker order so the result does not depend on thread timing.
    let mut grads = params.zeros_like();
    let (mut worker_norms, mut worker_losses) = (Vec::new(), Vec::new());
    for r in results {
        let (loss, g) = r?;
        worker_norms.push(g.global_norm());
        worker_losses.push(loss);
        grads.add_assign(&g);
    }
    grads.scale(1.0 / workers as f32);
    let loss = worker_losses.iter().sum::<f32>() / workers as f32;
    Ok(BatchGradients {
        loss,
        grads,
        worker_norms,
        worker_losses,
    })
}
