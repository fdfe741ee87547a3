//! Quantities read off a trace: residual norms, top-k, the logit lens, per-token loss.
//! They live here, not in the app, because they are model math.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, s};

use crate::exec::cpu::ops;
use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey};
use crate::load::model::Model;
use crate::exec::sampling::softmax_with_temperature;
use crate::exec::trace::Trace;

/// One ranked entry of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ranked {
    pub id: u32,
    pub logit: f32,
    pub prob: f32,
}

fn missing(key: HookKey) -> EngineError {
    EngineError::Input(format!("the trace did not capture `{key}`"))
}

/// The residual stream entering each block and leaving the last one:
/// index 0 = `blocks.0.hook_resid_pre`, k ≥ 1 = `blocks.{k-1}.hook_resid_post`. Block 0's input
/// is `hook_embed` only in Llama: Gemma scales the embedding by √d, GPT-2 adds positions,
/// BERT adds positions and token types and norms the sum.
pub fn residual_keys(n_layers: usize) -> Vec<HookKey> {
    std::iter::once(HookKey::Block(0, BlockHook::ResidPre))
        .chain((0..n_layers).map(|l| HookKey::Block(l, BlockHook::ResidPost)))
        .collect()
}

/// L2 norms `[n_layers + 1][n_tokens]` of the residual stream (before the final norm).
pub fn residual_norms(trace: &Trace, n_layers: usize) -> Result<Vec<Vec<f32>>> {
    residual_keys(n_layers)
        .into_iter()
        .map(|key| {
            let x = trace.get(key).and_then(|t| t.as_2d()).ok_or_else(|| missing(key))?;
            Ok(x.outer_iter().map(|r| l2(r)).collect())
        })
        .collect()
}

fn l2(v: ArrayView1<f32>) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// The `k` largest logits of one row with their probabilities at `temperature`.
pub fn top_k(logits: &[f32], k: usize, temperature: f32) -> Vec<Ranked> {
    let probs = softmax_with_temperature(logits, temperature);
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(ids.len());
    if k == 0 {
        return Vec::new();
    }
    ids.select_nth_unstable_by(k - 1, |&a, &b| {
        logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b))
    });
    ids.truncate(k);
    ids.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
    ids.into_iter()
        .map(|id| Ranked {
            id,
            logit: logits[id as usize],
            prob: probs[id as usize],
        })
        .collect()
}

/// The last captured row of `hook_logits`.
pub fn last_logits(trace: &Trace) -> Result<Vec<f32>> {
    let logits = trace
        .get(HookKey::Logits)
        .and_then(|t| t.as_2d())
        .ok_or_else(|| missing(HookKey::Logits))?;
    Ok(logits.row(logits.nrows() - 1).to_vec())
}

/// The argmax of every captured row of `hook_logits` (the greedy next token at each position).
pub fn argmax_rows(trace: &Trace) -> Result<Vec<u32>> {
    let logits = trace
        .get(HookKey::Logits)
        .and_then(|t| t.as_2d())
        .ok_or_else(|| missing(HookKey::Logits))?;
    Ok(logits.outer_iter().map(|r| crate::exec::sampling::argmax(&r.to_vec())).collect())
}

/// Logit lens: `lm_head(final_norm(x))` for residual rows `x` `[rows, d_model]`.
pub fn lens_logits(model: &Model, x: ArrayView2<f32>) -> Result<Array2<f32>> {
    let w = &model.weights;
    let eps = model.config.eps();
    let h = match (model.arch.norm, &w.norm, &w.norm_bias) {
        (crate::load::arch::NormKind::Rms, Some(norm), _) => ops::rmsnorm(x, norm.view(), eps).1, // [rows, d_model]
        (crate::load::arch::NormKind::Layer, Some(norm), Some(bias)) => ops::ln_apply(x, ops::ln_scale(x, eps).view(), norm.view(), bias.view())?, // [rows, d_model]
        _ => return Err(EngineError::Input(format!("the logit lens reads a residual through the final norm; {} has none (its MLM head is not a lens yet)", model.arch.family.name()))),
    };
    crate::exec::cpu::matmul::linear(h.view(), model.weights.lm_head()) // [rows, vocab]
}

/// Top-`k` ids of the logit lens at `position`, for each residual of [`residual_keys`].
pub fn logit_lens_at(model: &Model, trace: &Trace, position: usize, k: usize) -> Result<Vec<Vec<u32>>> {
    let keys = residual_keys(model.config.n_layers());
    let mut rows = Array2::<f32>::zeros((keys.len(), model.config.d_model())); // [n_layers+1, d_model]
    for (i, key) in keys.iter().enumerate() {
        let x = trace.get(*key).and_then(|t| t.as_2d()).ok_or_else(|| missing(*key))?;
        if position >= x.nrows() {
            return Err(EngineError::Input(format!("position {position} is past the {} captured", x.nrows())));
        }
        rows.row_mut(i).assign(&x.row(position));
    }
    let logits = lens_logits(model, rows.view())?; // [n_layers+1, vocab]
    Ok(logits
        .outer_iter()
        .map(|r| top_k(r.as_slice().unwrap_or(&[]), k, 1.0).iter().map(|e| e.id).collect())
        .collect())
}

/// Per layer: `[after attention, after the MLP]`, each a `(top-1 id, its probability)` per position.
pub type LensGrid = Vec<[Vec<(u32, f32)>; 2]>;

/// Top-1 id of the logit lens at every position, after attention (`resid_mid`) and after
/// the MLP (`resid_post`) of every layer: `[layer][0 = after attn, 1 = after mlp][pos]`.
pub fn logit_lens_grid(model: &Model, trace: &Trace) -> Result<LensGrid> {
    (0..model.config.n_layers())
        .map(|l| {
            let read = |hook: BlockHook| -> Result<Vec<(u32, f32)>> {
                let key = HookKey::Block(l, hook);
                let x = trace.get(key).and_then(|t| t.as_2d()).ok_or_else(|| missing(key))?;
                lens_top1(model, x)
            };
            Ok([read(BlockHook::ResidMid)?, read(BlockHook::ResidPost)?])
        })
        .collect()
}

/// Top-1 id of the logit lens and its probability for each residual row `x` `[rows, d_model]`.
pub fn lens_top1(model: &Model, x: ArrayView2<f32>) -> Result<Vec<(u32, f32)>> {
    let logits = lens_logits(model, x)?; // [rows, vocab]
    Ok(logits
        .outer_iter()
        .map(|r| {
            let probs = softmax_with_temperature(r.as_slice().unwrap_or(&[]), 1.0);
            let id = crate::exec::sampling::argmax(r.as_slice().unwrap_or(&[]));
            (id, probs[id as usize])
        })
        .collect())
}

/// Next-token loss `-log p(token[i+1] | ..i)` for each position but the last: the training
/// objective, live on the prompt. Needs every row of `hook_logits`.
pub fn next_token_losses(trace: &Trace) -> Result<Vec<f32>> {
    let logits = trace
        .get(HookKey::Logits)
        .and_then(|t| t.as_2d())
        .ok_or_else(|| missing(HookKey::Logits))?;
    let n = trace.token_ids.len();
    if logits.nrows() != n {
        return Err(EngineError::Input("the trace holds logits for the last position only".into()));
    }
    Ok((0..n.saturating_sub(1))
        .map(|i| {
            let row = logits.slice(s![i, ..]);
            let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
            lse - row[trace.token_ids[i + 1] as usize]
        })
        .collect())
}

/// Norms of what each attention and MLP sublayer writes: `[layer][0 = attn, 1 = mlp][pos]`.
pub fn write_norms(trace: &Trace, n_layers: usize) -> Result<Vec<[Vec<f32>; 2]>> {
    (0..n_layers)
        .map(|l| {
            let norms = |hook: BlockHook| -> Result<Vec<f32>> {
                let key = HookKey::Block(l, hook);
                let x = trace.get(key).and_then(|t| t.as_2d()).ok_or_else(|| missing(key))?;
                Ok(x.axis_iter(Axis(0)).map(l2).collect())
            };
            Ok([norms(BlockHook::AttnOut)?, norms(BlockHook::MlpOut)?])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_with_probabilities() {
        let logits = [0.5, 3.0, -1.0, 2.0, 3.0];
        let top = top_k(&logits, 3, 1.0);
        assert_eq!(top.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 4, 3]);
        assert!(top[0].prob > top[2].prob);
    }
}
