//! The `glassbox` CLI as a user (and the acceptance checks) run it: JSON fields and shapes,
//! generation, and one-line errors with a non-zero exit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fixture, glassbox, json_of, assert_one_line_error, smollm2_ready};


#[test]
fn trace_json_has_the_documented_fields_and_shapes() {
    let model = fixture("tiny-mha-untied");
    let out = glassbox(&["trace", "--model", model.to_str().unwrap(), "--token-ids", "67,84,47,57", "--top-k", "3", "--json"]);
    let v = json_of(&out);
    assert_eq!(v["token_ids"], serde_json::json!([67, 84, 47, 57]));
    assert_eq!(v["tokens"], serde_json::json!(["67", "84", "47", "57"]));
    let top = v["top_k"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for e in top {
        assert!(e["id"].is_u64() && e["logit"].is_f64() && e["prob"].is_f64() && e["token"].is_string());
    }
    assert!(top[0]["logit"].as_f64() >= top[1]["logit"].as_f64());
    let norms = v["residual_norms"].as_array().unwrap();
    assert_eq!(norms.len(), 3 + 1);
    assert!(norms.iter().all(|row| row.as_array().unwrap().len() == 4));
    let lens = v["logit_lens"].as_array().unwrap();
    assert_eq!(lens.len(), 3 + 1);
    assert!(lens.iter().all(|row| row.as_array().unwrap().len() == 5));
    // The last logit-lens row reads the final residual: its top-1 is the model's top-1.
    assert_eq!(lens[3][0], top[0]["id"]);
}

fn id_list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn generate_json_reproduces_the_fixture_greedy_tokens() {
    let model = fixture("tiny-gqa-tied");
    let ids = glassbox_tests::gpu::input_ids("tiny-gqa-tied");
    let out = glassbox(&["generate", "--model", model.to_str().unwrap(), "--token-ids", &id_list(&ids), "--max-new-tokens", "8", "--json"]);
    let v = json_of(&out);
    assert_eq!(v["generated_ids"], serde_json::json!(glassbox_tests::golden_greedy("tiny-gqa-tied")));
    assert_eq!(v["token_ids"], serde_json::json!(ids));
}

#[test]
fn seeded_sampling_is_reproducible_and_differs_from_greedy() {
    let model = fixture("tiny-gqa-tied");
    let m = model.to_str().unwrap();
    let run = |seed: &str| json_of(&glassbox(&["generate", "--model", m, "--token-ids", "1,2,3", "--max-new-tokens", "16", "--temperature", "2.0", "--seed", seed, "--json"]))["generated_ids"].clone();
    assert_eq!(run("7"), run("7"));
    let greedy = json_of(&glassbox(&["generate", "--model", m, "--token-ids", "1,2,3", "--max-new-tokens", "16", "--json"]))["generated_ids"].clone();
    assert_ne!(run("7"), greedy);
}

#[test]
fn errors_are_one_clear_line() {
    let out = glassbox(&["trace", "--model", "/no/such/model", "--token-ids", "1", "--json"]);
    assert_one_line_error(&out, "/no/such/model");
    let model = fixture("tiny-gqa-tied");
    let m = model.to_str().unwrap();
    assert_one_line_error(&glassbox(&["trace", "--model", m, "--prompt", "hello"]), "--token-ids");
    assert_one_line_error(&glassbox(&["trace", "--model", m, "--token-ids", "1,5000"]), "5000");
    assert_one_line_error(&glassbox(&["generate", "--model", m, "--token-ids", "1", "--top-p", "0"]), "--top-p");
    // tiny-gqa-tied: 2 layers × 4 heads.
    assert_one_line_error(&glassbox(&["trace", "--model", m, "--token-ids", "1", "--ablate-heads", "0.4"]), "outside this model");
    assert_one_line_error(&glassbox(&["trace", "--model", m, "--token-ids", "1", "--ablate-heads", "3"]), "not LAYER.HEAD");
    assert_one_line_error(&glassbox(&["generate", "--model", m, "--token-ids", "1", "--ablate-mlp", "2"]), "--ablate-mlp");
    // A bad flag value: clap's own message (two lines with its --help hint), never a panic.
    let out = glassbox(&["trace", "--model", m, "--token-ids", "1", "--device", "tpu"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("auto, cpu or gpu") && !err.contains("panicked"), "{err}");
}

/// Whether the default model is there (fetched on first use), or `false` with a note.
/// Whether a GPU adapter exists (lavapipe in CI), or `false` with a note.
fn gpu_ready() -> bool {
    match glassbox_engine::exec::gpu::GpuContext::new() {
        Ok(Some(_)) => true,
        other => {
            assert!(std::env::var("GLASSBOX_REQUIRE_GPU").map_or(true, |v| v != "1"), "GLASSBOX_REQUIRE_GPU=1 but no adapter: {other:?}");
            eprintln!("note: no GPU adapter; skipping the --device gpu runs");
            false
        }
    }
}

#[test]
fn ablation_flags_reproduce_transformers_on_cpu_and_gpu() {
    if !smollm2_ready() {
        return;
    }
    let devices: &[&str] = if gpu_ready() { &["cpu", "gpu"] } else { &["cpu"] };
    let tolerance = |device: &str| if device == "cpu" { 2e-3 } else { 1e-2 };
    for case in glassbox_tests::golden::interventions().ablate {
        let flags = case.cli_flags();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        for &device in devices {
            let label = format!("{} on {device}", case.name);
            let mut args = vec!["trace", "--prompt", "The capital of France is", "--top-k", "20", "--json", "--device", device];
            args.extend(&flags);
            let v = json_of(&glassbox(&args));
            assert_eq!(v["token_ids"], serde_json::json!(case.token_ids), "{label}: the prompt's ids");
            assert_eq!(v["argmax"], serde_json::json!(case.argmax_all), "{label}: argmax at every position");
            let ours: std::collections::BTreeMap<u64, f64> =
                v["top_k"].as_array().unwrap().iter().map(|e| (e["id"].as_u64().unwrap(), e["logit"].as_f64().unwrap())).collect();
            for w in &case.last_top20 {
                let got = ours.get(&u64::from(w.id)).unwrap_or_else(|| panic!("{label}: id {} missing from our top 20", w.id));
                assert!((got - f64::from(w.logit)).abs() <= tolerance(device), "{label}: id {} logit {got} vs {}", w.id, w.logit);
            }
            let mut args = vec!["generate", "--token-ids", "", "--max-new-tokens", "8", "--json", "--device", device];
            let ids = id_list(&case.token_ids);
            args[2] = &ids;
            args.extend(&flags);
            let v = json_of(&glassbox(&args));
            assert_eq!(v["generated_ids"], serde_json::json!(case.greedy8), "{label}: 8 greedy tokens");
        }
    }
}

#[test]
fn smollm2_trace_matches_the_p1_golden() {
    // Fetches on first use (idempotent); the binary then finds the model in the cache.
    if !smollm2_ready() {
        return;
    }
    let g = glassbox_tests::golden::prompt("P1");
    let v = json_of(&glassbox(&["trace", "--prompt", &g.prompt, "--top-k", "20", "--json"]));
    assert_eq!(v["token_ids"], serde_json::json!(g.token_ids));
    assert_eq!(v["tokens"], serde_json::json!(g.token_strings));
    for (ours, want) in v["top_k"].as_array().unwrap().iter().zip(&g.last_logits_top20) {
        assert_eq!(ours["id"], want.id);
        assert!((ours["logit"].as_f64().unwrap() - f64::from(want.logit)).abs() < 2e-3, "{ours} vs {want:?}");
    }
    assert_eq!(v["residual_norms"].as_array().unwrap().len(), g.residual_l2_norms.values.len());
}

/// Tasks sample as lesson 17 says, and say how: the settings are in the JSON; two seeds at
/// temperature 0.8 can answer differently (seeds 1 and 2 do on this preset), the same seed
/// answers the same, and `--temperature 0` is greedy whatever the seed.
#[test]
fn task_sentiment_honours_temperature_and_seed_on_smollm2() {
    if let Err(e) = glassbox_engine::load::fetch::fetch_default_model(&mut |_| {}) {
        assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "SmolLM2 could not be fetched: {e}");
        eprintln!("note: skipping SmolLM2 task check: {e}");
        return;
    }
    let run = |extra: &[&str]| {
        let mut args = vec!["task", "sentiment", "--preset", "stock-news", "--json"];
        args.extend_from_slice(extra);
        json_of(&glassbox(&args))
    };
    let a = run(&["--temperature", "0.8", "--seed", "1"]);
    let b = run(&["--temperature", "0.8", "--seed", "2"]);
    assert_eq!(a["sampling"]["temperature"].as_f64().map(|t| (t * 10.0).round()), Some(8.0));
    assert_eq!(a["sampling"]["seed"], 1);
    assert_eq!(a["sampling"]["top_p"].as_f64().map(|p| (p * 10.0).round()), Some(9.0), "top-p defaults to 0.9");
    assert_ne!(a["generated_ids"], b["generated_ids"], "seeds 1 and 2 answer differently");
    assert_eq!(run(&["--temperature", "0.8", "--seed", "1"])["generated_ids"], a["generated_ids"]);
    let g1 = run(&["--temperature", "0", "--seed", "1"]);
    let g2 = run(&["--temperature", "0", "--seed", "2"]);
    assert_eq!(g1["sampling"]["greedy"], true);
    assert_eq!(g1["generated_ids"], g2["generated_ids"], "greedy ignores the seed");
    // The most likely label is read from probabilities, so sampling does not move it; the
    // answer is what the model wrote.
    assert_eq!(a["sentiment"]["label"], g1["sentiment"]["label"]);
    for v in [&a, &b, &g1] {
        assert!(["positive", "negative", "neutral"].contains(&v["answer"].as_str().unwrap()));
    }
    let defaults = run(&[]);
    assert_eq!(defaults["sampling"]["temperature"].as_f64().map(|t| (t * 10.0).round()), Some(7.0));
}

/// `task --list --json`: every preset with `name`, `task`, `text`, `from_article`; the
/// article's six examples verbatim and marked, needing no model.
#[test]
fn task_list_json_marks_the_articles_examples() {
    let v = json_of(&glassbox(&["task", "--list", "--json"]));
    let presets = v.as_array().expect("an array of presets");
    for p in presets {
        for key in ["name", "task", "text", "from_article"] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
    }
    let article: Vec<&str> = presets
        .iter()
        .filter(|p| p["from_article"] == true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(article.len(), 6, "{article:?}");
    assert!(article.contains(&"患者,男性,45岁,主诉头痛,持续两天。既往有高血压病史。"));
    assert!(article.contains(&"Llama3.1 的核心技术是什么?"));
    assert!(presets.iter().any(|p| p["from_article"] == false), "Glassbox's own presets are listed too");
    let text = glassbox(&["task", "--list"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).lines().count() == presets.len());
}

#[test]
fn trace_of_a_prompt_over_the_budget_runs_in_chunks_and_prints_the_same() {
    // 600 tokens of the fixture: a full capture is ~100 MB, so 16 MiB takes the long path
    // (the overview in chunks), which must report what the one-shot pass reports.
    let model = fixture("tiny-smollm2-shape");
    let ids: Vec<u32> = (0..600).map(|i| (i * 37 + 5) % 300).collect();
    let ids = id_list(&ids);
    let model = model.to_str().unwrap();
    let full = glassbox(&["trace", "--model", model, "--token-ids", &ids, "--json"]);
    let long = glassbox(&["trace", "--model", model, "--token-ids", &ids, "--json", "--budget-mib", "16"]);
    assert!(String::from_utf8_lossy(&long.stderr).contains("run in chunks within the 16 MiB budget"));
    let (mut full, mut long) = (json_of(&full), json_of(&long));
    assert!(full["overview_bytes"].is_null());
    let kept = long["overview_bytes"].as_u64().expect("the long path says what it kept");
    assert!(kept < 16 << 20, "{kept}");
    // What each path holds differs (the overview keeps the norms' scales too); nothing else.
    for v in [&mut full, &mut long] {
        for field in ["overview_bytes", "captured_hooks", "captured_mib"] {
            v.as_object_mut().unwrap().remove(field);
        }
    }
    assert_eq!(full, long);
    let out = glassbox(&["trace", "--model", model, "--token-ids", &ids, "--budget-mib", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--budget-mib"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bench_json_reports_every_figure_the_issue_names() {
    if !smollm2_ready() {
        return;
    }
    let out = glassbox(&["bench", "--runs", "1", "--decode-tokens", "2", "--tokens", "80", "--per-op", "--json"]);
    let v = json_of(&out);
    assert_eq!(v["prompt_tokens"], 80);
    let r = &v["result"];
    for field in ["prefill_full_capture_ms", "prefill_no_capture_ms", "prefill_last_logits_ms", "decode_tokens_per_s"] {
        assert!(r[field].as_f64().is_some_and(|x| x > 0.0), "{field}: {r}");
    }
    assert!(r.get("prefill64_full_capture_ms").is_none(), "the 64-token names are for --tokens 64 only: {r}");
    let ready = v["load_ready_ms"].as_f64().unwrap();
    assert!(ready >= v["load_from_cache_ms"].as_f64().unwrap() && ready > 0.0);
    // The fresh process loads once and runs one pass: it holds at least the weights and less
    // than this long-running process ever did.
    let fresh = v["peak_rss_mib"].as_f64().unwrap();
    assert!(fresh > 500.0 && fresh <= v["peak_rss_mib_this_process"].as_f64().unwrap() + 64.0, "{v}");
    for when in ["before", "after"] {
        assert!(v["load_average_1min"][when].as_f64().is_some_and(|x| x >= 0.0), "{v}");
    }
    let ops: Vec<&str> = v["per_op_ms"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap()).collect();
    for op in ["scores", "softmax", "gate", "logits"] {
        assert!(ops.contains(&op), "{ops:?}");
    }
}

#[test]
fn trace_capture_records_more_hooks_and_reports_their_size() {
    let model = fixture("tiny-mha-untied");
    let run = |extra: &[&str]| {
        let mut args = vec!["trace", "--model", model.to_str().unwrap(), "--token-ids", "67,84,47,57", "--json"];
        args.extend_from_slice(extra);
        json_of(&glassbox(&args))
    };
    let (plain, pattern, all) = (run(&[]), run(&["--capture", "attn.hook_pattern"]), run(&["--capture", "all"]));
    let hooks = |v: &serde_json::Value| v["captured_hooks"].as_u64().unwrap();
    // tiny-mha-untied has 3 layers: embed + the stream entering block 0 + 3 resid_post +
    // logits, then 3 patterns more.
    assert_eq!(hooks(&plain), 6);
    assert_eq!(hooks(&pattern), 9);
    assert!(hooks(&all) > hooks(&pattern));
    assert!(all["captured_mib"].as_f64() > plain["captured_mib"].as_f64());
    assert_eq!(all["top_k"], plain["top_k"], "recording more changes no number");
    let out = glassbox(&["trace", "--model", model.to_str().unwrap(), "--token-ids", "1,2", "--capture", "attn.hook_bogus"]);
    assert_one_line_error(&out, "--capture");
}

/// `--model NAME` is the named model's cached folder (a complete one is used as is, nothing
/// fetched); a path still wins; an unknown name for `fetch` lists the known ones.
#[test]
fn models_by_name_resolve_to_their_cached_folders() {
    assert_one_line_error(&glassbox(&["fetch", "no-such-model"]), "gemma-3-270m");
    let cache = tempfile::tempdir().unwrap();
    let tiny = fixture("tiny-gqa-tied");
    for (name, folder) in [("gemma-3-270m", "gemma-3-270m"), ("smollm2-135m", "smollm2-135m-instruct")] {
        let dir = cache.path().join("glassbox/models").join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(tiny.join(f), dir.join(f)).unwrap();
        }
        std::fs::write(
            dir.join("tokenizer.json"),
            r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
               "pre_tokenizer":null,"post_processor":null,"decoder":null,
               "model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("tokenizer_config.json"), "{}").unwrap();
        std::fs::write(dir.join(glassbox_engine::load::fetch::MARKER_FILE), "test\n").unwrap();
        let out = common::command()
            .args(["trace", "--model", name, "--token-ids", "1,2", "--json"])
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap();
        let v = json_of(&out);
        assert_eq!(v["token_ids"], serde_json::json!([1, 2]), "{name}");
    }
}
