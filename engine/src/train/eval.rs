//! Evaluation read off forward passes: held-out loss over chosen positions, and the
//! induction score of every head. The score is the head catalog's
//! ([`head_catalog::head_scores`]), so the Training view and the head catalog agree.

use std::sync::Arc;

use super::loss::next_token_loss;
use crate::exec::cpu::CpuExecutor;
use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions};
use crate::experiments::head_catalog;
use crate::program::hooks::{BlockHook, HookKey, HookKind};
use crate::load::model::Model;
use crate::exec::trace::CaptureFilter;

/// What one evaluation measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProbeResult {
    /// Mean loss over the chosen positions of every sequence.
    pub loss: f32,
    /// Mean loss over the other positions (induction: the random first half).
    pub other_loss: f32,
    /// Induction score `[layer][head]`, averaged over the sequences.
    pub scores: Vec<Vec<f32>>,
}

impl ProbeResult {
    /// The best head's score and where it is.
    pub fn best_head(&self) -> (f32, usize, usize) {
        let mut best = (0.0f32, 0, 0);
        for (l, row) in self.scores.iter().enumerate() {
            for (h, &s) in row.iter().enumerate() {
                if s > best.0 {
                    best = (s, l, h);
                }
            }
        }
        best
    }
}

/// Runs `model` over every sequence; `scored(i)` says whether the prediction made at
/// position `i` (of token `i + 1`) counts toward `loss`.
pub fn probe(model: &Arc<Model>, seqs: &[Vec<u32>], scored: &dyn Fn(usize) -> bool) -> Result<ProbeResult> {
    let n_layers = model.config.n_layers();
    let mut exec = CpuExecutor::new(Arc::clone(model));
    let capture = CaptureFilter::kinds([HookKind::Block(BlockHook::Pattern), HookKind::Logits]);
    let (mut loss, mut n) = (0.0f64, 0usize);
    let (mut other, mut n_other) = (0.0f64, 0usize);
    let mut scores = vec![vec![0.0f32; model.config.n_heads()]; n_layers];
    for ids in seqs {
        exec.reset();
        let trace = exec.forward(ids, PassOptions::capture(capture.clone()))?;
        let logits = trace
            .get(HookKey::Logits)
            .and_then(|t| t.as_2d())
            .ok_or_else(|| EngineError::Input("the probe pass recorded no logits".into()))?;
        let l = next_token_loss(logits, ids)?;
        for (i, &v) in l.per_position.iter().enumerate() {
            if scored(i) {
                loss += f64::from(v);
                n += 1;
            } else {
                other += f64::from(v);
                n_other += 1;
            }
        }
        let induction = head_catalog::head_scores(&trace, n_layers)?.induction;
        for (acc, s) in scores.iter_mut().zip(induction) {
            for (a, v) in acc.iter_mut().zip(s) {
                *a += v / seqs.len() as f32;
            }
        }
    }
    Ok(ProbeResult {
        loss: (loss / n.max(1) as f64) as f32,
        other_loss: (other / n_other.max(1) as f64) as f32,
        scores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::tensor::{Dim, Tensor};
    use crate::exec::trace::Trace;

    #[test]
    fn a_perfect_induction_head_scores_one() {
        // ids: a b c a b c; position i ≥ 3 attends to i − 2 (= j + 1 with j = i − 3).
        let ids = [1, 2, 3, 1, 2, 3];
        let n = ids.len();
        let mut p = ndarray::Array3::<f32>::zeros((2, n, n));
        for i in 0..n {
            p[[0, i, i.saturating_sub(2)]] = 1.0; // induction-like
            p[[1, i, 0]] = 1.0; // sink
        }
        let mut trace = Trace::new(ids.to_vec(), 0, 1.0);
        trace.insert(
            HookKey::Block(0, BlockHook::Pattern),
            Tensor::new(vec![Dim::Head, Dim::QPos, Dim::KPos], p.into_dyn()).unwrap(),
        );
        let s = head_catalog::head_scores(&trace, 1).unwrap().induction;
        assert_eq!(s[0][0], 1.0);
        assert_eq!(s[0][1], 0.0);
    }
}
