//! The layout's tensors under their canonical names (Llama's checkpoint names, plus
//! `model.embed_positions`, `model.embed_norm`, `attn_out_norm`, `mlp_out_norm`, `mlm.*` for the
//! parts Llama lacks): which exist and their shapes, from the config's `Arch` switches alone
//! ([`layout_shapes`]); every tensor of a loaded model by name ([`LlamaWeights::named`]); and
//! the way back from named tensors ([`LlamaWeights::from_named`], what the trainer runs).

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::{Array1, ArrayD};

use crate::error::{EngineError, Result};
use crate::load::arch::{Arch, NormKind, NormPlacement, Positions};
use crate::load::config::LlamaConfig;
use crate::load::layout::{AttnBias, Attention, DecoderLayer, LearnedPositions, LlamaWeights, Mlp, MlpBias, MlmHead, Named};
use crate::load::matrix::Matrix;

pub const EMBED: &str = "model.embed_tokens.weight";
pub const EMBED_POSITIONS: &str = "model.embed_positions.weight";
pub const EMBED_TOKEN_TYPES: &str = "model.embed_token_types.weight";
pub const EMBED_NORM: &str = "model.embed_norm.weight";
pub const EMBED_NORM_BIAS: &str = "model.embed_norm.bias";
pub const NORM: &str = "model.norm.weight";
pub const NORM_BIAS: &str = "model.norm.bias";
pub const MLM_DENSE: &str = "mlm.dense.weight";
pub const MLM_DENSE_BIAS: &str = "mlm.dense.bias";
pub const MLM_NORM: &str = "mlm.norm.weight";
pub const MLM_NORM_BIAS: &str = "mlm.norm.bias";
pub const MLM_DECODER_BIAS: &str = "mlm.decoder.bias";
pub const LM_HEAD: &str = "lm_head.weight";

/// `model.layers.{layer}.{leaf}`, e.g. `layer_tensor(0, "self_attn.q_proj.bias")`.
pub fn layer_tensor(layer: usize, leaf: &str) -> String {
    format!("model.layers.{layer}.{leaf}")
}

/// Whether the block has its two norms in the stream (before the sublayers, or after the
/// adds); OLMo 2 norms only the sublayers' outputs.
fn block_norms(a: &Arch) -> bool {
    a.placement != NormPlacement::PostSublayer
}

/// Every tensor of the layout `c` describes, with its shape, in a fixed order (the embedding,
/// then each layer's in pass order, the final norm, the heads). Which optional parts exist is
/// read from the `Arch` switches, never from the family's name.
pub fn layout_shapes(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    layout_shapes_for(c, &c.arch())
}

/// [`layout_shapes`] for an `Arch` given apart from the config (the sizes are the config's).
pub fn layout_shapes_for(c: &LlamaConfig, a: &Arch) -> Vec<(String, Vec<usize>)> {
    let (d, v) = (c.d_model(), c.vocab_size);
    let layer_norm = a.norm == NormKind::Layer;
    let mut out: Vec<(String, Vec<usize>)> = vec![(EMBED.into(), vec![v, d])];
    if let Positions::Learned { token_types } = a.positions {
        out.push((EMBED_POSITIONS.into(), vec![c.max_position_embeddings, d]));
        if token_types {
            // transformers' BertConfig default, as the loader assumes.
            out.push((EMBED_TOKEN_TYPES.into(), vec![c.type_vocab_size.unwrap_or(2), d]));
        }
    }
    if a.embed_norm {
        out.push((EMBED_NORM.into(), vec![d]));
        out.push((EMBED_NORM_BIAS.into(), vec![d]));
    }
    for l in 0..c.n_layers() {
        out.extend(layer_shapes(c, a, l));
    }
    if a.final_norm {
        out.push((NORM.into(), vec![d]));
        if layer_norm {
            out.push((NORM_BIAS.into(), vec![d]));
        }
    }
    if a.mlm_head {
        for (name, shape) in [(MLM_DENSE, vec![d, d]), (MLM_DENSE_BIAS, vec![d]), (MLM_NORM, vec![d]), (MLM_NORM_BIAS, vec![d]), (MLM_DECODER_BIAS, vec![v])] {
            out.push((name.into(), shape));
        }
    }
    if !a.tied_head {
        out.push((LM_HEAD.into(), vec![v, d]));
    }
    out
}

/// One layer's tensors: norm, q/k/v/o (+ biases), QK-norm, attention-output norm, norm, MLP
/// (+ biases), MLP-output norm. The matrices keep Llama's order (q, k, v, o, gate, up, down):
/// `Params::init` draws them in this order.
fn layer_shapes(c: &LlamaConfig, a: &Arch, l: usize) -> Vec<(String, Vec<usize>)> {
    let (d, f, q, kv) = (c.d_model(), c.d_mlp(), c.q_dim(), c.kv_dim());
    let mut out = Vec::new();
    let mut add = |leaf: &str, shape: &[usize]| out.push((layer_tensor(l, leaf), shape.to_vec()));
    let norm = |add: &mut dyn FnMut(&str, &[usize]), name: &str| {
        add(&format!("{name}.weight"), &[d]);
        if a.norm == NormKind::Layer {
            add(&format!("{name}.bias"), &[d]);
        }
    };
    if block_norms(a) {
        norm(&mut add, "input_layernorm");
    }
    for (proj, rows, cols) in [("q_proj", q, d), ("k_proj", kv, d), ("v_proj", kv, d), ("o_proj", d, q)] {
        add(&format!("self_attn.{proj}.weight"), &[rows, cols]);
        if a.biases || (a.qkv_bias && proj != "o_proj") {
            add(&format!("self_attn.{proj}.bias"), &[rows]);
        }
    }
    if a.qk_norm {
        let [qw, kw] = if a.qk_norm_whole { [q, kv] } else { [c.d_head(); 2] };
        add("self_attn.q_norm.weight", &[qw]);
        add("self_attn.k_norm.weight", &[kw]);
    }
    if a.placement.normed_output() {
        add("attn_out_norm.weight", &[d]);
    }
    if block_norms(a) {
        norm(&mut add, "post_attention_layernorm");
    }
    add("mlp.gate_proj.weight", &[f, d]);
    if a.biases {
        add("mlp.gate_proj.bias", &[f]);
    }
    if a.mlp.gated() {
        add("mlp.up_proj.weight", &[f, d]);
    }
    add("mlp.down_proj.weight", &[d, f]);
    if a.biases {
        add("mlp.down_proj.bias", &[d]);
    }
    if a.placement.normed_output() {
        add("mlp_out_norm.weight", &[d]);
    }
    out
}

impl LlamaWeights {
    /// Every tensor under its canonical name, in [`layout_shapes`]' order.
    pub fn named(&self) -> Vec<(String, Named<'_>)> {
        let mut all = vec![(EMBED.to_string(), Named::Matrix(&self.embed_tokens))];
        if let Some(p) = &self.positions {
            all.push((EMBED_POSITIONS.into(), Named::Matrix(&p.position_embeddings)));
            if let Some(t) = &p.token_type_embeddings {
                all.push((EMBED_TOKEN_TYPES.into(), Named::Matrix(t)));
            }
            if let Some([w, b]) = &p.layer_norm {
                all.push((EMBED_NORM.into(), Named::Vector(w)));
                all.push((EMBED_NORM_BIAS.into(), Named::Vector(b)));
            }
        }
        for (l, layer) in self.layers.iter().enumerate() {
            all.extend(layer.named(l));
        }
        let tail = [
            self.norm.as_ref().map(|w| (NORM, Named::Vector(w))),
            self.norm_bias.as_ref().map(|b| (NORM_BIAS, Named::Vector(b))),
        ];
        all.extend(tail.into_iter().flatten().map(|(n, t)| (n.to_string(), t)));
        if let Some(h) = &self.mlm {
            let [w, b] = &h.layer_norm;
            all.push((MLM_DENSE.into(), Named::Matrix(&h.dense)));
            all.push((MLM_DENSE_BIAS.into(), Named::Vector(&h.dense_bias)));
            all.push((MLM_NORM.into(), Named::Vector(w)));
            all.push((MLM_NORM_BIAS.into(), Named::Vector(b)));
            all.push((MLM_DECODER_BIAS.into(), Named::Vector(&h.decoder_bias)));
        }
        if let Some(h) = &self.lm_head {
            all.push((LM_HEAD.into(), Named::Matrix(h)));
        }
        all
    }

    /// The layout `c` describes, from tensors under their canonical names: which optional parts
    /// exist follows from the `Arch` switches ([`layout_shapes`]), and every tensor's shape is
    /// checked (the error names the tensor and the shape it must have). Extra names are ignored.
    pub fn from_named(c: &LlamaConfig, get: &dyn Fn(&str) -> Option<ArrayD<f32>>) -> Result<LlamaWeights> {
        let mut t = Tensors::fetch(c, get)?;
        let layers = (0..c.n_layers()).map(|l| t.layer(l)).collect::<Result<Vec<_>>>()?;
        let position_embeddings = t.opt_mat(EMBED_POSITIONS)?;
        let token_types = t.opt_mat(EMBED_TOKEN_TYPES)?;
        let embed_norm = pair(t.opt_vec(EMBED_NORM)?, t.opt_vec(EMBED_NORM_BIAS)?);
        if position_embeddings.is_none() && (token_types.is_some() || embed_norm.is_some()) {
            return Err(in_memory(EMBED_NORM, "token types and the embedding norm need learned positions in this layout".into()));
        }
        let positions = position_embeddings.map(|p| LearnedPositions { position_embeddings: p, token_type_embeddings: token_types, layer_norm: embed_norm });
        let mlm = match t.opt_mat(MLM_DENSE)? {
            Some(dense) => Some(MlmHead {
                dense,
                dense_bias: t.vec(MLM_DENSE_BIAS)?,
                layer_norm: [t.vec(MLM_NORM)?, t.vec(MLM_NORM_BIAS)?],
                decoder_bias: t.vec(MLM_DECODER_BIAS)?,
            }),
            None => None,
        };
        Ok(LlamaWeights {
            embed_tokens: t.mat(EMBED)?,
            positions,
            layers,
            norm: t.opt_vec(NORM)?,
            norm_bias: t.opt_vec(NORM_BIAS)?,
            mlm,
            lm_head: t.opt_mat(LM_HEAD)?,
        })
    }
}

impl DecoderLayer {
    /// This layer's tensors as [`layer_shapes`] lists them.
    fn named(&self, l: usize) -> Vec<(String, Named<'_>)> {
        let (a, m) = (&self.self_attn, &self.mlp);
        let [in_b, post_b] = self.norm_bias.as_ref().map_or([None, None], |[x, y]| [Some(x), Some(y)]);
        let [attn_out, mlp_out] = self.sublayer_out_norm.as_ref().map_or([None, None], |[x, y]| [Some(x), Some(y)]);
        let ab = a.bias.as_ref();
        let mb = m.bias.as_ref();
        let parts = [
            vector("input_layernorm.weight", self.input_layernorm.as_ref()),
            vector("input_layernorm.bias", in_b),
            mat("self_attn.q_proj.weight", &a.q_proj),
            vector("self_attn.q_proj.bias", ab.map(|b| &b.q_proj)),
            mat("self_attn.k_proj.weight", &a.k_proj),
            vector("self_attn.k_proj.bias", ab.map(|b| &b.k_proj)),
            mat("self_attn.v_proj.weight", &a.v_proj),
            vector("self_attn.v_proj.bias", ab.map(|b| &b.v_proj)),
            mat("self_attn.o_proj.weight", &a.o_proj),
            vector("self_attn.o_proj.bias", ab.and_then(|b| b.o_proj.as_ref())),
            vector("self_attn.q_norm.weight", a.q_norm.as_ref()),
            vector("self_attn.k_norm.weight", a.k_norm.as_ref()),
            vector("attn_out_norm.weight", attn_out),
            vector("post_attention_layernorm.weight", self.post_attention_layernorm.as_ref()),
            vector("post_attention_layernorm.bias", post_b),
            mat("mlp.gate_proj.weight", &m.gate_proj),
            vector("mlp.gate_proj.bias", mb.map(|b| &b.gate_proj)),
            m.up_proj.as_ref().map(|w| ("mlp.up_proj.weight", Named::Matrix(w))),
            mat("mlp.down_proj.weight", &m.down_proj),
            vector("mlp.down_proj.bias", mb.map(|b| &b.down_proj)),
            vector("mlp_out_norm.weight", mlp_out),
        ];
        parts.into_iter().flatten().map(|(leaf, t)| (layer_tensor(l, leaf), t)).collect()
    }
}

fn mat<'a>(leaf: &'static str, w: &'a Matrix) -> Option<(&'static str, Named<'a>)> {
    Some((leaf, Named::Matrix(w)))
}

fn vector<'a>(leaf: &'static str, w: Option<&'a Array1<f32>>) -> Option<(&'static str, Named<'a>)> {
    w.map(|w| (leaf, Named::Vector(w)))
}

fn pair(a: Option<Array1<f32>>, b: Option<Array1<f32>>) -> Option<[Array1<f32>; 2]> {
    Some([a?, b?])
}

fn in_memory(tensor: &str, msg: String) -> EngineError {
    EngineError::Tensor { file: PathBuf::from("(in memory)"), tensor: tensor.to_string(), msg }
}

/// The tensors the layout holds, fetched and shape-checked once; each taken out as it is placed.
struct Tensors(HashMap<String, ArrayD<f32>>);

impl Tensors {
    fn fetch(c: &LlamaConfig, get: &dyn Fn(&str) -> Option<ArrayD<f32>>) -> Result<Self> {
        let mut found = HashMap::new();
        for (name, shape) in layout_shapes(c) {
            let t = get(&name).ok_or_else(|| in_memory(&name, format!("missing (expected shape {shape:?} from config.json)")))?;
            if t.shape() != shape.as_slice() {
                return Err(in_memory(&name, format!("shape {:?} does not match {shape:?} expected from config.json", t.shape())));
            }
            found.insert(name, t);
        }
        Ok(Self(found))
    }

    fn opt_mat(&mut self, name: &str) -> Result<Option<Matrix>> {
        self.0
            .remove(name)
            .map(|t| t.into_dimensionality().map(Matrix::from).map_err(|e| in_memory(name, e.to_string())))
            .transpose()
    }

    fn opt_vec(&mut self, name: &str) -> Result<Option<Array1<f32>>> {
        self.0.remove(name).map(|t| t.into_dimensionality().map_err(|e| in_memory(name, e.to_string()))).transpose()
    }

    fn mat(&mut self, name: &str) -> Result<Matrix> {
        self.opt_mat(name)?.ok_or_else(|| in_memory(name, "not part of this config's layout".into()))
    }

    fn vec(&mut self, name: &str) -> Result<Array1<f32>> {
        self.opt_vec(name)?.ok_or_else(|| in_memory(name, "not part of this config's layout".into()))
    }

    fn layer(&mut self, l: usize) -> Result<DecoderLayer> {
        let n = |leaf: &str| layer_tensor(l, leaf);
        let mut v = |leaf: &str| self.opt_vec(&n(leaf));
        let (in_w, in_b) = (v("input_layernorm.weight")?, v("input_layernorm.bias")?);
        let (qb, kb, vb, ob) = (v("self_attn.q_proj.bias")?, v("self_attn.k_proj.bias")?, v("self_attn.v_proj.bias")?, v("self_attn.o_proj.bias")?);
        let (q_norm, k_norm) = (v("self_attn.q_norm.weight")?, v("self_attn.k_norm.weight")?);
        let (attn_out, mlp_out) = (v("attn_out_norm.weight")?, v("mlp_out_norm.weight")?);
        let (post_w, post_b) = (v("post_attention_layernorm.weight")?, v("post_attention_layernorm.bias")?);
        let (gate_b, down_b) = (v("mlp.gate_proj.bias")?, v("mlp.down_proj.bias")?);
        let bias = match (qb, kb, vb) {
            (Some(q_proj), Some(k_proj), Some(v_proj)) => Some(AttnBias { q_proj, k_proj, v_proj, o_proj: ob }),
            _ => None,
        };
        let mlp_bias = pair(gate_b, down_b).map(|[gate_proj, down_proj]| MlpBias { gate_proj, down_proj });
        Ok(DecoderLayer {
            input_layernorm: in_w,
            self_attn: Attention {
                q_proj: self.mat(&n("self_attn.q_proj.weight"))?,
                k_proj: self.mat(&n("self_attn.k_proj.weight"))?,
                v_proj: self.mat(&n("self_attn.v_proj.weight"))?,
                o_proj: self.mat(&n("self_attn.o_proj.weight"))?,
                bias,
                q_norm,
                k_norm,
            },
            post_attention_layernorm: post_w,
            mlp: Mlp {
                gate_proj: self.mat(&n("mlp.gate_proj.weight"))?,
                up_proj: self.opt_mat(&n("mlp.up_proj.weight"))?,
                down_proj: self.mat(&n("mlp.down_proj.weight"))?,
                bias: mlp_bias,
            },
            norm_bias: pair(in_b, post_b),
            sublayer_out_norm: pair(attn_out, mlp_out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::arch::{Activation, MlpKind};

    fn names(c: &LlamaConfig, a: &Arch) -> Vec<String> {
        layout_shapes_for(c, a).into_iter().map(|(n, _)| n).collect()
    }

    /// The recipe variants (a Llama with post-LayerNorm, learned positions, a ReLU MLP) come
    /// from the switches alone: no family is named.
    #[test]
    fn a_llama_variant_layout_follows_its_switches() {
        let c = crate::train::presets::tiny_config(40, 16, 24, 1, 4, 2, true);
        let plain = c.arch();
        assert_eq!(names(&c, &plain).len(), 1 + 9 + 1);
        let article = Arch {
            norm: NormKind::Layer,
            placement: NormPlacement::Post,
            positions: Positions::Learned { token_types: false },
            mlp: MlpKind::Plain(Activation::Relu),
            ..plain.clone()
        };
        let got = names(&c, &article);
        for want in [EMBED_POSITIONS, "model.layers.0.input_layernorm.bias", "model.layers.0.post_attention_layernorm.bias", NORM_BIAS] {
            assert!(got.iter().any(|n| n == want), "{want} in {got:?}");
        }
        assert!(!got.iter().any(|n| n.contains("up_proj") || n.contains("proj.bias")), "{got:?}");
        let shapes = layout_shapes_for(&c, &article);
        assert!(shapes.contains(&(EMBED_POSITIONS.to_string(), vec![c.max_position_embeddings, 16])));
    }
}
