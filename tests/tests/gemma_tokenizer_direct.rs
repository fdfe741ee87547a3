//! Gemma 3 270M's tokenizer built directly from the GGUF (what a native load does, without
//! the JSON of 262,144 tokens) is the tokenizer the converter's tokenizer.json describes: the
//! same vocabulary and added tokens, the same ids for every text (transformers' own ids for
//! the fixture cases), the same text back. Skipped without the cached GGUF unless
//! `GLASSBOX_REQUIRE_MODEL` is set.

use std::path::{Path, PathBuf};

use glassbox_engine::load::fetch::{GEMMA_GGUF_NAME, KnownModel};
use glassbox_engine::load::gguf::{GgufFile, build_gemma_tokenizer, build_tokenizer_config_json, build_tokenizer_json};
use glassbox_engine::load::tokenizer::{Pieces, Tokenizer};
use serde_json::Value;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gemma-3-270m/tokenizer_cases.json");

fn gguf() -> Option<PathBuf> {
    let path = KnownModel::Gemma3_270m.dir().ok()?.join(GEMMA_GGUF_NAME);
    if path.exists() {
        return Some(path);
    }
    let why = format!("{} is missing (run `glassbox fetch gemma-3-270m`)", path.display());
    assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but {why}");
    eprintln!("note: skipping: {why}");
    None
}

/// (through tokenizer.json, built directly), as the converter and the native load make them.
fn both(path: &Path) -> (Tokenizer, Tokenizer) {
    let file = GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"));
    let config = || build_tokenizer_config_json(&file).unwrap_or_else(|e| panic!("{e}")).as_object().cloned().unwrap_or_default();
    let text = build_tokenizer_json(&file).unwrap_or_else(|e| panic!("{e}")).to_string();
    let vocab = 262_144;
    let from_json = Tokenizer::from_texts(path, &text, path, config(), vocab).unwrap_or_else(|e| panic!("{e}"));
    let inner = build_gemma_tokenizer(&file).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("not a Gemma vocabulary"));
    let pieces = Pieces { metaspace: true, byte_level: false };
    let direct = Tokenizer::from_inner(path, inner, pieces, path, config(), vocab).unwrap_or_else(|e| panic!("{e}"));
    (from_json, direct)
}

fn texts() -> Vec<String> {
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(CASES).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    let mut texts: Vec<String> = cases.as_array().into_iter().flatten().filter_map(|c| c["text"].as_str().map(String::from)).collect();
    texts.extend(
        [
            "",
            " ",
            "     five spaces, then\t\ttwo tabs",
            "你好，世界！機器學習是人工智慧的一個分支。",
            "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
            "<bos>already<eos> <pad><unk>",
            "<b>bold</b> <table><tr><td>x</td></tr></table>",
            "emoji 🦀🧪 and rare ꙮ 𓀀 bytes \u{7f}\u{1}",
            "line\n\n\n\nbreaks\r\n and trailing   ",
            "numbers 1234567890 3.14159 -42",
            "The quick brown fox jumps over the lazy dog.",
        ]
        .map(String::from),
    );
    texts
}

#[test]
fn gemma_tokenizer_built_directly_equals_the_json_one() {
    let Some(path) = gguf() else { return };
    let (json, direct) = both(&path);
    assert_eq!(json.vocab_size(), direct.vocab_size());
    for id in (0..262_144u32).step_by(97).chain([0, 1, 2, 3, 105, 106, 255_999, 262_143]) {
        assert_eq!(json.piece(id), direct.piece(id), "piece {id}");
        assert_eq!(json.is_special(id), direct.is_special(id), "special {id}");
        assert_eq!(json.token_bytes(id), direct.token_bytes(id), "bytes {id}");
    }
    for text in texts() {
        let ids = json.encode_prompt(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids, direct.encode_prompt(&text).unwrap_or_else(|e| panic!("{e}")), "{text:?}");
        assert_eq!(json.encode(&text).unwrap_or_else(|e| panic!("{e}")), direct.encode(&text).unwrap_or_else(|e| panic!("{e}")), "{text:?}");
        assert_eq!(json.decode(&ids).unwrap_or_else(|e| panic!("{e}")), direct.decode(&ids).unwrap_or_else(|e| panic!("{e}")), "{text:?}");
    }
    // transformers' ids for the fixture cases.
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(CASES).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
    for case in cases.as_array().into_iter().flatten() {
        let (Some(text), Some(want)) = (case["text"].as_str(), case["ids"].as_array()) else { continue };
        let want: Vec<u32> = want.iter().filter_map(|v| v.as_u64().map(|v| v as u32)).collect();
        assert_eq!(direct.encode_prompt(text).unwrap_or_else(|e| panic!("{e}")), want, "{text:?}");
    }
}
