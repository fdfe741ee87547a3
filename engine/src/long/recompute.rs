//! One layer's detailed tensors again, from the residual stream a long pass kept.
//!
//! A long prompt keeps only the cheap tensors (`overview`); when a view needs a block's q, k,
//! v, scores, pattern, z or MLP activations, [`recompute`] runs that block alone from the
//! residual stream entering it (`Executor::begin_rows_at`), for a window of query rows whose
//! keys and values come from every earlier position. It is the executor's own code on the
//! same inputs, so the numbers are the ones a full capture records up to the last bits (the
//! row-blocked matmul and attention kernels sum in an order that depends on a pass's row
//! count), and the same window always gives the same bits (tests check both).

use std::ops::Range;

use ndarray::{Array2, Array3, s};

use crate::load::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions};
use crate::program::hooks::{BlockHook, HookKey};
use crate::program::op::{LayerOp, Step};
use crate::exec::tensor::{Dim, Tensor};
use crate::exec::trace::{CaptureFilter, Trace};

/// What a view asks to have recomputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detail {
    /// Every hook of one block.
    Layer(usize),
    /// The output head: final norm, logits and probabilities (the last block runs first).
    Output,
}

impl Detail {
    /// The block the recompute starts at.
    pub fn layer(self, n_layers: usize) -> usize {
        match self {
            Detail::Layer(l) => l,
            Detail::Output => n_layers.saturating_sub(1),
        }
    }

    /// The hooks it records.
    pub fn capture(self) -> CaptureFilter {
        match self {
            Detail::Layer(l) => CaptureFilter::keys(BlockHook::ALL.map(|h| HookKey::Block(l, h))),
            Detail::Output => CaptureFilter::keys([HookKey::LnFinalScale, HookKey::LnFinalNormalized, HookKey::MlmTransform, HookKey::Logits, HookKey::Probs]),
        }
    }

    /// The last step it runs.
    fn last_step(self) -> Step {
        match self {
            // The last op of every family's block sorts at or before this one.
            Detail::Layer(l) => Step::Layer(l, LayerOp::MlpAddNorm),
            Detail::Output => Step::Probs,
        }
    }
}

/// Recomputes `detail` for query rows `rows` of `ids`. `resid_in` `[≥ rows.end, d_model]` is
/// the residual stream entering the block as the pass had it before the block's own hooks
/// (`blocks.0.hook_resid_pre` for block 0, else the previous block's `hook_resid_post`).
/// `options` carries the pass's interventions, precision and switches (its capture is
/// replaced). The trace has rows `rows` at `pos_offset = rows.start`; attention hooks span keys
/// `0..rows.end` (every key for a two-way model, whose `resid_in` must hold every row).
pub fn recompute(
    exec: &mut dyn Executor,
    ids: &[u32],
    resid_in: &Tensor,
    detail: Detail,
    rows: Range<usize>,
    options: &PassOptions,
) -> Result<Trace> {
    let c = exec.config().clone();
    let n_layers = c.n_layers();
    if let Detail::Layer(l) = detail
        && l >= n_layers
    {
        return Err(EngineError::Input(format!("layer {l} is past the model's {n_layers} layers")));
    }
    if rows.start >= rows.end || rows.end > ids.len() {
        return Err(EngineError::Input(format!("rows {}..{} are not inside the {} tokens", rows.start, rows.end, ids.len())));
    }
    // A two-way model's (BERT's) query sees every key, after it too: its run goes on to the
    // end of the prompt, and its attention hooks keep every key.
    let arch = crate::load::arch::Arch::of(&c);
    let two_way = options.switches.no_causal_mask || (0..n_layers).any(|l| !arch.mask(l).is_causal());
    let run = match aligned(&rows, ids.len()) {
        run if two_way => run.start..ids.len(),
        run => run,
    };
    let key_end = if two_way { ids.len() } else { rows.end };
    let x = resid_in
        .as_2d()
        .filter(|x| x.nrows() >= run.end && x.ncols() == c.d_model())
        .ok_or_else(|| EngineError::Shape(format!("recompute: the residual stream is {} but rows ..{} of d_model {} are needed", resid_in.dims_string(), run.end, c.d_model())))?;
    let upto = if x.nrows() == run.end {
        resid_in.clone()
    } else {
        Tensor::new(vec![Dim::Pos, Dim::DModel], x.slice(s![..run.end, ..]).to_owned().into_dyn())
            .ok_or_else(|| EngineError::Shape("recompute: residual rows".into()))?
    }; // [run.end, d_model]
    let options = PassOptions { capture: detail.capture(), ..options.clone() };
    exec.begin_rows_at(&ids[..run.end], options, detail.layer(n_layers), &upto, run.start)?;
    exec.run_to(detail.last_step())?;
    let mut trace = exec.take_trace();
    // The cache now holds one block's rows: nothing a later pass may build on.
    exec.reset();
    if run != rows {
        trim(&mut trace, &run, &rows, key_end)?;
    }
    trace.materialize(); // here, on the model thread, not when a view first reads it
    Ok(trace)
}

/// The rows actually run for `rows`: at least [`ALIGN`] of them, ending on a multiple of
/// [`ALIGN`] or at the last token: a window that ends on a lane boundary, with enough rows,
/// runs the kernels' full-width paths as the full pass did, keeping the rounding difference
/// small.
fn aligned(rows: &Range<usize>, n: usize) -> Range<usize> {
    let end = rows.end.max(rows.start + ALIGN).next_multiple_of(ALIGN).min(n);
    rows.start.min(end.saturating_sub(ALIGN))..end
}

const ALIGN: usize = 8;

/// Cuts a trace of rows `run` to rows `rows` (keys to `..key_end`).
fn trim(trace: &mut Trace, run: &Range<usize>, rows: &Range<usize>, key_end: usize) -> Result<()> {
    let (from, to) = (rows.start - run.start, rows.end - run.start);
    // `hook_probs` holds the run's last row only: it is the window's last row's only if the
    // run ends there (else a view works that row's distribution out from its logits).
    if run.end != rows.end {
        trace.remove(HookKey::Probs);
    }
    let keys: Vec<HookKey> = trace.keys().filter(|&k| k != HookKey::Probs).collect();
    for key in keys {
        let Some(t) = trace.get(key) else { continue };
        let info: Vec<ndarray::SliceInfoElem> = t
            .dims
            .iter()
            .map(|d| match d {
                Dim::Pos | Dim::QPos => ndarray::Slice::from(from..to).into(),
                Dim::KPos => ndarray::Slice::from(..key_end).into(),
                _ => ndarray::Slice::from(..).into(),
            })
            .collect();
        let cut = t.data.slice(info.as_slice()).to_owned();
        let tensor = Tensor::new(t.dims.clone(), cut).ok_or_else(|| EngineError::Shape(format!("`{key}` trimmed")))?;
        trace.insert(key, tensor);
    }
    trace.token_ids = trace.token_ids[from..to].to_vec();
    trace.pos_offset = rows.start;
    Ok(())
}

/// The checks and the before-the-window part of `begin_rows_at`, shared by both executors.
pub(crate) struct RowsSplit {
    /// `resid_pre` rows `..first` `[first, d_model]`.
    pub before: Tensor,
    /// The pass over them: nothing captured, the same edits, precision and switches.
    pub before_options: PassOptions,
}

impl RowsSplit {
    pub fn new(c: &LlamaConfig, ids: &[u32], layer: usize, resid_pre: &Tensor, first: usize, options: &PassOptions) -> Result<Self> {
        let n_layers = c.n_layers();
        if layer >= n_layers {
            return Err(EngineError::Input(format!("layer {layer} is past the model's {n_layers} layers")));
        }
        if first >= ids.len() {
            return Err(EngineError::Input(format!("the window starts at row {first} but the pass has {} tokens", ids.len())));
        }
        let x = resid_pre
            .as_2d()
            .filter(|x| x.dim() == (ids.len(), c.d_model()))
            .ok_or_else(|| Self::shape_error(resid_pre))?;
        let before = Tensor::new(vec![Dim::Pos, Dim::DModel], x.slice(s![..first, ..]).to_owned().into_dyn())
            .ok_or_else(|| Self::shape_error(resid_pre))?; // [first, d_model]
        let before_options = PassOptions { capture: CaptureFilter::Nothing, ..options.clone() };
        Ok(Self { before, before_options })
    }

    pub fn shape_error(resid_pre: &Tensor) -> EngineError {
        EngineError::Shape(format!("begin at a row window: the residual stream is {} but the pass needs [pos, d_model] for every token", resid_pre.dims_string()))
    }
}

/// The attention hooks of a window's trace cut to the window's own keys, so a view can draw
/// them as a square; what the cut leaves out is summarized per head and query row.
#[derive(Debug, Clone, Default)]
pub struct KeyCut {
    /// Absolute position of key index 0 after the cut (the window's first row).
    pub first_key: usize,
    /// `[head, q_pos]`: attention weight on the keys before `first_key` (0 for an uncut window).
    pub weight_before: Option<Tensor>,
    /// `[head][q_pos]`: the largest weights on keys before `first_key`, as (absolute key, p),
    /// largest first.
    pub top_before: Vec<Vec<Vec<(usize, f32)>>>,
}

/// Keys kept per query row in [`KeyCut::top_before`].
pub const TOP_BEFORE: usize = 3;

/// Cuts the `[head, q_pos, k_pos]` hooks of `trace` (a window at `pos_offset`) to keys
/// `pos_offset..`, re-basing the trace at position 0: it then reads like a pass over the
/// window's tokens alone, except that its numbers are the ones computed with every key.
pub fn cut_keys(trace: &mut Trace) -> Result<KeyCut> {
    let first = trace.pos_offset;
    let mut cut = KeyCut { first_key: first, ..KeyCut::default() };
    let keys: Vec<HookKey> = trace
        .keys()
        .filter(|k| matches!(k, HookKey::Block(_, BlockHook::RawScores | BlockHook::AttnScores | BlockHook::Pattern)))
        .collect();
    for key in keys {
        let Some(t) = trace.get(key).and_then(|t| t.as_3d()) else { continue };
        let (h, q, k) = t.dim();
        if k < first + q {
            return Err(EngineError::Shape(format!("`{key}` has {k} keys for rows {first}..{}", first + q)));
        }
        if matches!(key, HookKey::Block(_, BlockHook::Pattern)) && first > 0 {
            let before = t.slice(s![.., .., ..first]);
            let weight = Array2::from_shape_fn((h, q), |(a, b)| before.slice(s![a, b, ..]).sum()); // [head, q_pos]
            cut.weight_before = Tensor::new(vec![Dim::Head, Dim::QPos], weight.into_dyn());
            cut.top_before = (0..h)
                .map(|a| (0..q).map(|b| top_keys(before.slice(s![a, b, ..]).iter().copied(), TOP_BEFORE)).collect())
                .collect();
        }
        let kept: Array3<f32> = t.slice(s![.., .., first..first + q]).to_owned(); // [head, q_pos, k_pos]
        let tensor = Tensor::new(vec![Dim::Head, Dim::QPos, Dim::KPos], kept.into_dyn())
            .ok_or_else(|| EngineError::Shape(format!("`{key}` after the cut")))?;
        trace.insert(key, tensor);
    }
    trace.pos_offset = 0;
    Ok(cut)
}

/// The `n` largest values with their indices, largest first.
fn top_keys(values: impl Iterator<Item = f32>, n: usize) -> Vec<(usize, f32)> {
    let mut top: Vec<(usize, f32)> = Vec::with_capacity(n + 1);
    for (i, v) in values.enumerate() {
        if top.len() < n || top.last().is_some_and(|&(_, m)| v > m) {
            let at = top.iter().position(|&(_, m)| v > m).unwrap_or(top.len());
            top.insert(at, (i, v));
            top.truncate(n);
        }
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_run_on_aligned_rows() {
        assert_eq!(aligned(&(5..21), 40), 5..24);
        assert_eq!(aligned(&(10..13), 40), 10..24);
        assert_eq!(aligned(&(8..24), 40), 8..24);
        assert_eq!(aligned(&(36..39), 39), 31..39);
        assert_eq!(aligned(&(0..3), 3), 0..3);
    }

    #[test]
    fn top_keys_are_sorted() {
        assert_eq!(top_keys([0.1, 0.5, 0.2, 0.7].into_iter(), 2), vec![(3, 0.7), (1, 0.5)]);
        assert_eq!(top_keys([0.1].into_iter(), 3), vec![(0, 0.1)]);
    }
}
