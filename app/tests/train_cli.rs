//! `glassbox grad` and `glassbox train` as users run them: the gradient file matches the
//! fixture's torch reference, training prints the documented JSON and leaves a checkpoint
//! that `glassbox trace` opens, and bad input is one clear line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fixture, glassbox, json_of};

use std::path::PathBuf;
use std::process::Output;

use glassbox_engine::load::weights::Checkpoint;

#[test]
fn grad_writes_what_torch_autograd_computes() {
    // Every family with a torch reference: the ids (and BERT's labels) come from the file.
    for name in ["tiny-mha-untied", "tiny-gpt2", "tiny-bert-mlm", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let compared = grad_matches_reference(name);
        assert!(compared > 15, "{name}: {compared} gradients compared");
    }
}

/// `glassbox grad` on a fixture, its file compared with the fixture's `grad.safetensors`
/// name by name (every `grad.*` key: parameters under the checkpoint's own names, hooks).
fn grad_matches_reference(name: &str) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("g.safetensors");
    let model = fixture(name);
    let reference = Checkpoint::open(&[model.join("grad.safetensors")]).unwrap();
    let goldens = glassbox_tests::read_goldens(&model.join("grad.safetensors")).unwrap();
    let list = |key: &str| goldens.get(key).map(|g| g.values.iter().map(|x| format!("{}", *x as i64)).collect::<Vec<_>>().join(","));
    let ids = list("input_ids").unwrap();
    let mut args = vec!["grad", "--model", model.to_str().unwrap(), "--token-ids", &ids, "--out", file.to_str().unwrap(), "--json"];
    let labels = list("labels");
    if let Some(labels) = &labels {
        args.extend(["--mlm-labels", labels.as_str()]);
    }
    let v = json_of(&glassbox(&args));
    let ours = Checkpoint::open(&[file]).unwrap();
    let loss_ref = reference.tensor_f32("loss").unwrap().1[0];
    assert!((v["loss"].as_f64().unwrap() as f32 - loss_ref).abs() <= 1e-5, "{name}: loss {} vs {loss_ref}", v["loss"]);
    let mut compared = 0;
    for key in reference.names().filter(|n| n.starts_with("grad.")) {
        let (shape_ref, want) = reference.tensor_f32(key).unwrap();
        let (shape, got) = ours.tensor_f32(key).unwrap_or_else(|e| panic!("{name}: {key}: {e}"));
        assert_eq!(shape, shape_ref, "{name}: {key}");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        // BERT's key-bias gradient is 0 in exact arithmetic (torch stores rounding): a floor.
        assert!(err <= (1e-4 * scale).max(1e-6), "{name}: {key}: {err:e} > 1e-4 × {scale:e}");
        compared += 1;
    }
    let extra: Vec<&str> = ours.names().filter(|n| n.starts_with("grad.model") || n.starts_with("grad.transformer") || n.starts_with("grad.bert")).filter(|n| !reference.contains(n)).collect();
    assert!(extra.is_empty(), "{name}: parameters torch does not have: {extra:?}");
    compared
}

#[test]
fn train_prints_the_documented_json_and_its_checkpoint_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let v = json_of(&glassbox(&[
        "train", "--preset", "induction", "--steps", "4", "--eval-every", "2", "--seed", "3", "--workers", "2",
        "--out", out.to_str().unwrap(), "--json",
    ]));
    assert_eq!(v["loss"].as_array().unwrap().len(), 4);
    let evals = v["eval"].as_array().unwrap();
    assert_eq!(evals.iter().map(|e| e["step"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 2, 4]);
    for e in evals {
        assert!(e["loss"].is_f64() && e["induction_score"].is_f64());
    }
    assert_eq!(PathBuf::from(v["checkpoint"].as_str().unwrap()), out);
    assert!(v["steps_per_second"].as_f64().unwrap() > 0.0);
    let t = json_of(&glassbox(&["trace", "--model", out.to_str().unwrap(), "--prompt", "<s> t4 t9 t4", "--json"]));
    assert_eq!(t["token_ids"], serde_json::json!([0, 4, 9, 4]));
    assert!(out.join("checkpoints/step-000002/model.safetensors").is_file());
}

#[test]
fn bad_training_input_is_one_clear_line() {
    let one_line = |out: Output, needle: &str| {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "expected {needle:?} in {err}");
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("g.safetensors");
    let m = fixture("tiny-gqa-tied");
    let (m, f) = (m.to_str().unwrap(), f.to_str().unwrap());
    one_line(glassbox(&["grad", "--model", m, "--token-ids", "5", "--out", f]), "at least 2");
    one_line(glassbox(&["grad", "--model", m, "--token-ids", "5,900", "--out", f]), "900");
    one_line(glassbox(&["grad", "--model", m, "--token-ids", "5,6", "--mlm-labels", "-100,6", "--out", f]), "next token");
    let bert = fixture("tiny-bert-mlm");
    let bert = bert.to_str().unwrap();
    one_line(glassbox(&["grad", "--model", bert, "--token-ids", "5,3,7", "--out", f]), "--mlm-labels");
    one_line(glassbox(&["grad", "--model", bert, "--token-ids", "5,3,7", "--mlm-labels", "-100,6", "--out", f]), "2 values for 3 tokens");
    one_line(glassbox(&["grad", "--model", bert, "--token-ids", "5,3,7", "--mlm-labels", "-100,-100,-100", "--out", f]), "scored");
    one_line(glassbox(&["train", "--preset", "induction", "--workers", "3", "--out", f]), "--workers 3");
}
