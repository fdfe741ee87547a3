//! Direct logit attribution: the final residual stream is a sum of everything written into
//! it (the embedding, each head's output, each MLP's output), so with the final RMSNorm's
//! scale frozen the logit of a token splits into one contribution per component:
//!
//! `logit[t] = Σ_c (c · (w_norm ⊙ W_U[t])) / scale`,
//!
//! where a head's output is its slice of `z` times its slice of `o_proj`.

use ndarray::{Array1, ArrayView1, s};

use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey, HookKind};
use crate::load::model::Model;
use crate::exec::tensor::Tensor;
use crate::exec::trace::{CaptureFilter, Trace};

/// One component's share of the logit (or logit difference).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Contribution {
    /// `embed`, `L3.H5` or `L3.mlp`.
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
    /// In order: embed, then per layer its heads and its MLP.
    pub components: Vec<Contribution>,
}

impl Attribution {
    pub fn sum(&self) -> f32 {
        self.components.iter().map(|c| c.value).sum()
    }
}

/// What a pass must capture for [`attribute`].
pub fn capture() -> CaptureFilter {
    CaptureFilter::kinds([
        HookKind::Embed,
        HookKind::Block(BlockHook::Z),
        HookKind::Block(BlockHook::MlpOut),
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

/// Splits the last position's logit of `target` (minus that of `minus`) into components.
pub fn attribute(model: &Model, trace: &Trace, target: u32, minus: Option<u32>) -> Result<Attribution> {
    let c = &model.config;
    for id in std::iter::once(target).chain(minus) {
        if id as usize >= c.vocab_size {
            return Err(EngineError::Input(format!("token id {id} is outside the vocabulary ({})", c.vocab_size)));
        }
    }
    let last = trace.n_tokens().checked_sub(1).ok_or_else(|| EngineError::Input("the trace has no tokens".into()))?;
    let unembed = model.weights.lm_head(); // [vocab, d_model]
    let mut u: Array1<f32> = unembed.row(target as usize); // [d_model]
    if let Some(m) = minus {
        u -= &unembed.row(m as usize);
    }
    u *= crate::experiments::analysis::rms_final_norm(model)?; // w_norm ⊙ (W_U[t] − W_U[m])
    let scale = row(trace, HookKey::LnFinalScale, last)?[0];
    let dot = |x: ArrayView1<f32>| x.dot(&u) / scale;
    let mut components = vec![Contribution { name: "embed".into(), layer: None, head: None, value: dot(row(trace, HookKey::Embed, last)?.view()) }];
    let d_head = c.d_head();
    for l in 0..c.n_layers() {
        // o_projᵀ u: what each z dimension adds to the logit. [n_heads·d_head]
        let through_o = model.weights.layers[l].self_attn.o_proj.f32_view().t().dot(&u);
        let z = row(trace, HookKey::Block(l, BlockHook::Z), last)?; // [n_heads·d_head]
        for h in 0..c.n_heads() {
            let part = s![h * d_head..(h + 1) * d_head];
            let value = z.slice(part).dot(&through_o.slice(part)) / scale;
            components.push(Contribution { name: format!("L{l}.H{h}"), layer: Some(l), head: Some(h), value });
        }
        let mlp = row(trace, HookKey::Block(l, BlockHook::MlpOut), last)?;
        components.push(Contribution { name: format!("L{l}.mlp"), layer: Some(l), head: None, value: dot(mlp.view()) });
    }
    let logits = trace.last_logits.as_ref().ok_or_else(|| EngineError::Input("the pass did not reach its Sample step".into()))?;
    let logit = logits[target as usize] - minus.map_or(0.0, |m| logits[m as usize]);
    Ok(Attribution { target, minus, logit, components })
}
