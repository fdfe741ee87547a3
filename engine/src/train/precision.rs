//! Mixed precision for training (article §3.1): f32 master weights and optimizer state,
//! bf16 for what the passes compute with. `Bf16` rounds, in the trainer:
//! - the weights each step computes with (a bf16 copy of the f32 master weights),
//! - every activation the forward pass saves for the backward (the forward `Trace`),
//! - every activation gradient the backward produces, after each op.
//!
//! Parameter gradients accumulate in f32 and AdamW updates the f32 master copy. The CPU
//! executor itself still computes each op in f32 between those roundings; once the executor
//! can round activations after every op, `round_trace` becomes that option.

use ndarray::{ArrayBase, DataMut, Dimension};

use crate::exec::trace::Trace;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }

    /// Rounds `a` in place to this precision (f32: unchanged).
    pub fn round<S: DataMut<Elem = f32>, D: Dimension>(self, a: &mut ArrayBase<S, D>) {
        if self == Precision::Bf16 {
            a.mapv_inplace(bf16);
        }
    }
}

/// Round to the nearest bf16 (ties to even), back in f32: 8 bits of mantissa, f32's range.
pub fn bf16(v: f32) -> f32 {
    half::bf16::from_f32(v).to_f32()
}

/// The forward trace with every saved tensor rounded to `precision`.
pub fn round_trace(trace: Trace, precision: Precision) -> Trace {
    if precision == Precision::F32 {
        return trace;
    }
    let mut out = trace.clone();
    for key in trace.keys() {
        if let Some(t) = trace.get(key) {
            let mut t = t.clone();
            precision.round(&mut t.data);
            out.insert(key, t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_keeps_eight_bits_of_mantissa() {
        assert_eq!(bf16(1.0), 1.0);
        assert_eq!(bf16(1.0 + 1.0 / 256.0), 1.0, "halfway rounds to even");
        assert_eq!(bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert!((bf16(std::f32::consts::PI) - std::f32::consts::PI).abs() < 0.01);
        assert_eq!(bf16(1e30) / 1e30, bf16(1e30) / 1e30, "f32 range");
    }
}
