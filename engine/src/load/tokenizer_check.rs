//! Checks on a `tokenizer.json` before the `tokenizers` crate sees it. That crate panics on
//! some malformed files (a merge longer than any token, a syntax error inside `decoder`, a
//! `continuing_subword_prefix` longer than a merge part); parsing the JSON ourselves and
//! checking the BPE merges turns those into errors naming the entry. Anything left is caught
//! by `guard::catch_panic` around the crate.

use std::collections::HashMap;

use serde_json::Value;

/// Larger than any real tokenizer.json (Gemma's is ~35 MB); reading past it is a mistake.
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

/// Most entries listed in one error.
const SHOWN: usize = 3;

/// Parses and checks; the JSON value is handed on so it is parsed only once.
pub fn check_tokenizer_json(text: &str) -> Result<Value, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let model = value
        .get("model")
        .ok_or("no `model` object (is this a tokenizer.json?)")?;
    let kind = model.get("type").and_then(Value::as_str);
    let looks_bpe = model.get("merges").is_some() && model.get("vocab").is_some();
    if kind == Some("BPE") || (kind.is_none() && looks_bpe) {
        check_bpe(model)?;
    }
    Ok(value)
}

fn check_bpe(model: &Value) -> Result<(), String> {
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or("BPE `model.vocab` is not an object of token → id")?;
    let mut ids: HashMap<&str, u64> = HashMap::with_capacity(vocab.len());
    for (token, id) in vocab {
        let id = id
            .as_u64()
            .filter(|&id| id <= u64::from(u32::MAX))
            .ok_or_else(|| format!("vocab entry {token:?} has id {id}, not a 32-bit token id"))?;
        ids.insert(token.as_str(), id);
    }
    let prefix = match model.get("continuing_subword_prefix") {
        None | Some(Value::Null) => "",
        Some(Value::String(p)) => p.as_str(),
        Some(other) => return Err(format!("`continuing_subword_prefix` is {other}, not a string")),
    };
    let merges = match model.get("merges") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(m)) => m,
        Some(_) => return Err("BPE `model.merges` is not a list".into()),
    };
    let mut problems = Vec::new();
    // The crate skips a legacy `#version` header line.
    let is_header = |m: &Value| m.as_str().is_some_and(|s| s.starts_with("#version"));
    for (i, m) in merges.iter().enumerate().filter(|(_, m)| !is_header(m)) {
        if let Err(e) = check_merge(m, &ids, prefix) {
            problems.push(format!("merges[{i}] {e}"));
            if problems.len() > SHOWN {
                break;
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let more = if problems.len() > SHOWN { " …" } else { "" };
    problems.truncate(SHOWN);
    Err(format!("{}{more}", problems.join("; ")))
}

/// A merge as the crate reads it: `"left right"` or `["left", "right"]`.
fn merge_parts(m: &Value) -> Option<(&str, &str)> {
    match m {
        Value::String(s) => {
            let mut parts = s.split(' ');
            let (a, b) = (parts.next()?, parts.next()?);
            parts.next().is_none().then_some((a, b))
        }
        Value::Array(pair) if pair.len() == 2 => Some((pair[0].as_str()?, pair[1].as_str()?)),
        _ => None,
    }
}

fn check_merge(m: &Value, ids: &HashMap<&str, u64>, prefix: &str) -> Result<(), String> {
    let (a, b) = merge_parts(m).ok_or_else(|| format!("{m} is not \"left right\" or [left, right]"))?;
    for part in [a, b] {
        if !ids.contains_key(part) {
            return Err(format!("uses {part:?}, which is not in the vocabulary"));
        }
    }
    // The crate strips the prefix from the right part by byte count, unchecked.
    if !prefix.is_empty() && !b.starts_with(prefix) {
        return Err(format!(
            "right part {b:?} does not start with continuing_subword_prefix {prefix:?}"
        ));
    }
    let merged = format!("{a}{}", &b[prefix.len()..]);
    if !ids.contains_key(merged.as_str()) {
        return Err(format!(
            "makes {merged:?}, which is not in the vocabulary (a merge longer than any token?)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bpe(vocab: Value, merges: Value, prefix: Value) -> String {
        serde_json::json!({"model": {"type": "BPE", "vocab": vocab, "merges": merges,
            "continuing_subword_prefix": prefix}})
        .to_string()
    }

    #[test]
    fn good_merges_pass() {
        let t = bpe(serde_json::json!({"a": 0, "b": 1, "ab": 2}), serde_json::json!(["a b"]), Value::Null);
        assert!(check_tokenizer_json(&t).is_ok());
        let t = bpe(serde_json::json!({"a": 0, "b": 1, "ab": 2}), serde_json::json!([["a", "b"]]), Value::Null);
        assert!(check_tokenizer_json(&t).is_ok());
    }

    #[test]
    fn over_long_merge_is_named() {
        let t = bpe(serde_json::json!({"a": 0, "bbbb": 1}), serde_json::json!(["a bbbb"]), Value::Null);
        let e = check_tokenizer_json(&t).unwrap_err();
        assert!(e.contains("merges[0]") && e.contains("abbbb"), "{e}");
    }

    #[test]
    fn prefix_longer_than_part_is_rejected() {
        let t = bpe(serde_json::json!({"a": 0, "b": 1, "ab": 2}), serde_json::json!(["a b"]), serde_json::json!("####"));
        let e = check_tokenizer_json(&t).unwrap_err();
        assert!(e.contains("continuing_subword_prefix"), "{e}");
    }

    #[test]
    fn syntax_error_is_named() {
        let e = check_tokenizer_json("{\"decoder\": {\"type\": ").unwrap_err();
        assert!(e.starts_with("not valid JSON"), "{e}");
    }
}
