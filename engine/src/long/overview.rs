//! What a long pass keeps: the cheap tensors for every position, and small per-position
//! summaries of the expensive ones.
//!
//! [`run_overview`] runs the prompt in chunks of query rows (each chunk a pass appended after
//! the KV cache of the ones before), so the executor never holds the `[head, pos, pos]`
//! scores of every row at once. Of each chunk it keeps the residual stream entering every
//! block and after its attention, the norms' scales and the embedding (stitched into
//! `[pos, …]` tensors), and reduces what it does not keep: the attention patterns to a
//! max-pooled `[head, cell, cell]` map per layer, the sublayer writes to their norms, the
//! logits to each position's next-token loss and top tokens. A block's detailed tensors come
//! back on demand from the kept residual (`recompute`).

use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use crate::experiments::analysis::{Ranked, top_k};
use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions, StepOutput};
use crate::program::hooks::{BlockHook, HookKey, HookKind};
use crate::long::recompute::Detail;
use crate::program::op::Step;
use crate::exec::tensor::{Dim, Tensor};
use crate::exec::trace::{CaptureFilter, Trace};

/// Cells per side of the pooled attention map of one head.
pub const POOLED_CELLS: usize = 128;
/// Next tokens kept per position.
pub const TOP_K: usize = 5;

/// How a long pass runs and what it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverviewOptions {
    /// Query rows per chunk.
    pub chunk: usize,
    /// Keep `hook_resid_mid` of every block (the logit lens after attention needs it).
    pub keep_mid: bool,
}

/// The hooks kept for every position: `hook_embed`, the stream entering block 0 (which is
/// not `hook_embed` where the embedding is scaled, has positions added or is normed: Gemma,
/// GPT-2, BERT), every block's `hook_resid_post` (the stream entering the next block) and,
/// if asked, `hook_resid_mid`; the norms' scales.
pub fn kept_hooks(keep_mid: bool) -> CaptureFilter {
    let mut kinds = vec![
        HookKind::Embed,
        HookKind::Block(BlockHook::ResidPost),
        HookKind::Block(BlockHook::Ln1Scale),
        HookKind::Block(BlockHook::Ln2Scale),
        HookKind::LnFinalScale,
    ];
    if keep_mid {
        kinds.push(HookKind::Block(BlockHook::ResidMid));
    }
    CaptureFilter::Select { keys: [HookKey::Block(0, BlockHook::ResidPre)].into(), kinds: kinds.into_iter().collect() }
}

/// What each chunk records: the kept hooks plus what is reduced and dropped.
fn chunk_capture(keep_mid: bool) -> CaptureFilter {
    let CaptureFilter::Select { keys, mut kinds } = kept_hooks(keep_mid) else {
        return CaptureFilter::All;
    };
    kinds.extend([
        HookKind::Block(BlockHook::Pattern),
        HookKind::Block(BlockHook::AttnOut),
        HookKind::Block(BlockHook::MlpOut),
        HookKind::Logits,
    ]);
    CaptureFilter::Select { keys, kinds }
}

/// A long pass, kept cheaply.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Every position's kept hooks (see [`kept_hooks`]), the sampled token, the last logits
    /// row and the first non-finite hook, as a one-shot pass would record them.
    pub trace: Trace,
    pub keep_mid: bool,
    /// `-log p(token[i+1])` for each position but the last.
    pub losses: Vec<f32>,
    /// The [`TOP_K`] most likely next tokens at each position (temperature 1).
    pub top: Vec<Vec<Ranked>>,
    /// `[n_layers + 1][pos]`: L2 norm of the stream entering the first block and after each.
    pub residual_norms: Vec<Vec<f32>>,
    /// `[layer][0 = attention, 1 = MLP][pos]`: L2 norm of what each sublayer writes.
    pub write_norms: Vec<[Vec<f32>; 2]>,
    /// Per layer, `[head, q_cell, k_cell]`: the largest attention weight among the (query,
    /// key) pairs of each cell; NaN where every pair is in the future (masked).
    pub attention: Vec<Tensor>,
    /// Positions per cell side of [`Overview::attention`].
    pub cell: usize,
}

impl Overview {
    pub fn n_tokens(&self) -> usize {
        self.trace.n_tokens()
    }

    /// Bytes of the kept tensors and summaries.
    pub fn bytes(&self) -> usize {
        let n = self.n_tokens();
        let norms = self.residual_norms.iter().map(Vec::len).sum::<usize>()
            + self.write_norms.iter().map(|[a, m]| a.len() + m.len()).sum::<usize>();
        let pooled: usize = self.attention.iter().map(|t| t.data.len()).sum();
        self.trace.bytes() + 4 * (self.losses.len() + norms + pooled) + n * TOP_K * std::mem::size_of::<Ranked>()
    }

    /// The residual stream entering block `layer` as the pass had it before the block's own
    /// hooks: what [`crate::long::recompute::recompute`] starts from.
    pub fn resid_in(&self, layer: usize) -> Option<&Arc<Tensor>> {
        let key = if layer == 0 { HookKey::Block(0, BlockHook::ResidPre) } else { HookKey::Block(layer - 1, BlockHook::ResidPost) };
        self.trace.get_shared(key)
    }

    /// [`Overview::resid_in`] of the block a [`Detail`] starts at.
    pub fn resid_for(&self, detail: Detail, n_layers: usize) -> Option<&Arc<Tensor>> {
        self.resid_in(detail.layer(n_layers))
    }

    /// Rows `rows` of the kept tensors as a trace of their own, re-based at position 0 (it
    /// reads like a pass over the window's tokens; the numbers are the long pass's). Each
    /// block's `hook_resid_pre` is the stream entering it (block 0's kept, the others shared
    /// with the previous block's `hook_resid_post`): the values a full capture records unless
    /// an intervention edits `hook_resid_pre` itself.
    pub fn window(&self, rows: Range<usize>, n_layers: usize) -> Result<Trace> {
        let n = self.n_tokens();
        if rows.start >= rows.end || rows.end > n {
            return Err(EngineError::Input(format!("rows {}..{} are not inside the {n} tokens", rows.start, rows.end)));
        }
        let src = &self.trace;
        let mut trace = Trace::new(src.token_ids[rows.clone()].to_vec(), 0, src.temperature);
        trace.sampled = src.sampled;
        trace.last_logits.clone_from(&src.last_logits);
        trace.last_step = src.last_step;
        trace.non_finite = src.non_finite;
        for (key, t) in src.iter() {
            let cut = t.data.slice_axis(ndarray::Axis(0), ndarray::Slice::from(rows.clone())).to_owned();
            let tensor = Arc::new(Tensor::new(t.dims.clone(), cut).ok_or_else(|| EngineError::Shape(format!("`{key}` window")))?);
            trace.insert_shared(key, tensor);
        }
        for l in 1..n_layers {
            if let Some(t) = trace.get_shared(HookKey::Block(l - 1, BlockHook::ResidPost)).cloned() {
                trace.insert_shared(HookKey::Block(l, BlockHook::ResidPre), t);
            }
        }
        Ok(trace)
    }

    /// The per-position summaries for rows `rows`: next-token losses of rows `rows.start..`
    /// (one fewer at the end of the prompt), residual norms and write norms.
    pub fn window_summaries(&self, rows: Range<usize>) -> Summaries {
        let cut = |v: &Vec<f32>| v.get(rows.start.min(v.len())..rows.end.min(v.len())).map_or_else(Vec::new, <[f32]>::to_vec);
        Summaries {
            losses: cut(&self.losses),
            residual_norms: self.residual_norms.iter().map(cut).collect(),
            write_norms: self.write_norms.iter().map(|[a, m]| [cut(a), cut(m)]).collect(),
        }
    }

    /// The logit lens (top-1 id and its probability after each block's attention and MLP)
    /// for rows `rows`; the after-attention rows are empty when `hook_resid_mid` was not kept.
    pub fn lens(&self, model: &crate::load::model::Model, rows: Range<usize>) -> Result<crate::experiments::analysis::LensGrid> {
        let n_layers = model.config.n_layers();
        let window = self.window(rows, n_layers)?;
        (0..n_layers)
            .map(|l| {
                let read = |hook: BlockHook| -> Result<Vec<(u32, f32)>> {
                    let Some(x) = window.get(HookKey::Block(l, hook)).and_then(|t| t.as_2d()) else { return Ok(Vec::new()) };
                    crate::experiments::analysis::lens_top1(model, x)
                };
                Ok([read(BlockHook::ResidMid)?, read(BlockHook::ResidPost)?])
            })
            .collect()
    }
}

/// Per-position summaries of a window (see [`Overview::window_summaries`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summaries {
    pub losses: Vec<f32>,
    pub residual_norms: Vec<Vec<f32>>,
    pub write_norms: Vec<[Vec<f32>; 2]>,
}

/// Stitches chunk after chunk of one hook into a `[pos, …]` tensor.
struct Stitch {
    dims: Vec<Dim>,
    row: Vec<usize>,
    values: Vec<f32>,
}

/// Runs `ids` in chunks of `opts.chunk` rows with `options` (its interventions, sampling,
/// precision and switches; its capture is replaced) and keeps the overview. `progress` sees
/// the tokens done after each chunk; `Break` stops (the result is then `None`).
pub fn run_overview(
    exec: &mut dyn Executor,
    ids: &[u32],
    options: &PassOptions,
    opts: OverviewOptions,
    progress: &mut dyn FnMut(usize) -> ControlFlow<()>,
) -> Result<Option<Overview>> {
    let c = exec.config().clone();
    let (n, n_layers) = (ids.len(), c.n_layers());
    if n == 0 {
        return Err(EngineError::Input("no tokens to run".into()));
    }
    // A two-way model's (BERT's) first rows see the last ones' keys: it runs in one piece.
    let arch = crate::load::arch::Arch::of(&c);
    let two_way = options.switches.no_causal_mask || (0..n_layers).any(|l| !arch.mask(l).is_causal());
    let chunk = if two_way { n } else { opts.chunk.max(1) };
    let cell = n.div_ceil(POOLED_CELLS).max(1);
    let cells = n.div_ceil(cell);
    let mut pooled: Vec<Vec<f32>> = vec![vec![f32::NAN; c.n_heads() * cells * cells]; n_layers];
    let mut stitched: std::collections::BTreeMap<HookKey, Stitch> = Default::default();
    let mut ov = Overview {
        keep_mid: opts.keep_mid,
        residual_norms: vec![Vec::with_capacity(n); n_layers + 1],
        write_norms: (0..n_layers).map(|_| [Vec::with_capacity(n), Vec::with_capacity(n)]).collect(),
        cell,
        ..Overview::default()
    };
    let kept = kept_hooks(opts.keep_mid);
    let chunk_options = PassOptions { capture: chunk_capture(opts.keep_mid), ..options.clone() };
    exec.reset();
    let mut trace = Trace::new(ids.to_vec(), 0, options.sampling.temperature);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        exec.begin(&ids[start..end], chunk_options.clone())?;
        let mut failed = None;
        let mut sink = |out: StepOutput| {
            if let Some(id) = out.sampled {
                trace.sampled = Some(id);
            }
            for (key, t) in out.tensors {
                if let Err(e) = reduce(&mut ov, &mut pooled, &mut stitched, &kept, ids, start, cells, key, &t) {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        };
        exec.stream_to(Step::Sample, 17, &mut sink)?;
        if let Some(e) = failed {
            return Err(e);
        }
        if exec.next_step().is_some() {
            return Ok(None);
        }
        let t = exec.trace();
        trace.non_finite = trace.non_finite.or(t.non_finite);
        trace.last_logits = t.last_logits.clone();
        start = end;
        if progress(end).is_break() {
            return Ok(None);
        }
    }
    for (key, s) in stitched {
        let rows = s.values.len() / s.row.iter().product::<usize>().max(1);
        let shape: Vec<usize> = std::iter::once(rows).chain(s.row.iter().copied()).collect();
        let t = Tensor::from_vec(s.dims, &shape, s.values).ok_or_else(|| EngineError::Shape(format!("`{key}` stitched to {shape:?}")))?;
        trace.insert(key, t);
    }
    trace.last_step = Some(Step::Sample);
    ov.attention = pooled
        .into_iter()
        .map(|p| Tensor::from_vec(vec![Dim::Head, Dim::QPos, Dim::KPos], &[c.n_heads(), cells, cells], p))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| EngineError::Shape("pooled attention".into()))?;
    ov.trace = trace;
    Ok(Some(ov))
}

/// Folds one recorded tensor of the chunk starting at `start` into the overview.
#[allow(clippy::too_many_arguments)]
fn reduce(
    ov: &mut Overview,
    pooled: &mut [Vec<f32>],
    stitched: &mut std::collections::BTreeMap<HookKey, Stitch>,
    kept: &CaptureFilter,
    ids: &[u32],
    start: usize,
    cells: usize,
    key: HookKey,
    t: &Tensor,
) -> Result<()> {
    if kept.wants(key) {
        // Room for every position at once: growing by doubling would hold up to twice the
        // kept stream (and copy it) on the way.
        let entry = stitched.entry(key).or_insert_with(|| Stitch {
            dims: t.dims.clone(),
            row: t.shape()[1..].to_vec(),
            values: Vec::with_capacity(ids.len() * t.shape()[1..].iter().product::<usize>()),
        });
        entry.values.extend(t.data.iter().copied());
    }
    let l2 = |t: &Tensor| -> Vec<f32> {
        t.as_2d().map_or_else(Vec::new, |x| x.outer_iter().map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect())
    };
    match key {
        HookKey::Block(0, BlockHook::ResidPre) => ov.residual_norms[0].extend(l2(t)),
        HookKey::Block(l, BlockHook::ResidPost) => ov.residual_norms[l + 1].extend(l2(t)),
        HookKey::Block(l, BlockHook::AttnOut) => ov.write_norms[l][0].extend(l2(t)),
        HookKey::Block(l, BlockHook::MlpOut) => ov.write_norms[l][1].extend(l2(t)),
        HookKey::Block(l, BlockHook::Pattern) => pool(&mut pooled[l], t, start, cells, ov.cell)?,
        HookKey::Logits => {
            let x = t.as_2d().ok_or_else(|| EngineError::Shape("`hook_logits` is not 2-d".into()))?;
            for (i, row) in x.outer_iter().enumerate() {
                let pos = start + i;
                let row = row.as_slice().map_or_else(|| row.to_vec(), <[f32]>::to_vec);
                if let Some(&next) = ids.get(pos + 1) {
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
                    ov.losses.push(lse - row[next as usize]);
                }
                ov.top.push(top_k(&row, TOP_K, 1.0));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Max-pools a chunk's `[head, q, k]` pattern (queries `start..`) into `[head, cells, cells]`.
fn pool(into: &mut [f32], t: &Tensor, start: usize, cells: usize, cell: usize) -> Result<()> {
    let p = t.as_3d().ok_or_else(|| EngineError::Shape("`attn.hook_pattern` is not 3-d".into()))?;
    let (heads, rows, keys) = p.dim();
    for h in 0..heads {
        for i in 0..rows {
            let q = start + i;
            let base = (h * cells + q / cell) * cells;
            let row = p.slice(ndarray::s![h, i, ..]);
            // Keys after the query are masked (0): they do not count as "attended".
            for (k, &v) in row.iter().enumerate().take((q + 1).min(keys)) {
                let at = &mut into[base + k / cell];
                if at.is_nan() || v > *at {
                    *at = v;
                }
            }
        }
    }
    Ok(())
}
