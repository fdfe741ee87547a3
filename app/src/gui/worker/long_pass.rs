//! Long prompts on the worker: the engine's plan picks a full capture or the overview
//! (`budget::plan`); an overview runs in chunks with progress, and a block's detail for the
//! window the views show is recomputed when the UI asks for it (`recompute`). On the GPU
//! each of these reads back only what it records: the kept tensors and the reductions, or
//! one block's tensors for the window.

use std::ops::{ControlFlow, Range};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use glassbox_engine::long::budget::{self, Plan};
use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::long::overview::{Overview, OverviewOptions, run_overview};
use glassbox_engine::long::recompute::{self, Detail};

use super::{Analysis, Out, Reply, WorkerCore};

/// What the worker keeps of the last long pass.
pub struct LongState {
    pub pass: u64,
    pub overview: Arc<Overview>,
    pub ids: Vec<u32>,
    pub options: PassOptions,
}

impl WorkerCore {
    /// Runs `ids` as the budget allows: a full capture, the overview, or a refusal that says
    /// what would fit.
    pub(super) fn run_planned(&mut self, pass: u64, ids: &[u32], options: PassOptions, budget: u64, out: &mut Out<'_>) -> Result<(), String> {
        let c = &self.model.config;
        match budget::plan(c, ids.len(), budget) {
            Plan::Full => self.run_pass(pass, ids, options, out),
            Plan::Overview(opts) => self.run_long(pass, ids, options, opts, out),
            Plan::Refused { need } => Err(format!(
                "{} tokens need a memory budget of at least {} for the overview and a window (it is {}): raise it under View → Memory budget, or shorten the prompt",
                ids.len(),
                budget::human(need),
                budget::human(budget)
            )),
        }
    }

    fn run_long(&mut self, pass: u64, ids: &[u32], options: PassOptions, opts: OverviewOptions, out: &mut Out<'_>) -> Result<(), String> {
        self.finished = None;
        self.long = None;
        out(Reply::Begun {
            pass,
            token_ids: ids.to_vec(),
            pos_offset: 0,
            temperature: options.sampling.temperature,
            long: true,
        });
        let latest = Arc::clone(&self.latest);
        let mut progress = |done: usize| {
            out(Reply::Progress { pass, done });
            if latest.load(Ordering::Acquire) == pass { ControlFlow::Continue(()) } else { ControlFlow::Break(()) }
        };
        let overview = run_overview(&mut *self.exec, ids, &options, opts, &mut progress).map_err(|e| e.to_string())?;
        let Some(overview) = overview else { return Ok(()) };
        if let Some(bad) = overview.trace.non_finite {
            out(Reply::Notice(bad.to_string()));
        }
        let overview = Arc::new(overview);
        let analysis = Analysis {
            losses: Some(overview.losses.clone()),
            residual_norms: Some(overview.residual_norms.clone()),
            write_norms: Some(overview.write_norms.clone()),
        };
        out(Reply::Overview { pass, overview: Arc::clone(&overview), options: opts });
        out(Reply::Finished { pass, cache_len: self.exec.cache_len() });
        out(Reply::Analysis { pass, analysis });
        self.long = Some(LongState { pass, overview, ids: ids.to_vec(), options });
        Ok(())
    }

    /// Recomputes `detail` for `rows` of the long pass `pass`, unless a newer request came.
    pub(super) fn detail(&mut self, pass: u64, req: u64, detail: Detail, rows: Range<usize>, out: &mut Out<'_>) {
        if self.latest_detail.load(Ordering::Acquire) != req {
            return;
        }
        let Some(long) = self.long.as_ref().filter(|l| l.pass == pass) else { return };
        let n_layers = self.model.config.n_layers();
        let result = long
            .overview
            .resid_for(detail, n_layers)
            .ok_or_else(|| "the long pass kept no residual stream for this block".to_string())
            .and_then(|resid| recompute::recompute(&mut *self.exec, &long.ids, resid, detail, rows.clone(), &long.options).map_err(|e| e.to_string()))
            .and_then(|mut trace| {
                let cut = recompute::cut_keys(&mut trace).map_err(|e| e.to_string())?;
                Ok(Box::new((trace, cut)))
            });
        out(Reply::Detail { pass, req, detail, rows, result });
    }

    /// The logit lens for the window `rows` of the long pass `pass`.
    pub(super) fn window_lens(&mut self, pass: u64, rows: Range<usize>, out: &mut Out<'_>) {
        let Some(long) = self.long.as_ref().filter(|l| l.pass == pass) else { return };
        let grid = long.overview.lens(&self.model, rows).map_err(|e| e.to_string());
        out(Reply::Lens { pass, grid });
    }
}
