//! The forward pass as a program of `Step`s in data-flow order (DESIGN §1). Both executors
//! run this same program, so "stop after step N" means the same thing on CPU and GPU.

use std::fmt;
use std::str::FromStr;

use crate::hooks::{BlockHook, HookKey, HookKind};
use crate::op_table::{self, Family, OpSpec};

/// One operation inside decoder block `L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LayerOp {
    Ln1,
    Q,
    K,
    V,
    Rope,
    Scores,
    Mask,
    Softmax,
    Z,
    OProj,
    AttnAdd,
    Ln2,
    Gate,
    Up,
    SiluMul,
    Down,
    MlpAdd,
}

impl LayerOp {
    pub const ALL: [LayerOp; 17] = [
        LayerOp::Ln1,
        LayerOp::Q,
        LayerOp::K,
        LayerOp::V,
        LayerOp::Rope,
        LayerOp::Scores,
        LayerOp::Mask,
        LayerOp::Softmax,
        LayerOp::Z,
        LayerOp::OProj,
        LayerOp::AttnAdd,
        LayerOp::Ln2,
        LayerOp::Gate,
        LayerOp::Up,
        LayerOp::SiluMul,
        LayerOp::Down,
        LayerOp::MlpAdd,
    ];

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

    /// The ops of one family in program order: `Family::Attention` is the attention
    /// sublayer between its RMSNorm and its residual add, `Family::Mlp` the SwiGLU MLP's.
    pub fn of_family(family: Family) -> Vec<LayerOp> {
        Self::ALL.into_iter().filter(|op| op.family() == family).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Embed,
    Layer(usize, LayerOp),
    LnFinal,
    Logits,
    Probs,
    Sample,
}

impl Step {
    /// The whole program for an `n_layers` model, in execution order.
    pub fn program(n_layers: usize) -> Vec<Step> {
        let mut steps = vec![Step::Embed];
        for l in 0..n_layers {
            steps.extend(LayerOp::ALL.iter().map(|&op| Step::Layer(l, op)));
        }
        steps.extend([Step::LnFinal, Step::Logits, Step::Probs, Step::Sample]);
        steps
    }

    /// Index of this step in [`Step::program`].
    pub fn index(self, n_layers: usize) -> usize {
        let per_layer = LayerOp::ALL.len();
        match self {
            Step::Embed => 0,
            Step::Layer(l, op) => 1 + l * per_layer + op as usize,
            Step::LnFinal => 1 + n_layers * per_layer,
            Step::Logits => 2 + n_layers * per_layer,
            Step::Probs => 3 + n_layers * per_layer,
            Step::Sample => 4 + n_layers * per_layer,
        }
    }

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

    /// The step that records `key`.
    pub fn producing(key: HookKey) -> Step {
        match op_table::hook_spec(key.kind()) {
            Some((Step::Layer(_, op), _)) => Step::Layer(key.layer().unwrap_or(0), op),
            Some((step, _)) => step,
            None => Step::Embed,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Embed => f.write_str("embed"),
            Step::Layer(l, op) => write!(f, "blocks.{l}.{}", op.name()),
            Step::LnFinal => f.write_str("ln_final"),
            Step::Logits => f.write_str("logits"),
            Step::Probs => f.write_str("probs"),
            Step::Sample => f.write_str("sample"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a step (expected `embed`, `blocks.L.<op>` with op one of ln1 q k v rope scores mask softmax z o_proj attn_add ln2 gate up silu_mul down mlp_add, `ln_final`, `logits`, `probs` or `sample`)")]
pub struct ParseStepError(pub String);

impl FromStr for Step {
    type Err = ParseStepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseStepError(s.to_string());
        match s {
            "embed" => return Ok(Step::Embed),
            "ln_final" => return Ok(Step::LnFinal),
            "logits" => return Ok(Step::Logits),
            "probs" => return Ok(Step::Probs),
            "sample" => return Ok(Step::Sample),
            _ => {}
        }
        let rest = s.strip_prefix("blocks.").ok_or_else(bad)?;
        let (layer, op) = rest.split_once('.').ok_or_else(bad)?;
        let layer = layer.parse().map_err(|_| bad())?;
        let op = LayerOp::ALL.into_iter().find(|o| o.name() == op).ok_or_else(bad)?;
        Ok(Step::Layer(layer, op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_program_order_and_names_round_trip() {
        let program = Step::program(3);
        for (i, step) in program.iter().enumerate() {
            assert_eq!(step.index(3), i);
            assert_eq!(step.to_string().parse::<Step>().unwrap(), *step);
        }
    }

    #[test]
    fn sublayer_groups_are_the_program_order_between_norm_and_add() {
        let inner: Vec<LayerOp> = std::iter::once(LayerOp::Ln1)
            .chain(LayerOp::of_family(Family::Attention))
            .chain([LayerOp::AttnAdd, LayerOp::Ln2])
            .chain(LayerOp::of_family(Family::Mlp))
            .chain([LayerOp::MlpAdd])
            .collect();
        assert_eq!(inner, LayerOp::ALL);
    }

    #[test]
    fn every_hook_is_produced_by_exactly_one_step() {
        let program = Step::program(2);
        for key in HookKey::all(2) {
            let producers: Vec<_> = program.iter().filter(|s| s.hooks().contains(&key)).collect();
            assert_eq!(producers.len(), 1, "{key}");
            assert_eq!(*producers[0], Step::producing(key));
        }
    }
}
