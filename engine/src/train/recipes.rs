//! Recipes: the architectures `glassbox train --compare` trains side by side, each a config
//! (`LlamaConfig`, read into an `Arch` like any checkpoint's) of the same width, depth and
//! heads, with the MLP width chosen so every recipe has the same parameter budget (within
//! 5 %, counted as `glassbox arch` counts). Llama's variants (post-norm, ReLU, NoPE, learned
//! positions, the article's post-LayerNorm + ReLU + learned positions) are Llama configs with
//! a `glassbox_variant` object.


use super::presets::tiny_config;
use crate::load::config::{GlassboxVariant, LlamaConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Recipe {
    Llama,
    Gpt2,
    BertMlm,
    Gemma3,
    Olmo2,
    /// Qwen 2: biases on q, k and v.
    Qwen2,
    /// Qwen 3: QK-norm per head.
    Qwen3,
    /// Phi-3: q, k, v and gate, up stored fused (trained apart, saved fused).
    Phi3,
    LlamaPostnorm,
    LlamaRelu,
    LlamaNope,
    LlamaLearned,
    /// Post-LayerNorm + ReLU + learned positions, causal: the Transformer the article draws.
    Article,
}

/// What a recipe's training minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectiveKind {
    NextToken,
    /// BERT: predict the masked tokens (15 % of positions), both directions visible.
    MaskedLm,
}

impl Recipe {
    pub const ALL: [Recipe; 13] = [
        Recipe::Llama,
        Recipe::Gpt2,
        Recipe::BertMlm,
        Recipe::Gemma3,
        Recipe::Olmo2,
        Recipe::Qwen2,
        Recipe::Qwen3,
        Recipe::Phi3,
        Recipe::LlamaPostnorm,
        Recipe::LlamaRelu,
        Recipe::LlamaNope,
        Recipe::LlamaLearned,
        Recipe::Article,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Recipe::Llama => "llama",
            Recipe::Gpt2 => "gpt2",
            Recipe::BertMlm => "bert-mlm",
            Recipe::Gemma3 => "gemma3",
            Recipe::Olmo2 => "olmo2",
            Recipe::Qwen2 => "qwen2",
            Recipe::Qwen3 => "qwen3",
            Recipe::Phi3 => "phi3",
            Recipe::LlamaPostnorm => "llama-postnorm",
            Recipe::LlamaRelu => "llama-relu",
            Recipe::LlamaNope => "llama-nope",
            Recipe::LlamaLearned => "llama-learned",
            Recipe::Article => "article",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }

    /// A comma-separated list (`llama,gpt2,…`), or the one-line reason it is not one.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let r = Self::from_name(name).ok_or_else(|| format!("unknown recipe `{name}` (known: {})", Self::names()))?;
            if out.contains(&r) {
                return Err(format!("recipe `{name}` is listed twice"));
            }
            out.push(r);
        }
        if out.is_empty() {
            return Err(format!("no recipe given (known: {})", Self::names()));
        }
        Ok(out)
    }

    pub fn names() -> String {
        Self::ALL.map(Recipe::name).join(", ")
    }

    pub fn objective(self) -> ObjectiveKind {
        match self {
            Recipe::BertMlm => ObjectiveKind::MaskedLm,
            _ => ObjectiveKind::NextToken,
        }
    }

    /// The recipe's model for a vocabulary, parameter budget and sequence length: width,
    /// depth and heads from the budget alone (the same for every recipe), the MLP width
    /// solved so the total meets the budget.
    pub fn config(self, vocab: usize, budget_params: usize, seq_len: usize) -> LlamaConfig {
        let (d, layers, heads) = shared_dims(vocab, budget_params, seq_len);
        let count = |f: usize| self.sized(vocab, d, f, layers, heads, seq_len).n_params() as f64;
        // The total is affine in the MLP width: solve it from two widths.
        let (p1, p2) = (count(1), count(2));
        let slope = (p2 - p1).max(1.0);
        let f = (((budget_params as f64 - p1) / slope).round() as i64 + 1).max(1) as usize;
        self.sized(vocab, d, f, layers, heads, seq_len)
    }

    /// The recipe at explicit sizes.
    fn sized(self, vocab: usize, d: usize, f: usize, layers: usize, heads: usize, seq_len: usize) -> LlamaConfig {
        let mut c = tiny_config(vocab, d, f, layers, heads, heads, true);
        c.max_position_embeddings = seq_len.max(1);
        let variant = |placement: Option<&str>, norm: Option<&str>, positions: Option<&str>, mlp: Option<&str>| {
            Some(GlassboxVariant {
                norm_placement: placement.map(String::from),
                norm: norm.map(String::from),
                positions: positions.map(String::from),
                mlp: mlp.map(String::from),
            })
        };
        match self {
            Recipe::Llama => {}
            Recipe::Gpt2 => {
                c.model_type = Some("gpt2".into());
                c.architectures = Some(vec!["GPT2LMHeadModel".into()]);
                c.hidden_act = Some("gelu_new".into());
                c.layer_norm_eps = Some(1e-5);
            }
            Recipe::BertMlm => {
                c.model_type = Some("bert".into());
                c.architectures = Some(vec!["BertForMaskedLM".into()]);
                c.hidden_act = Some("gelu".into());
                c.layer_norm_eps = Some(1e-12);
                c.type_vocab_size = Some(2);
            }
            Recipe::Gemma3 => {
                c.model_type = Some("gemma3_text".into());
                c.architectures = Some(vec!["Gemma3ForCausalLM".into()]);
                c.hidden_act = None;
                c.hidden_activation = Some("gelu_pytorch_tanh".into());
                c.query_pre_attn_scalar = Some((d / heads.max(1)) as f64);
                c.sliding_window = Some((seq_len / 2).max(4));
                c.rope_local_base_freq = Some(10_000.0);
                // Gemma 3's local layers, then a global one (5:1 at full size).
                c.layer_types = Some((0..layers).map(|l| if l + 1 == layers { "full_attention" } else { "sliding_attention" }.to_string()).collect());
            }
            Recipe::Olmo2 => {
                c.model_type = Some("olmo2".into());
                c.architectures = Some(vec!["Olmo2ForCausalLM".into()]);
            }
            Recipe::Qwen2 => {
                c.model_type = Some("qwen2".into());
                c.architectures = Some(vec!["Qwen2ForCausalLM".into()]);
            }
            Recipe::Qwen3 => {
                c.model_type = Some("qwen3".into());
                c.architectures = Some(vec!["Qwen3ForCausalLM".into()]);
            }
            Recipe::Phi3 => {
                c.model_type = Some("phi3".into());
                c.architectures = Some(vec!["Phi3ForCausalLM".into()]);
            }
            Recipe::LlamaPostnorm => c.glassbox_variant = variant(Some("post"), None, None, None),
            Recipe::LlamaRelu => c.glassbox_variant = variant(None, None, None, Some("relu")),
            Recipe::LlamaNope => c.glassbox_variant = variant(None, None, Some("none"), None),
            Recipe::LlamaLearned => c.glassbox_variant = variant(None, None, Some("learned"), None),
            Recipe::Article => c.glassbox_variant = variant(Some("post"), Some("layernorm"), Some("learned"), Some("relu")),
        }
        c
    }
}

/// Width, depth and heads for a budget: the widest model (heads of 16) whose parts outside
/// the MLPs take at most half the budget in the costliest recipe (BERT: positions, token
/// types, biases, MLM head), so every recipe keeps an MLP to size.
fn shared_dims(vocab: usize, budget: usize, seq_len: usize) -> (usize, usize, usize) {
    let layers = if budget >= 2_000_000 { 4 } else { 2 };
    let mut best = (16, layers, 1);
    for d in (16..=1024).step_by(16) {
        let heads = d / 16;
        let c = Recipe::BertMlm.sized(vocab, d, 1, layers, heads, seq_len);
        if (c.n_params() as f64) <= 0.5 * budget as f64 {
            best = (d, layers, heads);
        } else {
            break;
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load::arch::{Arch, Family, MlpKind, NormKind, NormPlacement, Positions};
    use crate::train::params::Params;

    #[test]
    fn every_recipe_meets_the_budget_within_five_percent() {
        for (vocab, budget, seq) in [(512, 150_000, 64), (64, 1_000_000, 25)] {
            let mut shared = None;
            for r in Recipe::ALL {
                let c = r.config(vocab, budget, seq);
                let n = c.n_params() as f64;
                assert!((n / budget as f64 - 1.0).abs() <= 0.05, "{} at budget {budget}: {n} parameters", r.name());
                let dims = (c.d_model(), c.n_layers(), c.n_heads());
                assert_eq!(*shared.get_or_insert(dims), dims, "{}: width, depth and heads are shared", r.name());
            }
        }
    }

    #[test]
    fn recipe_configs_read_back_as_the_intended_switches() {
        for r in Recipe::ALL {
            let c = r.config(512, 150_000, 64);
            let text = serde_json::to_string(&c).unwrap();
            let back = LlamaConfig::from_json(&text, Path::new("config.json")).unwrap_or_else(|e| panic!("{}: {e}", r.name()));
            let a = Arch::from_config(&back).unwrap();
            let want_family = match r {
                Recipe::Gpt2 => Family::Gpt2,
                Recipe::BertMlm => Family::Bert,
                Recipe::Gemma3 => Family::Gemma3,
                Recipe::Olmo2 => Family::Olmo2,
                Recipe::Qwen2 => Family::Qwen2,
                Recipe::Qwen3 => Family::Qwen3,
                Recipe::Phi3 => Family::Phi3,
                _ => Family::Llama,
            };
            assert_eq!(a.family, want_family, "{}", r.name());
            let post = matches!(r, Recipe::LlamaPostnorm | Recipe::Article | Recipe::BertMlm);
            assert_eq!(a.placement == NormPlacement::Post, post, "{}", r.name());
            let relu = matches!(r, Recipe::LlamaRelu | Recipe::Article);
            assert_eq!(a.mlp == MlpKind::Plain(crate::load::arch::Activation::Relu), relu, "{}", r.name());
            let want_positions = match r {
                Recipe::LlamaNope => Positions::None,
                Recipe::LlamaLearned | Recipe::Article | Recipe::Gpt2 => Positions::Learned { token_types: false },
                Recipe::BertMlm => Positions::Learned { token_types: true },
                _ => Positions::Rope,
            };
            assert_eq!(a.positions, want_positions, "{}", r.name());
            assert_eq!(a.norm == NormKind::Layer, matches!(r, Recipe::Article | Recipe::Gpt2 | Recipe::BertMlm), "{}", r.name());
            assert_eq!(r.objective() == ObjectiveKind::MaskedLm, r == Recipe::BertMlm);
            assert!(a.generates() != (r == Recipe::BertMlm));
        }
    }

    #[test]
    fn recipe_lists_parse_and_bad_names_say_which() {
        assert_eq!(Recipe::parse_list("llama, llama-nope").unwrap(), vec![Recipe::Llama, Recipe::LlamaNope]);
        let err = Recipe::parse_list("llama,t5").unwrap_err();
        assert!(err.contains("`t5`") && err.contains("article"), "{err}");
        assert!(Recipe::parse_list("llama,llama").unwrap_err().contains("twice"));
    }

    #[test]
    fn seeded_weights_hold_what_each_variant_reads() {
        let c = Recipe::Article.config(64, 60_000, 16);
        let p = Params::init(&c, 1, 0.02);
        assert!(p.get("model.embed_positions.weight").is_some());
        assert!(p.get("model.layers.0.input_layernorm.bias").is_some() && p.get("model.norm.bias").is_some());
        assert!(p.get("model.layers.1.mlp.up_proj.weight").is_none());
        assert_eq!(p.n_values() as u64, c.n_params(), "the counts agree with ArchStats");
    }
}
