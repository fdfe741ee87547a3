//! `objectives`: BERT's masked LM (`bert-mlm`) against Llama's next token (`llama`) on
//! `text`, both scored on the same held-out windows at the same seeded 15 % of positions
//! (several blankings per window):
//! - fill in the blank: BERT sees the mask id there and both sides; Llama only the left
//!   context (its next-token prediction of the blanked token);
//! - next token: Llama as trained; BERT gets the text up to the position with the mask id
//!   in it and nothing after.
//!
//! Llama's two numbers coincide by construction: with only the left context, filling a
//! blank is predicting the next token.

use std::sync::Arc;

use super::{Experiment, ExperimentOptions, ExperimentReport, FinalEval, Tally, logits, preset_trainer, score, train_all};
use crate::error::Result;
use crate::exec::cpu::CpuExecutor;
use crate::train::data::MLM_RATE;
use crate::train::presets::Preset;
use crate::train::recipes::{ObjectiveKind, Recipe};
use crate::train::rng::Rng;
use crate::train::trainer::{Event, Trainer};

pub const RECIPES: [Recipe; 2] = [Recipe::BertMlm, Recipe::Llama];
pub const DEFAULT_STEPS: usize = 400;
const BLANK_STREAM: u64 = 0xB1A4;
/// Blank draws per held-out window: the held-out text is short (a few windows), so each is
/// scored under several independent blankings.
pub const DRAWS: usize = 8;

pub fn run(options: &ExperimentOptions, on_event: &mut dyn FnMut(&str, Event<'_>)) -> Result<ExperimentReport> {
    let steps = options.steps.unwrap_or(DEFAULT_STEPS);
    let trainers = RECIPES
        .iter()
        .map(|&r| Ok((r.name().to_string(), preset_trainer(Preset::Text, r, steps, options, true)?)))
        .collect::<Result<Vec<_>>>()?;
    let (compare, final_evals) = train_all(options, Preset::Text.name(), trainers, &measure, on_event)?;
    Ok(ExperimentReport { experiment: Experiment::Objectives, compare, final_evals, lr_sweep: None })
}

/// The blanked positions of a sequence of `len`: each of `1..len` with probability 15 %
/// (at least one), seeded per sequence so every model is scored at the same ones.
pub fn blank_positions(seed: u64, seq: usize, len: usize) -> Vec<usize> {
    let mut rng = Rng::derive(seed, BLANK_STREAM + seq as u64);
    let mut out: Vec<usize> = (1..len).filter(|_| rng.uniform() < MLM_RATE).collect();
    if out.is_empty() && len > 1 {
        out.push(1 + rng.below(len - 1));
    }
    out
}

/// A masked LM's input for "next token at `i`": the text before `i`, then the mask id.
pub fn next_token_probe(ids: &[u32], i: usize, mask_id: u32) -> Vec<u32> {
    let mut probe = ids[..i.min(ids.len())].to_vec();
    probe.push(mask_id);
    probe
}

fn measure(t: &Trainer) -> Result<FinalEval> {
    let mut exec = CpuExecutor::new(Arc::clone(&t.model()?));
    let masked = t.options.recipe.objective() == ObjectiveKind::MaskedLm;
    let mask_id = t.config().vocab_size.saturating_sub(1) as u32;
    let (mut fill, mut next) = (Tally::default(), Tally::default());
    let draws = t.data.eval_set().iter().enumerate().flat_map(|(k, ids)| (0..DRAWS).map(move |r| (k * DRAWS + r, ids)));
    for (k, ids) in draws {
        let blanks = blank_positions(t.options.seed, k, ids.len());
        if masked {
            let mut input = ids.clone();
            for &i in &blanks {
                input[i] = mask_id;
            }
            let l = logits(&mut exec, &input)?;
            for &i in &blanks {
                fill.add(score(l.row(i), ids[i]));
                let p = logits(&mut exec, &next_token_probe(ids, i, mask_id))?;
                next.add(score(p.row(i), ids[i]));
            }
        } else {
            let l = logits(&mut exec, ids)?;
            for &i in &blanks {
                let s = score(l.row(i - 1), ids[i]);
                fill.add(s);
                next.add(s);
            }
        }
    }
    Ok(FinalEval::from([
        ("fill_blank_acc".to_string(), fill.acc()),
        ("fill_blank_loss".to_string(), fill.mean_loss()),
        ("next_token_acc".to_string(), next.acc()),
        ("next_token_loss".to_string(), next.mean_loss()),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_are_seeded_skip_bos_and_probes_end_in_the_mask() {
        let len = 64;
        let b = blank_positions(1, 0, len);
        assert_eq!(b, blank_positions(1, 0, len), "every model is scored at the same positions");
        assert_ne!(b, blank_positions(1, 1, len));
        assert!(!b.is_empty() && b.iter().all(|&i| (1..len).contains(&i)));
        let total: usize = (0..200).map(|k| blank_positions(1, k, len).len()).sum();
        let rate = total as f64 / (200.0 * (len - 1) as f64);
        assert!((rate - 0.15).abs() < 0.02, "{rate}");
        let ids: Vec<u32> = (0..10).collect();
        let p = next_token_probe(&ids, 4, 99);
        assert_eq!(p, vec![0, 1, 2, 3, 99], "the text before i, the mask at i, nothing after");
    }
}
