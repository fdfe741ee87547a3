//! The op table: one entry per op of the forward program. Each entry says what the op
//! reads, which hooks it produces (in order, each with the activation slot that holds it and
//! its named dims), which view explains it and which family it belongs to.
//!
//! Everything else derives from here: the ops' lookups (`op.rs`), the step program (`step.rs`), both
//! executors' capture lists and where interventions apply (`cpu`, `gpu`), the diagram's op
//! groups and the app's step → view mapping. Adding a hook or an op means an entry here plus
//! the math in each backend.

use crate::load::config::LlamaConfig;
use crate::program::hooks::{BlockHook, HookKind};
use crate::exec::tensor::Dim;

/// The activation slots both executors hold for the pass in progress. A hook's value is what
/// its slot holds right after the hook is produced (and edited, if an intervention says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The residual stream `x`.
    Resid,
    /// RMSNorm's per-position scale.
    Scale,
    /// The normalized input `h` of the current sublayer.
    Normed,
    Q,
    K,
    V,
    /// Raw scores, then masked scores, then the pattern, in place.
    Scores,
    Z,
    /// What the current sublayer writes into the residual stream.
    Out,
    Gate,
    Up,
    Post,
    Logits,
    Probs,
}

/// The view that explains an op (the app maps it to one of its view types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpView {
    Embedding,
    RmsNorm,
    Qkv,
    Attention,
    Residual,
    Mlp,
    Output,
}

/// What part of the model an op belongs to (colors, diagram groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Embed,
    Norm,
    Attention,
    Residual,
    Mlp,
    Output,
}

/// One hook an op produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookSpec {
    pub kind: HookKind,
    pub slot: Slot,
    pub dims: &'static [Dim],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    /// The op's name in step strings (`blocks.3.softmax`) and lessons.
    pub name: &'static str,
    /// The slots (and weights, in words) it reads.
    pub reads: &'static [Slot],
    pub weights: &'static [&'static str],
    /// The hooks it produces, in order.
    pub hooks: &'static [HookSpec],
    pub view: OpView,
    pub family: Family,
}

/// Sizes of one pass, for turning named dims into a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassDims {
    /// New tokens in the pass.
    pub n: usize,
    /// Keys visible to it: the KV cache before it plus `n`.
    pub k_len: usize,
    /// Rows of logits computed (the last `logit_rows` positions).
    pub logit_rows: usize,
}

impl HookSpec {
    /// Rows of a `Pos` axis: the logits hold the last `logit_rows` positions, the
    /// probabilities only the last one (the distribution the `Sample` step draws from; another
    /// position's is a softmax of its logits row, computed when it is looked at).
    fn rows(&self, p: PassDims) -> usize {
        match self.slot {
            Slot::Logits => p.logit_rows,
            Slot::Probs => p.n.min(1),
            _ => p.n,
        }
    }

    /// The hook's shape in this pass.
    pub fn shape(&self, c: &LlamaConfig, p: PassDims) -> Vec<usize> {
        self.dims
            .iter()
            .map(|d| match d {
                Dim::Pos => self.rows(p),
                Dim::QPos => p.n,
                Dim::KPos => p.k_len,
                Dim::DModel => c.d_model(),
                Dim::Head => c.n_heads(),
                Dim::KvHead => c.n_kv_heads(),
                Dim::DHead => c.d_head(),
                Dim::DMlp => c.d_mlp(),
                Dim::Vocab => c.vocab_size,
            })
            .collect()
    }

    /// Absolute position of index 0 along the hook's position axis.
    pub fn first_position(&self, pos_offset: usize, p: PassDims) -> usize {
        pos_offset + p.n - self.rows(p)
    }
}

const RESID: &[Dim] = &[Dim::Pos, Dim::DModel];
const PER_POS: &[Dim] = &[Dim::Pos];
const HEADS: &[Dim] = &[Dim::Pos, Dim::Head, Dim::DHead];
const KV_HEADS: &[Dim] = &[Dim::Pos, Dim::KvHead, Dim::DHead];
const PATTERN: &[Dim] = &[Dim::Head, Dim::QPos, Dim::KPos];
const MLP: &[Dim] = &[Dim::Pos, Dim::DMlp];
const VOCAB: &[Dim] = &[Dim::Pos, Dim::Vocab];

const fn block(hook: BlockHook, slot: Slot, dims: &'static [Dim]) -> HookSpec {
    HookSpec { kind: HookKind::Block(hook), slot, dims }
}

const fn op(
    name: &'static str,
    reads: &'static [Slot],
    weights: &'static [&'static str],
    hooks: &'static [HookSpec],
    view: OpView,
    family: Family,
) -> OpSpec {
    OpSpec { name, reads, weights, hooks, view, family }
}

use BlockHook as B;
use Family as F;
use OpView as V;
use Slot as S;

/// One entry per `LayerOp` (`super::op`), in declaration order (a test checks the alignment). A family's
/// block is a subsequence (`LayerOp::block`); the weights are named as Llama's checkpoint
/// names them (other families' loaders map theirs onto these).
pub(crate) static LAYER_OPS: [OpSpec; 26] = [
    op("resid_pre", &[S::Resid], &[], &[block(B::ResidPre, S::Resid, RESID)], V::Residual, F::Residual),
    op(
        "ln1",
        &[S::Resid],
        &["input_layernorm"],
        &[block(B::ResidPre, S::Resid, RESID), block(B::Ln1Scale, S::Scale, PER_POS), block(B::Ln1Normalized, S::Normed, RESID)],
        V::RmsNorm,
        F::Norm,
    ),
    op("q", &[S::Normed], &["self_attn.q_proj"], &[block(B::Q, S::Q, HEADS)], V::Qkv, F::Attention),
    op("k", &[S::Normed], &["self_attn.k_proj"], &[block(B::K, S::K, KV_HEADS)], V::Qkv, F::Attention),
    op("v", &[S::Normed], &["self_attn.v_proj"], &[block(B::V, S::V, KV_HEADS)], V::Qkv, F::Attention),
    op(
        "qk_norm",
        &[S::Q, S::K],
        &["self_attn.q_norm", "self_attn.k_norm"],
        &[block(B::QNormed, S::Q, HEADS), block(B::KNormed, S::K, KV_HEADS)],
        V::Qkv,
        F::Attention,
    ),
    op(
        "rope",
        &[S::Q, S::K, S::V],
        &[],
        &[block(B::RotQ, S::Q, HEADS), block(B::RotK, S::K, KV_HEADS)],
        V::Qkv,
        F::Attention,
    ),
    op("scores", &[S::Q, S::K], &[], &[block(B::RawScores, S::Scores, PATTERN)], V::Attention, F::Attention),
    op("mask", &[S::Scores], &[], &[block(B::AttnScores, S::Scores, PATTERN)], V::Attention, F::Attention),
    op("softmax", &[S::Scores], &[], &[block(B::Pattern, S::Scores, PATTERN)], V::Attention, F::Attention),
    op("z", &[S::Scores, S::V], &[], &[block(B::Z, S::Z, HEADS)], V::Attention, F::Attention),
    op("o_proj", &[S::Z], &["self_attn.o_proj"], &[block(B::AttnOut, S::Out, RESID)], V::Attention, F::Attention),
    op(
        "ln1_post",
        &[S::Out],
        &["post_attention_layernorm (Gemma)"],
        &[block(B::Ln1PostScale, S::Scale, PER_POS), block(B::Ln1PostNormalized, S::Out, RESID)],
        V::RmsNorm,
        F::Norm,
    ),
    op("attn_add", &[S::Resid, S::Out], &[], &[block(B::ResidMid, S::Resid, RESID)], V::Residual, F::Residual),
    op(
        "attn_add_norm",
        &[S::Resid, S::Out],
        &["attention.output.LayerNorm"],
        &[block(B::ResidMidPreNorm, S::Resid, RESID), block(B::Ln1Scale, S::Scale, PER_POS), block(B::ResidMid, S::Resid, RESID)],
        V::Residual,
        F::Residual,
    ),
    op(
        "ln2",
        &[S::Resid],
        &["post_attention_layernorm"],
        &[block(B::Ln2Scale, S::Scale, PER_POS), block(B::Ln2Normalized, S::Normed, RESID)],
        V::RmsNorm,
        F::Norm,
    ),
    op("gate", &[S::Normed], &["mlp.gate_proj"], &[block(B::MlpPre, S::Gate, MLP)], V::Mlp, F::Mlp),
    op("up", &[S::Normed], &["mlp.up_proj"], &[block(B::MlpPreLinear, S::Up, MLP)], V::Mlp, F::Mlp),
    op("mlp_in", &[S::Normed], &["mlp.gate_proj (GPT-2 c_fc, BERT intermediate.dense)"], &[block(B::MlpPre, S::Gate, MLP)], V::Mlp, F::Mlp),
    op("silu_mul", &[S::Gate, S::Up], &[], &[block(B::MlpPost, S::Post, MLP)], V::Mlp, F::Mlp),
    op("gelu_mul", &[S::Gate, S::Up], &[], &[block(B::MlpPost, S::Post, MLP)], V::Mlp, F::Mlp),
    op("act", &[S::Gate], &[], &[block(B::MlpPost, S::Post, MLP)], V::Mlp, F::Mlp),
    op("down", &[S::Post], &["mlp.down_proj"], &[block(B::MlpOut, S::Out, RESID)], V::Mlp, F::Mlp),
    op(
        "ln2_post",
        &[S::Out],
        &["post_feedforward_layernorm"],
        &[block(B::Ln2PostScale, S::Scale, PER_POS), block(B::Ln2PostNormalized, S::Out, RESID)],
        V::RmsNorm,
        F::Norm,
    ),
    op("mlp_add", &[S::Resid, S::Out], &[], &[block(B::ResidPost, S::Resid, RESID)], V::Residual, F::Residual),
    op(
        "mlp_add_norm",
        &[S::Resid, S::Out],
        &["output.LayerNorm"],
        &[block(B::ResidPostPreNorm, S::Resid, RESID), block(B::Ln2Scale, S::Scale, PER_POS), block(B::ResidPost, S::Resid, RESID)],
        V::Residual,
        F::Residual,
    ),
];

const fn top(kind: HookKind, slot: Slot, dims: &'static [Dim]) -> HookSpec {
    HookSpec { kind, slot, dims }
}

pub(crate) static EMBED: OpSpec = op("embed", &[], &["model.embed_tokens"], &[top(HookKind::Embed, S::Resid, RESID)], V::Embedding, F::Embed);
pub(crate) static POS_EMBED: OpSpec = op(
    "pos_embed",
    &[S::Resid],
    &["position_embeddings"],
    &[top(HookKind::PosEmbed, S::Out, RESID)],
    V::Embedding,
    F::Embed,
);
pub(crate) static TOKEN_TYPE_EMBED: OpSpec = op(
    "token_type_embed",
    &[S::Resid],
    &["token_type_embeddings"],
    &[top(HookKind::TokenTypeEmbed, S::Out, RESID)],
    V::Embedding,
    F::Embed,
);
pub(crate) static EMBED_NORM: OpSpec = op(
    "embed_ln",
    &[S::Resid],
    &["embeddings.LayerNorm"],
    &[top(HookKind::EmbedLnScale, S::Scale, PER_POS), top(HookKind::EmbedLnNormalized, S::Resid, RESID)],
    V::RmsNorm,
    F::Norm,
);
pub(crate) static MLM_TRANSFORM: OpSpec = op(
    "mlm_transform",
    &[S::Resid],
    &["cls.predictions.transform"],
    &[top(HookKind::MlmTransform, S::Normed, RESID)],
    V::Output,
    F::Output,
);
pub(crate) static LN_FINAL: OpSpec = op(
    "ln_final",
    &[S::Resid],
    &["model.norm"],
    &[
        HookSpec { kind: HookKind::LnFinalScale, slot: S::Scale, dims: PER_POS },
        HookSpec { kind: HookKind::LnFinalNormalized, slot: S::Normed, dims: RESID },
    ],
    V::RmsNorm,
    F::Norm,
);
pub(crate) static LOGITS: OpSpec = op(
    "logits",
    &[S::Normed],
    &["lm_head (tied: model.embed_tokens)"],
    &[HookSpec { kind: HookKind::Logits, slot: S::Logits, dims: VOCAB }],
    V::Output,
    F::Output,
);
pub(crate) static PROBS: OpSpec = op(
    "probs",
    &[S::Logits],
    &[],
    &[HookSpec { kind: HookKind::Probs, slot: S::Probs, dims: VOCAB }],
    V::Output,
    F::Output,
);
pub(crate) static SAMPLE: OpSpec = op("sample", &[S::Logits], &[], &[], V::Output, F::Output);
