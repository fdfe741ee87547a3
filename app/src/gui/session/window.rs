//! A long prompt in the session: the overview of every position (shared with the worker),
//! the window of rows the views show, and the blocks recomputed for that window.
//!
//! The views keep reading `Session::trace`; for a long pass it is the window's trace: rows
//! `start..start + rows` of the kept tensors (`Overview::window`), re-based at position 0,
//! plus the recomputed tensors of the block the views are on (and of the output head), their
//! attention cut to the window's keys. `pos_base` turns a row back into its position.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use glassbox_engine::long::budget::{self, WINDOW_ROWS};
use glassbox_engine::long::overview::{Overview, OverviewOptions};
use glassbox_engine::long::recompute::{Detail, KeyCut};
use glassbox_engine::{Step, Trace};

use super::Session;
use crate::gui::worker::{Analysis, Command, Reply};

/// A long pass as the session holds it.
#[derive(Default)]
pub struct LongView {
    pub ids: Vec<u32>,
    /// Display text of every token (the window's are also `Session::token_texts`).
    pub texts: Vec<String>,
    /// Tokens the overview has run so far.
    pub done: usize,
    pub overview: Option<Arc<Overview>>,
    pub options: Option<OverviewOptions>,
    /// The window: rows `start..start + rows`.
    pub start: usize,
    pub rows: usize,
    /// Recomputed for this window, attention cut to it.
    held: BTreeMap<Detail, (Trace, KeyCut)>,
    /// The request in flight: (number, what, rows).
    pending: Option<(u64, Detail, Range<usize>)>,
    /// A request that failed for this window (not asked again until the window changes).
    failed: Option<Detail>,
}

impl LongView {
    pub fn n_tokens(&self) -> usize {
        self.ids.len()
    }

    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.rows
    }

    /// What the key cut of `layer`'s attention left out, if that block is held.
    pub fn key_cut(&self, layer: usize) -> Option<&KeyCut> {
        self.held.get(&Detail::Layer(layer)).map(|(_, cut)| cut)
    }
}

impl Session {
    pub fn is_long(&self) -> bool {
        self.long.is_some()
    }

    /// A long pass's overview is still running (its bar shows the progress).
    pub fn long_running(&self) -> bool {
        self.long.as_ref().is_some_and(|l| l.overview.is_none())
    }

    /// Position of the trace's row 0 (the window's first row; 0 for a full capture).
    pub fn pos_base(&self) -> usize {
        self.long.as_ref().map_or(0, |l| l.start)
    }

    /// Bytes held for the views: the overview (shared with the worker: counted once) and the
    /// window's trace, each tensor once however many keys share it.
    pub fn trace_bytes(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut bytes: usize = self
            .trace
            .iter()
            .filter(|(_, t)| seen.insert(Arc::as_ptr(t)))
            .map(|(_, t)| t.data.len() * 4)
            .sum();
        if let Some(l) = &self.long {
            bytes += l.overview.as_ref().map_or(0, |o| o.bytes());
            bytes += l.held.values().filter_map(|(_, c)| c.weight_before.as_ref()).map(|t| t.data.len() * 4).sum::<usize>();
        }
        bytes
    }

    /// The block being recomputed for the views, if any.
    pub fn detail_pending(&self) -> Option<Detail> {
        self.long.as_ref().and_then(|l| l.pending.as_ref()).map(|(_, d, _)| *d)
    }

    /// Moves the window so it starts at `start` (clamped); the selected position stays put
    /// if it is still inside, the recomputed blocks are dropped.
    pub fn set_window_start(&mut self, start: usize) {
        let Some(l) = &mut self.long else { return };
        let n = l.n_tokens();
        let start = start.min(n.saturating_sub(l.rows));
        if start == l.start {
            return;
        }
        let selected = l.start + self.sel.position;
        l.start = start;
        l.held.clear();
        l.pending = None;
        l.failed = None;
        self.sel.position = selected.clamp(start, start + l.rows - 1) - start;
        self.sel.key_position = None;
        self.lens = None;
        self.lens_asked = false;
        self.rebuild_window();
    }

    /// Asks the worker for `detail` of the current window, unless it is held or on its way.
    /// The window narrows when the budget leaves too little room for it.
    pub fn want_detail(&mut self, detail: Detail) {
        let c = self.model.config.clone();
        let budget_left = self.budget.saturating_sub(self.trace_bytes() as u64);
        let Some(l) = &mut self.long else { return };
        if l.overview.is_none() {
            return;
        }
        if l.held.contains_key(&detail) || l.failed == Some(detail) || l.pending.as_ref().is_some_and(|(_, d, r)| *d == detail && *r == l.range()) {
            return;
        }
        // A new block replaces the one held (the output head stays).
        let replaced: usize = l
            .held
            .iter()
            .filter(|(d, _)| matches!((d, detail), (Detail::Layer(_), Detail::Layer(_))))
            .map(|(_, (t, _))| t.bytes())
            .sum();
        let left = budget_left + replaced as u64;
        let end_keys = l.start + l.rows;
        let Some(rows) = budget::window_rows(&c, detail, end_keys, l.rows, left) else {
            l.failed = Some(detail);
            let msg = format!(
                "Not even {} rows of {detail:?} fit in the memory budget ({} left of {}): raise it under View → Memory budget.",
                budget::MIN_WINDOW_ROWS,
                budget::human(left),
                budget::human(self.budget)
            );
            self.notices.push(msg);
            return;
        };
        if rows < l.rows {
            self.notices.push(format!(
                "The window was narrowed from {} to {rows} rows so recomputing {detail:?} stays within the memory budget ({}).",
                l.rows,
                budget::human(self.budget)
            ));
            l.rows = rows;
            l.held.clear();
            self.sel.position = self.sel.position.min(rows - 1);
            self.rebuild_window();
            return self.want_detail(detail);
        }
        let req = self.worker.new_detail();
        let range = l.range();
        l.pending = Some((req, detail, range.clone()));
        let pass = self.pass;
        self.worker.send(Command::Detail { pass, req, detail, rows: range });
    }

    /// The detail the views need now: the output head at the final steps or in the Output
    /// view, else the block the one-layer views show.
    pub fn detail_for_view(&self, output_view: bool) -> Detail {
        match self.cursor_step() {
            Step::LnFinal | Step::Logits | Step::Probs | Step::Sample => Detail::Output,
            _ if output_view => Detail::Output,
            _ => Detail::Layer(self.view_layer()),
        }
    }

    /// Long-pass replies; anything else is handed back.
    pub(super) fn apply_long(&mut self, reply: Reply) -> Option<Reply> {
        match reply {
            Reply::Begun { pass, token_ids, temperature, long: true, .. } if pass == self.pass => {
                if self.generating {
                    self.generated.append(&mut self.streaming);
                    self.generating = false;
                }
                let texts: Vec<String> = token_ids.iter().map(|&id| self.token_text(id)).collect();
                let rows = token_ids.len().min(WINDOW_ROWS);
                let start = token_ids.len() - rows;
                self.trace = Trace::new(token_ids[start..].to_vec(), 0, temperature);
                self.token_texts = texts[start..].to_vec();
                self.trace_pass = self.fresh_generation();
                self.computed = None;
                self.analysis = None;
                self.sel.position = rows - 1;
                self.sel.key_position = None;
                self.long = Some(LongView { ids: token_ids, texts, start, rows, ..LongView::default() });
                None
            }
            Reply::Progress { pass, done, .. } if pass == self.pass => {
                if let Some(l) = &mut self.long {
                    l.done = done;
                }
                None
            }
            Reply::Overview { pass, overview, options } if pass == self.pass => {
                if let Some(l) = &mut self.long {
                    l.done = l.n_tokens();
                    l.overview = Some(overview);
                    l.options = Some(options);
                }
                self.rebuild_window();
                self.computed = Some(self.last_index());
                None
            }
            // The overview's summaries are per window (`rebuild_window`).
            Reply::Analysis { pass, .. } if pass == self.pass && self.is_long() => None,
            Reply::Detail { pass, req, detail, rows, result } if pass == self.pass => {
                let Some(l) = &mut self.long else { return None };
                if l.pending.as_ref().is_none_or(|(r, _, _)| *r != req) || rows != l.range() {
                    return None;
                }
                l.pending = None;
                match result {
                    Ok(got) => {
                        if matches!(detail, Detail::Layer(_)) {
                            l.held.retain(|d, _| !matches!(d, Detail::Layer(_)));
                        }
                        l.held.insert(detail, *got);
                        self.rebuild_window();
                    }
                    Err(e) => {
                        l.failed = Some(detail);
                        self.notices.push(format!("Recomputing {detail:?} for positions {}–{}: {e}", rows.start, rows.end - 1));
                    }
                }
                None
            }
            other => Some(other),
        }
    }

    /// The views' trace for the window: the overview's rows, then the held blocks on top.
    fn rebuild_window(&mut self) {
        let n_layers = self.n_layers();
        let Some(l) = &self.long else { return };
        let range = l.range();
        self.token_texts = l.texts[range.clone()].to_vec();
        let Some(ov) = &l.overview else {
            self.trace = Trace::new(l.ids[range].to_vec(), 0, self.trace.temperature);
            self.trace_pass = self.fresh_generation();
            return;
        };
        let mut trace = match ov.window(range.clone(), n_layers) {
            Ok(t) => t,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        for (held, _) in l.held.values() {
            for (key, t) in held.iter() {
                trace.insert_shared(key, Arc::clone(t));
            }
        }
        let s = ov.window_summaries(range);
        self.analysis = Some(Analysis {
            losses: Some(s.losses),
            residual_norms: Some(s.residual_norms),
            write_norms: Some(s.write_norms),
        });
        self.trace = trace;
        self.trace_pass = self.fresh_generation();
    }
}
