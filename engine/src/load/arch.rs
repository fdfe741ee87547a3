//! The architecture as data: one description per family, read from `config.json`, that says
//! which norm sits where, how positions enter, which keys a query sees, and what the MLP
//! computes. The op program (`step::Program`) is generated from it, and the executors read its
//! switches: no `if family == …` in the forward pass (DESIGN §8, the TransformerLens way).

use crate::load::config::LlamaConfig;

/// The `model_type` values Glassbox runs, for the error that lists them.
pub const SUPPORTED_MODEL_TYPES: &str = "llama, mistral, gemma3_text (gemma3), gpt2, bert, qwen2, qwen3, olmo2, phi3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Llama,
    Gemma3,
    Gpt2,
    Bert,
    Qwen2,
    Qwen3,
    Olmo2,
    Phi3,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Gemma3 => "gemma3",
            Family::Gpt2 => "gpt2",
            Family::Bert => "bert",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Olmo2 => "olmo2",
            Family::Phi3 => "phi3",
        }
    }
}

/// What a norm computes. Gemma's `x̂ · (1 + w)` is RMSNorm with `1 + w` folded into the weight
/// at load, so the pass has one RMSNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    Rms,
    /// `(x − mean) / sqrt(var + ε) · w + b`.
    Layer,
}

/// Where a block's norms sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormPlacement {
    /// Norm the sublayer's input (Llama, GPT-2).
    Pre,
    /// Add, then norm the sum (BERT, the original Transformer).
    Post,
    /// Norm the input and the sublayer's output before the add (Gemma 2/3).
    Sandwich,
    /// Norm only the sublayer's output before the add, `x + norm(f(x))` (OLMo 2): the
    /// sublayer reads the residual stream itself.
    PostSublayer,
}

impl NormPlacement {
    /// Whether a norm sits before each sublayer (the sublayer reads the normed stream).
    pub fn pre(self) -> bool {
        matches!(self, NormPlacement::Pre | NormPlacement::Sandwich)
    }

    /// Whether each sublayer's output is normed before the residual add.
    pub fn normed_output(self) -> bool {
        matches!(self, NormPlacement::Sandwich | NormPlacement::PostSublayer)
    }
}

/// How a position enters the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// Rotary: q and k rotated by position inside attention.
    Rope,
    /// A learned row per position added to the token embedding (GPT-2); BERT also adds a
    /// token-type row.
    Learned { token_types: bool },
    /// NoPE: no position signal at all; the causal mask alone tells positions apart.
    None,
}

/// Which keys a query of one layer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttnMask {
    /// Every earlier key and itself.
    Causal,
    /// The last `window` keys up to itself (key position > query position − window).
    Sliding { window: usize },
    /// Every key, before and after (BERT).
    Bidirectional,
}

impl AttnMask {
    /// Whether query `q` (absolute position) sees key `k`.
    pub fn visible(self, q: usize, k: usize) -> bool {
        match self {
            AttnMask::Causal => k <= q,
            AttnMask::Sliding { window } => k <= q && k + window > q,
            AttnMask::Bidirectional => true,
        }
    }

    pub fn is_causal(self) -> bool {
        !matches!(self, AttnMask::Bidirectional)
    }
}

/// What the MLP computes between its projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlpKind {
    /// `silu(gate) ⊙ up` (Llama).
    SwiGlu,
    /// `gelu_tanh(gate) ⊙ up` (Gemma).
    GeGlu,
    /// `act(W_in x + b)`, no gate (GPT-2, BERT).
    Plain(Activation),
}

impl MlpKind {
    pub fn gated(self) -> bool {
        !matches!(self, MlpKind::Plain(_))
    }

    /// "SwiGLU", "GeGLU", or the ungated MLP's activation.
    pub fn name(self) -> &'static str {
        match self {
            MlpKind::SwiGlu => "SwiGLU",
            MlpKind::GeGlu => "GeGLU",
            MlpKind::Plain(act) => act.name(),
        }
    }

    /// What `mlp.hook_post` is, in symbols.
    pub fn post(self) -> &'static str {
        match self {
            MlpKind::SwiGlu => "silu(gate) ⊙ up",
            MlpKind::GeGlu => "gelu_tanh(gate) ⊙ up",
            MlpKind::Plain(Activation::Gelu) => "gelu(W_in·x + b)",
            MlpKind::Plain(Activation::GeluTanh) => "gelu_tanh(W_in·x + b)",
            MlpKind::Plain(Activation::Relu) => "relu(W_in·x + b)",
            MlpKind::Plain(Activation::Silu) => "silu(W_in·x + b)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x · Φ(x)` with the exact erf (BERT's `gelu`).
    Gelu,
    /// The tanh approximation (GPT-2's `gelu_new`, Gemma's `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
    Silu,
}

impl Activation {
    fn parse(name: &str, field: &str) -> Result<Self, String> {
        match name {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            "silu" | "swish" => Ok(Activation::Silu),
            other => Err(format!("`{field}` = `{other}` is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Gelu => "GELU",
            Activation::GeluTanh => "GELU (tanh)",
            Activation::Relu => "ReLU",
            Activation::Silu => "SiLU",
        }
    }
}

/// One layer's own settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerArch {
    pub mask: AttnMask,
    /// Whether this layer's RoPE uses the local θ (Gemma's sliding layers).
    pub local_rope: bool,
}

/// The whole description.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub family: Family,
    pub norm: NormKind,
    pub placement: NormPlacement,
    pub positions: Positions,
    pub layers: Vec<LayerArch>,
    /// Gemma, Qwen 3: RMSNorm over each head of q and k before RoPE (OLMo 2: see
    /// `qk_norm_whole`).
    pub qk_norm: bool,
    /// OLMo 2: the QK-norm spans all heads at once (weights of width n_heads·d_head and
    /// n_kv_heads·d_head), not one head.
    pub qk_norm_whole: bool,
    /// Multiplies q·k (`1/sqrt(head_dim)`, or Gemma's `1/sqrt(query_pre_attn_scalar)`).
    pub score_scale: f32,
    pub mlp: MlpKind,
    /// Biases on q, k, v, o and the MLP's projections (GPT-2, BERT).
    pub biases: bool,
    /// Biases on q, k and v only (Qwen 2).
    pub qkv_bias: bool,
    /// Phi-3: q, k, v stored as one `qkv_proj` and gate, up as one `gate_up_proj` (the
    /// loader views their rows apart; the pass is the same).
    pub fused_projections: bool,
    /// Multiplies the token embedding (Gemma: √d_model, rounded as the model's dtype is not).
    pub embed_scale: Option<f32>,
    /// BERT: a LayerNorm over the summed embeddings.
    pub embed_norm: bool,
    /// A norm after the last block (all but BERT).
    pub final_norm: bool,
    /// BERT: dense + GELU + LayerNorm before the tied decoder (which has a bias).
    pub mlm_head: bool,
    pub tied_head: bool,
}

impl LlamaConfig {
    /// The family's description (see [`Arch`]).
    pub fn arch(&self) -> Arch {
        Arch::of(self)
    }
}

/// Whether a `model_type` is one `Arch::from_config` reads (the model picker asks before a
/// config of another family fails on a missing field).
pub fn runs_model_type(model_type: &str) -> bool {
    matches!(model_type, "llama" | "mistral" | "smollm" | "smollm2" | "gemma3_text" | "gemma3" | "gpt2" | "bert" | "qwen2" | "qwen3" | "olmo2" | "phi3")
}

impl Arch {
    /// The description `config.json` gives, or a one-line reason it gives none.
    pub fn from_config(c: &LlamaConfig) -> Result<Self, String> {
        let model_type = c.model_type.as_deref().unwrap_or("llama");
        if c.glassbox_variant.is_some() && !matches!(model_type, "llama" | "smollm" | "smollm2") {
            return Err(format!("`glassbox_variant` is only read for model_type llama, not `{model_type}`"));
        }
        match model_type {
            "llama" | "mistral" | "smollm" | "smollm2" => llama(c),
            "gemma3_text" | "gemma3" => gemma3(c),
            "gpt2" => gpt2(c),
            "bert" => bert(c),
            "qwen2" | "qwen3" | "olmo2" | "phi3" => crate::load::arch_variants::of(c),
            other => Err(format!("`model_type` = `{other}` is not supported (supported: {SUPPORTED_MODEL_TYPES})")),
        }
    }

    /// The description of a config that passed loading (which checked it); one built in code
    /// that has none runs as Llama.
    pub fn of(c: &LlamaConfig) -> Self {
        Self::from_config(c).unwrap_or_else(|_| llama_unchecked(c))
    }

    pub fn uses_rope(&self) -> bool {
        self.positions == Positions::Rope
    }

    /// A causal LM generates; a masked LM fills in blanks.
    pub fn generates(&self) -> bool {
        !self.mlm_head
    }

    /// The activation of BERT's MLM transform: transformers uses `hidden_act` there too.
    pub fn head_activation(&self) -> Activation {
        match self.mlp {
            MlpKind::Plain(act) => act,
            MlpKind::SwiGlu | MlpKind::GeGlu => Activation::Gelu,
        }
    }

    /// Gemma stores each norm's weight as `w` and scales by `1 + w`; the loader folds the 1
    /// into the weight it keeps (`load/families.rs`), so a view that shows the stored `w`
    /// needs to know.
    pub fn norm_weight_plus_one(&self) -> bool {
        self.family == Family::Gemma3
    }

    pub fn mask(&self, layer: usize) -> AttnMask {
        self.layers.get(layer).map_or(AttnMask::Causal, |l| l.mask)
    }
}

pub(crate) fn uniform(c: &LlamaConfig, mask: AttnMask) -> Vec<LayerArch> {
    vec![LayerArch { mask, local_rope: false }; c.n_layers()]
}

fn default_scale(c: &LlamaConfig) -> f32 {
    1.0 / (c.d_head() as f32).sqrt()
}

fn llama(c: &LlamaConfig) -> Result<Arch, String> {
    if let Some(act) = &c.hidden_act
        && act != "silu"
    {
        return Err(format!("`hidden_act` = `{act}` is not supported (Llama uses silu)"));
    }
    if c.attention_bias || c.mlp_bias {
        return Err("`attention_bias`/`mlp_bias` = true is not supported (Llama has no biases)".into());
    }
    let mut arch = llama_unchecked(c);
    if let Some(v) = &c.glassbox_variant {
        apply_variant(&mut arch, v)?;
    }
    Ok(arch)
}

/// Glassbox's recipe variants of Llama (`glassbox_variant` in config.json): each field set
/// replaces the family's switch; a value it does not know names the field.
fn apply_variant(arch: &mut Arch, v: &crate::load::config::GlassboxVariant) -> Result<(), String> {
    let bad = |field: &str, value: &str, known: &str| format!("`glassbox_variant.{field}` = `{value}` is not supported (supported: {known})");
    if let Some(p) = v.norm_placement.as_deref() {
        arch.placement = match p {
            "pre" => NormPlacement::Pre,
            "post" => NormPlacement::Post,
            other => return Err(bad("norm_placement", other, "pre, post")),
        };
    }
    if let Some(n) = v.norm.as_deref() {
        arch.norm = match n {
            "rmsnorm" => NormKind::Rms,
            "layernorm" => NormKind::Layer,
            other => return Err(bad("norm", other, "rmsnorm, layernorm")),
        };
    }
    if let Some(p) = v.positions.as_deref() {
        arch.positions = match p {
            "rope" => Positions::Rope,
            "none" => Positions::None,
            "learned" => Positions::Learned { token_types: false },
            other => return Err(bad("positions", other, "rope, none, learned")),
        };
    }
    if let Some(m) = v.mlp.as_deref() {
        arch.mlp = match m {
            "swiglu" => MlpKind::SwiGlu,
            "relu" => MlpKind::Plain(Activation::Relu),
            other => return Err(bad("mlp", other, "swiglu, relu")),
        };
    }
    Ok(())
}

pub(crate) fn llama_unchecked(c: &LlamaConfig) -> Arch {
    Arch {
        family: Family::Llama,
        norm: NormKind::Rms,
        placement: NormPlacement::Pre,
        positions: Positions::Rope,
        layers: uniform(c, AttnMask::Causal),
        qk_norm: false,
        qk_norm_whole: false,
        score_scale: default_scale(c),
        mlp: MlpKind::SwiGlu,
        biases: false,
        qkv_bias: false,
        fused_projections: false,
        embed_scale: None,
        embed_norm: false,
        final_norm: true,
        mlm_head: false,
        tied_head: c.tie_word_embeddings,
    }
}

fn gemma3(c: &LlamaConfig) -> Result<Arch, String> {
    let act = c.hidden_activation.as_deref().or(c.hidden_act.as_deref()).unwrap_or("gelu_pytorch_tanh");
    if Activation::parse(act, "hidden_activation")? != Activation::GeluTanh {
        return Err(format!("`hidden_activation` = `{act}` is not supported for Gemma 3 (it uses gelu_pytorch_tanh)"));
    }
    for (field, cap) in [("final_logit_softcapping", c.final_logit_softcapping), ("attn_logit_softcapping", c.attn_logit_softcapping)] {
        if cap.is_some() {
            return Err(format!("`{field}` is set: soft-capping is not supported (Gemma 3 has none)"));
        }
    }
    if c.use_bidirectional_attention == Some(true) {
        return Err("`use_bidirectional_attention` = true is not supported (Gemma 3 text models are causal)".into());
    }
    if c.attention_bias {
        return Err("`attention_bias` = true is not supported for Gemma 3".into());
    }
    let scalar = c.query_pre_attn_scalar.unwrap_or(c.d_head() as f64);
    if !(scalar.is_finite() && scalar > 0.0) {
        return Err(format!("`query_pre_attn_scalar` = {scalar} must be a finite number > 0"));
    }
    Ok(Arch {
        family: Family::Gemma3,
        norm: NormKind::Rms,
        placement: NormPlacement::Sandwich,
        positions: Positions::Rope,
        layers: gemma_layers(c)?,
        qk_norm: true,
        qk_norm_whole: false,
        score_scale: (scalar.powf(-0.5)) as f32,
        mlp: MlpKind::GeGlu,
        biases: false,
        qkv_bias: false,
        fused_projections: false,
        // transformers scales by `hidden_size ** 0.5` cast to the weights' dtype (f32 here).
        embed_scale: Some((c.d_model() as f64).sqrt() as f32),
        embed_norm: false,
        final_norm: true,
        mlm_head: false,
        tied_head: c.tie_word_embeddings,
    })
}

/// Gemma 3's layer types: `layer_types` (5.x), else every `sliding_window_pattern`-th layer
/// global (4.x, default 6).
fn gemma_layers(c: &LlamaConfig) -> Result<Vec<LayerArch>, String> {
    let n = c.n_layers();
    let types: Vec<String> = match &c.layer_types {
        Some(t) if t.len() != n => {
            return Err(format!("`layer_types` has {} entries but `num_hidden_layers` = {n}", t.len()));
        }
        Some(t) => t.clone(),
        None => {
            let pattern = c.sliding_window_pattern.unwrap_or(6);
            if pattern == 0 {
                return Err("`sliding_window_pattern` = 0 must be ≥ 1".into());
            }
            (0..n).map(|l| if (l + 1) % pattern == 0 { "full_attention" } else { "sliding_attention" }.to_string()).collect()
        }
    };
    let sliding = types.iter().any(|t| t == "sliding_attention");
    let window = match c.sliding_window {
        Some(0) => return Err("`sliding_window` = 0 must be ≥ 1 (a query must see at least itself)".into()),
        Some(w) => w,
        None if sliding => return Err("`sliding_window` is missing but `layer_types` has sliding_attention layers".into()),
        None => 0,
    };
    types
        .iter()
        .enumerate()
        .map(|(l, t)| match t.as_str() {
            "sliding_attention" => Ok(LayerArch { mask: AttnMask::Sliding { window }, local_rope: c.rope_theta_local().is_some() }),
            "full_attention" => Ok(LayerArch { mask: AttnMask::Causal, local_rope: false }),
            other => Err(format!("`layer_types[{l}]` = `{other}` is not a layer type (expected sliding_attention or full_attention)")),
        })
        .collect()
}

fn gpt2(c: &LlamaConfig) -> Result<Arch, String> {
    let act = Activation::parse(c.hidden_act.as_deref().unwrap_or("gelu_new"), "activation_function")?;
    if c.scale_attn_by_inverse_layer_idx == Some(true) || c.scale_attn_weights == Some(false) {
        return Err("`scale_attn_by_inverse_layer_idx` = true / `scale_attn_weights` = false are not supported (standard GPT-2 scales by 1/sqrt(head_dim))".into());
    }
    if c.num_key_value_heads.is_some_and(|k| k != c.n_heads()) {
        return Err("GPT-2 has one key/value head per query head; `num_key_value_heads` must equal `n_head`".into());
    }
    Ok(Arch {
        family: Family::Gpt2,
        norm: NormKind::Layer,
        placement: NormPlacement::Pre,
        positions: Positions::Learned { token_types: false },
        layers: uniform(c, AttnMask::Causal),
        qk_norm: false,
        qk_norm_whole: false,
        score_scale: default_scale(c),
        mlp: MlpKind::Plain(act),
        biases: true,
        qkv_bias: false,
        fused_projections: false,
        embed_scale: None,
        embed_norm: false,
        final_norm: true,
        mlm_head: false,
        tied_head: true,
    })
}

fn bert(c: &LlamaConfig) -> Result<Arch, String> {
    let act = Activation::parse(c.hidden_act.as_deref().unwrap_or("gelu"), "hidden_act")?;
    if c.type_vocab_size == Some(0) {
        return Err("`type_vocab_size` = 0 must be ≥ 1 (BERT adds token type 0 to every position)".into());
    }
    Ok(Arch {
        family: Family::Bert,
        norm: NormKind::Layer,
        placement: NormPlacement::Post,
        positions: Positions::Learned { token_types: true },
        layers: uniform(c, AttnMask::Bidirectional),
        qk_norm: false,
        qk_norm_whole: false,
        score_scale: default_scale(c),
        mlp: MlpKind::Plain(act),
        biases: true,
        qkv_bias: false,
        fused_projections: false,
        embed_scale: None,
        embed_norm: true,
        final_norm: false,
        mlm_head: true,
        tied_head: true,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<LlamaConfig, String> {
        LlamaConfig::from_json(text, Path::new("config.json")).map_err(|e| e.to_string())
    }

    const GEMMA: &str = r#"{"model_type": "gemma3_text", "vocab_size": 97, "hidden_size": 64,
        "intermediate_size": 160, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 4,
        "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
        "rope_parameters": {"full_attention": {"rope_theta": 1000000.0, "rope_type": "default"},
                            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}}}"#;

    #[test]
    fn gemma3_reads_its_layer_types_thetas_and_scale() {
        let c = parse(GEMMA).unwrap();
        let a = Arch::from_config(&c).unwrap();
        assert_eq!(a.placement, NormPlacement::Sandwich);
        assert_eq!(a.mask(0), AttnMask::Sliding { window: 4 });
        assert_eq!(a.mask(3), AttnMask::Causal);
        assert!(a.layers[0].local_rope && !a.layers[3].local_rope);
        assert_eq!(c.rope_theta(), 1e6);
        assert_eq!(c.rope_theta_local(), Some(1e4));
        assert_eq!(a.score_scale, 0.25);
        assert_eq!(a.embed_scale, Some(8.0));
    }

    #[test]
    fn gemma3_contradictions_are_one_line_errors() {
        let cases = [
            (GEMMA.replace(r#""sliding_attention", "full_attention"]"#, r#""full_attention"]"#), "layer_types"),
            (GEMMA.replace(r#""sliding_window": 4"#, r#""sliding_window": 0"#), "sliding_window"),
            (GEMMA.replace(r#""query_pre_attn_scalar": 16"#, r#""query_pre_attn_scalar": 0"#), "query_pre_attn_scalar"),
            (GEMMA.replace(r#""query_pre_attn_scalar": 16"#, r#""query_pre_attn_scalar": -2"#), "query_pre_attn_scalar"),
            (GEMMA.replace(r#""head_dim": 16,"#, r#""head_dim": 16, "num_key_value_heads": 3,"#), "num_key_value_heads"),
            (GEMMA.replace(r#""sliding_attention", "full_attention"]"#, r#""local", "full_attention"]"#), "layer_types[2]"),
        ];
        for (text, field) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(field) && !err.contains('\n'), "{field}: {err}");
        }
    }

    #[test]
    fn gpt2_keys_are_read_under_their_own_names() {
        let c = parse(r#"{"model_type": "gpt2", "vocab_size": 97, "n_embd": 48, "n_head": 4, "n_layer": 2,
            "n_positions": 64, "n_inner": null, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}"#)
        .unwrap();
        assert_eq!((c.d_model(), c.n_heads(), c.n_layers(), c.d_mlp(), c.max_position_embeddings), (48, 4, 2, 192, 64));
        let a = Arch::from_config(&c).unwrap();
        assert_eq!(a.mlp, MlpKind::Plain(Activation::GeluTanh));
        assert_eq!(a.positions, Positions::Learned { token_types: false });
        assert!(a.tied_head && a.biases && !a.uses_rope());
    }

    const LLAMA: &str = r#"{"model_type": "llama", "vocab_size": 97, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "tie_word_embeddings": true"#;

    #[test]
    fn glassbox_variant_switches_apply_over_llama() {
        let c = parse(&format!(r#"{LLAMA}, "glassbox_variant": {{"norm_placement": "post", "norm": "layernorm", "positions": "learned", "mlp": "relu"}}}}"#)).unwrap();
        let a = Arch::from_config(&c).unwrap();
        assert_eq!((a.family, a.placement, a.norm), (Family::Llama, NormPlacement::Post, NormKind::Layer));
        assert_eq!((a.positions, a.mlp), (Positions::Learned { token_types: false }, MlpKind::Plain(Activation::Relu)));
        assert!(a.final_norm && !a.uses_rope());
        let nope = Arch::from_config(&parse(&format!(r#"{LLAMA}, "glassbox_variant": {{"positions": "none"}}}}"#)).unwrap()).unwrap();
        assert_eq!((nope.positions, nope.placement, nope.mlp), (Positions::None, NormPlacement::Pre, MlpKind::SwiGlu));
        assert!(!nope.uses_rope());
        let plain = Arch::from_config(&parse(&format!("{LLAMA}}}")).unwrap()).unwrap();
        assert_eq!(plain, llama_unchecked(&parse(&format!("{LLAMA}}}")).unwrap()));
    }

    #[test]
    fn a_bad_glassbox_variant_value_names_its_field() {
        for (body, field) in [
            (r#"{"norm_placement": "sandwich"}"#, "glassbox_variant.norm_placement"),
            (r#"{"norm": "batchnorm"}"#, "glassbox_variant.norm"),
            (r#"{"positions": "alibi"}"#, "glassbox_variant.positions"),
            (r#"{"mlp": "geglu"}"#, "glassbox_variant.mlp"),
            (r#"{"colour": "red"}"#, "colour"),
        ] {
            let err = parse(&format!(r#"{LLAMA}, "glassbox_variant": {body}}}"#)).unwrap_err();
            assert!(err.contains(field) && !err.contains('\n'), "{field}: {err}");
        }
        let gpt2 = r#"{"model_type": "gpt2", "vocab_size": 97, "n_embd": 48, "n_head": 4, "n_layer": 2, "glassbox_variant": {"mlp": "relu"}}"#;
        assert!(parse(gpt2).unwrap_err().contains("glassbox_variant"));
    }

    #[test]
    fn unknown_model_type_lists_the_supported_ones() {
        let err = parse(r#"{"model_type": "t5", "vocab_size": 9, "hidden_size": 8, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 2}"#)
        .unwrap_err();
        assert!(err.contains("`t5`") && err.contains("gemma3_text") && err.contains("bert"), "{err}");
    }
}
