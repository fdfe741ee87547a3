//! The computation graph as it is built for one input (the article's §3.2, "dynamic
//! computation graph"): the same `Step` program runs for every input, but every tensor's
//! shape follows the number of new tokens and the length of the KV cache. Also the size of
//! that cache in bytes, for grouped-query and multi-head attention, in f32 and f16.

use crate::load::config::LlamaConfig;
use crate::program::hooks::HookKey;
use crate::program::op::Step;

/// The shape `key` has when `n_new` tokens are run after `n_past` cached ones (the CPU
/// reference records all logits rows, as the app captures every hook, and the softmax of the
/// last one: the distribution the next token is drawn from).
pub fn hook_shape(c: &LlamaConfig, key: HookKey, n_new: usize, n_past: usize) -> Vec<usize> {
    let dims = crate::program::op_table::PassDims { n: n_new, k_len: n_past + n_new, logit_rows: n_new };
    crate::program::op::hook_spec(key.kind()).map_or_else(Vec::new, |(_, spec)| spec.shape(c, dims))
}

/// One step of the program with the shapes of what it records.
#[derive(Debug, Clone, PartialEq)]
pub struct StepShapes {
    pub step: Step,
    pub outputs: Vec<(HookKey, Vec<usize>)>,
}

/// The whole program for `n_new` tokens after `n_past` cached ones.
pub fn program_shapes(c: &LlamaConfig, n_new: usize, n_past: usize) -> Vec<StepShapes> {
    crate::program::step::Program::of(c)
        .steps()
        .iter()
        .copied()
        .map(|step| StepShapes {
            step,
            outputs: step
                .hooks()
                .into_iter()
                .map(|k| (k, hook_shape(c, k, n_new, n_past)))
                .collect(),
        })
        .collect()
}

/// Bytes of a KV cache: every layer keeps K and V, `kv_heads × d_head` numbers each, per
/// cached position.
pub fn kv_cache_bytes(c: &LlamaConfig, kv_heads: usize, positions: usize, bytes_per_value: usize) -> u64 {
    (c.n_layers() * 2 * kv_heads * c.d_head()) as u64 * positions as u64 * bytes_per_value as u64
}

/// The cache this model keeps (grouped-query) and the one it would keep with a K/V head per
/// query head (multi-head), in f32 and f16, at `positions`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvCacheSizes {
    pub positions: usize,
    pub gqa_f32: u64,
    pub gqa_f16: u64,
    pub mha_f32: u64,
    pub mha_f16: u64,
}

pub fn kv_cache_sizes(c: &LlamaConfig, positions: usize) -> KvCacheSizes {
    KvCacheSizes {
        positions,
        gqa_f32: kv_cache_bytes(c, c.n_kv_heads(), positions, 4),
        gqa_f16: kv_cache_bytes(c, c.n_kv_heads(), positions, 2),
        mha_f32: kv_cache_bytes(c, c.n_heads(), positions, 4),
        mha_f16: kv_cache_bytes(c, c.n_heads(), positions, 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> LlamaConfig {
        let json = r#"{"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
            "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "max_position_embeddings": 8192,
            "tie_word_embeddings": true}"#;
        LlamaConfig::from_json(json, std::path::Path::new("smollm2.json")).expect("config")
    }

    #[test]
    fn kv_cache_bytes_by_hand() {
        // 30 layers × K,V × 3 heads × 64 × 4 bytes = 46080 bytes per position.
        let s = kv_cache_sizes(&smollm2(), 10);
        assert_eq!(s.gqa_f32, 460_800);
        assert_eq!(s.gqa_f16, 230_400);
        assert_eq!(s.mha_f32, 3 * 460_800);
        assert_eq!(s.mha_f16, 3 * 230_400);
    }

    #[test]
    fn decode_step_scores_span_the_cache() {
        let c = smollm2();
        let p = program_shapes(&c, 1, 12);
        assert_eq!(p.len(), crate::program::step::Program::llama(30).len());
        let pattern = HookKey::Block(4, crate::program::hooks::BlockHook::Pattern);
        let shape = p
            .iter()
            .flat_map(|s| &s.outputs)
            .find(|(k, _)| *k == pattern)
            .map(|(_, s)| s.clone());
        assert_eq!(shape, Some(vec![9, 1, 13]));
    }
}
