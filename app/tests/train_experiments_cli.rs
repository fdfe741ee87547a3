//! `glassbox train --experiment NAME` as users run it, at a few steps: compare.json names the
//! experiment and every run carries `final_eval` with exactly its keys (finite, accuracies
//! in [0, 1]); the article's sweep has its six points; the same seed twice gives the same
//! curves bit for bit; the task checkpoints open in `glassbox trace`; a bad name is one line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{assert_one_line_error, glassbox, json_of};

use std::path::Path;

use serde_json::Value;

fn experiment(name: &str, steps: &str, out: &Path) -> Value {
    let v = json_of(&glassbox(&["train", "--experiment", name, "--steps", steps, "--seed", "7", "--out", out.to_str().unwrap(), "--json"]));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(v, file, "stdout is compare.json");
    assert_eq!(v["experiment"], name);
    assert!(out.join("compare.png").is_file() && out.join("compare.svg").is_file());
    v
}

/// Every run's names, and that its `final_eval` has exactly `keys`, all finite.
fn check_runs(v: &Value, runs: &[&str], keys: &[&str], out: &Path) {
    let got: Vec<&str> = v["runs"].as_array().unwrap().iter().map(|r| r["recipe"].as_str().unwrap()).collect();
    assert_eq!(got, runs);
    for run in v["runs"].as_array().unwrap() {
        let eval = run["final_eval"].as_object().unwrap();
        let mut have: Vec<&str> = eval.keys().map(String::as_str).collect();
        let mut want = keys.to_vec();
        have.sort_unstable();
        want.sort_unstable();
        assert_eq!(have, want, "{}", run["recipe"]);
        for (k, x) in eval {
            let x = x.as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite(), "{} {k} = {x}", run["recipe"]);
            if k.contains("acc") {
                assert!((0.0..=1.0).contains(&x), "{} {k} = {x}", run["recipe"]);
            } else {
                assert!(x >= 0.0, "{} {k} = {x}", run["recipe"]);
            }
        }
        assert!(run["loss"].as_array().unwrap().iter().all(|l| l.as_f64().is_some_and(f64::is_finite)));
        assert!(run["steps_per_second"].as_f64().unwrap() > 0.0);
        assert!(out.join(run["recipe"].as_str().unwrap()).join("model.safetensors").is_file());
    }
}

#[test]
fn article_compares_five_recipes_and_sweeps_six_learning_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let v = experiment("article", "3", tmp.path());
    check_runs(&v, &["article", "llama", "llama-postnorm", "llama-relu", "llama-learned"], &["held_out_loss"], tmp.path());
    let sweep = v["lr_sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 6);
    for (p, want) in sweep.iter().zip(["llama", "llama", "llama", "article", "article", "article"]) {
        assert_eq!(p["recipe"], want);
        assert!(p["peak_lr"].as_f64().unwrap() > 0.0 && p["diverged"].is_boolean());
    }
    let lrs: Vec<f64> = sweep[..3].iter().map(|p| p["peak_lr"].as_f64().unwrap()).collect();
    assert!((lrs[1] / lrs[0] - 4.0).abs() < 1e-3 && (lrs[2] / lrs[0] - 16.0).abs() < 1e-3, "{lrs:?}");
}

#[test]
fn positions_scores_the_copy_at_three_lengths_and_its_checkpoints_open() {
    let tmp = tempfile::tempdir().unwrap();
    let v = experiment("positions", "4", tmp.path());
    let keys = ["copy_acc_32", "copy_acc_64", "copy_acc_128", "copy_loss_32", "copy_loss_64", "copy_loss_128"];
    check_runs(&v, &["llama", "llama-learned", "llama-nope"], &keys, tmp.path());
    let model = tmp.path().join("llama-learned");
    let t = json_of(&glassbox(&["trace", "--model", model.to_str().unwrap(), "--prompt", "<s> c3 c7 <sep> c3", "--json"]));
    assert_eq!(t["token_ids"], serde_json::json!([0, 5, 9, 1, 5]));
}

#[test]
fn objectives_scores_both_models_on_the_same_blanks() {
    let tmp = tempfile::tempdir().unwrap();
    let v = experiment("objectives", "3", tmp.path());
    check_runs(&v, &["bert-mlm", "llama"], &["fill_blank_acc", "fill_blank_loss", "next_token_acc", "next_token_loss"], tmp.path());
    let llama = &v["runs"][1]["final_eval"];
    assert_eq!(llama["fill_blank_loss"], llama["next_token_loss"], "Llama sees only the left context either way");
}

#[test]
fn window_recalls_near_and_far_and_the_same_seed_repeats_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let va = experiment("window", "5", &a);
    check_runs(&va, &["gemma3", "gemma3-global"], &["near_acc", "far_acc"], &a);
    let vb = experiment("window", "5", &b);
    for (ra, rb) in va["runs"].as_array().unwrap().iter().zip(vb["runs"].as_array().unwrap()) {
        assert_eq!(ra["loss"], rb["loss"], "{}: the same seed, the same curve", ra["recipe"]);
        assert_eq!(ra["final_eval"], rb["final_eval"]);
        assert_eq!(ra["batches_hash"], rb["batches_hash"]);
    }
    let config: Value = serde_json::from_str(&std::fs::read_to_string(a.join("gemma3/config.json")).unwrap()).unwrap();
    assert_eq!(config["sliding_window"], 4);
    assert!(config["layer_types"].as_array().unwrap().iter().all(|t| t == "sliding_attention"), "{config}");
    let model = a.join("gemma3");
    let t = json_of(&glassbox(&["trace", "--model", model.to_str().unwrap(), "--prompt", "<s> k2 . . <q>", "--json"]));
    assert_eq!(t["token_ids"], serde_json::json!([0, 5, 2, 2, 1]));
}

#[test]
fn an_unknown_experiment_is_one_line_listing_the_four() {
    let tmp = tempfile::tempdir().unwrap();
    let out = glassbox(&["train", "--experiment", "grokking", "--out", tmp.path().to_str().unwrap()]);
    assert_one_line_error(&out, "`grokking`");
    let text = String::from_utf8_lossy(&out.stderr);
    for name in ["article", "positions", "objectives", "window"] {
        assert!(text.contains(name), "{text}");
    }
}
