//! The ops of the forward program: [`LayerOp`] (one op inside a decoder block, the union over
//! the families) and [`Step`] (an op at its place in the program), declared in program order
//! so their derived order is program order; and the lookups from an op to its entry in the op
//! table. The table ([`super::op_table`]) is data keyed by these; it does not know them.

use std::fmt;
use std::str::FromStr;

use crate::load::arch::{Arch, MlpKind, NormPlacement};
use crate::program::hooks::{BlockHook, HookKey, HookKind};
use crate::program::op_table::{self, Family, HookSpec, OpSpec};

/// One operation inside decoder block `L`: the union over the families, declared in the order
/// a block runs them (so `Step`'s derived order is program order). A family's block is the
/// subsequence its [`Arch`] selects ([`LayerOp::block`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LayerOp {
    /// Post-norm blocks (BERT): the residual stream as the block receives it.
    BlockIn,
    Ln1,
    Q,
    K,
    V,
    QkNorm,
    Rope,
    Scores,
    Mask,
    Softmax,
    Z,
    OProj,
    /// Sandwich norms (Gemma) and OLMo 2's: the attention output normed before the add.
    AttnPostNorm,
    AttnAdd,
    /// Post-norm (BERT): add, then LayerNorm.
    AttnAddNorm,
    Ln2,
    Gate,
    Up,
    /// The first projection of an ungated MLP (GPT-2 `c_fc`, BERT `intermediate.dense`).
    MlpIn,
    SiluMul,
    GeluMul,
    /// The activation of an ungated MLP.
    Act,
    Down,
    MlpPostNorm,
    MlpAdd,
    MlpAddNorm,
}

impl LayerOp {
    pub const ALL: [LayerOp; 26] = [
        LayerOp::BlockIn,
        LayerOp::Ln1,
        LayerOp::Q,
        LayerOp::K,
        LayerOp::V,
        LayerOp::QkNorm,
        LayerOp::Rope,
        LayerOp::Scores,
        LayerOp::Mask,
        LayerOp::Softmax,
        LayerOp::Z,
        LayerOp::OProj,
        LayerOp::AttnPostNorm,
        LayerOp::AttnAdd,
        LayerOp::AttnAddNorm,
        LayerOp::Ln2,
        LayerOp::Gate,
        LayerOp::Up,
        LayerOp::MlpIn,
        LayerOp::SiluMul,
        LayerOp::GeluMul,
        LayerOp::Act,
        LayerOp::Down,
        LayerOp::MlpPostNorm,
        LayerOp::MlpAdd,
        LayerOp::MlpAddNorm,
    ];

    /// The ops of one block of `arch`, in program order.
    pub fn block(arch: &Arch) -> Vec<LayerOp> {
        use LayerOp as O;
        // `sandwich`: the sublayer's output normed before the add (Gemma, OLMo 2).
        let (pre, post, sandwich) = (arch.placement.pre(), arch.placement == NormPlacement::Post, arch.placement.normed_output());
        let mut ops = vec![if pre { O::Ln1 } else { O::BlockIn }, O::Q, O::K, O::V];
        ops.extend(arch.qk_norm.then_some(O::QkNorm));
        ops.extend(arch.uses_rope().then_some(O::Rope));
        ops.extend([O::Scores, O::Mask, O::Softmax, O::Z, O::OProj]);
        ops.extend(sandwich.then_some(O::AttnPostNorm));
        ops.push(if post { O::AttnAddNorm } else { O::AttnAdd });
        ops.extend(pre.then_some(O::Ln2));
        match arch.mlp {
            MlpKind::SwiGlu => ops.extend([O::Gate, O::Up, O::SiluMul]),
            MlpKind::GeGlu => ops.extend([O::Gate, O::Up, O::GeluMul]),
            MlpKind::Plain(_) => ops.extend([O::MlpIn, O::Act]),
        }
        ops.push(O::Down);
        ops.extend(sandwich.then_some(O::MlpPostNorm));
        ops.push(if post { O::MlpAddNorm } else { O::MlpAdd });
        ops
    }

    pub fn name(self) -> &'static str {
        layer_op(self).name
    }

    /// The block hooks this op records, in the order it produces them.
    pub fn hooks(self) -> impl Iterator<Item = BlockHook> {
        layer_op(self).hooks.iter().filter_map(|h| match h.kind {
            HookKind::Block(b) => Some(b),
            _ => None,
        })
    }

    pub fn family(self) -> Family {
        layer_op(self).family
    }

    /// The ops of one family in `ops` (a block's), in program order: `Family::Attention` is
    /// the attention sublayer between its norm and its residual add, `Family::Mlp` the MLP's.
    pub fn of_family_in(ops: &[LayerOp], family: Family) -> Vec<LayerOp> {
        ops.iter().copied().filter(|op| op.family() == family).collect()
    }

    /// The first op of a block (`ln1`, or BERT's `resid_pre`).
    pub fn first(self) -> bool {
        matches!(self, LayerOp::Ln1 | LayerOp::BlockIn)
    }
}

/// One step of the forward program. The derived order is program order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Embed,
    /// Learned positions (GPT-2, BERT): add the position rows.
    PosEmbed,
    /// BERT: add the token-type rows.
    TokenTypeEmbed,
    /// BERT: LayerNorm of the summed embeddings.
    EmbedNorm,
    Layer(usize, LayerOp),
    LnFinal,
    /// BERT: the MLM head's transform.
    MlmTransform,
    Logits,
    Probs,
    Sample,
}

impl Step {
    pub fn layer(self) -> Option<usize> {
        match self {
            Step::Layer(l, _) => Some(l),
            _ => None,
        }
    }

    /// The hooks this step records, in order (from the op table).
    pub fn hooks(self) -> Vec<HookKey> {
        spec(self).hooks.iter().map(|h| h.kind.at(self.layer().unwrap_or(0))).collect()
    }

    /// The op table's entry for this step.
    pub fn spec(self) -> &'static OpSpec {
        spec(self)
    }

    /// The step that records `key` in a Llama block (another family's: [`Program::producing`]).
    pub fn producing(key: HookKey) -> Step {
        match hook_spec(key.kind()) {
            Some((Step::Layer(_, op), _)) => Step::Layer(key.layer().unwrap_or(0), op),
            Some((step, _)) => step,
            None => Step::Embed,
        }
    }

    /// The steps outside the blocks, with their names.
    const TOP: [(Step, &'static str); 9] = [
        (Step::Embed, "embed"),
        (Step::PosEmbed, "pos_embed"),
        (Step::TokenTypeEmbed, "token_type_embed"),
        (Step::EmbedNorm, "embed_ln"),
        (Step::LnFinal, "ln_final"),
        (Step::MlmTransform, "mlm_transform"),
        (Step::Logits, "logits"),
        (Step::Probs, "probs"),
        (Step::Sample, "sample"),
    ];
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Layer(l, op) => write!(f, "blocks.{l}.{}", op.name()),
            top => f.write_str(Step::TOP.iter().find(|(s, _)| s == top).map_or("", |(_, n)| n)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a step (expected `embed`, `blocks.L.<op>` with op e.g. ln1 q k v rope scores mask softmax z o_proj attn_add ln2 gate up silu_mul down mlp_add, `ln_final`, `logits`, `probs` or `sample`)")]
pub struct ParseStepError(pub String);

impl FromStr for Step {
    type Err = ParseStepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseStepError(s.to_string());
        if let Some((step, _)) = Step::TOP.iter().find(|(_, n)| *n == s) {
            return Ok(*step);
        }
        let rest = s.strip_prefix("blocks.").ok_or_else(bad)?;
        let (layer, op) = rest.split_once('.').ok_or_else(bad)?;
        let layer = layer.parse().map_err(|_| bad())?;
        let op = LayerOp::ALL.into_iter().find(|o| o.name() == op).ok_or_else(bad)?;
        Ok(Step::Layer(layer, op))
    }
}

/// The entry of a block op.
pub fn layer_op(op: LayerOp) -> &'static OpSpec {
    &op_table::LAYER_OPS[op as usize]
}

/// The entry of any step (the layer index does not matter).
pub fn spec(step: Step) -> &'static OpSpec {
    match step {
        Step::Embed => &op_table::EMBED,
        Step::PosEmbed => &op_table::POS_EMBED,
        Step::TokenTypeEmbed => &op_table::TOKEN_TYPE_EMBED,
        Step::EmbedNorm => &op_table::EMBED_NORM,
        Step::Layer(_, op) => layer_op(op),
        Step::LnFinal => &op_table::LN_FINAL,
        Step::MlmTransform => &op_table::MLM_TRANSFORM,
        Step::Logits => &op_table::LOGITS,
        Step::Probs => &op_table::PROBS,
        Step::Sample => &op_table::SAMPLE,
    }
}

/// The spec of one hook kind, and the step kind producing it (layer 0 for block hooks).
/// Two ops record `resid_pre` (`ln1`, or BERT's `resid_pre`) and `ln1.hook_scale` /
/// `ln2.hook_scale` (the pre-norms, or BERT's add-and-norm): they agree on slot and dims, and
/// the pre-norm op is the one named here.
pub fn hook_spec(kind: HookKind) -> Option<(Step, &'static HookSpec)> {
    let steps = [Step::Embed, Step::PosEmbed, Step::TokenTypeEmbed, Step::EmbedNorm, Step::LnFinal, Step::MlmTransform, Step::Logits, Step::Probs]
        .into_iter()
        .chain(LayerOp::ALL.into_iter().filter(|op| !ALTERNATIVES.contains(op)).chain(ALTERNATIVES).map(|op| Step::Layer(0, op)));
    for step in steps {
        if let Some(h) = spec(step).hooks.iter().find(|h| h.kind == kind) {
            return Some((step, h));
        }
    }
    None
}

/// Ops that record a hook another (Llama's) op also records; searched last.
const ALTERNATIVES: [LayerOp; 6] = [LayerOp::BlockIn, LayerOp::AttnAddNorm, LayerOp::MlpIn, LayerOp::GeluMul, LayerOp::Act, LayerOp::MlpAddNorm];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::LlamaConfig;
use crate::program::op_table::PassDims;

    #[test]
    fn layer_entries_line_up_with_the_enum() {
        let names: std::collections::BTreeSet<_> = op_table::LAYER_OPS.iter().map(|o| o.name).collect();
        assert_eq!(names.len(), op_table::LAYER_OPS.len(), "op names are unique");
        for (i, op) in LayerOp::ALL.into_iter().enumerate() {
            assert_eq!(op as usize, i, "LayerOp::ALL is in discriminant order");
        }
    }

    #[test]
    fn every_producer_of_a_hook_agrees_on_its_slot_and_dims() {
        let all = [Step::Embed, Step::PosEmbed, Step::TokenTypeEmbed, Step::EmbedNorm, Step::LnFinal, Step::MlmTransform, Step::Logits, Step::Probs]
            .into_iter()
            .chain(LayerOp::ALL.map(|op| Step::Layer(0, op)));
        for step in all {
            for h in spec(step).hooks {
                let (_, named) = hook_spec(h.kind).unwrap();
                assert_eq!((named.slot, named.dims), (h.slot, h.dims), "{step}: {}", h.kind.at(0));
            }
        }
        assert_eq!(Step::producing(HookKey::Block(2, BlockHook::ResidPre)), Step::Layer(2, LayerOp::Ln1), "Llama's op is the one named");
    }

    #[test]
    fn shapes_follow_the_pass() {
        let c: LlamaConfig = serde_json::from_str(
            r#"{"hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 97}"#,
        )
        .unwrap();
        let p = PassDims { n: 3, k_len: 10, logit_rows: 1 };
        let (_, pattern) = hook_spec(HookKind::Block(BlockHook::Pattern)).unwrap();
        assert_eq!(pattern.shape(&c, p), [4, 3, 10]);
        let (_, logits) = hook_spec(HookKind::Logits).unwrap();
        assert_eq!(logits.shape(&c, p), [1, 97]);
        assert_eq!(logits.first_position(7, p), 9);
        let all = PassDims { logit_rows: 3, ..p };
        assert_eq!(logits.shape(&c, all), [3, 97]);
        let (_, probs) = hook_spec(HookKind::Probs).unwrap();
        assert_eq!(probs.shape(&c, all), [1, 97], "the last position's distribution only");
        assert_eq!(probs.first_position(7, all), 9);
        let (_, k) = hook_spec(HookKind::Block(BlockHook::RotK)).unwrap();
        assert_eq!(k.shape(&c, p), [3, 2, 16]);
        assert_eq!(k.first_position(7, p), 7);
    }
}
