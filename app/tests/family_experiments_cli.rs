//! Everything built on hooks, from the command line, on every family: `dla` on the real
//! Gemma 3 270M against transformers' modules; `patch`, `heads`, `compare` and `bench` on the
//! GPT-2, BERT and Gemma 3 fixtures; `generate` reporting the KV cache it holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_one_line_error, fixture, glassbox, json_of};


/// Gemma 3 270M in the cache, or `false` with a note (a failure under `GLASSBOX_REQUIRE_MODEL`).
fn gemma_ready() -> bool {
    let dir = glassbox_engine::load::fetch::KnownModel::Gemma3_270m.dir().unwrap();
    if glassbox_engine::load::fetch::is_complete(&dir) {
        return true;
    }
    assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but Gemma 3 270M is not in {}", dir.display());
    eprintln!("note: skipping: run `glassbox fetch gemma-3-270m`");
    false
}

/// `glassbox dla --model gemma-3-270m`: the shares sum to the logit, and each is transformers'
/// (`scripts/gemma-dla-golden.py`, through the sandwich norms with their scales held fixed).
#[test]
fn gemma3_270m_dla_sums_to_the_logit_and_matches_transformers() {
    if !gemma_ready() {
        return;
    }
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("gemma-3-270m/dla_paris.json")).unwrap()).unwrap();
    let out = glassbox(&["--model", "gemma-3-270m", "dla", "--prompt", golden["prompt"].as_str().unwrap(), "--target", golden["target"].as_str().unwrap(), "--json"]);
    let v = json_of(&out);
    assert_eq!(v["token_ids"], golden["input_ids"], "the prompt starts with <bos>, as transformers'");
    let (logit, sum) = (v["logit"].as_f64().unwrap(), v["sum_of_components"].as_f64().unwrap());
    eprintln!("logit {logit}, sum of components {sum}, transformers' logit {}", golden["logit"]);
    assert!((sum - logit).abs() <= 1e-3 * logit.abs().max(1.0), "sum {sum} vs logit {logit}");
    assert!((logit - golden["logit"].as_f64().unwrap()).abs() <= 2e-3);
    let shares = golden["shares"].as_object().unwrap();
    let mut worst = 0.0f64;
    for c in v["components"].as_array().unwrap().iter().filter(|c| shares.contains_key(c["name"].as_str().unwrap())) {
        worst = worst.max((c["value"].as_f64().unwrap() - shares[c["name"].as_str().unwrap()].as_f64().unwrap()).abs());
    }
    eprintln!("largest share difference vs transformers: {worst:.1e}");
    assert!(worst <= 2e-3, "a share differs from transformers' by {worst}");
}

/// A copy of a fixture with a word-level tokenizer: `w1` … `w40` are ids 1 … 40.
fn with_words(name: &str) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture(name).join(f), dir.join(f)).unwrap();
    }
    let vocab: serde_json::Map<String, serde_json::Value> = std::iter::once(("[UNK]".to_string(), 0.into())).chain((1..=40).map(|i| (format!("w{i}"), i.into()))).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let path = dir.to_str().unwrap().to_string();
    (tmp, path)
}

const PROMPT: &str = "w5 w9 w13 w2 w31 w7 w22 w13 w2";

#[test]
fn dla_splits_gpt2_and_gemma3_and_refuses_bert_in_one_line() {
    for name in ["tiny-gpt2", "tiny-gemma3"] {
        let (_tmp, dir) = with_words(name);
        let v = json_of(&glassbox(&["dla", "--model", &dir, "--prompt", PROMPT, "--target", "#7", "--minus", "#8", "--json"]));
        let (logit, sum) = (v["logit"].as_f64().unwrap(), v["sum_of_components"].as_f64().unwrap());
        assert!((sum - logit).abs() <= 1e-3 * logit.abs().max(1.0), "{name}: sum {sum} vs logit {logit}");
        let names: Vec<&str> = v["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names.contains(&"ln_final.bias"), name == "tiny-gpt2", "{name}: {names:?}");
    }
    let (_tmp, dir) = with_words("tiny-bert-mlm");
    assert_one_line_error(&glassbox(&["dla", "--model", &dir, "--prompt", PROMPT, "--target", "#7"]), "not defined for bert");
}

/// `generate --json` reports the KV cache it holds: tiny-gemma3's three local layers (window 4)
/// keep 3 rows plus the last pass's one, its global layer all 20 positions.
#[test]
fn generate_reports_the_kv_cache_bytes_a_window_keeps() {
    let ids = "75,65,91,50,24,46,23,43,18,88,32,21,76";
    let dir = fixture("tiny-gemma3");
    let v = json_of(&glassbox(&["generate", "--model", dir.to_str().unwrap(), "--token-ids", ids, "--max-new-tokens", "8", "--json"]));
    let row = 16 * 2 * 4; // kv_dim 16, keys and values, f32
    assert_eq!(v["kv_cache_bytes_every_row"], 4 * 20 * row);
    assert_eq!(v["kv_cache_bytes"], (3 * 4 + 20) * row);
    let out = glassbox(&["generate", "--model", dir.to_str().unwrap(), "--token-ids", ids, "--max-new-tokens", "8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("KV cache: 4.0 KiB held for 20 positions (10.0 KiB if every layer kept every position)"), "{err}");
}

/// `glassbox bench` on a Gemma 3 folder (the tiny fixture with a tokenizer): every figure there.
/// (`--model gemma-3-270m` works the same way; minutes on 2 cores, so by hand.)
#[test]
fn bench_runs_on_a_gemma3_folder() {
    let (_tmp, dir) = with_words("tiny-gemma3");
    let v = json_of(&glassbox(&["--model", &dir, "bench", "--tokens", "8", "--runs", "1", "--decode-tokens", "2", "--json"]));
    assert_eq!(v["prompt_tokens"], 8);
    for key in ["prefill_full_capture_ms", "prefill_no_capture_ms", "decode_tokens_per_s"] {
        assert!(v["result"][key].as_f64().is_some_and(|x| x > 0.0), "{key}: {v}");
    }
    assert!(v["peak_rss_mib"].as_f64().is_some_and(|x| x > 0.0));
}

/// `patch`, `heads` and `compare` from the command line on GPT-2, BERT and Gemma 3: patching
/// block 0's stream of the one differing token restores the clean run, a run compared with
/// itself parts nowhere, head scores come for every layer and head.
#[test]
fn patch_heads_and_compare_run_on_every_family() {
    for name in ["tiny-gpt2", "tiny-bert-mlm", "tiny-gemma3"] {
        let (_tmp, dir) = with_words(name);
        let corrupt = "w5 w9 w13 w2 w30 w7 w22 w13 w2";
        let v = json_of(&glassbox(&["patch", "--model", &dir, "--clean", PROMPT, "--corrupt", corrupt, "--answer", "#7", "--wrong", "#8", "--hook", "resid_pre", "--layers", "0", "--json"]));
        let row: Vec<f64> = v["scores"][0].as_array().unwrap_or_else(|| panic!("{name}: {v}")).iter().map(|s| s.as_f64().unwrap()).collect();
        for (p, s) in row.iter().enumerate() {
            let want = if p == 4 { 1.0 } else { 0.0 };
            assert!((s - want).abs() < 1e-3, "{name}: position {p} scores {s}");
        }
        let v = json_of(&glassbox(&["compare", "--model", &dir, "--prompt", PROMPT, "--json"]));
        assert!(v["first_apart"].is_null() && v["residual_rel_l2"].as_array().unwrap().iter().all(|d| d == 0.0), "{name}: {v}");
        let v = json_of(&glassbox(&["heads", "--model", &dir, "--probe-len", "6", "--json"]));
        assert_eq!(v["induction"].as_array().unwrap().len(), if name == "tiny-gemma3" { 4 } else { 2 }, "{name}: {v}");
    }
}
