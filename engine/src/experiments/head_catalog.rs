//! The head catalog: four scores per attention head, read off its pattern on a token
//! sequence, that name what the head does (TransformerLens's head detectors).
//!
//! - previous-token: mean over positions i ≥ 1 of `p[i, i−1]`;
//! - first-token (attention sink): mean over i ≥ 1 of `p[i, 0]`;
//! - induction: over positions i whose token occurred before (j = the latest earlier
//!   position with the same token), mean of `p[i, j+1]` — "what followed it last time";
//! - duplicate-token: the same positions, mean of `p[i, j]`.

use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey, HookKind};
use crate::exec::trace::{CaptureFilter, Trace};

/// `[n_layers][n_heads]` for each score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeadScores {
    pub previous_token: Vec<Vec<f32>>,
    pub first_token: Vec<Vec<f32>>,
    pub induction: Vec<Vec<f32>>,
    pub duplicate: Vec<Vec<f32>>,
}

impl HeadScores {
    /// The (layer, head, score) of the highest entry of `scores`.
    pub fn best(scores: &[Vec<f32>]) -> Option<(usize, usize, f32)> {
        scores
            .iter()
            .enumerate()
            .flat_map(|(l, row)| row.iter().enumerate().map(move |(h, &v)| (l, h, v)))
            .max_by(|a, b| a.2.total_cmp(&b.2))
    }
}

/// What a pass must capture for [`head_scores`].
pub fn capture() -> CaptureFilter {
    CaptureFilter::kinds([HookKind::Block(BlockHook::Pattern)])
}

/// The built-in probe: `len` seeded random tokens, then the same `len` again. Ids are drawn
/// from `[lo, hi)` where ordinary words live (above the special and byte tokens).
pub fn probe_sequence(vocab_size: usize, len: usize, seed: u64) -> Vec<u32> {
    let (lo, hi) = if vocab_size > 20_000 { (1_000, 20_000) } else { (vocab_size.min(10) / 2, vocab_size) };
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut half = Vec::with_capacity(len);
    while half.len() < len {
        let id = (lo + (next() % (hi - lo).max(1) as u64) as usize) as u32;
        if !half.contains(&id) {
            half.push(id);
        }
    }
    half.iter().chain(&half).copied().collect()
}

/// For each position, the latest earlier position holding the same token.
fn earlier_occurrence(ids: &[u32]) -> Vec<Option<usize>> {
    (0..ids.len()).map(|i| (0..i).rev().find(|&j| ids[j] == ids[i])).collect()
}

/// The four scores of every head, from the patterns of a pass over `trace.token_ids`
/// (run from position 0, every layer's `attn.hook_pattern` captured).
pub fn head_scores(trace: &Trace, n_layers: usize) -> Result<HeadScores> {
    if trace.pos_offset != 0 {
        return Err(EngineError::Input("head scores need a pass from the first token (no KV cache before it)".into()));
    }
    let ids = &trace.token_ids;
    let earlier = earlier_occurrence(ids);
    let repeats: Vec<(usize, usize)> = earlier.iter().enumerate().filter_map(|(i, j)| j.map(|j| (i, j))).collect();
    let mean = |vals: Vec<f32>| if vals.is_empty() { 0.0 } else { vals.iter().sum::<f32>() / vals.len() as f32 };
    let mut out = HeadScores { previous_token: Vec::new(), first_token: Vec::new(), induction: Vec::new(), duplicate: Vec::new() };
    for l in 0..n_layers {
        let key = HookKey::Block(l, BlockHook::Pattern);
        let p = trace
            .get(key)
            .and_then(|t| t.as_3d())
            .ok_or_else(|| EngineError::Input(format!("head scores need `{key}` in the trace (capture it)")))?; // [head, q_pos, k_pos]
        let mut rows = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for head in p.outer_iter() {
            let n = head.nrows();
            rows[0].push(mean((1..n).map(|i| head[[i, i - 1]]).collect()));
            rows[1].push(mean((1..n).map(|i| head[[i, 0]]).collect()));
            rows[2].push(mean(repeats.iter().map(|&(i, j)| head[[i, j + 1]]).collect())); // j < i, so j + 1 ≤ i
            rows[3].push(mean(repeats.iter().map(|&(i, j)| head[[i, j]]).collect()));
        }
        let [prev, first, ind, dup] = rows;
        out.previous_token.push(prev);
        out.first_token.push(first);
        out.induction.push(ind);
        out.duplicate.push(dup);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_repeats_distinct_tokens_and_is_seeded() {
        let p = probe_sequence(49152, 20, 1);
        assert_eq!(p.len(), 40);
        assert_eq!(p[..20], p[20..]);
        assert!(p.iter().all(|&id| (1000..20000).contains(&id)));
        assert_eq!(p, probe_sequence(49152, 20, 1));
        assert_ne!(p, probe_sequence(49152, 20, 2));
        assert_eq!(earlier_occurrence(&[5, 6, 5, 6]), vec![None, None, Some(0), Some(1)]);
    }
}
