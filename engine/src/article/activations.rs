//! The article's ReLU next to Llama's SiLU and SwiGLU (§1.3): the curves, and the gate
//! values of a real pass placed on them. Reads `mlp.hook_pre` / `hook_pre_linear` off a
//! trace; the activation itself is the CPU reference's `silu`, so the picture and the pass
//! cannot disagree.

use crate::exec::cpu::ops::silu;
use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey};
use crate::exec::trace::Trace;

/// `max(0, x)`: the 2017 Transformer's feed-forward activation.
pub fn relu(x: f32) -> f32 {
    x.max(0.0)
}

/// ReLU and SiLU sampled on `n` evenly spaced points of `[lo, hi]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    pub x: Vec<f32>,
    pub relu: Vec<f32>,
    pub silu: Vec<f32>,
}

pub fn curves(lo: f32, hi: f32, n: usize) -> Curves {
    let n = n.max(2);
    let x: Vec<f32> = (0..n)
        .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
        .collect();
    Curves {
        relu: x.iter().map(|&v| relu(v)).collect(),
        silu: x.iter().map(|&v| silu(v)).collect(),
        x,
    }
}

/// One position's MLP gate in one layer, and what each activation makes of it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateValues {
    /// `mlp.hook_pre` at the position: `[d_mlp]`.
    pub gate: Vec<f32>,
    /// `mlp.hook_pre_linear`: `[d_mlp]`.
    pub up: Vec<f32>,
    /// `silu(gate)`.
    pub silu: Vec<f32>,
    /// `relu(gate)`.
    pub relu: Vec<f32>,
    /// SwiGLU's output `silu(gate) ⊙ up` (equals `mlp.hook_post`).
    pub swiglu: Vec<f32>,
    /// The share of gates below zero: what ReLU would silence entirely.
    pub negative_share: f32,
    /// Σ|silu(g)| over negative gates / Σ|silu(g)|: what SiLU lets through that ReLU drops.
    pub negative_mass: f32,
}

/// The gate values of `layer` at `position`, with ReLU, SiLU and SwiGLU applied.
pub fn gate_values(trace: &Trace, layer: usize, position: usize) -> Result<GateValues> {
    let row = |hook: BlockHook| -> Result<Vec<f32>> {
        let key = HookKey::Block(layer, hook);
        let t = trace
            .get(key)
            .and_then(|t| t.as_2d())
            .ok_or_else(|| EngineError::Input(format!("the trace did not capture `{key}`")))?;
        if position >= t.nrows() {
            return Err(EngineError::Input(format!(
                "position {position} is past the {} captured in `{key}`",
                t.nrows()
            )));
        }
        Ok(t.row(position).to_vec())
    };
    let gate = row(BlockHook::MlpPre)?;
    let up = row(BlockHook::MlpPreLinear)?;
    let silu_v: Vec<f32> = gate.iter().map(|&g| silu(g)).collect();
    let relu_v: Vec<f32> = gate.iter().map(|&g| relu(g)).collect();
    let swiglu = silu_v.iter().zip(&up).map(|(s, u)| s * u).collect();
    let negative = gate.iter().filter(|&&g| g < 0.0).count();
    let total: f32 = silu_v.iter().map(|v| v.abs()).sum();
    let neg: f32 = gate
        .iter()
        .zip(&silu_v)
        .filter(|(g, _)| **g < 0.0)
        .map(|(_, s)| s.abs())
        .sum();
    Ok(GateValues {
        negative_share: negative as f32 / gate.len().max(1) as f32,
        negative_mass: if total > 0.0 { neg / total } else { 0.0 },
        gate,
        up,
        silu: silu_v,
        relu: relu_v,
        swiglu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_and_relu_hit_known_values() {
        // silu(x) = x·σ(x): σ(1) = 0.7310586, σ(−1) = 0.26894142 (reference values).
        let c = curves(-1.0, 1.0, 3);
        assert_eq!(c.x, vec![-1.0, 0.0, 1.0]);
        assert_eq!(c.relu, vec![0.0, 0.0, 1.0]);
        assert!((c.silu[0] + 0.268_941_42).abs() < 1e-6, "{}", c.silu[0]);
        assert_eq!(c.silu[1], 0.0);
        assert!((c.silu[2] - 0.731_058_6).abs() < 1e-6, "{}", c.silu[2]);
        // SiLU's minimum is ≈ −0.2785 at x ≈ −1.2785: negative inputs are not all silenced.
        let fine = curves(-4.0, 0.0, 4001);
        let min = fine.silu.iter().copied().fold(f32::INFINITY, f32::min);
        assert!((min + 0.278_464_5).abs() < 1e-4, "{min}");
    }
}
