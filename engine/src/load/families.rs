//! One small weight mapping per family: checkpoint names → the shared layout of
//! [`LlamaWeights`] (Llama's names). Gemma's `1 + w` is folded into its norm weights here, and
//! GPT-2's `Conv1D` weights (`[in, out]`, q/k/v fused in `c_attn`) are split and transposed, so
//! the forward pass has one RMSNorm, one LayerNorm and one `x · Wᵀ`.

use ndarray::{Array1, Array2, s};

use crate::load::arch::{Arch, Family, NormKind, NormPlacement, Positions};
use crate::load::config::LlamaConfig;
use crate::error::Result;
use crate::load::matrix::Matrix;
use crate::load::layout::{AttnBias, Attention, DecoderLayer, LearnedPositions, LlamaWeights, Mlp, MlpBias, MlmHead};
use crate::load::weights::{Checkpoint, Weights};

/// Every tensor the checkpoint must hold for `c`, with its shape, under the checkpoint's own
/// names (for the check that lists every missing or mis-shaped one at once).
pub fn expected(c: &LlamaConfig, ckpt: &Checkpoint) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (c.d_model(), c.d_mlp(), c.vocab_size);
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut add = |name: String, shape: &[usize]| out.push((name, shape.to_vec()));
    let family = c.arch().family;
    match family {
        Family::Llama | Family::Gemma3 | Family::Qwen2 | Family::Qwen3 | Family::Olmo2 | Family::Phi3 => {
            let arch = c.arch();
            add("model.embed_tokens.weight".into(), &[v, d]);
            if matches!(arch.positions, Positions::Learned { .. }) {
                add(EMBED_POSITIONS.into(), &[c.max_position_embeddings, d]);
            }
            let layer_norm = arch.norm == NormKind::Layer;
            for l in 0..c.n_layers() {
                let n = |leaf: &str| format!("model.layers.{l}.{leaf}.weight");
                if block_norms(&arch) {
                    for leaf in ["input_layernorm", pre_mlp_norm(&arch)] {
                        add(n(leaf), &[d]);
                        if layer_norm {
                            add(format!("model.layers.{l}.{leaf}.bias"), &[d]);
                        }
                    }
                }
                if arch.fused_projections {
                    add(n("self_attn.qkv_proj"), &[c.q_dim() + 2 * c.kv_dim(), d]);
                    add(n("mlp.gate_up_proj"), &[2 * f, d]);
                } else {
                    add(n("self_attn.q_proj"), &[c.q_dim(), d]);
                    add(n("self_attn.k_proj"), &[c.kv_dim(), d]);
                    add(n("self_attn.v_proj"), &[c.kv_dim(), d]);
                    add(n("mlp.gate_proj"), &[f, d]);
                    if arch.mlp.gated() {
                        add(n("mlp.up_proj"), &[f, d]);
                    }
                }
                if arch.qkv_bias {
                    let b = |leaf: &str| format!("model.layers.{l}.self_attn.{leaf}.bias");
                    add(b("q_proj"), &[c.q_dim()]);
                    add(b("k_proj"), &[c.kv_dim()]);
                    add(b("v_proj"), &[c.kv_dim()]);
                }
                add(n("self_attn.o_proj"), &[d, c.q_dim()]);
                if arch.qk_norm {
                    let [q, k] = qk_norm_widths(c, &arch);
                    add(n("self_attn.q_norm"), &[q]);
                    add(n("self_attn.k_norm"), &[k]);
                }
                if arch.placement.normed_output() {
                    add(n("post_attention_layernorm"), &[d]);
                    add(n("post_feedforward_layernorm"), &[d]);
                }
                add(n("mlp.down_proj"), &[d, f]);
            }
            add("model.norm.weight".into(), &[d]);
            if layer_norm {
                add("model.norm.bias".into(), &[d]);
            }
            if !c.tie_word_embeddings {
                add("lm_head.weight".into(), &[v, d]);
            }
        }
        Family::Gpt2 => {
            let p = gpt2_prefix(ckpt);
            add(format!("{p}wte.weight"), &[v, d]);
            add(format!("{p}wpe.weight"), &[c.max_position_embeddings, d]);
            for l in 0..c.n_layers() {
                let n = |leaf: &str| format!("{p}h.{l}.{leaf}");
                for ln in ["ln_1", "ln_2"] {
                    add(n(&format!("{ln}.weight")), &[d]);
                    add(n(&format!("{ln}.bias")), &[d]);
                }
                add(n("attn.c_attn.weight"), &[d, 3 * d]);
                add(n("attn.c_attn.bias"), &[3 * d]);
                add(n("attn.c_proj.weight"), &[d, d]);
                add(n("attn.c_proj.bias"), &[d]);
                add(n("mlp.c_fc.weight"), &[d, f]);
                add(n("mlp.c_fc.bias"), &[f]);
                add(n("mlp.c_proj.weight"), &[f, d]);
                add(n("mlp.c_proj.bias"), &[d]);
            }
            add(format!("{p}ln_f.weight"), &[d]);
            add(format!("{p}ln_f.bias"), &[d]);
        }
        Family::Bert => {
            let p = bert_prefix(ckpt);
            let e = format!("{p}embeddings");
            add(format!("{e}.word_embeddings.weight"), &[v, d]);
            add(format!("{e}.position_embeddings.weight"), &[c.max_position_embeddings, d]);
            add(format!("{e}.token_type_embeddings.weight"), &[c.type_vocab_size.unwrap_or(2), d]);
            add(format!("{e}.LayerNorm.weight"), &[d]);
            add(format!("{e}.LayerNorm.bias"), &[d]);
            for l in 0..c.n_layers() {
                let n = |leaf: &str| format!("{p}encoder.layer.{l}.{leaf}");
                for (leaf, rows, cols) in [
                    ("attention.self.query", d, d),
                    ("attention.self.key", d, d),
                    ("attention.self.value", d, d),
                    ("attention.output.dense", d, d),
                    ("intermediate.dense", f, d),
                    ("output.dense", d, f),
                ] {
                    add(n(&format!("{leaf}.weight")), &[rows, cols]);
                    add(n(&format!("{leaf}.bias")), &[rows]);
                }
                for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                    add(n(&format!("{ln}.weight")), &[d]);
                    add(n(&format!("{ln}.bias")), &[d]);
                }
            }
            add("cls.predictions.transform.dense.weight".into(), &[d, d]);
            add("cls.predictions.transform.dense.bias".into(), &[d]);
            add("cls.predictions.transform.LayerNorm.weight".into(), &[d]);
            add("cls.predictions.transform.LayerNorm.bias".into(), &[d]);
            add("cls.predictions.bias".into(), &[v]);
        }
    }
    out
}

/// Checkpoint tensors a family carries that the model recomputes or never reads (GPT-2's
/// causal-mask buffers, BERT's pooler and next-sentence head, the tied MLM decoder).
pub fn ignored(name: &str) -> bool {
    name.ends_with("attn.bias") && !name.contains("c_attn")
        || name.ends_with("attn.masked_bias")
        || name.ends_with("embeddings.position_ids")
        || name.contains("pooler.")
        || name.starts_with("cls.seq_relationship")
        || name.starts_with("cls.predictions.decoder.")
}

pub fn load(c: &LlamaConfig, ckpt: &Checkpoint) -> Result<LlamaWeights> {
    match c.arch().family {
        Family::Llama | Family::Gemma3 | Family::Qwen2 | Family::Qwen3 | Family::Olmo2 | Family::Phi3 => llama(c, ckpt),
        Family::Gpt2 => gpt2(c, ckpt),
        Family::Bert => bert(c, ckpt),
    }
}

/// Learned positions of a Llama variant (`glassbox_variant.positions = "learned"`).
pub const EMBED_POSITIONS: &str = "model.embed_positions.weight";

/// Whether a block has its two norms of its own (before the sublayers, or after the adds);
/// OLMo 2 norms only the sublayers' outputs.
fn block_norms(arch: &Arch) -> bool {
    arch.placement != NormPlacement::PostSublayer
}

/// The checkpoint name of the norm before the MLP: Gemma's sandwich calls it
/// `pre_feedforward_layernorm` (its `post_attention_layernorm` norms the attention output).
fn pre_mlp_norm(arch: &Arch) -> &'static str {
    if arch.placement == NormPlacement::Sandwich { "pre_feedforward_layernorm" } else { "post_attention_layernorm" }
}

/// QK-norm weight widths (q, k): one head, or all heads where the norm spans them (OLMo 2).
fn qk_norm_widths(c: &LlamaConfig, arch: &Arch) -> [usize; 2] {
    if arch.qk_norm_whole { [c.q_dim(), c.kv_dim()] } else { [c.d_head(); 2] }
}

/// What to check when a tensor whose rows the config splits has the wrong shape (the fused
/// projections, the QK-norm weights): the arithmetic from config.json, for the shape error.
pub fn shape_hint(c: &LlamaConfig, name: &str) -> Option<String> {
    let arch = c.arch();
    let (h, k, dh) = (c.n_heads(), c.n_kv_heads(), c.d_head());
    if name.ends_with("self_attn.qkv_proj.weight") {
        return Some(format!(
            "its rows must split into q, k and v: {h}·{dh} + 2·{k}·{dh} = {} (num_attention_heads, num_key_value_heads, head_dim); fix those in config.json or use the config that came with the weights",
            c.q_dim() + 2 * c.kv_dim()
        ));
    }
    if name.ends_with("mlp.gate_up_proj.weight") {
        return Some(format!("its rows must split into gate and up: 2·intermediate_size = {}; fix `intermediate_size` in config.json", 2 * c.d_mlp()));
    }
    if name.ends_with("q_norm.weight") || name.ends_with("k_norm.weight") {
        let [q, kk] = qk_norm_widths(c, &arch);
        let width = if name.ends_with("q_norm.weight") { q } else { kk };
        let span = if arch.qk_norm_whole { "all heads at once (heads·head_dim)" } else { "one head (head_dim)" };
        return Some(format!("{}'s QK-norm spans {span}, so its weight has {width} values; check head_dim and the head counts in config.json", arch.family.name()));
    }
    None
}

/// Gemma multiplies by `1 + w`: folded here once.
fn plus_one(mut w: Array1<f32>) -> Array1<f32> {
    w.mapv_inplace(|x| 1.0 + x);
    w
}

/// Llama and the families that share its names: Gemma 3 (QK-norm, sandwich norms, `1 + w`),
/// Qwen 2 (q/k/v biases), Qwen 3 (QK-norm), OLMo 2 (norms after the sublayers only, QK-norm
/// over all heads), Phi-3 (fused projections, viewed apart).
fn llama(c: &LlamaConfig, ckpt: &Checkpoint) -> Result<LlamaWeights> {
    let arch = c.arch();
    let (d, v) = (c.d_model(), c.vocab_size);
    let root = ckpt.root();
    let model = root.pp("model");
    let plus_one_norms = arch.norm_weight_plus_one();
    let norm = |w: &Weights<'_>, len: usize| -> Result<Array1<f32>> {
        let x = w.get1("weight", len)?;
        Ok(if plus_one_norms { plus_one(x) } else { x })
    };
    let layers = (0..c.n_layers())
        .map(|l| {
            let w = model.pp("layers").pp(l);
            let attn = w.pp("self_attn");
            let [q_width, k_width] = qk_norm_widths(c, &arch);
            let qk = |leaf: &str, width: usize| arch.qk_norm.then(|| norm(&attn.pp(leaf), width)).transpose();
            let pre = |leaf: &str| block_norms(&arch).then(|| norm(&w.pp(leaf), d)).transpose();
            let norm_bias = if arch.norm == NormKind::Layer && block_norms(&arch) {
                Some([w.pp("input_layernorm").get1("bias", d)?, w.pp(pre_mlp_norm(&arch)).get1("bias", d)?])
            } else {
                None
            };
            let [q_proj, k_proj, v_proj] = attention_projections(c, &arch, &attn)?;
            Ok(DecoderLayer {
                input_layernorm: pre("input_layernorm")?,
                self_attn: Attention {
                    q_proj,
                    k_proj,
                    v_proj,
                    o_proj: attn.pp("o_proj").matrix("weight", d, c.q_dim())?,
                    bias: if arch.qkv_bias { Some(qkv_bias(c, &attn)?) } else { None },
                    q_norm: qk("q_norm", q_width)?,
                    k_norm: qk("k_norm", k_width)?,
                },
                post_attention_layernorm: pre(pre_mlp_norm(&arch))?,
                mlp: mlp(c, &arch, &w.pp("mlp"))?,
                norm_bias,
                sublayer_out_norm: if arch.placement.normed_output() {
                    Some([norm(&w.pp("post_attention_layernorm"), d)?, norm(&w.pp("post_feedforward_layernorm"), d)?])
                } else {
                    None
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // transformers ties the head to the embedding whenever the config says so, even if the
    // checkpoint also stores an `lm_head.weight`.
    let lm_head = if c.tie_word_embeddings { None } else { Some(root.pp("lm_head").matrix("weight", v, d)?) };
    Ok(LlamaWeights {
        embed_tokens: model.pp("embed_tokens").matrix("weight", v, d)?,
        positions: match arch.positions {
            Positions::Learned { .. } => Some(LearnedPositions {
                position_embeddings: model.pp("embed_positions").matrix("weight", c.max_position_embeddings, d)?,
                token_type_embeddings: None,
                layer_norm: None,
            }),
            Positions::Rope | Positions::None => None,
        },
        layers,
        norm: Some(norm(&model.pp("norm"), d)?),
        norm_bias: if arch.norm == NormKind::Layer { Some(model.pp("norm").get1("bias", d)?) } else { None },
        mlm: None,
        lm_head,
    })
}

/// q, k and v: three tensors, or Phi-3's `qkv_proj` viewed as its three row ranges (read in
/// place where the file is mapped: the fused weight stays one tensor).
fn attention_projections(c: &LlamaConfig, arch: &Arch, attn: &Weights<'_>) -> Result<[Matrix; 3]> {
    let d = c.d_model();
    if !arch.fused_projections {
        return Ok([
            attn.pp("q_proj").matrix("weight", c.q_dim(), d)?,
            attn.pp("k_proj").matrix("weight", c.kv_dim(), d)?,
            attn.pp("v_proj").matrix("weight", c.kv_dim(), d)?,
        ]);
    }
    let (q, kv) = (c.q_dim(), c.kv_dim());
    let fused = attn.pp("qkv_proj").matrix("weight", q + 2 * kv, d)?;
    Ok([fused.row_range(0, q), fused.row_range(q, kv), fused.row_range(q + kv, kv)])
}

/// Qwen 2's biases on q, k and v (o_proj has none).
fn qkv_bias(c: &LlamaConfig, attn: &Weights<'_>) -> Result<AttnBias> {
    Ok(AttnBias {
        q_proj: attn.pp("q_proj").get1("bias", c.q_dim())?,
        k_proj: attn.pp("k_proj").get1("bias", c.kv_dim())?,
        v_proj: attn.pp("v_proj").get1("bias", c.kv_dim())?,
        o_proj: None,
    })
}

/// gate, up, down: or Phi-3's `gate_up_proj` viewed as gate (first half) and up.
fn mlp(c: &LlamaConfig, arch: &Arch, mlp: &Weights<'_>) -> Result<Mlp> {
    let (d, f) = (c.d_model(), c.d_mlp());
    let (gate_proj, up) = if arch.fused_projections {
        let fused = mlp.pp("gate_up_proj").matrix("weight", 2 * f, d)?;
        (fused.row_range(0, f), Some(fused.row_range(f, f)))
    } else {
        let up = if arch.mlp.gated() { Some(mlp.pp("up_proj").matrix("weight", f, d)?) } else { None };
        (mlp.pp("gate_proj").matrix("weight", f, d)?, up)
    };
    Ok(Mlp { gate_proj, up_proj: up, down_proj: mlp.pp("down_proj").matrix("weight", d, f)?, bias: None })
}

/// Hub GPT-2 checkpoints name tensors `h.0…`; `GPT2LMHeadModel.save_pretrained` writes
/// `transformer.h.0…`.
fn gpt2_prefix(ckpt: &Checkpoint) -> &'static str {
    if ckpt.contains("transformer.wte.weight") { "transformer." } else { "" }
}

fn bert_prefix(ckpt: &Checkpoint) -> &'static str {
    if ckpt.contains("bert.embeddings.word_embeddings.weight") { "bert." } else { "" }
}

/// A LayerNorm's weight and bias.
fn layer_norm(w: &Weights<'_>, d: usize) -> Result<[Array1<f32>; 2]> {
    Ok([w.get1("weight", d)?, w.get1("bias", d)?])
}

/// `Conv1D` stores `[in, out]` (`y = x W + b`): columns `cols` of it, as `[out, in]`.
fn conv1d_part(w: &Array2<f32>, cols: std::ops::Range<usize>) -> Matrix {
    Matrix::from(w.slice(s![.., cols]).t().as_standard_layout().into_owned())
}

fn gpt2(c: &LlamaConfig, ckpt: &Checkpoint) -> Result<LlamaWeights> {
    let (d, f, v) = (c.d_model(), c.d_mlp(), c.vocab_size);
    let root = ckpt.root();
    let t = match gpt2_prefix(ckpt) {
        "" => root.clone(),
        _ => root.pp("transformer"),
    };
    let layers = (0..c.n_layers())
        .map(|l| {
            let h = t.pp("h").pp(l);
            let (attn, mlp) = (h.pp("attn"), h.pp("mlp"));
            let c_attn = attn.pp("c_attn").get2("weight", d, 3 * d)?; // [d, 3d]: q | k | v
            let qkv_bias = attn.pp("c_attn").get1("bias", 3 * d)?; // [3d]
            let part = |i: usize| i * d..(i + 1) * d;
            let [ln1, ln2] = [layer_norm(&h.pp("ln_1"), d)?, layer_norm(&h.pp("ln_2"), d)?];
            Ok(DecoderLayer {
                input_layernorm: Some(ln1[0].clone()),
                self_attn: Attention {
                    q_proj: conv1d_part(&c_attn, part(0)),
                    k_proj: conv1d_part(&c_attn, part(1)),
                    v_proj: conv1d_part(&c_attn, part(2)),
                    o_proj: conv1d_part(&attn.pp("c_proj").get2("weight", d, d)?, 0..d),
                    bias: Some(AttnBias {
                        q_proj: qkv_bias.slice(s![part(0)]).to_owned(),
                        k_proj: qkv_bias.slice(s![part(1)]).to_owned(),
                        v_proj: qkv_bias.slice(s![part(2)]).to_owned(),
                        o_proj: Some(attn.pp("c_proj").get1("bias", d)?),
                    }),
                    q_norm: None,
                    k_norm: None,
                },
                post_attention_layernorm: Some(ln2[0].clone()),
                mlp: Mlp {
                    gate_proj: conv1d_part(&mlp.pp("c_fc").get2("weight", d, f)?, 0..f),
                    up_proj: None,
                    down_proj: conv1d_part(&mlp.pp("c_proj").get2("weight", f, d)?, 0..d),
                    bias: Some(MlpBias { gate_proj: mlp.pp("c_fc").get1("bias", f)?, down_proj: mlp.pp("c_proj").get1("bias", d)? }),
                },
                norm_bias: Some([ln1[1].clone(), ln2[1].clone()]),
                sublayer_out_norm: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let [ln_f, ln_f_bias] = layer_norm(&t.pp("ln_f"), d)?;
    Ok(LlamaWeights {
        embed_tokens: t.pp("wte").matrix("weight", v, d)?,
        positions: Some(LearnedPositions {
            position_embeddings: t.pp("wpe").matrix("weight", c.max_position_embeddings, d)?,
            token_type_embeddings: None,
            layer_norm: None,
        }),
        layers,
        norm: Some(ln_f),
        norm_bias: Some(ln_f_bias),
        mlm: None,
        lm_head: None,
    })
}

fn bert(c: &LlamaConfig, ckpt: &Checkpoint) -> Result<LlamaWeights> {
    let (d, f, v) = (c.d_model(), c.d_mlp(), c.vocab_size);
    let root = ckpt.root();
    let b = match bert_prefix(ckpt) {
        "" => root.clone(),
        _ => root.pp("bert"),
    };
    let emb = b.pp("embeddings");
    let linear = |w: &Weights<'_>, rows: usize, cols: usize| -> Result<(Matrix, Array1<f32>)> { Ok((w.matrix("weight", rows, cols)?, w.get1("bias", rows)?)) };
    let layers = (0..c.n_layers())
        .map(|l| {
            let layer = b.pp("encoder").pp("layer").pp(l);
            let (attn, out) = (layer.pp("attention").pp("self"), layer.pp("attention").pp("output"));
            let (q, qb) = linear(&attn.pp("query"), d, d)?;
            let (k, kb) = linear(&attn.pp("key"), d, d)?;
            let (vv, vb) = linear(&attn.pp("value"), d, d)?;
            let (o, ob) = linear(&out.pp("dense"), d, d)?;
            let (fc, fcb) = linear(&layer.pp("intermediate").pp("dense"), f, d)?;
            let (down, downb) = linear(&layer.pp("output").pp("dense"), d, f)?;
            let [ln1, ln1b] = layer_norm(&out.pp("LayerNorm"), d)?;
            let [ln2, ln2b] = layer_norm(&layer.pp("output").pp("LayerNorm"), d)?;
            Ok(DecoderLayer {
                input_layernorm: Some(ln1),
                self_attn: Attention {
                    q_proj: q,
                    k_proj: k,
                    v_proj: vv,
                    o_proj: o,
                    bias: Some(AttnBias { q_proj: qb, k_proj: kb, v_proj: vb, o_proj: Some(ob) }),
                    q_norm: None,
                    k_norm: None,
                },
                post_attention_layernorm: Some(ln2),
                mlp: Mlp { gate_proj: fc, up_proj: None, down_proj: down, bias: Some(MlpBias { gate_proj: fcb, down_proj: downb }) },
                norm_bias: Some([ln1b, ln2b]),
                sublayer_out_norm: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let head = root.pp("cls").pp("predictions");
    let (dense, dense_bias) = linear(&head.pp("transform").pp("dense"), d, d)?;
    Ok(LlamaWeights {
        embed_tokens: emb.pp("word_embeddings").matrix("weight", v, d)?,
        positions: Some(LearnedPositions {
            position_embeddings: emb.pp("position_embeddings").matrix("weight", c.max_position_embeddings, d)?,
            token_type_embeddings: Some(emb.pp("token_type_embeddings").matrix("weight", c.type_vocab_size.unwrap_or(2), d)?),
            layer_norm: Some(layer_norm(&emb.pp("LayerNorm"), d)?),
        }),
        layers,
        norm: None,
        norm_bias: None,
        mlm: Some(MlmHead {
            dense,
            dense_bias,
            layer_norm: layer_norm(&head.pp("transform").pp("LayerNorm"), d)?,
            decoder_bias: head.get1("bias", v)?,
        }),
        lm_head: None,
    })
}
