//! Tokenizer training (article §2.1, preprocessing): a byte-level BPE learned from the
//! corpus with the `tokenizers` crate's trainer. Every byte is a token to begin with, so any
//! text (Chinese included) encodes; merges then join the most frequent pairs until the
//! vocabulary is full.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerBuilder, TokenizerImpl,
};

use crate::error::{EngineError, Result};

pub type Bpe = TokenizerImpl<BPE, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper>;

/// The start-of-text token, id 0.
pub const BOS: &str = "<s>";

fn err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Tokenizer(format!("training the BPE: {e}"))
}

/// Trains a byte-level BPE of at most `vocab_size` tokens on `lines`.
pub fn train_bpe(lines: &[&str], vocab_size: usize) -> Result<Bpe> {
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(BOS, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tok: Bpe = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(None)
        .with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true))))
        .with_post_processor(None)
        .with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevelDecoder::default())))
        .build()
        .map_err(err)?;
    tok.train(&mut trainer, lines.iter()).map_err(err)?;
    Ok(tok)
}

/// The tokenizer as `tokenizer.json` text (what a checkpoint folder holds).
pub fn to_json(tok: &Bpe) -> Result<String> {
    tok.to_string(false).map_err(err)
}

pub fn encode(tok: &Bpe, text: &str) -> Result<Vec<u32>> {
    Ok(tok.encode(text, false).map_err(err)?.get_ids().to_vec())
}

pub fn decode(tok: &Bpe, ids: &[u32]) -> Result<String> {
    tok.decode(ids, true).map_err(err)
}

/// A word-level tokenizer for the induction preset: `<s>` then `t1`, `t2`, … so the views
/// show which random token sits where.
pub fn numbered_tokens_json(vocab: usize) -> String {
    let names: Vec<String> = (0..vocab).map(|i| if i == 0 { BOS.into() } else { format!("t{i}") }).collect();
    word_tokens_json(&names)
}

/// A word-level `tokenizer.json` over `names` (id = index, id 0 is `<s>`, whitespace-split).
pub fn word_tokens_json(names: &[String]) -> String {
    let mut map = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        map.insert(n.clone(), i.into());
    }
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{"id": 0, "content": BOS, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": map, "unk_token": BOS},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpe_learns_merges_and_round_trips_chinese() {
        let lines = ["the cat sat on the mat", "the cat ate", "小猫坐在垫子上。小猫吃饭。"];
        let tok = train_bpe(&lines, 300).unwrap();
        assert!(tok.get_vocab_size(true) > 257, "merges were learned");
        let ids = encode(&tok, "the cat 小猫").unwrap();
        assert!(ids.len() < "the cat 小猫".len(), "fewer tokens than bytes: {ids:?}");
        assert_eq!(decode(&tok, &ids).unwrap(), "the cat 小猫");
        assert_eq!(tok.token_to_id(BOS), Some(0));
        let json = to_json(&tok).unwrap();
        let back: tokenizers::Tokenizer = json.parse().unwrap();
        assert_eq!(back.encode("the cat", false).unwrap().get_ids(), encode(&tok, "the cat").unwrap());
        let words: tokenizers::Tokenizer = numbered_tokens_json(10).parse().unwrap();
        assert_eq!(words.encode("<s> t3 t9", false).unwrap().get_ids(), &[0, 3, 9]);
    }
}
