//! A tiny Gemma-style vocabulary; the expected merges and ids come from running transformers'
//! `GGUFGemmaConverter` recipe (Python, tokenizers 0.23) on the same vocabulary.

use super::*;

const TOKENS: [&str; 23] = [
    "<pad>", "<eos>", "<bos>", "<unk>", "\n", "\n\n", "  ", "<b>", "<0x41>", "<0xE4>", "<0xBD>",
    "<0xA0>", "▁", "a", "b", "c", "ab", "bc", "▁a", "abc", "▁ab", "cab", "ca",
];
const TYPES: [i64; 23] = [3, 3, 3, 3, 4, 4, 4, 4, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];

fn scores() -> Vec<f32> {
    (0..TOKENS.len())
        .map(|i| match i {
            0..8 => -1000.0,
            8..12 => 0.0,
            _ => -(i as f32),
        })
        .collect()
}

fn specials() -> GemmaSpecials {
    GemmaSpecials { bos_id: Some(2), unk_id: Some(3), add_bos: true }
}

fn tokenizer() -> tokenizers::Tokenizer {
    let json = gemma_tokenizer_json(&TOKENS, &scores(), &TYPES, &specials()).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn vocabulary_with_space_runs_is_gemma() {
    assert!(is_gemma_vocabulary(&TOKENS));
    assert!(!is_gemma_vocabulary(&["<s>", "▁▁", "\n"]));
}

#[test]
fn merges_follow_vocabulary_order_then_piece_scores() {
    let spelled: Vec<String> = TOKENS.iter().map(|t| spelled(t)).collect();
    assert_eq!(spelled[6], "▁▁");
    let refs: Vec<&str> = spelled.iter().map(String::as_str).collect();
    let got = derive_merges(&refs, &scores());
    let want = [
        ("\n", "\n"), ("▁", "▁"), ("a", "b"), ("b", "c"), ("▁", "a"), ("a", "bc"), ("ab", "c"),
        ("▁", "ab"), ("▁a", "b"), ("c", "ab"), ("ca", "b"), ("c", "a"),
    ];
    assert_eq!(got, want);
}

#[test]
fn encodes_like_transformers() {
    let t = tokenizer();
    let cases: [(&str, &[u32]); 4] = [
        ("abc cab", &[2, 19, 12, 21]),
        // A run of spaces through the respelled `▁▁`, newline runs and `<b>` matched whole,
        // `A` and `你` through byte fallback.
        ("ab  c\n\n\n<b>A你", &[2, 16, 6, 15, 5, 4, 7, 8, 9, 10, 11]),
        (" a<eos>", &[2, 18, 1]),
        ("z", &[2, 3]),
    ];
    for (text, want) in cases {
        let enc = t.encode(text, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(enc.get_ids(), want, "{text:?}");
        let back = t.decode(&want[1..], false).unwrap_or_else(|e| panic!("{e}"));
        if text != "z" {
            assert_eq!(back, text);
        }
        // Without special tokens: no `<bos>`.
        assert_eq!(t.encode(text, false).unwrap_or_else(|e| panic!("{e}")).get_ids(), &want[1..]);
    }
}

#[test]
fn bos_only_when_the_file_asks() {
    let mut s = specials();
    s.add_bos = false;
    let json = gemma_tokenizer_json(&TOKENS, &scores(), &TYPES, &s).unwrap_or_else(|e| panic!("{e}"));
    assert!(json["post_processor"].is_null());
}

#[test]
fn mismatched_lengths_and_bad_ids_are_errors() {
    let short = &scores()[..5];
    let e = gemma_tokenizer_json(&TOKENS, short, &TYPES, &specials()).err().unwrap_or_default();
    assert!(e.contains("tokenizer.ggml.scores has 5 entries"), "{e}");
    let bad = GemmaSpecials { bos_id: Some(99), unk_id: None, add_bos: true };
    let e = gemma_tokenizer_json(&TOKENS, &scores(), &TYPES, &bad).err().unwrap_or_default();
    assert!(e.contains("bos_token_id 99 is outside"), "{e}");
}

#[test]
fn built_directly_equals_the_json_one() {
    for add_bos in [true, false] {
        let s = GemmaSpecials { bos_id: Some(2), unk_id: Some(3), add_bos };
        let json = gemma_tokenizer_json(&TOKENS, &scores(), &TYPES, &s).unwrap_or_else(|e| panic!("{e}"));
        let json: tokenizers::Tokenizer = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        let direct = gemma_tokenizer(&TOKENS, &scores(), &TYPES, &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json.get_vocab(true), direct.get_vocab(true));
        assert_eq!(json.get_added_tokens_decoder(), direct.get_added_tokens_decoder());
        for text in ["abc cab", "ab  c\n\n\n<b>A你", " a<eos>", "z", "", "  ", "<bos>abc<unk>\tca b"] {
            for special in [true, false] {
                let a = json.encode(text, special).unwrap_or_else(|e| panic!("{e}"));
                let b = direct.encode(text, special).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
                assert_eq!(a.get_tokens(), b.get_tokens(), "{text:?}");
                let back = |t: &tokenizers::Tokenizer| t.decode(a.get_ids(), !special).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(back(&json), back(&direct), "{text:?}");
            }
        }
    }
}
