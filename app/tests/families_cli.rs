//! The binary on GPT-2, BERT and Gemma 3: `trace`, `generate`, `export --token-ids` on the tiny
//! fixtures; the real Gemma 3 270M with heads ablated against transformers; the two CLI defects
//! the architectures issue names (an unrecorded hook, a prompt past the context).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_one_line_error, fixture, glassbox, json_of};

fn path(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

const GPT2_IDS: &str = "95,28,82,31,46,90,79,46,41,88,11,76,5";
const BERT_IDS: &str = "39,23,3,71,51,3,55,67,46,3,87,42";

#[test]
fn causal_families_generate_their_golden_tokens_from_the_cli() {
    for (name, ids, want) in [
        ("tiny-gpt2", GPT2_IDS, [30, 52, 6, 52, 75, 52, 6, 5]),
        ("tiny-gemma3", "75,65,91,50,24,46,23,43,18,88,32,21,76", [66, 55, 55, 61, 61, 61, 61, 32]),
    ] {
        let out = glassbox(&["generate", "--model", &path(name), "--token-ids", ids, "--max-new-tokens", "8", "--json"]);
        assert_eq!(json_of(&out)["generated_ids"], serde_json::json!(want), "{name}");
    }
}

#[test]
fn bert_predicts_at_its_mask_positions_and_says_it_does_not_generate() {
    let out = glassbox(&["trace", "--model", &path("tiny-bert-mlm"), "--token-ids", BERT_IDS, "--mask-id", "3", "--top-k", "3", "--json"]);
    let v = json_of(&out);
    let masked = v["masked"].as_array().unwrap();
    let positions: Vec<u64> = masked.iter().map(|m| m["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, [2, 5, 9]);
    assert!(masked.iter().all(|m| m["top_k"].as_array().unwrap().len() == 3));
    // Its argmax at position 5 is the label there (36), as transformers' logits say.
    assert_eq!(masked[1]["top_k"][0]["id"], 36);
    let out = glassbox(&["generate", "--model", &path("tiny-bert-mlm"), "--token-ids", BERT_IDS]);
    assert_one_line_error(&out, "masked language model");
}

#[test]
fn export_takes_token_ids_and_refuses_a_hook_the_model_does_not_record() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("x.npz");
    let npz = npz.to_str().unwrap();
    let out = glassbox(&["export", "--model", &path("tiny-gemma3"), "--token-ids", "1,2,3", "--hooks", "blocks.0.ln1_post.hook_normalized,attn.hook_q_normed", "--out", npz]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 tensors"));
    for (model, hooks) in [("tiny-gemma3", "blocks.99.hook_resid_post"), ("tiny-gpt2", "attn.hook_rot_q"), ("tiny-gqa-tied", "hook_pos_embed")] {
        let out = glassbox(&["export", "--model", &path(model), "--token-ids", "1,2,3", "--hooks", hooks, "--out", npz]);
        assert_one_line_error(&out, "does not record");
    }
}

#[test]
fn a_prompt_past_the_context_fails_at_once_naming_the_context() {
    // tiny-gpt2 has 64 positions.
    let ids = vec!["1"; 65].join(",");
    let started = std::time::Instant::now();
    let out = glassbox(&["trace", "--model", &path("tiny-gpt2"), "--token-ids", &ids, "--json"]);
    assert_one_line_error(&out, "context of 64 tokens");
    assert!(started.elapsed().as_secs() < 30);
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long.txt");
    std::fs::write(&long, "word ".repeat(3000)).unwrap();
    let (_tmp, with_tok) = glassbox_tests_fixture_with_tokenizer();
    let out = glassbox(&["trace", "--model", with_tok.to_str().unwrap(), "--prompt-file", long.to_str().unwrap(), "--json"]);
    assert_one_line_error(&out, "context of 128 tokens");
}

/// tiny-gqa-tied (128 positions) with a word-level tokenizer that knows "word".
fn glassbox_tests_fixture_with_tokenizer() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny-gqa-tied").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("tokenizer.json"),
        r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
           "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
           "model":{"type":"WordLevel","vocab":{"word":5,"[UNK]":0},"unk_token":"[UNK]"}}"#,
    )
    .unwrap();
    (tmp, dir)
}

/// `glassbox trace --model gemma-3-270m --ablate-heads 5.0,5.1` against transformers with the
/// same heads' slice of `o_proj`'s input zeroed (`scripts/gemma-ablation-golden.py`).
#[test]
fn gemma3_270m_with_heads_ablated_matches_transformers() {
    let dir = glassbox_engine::load::fetch::KnownModel::Gemma3_270m.dir().unwrap();
    if !glassbox_engine::load::fetch::is_complete(&dir) {
        assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but Gemma 3 270M is not in {}", dir.display());
        eprintln!("note: skipping: run `glassbox fetch gemma-3-270m`");
        return;
    }
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("gemma-3-270m/ablation_5.0_5.1.json")).unwrap()).unwrap();
    let out = glassbox(&["--model", "gemma-3-270m", "trace", "--prompt", golden["prompt"].as_str().unwrap(), "--ablate-heads", "5.0,5.1", "--top-k", "10", "--json"]);
    let v = json_of(&out);
    assert_eq!(v["token_ids"], golden["input_ids"]);
    let ours: Vec<(u64, f64)> = v["top_k"].as_array().unwrap().iter().map(|t| (t["id"].as_u64().unwrap(), t["logit"].as_f64().unwrap())).collect();
    let want: Vec<(u64, f64)> = golden["ablated_top10"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap())).collect();
    assert_eq!(ours.iter().map(|p| p.0).collect::<Vec<_>>(), want.iter().map(|p| p.0).collect::<Vec<_>>());
    let worst = ours.iter().zip(&want).map(|(a, b)| (a.1 - b.1).abs()).fold(0.0, f64::max);
    assert!(worst <= glassbox_tests::tolerance::INTERVENTION_LOGITS_ABS, "ablated logits differ by {worst}");
    // The ablation changes the answer's logits (it is not a no-op).
    let plain = golden["plain_top10"][0][1].as_f64().unwrap();
    assert!((plain - want[0].1).abs() > 0.1);
}
