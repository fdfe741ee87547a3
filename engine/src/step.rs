//! The forward pass as a program of `Step`s in data-flow order (DESIGN §1). Both executors
//! run this same program, so "stop after step N" means the same thing on CPU and GPU.

use std::fmt;
use std::str::FromStr;

use crate::arch::{Arch, MlpKind, NormPlacement, Positions};
use crate::config::LlamaConfig;
use crate::hooks::{BlockHook, HookKey, HookKind};
use crate::op_table::{self, Family, OpSpec};

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
    /// Sandwich norms (Gemma): the attention output normed before the add.
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
        let (pre, post, sandwich) = (
            arch.placement != NormPlacement::Post,
            arch.placement == NormPlacement::Post,
            arch.placement == NormPlacement::Sandwich,
        );
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
        op_table::layer_op(self).name
    }

    /// The block hooks this op records, in the order it produces them.
    pub fn hooks(self) -> impl Iterator<Item = BlockHook> {
        op_table::layer_op(self).hooks.iter().filter_map(|h| match h.kind {
            HookKind::Block(b) => Some(b),
            _ => None,
        })
    }

    pub fn family(self) -> Family {
        op_table::layer_op(self).family
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

/// The forward pass of one model as a program of steps, generated from its [`Arch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    steps: Vec<Step>,
    block: Vec<LayerOp>,
}

impl Program {
    pub fn new(arch: &Arch) -> Self {
        let block = LayerOp::block(arch);
        let mut steps = vec![Step::Embed];
        if let Positions::Learned { token_types } = arch.positions {
            steps.push(Step::PosEmbed);
            steps.extend(token_types.then_some(Step::TokenTypeEmbed));
        }
        steps.extend(arch.embed_norm.then_some(Step::EmbedNorm));
        for l in 0..arch.layers.len() {
            steps.extend(block.iter().map(|&op| Step::Layer(l, op)));
        }
        steps.extend(arch.final_norm.then_some(Step::LnFinal));
        steps.extend(arch.mlm_head.then_some(Step::MlmTransform));
        steps.extend([Step::Logits, Step::Probs, Step::Sample]);
        Self { steps, block }
    }

    /// Llama's program for `n_layers` blocks (the trainer's, which trains Llama only).
    pub fn llama(n_layers: usize) -> Self {
        let c = LlamaConfig { num_hidden_layers: n_layers, hidden_size: 2, num_attention_heads: 1, ..LlamaConfig::default() };
        Self::of(&c)
    }

    /// The program of the model `c` describes (a config that passed loading always has one;
    /// one that did not runs as Llama).
    pub fn of(c: &LlamaConfig) -> Self {
        Self::new(&c.arch())
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<Step> {
        self.steps.get(i).copied()
    }

    /// Where `step` runs in the program, if this model has it.
    pub fn index(&self, step: Step) -> Option<usize> {
        self.steps.binary_search(&step).ok()
    }

    /// Where `step` runs, or where it would (the first step after it) when this model has no
    /// such step: a cursor stays in order.
    pub fn index_or_next(&self, step: Step) -> usize {
        self.steps.binary_search(&step).unwrap_or_else(|i| i)
    }

    /// The ops of one block.
    pub fn block(&self) -> &[LayerOp] {
        &self.block
    }

    /// The first step of block `layer`.
    pub fn layer_start(&self, layer: usize) -> Step {
        Step::Layer(layer, self.block.first().copied().unwrap_or(LayerOp::Ln1))
    }

    /// Whether this program has an op.
    pub fn has(&self, op: LayerOp) -> bool {
        self.block.contains(&op)
    }

    /// Every hook the program records, in forward order.
    pub fn hooks(&self) -> Vec<HookKey> {
        self.steps.iter().flat_map(|s| s.hooks()).collect()
    }

    /// The hooks of block `layer`.
    pub fn block_hooks(&self, layer: usize) -> Vec<HookKey> {
        self.block.iter().flat_map(|&op| Step::Layer(layer, op).hooks()).collect()
    }

    /// The step of this program that records `key`, if it records it.
    pub fn producing(&self, key: HookKey) -> Option<Step> {
        match key.layer() {
            Some(l) if l < self.n_layers() => self.block.iter().map(|&op| Step::Layer(l, op)).find(|s| s.hooks().contains(&key)),
            Some(_) => None,
            None => self.steps.iter().copied().find(|s| s.layer().is_none() && s.hooks().contains(&key)),
        }
    }

    /// Whether this model records `key`.
    pub fn records(&self, key: HookKey) -> bool {
        self.producing(key).is_some()
    }

    pub fn n_layers(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s, Step::Layer(_, op) if op.first())).count()
    }
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
        op_table::spec(self).hooks.iter().map(|h| h.kind.at(self.layer().unwrap_or(0))).collect()
    }

    /// The op table's entry for this step.
    pub fn spec(self) -> &'static OpSpec {
        op_table::spec(self)
    }

    /// The step that records `key` in a Llama block (another family's: [`Program::producing`]).
    pub fn producing(key: HookKey) -> Step {
        match op_table::hook_spec(key.kind()) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn configs() -> Vec<LlamaConfig> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        ["tiny-gqa-tied", "tiny-gemma3", "tiny-gpt2", "tiny-bert-mlm"]
            .map(|f| LlamaConfig::from_file(&dir.join(f).join("config.json")).unwrap())
            .to_vec()
    }

    #[test]
    fn index_matches_program_order_and_names_round_trip() {
        for c in configs() {
            let program = Program::of(&c);
            for (i, step) in program.steps().iter().enumerate() {
                assert_eq!(program.index(*step), Some(i));
                assert_eq!(step.to_string().parse::<Step>().unwrap(), *step);
            }
        }
    }

    #[test]
    fn llama_block_is_the_seventeen_ops_in_order() {
        let names: Vec<_> = Program::of(&configs()[0]).block().iter().map(|o| o.name()).collect();
        assert_eq!(names.join(" "), "ln1 q k v rope scores mask softmax z o_proj attn_add ln2 gate up silu_mul down mlp_add");
    }

    #[test]
    fn each_family_gets_its_own_block() {
        let blocks: Vec<String> = configs()[1..].iter().map(|c| Program::of(c).block().iter().map(|o| o.name()).collect::<Vec<_>>().join(" ")).collect();
        assert_eq!(blocks[0], "ln1 q k v qk_norm rope scores mask softmax z o_proj ln1_post attn_add ln2 gate up gelu_mul down ln2_post mlp_add");
        assert_eq!(blocks[1], "ln1 q k v scores mask softmax z o_proj attn_add ln2 mlp_in act down mlp_add");
        assert_eq!(blocks[2], "resid_pre q k v scores mask softmax z o_proj attn_add_norm mlp_in act down mlp_add_norm");
        let bert = Program::of(&configs()[3]);
        assert_eq!(&bert.steps()[..4], [Step::Embed, Step::PosEmbed, Step::TokenTypeEmbed, Step::EmbedNorm]);
        assert!(bert.index(Step::LnFinal).is_none() && bert.index(Step::MlmTransform).is_some());
    }

    #[test]
    fn every_hook_is_produced_by_exactly_one_step() {
        for c in configs() {
            let program = Program::of(&c);
            let hooks = program.hooks();
            let unique: std::collections::BTreeSet<_> = hooks.iter().collect();
            assert_eq!(unique.len(), hooks.len(), "{:?}", c.model_type);
            for key in hooks {
                let producers: Vec<_> = program.steps().iter().filter(|s| s.hooks().contains(&key)).collect();
                assert_eq!(producers.len(), 1, "{key}");
                assert_eq!(Some(*producers[0]), program.producing(key));
            }
        }
    }
}
