//! Direct logit attribution: the final residual stream is a sum of everything written into
//! it (the embedding, each head's output, each MLP's output, biases), so with every norm's
//! scale held fixed at the value the pass computed, the logit of a token splits into one
//! contribution per component that sum exactly (to float rounding) to the model's logit.
//!
//! The definition, for the last position:
//!
//! - The read-out vector is `u = w_norm ⊙ (W_U[t] − W_U[m])` (`m` the optional second token).
//!   With the final norm's scale `s` fixed, RMSNorm is linear: a component `c` adds `c · u / s`.
//!   LayerNorm (GPT-2) is affine: it subtracts the mean over `d_model`, and
//!   `Σᵢ (cᵢ − c̄) uᵢ = c · (u − ū)`, so every component reads through the centred `u − ū`, and
//!   its bias `β · (W_U[t] − W_U[m])` is a component of its own (`ln_final.bias`).
//! - A head's output is its slice of `z` times its slice of `o_proj` (`o_proj` output = Σ heads);
//!   the `o_proj` biases of every layer, which belong to no head, are the `attn_bias` component.
//!   An MLP's output is `hook_mlp_out` (with its `down_proj` bias); GPT-2's learned position
//!   rows are the `pos_embed` component.
//! - Sandwich norms (Gemma 3): each sublayer's output passes through an RMSNorm (`ln1_post`,
//!   `ln2_post`) before it is added. With that norm's scale `s_post` (this position's) fixed,
//!   it is linear too: a head adds `(z_h · O_h) ⊙ w_post / s_post` to the residual stream.
//!   Gemma's embedding enters multiplied by `√d_model` (after `hook_embed` records it).
//! - BERT has no decomposition: every sublayer ends in a LayerNorm of the whole sum and the MLM
//!   head reads the residual through a dense layer and a GELU, which is not linear.
//!
//! So `logit[t] = Σ_c (c · u') / s (+ bias)`, with `u'` the read-out vector seen through the
//! component's post-sublayer norm.

use ndarray::{Array1, s};

use crate::load::arch::{NormKind, NormPlacement};

use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey, HookKind};
use crate::load::model::Model;
use crate::exec::tensor::Tensor;
use crate::exec::trace::{CaptureFilter, Trace};

/// One component's share of the logit (or logit difference).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Contribution {
    /// `embed`, `L3.H5`, `L3.mlp`, or (GPT-2) `pos_embed`, `attn_bias`, `ln_final.bias`.
    pub name: String,
    pub layer: Option<usize>,
    pub head: Option<usize>,
    pub value: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub target: u32,
    /// The second token of a logit difference, if any.
    pub minus: Option<u32>,
    /// The model's own logit (difference) at the last position.
    pub logit: f32,
    /// In order: embed (and pos_embed), then per layer its heads and its MLP, then any biases.
    pub components: Vec<Contribution>,
}

impl Attribution {
    pub fn sum(&self) -> f32 {
        self.components.iter().map(|c| c.value).sum()
    }
}

/// What a pass must capture for [`attribute`] (hooks a family lacks are simply absent).
pub fn capture() -> CaptureFilter {
    CaptureFilter::kinds([
        HookKind::Embed,
        HookKind::PosEmbed,
        HookKind::Block(BlockHook::Z),
        HookKind::Block(BlockHook::Ln1PostScale),
        HookKind::Block(BlockHook::MlpOut),
        HookKind::Block(BlockHook::Ln2PostScale),
        HookKind::LnFinalScale,
    ])
}

fn missing(key: HookKey) -> EngineError {
    EngineError::Input(format!("attribution needs `{key}` in the trace (capture it)"))
}

/// Row `pos` of a recorded `[pos, …]` hook, flattened.
fn row(trace: &Trace, key: HookKey, pos: usize) -> Result<Array1<f32>> {
    let t: &Tensor = trace.get(key).ok_or_else(|| missing(key))?;
    let flat = t.data.view().into_shape_with_order((t.shape()[0], t.data.len() / t.shape()[0].max(1)));
    let flat = flat.map_err(|e| EngineError::Shape(format!("`{key}`: {e}")))?;
    if pos >= flat.nrows() {
        return Err(EngineError::Input(format!("`{key}` has {} rows, not {}", flat.nrows(), pos + 1)));
    }
    Ok(flat.row(pos).to_owned())
}

/// The final norm as a read-out: the vector `u'` a component is dotted with (before dividing
/// by the scale), and the constant the norm's own bias adds.
fn read_out(model: &Model, unembed: Array1<f32>) -> Result<(Array1<f32>, Option<f32>)> {
    let arch = &model.arch;
    let w = &model.weights;
    if arch.mlm_head || arch.placement == NormPlacement::Post {
        return Err(EngineError::Input(format!(
            "direct logit attribution is not defined for {}: every sublayer ends in a LayerNorm of the whole residual sum and its MLM head reads the residual through a dense layer and a GELU, so the logit is not a sum of per-component shares",
            arch.family.name()
        )));
    }
    let norm = w.norm.as_ref().ok_or_else(|| EngineError::Input(format!("direct logit attribution reads the logit through the final norm; {} has none", arch.family.name())))?;
    let mut u = &unembed * norm; // [d_model]  w_norm ⊙ (W_U[t] − W_U[m])
    match arch.norm {
        NormKind::Rms => Ok((u, None)),
        NormKind::Layer => {
            // The mean subtraction moves onto the read-out vector: c · (u − ū).
            let mean = u.mean().unwrap_or(0.0);
            u -= mean;
            let bias = w.norm_bias.as_ref().map(|b| b.dot(&unembed));
            Ok((u, bias))
        }
    }
}

/// Splits the last position's logit of `target` (minus that of `minus`) into components.
pub fn attribute(model: &Model, trace: &Trace, target: u32, minus: Option<u32>) -> Result<Attribution> {
    let c = &model.config;
    let arch = &model.arch;
    for id in std::iter::once(target).chain(minus) {
        if id as usize >= c.vocab_size {
            return Err(EngineError::Input(format!("token id {id} is outside the vocabulary ({})", c.vocab_size)));
        }
    }
    let last = trace.n_tokens().checked_sub(1).ok_or_else(|| EngineError::Input("the trace has no tokens".into()))?;
    let unembed = model.weights.lm_head(); // [vocab, d_model]
    let mut direction: Array1<f32> = unembed.row(target as usize); // [d_model]
    if let Some(m) = minus {
        direction -= &unembed.row(m as usize);
    }
    let (u, norm_bias) = read_out(model, direction)?; // [d_model]
    let u = u / row(trace, HookKey::LnFinalScale, last)?[0]; // the final scale, held fixed
    let share = |name: String, layer, head, value| Contribution { name, layer, head, value };
    let embed = row(trace, HookKey::Embed, last)?.dot(&u) * arch.embed_scale.unwrap_or(1.0);
    let mut components = vec![share("embed".into(), None, None, embed)];
    if trace.get(HookKey::PosEmbed).is_some() {
        components.push(share("pos_embed".into(), None, None, row(trace, HookKey::PosEmbed, last)?.dot(&u)));
    }
    // Gemma's sandwich norms and OLMo 2's post-sublayer norms: each sublayer's write is normed.
    let sandwich = arch.placement.normed_output();
    let d_head = c.d_head();
    let mut attn_bias = 0.0;
    for l in 0..c.n_layers() {
        let w = &model.weights.layers[l];
        // Through a sandwich norm with its scale held fixed: w_post ⊙ u / s_post.
        let through_post = |i: usize, hook: BlockHook| -> Result<Array1<f32>> {
            if !sandwich {
                return Ok(u.clone());
            }
            let weight = w.sublayer_out_norm.as_ref().map(|n| &n[i]).ok_or_else(|| EngineError::Input("the model has no post-sublayer norms".into()))?;
            Ok(&u * weight / row(trace, HookKey::Block(l, hook), last)?[0])
        };
        let u_attn = through_post(0, BlockHook::Ln1PostScale)?; // [d_model]
        // o_projᵀ u: what each z dimension adds to the logit. [n_heads·d_head]
        let through_o = w.self_attn.o_proj.f32_view().t().dot(&u_attn);
        let z = row(trace, HookKey::Block(l, BlockHook::Z), last)?; // [n_heads·d_head]
        for h in 0..c.n_heads() {
            let part = s![h * d_head..(h + 1) * d_head];
            components.push(share(format!("L{l}.H{h}"), Some(l), Some(h), z.slice(part).dot(&through_o.slice(part))));
        }
        if let Some(b) = w.self_attn.bias.as_ref().and_then(|b| b.o_proj.as_ref()) {
            attn_bias += b.dot(&u_attn);
        }
        let mlp = row(trace, HookKey::Block(l, BlockHook::MlpOut), last)?; // [d_model]  down_proj bias included
        let value = mlp.dot(&through_post(1, BlockHook::Ln2PostScale)?);
        components.push(share(format!("L{l}.mlp"), Some(l), None, value));
    }
    if arch.biases {
        components.push(share("attn_bias".into(), None, None, attn_bias));
    }
    if let Some(b) = norm_bias {
        components.push(share("ln_final.bias".into(), None, None, b));
    }
    let logits = trace.last_logits.as_ref().ok_or_else(|| EngineError::Input("the pass did not reach its Sample step".into()))?;
    let logit = logits[target as usize] - minus.map_or(0.0, |m| logits[m as usize]);
    Ok(Attribution { target, minus, logit, components })
}
