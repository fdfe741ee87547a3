//! The gradient of each forward op (`cpu::ops`), one function per op, each with its formula.
//! `dy` is ∂loss/∂(the op's output); every function returns ∂loss/∂(its inputs).

use ndarray::{Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis, Zip, s};

use crate::load::longrope::Rope;

/// `y = x · Wᵀ` (W stored `[out, in]`) ⇒ `dx = dy · W`.
pub fn linear_dx(dy: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
    // dy: [pos, out], w: [out, in] → [pos, in]
    dy.dot(&w)
}

/// `y = x · Wᵀ` ⇒ `dW = dyᵀ · x`, summed over positions.
pub fn linear_dw(dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
    // dy: [pos, out], x: [pos, in] → [out, in]
    dy.t().dot(&x)
}

/// RMSNorm `h = n ⊙ g` with `n = x / s`, `s = sqrt(mean(x²) + eps)` (the recorded scale):
/// `dg = Σ_pos dh ⊙ n`; with `dn = dh ⊙ g`, `dx = (dn − n · mean(dn ⊙ n)) / s`.
pub fn rmsnorm_backward(
    dh: ArrayView2<f32>,    // [pos, d]
    x: ArrayView2<f32>,     // [pos, d]
    scale: ArrayView1<f32>, // [pos]
    g: ArrayView1<f32>,     // [d]
) -> (Array2<f32>, ndarray::Array1<f32>) {
    let d = x.ncols() as f32;
    let mut dx = Array2::<f32>::zeros(x.raw_dim()); // [pos, d]
    let mut dg = ndarray::Array1::<f32>::zeros(g.len()); // [d]
    for (p, mut dx_row) in dx.outer_iter_mut().enumerate() {
        let inv = 1.0 / scale[p];
        let (dh_row, x_row) = (dh.row(p), x.row(p));
        let mut dot = 0.0f32; // Σ dn ⊙ n
        for j in 0..x_row.len() {
            let n = x_row[j] * inv;
            dot += dh_row[j] * g[j] * n;
            dg[j] += dh_row[j] * n;
        }
        let mean = dot / d;
        for j in 0..x_row.len() {
            let n = x_row[j] * inv;
            dx_row[j] = (dh_row[j] * g[j] - n * mean) * inv;
        }
    }
    (dx, dg)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `post = silu(gate) ⊙ up` ⇒ `dup = dpost ⊙ silu(gate)`,
/// `dgate = dpost ⊙ up ⊙ silu'(gate)` with `silu'(x) = σ(x) · (1 + x · (1 − σ(x)))`.
pub fn silu_mul_backward(
    dpost: ArrayView2<f32>, // [pos, d_mlp]
    gate: ArrayView2<f32>,  // [pos, d_mlp]
    up: ArrayView2<f32>,    // [pos, d_mlp]
) -> (Array2<f32>, Array2<f32>) {
    let dgate = Zip::from(dpost).and(gate).and(up).map_collect(|&dp, &g, &u| {
        let sg = sigmoid(g);
        dp * u * sg * (1.0 + g * (1.0 - sg))
    }); // [pos, d_mlp]
    let dup = Zip::from(dpost)
        .and(gate)
        .map_collect(|&dp, &g| dp * g * sigmoid(g)); // [pos, d_mlp]
    (dgate, dup)
}

/// `z[i, h] = Σ_j p[h, i, j] · v[j, g(h)]` ⇒ `dp[h, i, j] = dz[i, h] · v[j, g(h)]` (every j,
/// the masked future included: the softmax backward is what removes them) and
/// `dv[j, g] = Σ_{h in group g} Σ_i p[h, i, j] · dz[i, h]`.
pub fn attend_backward(
    dz: ArrayView3<f32>,      // [q_pos, heads, d_head]
    pattern: ArrayView3<f32>, // [heads, q_pos, k_pos]
    v: ArrayView3<f32>,       // [k_pos, kv_heads, d_head]
    group: usize,
) -> (Array3<f32>, Array3<f32>) {
    let (heads, q_pos, k_pos) = pattern.dim();
    let mut dp = Array3::<f32>::zeros((heads, q_pos, k_pos)); // [heads, q_pos, k_pos]
    let mut dv = Array3::<f32>::zeros(v.raw_dim()); // [k_pos, kv_heads, d_head]
    for h in 0..heads {
        let dz_h = dz.slice(s![.., h, ..]); // [q_pos, d_head]
        let v_g = v.slice(s![.., h / group, ..]); // [k_pos, d_head]
        dp.index_axis_mut(Axis(0), h).assign(&dz_h.dot(&v_g.t()));
        let p_h = pattern.index_axis(Axis(0), h); // [q_pos, k_pos]
        let mut dv_g = dv.slice_mut(s![.., h / group, ..]);
        dv_g += &p_h.t().dot(&dz_h);
    }
    (dp, dv)
}

/// `p = softmax(s)` along each row ⇒ `ds = p ⊙ (dp − Σ_k p_k · dp_k)`. Masked entries have
/// `p = 0`, so their score gradient is exactly 0.
pub fn softmax_backward(dp: ArrayView3<f32>, p: ArrayView3<f32>) -> Array3<f32> {
    let mut ds = Array3::<f32>::zeros(p.raw_dim()); // [heads, q_pos, k_pos]
    for ((mut ds_h, dp_h), p_h) in ds.outer_iter_mut().zip(dp.outer_iter()).zip(p.outer_iter()) {
        for ((mut ds_row, dp_row), p_row) in ds_h.outer_iter_mut().zip(dp_h.outer_iter()).zip(p_h.outer_iter()) {
            let dot: f32 = dp_row.iter().zip(p_row.iter()).map(|(a, b)| a * b).sum();
            Zip::from(&mut ds_row)
                .and(&dp_row)
                .and(&p_row)
                .for_each(|o, &d, &pv| *o = pv * (d - dot));
        }
    }
    ds
}

/// `s[h, i, j] = q[i, h] · k[j, g(h)] · c` (c: the score scale, `1/√d_head` or Gemma's) ⇒
/// `dq[i, h] = Σ_j ds[h, i, j] · k[j, g(h)] · c`, `dk[j, g] = Σ_{h in g} Σ_i ds[h, i, j] · q[i, h] · c`.
pub fn scores_backward(
    ds: ArrayView3<f32>, // [heads, q_pos, k_pos]
    q: ArrayView3<f32>,  // [q_pos, heads, d_head]  (rotated)
    k: ArrayView3<f32>,  // [k_pos, kv_heads, d_head]  (rotated)
    group: usize,
    c: f32,
) -> (Array3<f32>, Array3<f32>) {
    let mut dq = Array3::<f32>::zeros(q.raw_dim()); // [q_pos, heads, d_head]
    let mut dk = Array3::<f32>::zeros(k.raw_dim()); // [k_pos, kv_heads, d_head]
    for h in 0..q.dim().1 {
        let ds_h = ds.index_axis(Axis(0), h); // [q_pos, k_pos]
        let k_g = k.slice(s![.., h / group, ..]); // [k_pos, d_head]
        let q_h = q.slice(s![.., h, ..]); // [q_pos, d_head]
        dq.slice_mut(s![.., h, ..]).assign(&(ds_h.dot(&k_g) * c));
        let mut dk_g = dk.slice_mut(s![.., h / group, ..]);
        dk_g.scaled_add(c, &ds_h.t().dot(&q_h));
    }
    (dq, dk)
}

/// RoPE rotates each pair `(i, i + half)` by `θ = pos · inv_freq[i]`; a rotation's transpose
/// is the rotation by `−θ`: `dx[i] = dy[i]·cos + dy[i+half]·sin`,
/// `dx[i+half] = dy[i+half]·cos − dy[i]·sin`. Angles in f32 exactly as the forward makes them,
/// cos and sin times `rope.scale` as there (longrope's attention factor).
pub fn rope_backward(dy: ArrayView3<f32>, rope: Rope<'_>, pos_offset: usize) -> Array3<f32> {
    let mut dx = dy.as_standard_layout().into_owned(); // [pos, heads, d_head]
    let (n_pos, heads, d_head) = dx.dim();
    let half = d_head / 2;
    for p in 0..n_pos {
        let position = (pos_offset + p) as f32;
        let rotation = crate::exec::cpu::ops::rope_rotation(rope, position, half);
        for h in 0..heads {
            for (i, &(sin, cos)) in rotation.iter().enumerate() {
                let (a, b) = (dx[[p, h, i]], dx[[p, h, i + half]]);
                dx[[p, h, i]] = a * cos + b * sin;
                dx[[p, h, i + half]] = b * cos - a * sin;
            }
        }
    }
    dx
}

/// `x[p] = E[ids[p]]` ⇒ `dE[t] = Σ_{p: ids[p] = t} dx[p]`.
pub fn embed_backward(dx: ArrayView2<f32>, ids: &[u32], vocab: usize) -> Array2<f32> {
    let mut de = Array2::<f32>::zeros((vocab, dx.ncols())); // [vocab, d_model]
    for (p, &id) in ids.iter().enumerate() {
        let mut row = de.row_mut(id as usize);
        row += &dx.row(p);
    }
    de
}

/// `[pos, heads, d_head]` ↔ `[pos, heads·d_head]`, as the forward splits and merges heads.
pub fn split_heads(x: Array2<f32>, heads: usize) -> crate::Result<Array3<f32>> {
    crate::exec::cpu::ops::split_heads(x, heads)
}

pub fn merge_heads(x: ArrayView3<f32>) -> crate::Result<Array2<f32>> {
    crate::exec::cpu::ops::merge_heads(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::cpu::ops;

    /// Each op's gradient against a central finite difference in f64-ish precision on a
    /// small random input: `Σ dy ⊙ f(x)` is the scalar whose gradient these return.
    fn fd_check(f: &dyn Fn(&[f32]) -> f32, x: &[f32], grad: &[f32]) {
        let eps = 1e-2f32;
        for i in (0..x.len()).step_by(3) {
            let mut a = x.to_vec();
            let mut b = x.to_vec();
            a[i] += eps;
            b[i] -= eps;
            let fd = (f(&a) - f(&b)) / (2.0 * eps);
            assert!((fd - grad[i]).abs() < 2e-3 * (1.0 + fd.abs()), "entry {i}: fd {fd} vs {}", grad[i]);
        }
    }

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = super::super::rng::Rng::new(seed);
        (0..n).map(|_| r.normal()).collect()
    }

    #[test]
    fn rmsnorm_gradient() {
        let (pos, d) = (3, 5);
        let x = rand(pos * d, 1);
        let g = Array1::from(rand(d, 2));
        let dh = Array2::from_shape_vec((pos, d), rand(pos * d, 3)).unwrap();
        let f = |xs: &[f32]| {
            let xa = Array2::from_shape_vec((pos, d), xs.to_vec()).unwrap();
            let (_, h) = ops::rmsnorm(xa.view(), g.view(), 1e-5);
            (&h * &dh).sum()
        };
        let xa = Array2::from_shape_vec((pos, d), x.clone()).unwrap();
        let (scale, _) = ops::rmsnorm(xa.view(), g.view(), 1e-5);
        let (dx, _) = rmsnorm_backward(dh.view(), xa.view(), scale.view(), g.view());
        fd_check(&f, &x, dx.as_slice().unwrap());
    }

    use ndarray::Array1;

    #[test]
    fn rope_gradient_is_the_inverse_rotation() {
        let x = Array3::from_shape_vec((3, 2, 4), rand(24, 4)).unwrap();
        let inv = [1.0f32, 0.1];
        // longrope's factor on cos and sin scales the rotation: its transpose scales back.
        let y = ops::rope(x.view(), Rope { inv_freq: &inv, scale: 1.25 }, 2);
        let back = rope_backward(y.view(), Rope { inv_freq: &inv, scale: 1.0 / 1.25 }, 2);
        for (a, b) in back.iter().zip(x.iter()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn softmax_and_scores_gradients() {
        let (h, n, dd) = (2, 4, 3);
        let q = rand(n * h * dd, 5);
        let k = Array3::from_shape_vec((n, 1, dd), rand(n * dd, 6)).unwrap();
        let dp = Array3::from_shape_vec((h, n, n), rand(h * n * n, 7)).unwrap();
        let f = |qs: &[f32]| {
            let qa = Array3::from_shape_vec((n, h, dd), qs.to_vec()).unwrap();
            let s = ops::causal_mask(ops::attention_scores(qa.view(), k.view(), 2).view(), 0);
            (&ops::softmax_last(s.view()) * &dp).sum()
        };
        let qa = Array3::from_shape_vec((n, h, dd), q.clone()).unwrap();
        let p = ops::softmax_last(ops::causal_mask(ops::attention_scores(qa.view(), k.view(), 2).view(), 0).view());
        let ds = softmax_backward(dp.view(), p.view());
        let (dq, _) = scores_backward(ds.view(), qa.view(), k.view(), 2, 1.0 / (dd as f32).sqrt());
        fd_check(&f, &q, dq.as_slice().unwrap());
    }

    #[test]
    fn silu_mul_and_attend_gradients() {
        let g = rand(6, 8);
        let u = Array2::from_shape_vec((2, 3), rand(6, 9)).unwrap();
        let dy = Array2::from_shape_vec((2, 3), rand(6, 10)).unwrap();
        let f = |gs: &[f32]| {
            let ga = Array2::from_shape_vec((2, 3), gs.to_vec()).unwrap();
            (&ops::silu_mul(ga.view(), u.view()) * &dy).sum()
        };
        let ga = Array2::from_shape_vec((2, 3), g.clone()).unwrap();
        let (dg, _) = silu_mul_backward(dy.view(), ga.view(), u.view());
        fd_check(&f, &g, dg.as_slice().unwrap());

        let v = rand(4 * 2, 11);
        let p = Array3::from_shape_vec((2, 3, 4), rand(24, 12)).unwrap();
        let dz = Array3::from_shape_vec((3, 2, 2), rand(12, 13)).unwrap();
        let f = |vs: &[f32]| {
            let va = Array3::from_shape_vec((4, 1, 2), vs.to_vec()).unwrap();
            (&ops::attend(p.view(), va.view(), 2) * &dz).sum()
        };
        let va = Array3::from_shape_vec((4, 1, 2), v.clone()).unwrap();
        let (_, dv) = attend_backward(dz.view(), p.view(), va.view(), 2);
        fd_check(&f, &v, dv.as_slice().unwrap());
    }
}
