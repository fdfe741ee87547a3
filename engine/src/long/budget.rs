//! The memory budget of what a pass leaves behind for the views, and the plan that keeps a
//! prompt inside it: a full capture while it fits, else the cheap overview of every
//! position (`overview`) plus one block's detail for a window of rows (`recompute`).
//!
//! Sizes come from the op table's shapes, so they are the bytes the trace will hold, not
//! guesses. The executor's own working memory (weights, KV cache, one chunk's activations)
//! is outside the budget; [`chunk_rows`] bounds the chunk's share.

use crate::load::config::LlamaConfig;
use crate::program::hooks::HookKey;
use crate::program::op::hook_spec;
use crate::program::op_table::PassDims;
use crate::program::step::Program;
use crate::long::overview::{OverviewOptions, POOLED_CELLS, TOP_K};
use crate::long::recompute::Detail;

pub const MIB: u64 = 1 << 20;
/// The default budget. An 8,192-token SmolLM2-135M prompt keeps 1.09 GiB of overview
/// (embedding, the stream after each block and after each attention, scales, summaries) and
/// needs 358 MiB more for a 256-row window with one block's detail and the output head:
/// 1.44 GiB (the budget test prints the figures).
pub const DEFAULT_BUDGET: u64 = 1536 * MIB;
/// The smallest and largest budgets the app offers.
pub const MIN_BUDGET: u64 = 128 * MIB;
pub const MAX_BUDGET: u64 = 64 * 1024 * MIB;
/// Query rows a window shows at most.
pub const WINDOW_ROWS: usize = 256;
/// Fewest rows a narrowed window keeps before the recompute is refused instead.
pub const MIN_WINDOW_ROWS: usize = 8;
/// Bytes one chunk of a long pass may use for its `[head, rows, keys]` scores (the
/// executor's slot and the recorded copy) and its logits rows.
pub const CHUNK_WORKING: u64 = 256 * MIB;

fn bytes_of(c: &LlamaConfig, key: HookKey, dims: PassDims) -> u64 {
    hook_spec(key.kind()).map_or(0, |(_, spec)| 4 * spec.shape(c, dims).iter().product::<usize>() as u64)
}

/// Bytes of a full capture of `n` tokens (every hook, logits and probabilities for every row).
pub fn full_capture_bytes(c: &LlamaConfig, n: usize) -> u64 {
    let dims = PassDims { n, k_len: n, logit_rows: n };
    Program::of(c).hooks().into_iter().map(|k| bytes_of(c, k, dims)).sum()
}

/// `[pos, d_model]` tensors per position kept by an overview.
fn kept_rows(c: &LlamaConfig, keep_mid: bool) -> u64 {
    let l = c.n_layers() as u64;
    // `hook_embed`, block 0's input, every block's output (and middle).
    2 + l + if keep_mid { l } else { 0 }
}

/// Bytes of the overview of `n` tokens.
pub fn overview_bytes(c: &LlamaConfig, n: usize, keep_mid: bool) -> u64 {
    let (n, l, d) = (n as u64, c.n_layers() as u64, c.d_model() as u64);
    let resid = kept_rows(c, keep_mid) * n * d * 4;
    let scales = (2 * l + 1) * n * 4;
    let norms = (3 * l + 1) * n * 4;
    let losses_top = n * 4 + n * TOP_K as u64 * std::mem::size_of::<crate::experiments::analysis::Ranked>() as u64;
    let cells = n.div_ceil(n.div_ceil(POOLED_CELLS as u64).max(1));
    let pooled = l * c.n_heads() as u64 * cells * cells * 4;
    resid + scales + norms + losses_top + pooled
}

/// Bytes of `rows` rows of the overview's kept tensors (what a window shows of them).
pub fn window_bytes(c: &LlamaConfig, rows: usize, keep_mid: bool) -> u64 {
    let l = c.n_layers() as u64;
    (kept_rows(c, keep_mid) * c.d_model() as u64 + 2 * l + 1) * rows as u64 * 4
}

/// Bytes a recompute of `detail` for `rows` query rows over `k_len` keys records (before its
/// attention hooks are cut to the window).
pub fn detail_bytes(c: &LlamaConfig, detail: Detail, rows: usize, k_len: usize) -> u64 {
    let dims = PassDims { n: rows, k_len, logit_rows: rows };
    match detail {
        Detail::Layer(l) => Program::of(c).block_hooks(l).into_iter().map(|k| bytes_of(c, k, dims)).sum(),
        Detail::Output => [HookKey::LnFinalScale, HookKey::LnFinalNormalized, HookKey::Logits, HookKey::Probs]
            .into_iter()
            .map(|k| bytes_of(c, k, dims))
            .sum(),
    }
}

/// What a window of `rows` over `n` tokens needs at most: its rows of the overview, one
/// block's detail and the output head's.
pub fn window_reserve(c: &LlamaConfig, n: usize, rows: usize, keep_mid: bool) -> u64 {
    window_bytes(c, rows, keep_mid) + detail_bytes(c, Detail::Layer(0), rows, n) + detail_bytes(c, Detail::Output, rows, n)
}

/// How a prompt of `n` tokens runs within `budget` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Every hook of every position: short prompts.
    Full,
    /// The overview, then one block's detail at a time for a window of rows.
    Overview(OverviewOptions),
    /// Not even the overview fits: `need` bytes would.
    Refused { need: u64 },
}

pub fn plan(c: &LlamaConfig, n: usize, budget: u64) -> Plan {
    if full_capture_bytes(c, n) <= budget {
        return Plan::Full;
    }
    let rows = n.min(WINDOW_ROWS);
    for keep_mid in [true, false] {
        if overview_bytes(c, n, keep_mid) + window_reserve(c, n, rows, keep_mid) <= budget {
            return Plan::Overview(OverviewOptions { chunk: chunk_rows(c, n), keep_mid });
        }
    }
    // The least that works: the overview and a narrowed window.
    let small = n.min(MIN_WINDOW_ROWS);
    if overview_bytes(c, n, false) + window_reserve(c, n, small, false) <= budget {
        return Plan::Overview(OverviewOptions { chunk: chunk_rows(c, n), keep_mid: false });
    }
    Plan::Refused { need: overview_bytes(c, n, false) + window_reserve(c, n, small, false) }
}

/// Query rows per chunk of an `n`-token pass: as many as keep the chunk's scores (twice: the
/// executor's and the recorded copy) and logits rows within [`CHUNK_WORKING`], in multiples
/// of 64, at least 64.
pub fn chunk_rows(c: &LlamaConfig, n: usize) -> usize {
    let per_row = 4 * (2 * c.n_heads() * n + 2 * c.vocab_size) as u64;
    let rows = (CHUNK_WORKING / per_row.max(1)) as usize;
    (rows / 64 * 64).clamp(64, n.max(64))
}

/// The most query rows (up to `want`) whose recompute of `detail` over `k_len` keys fits in
/// `left` bytes; `None` if fewer than [`MIN_WINDOW_ROWS`] (or `want`, if smaller) would.
pub fn window_rows(c: &LlamaConfig, detail: Detail, k_len: usize, want: usize, left: u64) -> Option<usize> {
    let fits = |rows: usize| detail_bytes(c, detail, rows, k_len) <= left;
    if fits(want) {
        return Some(want);
    }
    let (mut lo, mut hi) = (0usize, want);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    (lo >= MIN_WINDOW_ROWS.min(want)).then_some(lo)
}

/// `bytes` for people: "1.46 GiB", "312 MiB".
pub fn human(bytes: u64) -> String {
    if bytes >= 1024 * MIB {
        format!("{:.2} GiB", bytes as f64 / (1024 * MIB) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / MIB as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> LlamaConfig {
        serde_json::from_str(
            r#"{"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
                "max_position_embeddings": 8192}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_default_budget_holds_an_8192_token_smollm2_prompt_with_its_window() {
        let c = smollm2();
        let Plan::Overview(o) = plan(&c, 8192, DEFAULT_BUDGET) else { panic!("{:?}", plan(&c, 8192, DEFAULT_BUDGET)) };
        assert!(o.keep_mid, "the logit lens after attention stays available");
        let total = overview_bytes(&c, 8192, true) + window_reserve(&c, 8192, WINDOW_ROWS, true);
        eprintln!("8192 tokens: overview {} + window {} = {}", human(overview_bytes(&c, 8192, true)), human(window_reserve(&c, 8192, WINDOW_ROWS, true)), human(total));
        assert!(total <= DEFAULT_BUDGET);
        // A chunk's scores stay within the working bound.
        assert!((o.chunk as u64) * 9 * 8192 * 4 * 2 <= CHUNK_WORKING, "{}", o.chunk);
    }

    #[test]
    fn short_prompts_are_captured_fully_and_tiny_budgets_refuse() {
        let c = smollm2();
        assert_eq!(plan(&c, 64, DEFAULT_BUDGET), Plan::Full);
        assert!(matches!(plan(&c, 2000, DEFAULT_BUDGET), Plan::Overview(_)));
        assert!(matches!(plan(&c, 8192, 256 * MIB), Plan::Refused { .. }));
        // The full-capture size is every hook's shape: one pattern is head × n × n.
        let one = full_capture_bytes(&c, 64);
        let two = full_capture_bytes(&c, 128);
        assert!(two > 2 * one, "attention grows with n²");
    }

    #[test]
    fn windows_narrow_to_fit() {
        let c = smollm2();
        let full = detail_bytes(&c, Detail::Layer(3), 256, 8192);
        assert_eq!(window_rows(&c, Detail::Layer(3), 8192, 256, full), Some(256));
        let half = window_rows(&c, Detail::Layer(3), 8192, 256, full / 2).unwrap();
        assert!((100..=128).contains(&half), "{half}");
        assert_eq!(window_rows(&c, Detail::Layer(3), 8192, 256, 1000), None);
    }
}
