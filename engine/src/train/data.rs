//! The presets' data. Batches depend only on (seed, step), so a run is reproducible and
//! every worker count sees the same sequences.

use super::presets::{Preset, PresetSpec};
use super::rng::Rng;
use super::tokenizer_train::{self, Bpe};
use crate::error::{EngineError, Result};

/// The bilingual corpus of the `text` preset, written for Glassbox (see its header).
pub const CORPUS: &str = include_str!("../../../assets/training/corpus-en-zh.txt");

/// Prompts the `text` preset's samples continue.
pub const SAMPLE_PROMPTS: [&str; 2] = ["The little", "小猫"];

pub enum Data {
    /// `<s>` + `half` distinct random tokens + the same tokens again.
    Induction { vocab: usize, half: usize, eval: Vec<Vec<u32>> },
    /// Windows of the tokenized corpus, each starting with `<s>`.
    Text {
        tokenizer: Box<Bpe>,
        train: Vec<u32>,
        eval: Vec<Vec<u32>>,
        probe: Vec<Vec<u32>>,
        seq_len: usize,
    },
    /// An experiment's synthetic task (`train/experiments/`): its own batches, held-out set
    /// and word-level vocabulary.
    Task(Box<dyn TaskSource>),
}

/// A synthetic task's data: batches that depend only on (seed, step), like the presets'.
pub trait TaskSource: Send + Sync {
    fn batch(&self, seed: u64, step: usize, batch_size: usize) -> Vec<Vec<u32>>;
    fn eval_set(&self) -> &[Vec<u32>];
    /// Token names (whitespace-free), indexed by id; id 0 is `<s>`.
    fn token_names(&self) -> &[String];
}

const EVAL_STREAM: u64 = 0xE7A1;
const N_EVAL: usize = 32;

impl Data {
    pub fn new(preset: Preset, spec: &PresetSpec, seed: u64) -> Result<Self> {
        let vocab = spec.config.vocab_size;
        match preset {
            Preset::Induction => Ok(Data::Induction {
                vocab,
                half: spec.half,
                eval: repeated_random(&mut Rng::derive(seed, EVAL_STREAM), N_EVAL, spec.half, vocab),
            }),
            Preset::Text => {
                let paragraphs: Vec<&str> = corpus_paragraphs();
                let tokenizer = tokenizer_train::train_bpe(&paragraphs, vocab)?;
                // Every 10th paragraph is held out: both languages appear in the eval set.
                let (mut train, mut held) = (Vec::new(), Vec::new());
                for (i, p) in paragraphs.iter().enumerate() {
                    let ids = tokenizer_train::encode(&tokenizer, &format!("{p}\n"))?;
                    if i % 10 == 9 { held.extend(ids) } else { train.extend(ids) }
                }
                let window = spec.seq_len - 1;
                if train.len() <= window || held.len() <= window {
                    return Err(EngineError::Input("the corpus is too short for the preset's sequence length".into()));
                }
                let eval = (0..N_EVAL.min(held.len() / window))
                    .map(|k| bos_window(&held, k * window, window))
                    .collect();
                let probe = repeated_random(&mut Rng::derive(seed, EVAL_STREAM), 16, 12, vocab);
                Ok(Data::Text { tokenizer: Box::new(tokenizer), train, eval, probe, seq_len: spec.seq_len })
            }
        }
    }

    /// The training batch of step `step`.
    pub fn batch(&self, seed: u64, step: usize, batch_size: usize) -> Vec<Vec<u32>> {
        let mut rng = Rng::derive(seed, 1_000_000 + step as u64);
        match self {
            Data::Induction { vocab, half, .. } => repeated_random(&mut rng, batch_size, *half, *vocab),
            Data::Text { train, seq_len, .. } => (0..batch_size)
                .map(|_| bos_window(train, rng.below(train.len() - (seq_len - 1)), seq_len - 1))
                .collect(),
            Data::Task(t) => t.batch(seed, step, batch_size),
        }
    }

    /// Held-out sequences for the evaluation loss.
    pub fn eval_set(&self) -> &[Vec<u32>] {
        match self {
            Data::Induction { eval, .. } | Data::Text { eval, .. } => eval,
            Data::Task(t) => t.eval_set(),
        }
    }

    /// Held-out repeated random sequences for the induction score.
    pub fn probe_set(&self) -> &[Vec<u32>] {
        match self {
            Data::Induction { eval, .. } => eval,
            Data::Text { probe, .. } => probe,
            Data::Task(t) => t.eval_set(),
        }
    }

    /// Whether the prediction at position `i` counts toward the evaluation loss. Induction:
    /// the repeated half, except its first token (nothing announces it), i.e. targets
    /// `half+2 ..= 2·half`. Text: every position.
    pub fn scored(&self, i: usize) -> bool {
        match self {
            Data::Induction { half, .. } => i > *half,
            Data::Text { .. } | Data::Task(_) => true,
        }
    }

    pub fn tokenizer(&self) -> Option<&Bpe> {
        match self {
            Data::Text { tokenizer, .. } => Some(tokenizer),
            Data::Induction { .. } | Data::Task(_) => None,
        }
    }

    /// `tokenizer.json` for checkpoints.
    pub fn tokenizer_json(&self) -> Result<String> {
        match self {
            Data::Text { tokenizer, .. } => tokenizer_train::to_json(tokenizer),
            Data::Induction { vocab, .. } => Ok(tokenizer_train::numbered_tokens_json(*vocab)),
            Data::Task(t) => Ok(tokenizer_train::word_tokens_json(t.token_names())),
        }
    }

    /// A sequence as text that this data's tokenizer reads back into the same ids (what the
    /// app types into its prompt to show a training example in the views).
    pub fn prompt_text(&self, ids: &[u32]) -> String {
        match self {
            Data::Text { tokenizer, .. } => {
                let (bos, rest) = match ids.split_first() {
                    Some((0, rest)) => (tokenizer_train::BOS, rest),
                    _ => ("", ids),
                };
                format!("{bos}{}", tokenizer_train::decode(tokenizer, rest).unwrap_or_default())
            }
            Data::Induction { .. } | Data::Task(_) => ids.iter().map(|&i| self.token_text(i)).collect::<Vec<_>>().join(" "),
        }
    }

    /// Token texts, for views and the step-through.
    pub fn token_text(&self, id: u32) -> String {
        match self {
            _ if id == 0 => tokenizer_train::BOS.into(),
            Data::Text { tokenizer, .. } => tokenizer_train::decode(tokenizer, &[id]).unwrap_or_else(|_| id.to_string()),
            Data::Induction { .. } => format!("t{id}"),
            Data::Task(t) => t.token_names().get(id as usize).cloned().unwrap_or_else(|| id.to_string()),
        }
    }
}

/// The corpus without its `#` header, as paragraphs (blank-line separated).
pub fn corpus_paragraphs() -> Vec<&'static str> {
    CORPUS
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with('#'))
        .collect()
}

/// `n` sequences `<s>, r_1..r_half, r_1..r_half` with distinct `r` from `1..vocab`.
pub fn repeated_random(rng: &mut Rng, n: usize, half: usize, vocab: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|_| {
            let r = rng.distinct(half, 1, vocab as u32);
            let mut seq = vec![0];
            seq.extend(&r);
            seq.extend(&r);
            seq
        })
        .collect()
}

fn bos_window(tokens: &[u32], start: usize, len: usize) -> Vec<u32> {
    let mut seq = vec![0];
    seq.extend(&tokens[start..start + len]);
    seq
}

/// BERT's masking: each position but the first (`<s>`) is chosen with probability 15 %; of
/// the chosen, 80 % become `mask_id`, 10 % a random token (`1..vocab`), 10 % stay. Labels are
/// the original ids at the chosen positions and −100 elsewhere (ignored by the loss). At
/// least one position is chosen, so every sequence has a loss.
pub fn mask_tokens(ids: &[u32], rng: &mut Rng, vocab: usize, mask_id: u32) -> (Vec<u32>, Vec<i64>) {
    let mut inputs = ids.to_vec();
    let mut labels = vec![IGNORE_LABEL; ids.len()];
    let mut chosen: Vec<usize> = (1..ids.len()).filter(|_| rng.uniform() < MLM_RATE).collect();
    if chosen.is_empty() && ids.len() > 1 {
        chosen.push(1 + rng.below(ids.len() - 1));
    }
    for i in chosen {
        labels[i] = i64::from(ids[i]);
        let u = rng.uniform();
        if u < 0.8 {
            inputs[i] = mask_id;
        } else if u < 0.9 {
            inputs[i] = 1 + rng.below(vocab.saturating_sub(1).max(1)) as u32;
        }
    }
    (inputs, labels)
}

/// The share of positions BERT masks.
pub const MLM_RATE: f64 = 0.15;
/// A label the masked-LM loss skips (torch's `ignore_index`).
pub const IGNORE_LABEL: i64 = -100;

/// Masked sequences and their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedBatch {
    pub inputs: Vec<Vec<u32>>,
    pub labels: Vec<Vec<i64>>,
}

impl Data {
    /// Step `step`'s batch (the same token stream as [`Data::batch`]) masked for BERT, the
    /// mask seeded by (seed, step).
    pub fn masked_batch(&self, seed: u64, step: usize, batch_size: usize, mask_id: u32) -> MaskedBatch {
        let mut rng = Rng::derive(seed, 2_000_000 + step as u64);
        self.mask_all(&self.batch(seed, step, batch_size), &mut rng, mask_id)
    }

    /// The held-out set under one fixed mask (the same at every evaluation).
    pub fn masked_eval_set(&self, seed: u64, mask_id: u32) -> MaskedBatch {
        self.mask_all(self.eval_set(), &mut Rng::derive(seed, EVAL_STREAM + 1), mask_id)
    }

    fn mask_all(&self, seqs: &[Vec<u32>], rng: &mut Rng, mask_id: u32) -> MaskedBatch {
        // Random replacements come from the data's own tokens, never the mask id.
        let vocab = mask_id as usize;
        let (inputs, labels) = seqs.iter().map(|ids| mask_tokens(ids, rng, vocab, mask_id)).unzip();
        MaskedBatch { inputs, labels }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod mlm_tests {
    use super::*;

    #[test]
    fn masking_follows_berts_proportions_and_is_seeded() {
        let vocab = 500;
        let ids: Vec<u32> = (0..20_000).map(|i| 1 + (i * 7919 % 499) as u32).collect();
        let (inputs, labels) = mask_tokens(&ids, &mut Rng::derive(3, 9), vocab, vocab as u32);
        assert_eq!((inputs.clone(), labels.clone()), mask_tokens(&ids, &mut Rng::derive(3, 9), vocab, vocab as u32), "same seed, same mask");
        assert_ne!(labels, mask_tokens(&ids, &mut Rng::derive(4, 9), vocab, vocab as u32).1, "another seed, another mask");
        let chosen: Vec<usize> = (0..ids.len()).filter(|&i| labels[i] != IGNORE_LABEL).collect();
        let n = chosen.len() as f64;
        assert!((n / ids.len() as f64 - 0.15).abs() < 0.01, "{n} chosen of {}", ids.len());
        let masked = chosen.iter().filter(|&&i| inputs[i] == vocab as u32).count() as f64;
        let kept = chosen.iter().filter(|&&i| inputs[i] == ids[i]).count() as f64;
        let random = n - masked - kept;
        assert!((masked / n - 0.8).abs() < 0.02 && (kept / n - 0.1).abs() < 0.02 && (random / n - 0.1).abs() < 0.02, "{masked} {kept} {random}");
        assert!(chosen.iter().all(|&i| labels[i] == i64::from(ids[i])), "labels are the original ids");
        assert!((0..ids.len()).filter(|i| labels[*i] == IGNORE_LABEL).all(|i| inputs[i] == ids[i]), "unchosen positions untouched");
        assert_eq!(labels[0], IGNORE_LABEL, "<s> is never chosen");
    }
}
