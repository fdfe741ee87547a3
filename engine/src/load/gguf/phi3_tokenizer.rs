//! Phi-3's tokenizer from a GGUF (`tokenizer.ggml.model = llama`, `general.architecture = phi3`),
//! built as transformers 5.24's `phi3_tokenizer` (`integrations/gguf/gguf_tokenizer_mapping.py`)
//! builds it. It is Gemma's BPE with byte fallback (`gemma_tokenizer.rs`: the added tokens, the
//! BOS post-processor, the decoder) with three differences:
//!
//! - the merges are derived from the scores, the sentencepiece log-probabilities llama.cpp's
//!   converter copies (`generate_merges` with `vocab_scores`), not from the vocabulary order;
//! - the normalizer prepends `▁` and then turns every space into `▁` (not `Metaspace`: `"  hi"`
//!   becomes `▁▁▁hi`), and there is no pre-tokenizer;
//! - the decoder strips the one space that prepending adds.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::gemma_tokenizer::{GemmaSpecials, gemma_tokenizer_json};

/// tokenizer.json for a Phi-3 GGUF vocabulary. Errors name the offending entry.
pub fn phi3_tokenizer_json(tokens: &[&str], scores: &[f32], token_types: &[i64], specials: &GemmaSpecials) -> Result<Value, String> {
    let mut json = gemma_tokenizer_json(tokens, scores, token_types, specials)?;
    let merges: Vec<Value> = merges_by_score(tokens, scores).into_iter().map(|(l, r)| json!([l, r])).collect();
    json["model"]["merges"] = Value::Array(merges);
    json["normalizer"] = json!({"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
    ]});
    if let Some(decoders) = json["decoder"]["decoders"].as_array_mut() {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    Ok(json)
}

/// transformers' `generate_merges(vocab, vocab_scores)`: for each distinct token (first-seen
/// order, its last score), every split into two tokens, ordered by the pieces' ids; then all of
/// them by (score, left length, right length), highest first, ties kept in order.
pub fn merges_by_score<'a>(tokens: &[&'a str], scores: &[f32]) -> Vec<(&'a str, &'a str)> {
    let mut last: HashMap<&str, (usize, f32)> = HashMap::with_capacity(tokens.len());
    let mut order: Vec<&'a str> = Vec::with_capacity(tokens.len());
    for (id, (&t, &score)) in tokens.iter().zip(scores).enumerate() {
        if last.insert(t, (id, score)).is_none() {
            order.push(t);
        }
    }
    let id = |t: &str| last[t].0;
    let mut merges: Vec<(&'a str, &'a str, f32)> = Vec::new();
    for &m in &order {
        let score = last[m].1;
        let mut local: Vec<(&'a str, &'a str, f32)> =
            m.char_indices().skip(1).map(|(at, _)| (&m[..at], &m[at..], score)).filter(|(l, r, _)| last.contains_key(l) && last.contains_key(r)).collect();
        local.sort_by_key(|&(l, r, _)| (id(l), id(r)));
        merges.extend(local);
    }
    let chars = |s: &str| s.chars().count();
    merges.sort_by(|a, b| (b.2, chars(b.0), chars(b.1)).partial_cmp(&(a.2, chars(a.0), chars(a.1))).unwrap_or(std::cmp::Ordering::Equal));
    merges.into_iter().map(|(l, r, _)| (l, r)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn merges_rank_by_score_then_by_the_longer_left_piece() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc"];
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0];
        // abc splits as a|bc and ab|c, same score: the longer left piece (ab) first.
        assert_eq!(merges_by_score(&tokens, &scores), vec![("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]);
    }
}
