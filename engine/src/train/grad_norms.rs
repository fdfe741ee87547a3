//! The gradients of the norms other families add to Llama's RMSNorm: LayerNorm (GPT-2,
//! BERT), QK-norm per head (Gemma 3, Qwen 3) and over all heads (OLMo 2), and RMSNorm whose
//! scale the forward did not record (sandwich / output norms). Each is the exact derivative
//! of its forward in `cpu::ops`, same `eps` placement. Per-row sums run in f64 because a
//! row's terms nearly cancel (`dn − mean(dn) − n·mean(dn ⊙ n)`), where f32 loses digits.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis};

use crate::exec::cpu::ops;

/// LayerNorm `y = n ⊙ g + b` with `n = (x − mean) / s`, `s = sqrt(var(x) + eps)` the
/// recorded scale (`ops::ln_scale`). With `dn = dy ⊙ g`:
/// `dx = (dn − mean(dn) − n · mean(dn ⊙ n)) / s`, `dg = Σ_pos dy ⊙ n`, `db = Σ_pos dy`.
/// The mean term is there because the mean moves with every `x`; RMSNorm has no such term.
pub fn layernorm_backward(
    dy: ArrayView2<f32>,    // [pos, d]
    x: ArrayView2<f32>,     // [pos, d]
    scale: ArrayView1<f32>, // [pos]
    g: ArrayView1<f32>,     // [d]
) -> (Array2<f32>, Array1<f32>, Array1<f32>) {
    let d = x.ncols();
    let mut dx = Array2::<f32>::zeros(x.raw_dim()); // [pos, d]
    let mut dg = vec![0.0f64; d];
    let mut db = vec![0.0f64; d];
    let mut n = vec![0.0f64; d];
    for (p, mut dx_row) in dx.outer_iter_mut().enumerate() {
        let (dy_row, x_row) = (dy.row(p), x.row(p));
        let mean_x = x_row.sum() / d.max(1) as f32; // as `ln_apply` computes it
        let inv = 1.0 / f64::from(scale[p]);
        let (mut sum_dn, mut sum_dn_n) = (0.0f64, 0.0f64);
        for j in 0..d {
            n[j] = f64::from(x_row[j] - mean_x) * inv;
            let dyj = f64::from(dy_row[j]);
            let dn = dyj * f64::from(g[j]);
            sum_dn += dn;
            sum_dn_n += dn * n[j];
            dg[j] += dyj * n[j];
            db[j] += dyj;
        }
        let (mean_dn, mean_dn_n) = (sum_dn / d as f64, sum_dn_n / d as f64);
        for j in 0..d {
            let dn = f64::from(dy_row[j]) * f64::from(g[j]);
            dx_row[j] = ((dn - mean_dn - n[j] * mean_dn_n) * inv) as f32;
        }
    }
    (dx, to_f32(&dg), to_f32(&db))
}

/// QK-norm per head (`ops::rms_heads`): each `[d_head]` lane of `x` is RMS-normed on its own
/// with the shared weight `g`, so `dg` sums over positions and heads.
pub fn rms_heads_backward(
    dy: ArrayView3<f32>, // [pos, heads, d_head]
    x: ArrayView3<f32>,  // [pos, heads, d_head]
    g: ArrayView1<f32>,  // [d_head]
    eps: f32,
) -> (Array3<f32>, Array1<f32>) {
    let mut dx = Array3::<f32>::zeros(x.raw_dim()); // [pos, heads, d_head]
    let mut dg = vec![0.0f64; g.len()];
    for (p, mut dx_p) in dx.outer_iter_mut().enumerate() {
        for (h, mut dx_lane) in dx_p.outer_iter_mut().enumerate() {
            let lane = rms_lane_backward(&lane_of(dy, p, Some(h)), &lane_of(x, p, Some(h)), g, eps, &mut dg);
            dx_lane.iter_mut().zip(lane).for_each(|(o, v)| *o = v);
        }
    }
    (dx, to_f32(&dg))
}

/// QK-norm over all heads at once (`ops::rms_all_heads`, OLMo 2): a position's
/// `[heads·d_head]` is one RMSNorm lane, weight `g` `[heads·d_head]`.
pub fn rms_all_heads_backward(
    dy: ArrayView3<f32>, // [pos, heads, d_head]
    x: ArrayView3<f32>,  // [pos, heads, d_head]
    g: ArrayView1<f32>,  // [heads·d_head]
    eps: f32,
) -> (Array3<f32>, Array1<f32>) {
    let mut dx = Array3::<f32>::zeros(x.raw_dim()); // [pos, heads, d_head]
    let mut dg = vec![0.0f64; g.len()];
    for (p, mut dx_p) in dx.outer_iter_mut().enumerate() {
        let lane = rms_lane_backward(&lane_of(dy, p, None), &lane_of(x, p, None), g, eps, &mut dg);
        dx_p.iter_mut().zip(lane).for_each(|(o, v)| *o = v);
    }
    (dx, to_f32(&dg))
}

/// RMSNorm whose forward (`ops::rms_scale` + `ops::rms_apply`) kept no scale: the scale is
/// recomputed from `x` exactly as the forward makes it, then `grad_ops::rmsnorm_backward`.
pub fn rmsnorm_backward_eps(
    dy: ArrayView2<f32>, // [pos, d]
    x: ArrayView2<f32>,  // [pos, d]
    g: ArrayView1<f32>,  // [d]
    eps: f32,
) -> (Array2<f32>, Array1<f32>) {
    let scale = ops::rms_scale(x, eps); // [pos]
    super::grad_ops::rmsnorm_backward(dy, x, scale.view(), g)
}

/// One position's values (of one head, or of every head in order, as `rms_all_heads`
/// flattens them).
fn lane_of(t: ArrayView3<f32>, p: usize, head: Option<usize>) -> Vec<f32> {
    let at_p = t.index_axis(Axis(0), p); // [heads, d_head]
    match head {
        Some(h) => at_p.index_axis(Axis(0), h).to_vec(),
        None => at_p.iter().copied().collect(),
    }
}

/// RMSNorm of one lane `h = x / s ⊙ g`, `s = sqrt(mean(x²) + eps)` computed as
/// `ops::rms_scale` does: `dx = (dn − n · mean(dn ⊙ n)) / s` with `dn = dy ⊙ g`; adds
/// `dy ⊙ n` into `dg`.
fn rms_lane_backward(dy: &[f32], x: &[f32], g: ArrayView1<f32>, eps: f32, dg: &mut [f64]) -> Vec<f32> {
    let d = x.len();
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / d as f32;
    let inv = 1.0 / f64::from((mean_sq + eps).sqrt());
    let n: Vec<f64> = x.iter().map(|&v| f64::from(v) * inv).collect();
    let mut sum_dn_n = 0.0f64;
    for j in 0..d {
        let dyj = f64::from(dy[j]);
        sum_dn_n += dyj * f64::from(g[j]) * n[j];
        dg[j] += dyj * n[j];
    }
    let mean_dn_n = sum_dn_n / d as f64;
    (0..d)
        .map(|j| ((f64::from(dy[j]) * f64::from(g[j]) - n[j] * mean_dn_n) * inv) as f32)
        .collect()
}

fn to_f32(v: &[f64]) -> Array1<f32> {
    v.iter().map(|&x| x as f32).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks `grad` (∂/∂x of a scalar `f`) against a central finite difference at every
    /// entry; `f` is `Σ dy ⊙ op(x)` so the gradient under test is the op's backward.
    pub(crate) fn fd_check(what: &str, f: &dyn Fn(&[f32]) -> f32, x: &[f32], grad: &[f32]) {
        assert_eq!(x.len(), grad.len(), "{what}: gradient length");
        let eps = 1e-2f32;
        for i in 0..x.len() {
            let mut a = x.to_vec();
            let mut b = x.to_vec();
            a[i] += eps;
            b[i] -= eps;
            let fd = (f(&a) - f(&b)) / (2.0 * eps);
            assert!((fd - grad[i]).abs() < 2e-3 * (1.0 + fd.abs()), "{what} entry {i}: fd {fd} vs {}", grad[i]);
        }
    }

    pub(crate) fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = super::super::rng::Rng::new(seed);
        (0..n).map(|_| r.normal()).collect()
    }

    fn a1(v: &[f32]) -> Array1<f32> {
        Array1::from(v.to_vec())
    }

    fn a2(shape: (usize, usize), v: &[f32]) -> Array2<f32> {
        Array2::from_shape_vec(shape, v.to_vec()).unwrap()
    }

    fn a3(shape: (usize, usize, usize), v: &[f32]) -> Array3<f32> {
        Array3::from_shape_vec(shape, v.to_vec()).unwrap()
    }

    /// `Σ dy ⊙ LayerNorm(x; g, b)` as the forward computes it.
    fn ln_objective(x: &[f32], g: &[f32], b: &[f32], dy: &Array2<f32>, eps: f32) -> f32 {
        let xa = a2(dy.dim(), x);
        let s = ops::ln_scale(xa.view(), eps);
        (&ops::ln_apply(xa.view(), s.view(), a1(g).view(), a1(b).view()).unwrap() * dy).sum()
    }

    #[test]
    fn layernorm_gradients() {
        let (pos, d, eps) = (3, 6, 1e-5);
        // An offset mean and a spread scale so the mean and variance terms both matter.
        let x: Vec<f32> = rand(pos * d, 21).iter().map(|v| 0.7 + 1.5 * v).collect();
        let (g, b) = (rand(d, 22), rand(d, 23));
        let dy = a2((pos, d), &rand(pos * d, 24));
        let xa = a2((pos, d), &x);
        let scale = ops::ln_scale(xa.view(), eps);
        let (dx, dg, db) = layernorm_backward(dy.view(), xa.view(), scale.view(), a1(&g).view());
        fd_check("layernorm dx", &|v| ln_objective(v, &g, &b, &dy, eps), &x, dx.as_slice().unwrap());
        fd_check("layernorm dg", &|v| ln_objective(&x, v, &b, &dy, eps), &g, dg.as_slice().unwrap());
        fd_check("layernorm db", &|v| ln_objective(&x, &g, v, &dy, eps), &b, db.as_slice().unwrap());
    }

    #[test]
    fn layernorm_dx_sums_to_zero_per_row() {
        // Shifting a whole row leaves LayerNorm unchanged, so each row's dx sums to 0.
        let (pos, d) = (2, 5);
        let xa = a2((pos, d), &rand(pos * d, 25));
        let dy = a2((pos, d), &rand(pos * d, 26));
        let scale = ops::ln_scale(xa.view(), 1e-5);
        let (dx, _, _) = layernorm_backward(dy.view(), xa.view(), scale.view(), a1(&rand(d, 27)).view());
        for row in dx.outer_iter() {
            assert!(row.sum().abs() < 1e-5, "{row}");
        }
    }

    fn qk_objective(all_heads: bool, shape: (usize, usize, usize), x: &[f32], g: &[f32], dy: &Array3<f32>) -> f32 {
        let xa = a3(shape, x);
        let y = if all_heads {
            ops::rms_all_heads(xa.view(), a1(g).view(), 1e-6)
        } else {
            ops::rms_heads(xa.view(), a1(g).view(), 1e-6)
        };
        (&y.unwrap() * dy).sum()
    }

    #[test]
    fn rms_heads_gradients_with_several_heads() {
        let shape = (3, 4, 5); // [pos, heads, d_head]
        let n = 3 * 4 * 5;
        let (x, g) = (rand(n, 31), rand(5, 32));
        let dy = a3(shape, &rand(n, 33));
        let (dx, dg) = rms_heads_backward(dy.view(), a3(shape, &x).view(), a1(&g).view(), 1e-6);
        fd_check("rms_heads dx", &|v| qk_objective(false, shape, v, &g, &dy), &x, dx.as_slice().unwrap());
        fd_check("rms_heads dg", &|v| qk_objective(false, shape, &x, v, &dy), &g, dg.as_slice().unwrap());
    }

    #[test]
    fn rms_all_heads_gradients() {
        let shape = (3, 2, 4); // [pos, heads, d_head]; weight over heads·d_head = 8
        let n = 3 * 2 * 4;
        let (x, g) = (rand(n, 41), rand(8, 42));
        let dy = a3(shape, &rand(n, 43));
        let (dx, dg) = rms_all_heads_backward(dy.view(), a3(shape, &x).view(), a1(&g).view(), 1e-6);
        fd_check("rms_all_heads dx", &|v| qk_objective(true, shape, v, &g, &dy), &x, dx.as_slice().unwrap());
        fd_check("rms_all_heads dg", &|v| qk_objective(true, shape, &x, v, &dy), &g, dg.as_slice().unwrap());
    }

    #[test]
    fn rms_all_heads_differs_from_per_head() {
        // The two QK-norms normalize different lanes: the same input gives different dx.
        let shape = (2, 2, 3);
        let x = a3(shape, &rand(12, 44));
        let dy = a3(shape, &rand(12, 45));
        let (per_head, _) = rms_heads_backward(dy.view(), x.view(), Array1::ones(3).view(), 1e-6);
        let (all, _) = rms_all_heads_backward(dy.view(), x.view(), Array1::ones(6).view(), 1e-6);
        assert!(per_head.iter().zip(all.iter()).any(|(a, b)| (a - b).abs() > 1e-3));
    }

    #[test]
    fn rmsnorm_without_recorded_scale_gradients() {
        let (pos, d, eps) = (3, 5, 1e-6);
        let (x, g) = (rand(pos * d, 51), rand(d, 52));
        let dy = a2((pos, d), &rand(pos * d, 53));
        let objective = |x: &[f32], g: &[f32]| {
            let xa = a2((pos, d), x);
            let s = ops::rms_scale(xa.view(), eps);
            (&ops::rms_apply(xa.view(), s.view(), a1(g).view()) * &dy).sum()
        };
        let (dx, dg) = rmsnorm_backward_eps(dy.view(), a2((pos, d), &x).view(), a1(&g).view(), eps);
        fd_check("rmsnorm_eps dx", &|v| objective(v, &g), &x, dx.as_slice().unwrap());
        fd_check("rmsnorm_eps dg", &|v| objective(&x, v), &g, dg.as_slice().unwrap());
    }
}
