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
        }
    }

    /// Held-out sequences for the evaluation loss.
    pub fn eval_set(&self) -> &[Vec<u32>] {
        match self {
            Data::Induction { eval, .. } | Data::Text { eval, .. } => eval,
        }
    }

    /// Held-out repeated random sequences for the induction score.
    pub fn probe_set(&self) -> &[Vec<u32>] {
        match self {
            Data::Induction { eval, .. } => eval,
            Data::Text { probe, .. } => probe,
        }
    }

    /// Whether the prediction at position `i` counts toward the evaluation loss. Induction:
    /// the repeated half, except its first token (nothing announces it), i.e. targets
    /// `half+2 ..= 2·half`. Text: every position.
    pub fn scored(&self, i: usize) -> bool {
        match self {
            Data::Induction { half, .. } => i > *half,
            Data::Text { .. } => true,
        }
    }

    pub fn tokenizer(&self) -> Option<&Bpe> {
        match self {
            Data::Text { tokenizer, .. } => Some(tokenizer),
            Data::Induction { .. } => None,
        }
    }

    /// `tokenizer.json` for checkpoints.
    pub fn tokenizer_json(&self) -> Result<String> {
        match self {
            Data::Text { tokenizer, .. } => tokenizer_train::to_json(tokenizer),
            Data::Induction { vocab, .. } => Ok(tokenizer_train::numbered_tokens_json(*vocab)),
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
            Data::Induction { .. } => ids.iter().map(|&i| self.token_text(i)).collect::<Vec<_>>().join(" "),
        }
    }

    /// Token texts, for views and the step-through.
    pub fn token_text(&self, id: u32) -> String {
        match self {
            _ if id == 0 => tokenizer_train::BOS.into(),
            Data::Text { tokenizer, .. } => tokenizer_train::decode(tokenizer, &[id]).unwrap_or_else(|_| id.to_string()),
            Data::Induction { .. } => format!("t{id}"),
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
