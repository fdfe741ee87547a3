//! The numbers a lesson body states, filled in from a model's configuration: a body writes
//! `{{d_model}}` and the panel shows the loaded model's value (or, when the lesson is about
//! another model, the value from that model's config.json, and says so); `{{gpt2:d_model}}`
//! names another model's. A number in a lesson is therefore never prose that can drift
//! from the model.

use std::path::PathBuf;
use std::sync::LazyLock;

use glassbox_engine::LlamaConfig;
use glassbox_engine::load::arch::{Arch, AttnMask};
use glassbox_engine::load::arch_stats::ArchStats;
use glassbox_engine::load::fetch;

/// The context length the `*_at_4k` numbers use.
pub const CONTEXT: usize = 4096;

/// The value of `name` for `config`, as the body shows it; `None` for an unknown name or
/// one that does not apply (no sliding window in a Llama).
pub fn value(config: &LlamaConfig, name: &str) -> Option<String> {
    let stats = ArchStats::new(config);
    let arch = Arch::of(config);
    let p = stats.params();
    let total = p.total();
    let millions = |n: u64| format!("{:.1}", n as f64 / 1e6);
    let windows: Vec<usize> = (0..config.n_layers()).filter_map(|l| window(&arch, l)).collect();
    let all_global = 2 * (config.n_layers() * config.n_kv_heads() * config.d_head() * CONTEXT) as u64;
    let at_4k = stats.kv_values_at_context(CONTEXT);
    Some(match name {
        "family" => arch.family.name().to_string(),
        "n_layers" => config.n_layers().to_string(),
        "d_model" => config.d_model().to_string(),
        "d_mlp" => config.d_mlp().to_string(),
        "n_heads" => config.n_heads().to_string(),
        "n_kv_heads" => config.n_kv_heads().to_string(),
        "d_head" => config.d_head().to_string(),
        "q_dim" => config.q_dim().to_string(),
        "gqa_group" => config.group_size().to_string(),
        "vocab_size" => grouped(config.vocab_size as u64),
        "max_position_embeddings" => grouped(config.max_position_embeddings as u64),
        "sliding_window" => windows.first()?.to_string(),
        "n_local_layers" => windows.len().to_string(),
        "n_global_layers" => (config.n_layers() - windows.len()).to_string(),
        "params_total" => grouped(total),
        "params_total_m" => millions(total),
        "params_embedding" => grouped(p.embedding),
        "params_embedding_m" => millions(p.embedding),
        "embedding_share_pct" => format!("{:.1}", 100.0 * p.embedding as f64 / total.max(1) as f64),
        "params_attention_m" => millions(p.attention),
        "params_mlp_m" => millions(p.mlp),
        "flops_per_token_m" => millions(stats.flops_per_token_forward()),
        "params_total_b" => format!("{:.1}", total as f64 / 1e9),
        "forward_flops_per_token" => format!("{:.1e}", stats.flops_per_token_forward() as f64),
        // The backward pass costs about twice the forward: 6·N per token in all.
        "train_flops_per_token" => format!("{:.1e}", 3.0 * stats.flops_per_token_forward() as f64),
        "train_tokens_t" => format!("{}", train_tokens(config)? / 1e12),
        "train_flops_6nd" => format!("{:.1e}", 6.0 * total as f64 * train_tokens(config)?),
        "bytes_f32_gb" => gigabytes(total, 4),
        "bytes_bf16_gb" => gigabytes(total, 2),
        "bytes_adamw_gb" => gigabytes(total, ADAMW_BYTES),
        "gpus_80gb_adamw" => (total * ADAMW_BYTES).div_ceil(80_000_000_000).to_string(),
        "kv_values_per_token" => grouped(stats.kv_values_per_token()),
        "kv_values_at_4k" => grouped(at_4k),
        "kv_values_at_4k_all_global" => grouped(all_global),
        "kv_saving_pct" => format!("{:.0}", 100.0 * (1.0 - at_4k as f64 / all_global.max(1) as f64)),
        "token_types" => (p.token_types / config.d_model().max(1) as u64).to_string(),
        "params_positions" => grouped(p.positions),
        "embed_scale" => format!("{:.2}", arch.embed_scale?),
        "score_scale" => format!("{:.4}", arch.score_scale),
        _ => return None,
    })
}

/// Bytes per parameter when training with AdamW in mixed precision: bf16 weights and
/// gradients (2 + 2), an f32 master copy (4) and the two f32 moments (4 + 4).
const ADAMW_BYTES: u64 = 16;

fn gigabytes(params: u64, bytes: u64) -> String {
    format!("{:.1}", (params * bytes) as f64 / 1e9)
}

/// Training tokens the makers state, for 6·N·D: SmolLM2's model card (2 trillion) and Meta's
/// Llama 3 paper for the 405B model (15.6 trillion).
const TRAIN_TOKENS: [(&str, f64); 2] = [("smollm2-135m-instruct", 2e12), ("llama-3.1-405b", 15.6e12)];

fn train_tokens(config: &LlamaConfig) -> Option<f64> {
    TRAIN_TOKENS.iter().find_map(|&(id, tokens)| {
        let c = model_config(id).ok()?;
        same_model(config, &c).then_some(tokens)
    })
}

fn window(arch: &Arch, layer: usize) -> Option<usize> {
    match arch.mask(layer) {
        AttnMask::Sliding { window } => Some(window),
        _ => None,
    }
}

/// 268098176 → "268,098,176".
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Replaces every `{{name}}` in `body` with its value; returns the text and the names that
/// had no value (left as written, so a broken lesson shows where).
pub fn fill(body: &str, config: &LlamaConfig) -> (String, Vec<String>) {
    fill_names(body, |name| config_value(config, name))
}

/// `name`'s value from `config`, or from another model's for `model:name`.
pub fn config_value(config: &LlamaConfig, name: &str) -> Option<String> {
    match name.split_once(':') {
        Some((model, name)) => model_config(model).ok().and_then(|c| value(&c, name)),
        None => value(config, name),
    }
}

/// Replaces every `{{name}}` in `text` with what `resolve` gives for it; a name it has no
/// value for stays as written and is returned.
pub fn fill_names(text: &str, mut resolve: impl FnMut(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return (out, unknown);
        };
        let name = after[..end].trim();
        match resolve(name) {
            Some(v) => out.push_str(&v),
            None => {
                unknown.push(name.to_string());
                out.push_str(&rest[start..start + 4 + end]);
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    (out, unknown)
}

/// The config a lesson's numbers come from: the loaded model's when it is the lesson's model
/// (or the lesson names none), else the named model's, with its id (say whose they are).
pub fn lesson_config(model: Option<&str>, loaded: &LlamaConfig) -> (LlamaConfig, Option<String>) {
    match model.map(|m| (m, model_config(m))) {
        Some((m, Ok(c))) if !same_model(loaded, &c) => (c, Some(m.to_string())),
        _ => (loaded.clone(), None),
    }
}

/// The models a lesson can be about (`model = "..."`), each with its bundled config.json
/// (from its Hugging Face repository; `glassbox arch` on each gives the transformers
/// parameter total).
pub const MODELS: [(&str, &str); 9] = [
    ("smollm2-135m-instruct", include_str!("../../../assets/models/smollm2-135m-instruct.json")),
    ("gemma-3-270m", include_str!("../../../assets/models/gemma-3-270m.json")),
    ("gpt2", include_str!("../../../assets/models/gpt2.json")),
    ("bert-base-uncased", include_str!("../../../assets/models/bert-base-uncased.json")),
    ("llama-3.1-405b", include_str!("../../../assets/models/llama-3.1-405b.json")),
    ("qwen2.5-0.5b", include_str!("../../../assets/models/qwen2.5-0.5b.json")),
    ("qwen3-0.6b", include_str!("../../../assets/models/qwen3-0.6b.json")),
    ("olmo-2-0425-1b", include_str!("../../../assets/models/olmo-2-0425-1b.json")),
    ("phi-3-mini-4k", include_str!("../../../assets/models/phi-3-mini-4k.json")),
];

/// The config of lesson model `id`: the cached model's own config.json if it is there (the
/// file the app would load), else the bundled copy. Read once per process: the lesson panel
/// asks every frame (its buttons are checked against the model they name).
pub fn model_config(id: &str) -> Result<LlamaConfig, String> {
    static CONFIGS: LazyLock<Vec<(&'static str, Result<LlamaConfig, String>)>> =
        LazyLock::new(|| MODELS.iter().map(|&(id, bundled)| (id, read_config(id, bundled))).collect());
    let known = || MODELS.map(|m| m.0).join(", ");
    CONFIGS
        .iter()
        .find(|(m, _)| *m == id)
        .ok_or_else(|| format!("unknown lesson model `{id}` (known: {})", known()))?
        .1
        .clone()
}

fn read_config(id: &str, bundled: &str) -> Result<LlamaConfig, String> {
    let cached: Option<PathBuf> = fetch::models_cache_root()
        .ok()
        .map(|d| d.join(id).join("config.json"))
        .filter(|p| p.is_file());
    match cached {
        Some(path) => LlamaConfig::from_file(&path).map_err(|e| e.to_string()),
        None => {
            let path = PathBuf::from(format!("assets/models/{id}.json"));
            LlamaConfig::from_json(bundled, &path).map_err(|e| e.to_string())
        }
    }
}

/// Whether `loaded` is lesson model `lesson`'s architecture (same family and parameter
/// count): then the body's numbers are the loaded model's own.
pub fn same_model(loaded: &LlamaConfig, lesson: &LlamaConfig) -> bool {
    Arch::of(loaded).family == Arch::of(lesson).family
        && ArchStats::new(loaded).params().total() == ArchStats::new(lesson).params().total()
}
