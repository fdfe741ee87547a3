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
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("g.safetensors");
    let model = fixture("tiny-mha-untied");
    let ids = "67,84,47,57,24,8,27,5,10,38,70";
    let v = json_of(&glassbox(&[
        "grad", "--model", model.to_str().unwrap(), "--token-ids", ids, "--out", file.to_str().unwrap(), "--json",
    ]));
    let ours = Checkpoint::open(&[file]).unwrap();
    let reference = Checkpoint::open(&[model.join("grad.safetensors")]).unwrap();
    let loss_ref = reference.tensor_f32("loss").unwrap().1[0];
    assert!((v["loss"].as_f64().unwrap() as f32 - loss_ref).abs() <= 1e-5);
    let mut compared = 0;
    for name in reference.names().filter(|n| n.starts_with("grad.")) {
        let (shape_ref, want) = reference.tensor_f32(name).unwrap();
        let (shape, got) = ours.tensor_f32(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(shape, shape_ref, "{name}");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-4 * scale, "{name}: {err:e}");
        compared += 1;
    }
    assert!(compared > 30, "{compared} gradients compared");
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
    one_line(glassbox(&["train", "--preset", "induction", "--workers", "3", "--out", f]), "--workers 3");
}
