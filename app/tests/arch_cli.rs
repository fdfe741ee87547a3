//! `glassbox arch`: the numbers from a folder holding only config.json, and one-line errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_one_line_error, fixture, glassbox, json_of};

/// A scratch folder holding only `config` as `config.json`.
fn folder_with(name: &str, config: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("glassbox-arch-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    dir
}

#[test]
fn arch_json_from_a_folder_with_only_config_json() {
    let config = std::fs::read_to_string(fixture("configs/gemma-3-270m.json")).unwrap();
    let dir = folder_with("gemma", &config);
    let out = glassbox(&["arch", "--model", dir.to_str().unwrap(), "--json", "--context", "4096"]);
    let j = json_of(&out);
    assert_eq!(j["family"], "gemma3");
    assert_eq!(j["layers"], 18);
    assert_eq!((j["d_model"].as_u64(), j["heads"].as_u64(), j["kv_heads"].as_u64(), j["head_dim"].as_u64()), (Some(640), Some(4), Some(1), Some(256)));
    assert_eq!(j["vocab"], 262_144);
    // transformers' Gemma3ForCausalLM parameters() sum (tests/fixtures/arch_params.json).
    assert_eq!(j["params_total"], 268_098_176u64);
    let parts: u64 = j["params"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(parts, 268_098_176);
    assert_eq!(j["kv_values_per_token"], 2 * 18 * 256);
    assert!(j["flops_per_token_forward"].as_u64().unwrap() > 2 * (j["params"]["attention"].as_u64().unwrap()));
    assert_eq!(j["context"], 4096);
    assert_eq!(j["kv_values_at_context"], 2 * 256 * (15 * 512 + 3 * 4096));
    assert!(j["attention_flops_per_token_at_context"].as_u64().unwrap() > 0);
    let types = j["layer_types"].as_array().unwrap();
    assert_eq!(types.len(), 18);
    assert_eq!(types[0], serde_json::json!({"layer": 0, "kind": "sliding", "window": 512}));
    assert_eq!(types[5], serde_json::json!({"layer": 5, "kind": "full"}));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn arch_text_and_a_config_file_and_learned_positions() {
    let out = glassbox(&["arch", "--model", fixture("configs/llama-3.1-8b.json").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("8030261248") && text.contains("0-31: full"), "{text}");

    let j = json_of(&glassbox(&["arch", "--model", fixture("tiny-gpt2").to_str().unwrap(), "--json"]));
    assert_eq!(j["params_total"], 64_368);
    assert_eq!(j["params"]["positions"], 64 * 48);
}

#[test]
fn arch_bad_folders_are_one_line_errors() {
    let empty = std::env::temp_dir().join(format!("glassbox-arch-{}-empty", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    assert_one_line_error(&glassbox(&["arch", "--model", empty.to_str().unwrap(), "--json"]), "no config.json");
    std::fs::remove_dir_all(&empty).unwrap();

    let bad = folder_with("bad", r#"{"model_type": "t5", "vocab_size": 9, "hidden_size": 8}"#);
    assert_one_line_error(&glassbox(&["arch", "--model", bad.to_str().unwrap(), "--json"]), "config.json");
    std::fs::remove_dir_all(&bad).unwrap();

    let missing = fixture("no-such-model-folder");
    assert_one_line_error(&glassbox(&["arch", "--model", missing.to_str().unwrap()]), "no such model folder");
}

/// A `.gguf` is read for its metadata only; its parameter total is the elements its tensors hold.
#[test]
fn arch_from_gguf_metadata_counts_its_tensors() {
    use glassbox_engine::load::gguf::{GgufFile, builder};
    for with_output in [false, true] {
        let path = std::env::temp_dir().join(format!("glassbox-arch-{}-{with_output}.gguf", std::process::id()));
        std::fs::write(&path, builder::tiny_llama(with_output).build()).unwrap();
        let elements: u64 = GgufFile::open(&path).unwrap().tensors().iter().map(|t| t.n_elements()).sum();
        let j = json_of(&glassbox(&["arch", "--model", path.to_str().unwrap(), "--json"]));
        assert_eq!(j["family"], "llama");
        assert_eq!(j["params_total"], elements, "with_output = {with_output}");
        assert_eq!(j["tied_head"], !with_output);
        std::fs::remove_file(&path).unwrap();
    }
}

/// Qwen 2.5, Qwen 3, OLMo 2 and Phi-3: `glassbox arch --json` gives transformers' parameter
/// totals (`Qwen2ForCausalLM` … `sum(p.numel())` on the meta device, tests/fixtures/arch_params.json).
#[test]
fn arch_json_totals_of_the_newer_families_equal_transformers() {
    for (config, family, total) in [
        ("configs/qwen2.5-0.5b.json", "qwen2", 494_032_768u64),
        ("configs/qwen3-0.6b.json", "qwen3", 596_049_920),
        ("configs/olmo-2-0425-1b.json", "olmo2", 1_484_916_736),
        ("configs/phi-3-mini-4k.json", "phi3", 3_821_079_552),
    ] {
        let j = json_of(&glassbox(&["arch", "--model", fixture(config).to_str().unwrap(), "--json"]));
        assert_eq!((j["family"].as_str(), j["params_total"].as_u64()), (Some(family), Some(total)), "{config}");
    }
}
