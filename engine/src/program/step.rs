//! The forward pass of one model as a program of `Step`s in data-flow order (DESIGN §1),
//! generated from its `Arch`. Both executors run this same program, so "stop after step N"
//! means the same thing on CPU and GPU.

use crate::load::arch::{Arch, Positions};
use crate::load::config::LlamaConfig;
use crate::program::hooks::HookKey;
use crate::program::op::{LayerOp, Step};

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
