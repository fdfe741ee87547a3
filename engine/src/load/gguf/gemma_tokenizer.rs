//! Gemma's tokenizer from a GGUF (`tokenizer.ggml.model = llama` with a Gemma vocabulary), built
//! the way transformers' `GGUFGemmaConverter` builds it, so the ids match transformers (and
//! llama.cpp) token for token:
//!
//! - the model is a BPE with byte fallback (`<0xNN>` tokens), not a Unigram: Gemma's "scores"
//!   are merge ranks (`-id`, with `-1000` placeholders on control and user-defined tokens);
//! - the file has no merges, so they are derived from the vocabulary: every split of every token
//!   into two tokens, ordered by the merged token's id (its position in the vocabulary), the
//!   splits of one token by their pieces' scores, highest first (a stable sort, as Python's);
//! - runs of spaces in the vocabulary are respelled as runs of `▁` first, so `▁▁` is reachable
//!   from `▁`; the normalizer turns every space into `▁` (no dummy prefix for Gemma 3) and there
//!   is no pre-tokenizer: the whole text between added tokens is one BPE word;
//! - control tokens (type 3) are special added tokens; user-defined ones (type 4: `\n`, runs of
//!   newlines and spaces, `\t`, HTML tags, `[multimodal]`) are added tokens matched whole, as
//!   sentencepiece and llama.cpp match them;
//! - the post-processor puts `<bos>` first when `tokenizer.ggml.add_bos_token` says so;
//! - the decoder turns `▁` back into spaces, then byte-fallback tokens into bytes.

use std::collections::HashMap;

use serde_json::{Value, json};

const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;
const SPACE_MARK: char = '▁';

/// Gemma's giveaway (transformers' `_is_gemma_vocabulary`): a run of spaces written with spaces,
/// where sentencepiece vocabularies write `▁`.
pub fn is_gemma_vocabulary(tokens: &[&str]) -> bool {
    tokens.iter().any(|t| is_space_run(t))
}

fn is_space_run(t: &str) -> bool {
    t.contains(' ') && t.trim().is_empty()
}

/// The form the vocabulary holds a token in: a run of spaces as a run of `▁`.
fn spelled(t: &str) -> String {
    if is_space_run(t) {
        std::iter::repeat_n(SPACE_MARK, t.chars().count()).collect()
    } else {
        t.to_string()
    }
}

/// The merges transformers derives for a vocabulary without them (`GGUFTokenizerSkeleton` with
/// `merge_ranks_from_vocab_order`): for each distinct token in first-seen order, every split
/// into two tokens, sorted by the pieces' scores (descending, stable); then all of them stably
/// by the merged token's (last) id.
pub fn derive_merges<'a>(tokens: &[&'a str], scores: &[f32]) -> Vec<(&'a str, &'a str)> {
    // Python's dict: a repeated token keeps its first position in iteration order but its
    // last id and score.
    let mut last: HashMap<&str, (usize, f32)> = HashMap::with_capacity(tokens.len());
    let mut order: Vec<&str> = Vec::with_capacity(tokens.len());
    for (id, &t) in tokens.iter().enumerate() {
        if last.insert(t, (id, scores[id])).is_none() {
            order.push(t);
        }
    }
    let score = |t: &str| f64::from(last[t].1);
    let mut merges: Vec<(&'a str, &'a str, usize)> = Vec::new();
    let mut local: Vec<(&'a str, &'a str)> = Vec::new();
    for &m in &order {
        local.clear();
        for (at, _) in m.char_indices().skip(1) {
            let (l, r) = (&m[..at], &m[at..]);
            if last.contains_key(l) && last.contains_key(r) {
                local.push((l, r));
            }
        }
        local.sort_by(|a, b| {
            (score(b.0), score(b.1))
                .partial_cmp(&(score(a.0), score(a.1)))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let rank = last[m].0;
        merges.extend(local.iter().map(|&(l, r)| (l, r, rank)));
    }
    merges.sort_by_key(|&(_, _, rank)| rank);
    merges.into_iter().map(|(l, r, _)| (l, r)).collect()
}

/// What the GGUF says about its special tokens.
pub struct GemmaSpecials {
    pub bos_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub add_bos: bool,
}

/// Everything Gemma's tokenizer is made of, worked out once from the GGUF vocabulary. It is
/// rendered two ways: as tokenizer.json text for `glassbox convert` ([`gemma_tokenizer_json`]),
/// and as the `tokenizers` value itself for a native load ([`gemma_tokenizer`]), which skips
/// the JSON of 262,144 tokens and 515,000 merges (hundreds of MiB of values, parsed twice).
struct Pieces<'a> {
    /// The vocabulary by id, space runs respelled.
    vocab: &'a [&'a str],
    merges: Vec<(&'a str, &'a str)>,
    /// Control (special) and user-defined tokens: `(id, text, special)`.
    added: Vec<(usize, &'a str, bool)>,
    /// `<bos>`'s text and id when prompts start with it.
    bos: Option<(String, u32)>,
    unk: Option<String>,
}

/// Checks the arrays agree, then hands `render` the pieces.
fn with_pieces<R>(
    tokens: &[&str],
    scores: &[f32],
    token_types: &[i64],
    specials: &GemmaSpecials,
    render: impl FnOnce(&Pieces<'_>) -> R,
) -> Result<R, String> {
    for (what, n) in [("scores", scores.len()), ("token_type", token_types.len())] {
        if n != tokens.len() {
            return Err(format!(
                "tokenizer.ggml.{what} has {n} entries but tokenizer.ggml.tokens has {}",
                tokens.len()
            ));
        }
    }
    let name_of = |key: &str, id: Option<u32>| -> Result<Option<String>, String> {
        match id {
            None => Ok(None),
            Some(id) => tokens
                .get(id as usize)
                .map(|t| Some(spelled(t)))
                .ok_or_else(|| format!("{key} {id} is outside the {}-token vocabulary", tokens.len())),
        }
    };
    let bos = name_of("tokenizer.ggml.bos_token_id", specials.bos_id)?;
    let unk = name_of("tokenizer.ggml.unknown_token_id", specials.unk_id)?;
    let bos = match (bos, specials.bos_id) {
        (Some(bos), Some(id)) if specials.add_bos => Some((bos, id)),
        _ => None,
    };
    let spelled_tokens: Vec<String> = tokens.iter().map(|t| spelled(t)).collect();
    let refs: Vec<&str> = spelled_tokens.iter().map(String::as_str).collect();
    let merges = derive_merges(&refs, scores);
    let added = refs
        .iter()
        .zip(token_types)
        .enumerate()
        .filter(|(_, (_, ty))| **ty == TOKEN_TYPE_CONTROL || **ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(id, (&t, &ty))| (id, t, ty == TOKEN_TYPE_CONTROL))
        .collect();
    Ok(render(&Pieces { vocab: &refs, merges, added, bos, unk }))
}

/// The settings around the BPE, as tokenizer.json writes them; the native load reads these
/// same values into the crate's types, so both forms have one source.
fn normalizer_json() -> Value {
    json!({"type": "Replace", "pattern": {"String": " "}, "content": SPACE_MARK.to_string()})
}

fn decoder_json() -> Value {
    json!({"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SPACE_MARK.to_string()}, "content": " "},
        {"type": "ByteFallback"},
        {"type": "Fuse"},
    ]})
}

fn post_processor_json(bos: &Option<(String, u32)>) -> Value {
    let Some((bos, bos_id)) = bos else { return Value::Null };
    let special = |type_id: u32| json!({"SpecialToken": {"id": bos, "type_id": type_id}});
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    json!({
        "type": "TemplateProcessing",
        "single": [special(0), seq("A", 0)],
        "pair": [special(0), seq("A", 0), special(1), seq("B", 1)],
        "special_tokens": {bos.as_str(): {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    })
}

/// tokenizer.json for a Gemma GGUF vocabulary. Errors name the offending entry.
pub fn gemma_tokenizer_json(
    tokens: &[&str],
    scores: &[f32],
    token_types: &[i64],
    specials: &GemmaSpecials,
) -> Result<Value, String> {
    with_pieces(tokens, scores, token_types, specials, |p| {
        // Python's `{word: i for i, word in ...}`: a repeated token keeps its last id.
        let mut vocab = serde_json::Map::with_capacity(p.vocab.len());
        for (id, &t) in p.vocab.iter().enumerate() {
            vocab.insert(t.to_string(), json!(id));
        }
        let merges: Vec<Value> = p.merges.iter().map(|&(l, r)| json!([l, r])).collect();
        let added: Vec<Value> = p
            .added
            .iter()
            .map(|&(id, t, special)| {
                json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": special})
            })
            .collect();
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": normalizer_json(),
            "pre_tokenizer": null,
            "post_processor": post_processor_json(&p.bos),
            "decoder": decoder_json(),
            "model": {"type": "BPE", "dropout": null, "unk_token": p.unk,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                      "vocab": vocab, "merges": merges},
        })
    })
}

/// The tokenizer [`gemma_tokenizer_json`] describes, built directly: the same vocabulary,
/// merges, added tokens and settings, without the JSON in between. Errors name what failed.
pub fn gemma_tokenizer(
    tokens: &[&str],
    scores: &[f32],
    token_types: &[i64],
    specials: &GemmaSpecials,
) -> Result<tokenizers::Tokenizer, String> {
    with_pieces(tokens, scores, token_types, specials, build)?
}

fn build(p: &Pieces<'_>) -> Result<tokenizers::Tokenizer, String> {
    use tokenizers::models::bpe::{BPE, Vocab};
    use tokenizers::AddedToken;
    use tokenizers::decoders::DecoderWrapper;
    use tokenizers::normalizers::NormalizerWrapper;
    use tokenizers::processors::PostProcessorWrapper;
    let setting = |what: &str, e: serde_json::Error| format!("Gemma's {what}: {e}");
    // Inserted in id order, so a repeated token keeps its last id, as in the JSON.
    let vocab: Vocab = p.vocab.iter().enumerate().map(|(id, &t)| (t.to_string(), id as u32)).collect();
    let merges = p.merges.iter().map(|&(l, r)| (l.to_string(), r.to_string())).collect();
    let mut bpe = BPE::builder().vocab_and_merges(vocab, merges).fuse_unk(true).byte_fallback(true).ignore_merges(false);
    if let Some(unk) = &p.unk {
        bpe = bpe.unk_token(unk.clone());
    }
    let mut t = tokenizers::Tokenizer::new(bpe.build().map_err(|e| format!("Gemma's BPE: {e}"))?);
    let normalizer: NormalizerWrapper = serde_json::from_value(normalizer_json()).map_err(|e| setting("normalizer", e))?;
    t.with_normalizer(Some(normalizer)).map_err(|e| format!("Gemma's normalizer: {e}"))?;
    let decoder: DecoderWrapper = serde_json::from_value(decoder_json()).map_err(|e| setting("decoder", e))?;
    t.with_decoder(Some(decoder));
    let post: Option<PostProcessorWrapper> = serde_json::from_value(post_processor_json(&p.bos)).map_err(|e| setting("post-processor", e))?;
    t.with_post_processor(post);
    let added = p.added.iter().map(|&(_, text, special)| {
        AddedToken::from(text, special).single_word(false).lstrip(false).rstrip(false).normalized(false)
    });
    t.add_tokens(added).map_err(|e| format!("Gemma's added tokens: {e}"))?;
    Ok(t)
}

#[cfg(test)]
#[path = "gemma_tokenizer_tests.rs"]
mod tests;
