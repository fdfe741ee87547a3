//! Canonical parameters → the family's own checkpoint names, as transformers'
//! `save_pretrained` writes them: the inverse of `load/families.rs`. GPT-2's `Conv1D` weights
//! transposed back to `[in, out]` with q, k, v fused in `c_attn`; BERT's and GPT-2's names;
//! Gemma's sandwich names and its norm weights unfolded (`w = folded − 1`); Phi-3's fused
//! `qkv_proj` / `gate_up_proj`. Gradients go through the same fusing and transposing, so they
//! compare with a reference's `grad.<hf name>`; Gemma's `1 + w` has derivative 1, so a norm
//! weight's gradient is the same under both readings.

use ndarray::{ArrayD, Axis, concatenate};

use super::params::Params;
use crate::error::{EngineError, Result};
use crate::load::arch::{Arch, Family, NormPlacement};
use crate::load::config::LlamaConfig;
use crate::load::layout_named::{self as names, layout_shapes};

/// What the tensors are: the weights themselves, or a loss's gradient with respect to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Values,
    Gradients,
}

/// How one checkpoint tensor is made from canonical ones.
enum Source {
    Same(String),
    /// Gemma's stored `w` of a folded `1 + w` norm weight.
    MinusOne(String),
    /// `[in, out]` of an `[out, in]` matrix (GPT-2's `Conv1D`).
    Transposed(String),
    /// The tensors stacked along their first axis (fused projections, fused biases).
    Rows(Vec<String>),
    /// Stacked, then transposed (GPT-2's `c_attn`).
    RowsTransposed(Vec<String>),
}

/// Where a canonical tensor goes: into a checkpoint tensor, or into one made already (the k and
/// v of a fused q|k|v).
enum Step {
    Emit(String, Source),
    Fused,
}

/// Every checkpoint tensor of `c`'s family under its Hugging Face name, from `params`
/// (canonical names). A canonical tensor the family has no name for is an error, not dropped.
pub fn to_hf(c: &LlamaConfig, params: &Params, kind: Export) -> Result<Vec<(String, ArrayD<f32>)>> {
    let arch = c.arch();
    let mut out = Vec::new();
    for (canon, _) in layout_shapes(c) {
        let step = match arch.family {
            Family::Gpt2 => gpt2(&canon),
            Family::Bert => bert(&canon),
            _ => llama_like(&arch, &canon, kind),
        };
        match step {
            Some(Step::Emit(name, source)) => out.push((name, build(params, &source)?)),
            Some(Step::Fused) => {}
            None => {
                return Err(EngineError::Input(format!(
                    "`{canon}` has no name in a {} checkpoint: this layout cannot be written as one",
                    arch.family.name()
                )));
            }
        }
    }
    Ok(out)
}

fn build(params: &Params, source: &Source) -> Result<ArrayD<f32>> {
    let get = |name: &str| params.get(name).ok_or_else(|| EngineError::Input(format!("parameter `{name}` is missing")));
    let stack = |names: &[String]| -> Result<ArrayD<f32>> {
        let parts = names.iter().map(|n| get(n).map(|t| t.view())).collect::<Result<Vec<_>>>()?;
        concatenate(Axis(0), &parts).map_err(|e| EngineError::Input(format!("fusing {}: {e}", names.join(", "))))
    };
    let transposed = |t: ArrayD<f32>| t.t().as_standard_layout().into_owned();
    Ok(match source {
        Source::Same(n) => get(n)?.clone(),
        Source::MinusOne(n) => get(n)?.mapv(|w| w - 1.0),
        Source::Transposed(n) => transposed(get(n)?.clone()),
        Source::Rows(ns) => stack(ns)?,
        Source::RowsTransposed(ns) => transposed(stack(ns)?),
    })
}

/// `model.layers.L.leaf` → (L, leaf).
fn layer_leaf(canon: &str) -> Option<(usize, &str)> {
    let rest = canon.strip_prefix("model.layers.")?;
    let (l, leaf) = rest.split_once('.')?;
    Some((l.parse().ok()?, leaf))
}

/// Llama's names, and the families that share them: Gemma's sandwich (`pre_feedforward_layernorm`
/// before the MLP, `post_*` on the sublayer outputs, `w = folded − 1`), OLMo 2's output norms,
/// Phi-3's fused projections. Any other layout of Llama's recipe keeps the canonical names.
fn llama_like(arch: &Arch, canon: &str, kind: Export) -> Option<Step> {
    let unfold = arch.norm_weight_plus_one() && kind == Export::Values && canon.ends_with("norm.weight");
    let plain = |name: String| {
        let source = if unfold { Source::MinusOne(canon.to_string()) } else { Source::Same(canon.to_string()) };
        Some(Step::Emit(name, source))
    };
    let Some((l, leaf)) = layer_leaf(canon) else {
        return plain(canon.to_string());
    };
    let layer = |leaf: &str| format!("model.layers.{l}.{leaf}");
    if arch.fused_projections {
        let (head, part) = leaf.rsplit_once('.')?;
        let fused = |hf: &str, members: &[&str]| Some(Step::Emit(layer(&format!("{hf}.{part}")), Source::Rows(members.iter().map(|m| layer(&format!("{m}.{part}"))).collect())));
        match head {
            "self_attn.q_proj" => return fused("self_attn.qkv_proj", &["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]),
            "self_attn.k_proj" | "self_attn.v_proj" | "mlp.up_proj" => return Some(Step::Fused),
            "mlp.gate_proj" => return fused("mlp.gate_up_proj", &["mlp.gate_proj", "mlp.up_proj"]),
            _ => {}
        }
    }
    let renamed = match leaf {
        "post_attention_layernorm.weight" if arch.placement == NormPlacement::Sandwich => "pre_feedforward_layernorm.weight",
        "attn_out_norm.weight" => "post_attention_layernorm.weight",
        "mlp_out_norm.weight" => "post_feedforward_layernorm.weight",
        other => other,
    };
    plain(layer(renamed))
}

/// `GPT2LMHeadModel`'s names: `transformer.` prefix, `Conv1D` weights `[in, out]`, q|k|v fused.
fn gpt2(canon: &str) -> Option<Step> {
    let emit = |name: String, source: Source| Some(Step::Emit(name, source));
    let same = |name: &str| emit(name.to_string(), Source::Same(canon.to_string()));
    match canon {
        names::EMBED => return same("transformer.wte.weight"),
        names::EMBED_POSITIONS => return same("transformer.wpe.weight"),
        names::NORM => return same("transformer.ln_f.weight"),
        names::NORM_BIAS => return same("transformer.ln_f.bias"),
        _ => {}
    }
    let (l, leaf) = layer_leaf(canon)?;
    let h = |leaf: &str| format!("transformer.h.{l}.{leaf}");
    let qkv = |part: &str| ["q_proj", "k_proj", "v_proj"].map(|p| format!("model.layers.{l}.self_attn.{p}.{part}")).to_vec();
    let (hf, transposed) = match leaf {
        "self_attn.q_proj.weight" => return emit(h("attn.c_attn.weight"), Source::RowsTransposed(qkv("weight"))),
        "self_attn.q_proj.bias" => return emit(h("attn.c_attn.bias"), Source::Rows(qkv("bias"))),
        "self_attn.k_proj.weight" | "self_attn.v_proj.weight" | "self_attn.k_proj.bias" | "self_attn.v_proj.bias" => return Some(Step::Fused),
        "input_layernorm.weight" => ("ln_1.weight", false),
        "input_layernorm.bias" => ("ln_1.bias", false),
        "post_attention_layernorm.weight" => ("ln_2.weight", false),
        "post_attention_layernorm.bias" => ("ln_2.bias", false),
        "self_attn.o_proj.weight" => ("attn.c_proj.weight", true),
        "self_attn.o_proj.bias" => ("attn.c_proj.bias", false),
        "mlp.gate_proj.weight" => ("mlp.c_fc.weight", true),
        "mlp.gate_proj.bias" => ("mlp.c_fc.bias", false),
        "mlp.down_proj.weight" => ("mlp.c_proj.weight", true),
        "mlp.down_proj.bias" => ("mlp.c_proj.bias", false),
        _ => return None,
    };
    let source = if transposed { Source::Transposed(canon.to_string()) } else { Source::Same(canon.to_string()) };
    emit(h(hf), source)
}

/// `BertForMaskedLM`'s names (`bert.` prefix, the MLM head under `cls.predictions`; its decoder
/// weight is the tied embedding, so not written).
fn bert(canon: &str) -> Option<Step> {
    let global = match canon {
        names::EMBED => Some("bert.embeddings.word_embeddings.weight"),
        names::EMBED_POSITIONS => Some("bert.embeddings.position_embeddings.weight"),
        names::EMBED_TOKEN_TYPES => Some("bert.embeddings.token_type_embeddings.weight"),
        names::EMBED_NORM => Some("bert.embeddings.LayerNorm.weight"),
        names::EMBED_NORM_BIAS => Some("bert.embeddings.LayerNorm.bias"),
        names::MLM_DENSE => Some("cls.predictions.transform.dense.weight"),
        names::MLM_DENSE_BIAS => Some("cls.predictions.transform.dense.bias"),
        names::MLM_NORM => Some("cls.predictions.transform.LayerNorm.weight"),
        names::MLM_NORM_BIAS => Some("cls.predictions.transform.LayerNorm.bias"),
        names::MLM_DECODER_BIAS => Some("cls.predictions.bias"),
        _ => None,
    };
    let name = match global {
        Some(n) => n.to_string(),
        None => {
            let (l, leaf) = layer_leaf(canon)?;
            let (module, part) = leaf.rsplit_once('.')?;
            let hf = match module {
                "input_layernorm" => "attention.output.LayerNorm",
                "self_attn.q_proj" => "attention.self.query",
                "self_attn.k_proj" => "attention.self.key",
                "self_attn.v_proj" => "attention.self.value",
                "self_attn.o_proj" => "attention.output.dense",
                "post_attention_layernorm" => "output.LayerNorm",
                "mlp.gate_proj" => "intermediate.dense",
                "mlp.down_proj" => "output.dense",
                _ => return None,
            };
            format!("bert.encoder.layer.{l}.{hf}.{part}")
        }
    };
    Some(Step::Emit(name, Source::Same(canon.to_string())))
}
