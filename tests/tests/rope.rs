//! Llama 3.1 RoPE scaling: HF's f32 `inv_freq` in three cases that together hit the keep,
//! smooth and divide bands, through both config.json forms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use glassbox_engine::LlamaConfig;
use glassbox_engine::load::config::{RopeKind, rope_inv_freq};
use glassbox_tests::fixtures_dir;

#[derive(serde::Deserialize)]
struct Case {
    label: String,
    head_dim: usize,
    rope_parameters: serde_json::Value,
    inv_freq_f32: Vec<f32>,
    inv_freq_unscaled_f32: Vec<f32>,
    branch: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures_dir().join("rope_llama3_inv_freq_vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!((a - b).abs() <= 2e-6 * b.abs(), "{what}: inv_freq[{i}] {a:e} vs HF {b:e}");
    }
}

/// A config.json in the 5.x form (`rope_parameters`) or the 4.x form (`rope_theta` +
/// `rope_scaling` with the kind spelled `type`).
fn config(case: &Case, five: bool) -> LlamaConfig {
    let heads = 2;
    let mut json = serde_json::json!({
        "vocab_size": 16, "hidden_size": heads * case.head_dim, "intermediate_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": heads, "num_key_value_heads": 1,
        "head_dim": case.head_dim, "rms_norm_eps": 1e-5, "max_position_embeddings": 131072,
    });
    if five {
        json["rope_parameters"] = case.rope_parameters.clone();
    } else {
        let mut scaling = case.rope_parameters.clone();
        let theta = scaling.as_object_mut().unwrap().remove("rope_theta").unwrap();
        let kind = scaling.as_object_mut().unwrap().remove("rope_type").unwrap();
        scaling["type"] = kind;
        json["rope_theta"] = theta;
        json["rope_scaling"] = scaling;
    }
    LlamaConfig::from_json(&json.to_string(), Path::new("config.json")).unwrap()
}

#[test]
fn llama3_inv_freq_matches_hf_in_every_band_and_both_config_forms() {
    let all = cases();
    let bands: std::collections::BTreeSet<&str> = all.iter().flat_map(|c| c.branch.iter().map(String::as_str)).collect();
    assert_eq!(bands.len(), 3, "the vectors must cover keep, smooth and divide: {bands:?}");
    for case in &all {
        for five in [true, false] {
            let c = config(case, five);
            assert!(matches!(c.rope_kind().unwrap(), RopeKind::Llama3 { .. }));
            assert_close(&c.inv_freq(), &case.inv_freq_f32, &format!("{} (5.x form: {five})", case.label));
        }
        let unscaled = rope_inv_freq(case.head_dim, 500000.0, RopeKind::Default);
        assert_close(&unscaled, &case.inv_freq_unscaled_f32, &format!("{} unscaled", case.label));
    }
}
