//! `tokenizer.json` (for the `tokenizers` crate) and `tokenizer_config.json` from the
//! `tokenizer.*` keys. Byte-level BPE (`tokenizer.ggml.model = gpt2`) is supported, and two
//! SentencePiece-style vocabularies (`llama`) rebuilt as transformers rebuilds them: Gemma's
//! (runs of spaces in it, `gemma_tokenizer.rs`) and Phi-3's (`phi3_tokenizer.rs`). Other
//! SentencePiece GGUFs are refused: nothing in the file says which of the shapes they need.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::GgufError;
use super::gemma_tokenizer::{GemmaSpecials, gemma_tokenizer, gemma_tokenizer_json, is_gemma_vocabulary};
use super::phi3_tokenizer::phi3_tokenizer_json;

type SentencePieceBuilder = fn(&[&str], &[f32], &[i64], &GemmaSpecials) -> Result<Value, String>;
use super::reader::GgufFile;

/// llama.cpp's token types that become added tokens: control tokens are special (chat
/// markers, end of text); user-defined ones are matched whole but are ordinary text.
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The Llama 3 pre-tokenizer regex, as in Meta's tokenizer.json.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 2/3's split (Llama 3's, but one digit at a time), as in their tokenizer.json.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer for a `tokenizer.ggml.pre` value, or None if we do not know its exact
/// Hugging Face equivalent.
pub fn pre_tokenizer_for(pre: &str) -> Option<Value> {
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
               "use_regex": use_regex})
    };
    Some(match pre {
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            byte_level(true),
        ]}),
        // OLMo 1.7's `olmo` is GPT-2's split in llama.cpp, and transformers keeps GPT-2's there.
        "gpt-2" | "gpt2" | "olmo" => byte_level(true),
        "qwen2" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated",
             "invert": false},
            byte_level(false),
        ]}),
        // `dbrx` (cl100k, OLMo 2's) splits as Llama 3 does (transformers' `GGUF_PRE_TOKENIZER_SPLITS`).
        "llama-bpe" | "llama3" | "dbrx" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated",
             "invert": false},
            byte_level(false),
        ]}),
        _ => return None,
    })
}

/// Build a byte-level BPE tokenizer.json. `merges` are llama.cpp's "left right" strings.
/// Errors are messages naming the offending entry; the caller adds the file name.
pub fn bpe_tokenizer_json(
    tokens: &[&str],
    merges: &[&str],
    token_types: Option<&[i64]>,
    pre: &str,
) -> Result<Value, String> {
    let pre_tokenizer = pre_tokenizer_for(pre).ok_or_else(|| {
        format!(
            "pre-tokenizer `{pre}` (tokenizer.ggml.pre) is not supported; supported: smollm, \
             gpt-2, olmo, llama-bpe, dbrx, qwen2"
        )
    })?;
    if let Some(types) = token_types
        && types.len() != tokens.len()
    {
        return Err(format!(
            "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
            types.len(),
            tokens.len()
        ));
    }
    // A repeated token text keeps its first id: the BPE vocabulary is a map from text.
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (id, &tok) in tokens.iter().enumerate() {
        ids.entry(tok).or_insert(id);
    }
    let mut vocab = Map::new();
    for (&tok, &id) in &ids {
        vocab.insert(tok.to_string(), json!(id));
    }
    let mut merge_pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let (a, b) = split_merge(m)
            .ok_or_else(|| format!("tokenizer.ggml.merges[{i}] = {m:?} is not \"left right\""))?;
        for part in [a, b] {
            if !ids.contains_key(part) {
                return Err(format!(
                    "tokenizer.ggml.merges[{i}] = {m:?} uses {part:?}, which is not a token"
                ));
            }
        }
        // A merge must make a token: the tokenizers crate panics on one that makes
        // something longer than every token, so the file would convert and never load.
        if !ids.contains_key(format!("{a}{b}").as_str()) {
            return Err(format!(
                "tokenizer.ggml.merges[{i}] = {m:?} makes {:?}, which is not a token",
                format!("{a}{b}")
            ));
        }
        merge_pairs.push(json!([a, b]));
    }
    let mut added = Vec::new();
    for (id, &tok) in tokens.iter().enumerate() {
        let ty = token_types.map_or(0, |t| t[id]);
        if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
            added.push(
                json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == TOKEN_TYPE_CONTROL}),
            );
        }
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        // Qwen's tokenizer.json composes its input to NFC first.
        "normalizer": if pre == "qwen2" { json!({"type": "NFC"}) } else { Value::Null },
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merge_pairs},
    }))
}

/// llama.cpp splits at the first space after the first character, so a left side that is
/// itself a space survives.
fn split_merge(m: &str) -> Option<(&str, &str)> {
    let first = m.chars().next()?;
    let at = m[first.len_utf8()..].find(' ')? + first.len_utf8();
    let (a, b) = (&m[..at], &m[at + 1..]);
    (!b.is_empty()).then_some((a, b))
}

pub fn build_tokenizer_json(gguf: &GgufFile) -> Result<Value, GgufError> {
    let model_key = "tokenizer.ggml.model";
    let model = gguf.get_str(model_key)?;
    if model == "llama" {
        let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
        if is_gemma_vocabulary(&tokens) {
            return gemma_tokenizer_from(gguf, &tokens, gemma_tokenizer_json);
        }
        if gguf.opt_str("general.architecture")? == Some("phi3") {
            return gemma_tokenizer_from(gguf, &tokens, phi3_tokenizer_json);
        }
    }
    if model != "gpt2" {
        return Err(GgufError::metadata(
            gguf.path(),
            model_key,
            format!(
                "tokenizer model `{model}` is not supported; Glassbox converts byte-level BPE \
                 (`gpt2`) and Gemma's and Phi-3's tokenizers only. Use the model's Hugging Face \
                 folder instead"
            ),
        ));
    }
    let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
    let merges = gguf.get_str_array("tokenizer.ggml.merges")?;
    let types_key = "tokenizer.ggml.token_type";
    let types = match gguf.metadata(types_key) {
        Some(_) => Some(gguf.get_int_array(types_key)?),
        None => None,
    };
    // No default: llama.cpp's fallback regex matches no Hugging Face pre-tokenizer, and a
    // guessed one would quietly produce ids the model was not trained on.
    let pre = gguf.get_str("tokenizer.ggml.pre")?;
    bpe_tokenizer_json(&tokens, &merges, types.as_deref(), pre)
        .map_err(|msg| GgufError::metadata(gguf.path(), "tokenizer.ggml.*", msg))
}

/// A SentencePiece-style vocabulary (Gemma's, Phi-3's) as the BPE transformers builds from it.
fn gemma_tokenizer_from(gguf: &GgufFile, tokens: &[&str], build: SentencePieceBuilder) -> Result<Value, GgufError> {
    let (scores, types, specials) = gemma_metadata(gguf)?;
    build(tokens, &scores, &types, &specials)
        .map_err(|msg| GgufError::metadata(gguf.path(), "tokenizer.ggml.*", msg))
}

/// For a Gemma vocabulary, the tokenizer [`build_tokenizer_json`] describes, built without the
/// JSON (a native load); `None` for other vocabularies, which go through the JSON.
pub fn build_gemma_tokenizer(gguf: &GgufFile) -> Result<Option<tokenizers::Tokenizer>, GgufError> {
    if gguf.get_str("tokenizer.ggml.model")? != "llama" {
        return Ok(None);
    }
    let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
    if !is_gemma_vocabulary(&tokens) {
        return Ok(None);
    }
    let (scores, types, specials) = gemma_metadata(gguf)?;
    let err = |msg: String| GgufError::metadata(gguf.path(), "tokenizer.ggml.*", msg);
    // The crate panics on some inputs nobody foresaw: an error naming the file, not a crash.
    crate::load::guard::catch_panic(|| gemma_tokenizer(&tokens, &scores, &types, &specials))
        .map_err(|panic| err(format!("the tokenizers library cannot build it ({panic})")))?
        .map(Some)
        .map_err(err)
}

fn gemma_metadata(gguf: &GgufFile) -> Result<(Vec<f32>, Vec<i64>, GemmaSpecials), GgufError> {
    let scores = gguf.get_f32_array("tokenizer.ggml.scores")?;
    let types = gguf.get_int_array("tokenizer.ggml.token_type")?;
    let specials = GemmaSpecials {
        bos_id: gguf.opt_u32("tokenizer.ggml.bos_token_id")?,
        unk_id: gguf.opt_u32("tokenizer.ggml.unknown_token_id")?,
        add_bos: gguf.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false),
    };
    Ok((scores, types, specials))
}

pub fn build_tokenizer_config_json(gguf: &GgufFile) -> Result<Value, GgufError> {
    let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
    let mut cfg = Map::new();
    if let Some(t) = gguf.opt_str("tokenizer.chat_template")? {
        cfg.insert("chat_template".into(), json!(t));
    }
    for (name, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
    ] {
        if let Some(id) = gguf.opt_u32(key)? {
            let text = tokens.get(id as usize).ok_or_else(|| {
                GgufError::metadata(
                    gguf.path(),
                    key,
                    format!(
                        "token id {id} is outside the {}-token vocabulary",
                        tokens.len()
                    ),
                )
            })?;
            cfg.insert(name.into(), json!(text));
        }
    }
    // llama.cpp records whether the model wants an automatic BOS; absent means no, which is
    // also what chat templates that write their own BOS need.
    let add_bos = gguf
        .opt_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(false);
    cfg.insert("add_bos_token".into(), json!(add_bos));
    if let Some(arch) = gguf.opt_str("general.architecture")?
        && let Some(n) = gguf.opt_u32(&format!("{arch}.context_length"))?
    {
        cfg.insert("model_max_length".into(), json!(n));
    }
    Ok(Value::Object(cfg))
}

#[cfg(test)]
#[path = "tokenizer_json_tests.rs"]
mod tests;
