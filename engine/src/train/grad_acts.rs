//! The gradients of the MLP activations other families use (`ops::activate` for ungated
//! MLPs: GPT-2, BERT, ReLU recipes; `ops::gelu_mul`, Gemma's GeGLU) and of a bias add. Each
//! derivative is of the forward exactly as `cpu::ops` computes it (exact-erf GELU, the same
//! tanh constants), evaluated in f64 and rounded once.

use ndarray::{Array1, Array2, ArrayView2, Zip};

use crate::exec::cpu::ops;
use crate::load::arch::Activation;

/// `post = act(pre)` elementwise ⇒ `dpre = dpost ⊙ act'(pre)`.
pub fn activation_backward(
    dpost: ArrayView2<f32>, // [pos, d_mlp]
    pre: ArrayView2<f32>,   // [pos, d_mlp]
    act: Activation,
) -> Array2<f32> {
    let derivative: fn(f64) -> f64 = match act {
        Activation::Gelu => gelu_erf_prime,
        Activation::GeluTanh => gelu_tanh_prime,
        // torch's threshold_backward: the kink at 0 gets gradient 0.
        Activation::Relu => |x| if x > 0.0 { 1.0 } else { 0.0 },
        Activation::Silu => silu_prime,
    };
    Zip::from(dpost)
        .and(pre)
        .map_collect(|&dp, &x| (f64::from(dp) * derivative(f64::from(x))) as f32) // [pos, d_mlp]
}

/// `post = gelu_tanh(gate) ⊙ up` ⇒ `dup = dpost ⊙ gelu_tanh(gate)`,
/// `dgate = dpost ⊙ up ⊙ gelu_tanh'(gate)`.
pub fn gelu_mul_backward(
    dpost: ArrayView2<f32>, // [pos, d_mlp]
    gate: ArrayView2<f32>,  // [pos, d_mlp]
    up: ArrayView2<f32>,    // [pos, d_mlp]
) -> (Array2<f32>, Array2<f32>) {
    let dgate = Zip::from(dpost).and(gate).and(up).map_collect(|&dp, &g, &u| {
        (f64::from(dp) * f64::from(u) * gelu_tanh_prime(f64::from(g))) as f32
    }); // [pos, d_mlp]
    // The forward's own value of gelu_tanh(gate), so `dup` is what multiplied `up`.
    let dup = Zip::from(dpost).and(gate).map_collect(|&dp, &g| dp * ops::gelu_tanh(g)); // [pos, d_mlp]
    (dgate, dup)
}

/// `y = x + b` with `b` broadcast over positions ⇒ `db = Σ_pos dy`.
pub fn bias_backward(dy: ArrayView2<f32>) -> Array1<f32> {
    let mut sum = vec![0.0f64; dy.ncols()];
    for row in dy.outer_iter() {
        sum.iter_mut().zip(row.iter()).for_each(|(s, &v)| *s += f64::from(v));
    }
    sum.into_iter().map(|s| s as f32).collect() // [d]
}

/// `d/dx [x · Φ(x)] = Φ(x) + x · φ(x)`, Φ by the same libm erf as `ops::gelu`.
fn gelu_erf_prime(x: f64) -> f64 {
    let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    cdf + x * pdf
}

/// `d/dx [0.5 x (1 + tanh u)]` with `u = C (x + A x³)`:
/// `0.5 (1 + tanh u) + 0.5 x (1 − tanh² u) · C (1 + 3 A x²)`. `C` and `A` are the f32
/// constants `ops::gelu_tanh` uses.
fn gelu_tanh_prime(x: f64) -> f64 {
    const C: f64 = 0.797_884_6_f32 as f64; // sqrt(2/π), as the forward rounds it
    const A: f64 = 0.044_715_f32 as f64;
    let t = (C * (x + A * x * x * x)).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * A * x * x)
}

/// `silu'(x) = σ(x) · (1 + x · (1 − σ(x)))`.
fn silu_prime(x: f64) -> f64 {
    let s = 1.0 / (1.0 + (-x).exp());
    s * (1.0 + x * (1.0 - s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::grad_norms::tests::{fd_check, rand};

    /// Random inputs kept off 0 by more than the finite-difference step, where ReLU has its kink.
    fn off_zero(n: usize, seed: u64) -> Vec<f32> {
        rand(n, seed).iter().map(|&v| v + 0.05f32.copysign(v)).collect()
    }

    fn a2(v: &[f32]) -> Array2<f32> {
        Array2::from_shape_vec((3, 4), v.to_vec()).unwrap()
    }

    #[test]
    fn every_activation_gradient() {
        // Scaled up so GELU's curved region and tails are both sampled.
        let x: Vec<f32> = off_zero(12, 61).iter().map(|v| 2.0 * v).collect();
        let dy = a2(&rand(12, 62));
        for act in [Activation::Gelu, Activation::GeluTanh, Activation::Relu, Activation::Silu] {
            let f = |v: &[f32]| (&ops::activate(a2(v).view(), act) * &dy).sum();
            let dpre = activation_backward(dy.view(), a2(&x).view(), act);
            fd_check(&format!("{act:?}"), &f, &x, dpre.as_slice().unwrap());
        }
    }

    #[test]
    fn activation_derivatives_at_known_points() {
        let at = |act, x: f32| activation_backward(a2(&[1.0; 12]).view(), a2(&[x; 12]).view(), act)[[0, 0]];
        // GELU'(0) = Φ(0) = ½ for both forms; SiLU'(0) = σ(0) = ½; ReLU'(0) = 0 as in torch.
        for act in [Activation::Gelu, Activation::GeluTanh, Activation::Silu] {
            assert!((at(act, 0.0) - 0.5).abs() < 1e-7, "{act:?}");
        }
        assert_eq!(at(Activation::Relu, 0.0), 0.0);
        assert_eq!(at(Activation::Relu, 3.0), 1.0);
        // Φ(1) + φ(1) = 0.841344746 + 0.241970725.
        assert!((at(Activation::Gelu, 1.0) - 1.083_315_5).abs() < 1e-6);
    }

    #[test]
    fn gelu_mul_gradients() {
        let (gate, up) = (off_zero(12, 71), rand(12, 72));
        let dy = a2(&rand(12, 73));
        let (dgate, dup) = gelu_mul_backward(dy.view(), a2(&gate).view(), a2(&up).view());
        let f = |g: &[f32], u: &[f32]| (&ops::gelu_mul(a2(g).view(), a2(u).view()) * &dy).sum();
        fd_check("gelu_mul dgate", &|v| f(v, &up), &gate, dgate.as_slice().unwrap());
        fd_check("gelu_mul dup", &|v| f(&gate, v), &up, dup.as_slice().unwrap());
    }

    #[test]
    fn bias_gradient_sums_positions() {
        let (x, b) = (a2(&rand(12, 81)), rand(4, 82));
        let dy = a2(&rand(12, 83));
        let f = |bs: &[f32]| {
            let bias = Array1::from(bs.to_vec());
            (&ops::add_bias(x.clone(), Some(&bias)).unwrap() * &dy).sum()
        };
        fd_check("bias db", &f, &b, bias_backward(dy.view()).as_slice().unwrap());
    }
}
