//! `glassbox patch`, `dla`, `heads`, `export` and `compare` as users run them, against the
//! transformers reference on SmolLM2, on the CPU and on the GPU (lavapipe in CI). On the GPU,
//! patching runs the last layers only: each patched pass starts at its layer, so those are
//! the cheap ones on a software GPU.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{glassbox, json_of, smollm2_ready};


use glassbox_tests::golden;

/// The devices to run on: the CPU, and the GPU where an adapter exists (required in CI).
fn devices() -> Vec<&'static str> {
    match glassbox_engine::exec::gpu::GpuContext::new() {
        Ok(Some(_)) => vec!["cpu", "gpu"],
        other => {
            assert!(std::env::var("GLASSBOX_REQUIRE_GPU").map_or(true, |v| v != "1"), "GLASSBOX_REQUIRE_GPU=1 but no adapter: {other:?}");
            vec!["cpu"]
        }
    }
}

fn tolerance(device: &str, cpu: f64) -> f64 {
    if device == "cpu" { cpu } else { 1e-2 }
}

fn as_grid(v: &serde_json::Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn dla_reproduces_transformers() {
    if !smollm2_ready() {
        return;
    }
    let case = &golden::interventions().dla[0];
    for device in devices() {
        let v = json_of(&glassbox(&["dla", "--prompt", &case.prompt, "--target", &case.target, "--json", "--device", device]));
        assert_eq!(v["target_id"], case.target_id);
        assert!((v["logit"].as_f64().unwrap() - case.logit).abs() <= tolerance(device, 2e-3));
        let ours = v["components"].as_array().unwrap();
        assert_eq!(ours.len(), case.components.len());
        for (o, w) in ours.iter().zip(&case.components) {
            assert_eq!(o["name"], w.name.as_str());
            assert!((o["value"].as_f64().unwrap() - w.value).abs() <= tolerance(device, 2e-3), "{device}: {} {o} vs {}", w.name, w.value);
        }
    }
}

#[test]
fn heads_reproduce_transformers() {
    if !smollm2_ready() {
        return;
    }
    let case = &golden::interventions().heads[0];
    let ids: Vec<String> = case.token_ids.iter().map(u32::to_string).collect();
    for device in devices() {
        let v = json_of(&glassbox(&["heads", "--token-ids", &ids.join(","), "--json", "--device", device]));
        for (name, want) in [("previous_token", &case.previous_token), ("first_token", &case.first_token), ("induction", &case.induction), ("duplicate", &case.duplicate)] {
            let ours = as_grid(&v[name]);
            let err = ours.iter().zip(want).flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs())).fold(0.0, f64::max);
            assert!(err <= tolerance(device, 1e-3), "{device}: {name} off by {err}");
        }
    }
    // The default probe is a sequence of its own.
    let v = json_of(&glassbox(&["heads", "--json"]));
    assert_eq!(v["token_ids"].as_array().unwrap().len(), 40);
    assert_eq!(as_grid(&v["induction"]).len(), 30);
}

#[test]
fn patch_reproduces_transformers() {
    if !smollm2_ready() {
        return;
    }
    let case = &golden::interventions().patch[0];
    for device in devices() {
        for (hook, layers) in [("resid_pre", "0-29"), ("z", "0-29"), ("attn_out", "0-29"), ("mlp_out", "0-29")] {
            // A software GPU runs the last layers only (each patched pass starts at its layer).
            let layers = if device == "gpu" { if hook == "z" { "29" } else { "28-29" } } else { layers };
            if device == "gpu" && !(hook == "z" || hook == "resid_pre") {
                continue;
            }
            let v = json_of(&glassbox(&[
                "patch", "--clean", &case.clean, "--corrupt", &case.corrupt, "--answer", &case.answer_text, "--wrong", &case.wrong_text,
                "--hook", hook, "--layers", layers, "--json", "--device", device,
            ]));
            assert!((v["clean_ld"].as_f64().unwrap() - case.clean_ld).abs() <= tolerance(device, 2e-3));
            assert!((v["corrupt_ld"].as_f64().unwrap() - case.corrupt_ld).abs() <= tolerance(device, 2e-3));
            let want = match hook {
                "resid_pre" => &case.scores.resid_pre,
                "z" => &case.scores.z,
                "attn_out" => &case.scores.attn_out,
                _ => &case.scores.mlp_out,
            };
            let rows: Vec<usize> = serde_json::from_value(v["layers"].clone()).unwrap();
            let ours = as_grid(&v["scores"]);
            for (row, &layer) in ours.iter().zip(&rows) {
                for (col, (x, y)) in row.iter().zip(&want[layer]).enumerate() {
                    assert!((x - y).abs() <= 1e-2, "{device} {hook} L{layer} [{col}]: {x} vs {y}");
                }
            }
            eprintln!("{device} {hook} layers {layers}: {} passes in {:.1} s", v["passes"], v["seconds"].as_f64().unwrap());
        }
    }
}

#[test]
fn export_writes_hooks_numpy_loads() {
    if !smollm2_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let npz = tmp.path().join("france.npz");
    let out = glassbox(&["export", "--prompt", "The capital of France is", "--hooks", "attn.hook_pattern,blocks.3.hook_resid_post", "--out", npz.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    glassbox_tests::numpy_check(
        &npz,
        "z = np.load(path); assert len(z.files) == 31, z.files; p = z['blocks.29.attn.hook_pattern']; assert p.shape == (9, 5, 5); r = z['blocks.3.hook_resid_post']; assert r.shape == (5, 576)",
    );
    let npy = tmp.path().join("one.npy");
    let out = glassbox(&["export", "--prompt", "The capital of France is", "--hooks", "blocks.0.attn.hook_z", "--out", npy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    glassbox_tests::numpy_check(&npy, "a = np.load(path); assert a.shape == (5, 9, 64) and a.dtype == np.float32");
    let bad = glassbox(&["export", "--prompt", "x", "--hooks", "attn.hook_pattern", "--out", npy.to_str().unwrap()]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("use .npz"));
}

#[test]
fn compare_says_where_runs_part() {
    if !smollm2_ready() {
        return;
    }
    let base = ["compare", "--prompt", "The capital of France is", "--json"];
    let run = |extra: &[&str]| json_of(&glassbox(&[&base[..], extra].concat()));
    assert_eq!(run(&["--prompt-b", "The capital of Italy is"])["first_apart"], "hook_embed");
    assert_eq!(run(&["--ablate-heads", "3.5"])["first_apart"], "blocks.3.attn.hook_z");
    assert_eq!(run(&["--no-causal-mask-b"])["first_apart"], "blocks.0.attn.hook_attn_scores");
    let q4 = run(&["--weights-b", "q4"]);
    assert_eq!(q4["top_a"][0]["token"], " Paris");
    assert!(q4["kl"].as_array().unwrap().last().unwrap().as_f64().unwrap() > 0.0);
    let out = glassbox(&[&base[..], &["--prompt-b", "The capital of Italy is not"]].concat());
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("same length"));
}
