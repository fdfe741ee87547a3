//! "Check against the CPU reference": a GPU pass is run again on the CPU f32 reference (the
//! oracle for every number) and compared hook by hook in forward order, with DESIGN.md §6's
//! bounds. The first hook out of bounds is named with its layer, op, NMSE and max |Δ|, so a
//! wrong GPU number is never silently taken for the truth. A NaN on the GPU, or an infinity
//! where the reference has a number (or the other way round), is a divergence whatever the
//! NMSE (RELIABILITY.md rows 7 and 25).

use std::fmt;
use std::sync::Arc;

use crate::exec::cpu::CpuExecutor;
use crate::error::{EngineError, Result};
use crate::exec::executor::{Executor, PassOptions};
use crate::program::hooks::HookKey;
use crate::load::model::Model;
use crate::program::op::Step;
use crate::exec::trace::Trace;

/// The NMSE a whole GPU f32 pass may differ from the CPU reference by, at any hook: the
/// tests' bound (TOLERANCES.md `SMOLLM2_PASS_HOOK`, 1e-9, where 8.8e-11 is measured). DESIGN
/// §6's per-op 5e-4 would let a wrong kernel through that the tests would catch.
pub const F32_PASS_NMSE: f64 = 1e-9;

pub fn f32_bound(_key: HookKey) -> f64 {
    F32_PASS_NMSE
}

/// f16 weights: the GPU computes with every matrix rounded to f16 (a relative error of
/// ~2⁻¹² per weight), so every hook drifts from the f32 reference a little; 1e-3 keeps a real
/// fault (a wrong kernel gives NMSE near 1) apart from that drift.
pub fn f16_bound(key: HookKey) -> f64 {
    f32_bound(key).max(1e-3)
}

/// One hook of the two runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HookDiff {
    pub key: HookKey,
    /// `Σ(gpu − cpu)² / Σ cpu²` over entries finite in both.
    pub nmse: f64,
    /// Largest |gpu − cpu| over entries finite in both.
    pub max_abs: f32,
    /// The bound this hook is held to.
    pub bound: f64,
    /// NaN entries on the GPU.
    pub gpu_nan: usize,
    /// Entries finite on one side and not on the other, or infinities of opposite sign.
    pub non_finite_mismatch: usize,
    /// NaN entries in the reference (NaN weights give NaN on both sides).
    pub cpu_nan: usize,
}

impl HookDiff {
    pub fn diverges(&self) -> bool {
        self.gpu_nan > 0 || self.non_finite_mismatch > 0 || self.nmse > self.bound
    }

    /// "blocks.3.attn.hook_pattern (layer 3, op softmax)".
    pub fn location(&self) -> String {
        match Step::producing(self.key) {
            Step::Layer(l, op) => format!("{} (layer {l}, op {})", self.key, op.name()),
            step => format!("{} (step {step})", self.key),
        }
    }
}

/// Compares two tensors' values (same length).
fn diff(key: HookKey, gpu: &[f32], cpu: &[f32], bound: f64) -> HookDiff {
    let (mut num, mut den, mut max_abs) = (0.0f64, 0.0f64, 0.0f32);
    let (mut gpu_nan, mut cpu_nan, mut mismatch) = (0, 0, 0);
    for (&g, &c) in gpu.iter().zip(cpu) {
        if g.is_finite() && c.is_finite() {
            num += f64::from(g - c).powi(2);
            den += f64::from(c).powi(2);
            max_abs = max_abs.max((g - c).abs());
            continue;
        }
        if c.is_nan() {
            cpu_nan += 1;
        }
        if g.is_nan() {
            gpu_nan += 1;
        } else if c.is_nan() || g != c {
            // A number where the reference has NaN, one side infinite and the other finite,
            // or ±∞ against ∓∞. (Masked scores are −∞ on both sides and agree.)
            mismatch += 1;
        }
    }
    HookDiff { key, nmse: num / den.max(1e-30), max_abs, bound, gpu_nan, non_finite_mismatch: mismatch, cpu_nan }
}

/// Every hook both runs recorded, and what that says.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceCheck {
    /// In forward order.
    pub hooks: Vec<HookDiff>,
    /// The next token each run chose (GPU, CPU).
    pub sampled: (Option<u32>, Option<u32>),
}

impl ReferenceCheck {
    /// The first hook out of bounds, in forward order.
    pub fn first_divergence(&self) -> Option<&HookDiff> {
        self.hooks.iter().find(|h| h.diverges())
    }

    /// The largest NMSE and max |Δ| over all hooks.
    pub fn worst(&self) -> (f64, f32) {
        // Two folds, not one over a (f64, f32) pair: rustc 1.95's LLVM crashes (SIGSEGV in
        // instruction selection) compiling that one.
        let nmse = self.hooks.iter().map(|h| h.nmse).fold(0.0, f64::max);
        let max_abs = self.hooks.iter().map(|h| h.max_abs).fold(0.0, f32::max);
        (nmse, max_abs)
    }

    pub fn agrees(&self) -> bool {
        self.first_divergence().is_none() && self.sampled.0 == self.sampled.1
    }
}

impl fmt::Display for ReferenceCheck {
    /// One line for the user.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first_divergence() {
            Some(h) => {
                write!(f, "the GPU diverges from the CPU reference first at {}: NMSE {:.2e} (bound {:.0e}), max |Δ| {:.3e}", h.location(), h.nmse, h.bound, h.max_abs)?;
                if h.gpu_nan > 0 {
                    write!(f, ", {} NaN on the GPU", h.gpu_nan)?;
                    if h.cpu_nan > 0 {
                        write!(f, " ({} in the reference too: the weights hold NaN)", h.cpu_nan)?;
                    }
                }
                if h.non_finite_mismatch > 0 {
                    write!(f, ", {} entries finite on one side only", h.non_finite_mismatch)?;
                }
                write!(f, "; do not trust the GPU's numbers: run on the CPU")
            }
            None if self.sampled.0 != self.sampled.1 => write!(
                f,
                "the GPU and the CPU reference agree at every hook but chose different next tokens ({:?} vs {:?}): a near-tie",
                self.sampled.0, self.sampled.1
            ),
            None => {
                let (nmse, max_abs) = self.worst();
                write!(f, "the GPU matches the CPU reference at all {} hooks (worst NMSE {nmse:.1e}, max |Δ| {max_abs:.1e})", self.hooks.len())
            }
        }
    }
}

/// Compares `gpu` with `cpu` at every hook both recorded, each held to `bound(key)`.
pub fn compare_with_reference(gpu: &Trace, cpu: &Trace, bound: &dyn Fn(HookKey) -> f64) -> Result<ReferenceCheck> {
    if gpu.token_ids != cpu.token_ids || gpu.pos_offset != cpu.pos_offset {
        return Err(EngineError::Input("the GPU and CPU runs cover different tokens: compare runs of the same input".into()));
    }
    let mut hooks = Vec::new();
    for key in gpu.keys() {
        let (Some(g), Some(c)) = (gpu.get(key), cpu.get(key)) else { continue };
        if g.shape() != c.shape() {
            return Err(EngineError::Shape(format!("`{key}` is {} on the GPU and {} on the CPU", g.dims_string(), c.dims_string())));
        }
        let (g, c): (Vec<f32>, Vec<f32>) = (g.data.iter().copied().collect(), c.data.iter().copied().collect());
        hooks.push(diff(key, &g, &c, bound(key)));
    }
    Ok(ReferenceCheck { hooks, sampled: (gpu.sampled, cpu.sampled) })
}

/// Runs the pass that produced `gpu` (its tokens, under `options`: the same interventions,
/// switches, rounding and capture) on the CPU reference, and compares.
pub fn check_against_cpu(model: &Arc<Model>, gpu: &Trace, options: &PassOptions, bound: &dyn Fn(HookKey) -> f64) -> Result<ReferenceCheck> {
    if gpu.pos_offset != 0 {
        return Err(EngineError::Input(
            "the check runs a whole pass from the first token; this pass continued a KV cache: run the prompt again".into(),
        ));
    }
    if gpu.keys().next().is_none() {
        return Err(EngineError::Input("the pass recorded no tensors to check".into()));
    }
    let cpu = CpuExecutor::new(Arc::clone(model)).forward(&gpu.token_ids, options.clone())?;
    compare_with_reference(gpu, &cpu, bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::hooks::BlockHook;

    #[test]
    fn nan_and_one_sided_infinities_diverge_but_a_shared_mask_does_not() {
        let key = HookKey::Block(0, BlockHook::AttnScores);
        let same = diff(key, &[1.0, f32::NEG_INFINITY], &[1.0, f32::NEG_INFINITY], 1e-6);
        assert!(!same.diverges(), "{same:?}");
        let nan = diff(key, &[f32::NAN, 1.0], &[0.5, 1.0], 1e-6);
        assert!(nan.diverges() && nan.gpu_nan == 1, "{nan:?}");
        let inf = diff(key, &[f32::INFINITY, 1.0], &[0.5, 1.0], 1e-6);
        assert!(inf.diverges() && inf.non_finite_mismatch == 1, "{inf:?}");
        let off = diff(key, &[1.1, 1.0], &[1.0, 1.0], 1e-6);
        assert!(off.diverges() && (off.max_abs - 0.1).abs() < 1e-6 && (off.nmse - 0.005).abs() < 1e-6, "{off:?}");
        assert_eq!(f32_bound(HookKey::Block(2, BlockHook::Q)), 1e-9);
        assert_eq!(f32_bound(HookKey::Block(2, BlockHook::Pattern)), 1e-9);
    }
}
