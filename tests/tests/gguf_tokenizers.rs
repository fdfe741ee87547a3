//! OLMo 2's and Phi-3's GGUF tokenizers against transformers 5.24's GGUF tokenizer on the same
//! files (`fixtures/gguf-tokenizers`, `scripts/make_gguf_tokenizer_fixtures.py`): OLMo 2's
//! byte-level BPE under llama.cpp's `dbrx` and `olmo` pre-tokenizer names, Phi-3's
//! SentencePiece-style vocabulary (`tokenizer.ggml.model = llama`, merges from the scores, `▁`
//! prepended by the normalizer); texts with Chinese, runs of spaces, digits, tabs and newlines,
//! control and user-defined tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use glassbox_engine::load::gguf::{GgufFile, build_tokenizer_config_json, build_tokenizer_json};
use glassbox_engine::load::tokenizer::Tokenizer;
use glassbox_tests::fixtures_dir;

fn tokenizer(name: &str) -> Tokenizer {
    let path = fixtures_dir().join("gguf-tokenizers").join(name);
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = build_tokenizer_json(&file).unwrap_or_else(|e| panic!("{name}: {e}")).to_string();
    let config = build_tokenizer_config_json(&file).unwrap().as_object().cloned().unwrap_or_default();
    Tokenizer::from_texts(&path, &text, &path, config, 1 << 20).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn olmo2_and_phi3_gguf_tokenizers_give_transformers_ids() {
    let text = std::fs::read_to_string(fixtures_dir().join("gguf-tokenizers/golden.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = golden.as_object().unwrap();
    assert_eq!(files.len(), 3, "olmo2-dbrx, olmo-gpt2, phi3-spm");
    for (name, cases) in files {
        let tok = tokenizer(name);
        for case in cases.as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
            assert_eq!(tok.encode_prompt(text).unwrap(), want, "{name}: {text:?}");
        }
    }
}
