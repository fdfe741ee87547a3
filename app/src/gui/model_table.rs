//! SmolLM2-135M next to Llama 3.1 8B / 70B / 405B, generated from the config files bundled in
//! `assets/models/` (each model's own config.json) and `models.toml` (what a config does not
//! hold: training tokens, with the source). Lesson 01 carries this very table; a test checks
//! that the lesson's copy equals what these files generate, so a number cannot drift.

use anyhow::{Context as _, Result};
use glassbox_engine::LlamaConfig;
use glassbox_engine::load::config::RopeKind;
use serde::Deserialize;

use super::i18n::Lang;

/// The bundled files, compiled in so the table never depends on where the binary runs.
const FILES: [(&str, &str); 4] = [
    (
        "smollm2-135m-instruct.json",
        include_str!("../../../assets/models/smollm2-135m-instruct.json"),
    ),
    (
        "llama-3.1-8b.json",
        include_str!("../../../assets/models/llama-3.1-8b.json"),
    ),
    (
        "llama-3.1-70b.json",
        include_str!("../../../assets/models/llama-3.1-70b.json"),
    ),
    (
        "llama-3.1-405b.json",
        include_str!("../../../assets/models/llama-3.1-405b.json"),
    ),
];
const INDEX: &str = include_str!("../../../assets/models/models.toml");

#[derive(Debug, Deserialize)]
struct Index {
    model: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    config: String,
    training_tokens: String,
    source: String,
    source_zh: String,
}

/// One column of the table.
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub name: String,
    pub config: LlamaConfig,
    pub training_tokens: String,
    pub source: String,
    pub source_zh: String,
}

/// The bundled models, in `models.toml` order (SmolLM2 first).
pub fn bundled() -> Result<Vec<ModelCard>> {
    let index: Index = toml::from_str(INDEX).context("assets/models/models.toml")?;
    index
        .model
        .into_iter()
        .map(|e| {
            let text = FILES
                .iter()
                .find(|(f, _)| *f == e.config)
                .map(|(_, t)| *t)
                .with_context(|| format!("assets/models/{} is not bundled", e.config))?;
            let path = std::path::Path::new("assets/models").join(&e.config);
            let config = LlamaConfig::from_json(text, &path)
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            Ok(ModelCard {
                name: e.name,
                config,
                training_tokens: e.training_tokens,
                source: e.source,
                source_zh: e.source_zh,
            })
        })
        .collect()
}

/// 3 significant digits with M/B: 134.5e6 → "135M", 8.03e9 → "8.03B".
pub fn params_text(n: u64) -> String {
    let n = n as f64;
    let (v, unit) = if n >= 1e9 { (n / 1e9, "B") } else { (n / 1e6, "M") };
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{s}{unit}")
}

fn rope_scaling_text(c: &LlamaConfig, lang: Lang) -> String {
    match c.rope_kind() {
        Ok(RopeKind::Llama3 {
            factor,
            original_max_position_embeddings,
            ..
        }) => lang.tf(
            format!("llama3, ×{factor} (trained at {original_max_position_embeddings})"),
            format!("llama3，×{factor}（训练长度 {original_max_position_embeddings}）"),
        ),
        Ok(RopeKind::Linear { factor }) => format!("linear ×{factor}"),
        Ok(RopeKind::LongRope { original_max_position_embeddings, .. }) => lang.tf(
            format!("longrope (long factors past {original_max_position_embeddings})"),
            format!("longrope（超过 {original_max_position_embeddings} 用长因子）"),
        ),
        Ok(RopeKind::Default) => lang.tr("none", "无").to_string(),
        Err(e) => e,
    }
}

/// The rows: (row title, one value per model).
pub fn rows(cards: &[ModelCard], lang: Lang) -> Vec<(String, Vec<String>)> {
    let row = |en: &str, zh: &str, f: &dyn Fn(&ModelCard) -> String| {
        (
            lang.tf(en.to_string(), zh.to_string()),
            cards.iter().map(f).collect::<Vec<_>>(),
        )
    };
    vec![
        row("parameters", "参数量", &|m| params_text(m.config.n_params())),
        row("layers", "层数", &|m| m.config.n_layers().to_string()),
        row("width (d_model)", "宽度（d_model）", &|m| m.config.d_model().to_string()),
        row("query heads / K/V heads", "查询头 / K/V 头", &|m| {
            format!("{} / {}", m.config.n_heads(), m.config.n_kv_heads())
        }),
        row("head size", "每个头的维度", &|m| m.config.d_head().to_string()),
        row("MLP width (SwiGLU)", "MLP 宽度（SwiGLU）", &|m| {
            m.config.d_mlp().to_string()
        }),
        row("vocabulary", "词表大小", &|m| m.config.vocab_size.to_string()),
        row("RoPE θ", "RoPE θ", &|m| format!("{}", m.config.rope_theta())),
        row("RoPE scaling", "RoPE 缩放", &|m| rope_scaling_text(&m.config, lang)),
        row("context (tokens)", "上下文长度（词元）", &|m| {
            m.config.max_position_embeddings.to_string()
        }),
        row("tied embeddings", "输入输出共享嵌入", &|m| {
            if m.config.tie_word_embeddings {
                lang.tr("yes", "是").to_string()
            } else {
                lang.tr("no", "否").to_string()
            }
        }),
        row("training tokens", "训练词元数", &|m| m.training_tokens.clone()),
    ]
}

/// The table as lesson Markdown (lesson 01 holds exactly this text).
pub fn markdown(cards: &[ModelCard], lang: Lang) -> String {
    let mut out = String::new();
    let head: Vec<&str> = cards.iter().map(|m| m.name.as_str()).collect();
    out.push_str(&format!("| | {} |\n", head.join(" | ")));
    out.push_str(&format!("|---|{}\n", "---|".repeat(cards.len())));
    for (title, values) in rows(cards, lang) {
        out.push_str(&format!("| {title} | {} |\n", values.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_configs_give_the_published_sizes() {
        let cards = bundled().expect("bundled configs parse");
        let names: Vec<&str> = cards.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["SmolLM2-135M-Instruct", "Llama 3.1 8B", "Llama 3.1 70B", "Llama 3.1 405B"]
        );
        // The parameter counts derived from the configs land on the models' names.
        let params: Vec<String> = cards.iter().map(|c| params_text(c.config.n_params())).collect();
        assert_eq!(params, ["135M", "8.03B", "70.6B", "406B"]);
        let md = markdown(&cards, Lang::En);
        assert!(md.contains("| query heads / K/V heads | 9 / 3 | 32 / 8 | 64 / 8 | 128 / 8 |"), "{md}");
        assert!(md.contains("| RoPE scaling | none | llama3, ×8 (trained at 8192) |"), "{md}");
    }
}
