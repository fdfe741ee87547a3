//! Activation patching, clean → corrupt: run the corrupt prompt again with one activation
//! taken from the clean run, and see how much of the clean answer comes back. With the
//! logit difference `LD = logit[answer] − logit[wrong]` at the last position,
//!
//! `score = (LD_patched − LD_corrupt) / (LD_clean − LD_corrupt)`:
//!
//! 1 means that activation alone carries the difference, 0 that it carries none of it.
//! A patch at block L cannot change the blocks before it, so each patched pass starts at
//! block L from the corrupt run's residual stream (`Executor::begin_at`).

use std::ops::ControlFlow;
use std::str::FromStr;

use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions};
use crate::program::hooks::{BlockHook, HookKey, HookKind};
use crate::exec::intervene::Intervention;
use crate::exec::trace::{CaptureFilter, Trace};

/// Which activation a grid patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchHook {
    /// The residual stream entering block L, one position at a time.
    ResidPre,
    /// Block L's attention output, one position at a time.
    AttnOut,
    /// Block L's MLP output, one position at a time.
    MlpOut,
    /// One head's `z` in block L, at every position.
    Z,
}

impl PatchHook {
    pub const ALL: [PatchHook; 4] = [PatchHook::ResidPre, PatchHook::AttnOut, PatchHook::MlpOut, PatchHook::Z];

    pub fn name(self) -> &'static str {
        match self {
            PatchHook::ResidPre => "resid_pre",
            PatchHook::AttnOut => "attn_out",
            PatchHook::MlpOut => "mlp_out",
            PatchHook::Z => "z",
        }
    }

    pub fn block_hook(self) -> BlockHook {
        match self {
            PatchHook::ResidPre => BlockHook::ResidPre,
            PatchHook::AttnOut => BlockHook::AttnOut,
            PatchHook::MlpOut => BlockHook::MlpOut,
            PatchHook::Z => BlockHook::Z,
        }
    }

    /// Columns of the grid: positions, or heads for `z`.
    pub fn columns(self, n_tokens: usize, n_heads: usize) -> usize {
        if self == PatchHook::Z { n_heads } else { n_tokens }
    }
}

impl FromStr for PatchHook {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|h| h.name() == s).ok_or_else(|| format!("`{s}` is not a patching hook (resid_pre, attn_out, mlp_out or z)"))
    }
}

/// A clean/corrupt pair and the two tokens whose logit difference is measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchSetup {
    pub clean: Vec<u32>,
    pub corrupt: Vec<u32>,
    /// The clean run's answer (e.g. " Paris").
    pub answer: u32,
    /// The corrupt run's answer (e.g. " Rome").
    pub wrong: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchGrid {
    pub hook: PatchHook,
    pub clean_ld: f32,
    pub corrupt_ld: f32,
    /// `[n_layers][positions]`, or `[n_layers][heads]` for `z`.
    pub scores: Vec<Vec<f32>>,
}

/// `logit[answer] − logit[wrong]` at the last position of a finished pass.
fn logit_difference(trace: &Trace, s: &PatchSetup) -> Result<f32> {
    let l = trace.last_logits.as_ref().ok_or_else(|| EngineError::Input("the pass did not reach its Sample step".into()))?;
    Ok(l[s.answer as usize] - l[s.wrong as usize])
}

/// Progress of a grid: `(passes done, passes in all)`; `Break` cancels.
pub type Progress<'a> = dyn FnMut(usize, usize) -> ControlFlow<()> + 'a;

/// The clean and corrupt runs a grid needs: the patched hook in the clean run, the residual
/// stream entering every block in the corrupt run.
pub struct PatchRuns {
    clean: Trace,
    corrupt: Trace,
    clean_ld: f32,
    corrupt_ld: f32,
}

impl PatchRuns {
    pub fn new(exec: &mut dyn Executor, setup: &PatchSetup) -> Result<Self> {
        check(exec, setup)?;
        let kinds = PatchHook::ALL.map(|h| HookKind::Block(h.block_hook()));
        exec.reset();
        let clean = exec.forward(&setup.clean, PassOptions::capture(CaptureFilter::kinds(kinds)))?;
        exec.reset();
        let corrupt = exec.forward(&setup.corrupt, PassOptions::capture(CaptureFilter::kinds([HookKind::Block(BlockHook::ResidPre)])))?;
        let (clean_ld, corrupt_ld) = (logit_difference(&clean, setup)?, logit_difference(&corrupt, setup)?);
        Ok(Self { clean, corrupt, clean_ld, corrupt_ld })
    }

    pub fn clean_ld(&self) -> f32 {
        self.clean_ld
    }

    pub fn corrupt_ld(&self) -> f32 {
        self.corrupt_ld
    }

    /// The score of one patched pass: `hook` of block `layer`, at `column` (a position, or a
    /// head for `z`).
    pub fn score(&self, exec: &mut dyn Executor, setup: &PatchSetup, hook: PatchHook, layer: usize, column: usize) -> Result<f32> {
        let key = HookKey::Block(layer, hook.block_hook());
        let patch = Intervention::patch_from(&self.clean, key)?;
        let patch = if hook == PatchHook::Z { patch.heads(vec![column]) } else { patch.positions(vec![column]) };
        let resid = HookKey::Block(layer, BlockHook::ResidPre);
        let start = self.corrupt.get(resid).ok_or_else(|| EngineError::Input(format!("the corrupt run has no `{resid}`")))?;
        let options = PassOptions { interventions: vec![patch], ..PassOptions::capture(CaptureFilter::Nothing) };
        exec.begin_at(&setup.corrupt, options, layer, start)?;
        exec.run_to_end()?;
        let ld = logit_difference(exec.trace(), setup)?;
        Ok((ld - self.corrupt_ld) / (self.clean_ld - self.corrupt_ld))
    }
}

fn check(exec: &dyn Executor, s: &PatchSetup) -> Result<()> {
    if s.clean.len() != s.corrupt.len() {
        return Err(EngineError::Input(format!(
            "the clean prompt has {} tokens and the corrupt one {}: patching needs prompts of the same length",
            s.clean.len(),
            s.corrupt.len()
        )));
    }
    let vocab = exec.config().vocab_size;
    if s.answer as usize >= vocab || s.wrong as usize >= vocab {
        return Err(EngineError::Input(format!("answer or wrong token outside the vocabulary ({vocab})")));
    }
    if s.answer == s.wrong {
        return Err(EngineError::Input("the answer and the wrong token are the same: their logit difference is always 0".into()));
    }
    Ok(())
}

/// One grid over every block and every column. `None` when `progress` cancelled it.
pub fn patch_grid(exec: &mut dyn Executor, setup: &PatchSetup, hook: PatchHook, progress: &mut Progress<'_>) -> Result<Option<PatchGrid>> {
    let runs = PatchRuns::new(exec, setup)?;
    if runs.clean_ld == runs.corrupt_ld {
        return Err(EngineError::Input(format!(
            "the clean and corrupt runs have the same logit difference ({}): nothing to restore",
            runs.clean_ld
        )));
    }
    let c = exec.config();
    let (n_layers, columns) = (c.n_layers(), hook.columns(setup.corrupt.len(), c.n_heads()));
    let total = n_layers * columns;
    let mut scores = vec![vec![0.0; columns]; n_layers];
    for (layer, row) in scores.iter_mut().enumerate() {
        for (column, cell) in row.iter_mut().enumerate() {
            if progress(layer * columns + column, total).is_break() {
                return Ok(None);
            }
            *cell = runs.score(exec, setup, hook, layer, column)?;
        }
    }
    let _ = progress(total, total);
    Ok(Some(PatchGrid { hook, clean_ld: runs.clean_ld, corrupt_ld: runs.corrupt_ld, scores }))
}
