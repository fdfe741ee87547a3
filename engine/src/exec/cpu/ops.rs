//! One function per op of the forward pass, written to read as the math (DESIGN §2).
//! These are the oracle every GPU kernel is tested against.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut3, Axis, Zip, s};
use rayon::prelude::*;

use crate::error::{EngineError, Result};
use crate::load::longrope::Rope;

/// `y = x · Wᵀ` with `W` stored `[out_features, in_features]` (the executor's kernels, on a
/// plain array).
pub fn linear(x: ArrayView2<f32>, w: ArrayView2<f32>) -> Result<Array2<f32>> {
    // x: [pos, in], w: [out, in] → [pos, out]
    super::matmul::linear(x, &crate::load::matrix::Matrix::from(w.to_owned()))
}

/// RMSNorm's per-position scale `sqrt(mean(x²) + eps)` (TransformerLens `hook_scale`).
pub fn rms_scale(x: ArrayView2<f32>, eps: f32) -> Array1<f32> {
    x.map_axis(Axis(1), |row| {
        let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        (mean_sq + eps).sqrt()
    }) // [pos]
}

/// RMSNorm's output `h = x / scale ⊙ weight`, given the scale.
pub fn rms_apply(x: ArrayView2<f32>, scale: ArrayView1<f32>, weight: ArrayView1<f32>) -> Array2<f32> {
    let mut h = x.to_owned(); // [pos, d_model]
    for (mut row, &s) in h.outer_iter_mut().zip(scale.iter()) {
        let inv = 1.0 / s;
        Zip::from(&mut row).and(&weight).for_each(|v, &w| *v = w * (*v * inv));
    }
    h
}

/// RMSNorm: `h = x / sqrt(mean(x²) + eps) ⊙ weight`. Returns the per-position scale and `h`.
pub fn rmsnorm(x: ArrayView2<f32>, weight: ArrayView1<f32>, eps: f32) -> (Array1<f32>, Array2<f32>) {
    let scale = rms_scale(x, eps); // [pos]
    let h = rms_apply(x, scale.view(), weight); // [pos, d_model]
    (scale, h)
}

/// `[pos, heads·d_head]` → `[pos, heads, d_head]`.
pub fn split_heads(x: Array2<f32>, heads: usize) -> Result<Array3<f32>> {
    let (pos, width) = x.dim();
    if heads == 0 || width % heads != 0 {
        return Err(EngineError::Shape(format!("split_heads: width {width} is not {heads} heads")));
    }
    x.into_shape_with_order((pos, heads, width / heads))
        .map_err(|e| EngineError::Shape(format!("split_heads: [{pos}, {width}] into {heads} heads: {e}")))
}

/// Rotate-half RoPE (HF/NeoX): dim `i` pairs with `i + d_head/2`, angle `p · inv_freq[i]`,
/// positions `pos_offset..`:
/// `x'[i] = x[i]·cos − x[i+half]·sin`, `x'[i+half] = x[i+half]·cos + x[i]·sin`, cos and sin
/// times `rope.scale` first (longrope's attention factor), as transformers scales them.
pub fn rope(x: ArrayView3<f32>, rope: Rope<'_>, pos_offset: usize) -> Array3<f32> {
    // x: [pos, heads, d_head]
    let (n_pos, heads, d_head) = x.dim();
    let half = d_head / 2;
    let mut out = x.as_standard_layout().into_owned();
    let Some(values) = out.as_slice_mut() else {
        return out;
    };
    for (p, at_pos) in values.chunks_mut(heads * d_head).enumerate().take(n_pos) {
        // Angles in f32, as HF computes them: (position · inv_freq) then cos/sin.
        let position = (pos_offset + p) as f32;
        let rotation = rope_rotation(rope, position, half);
        for head in at_pos.chunks_mut(d_head) {
            let (first, second) = head.split_at_mut(half);
            for ((a, b), &(sin, cos)) in first.iter_mut().zip(second.iter_mut()).zip(&rotation) {
                let (x1, x2) = (*a, *b);
                *a = x1 * cos - x2 * sin;
                *b = x2 * cos + x1 * sin;
            }
        }
    }
    out
}

/// `(sin, cos)` of each pair at `position`, each times `rope.scale`: the angles in f32 as HF
/// computes them, `position · inv_freq` then cos/sin.
pub fn rope_rotation(rope: Rope<'_>, position: f32, half: usize) -> Vec<(f32, f32)> {
    rope.inv_freq
        .iter()
        .take(half)
        .map(|&f| {
            let (sin, cos) = (position * f).sin_cos();
            (sin * rope.scale, cos * rope.scale)
        })
        .collect()
}

/// Scaled dot products `s[h, i, j] = q[i, h] · k[j, g(h)] / sqrt(d_head)`, no mask yet.
/// Query head `h` reads kv head `h / group` (GQA).
pub fn attention_scores(q: ArrayView3<f32>, k: ArrayView3<f32>, group: usize) -> Array3<f32> {
    // q: [q_pos, heads, d_head], k: [k_pos, kv_heads, d_head] → [heads, q_pos, k_pos]
    let (q_pos, heads, d_head) = q.dim();
    let k_pos = k.dim().0;
    let scale = 1.0 / (d_head as f32).sqrt();
    let mut s = Array3::<f32>::zeros((heads, q_pos, k_pos));
    for h in 0..heads {
        let q_h = q.slice(s![.., h, ..]); // [q_pos, d_head]
        let k_g = k.slice(s![.., h / group, ..]); // [k_pos, d_head]
        let mut s_h = s.index_axis_mut(Axis(0), h);
        s_h.assign(&(q_h.dot(&k_g.t()) * scale));
    }
    s
}

/// Causal mask: query `i` (absolute position `pos_offset + i`) may not see key `j` beyond it.
pub fn causal_mask(scores: ArrayView3<f32>, pos_offset: usize) -> Array3<f32> {
    let mut masked = scores.to_owned(); // [heads, q_pos, k_pos]
    causal_mask_in_place(masked.view_mut(), pos_offset);
    masked
}

/// [`causal_mask`] in place.
pub fn causal_mask_in_place(mut scores: ArrayViewMut3<f32>, pos_offset: usize) {
    for mut head in scores.outer_iter_mut() {
        for (i, mut row) in head.outer_iter_mut().enumerate() {
            let first_hidden = (pos_offset + i + 1).min(row.len());
            row.slice_mut(s![first_hidden..]).fill(f32::NEG_INFINITY);
        }
    }
}

/// Softmax over the last axis, max-subtracted; masked (-inf) entries become exactly 0.
pub fn softmax_last(x: ArrayView3<f32>) -> Array3<f32> {
    let mut out = x.to_owned();
    softmax_last_in_place(out.view_mut());
    out
}

/// [`softmax_last`] in place.
pub fn softmax_last_in_place(mut x: ArrayViewMut3<f32>) {
    for mut head in x.outer_iter_mut() {
        for mut row in head.outer_iter_mut() {
            let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - max).exp());
            let sum = row.sum();
            row.mapv_inplace(|v| v / sum);
        }
    }
}

/// `z[i, h] = Σ_j p[h, i, j] · v[j, g(h)]`.
pub fn attend(pattern: ArrayView3<f32>, v: ArrayView3<f32>, group: usize) -> Array3<f32> {
    // pattern: [heads, q_pos, k_pos], v: [k_pos, kv_heads, d_head] → [q_pos, heads, d_head]
    let (heads, q_pos, _) = pattern.dim();
    let d_head = v.dim().2;
    let mut z = Array3::<f32>::zeros((q_pos, heads, d_head));
    for h in 0..heads {
        let z_h = pattern.index_axis(Axis(0), h).dot(&v.slice(s![.., h / group, ..])); // [q_pos, d_head]
        z.slice_mut(s![.., h, ..]).assign(&z_h);
    }
    z
}

/// `[pos, heads, d_head]` → `[pos, heads·d_head]` (head-major, as o_proj expects).
pub fn merge_heads(z: ArrayView3<f32>) -> Result<Array2<f32>> {
    let (pos, heads, d_head) = z.dim();
    z.as_standard_layout()
        .into_owned()
        .into_shape_with_order((pos, heads * d_head))
        .map_err(|e| EngineError::Shape(format!("merge_heads: [{pos}, {heads}, {d_head}]: {e}")))
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// SwiGLU's product: `silu(gate) ⊙ up`.
pub fn silu_mul(gate: ArrayView2<f32>, up: ArrayView2<f32>) -> Array2<f32> {
    let mut out = gate.as_standard_layout().into_owned(); // [pos, d_mlp]
    let up = up.as_standard_layout();
    match (out.as_slice_mut(), up.as_slice()) {
        (Some(o), Some(u)) => o.par_chunks_mut(4096).zip(u.par_chunks(4096)).for_each(|(o, u)| {
            for (g, &u) in o.iter_mut().zip(u) {
                *g = silu(*g) * u;
            }
        }),
        _ => return Zip::from(gate).and(&up).map_collect(|&g, &u| silu(g) * u),
    }
    out
}

/// Row-wise softmax of logits at a temperature (`<= 0` means 1), rows in parallel.
pub fn softmax_rows(logits: ArrayView2<f32>, temperature: f32) -> Array2<f32> {
    let mut out = logits.as_standard_layout().into_owned(); // [rows, vocab]
    let width = out.ncols().max(1);
    if let Some(values) = out.as_slice_mut() {
        values
            .par_chunks_mut(width)
            .for_each(|row| crate::exec::sampling::softmax_in_place(row, temperature));
    }
    out
}

/// LayerNorm's per-position scale `sqrt(var(x) + eps)` (the variance about the mean, biased,
/// as torch computes it).
pub fn ln_scale(x: ArrayView2<f32>, eps: f32) -> Array1<f32> {
    x.map_axis(Axis(1), |row| {
        let n = row.len().max(1) as f32;
        let mean = row.sum() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        (var + eps).sqrt()
    }) // [pos]
}

/// LayerNorm's output `(x − mean) / scale ⊙ weight + bias`, given the scale.
pub fn ln_apply(x: ArrayView2<f32>, scale: ArrayView1<f32>, weight: ArrayView1<f32>, bias: ArrayView1<f32>) -> Result<Array2<f32>> {
    if weight.len() != x.ncols() || bias.len() != x.ncols() || scale.len() != x.nrows() {
        return Err(EngineError::Shape(format!("LayerNorm of {:?} with weight {}, bias {}, scale {}", x.dim(), weight.len(), bias.len(), scale.len())));
    }
    let mut h = x.to_owned(); // [pos, d_model]
    for (mut row, &s) in h.outer_iter_mut().zip(scale.iter()) {
        let mean = row.sum() / row.len().max(1) as f32;
        let inv = 1.0 / s;
        Zip::from(&mut row).and(&weight).and(&bias).for_each(|v, &w, &b| *v = (*v - mean) * inv * w + b);
    }
    Ok(h)
}

/// RMSNorm over the last axis of `[pos, heads, d_head]` (Gemma's QK-norm), weight `[d_head]`.
pub fn rms_heads(x: ArrayView3<f32>, weight: ArrayView1<f32>, eps: f32) -> Result<Array3<f32>> {
    let (pos, heads, d) = x.dim();
    if weight.len() != d {
        return Err(EngineError::Shape(format!("QK-norm weight has {} values for head_dim {d}", weight.len())));
    }
    let flat = x.as_standard_layout().into_owned().into_shape_with_order((pos * heads, d)).map_err(|e| EngineError::Shape(e.to_string()))?; // [pos·heads, d_head]
    let (_, normed) = rmsnorm(flat.view(), weight, eps); // [pos·heads, d_head]
    normed.into_shape_with_order((pos, heads, d)).map_err(|e| EngineError::Shape(e.to_string())) // [pos, heads, d_head]
}

/// RMSNorm over all heads of a position at once (OLMo 2's QK-norm): `x` `[pos, heads, d_head]`
/// normed as `[pos, heads·d_head]` with a weight of that width.
pub fn rms_all_heads(x: ArrayView3<f32>, weight: ArrayView1<f32>, eps: f32) -> Result<Array3<f32>> {
    let (pos, heads, d) = x.dim();
    if weight.len() != heads * d {
        return Err(EngineError::Shape(format!("QK-norm weight has {} values for {heads} heads × head_dim {d}", weight.len())));
    }
    let wide = x.as_standard_layout().into_owned().into_shape_with_order((pos, 1, heads * d)).map_err(|e| EngineError::Shape(e.to_string()))?; // [pos, 1, heads·d_head]
    rms_heads(wide.view(), weight, eps)?.into_shape_with_order((pos, heads, d)).map_err(|e| EngineError::Shape(e.to_string())) // [pos, heads, d_head]
}

/// `x + bias` on every row.
pub fn add_bias(mut x: Array2<f32>, bias: Option<&Array1<f32>>) -> Result<Array2<f32>> {
    if let Some(b) = bias {
        if b.len() != x.ncols() {
            return Err(EngineError::Shape(format!("bias of {} values for {} columns", b.len(), x.ncols())));
        }
        x += b;
    }
    Ok(x)
}

/// `x · Φ(x)`, Φ by the exact erf (torch's `gelu`), computed in f64 and rounded once.
pub fn gelu(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

/// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
pub fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/π)
    0.5 * x * (1.0 + tanh(C * (x + 0.044_715 * x * x * x)))
}

/// `tanh y = ±(1 − e) / (1 + e)` with `e = e^{−2|y|}`: one vectorizable `exp` of a non-positive
/// argument instead of libm's scalar `tanhf` (most of Gemma's `gelu_mul` time). Its absolute
/// error stays within a few ulp of 1, which is what `1 + tanh` in GELU reads.
#[inline(always)]
fn tanh(y: f32) -> f32 {
    let e = super::attention::exp_nonpositive(-2.0 * y.abs());
    ((1.0 - e) / (1.0 + e)).copysign(y)
}

/// One activation on every element, in chunks on the rayon pool.
pub fn activate(x: ArrayView2<f32>, act: crate::load::arch::Activation) -> Array2<f32> {
    use crate::load::arch::Activation as A;
    let f: fn(f32) -> f32 = match act {
        A::Gelu => gelu,
        A::GeluTanh => gelu_tanh,
        A::Relu => |v| v.max(0.0),
        A::Silu => silu,
    };
    let mut out = x.as_standard_layout().into_owned(); // [pos, d_mlp]
    match out.as_slice_mut() {
        Some(o) => o.par_chunks_mut(4096).for_each(|o| o.iter_mut().for_each(|v| *v = f(*v))),
        None => out.mapv_inplace(f),
    }
    out
}

/// `gelu_tanh(gate) ⊙ up` (GeGLU, Gemma).
pub fn gelu_mul(gate: ArrayView2<f32>, up: ArrayView2<f32>) -> Array2<f32> {
    let mut out = gate.as_standard_layout().into_owned(); // [pos, d_mlp]
    let up = up.as_standard_layout();
    match (out.as_slice_mut(), up.as_slice()) {
        (Some(o), Some(u)) => o.par_chunks_mut(4096).zip(u.par_chunks(4096)).for_each(|(o, u)| {
            for (g, &u) in o.iter_mut().zip(u) {
                *g = gelu_tanh(*g) * u;
            }
        }),
        _ => return Zip::from(gate).and(&up).map_collect(|&g, &u| gelu_tanh(g) * u),
    }
    out
}

/// The mask of one layer in place: `-inf` where query row `i` (absolute `pos_offset + i`)
/// may not see key `j`.
pub fn mask_with_in_place(mut scores: ArrayViewMut3<f32>, pos_offset: usize, mask: crate::load::arch::AttnMask) {
    if mask == crate::load::arch::AttnMask::Bidirectional {
        return;
    }
    for mut head in scores.outer_iter_mut() {
        for (i, mut row) in head.outer_iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                if !mask.visible(pos_offset + i, j) {
                    *v = f32::NEG_INFINITY;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rope_rotates_pairs_i_and_i_plus_half() {
        let x = Array3::from_shape_vec((1, 1, 4), vec![1.0, 0.0, 0.0, 0.0]).unwrap();
        let out = rope(x.view(), Rope::plain(&[1.0, 0.5]), 1);
        // dim 0 pairs with dim 2: (1, 0) rotated by angle 1.
        assert!((out[[0, 0, 0]] - 1f32.cos()).abs() < 1e-6);
        assert!((out[[0, 0, 2]] - 1f32.sin()).abs() < 1e-6);
        assert_eq!(out[[0, 0, 1]], 0.0);
    }

    #[test]
    fn masked_softmax_gives_exact_zeros() {
        let s = Array3::from_shape_vec((1, 2, 2), vec![1.0, 5.0, 1.0, 2.0]).unwrap();
        let p = softmax_last(causal_mask(s.view(), 0).view());
        assert_eq!(p[[0, 0, 1]], 0.0);
        assert_eq!(p[[0, 0, 0]], 1.0);
        assert!((p[[0, 1, 0]] + p[[0, 1, 1]] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn rmsnorm_matches_formula() {
        let x = array![[3.0f32, 4.0]];
        let (scale, h) = rmsnorm(x.view(), array![1.0f32, 2.0].view(), 0.0);
        let rms = (12.5f32).sqrt();
        assert!((scale[0] - rms).abs() < 1e-6);
        assert!((h[[0, 1]] - 8.0 / rms).abs() < 1e-6);
    }
}
