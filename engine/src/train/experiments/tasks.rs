//! The synthetic tasks' data, word-level and seeded by (seed, step) like the presets'.
//! - Copy: `<s>` + k distinct random tokens + `<sep>` + the same k tokens (length 2k + 2):
//!   trained at one length, held out at longer ones (distinct tokens, so copying by content
//!   would carry over; copying by one fixed offset would not).
//! - Recall: `<s>` + key + (d − 1) fillers + `<q>` + key: the answer sits d positions back
//!   from the `<q>` that asks for it.

use crate::train::data::TaskSource;
use crate::train::rng::Rng;
use crate::train::tokenizer_train::BOS;

const EVAL_STREAM: u64 = 0xE7A2;
/// Held-out sequences per evaluated length / distance band.
pub const N_EVAL: usize = 32;

/// Copy task ids: 0 `<s>`, 1 `<sep>`, the rest content tokens (enough for the longest
/// held-out copy's tokens to be distinct).
pub const COPY_VOCAB: usize = 2 + 64;
pub const SEP: u32 = 1;

/// `<s>` + k distinct content tokens + `<sep>` + the same k.
pub fn copy_sequence(rng: &mut Rng, k: usize) -> Vec<u32> {
    let body = rng.distinct(k.min(COPY_VOCAB - 2), 2, COPY_VOCAB as u32);
    let mut seq = vec![0];
    seq.extend(&body);
    seq.push(SEP);
    seq.extend(&body);
    seq
}

/// k for a total length 2k + 2.
pub fn copy_k(total_len: usize) -> usize {
    total_len.saturating_sub(2) / 2
}

/// The positions whose next-token prediction is a copied token: `<sep>` (predicting the
/// first copy) through the one before the last.
pub fn copy_scored(total_len: usize) -> std::ops::RangeInclusive<usize> {
    let k = copy_k(total_len);
    k + 1..=2 * k
}

pub struct CopyTask {
    /// Every training sequence has this length.
    pub train_len: usize,
    /// Held-out sequences at each evaluated length.
    pub evals: Vec<(usize, Vec<Vec<u32>>)>,
    names: Vec<String>,
}

impl CopyTask {
    pub fn new(seed: u64, train_len: usize, eval_lens: &[usize]) -> Self {
        let mut rng = Rng::derive(seed, EVAL_STREAM);
        let evals = eval_lens.iter().map(|&l| (l, (0..N_EVAL).map(|_| copy_sequence(&mut rng, copy_k(l))).collect())).collect();
        let mut names = vec![BOS.to_string(), "<sep>".into()];
        names.extend((2..COPY_VOCAB).map(|i| format!("c{}", i - 2)));
        Self { train_len, evals, names }
    }
}

impl TaskSource for CopyTask {
    fn batch(&self, seed: u64, step: usize, batch_size: usize) -> Vec<Vec<u32>> {
        let mut rng = Rng::derive(seed, 1_000_000 + step as u64);
        (0..batch_size).map(|_| copy_sequence(&mut rng, copy_k(self.train_len))).collect()
    }

    /// The trained length's held-out set.
    fn eval_set(&self) -> &[Vec<u32>] {
        self.evals.iter().find(|(l, _)| *l == self.train_len).or(self.evals.first()).map_or(&[], |(_, s)| s)
    }

    fn token_names(&self) -> &[String] {
        &self.names
    }
}

/// Recall task ids: 0 `<s>`, 1 `<q>`, 2 the filler `.`, the rest keys.
pub const RECALL_VOCAB: usize = 32;
pub const QUERY: u32 = 1;
pub const FILLER: u32 = 2;

/// `<s>` + key + (d − 1) fillers + `<q>` + key: `<q>` sits at position 1 + d, the key at 1.
pub fn recall_sequence(rng: &mut Rng, distance: usize) -> Vec<u32> {
    let key = 3 + rng.below(RECALL_VOCAB - 3) as u32;
    let mut seq = vec![0, key];
    seq.extend(std::iter::repeat_n(FILLER, distance.saturating_sub(1)));
    seq.push(QUERY);
    seq.push(key);
    seq
}

/// The position of `<q>`, whose prediction is the key.
pub fn recall_query_pos(seq: &[u32]) -> usize {
    seq.len().saturating_sub(2)
}

pub struct RecallTask {
    /// Half the training distances are drawn from the near band, half from `1..=max_distance`.
    pub max_distance: usize,
    near_band: (usize, usize),
    pub near: Vec<Vec<u32>>,
    pub far: Vec<Vec<u32>>,
    both: Vec<Vec<u32>>,
    names: Vec<String>,
}

impl RecallTask {
    /// Held-out sets with distances drawn from `near` and `far` (inclusive ranges).
    pub fn new(seed: u64, max_distance: usize, near: (usize, usize), far: (usize, usize)) -> Self {
        let near_range = near;
        let mut rng = Rng::derive(seed, EVAL_STREAM);
        let mut set = |(lo, hi): (usize, usize)| -> Vec<Vec<u32>> {
            (0..N_EVAL).map(|_| {
                let d = lo + rng.below(hi - lo + 1);
                recall_sequence(&mut rng, d)
            }).collect()
        };
        let (near, far) = (set(near), set(far));
        let both = near.iter().chain(&far).cloned().collect();
        let mut names = vec![BOS.to_string(), "<q>".into(), ".".into()];
        names.extend((3..RECALL_VOCAB).map(|i| format!("k{}", i - 3)));
        Self { max_distance, near_band: near_range, near, far, both, names }
    }
}

impl TaskSource for RecallTask {
    fn batch(&self, seed: u64, step: usize, batch_size: usize) -> Vec<Vec<u32>> {
        let mut rng = Rng::derive(seed, 1_000_000 + step as u64);
        (0..batch_size)
            .map(|_| {
                let (lo, hi) = if rng.uniform() < 0.5 { self.near_band } else { (1, self.max_distance) };
                let d = lo + rng.below(hi - lo + 1);
                recall_sequence(&mut rng, d)
            })
            .collect()
    }

    fn eval_set(&self) -> &[Vec<u32>] {
        &self.both
    }

    fn token_names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn copy_sequences_repeat_their_first_half_after_sep() {
        let mut rng = Rng::derive(1, 2);
        for len in [32, 64, 128] {
            let k = copy_k(len);
            let s = copy_sequence(&mut rng, k);
            assert_eq!(s.len(), len);
            let mut distinct = s[1..=k].to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), k, "distinct tokens: the copy is read by content");
            assert_eq!((s[0], s[k + 1]), (0, SEP));
            assert_eq!(s[1..=k], s[k + 2..]);
            assert!(s[1..=k].iter().all(|&t| (2..COPY_VOCAB as u32).contains(&t)));
            // Every scored prediction's target is a copied token, and there are k of them.
            let scored = copy_scored(len);
            assert_eq!(scored.clone().count(), k);
            assert!(scored.clone().all(|i| s[i + 1] == s[i + 1 - (k + 1)]));
        }
        let task = CopyTask::new(3, 32, &[32, 64, 128]);
        assert_eq!(task.batch(3, 7, 4), task.batch(3, 7, 4), "seeded by (seed, step)");
        assert!(task.batch(3, 7, 16).iter().all(|s| s.len() == 32 && s[16] == SEP));
        assert!(task.eval_set().iter().all(|s| s.len() == 32));
        assert_eq!(task.evals[2].1[0].len(), 128);
    }

    #[test]
    fn recall_distances_fall_on_their_side_of_the_window() {
        let (window, layers) = (4, 2);
        let task = RecallTask::new(5, 20, (1, window - 1), (12, 20));
        for (set, near) in [(&task.near, true), (&task.far, false)] {
            for s in set.iter() {
                let q = recall_query_pos(s);
                assert_eq!(s[q], QUERY);
                assert_eq!(s[q + 1], s[1], "the answer is the key");
                let d = q - 1;
                if near {
                    assert!(d < window, "near: the key is inside the window ({d})");
                } else {
                    assert!(d > layers * (window - 1), "far: out of reach even through {layers} layers ({d})");
                }
                assert!(s[2..q].iter().all(|&t| t == FILLER));
            }
        }
        let b = task.batch(5, 0, 64);
        assert!(b.iter().all(|s| (1..=20).contains(&(recall_query_pos(s) - 1))));
    }
}
