//! LayerNorm (the article, §1.4) next to RMSNorm (Llama) on the same residual vector.
//! RMSNorm is the CPU reference's own `rmsnorm`; LayerNorm is written out here with γ = 1 and
//! β = 0 (this model has no LayerNorm weights to borrow), so the two differ only in the
//! mean subtraction and the divisor.

use ndarray::{Array1, ArrayView1, Axis};

use crate::exec::cpu::ops;

/// `(x − mean) / √(var + eps)` (population variance, as torch's `LayerNorm`), with its mean
/// and divisor.
pub fn layer_norm(x: &[f32], eps: f32) -> (f32, f32, Vec<f32>) {
    let n = x.len().max(1) as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let std = (var + eps).sqrt();
    (mean, std, x.iter().map(|v| (v - mean) / std).collect())
}

/// Both normalizations of one vector, and RMSNorm's learned scale applied as the model does.
#[derive(Debug, Clone, PartialEq)]
pub struct NormComparison {
    pub x: Vec<f32>,
    pub mean: f32,
    /// LayerNorm's divisor √(var + eps).
    pub std: f32,
    /// RMSNorm's divisor √(mean(x²) + eps) (= `ln1.hook_scale`).
    pub rms: f32,
    /// LayerNorm(x), γ = 1, β = 0.
    pub layer_norm: Vec<f32>,
    /// x / rms, before the learned scale.
    pub rms_norm: Vec<f32>,
    /// x / rms ⊙ g: what the model passes on (= `ln1.hook_normalized`).
    pub rms_norm_scaled: Vec<f32>,
}

pub fn compare(x: &[f32], weight: ArrayView1<f32>, eps: f32) -> NormComparison {
    let (mean, std, ln) = layer_norm(x, eps);
    let row = Array1::from(x.to_vec()).insert_axis(Axis(0)); // [1, d_model]
    let ones = Array1::<f32>::ones(x.len()); // [d_model]
    let (rms, plain) = ops::rmsnorm(row.view(), ones.view(), eps);
    let (_, scaled) = ops::rmsnorm(row.view(), weight, eps);
    NormComparison {
        x: x.to_vec(),
        mean,
        std,
        rms: rms.first().copied().unwrap_or(f32::NAN),
        layer_norm: ln,
        rms_norm: plain.iter().copied().collect(),
        rms_norm_scaled: scaled.iter().copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_norms_match_hand_computed_values() {
        // x = [1, 2, 3, 4]: mean 2.5, var 1.25, mean(x²) 7.5 (worked by hand).
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let c = compare(&x, ndarray::arr1(&[1.0f32, 1.0, 2.0, 1.0]).view(), 0.0);
        assert!((c.mean - 2.5).abs() < 1e-6);
        assert!((c.std - 1.25f32.sqrt()).abs() < 1e-6);
        assert!((c.rms - 7.5f32.sqrt()).abs() < 1e-6);
        let ln = [-1.341_640_8f32, -0.447_213_6, 0.447_213_6, 1.341_640_8];
        for (a, b) in c.layer_norm.iter().zip(ln) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let rms = [0.365_148_4f32, 0.730_296_7, 1.095_445_1, 1.460_593_5];
        for (a, b) in c.rms_norm.iter().zip(rms) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!((c.rms_norm_scaled[2] - 2.0 * rms[2]).abs() < 1e-5);
        // LayerNorm output has mean 0 and variance 1; RMSNorm's has mean(x²) = 1.
        let m: f32 = c.layer_norm.iter().sum::<f32>() / 4.0;
        assert!(m.abs() < 1e-6);
        let ms: f32 = c.rms_norm.iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!((ms - 1.0).abs() < 1e-5);
    }
}
