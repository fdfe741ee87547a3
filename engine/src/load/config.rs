//! `LlamaConfig`: a serde mirror of Hugging Face `config.json`, in both the transformers 4.x
//! form (`rope_theta`, `rope_scaling`, `torch_dtype`) and the 5.x form (`rope_parameters`,
//! `dtype`). Validated once at load; derived values are methods.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Caps on every size, so a lying config fails before any allocation.
const MAX_VOCAB: usize = 1 << 21;
const MAX_HIDDEN: usize = 1 << 16;
const MAX_MLP: usize = 1 << 18;
const MAX_LAYERS: usize = 1024;
const MAX_HEADS: usize = 1024;
const MAX_HEAD_DIM: usize = 1024;
const MAX_POSITIONS: usize = 1 << 24;

/// The size fields, checked to be integers before serde reads them.
const INTEGER_FIELDS: [&str; 8] = [
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
];

/// One config for every family Glassbox runs (the name is history: Llama came first). GPT-2's
/// own key names (`n_embd`, `n_head`, …) are renamed to these before serde reads them
/// (`gpt2_keys`); the family-specific keys are optional and read through [`crate::load::arch::Arch`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LlamaConfig {
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// transformers 4.x
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers 4.x
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
    /// transformers 5.x: holds `rope_theta` and the scaling
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub pad_token_id: Option<TokenIds>,
    #[serde(default)]
    pub hidden_act: Option<String>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub torch_dtype: Option<String>,
    #[serde(default)]
    pub dtype: Option<String>,
    /// LayerNorm families (GPT-2 `layer_norm_epsilon`, BERT `layer_norm_eps`).
    #[serde(default)]
    pub layer_norm_eps: Option<f64>,
    /// Gemma 3: `sliding_attention` / `full_attention` per layer.
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Gemma 3 in the 4.x form: every n-th layer is global.
    #[serde(default, alias = "_sliding_window_pattern")]
    pub sliding_window_pattern: Option<usize>,
    /// Gemma: queries are scaled by `query_pre_attn_scalar^-0.5` instead of `head_dim^-0.5`.
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma's name for `hidden_act`.
    #[serde(default)]
    pub hidden_activation: Option<String>,
    /// Gemma 3 in the 4.x form: RoPE θ of the sliding-window layers.
    #[serde(default)]
    pub rope_local_base_freq: Option<f64>,
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub use_bidirectional_attention: Option<bool>,
    /// BERT: rows of the token-type embedding.
    #[serde(default)]
    pub type_vocab_size: Option<usize>,
    /// GPT-2 switches that change the math; only the standard values are supported.
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: Option<bool>,
    #[serde(default)]
    pub scale_attn_weights: Option<bool>,
    /// Qwen 2/3: sliding-window attention on the layers past `max_window_layers` when true.
    #[serde(default)]
    pub use_sliding_window: Option<bool>,
    /// Phi-3 (4.x form): the share of each head that RoPE rotates.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// Phi-3: the pretraining context, kept beside `rope_scaling` (longrope reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
    /// Glassbox's own extension (Llama only): the recipe variants the article describes, read
    /// over the family's description by `Arch::from_config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glassbox_variant: Option<GlassboxVariant>,
}

/// `"glassbox_variant": {"norm_placement": "post", "norm": "layernorm", "positions": "learned",
/// "mlp": "relu"}`: each field optional; a value `Arch::from_config` does not know is a
/// one-line error naming the field.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlassboxVariant {
    /// `pre` (Llama) or `post` (add, then norm: the original Transformer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_placement: Option<String>,
    /// `rmsnorm` or `layernorm` (with biases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<String>,
    /// `rope`, `none` (NoPE) or `learned` (a row per position added to the embedding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<String>,
    /// `swiglu` or `relu` (ungated: `down(relu(gate_proj x))`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<String>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    2048
}

/// `eos_token_id` may be one id or a list (Llama 3.1 has several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// `rope_scaling` (4.x) or `rope_parameters` (5.x). The 4.x form spells the kind `type`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RopeParameters {
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
    /// Phi-3 (5.x form): the share of each head that RoPE rotates.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// longrope (Phi-3 128k, Phi-3.5): per-frequency divisors within and past the original context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_factor: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_factor: Option<Vec<f64>>,
    /// longrope: the factor on cos and sin (derived from `factor` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_factor: Option<f64>,
    /// Gemma 3 (5.x form): one set of parameters per layer type.
    #[serde(default)]
    pub full_attention: Option<Box<RopeParameters>>,
    #[serde(default)]
    pub sliding_attention: Option<Box<RopeParameters>>,
}

/// The RoPE frequency rule after both config forms are merged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeKind {
    Default,
    /// Llama 3.1: keep high frequencies, divide low ones by `factor`, interpolate between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
    /// Position interpolation: every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Phi-3 128k / Phi-3.5: `short_factor` divisors within `original_max_position_embeddings`,
    /// `long_factor` past it ([`LlamaConfig::longrope`]); cos and sin times `attention_factor`.
    LongRope { original_max_position_embeddings: usize, attention_factor: f64 },
}

impl LlamaConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// Parses and validates; `path` only names the source in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let err = |msg: String| EngineError::Config {
            path: path.to_path_buf(),
            msg,
        };
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        gpt2_keys(&mut value);
        // serde reads `null` as "absent", and an absent θ means 10000: a converter that wrote
        // inf as null would silently run the wrong RoPE.
        let null_theta = value.get("rope_theta").is_some_and(serde_json::Value::is_null)
            || value
                .get("rope_parameters")
                .and_then(|p| p.get("rope_theta"))
                .is_some_and(serde_json::Value::is_null);
        if null_theta {
            return Err(err(
                "`rope_theta` is null (a number that JSON cannot hold, such as inf?); write the \
                 model's RoPE base as a number"
                    .into(),
            ));
        }
        // serde's own message for `"num_hidden_layers": 1e9` does not say which field.
        for field in INTEGER_FIELDS {
            if let Some(v) = value.get(field)
                && !v.is_null()
                && !v.is_u64()
            {
                return Err(err(format!("`{field}` = {v} must be a whole number ≥ 0")));
            }
        }
        let config: LlamaConfig = serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
        config.validate().map_err(|msg| EngineError::Config {
            path: path.to_path_buf(),
            msg,
        })?;
        Ok(config)
    }

    pub fn n_layers(&self) -> usize {
        self.num_hidden_layers
    }
    pub fn d_model(&self) -> usize {
        self.hidden_size
    }
    pub fn d_mlp(&self) -> usize {
        self.intermediate_size
    }
    pub fn n_heads(&self) -> usize {
        self.num_attention_heads
    }
    pub fn n_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn d_head(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
    /// Query heads per K/V head; query head `h` reads kv head `h / group_size()`.
    pub fn group_size(&self) -> usize {
        self.n_heads() / self.n_kv_heads().max(1)
    }
    pub fn kv_head_of(&self, head: usize) -> usize {
        head / self.group_size().max(1)
    }
    pub fn q_dim(&self) -> usize {
        self.n_heads() * self.d_head()
    }
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads() * self.d_head()
    }

    /// The norms' ε: `layer_norm_eps` in the LayerNorm families, `rms_norm_eps` elsewhere.
    pub fn eps(&self) -> f32 {
        self.eps_f64() as f32
    }
    fn eps_f64(&self) -> f64 {
        self.layer_norm_eps.unwrap_or(self.rms_norm_eps)
    }
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id.as_ref().map(TokenIds::to_vec).unwrap_or_default()
    }

    /// 5.x nests θ inside `rope_parameters` (Gemma 3: per layer type); 4.x keeps it at the top
    /// level. This is the θ of the global (full-attention) layers.
    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.full_attention.as_ref().and_then(|f| f.rope_theta).or(p.rope_theta))
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// θ of the sliding-window layers (Gemma 3: 10,000), where the config gives one.
    pub fn rope_theta_local(&self) -> Option<f64> {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.sliding_attention.as_ref())
            .and_then(|p| p.rope_theta)
            .or(self.rope_local_base_freq)
    }

    /// The share of each head RoPE rotates (Phi-3 writes it; 1 everywhere else).
    pub fn partial_rotary_factor(&self) -> f64 {
        self.rope_params().and_then(|p| p.partial_rotary_factor).or(self.partial_rotary_factor).unwrap_or(1.0)
    }

    fn rope_params(&self) -> Option<&RopeParameters> {
        let p = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref())?;
        Some(p.full_attention.as_deref().unwrap_or(p))
    }

    pub fn rope_kind(&self) -> std::result::Result<RopeKind, String> {
        let Some(p) = self.rope_params() else {
            return Ok(RopeKind::Default);
        };
        let need = |v: Option<f64>, name: &str| {
            v.ok_or_else(|| format!("rope scaling `llama3` needs `{name}`"))
        };
        match p.rope_type.as_deref().unwrap_or("default") {
            "default" => Ok(RopeKind::Default),
            "llama3" => Ok(RopeKind::Llama3 {
                factor: need(p.factor, "factor")?,
                low_freq_factor: need(p.low_freq_factor, "low_freq_factor")?,
                high_freq_factor: need(p.high_freq_factor, "high_freq_factor")?,
                original_max_position_embeddings: p.original_max_position_embeddings.ok_or(
                    "rope scaling `llama3` needs `original_max_position_embeddings`".to_string(),
                )?,
            }),
            "linear" => Ok(RopeKind::Linear {
                factor: p.factor.ok_or("rope scaling `linear` needs `factor`")?,
            }),
            // transformers' Phi-3 reads the older name `su` as longrope.
            "longrope" | "su" => {
                let l = crate::load::longrope::params(self, p)?;
                Ok(RopeKind::LongRope { original_max_position_embeddings: l.original_max_position_embeddings, attention_factor: l.attention_factor })
            }
            other => Err(format!(
                "rope type `{other}` is not supported (supported: default, llama3, linear, longrope)"
            )),
        }
    }

    /// `inv_freq[i]` for the rotate-half pairs (i, i + d_head/2), with any scaling applied.
    /// Computed once on the CPU; both executors use this vector.
    /// longrope: this is the short table; [`Self::longrope`] holds the long one.
    pub fn inv_freq(&self) -> Vec<f32> {
        let kind = self.rope_kind().unwrap_or(RopeKind::Default);
        match (kind, self.longrope_factors()) {
            (RopeKind::LongRope { .. }, Some((short, _))) => crate::load::longrope::inv_freq(self.d_head(), self.rope_theta(), short),
            _ => rope_inv_freq(self.d_head(), self.rope_theta(), kind),
        }
    }

    /// longrope's long table, where it applies and the factor on cos and sin; None for every
    /// other kind of RoPE.
    pub fn longrope(&self) -> Option<crate::load::longrope::LongRope> {
        let Ok(RopeKind::LongRope { original_max_position_embeddings, attention_factor }) = self.rope_kind() else {
            return None;
        };
        let (_, long) = self.longrope_factors()?;
        Some(crate::load::longrope::LongRope {
            long_inv_freq: crate::load::longrope::inv_freq(self.d_head(), self.rope_theta(), long),
            original_max_position_embeddings,
            attention_factor: attention_factor as f32,
        })
    }

    /// longrope's `short_factor` and `long_factor`, where the config has valid ones.
    pub fn longrope_factors(&self) -> Option<(&[f64], &[f64])> {
        crate::load::longrope::factors(self.rope_params()?, self.d_head()).ok()
    }

    /// `inv_freq` of the sliding-window layers (their own θ, no scaling), where it differs.
    pub fn inv_freq_local(&self) -> Option<Vec<f32>> {
        self.rope_theta_local().map(|theta| rope_inv_freq(self.d_head(), theta, RopeKind::Default))
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let caps = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("intermediate_size", self.intermediate_size, MAX_MLP),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HEADS),
            ("num_key_value_heads", self.n_kv_heads(), MAX_HEADS),
            ("head_dim", self.d_head(), MAX_HEAD_DIM),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_POSITIONS,
            ),
        ];
        for (name, value, cap) in caps {
            if value == 0 || value > cap {
                return Err(format!("`{name}` = {value} is out of range (1..={cap})"));
            }
        }
        if !self.n_heads().is_multiple_of(self.n_kv_heads()) {
            return Err(format!(
                "`num_attention_heads` = {} is not a multiple of `num_key_value_heads` = {}",
                self.n_heads(),
                self.n_kv_heads()
            ));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "`hidden_size` = {} is not divisible by `num_attention_heads` = {} (and no `head_dim` is given)",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.eps_f64().is_finite() && self.eps_f64() > 0.0 && self.eps_f64() < 1.0) {
            let name = if self.layer_norm_eps.is_some() { "layer_norm_eps" } else { "rms_norm_eps" };
            return Err(format!("`{name}` = {} must be in (0, 1)", self.eps_f64()));
        }
        let arch = crate::load::arch::Arch::from_config(self)?;
        if arch.uses_rope() {
            self.validate_rope()?;
        }
        Ok(())
    }
}

impl LlamaConfig {
    fn validate_rope(&self) -> std::result::Result<(), String> {
        if !self.d_head().is_multiple_of(2) {
            return Err(format!("`head_dim` = {} must be even for RoPE", self.d_head()));
        }
        for theta in std::iter::once(self.rope_theta()).chain(self.rope_theta_local()) {
            if !(theta.is_finite() && theta > 1.0) {
                return Err(format!("`rope_theta` = {theta} must be a finite number > 1"));
            }
        }
        if let RopeKind::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } = self.rope_kind()?
            && (!(factor >= 1.0 && high_freq_factor > low_freq_factor && low_freq_factor > 0.0)
                || original_max_position_embeddings == 0)
        {
            return Err("llama3 rope scaling needs factor ≥ 1, high_freq_factor > low_freq_factor > 0 and original_max_position_embeddings > 0".into());
        }
        if let RopeKind::Linear { factor } = self.rope_kind()?
            && !(factor.is_finite() && factor > 0.0)
        {
            return Err(format!(
                "linear rope scaling `factor` = {factor} must be a finite number > 0"
            ));
        }
        if let (RopeKind::LongRope { .. }, Some(p)) = (self.rope_kind()?, self.rope_params()) {
            crate::load::longrope::factors(p, self.d_head())?;
        }
        Ok(())
    }
}

/// GPT-2's config names its sizes its own way (`n_embd`, `n_head`, …): rename them to the
/// names every other family uses, so one struct reads them all. `n_inner: null` is 4·d.
/// Gemma and BERT tie their heads unless the config says otherwise.
fn gpt2_keys(value: &mut serde_json::Value) {
    let Some(obj) = value.as_object_mut() else { return };
    let kind = obj.get("model_type").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    if matches!(kind.as_str(), "gemma3_text" | "gemma3" | "bert") {
        obj.entry("tie_word_embeddings").or_insert(true.into());
    }
    if kind != "gpt2" {
        return;
    }
    let renames = [
        ("n_embd", "hidden_size"),
        ("n_head", "num_attention_heads"),
        ("n_layer", "num_hidden_layers"),
        ("n_positions", "max_position_embeddings"),
        ("n_inner", "intermediate_size"),
        ("activation_function", "hidden_act"),
        ("layer_norm_epsilon", "layer_norm_eps"),
    ];
    for (from, to) in renames {
        if let Some(v) = obj.remove(from)
            && !obj.contains_key(to)
        {
            obj.insert(to.into(), v);
        }
    }
    if obj.get("intermediate_size").is_none_or(serde_json::Value::is_null)
        && let Some(d) = obj.get("hidden_size").and_then(serde_json::Value::as_u64)
    {
        obj.insert("intermediate_size".into(), (4 * d).into());
    }
    obj.entry("layer_norm_eps").or_insert(1e-5.into());
    obj.entry("tie_word_embeddings").or_insert(true.into());
}

/// HF `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters` and
/// `_compute_llama3_parameters`, in f64 then cast
/// to f32 (HF computes in f32; the difference is below 1 ulp on the test vectors).
pub fn rope_inv_freq(d_head: usize, theta: f64, kind: RopeKind) -> Vec<f32> {
    let base: Vec<f64> = (0..d_head / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / d_head as f32;
            1.0 / theta.powf(exponent as f64)
        })
        .collect();
    let scaled: Vec<f64> = match kind {
        // longrope's divisors are lists in the config: `longrope::inv_freq` applies them.
        RopeKind::Default | RopeKind::LongRope { .. } => base,
        RopeKind::Linear { factor } => base.iter().map(|f| f / factor).collect(),
        RopeKind::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let old_ctx = original_max_position_embeddings as f64;
            let low_freq_wavelen = old_ctx / low_freq_factor;
            let high_freq_wavelen = old_ctx / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_freq_wavelen {
                        f
                    } else if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        let smooth =
                            (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    };
    scaled.into_iter().map(|f| f as f32).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const V4: &str = r#"{"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true,
        "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}"#;

    #[test]
    fn smollm2_4x_form_derived_values() {
        let c = LlamaConfig::from_json(V4, Path::new("config.json")).unwrap();
        assert_eq!(c.d_head(), 64);
        assert_eq!(c.group_size(), 3);
        assert_eq!(c.kv_head_of(5), 1);
        assert_eq!(c.rope_theta(), 100000.0);
        assert_eq!(c.rope_kind().unwrap(), RopeKind::Default);
        // SmolLM2-135M: 134,515,008 parameters (embedding 28.3M + 30 × 3.54M + final norm).
        assert_eq!(c.n_params(), 134_515_008);
    }

    #[test]
    fn transformers_5x_form_reads_theta_from_rope_parameters() {
        let text = r#"{"vocab_size": 97, "hidden_size": 64, "intermediate_size": 160,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 16, "rms_norm_eps": 1e-5, "dtype": "float32",
            "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
              "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}}"#;
        let c = LlamaConfig::from_json(text, Path::new("c.json")).unwrap();
        assert_eq!(c.rope_theta(), 500000.0);
        assert!(matches!(c.rope_kind().unwrap(), RopeKind::Llama3 { factor, .. } if factor == 8.0));
    }

    #[test]
    fn rope_scaling_4x_accepts_type_alias() {
        let text = V4.replace(
            "\"torch_dtype\"",
            "\"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}, \"torch_dtype\"",
        );
        let c = LlamaConfig::from_json(&text, Path::new("c.json")).unwrap();
        assert!(matches!(c.rope_kind().unwrap(), RopeKind::Llama3 { .. }));
    }

    #[test]
    fn absurd_sizes_are_rejected_naming_the_field() {
        let text = V4.replace("\"hidden_size\": 576", "\"hidden_size\": 99999999999");
        let err = LlamaConfig::from_json(&text, Path::new("config.json")).unwrap_err();
        assert!(err.to_string().contains("hidden_size"), "{err}");
    }

    #[test]
    fn inconsistent_heads_are_rejected() {
        let text = V4.replace("\"num_key_value_heads\": 3", "\"num_key_value_heads\": 4");
        let err = LlamaConfig::from_json(&text, Path::new("config.json")).unwrap_err();
        assert!(err.to_string().contains("num_key_value_heads"), "{err}");
    }

    #[test]
    fn non_positive_linear_factor_is_rejected() {
        for factor in ["0.0", "-1.0"] {
            let text = V4.replace(
                "\"torch_dtype\"",
                &format!("\"rope_scaling\": {{\"type\": \"linear\", \"factor\": {factor}}}, \"torch_dtype\""),
            );
            let err = LlamaConfig::from_json(&text, Path::new("config.json")).unwrap_err();
            assert!(err.to_string().contains("factor"), "{err}");
        }
    }

    #[test]
    fn null_rope_theta_is_rejected_not_defaulted() {
        let text = V4.replace("\"rope_theta\": 100000.0", "\"rope_theta\": null");
        let err = LlamaConfig::from_json(&text, Path::new("config.json")).unwrap_err();
        assert!(err.to_string().contains("rope_theta"), "{err}");
    }

    #[test]
    fn unknown_rope_type_is_rejected() {
        let text = V4.replace("\"torch_dtype\"", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}, \"torch_dtype\"");
        let err = LlamaConfig::from_json(&text, Path::new("config.json")).unwrap_err();
        assert!(err.to_string().contains("yarn"), "{err}");
    }
}
