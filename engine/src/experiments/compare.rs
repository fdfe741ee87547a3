//! Two runs side by side: how far run B is from run A at every hook, where they first part,
//! and what each predicts next. B differs from A by its prompt (same length), the precision
//! of its activations or weights, or an intervention.

use crate::experiments::analysis::{Ranked, top_k};
use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey};
use crate::exec::tensor::Tensor;
use crate::exec::trace::Trace;

/// Relative L2 distance above which two runs count as apart: well above f32 noise (a
/// re-run of the same pass differs by 0; a different matmul blocking by ~1e-7).
pub const APART: f32 = 1e-5;

/// One hook in both runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HookDistance {
    pub key: HookKey,
    /// `‖B − A‖ / ‖A‖` over the whole tensor (finite entries; masked -inf left out).
    pub rel_l2: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Every hook both runs recorded, in forward order.
    pub hooks: Vec<HookDistance>,
    /// The residual stream after the embedding and after each block: `[n_layers + 1]`.
    pub residual: Vec<f32>,
    /// The first hook where the runs are further apart than [`APART`].
    pub first_apart: Option<HookKey>,
    /// KL(A ‖ B) of the next-token distribution at every position where both have logits.
    pub kl: Vec<f32>,
    /// The next token at the last position: A's top k and B's top k.
    pub top_a: Vec<Ranked>,
    pub top_b: Vec<Ranked>,
}

/// `‖b − a‖ / ‖a‖` (∞ when a is 0 and b is not). Entries equal in both (the mask's −∞) are
/// left out; an entry finite in one run and not in the other makes the distance ∞.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f32 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        if x.is_finite() && y.is_finite() {
            num += f64::from(y - x).powi(2);
            den += f64::from(x).powi(2);
        } else if x != y {
            return f32::INFINITY;
        }
    }
    match (num, den) {
        (0.0, _) => 0.0,
        (_, 0.0) => f32::INFINITY,
        _ => (num / den).sqrt() as f32,
    }
}

/// KL(p ‖ q) of two logit rows at temperature 1, in nats.
pub fn kl_of_logits(p_logits: &[f32], q_logits: &[f32]) -> f32 {
    let log_softmax = |v: &[f32]| -> Vec<f64> {
        let max = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let lse = f64::from(max) + v.iter().map(|&x| f64::from(x - max).exp()).sum::<f64>().ln();
        v.iter().map(|&x| f64::from(x) - lse).collect()
    };
    let kl: f64 = log_softmax(p_logits).into_iter().zip(log_softmax(q_logits)).map(|(lp, lq)| lp.exp() * (lp - lq)).sum();
    kl.max(0.0) as f32
}

/// Compares run B with run A. Both must cover the same number of tokens.
pub fn compare(a: &Trace, b: &Trace, k: usize) -> Result<Comparison> {
    if a.n_tokens() != b.n_tokens() || a.pos_offset != b.pos_offset {
        return Err(EngineError::Input(format!(
            "the runs cover different tokens ({} at {} vs {} at {}): compare runs of the same length",
            a.n_tokens(),
            a.pos_offset,
            b.n_tokens(),
            b.pos_offset
        )));
    }
    let mut hooks = Vec::new();
    for key in a.keys() {
        let (Some(x), Some(y)) = (a.get(key), b.get(key)) else { continue };
        if x.shape() != y.shape() {
            return Err(EngineError::Shape(format!("`{key}` is {} in A and {} in B", x.dims_string(), y.dims_string())));
        }
        hooks.push(HookDistance { key, rel_l2: rel_l2(&values(x), &values(y)) });
    }
    let first_apart = hooks.iter().find(|h| h.rel_l2 > APART).map(|h| h.key);
    let n_layers = a.keys().filter_map(|k| k.layer()).max().map_or(0, |l| l + 1);
    let residual = std::iter::once(HookKey::Embed)
        .chain((0..n_layers).map(|l| HookKey::Block(l, BlockHook::ResidPost)))
        .filter_map(|key| hooks.iter().find(|h| h.key == key).map(|h| h.rel_l2))
        .collect();
    let kl = match (a.get(HookKey::Logits).and_then(Tensor::as_2d), b.get(HookKey::Logits).and_then(Tensor::as_2d)) {
        (Some(x), Some(y)) => x.outer_iter().zip(y.outer_iter()).map(|(p, q)| kl_of_logits(&p.to_vec(), &q.to_vec())).collect(),
        _ => match (&a.last_logits, &b.last_logits) {
            (Some(p), Some(q)) => vec![kl_of_logits(p, q)],
            _ => Vec::new(),
        },
    };
    let last = |t: &Trace| t.last_logits.clone().ok_or_else(|| EngineError::Input("a run did not reach its Sample step".into()));
    Ok(Comparison { hooks, residual, first_apart, kl, top_a: top_k(&last(a)?, k, 1.0), top_b: top_k(&last(b)?, k, 1.0) })
}

/// `B − A` for one hook (for the A | B | A−B heatmaps): masked entries (−∞ in both) become 0.
pub fn difference(a: &Trace, b: &Trace, key: HookKey) -> Result<Tensor> {
    let (Some(x), Some(y)) = (a.get(key), b.get(key)) else {
        return Err(EngineError::Input(format!("`{key}` is not in both runs")));
    };
    if x.shape() != y.shape() {
        return Err(EngineError::Shape(format!("`{key}` is {} in A and {} in B", x.dims_string(), y.dims_string())));
    }
    let mut d = y.data.clone();
    d.zip_mut_with(&x.data, |b, &a| *b = if a == *b { 0.0 } else { *b - a });
    Ok(Tensor { dims: x.dims.clone(), data: d })
}

fn values(t: &Tensor) -> Vec<f32> {
    t.data.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_kl() {
        assert_eq!(rel_l2(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert!((rel_l2(&[3.0, 4.0], &[3.0, 4.5]) - 0.1).abs() < 1e-6);
        assert_eq!(rel_l2(&[f32::NEG_INFINITY, 1.0], &[f32::NEG_INFINITY, 1.0]), 0.0);
        assert_eq!(rel_l2(&[f32::NEG_INFINITY, 1.0], &[0.5, 1.0]), f32::INFINITY, "a mask lifted");
        assert_eq!(kl_of_logits(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        // p = (1/2, 1/2), q = (1/4·…): KL = ln 2 for logits (0, 0) vs (0, −∞-ish).
        let kl = kl_of_logits(&[0.0, 0.0], &[0.0, -1.0986123]); // q = (3/4, 1/4)
        let want = 0.5 * (0.5f32 / 0.75).ln() + 0.5 * (0.5f32 / 0.25).ln();
        assert!((kl - want).abs() < 1e-5, "{kl} vs {want}");
    }
}
