//! The attention ops of the CPU executor: the same math as [`super::ops`] (which stays the
//! plain statement of it, and the check on these), arranged for speed on long prompts:
//!
//! - every head and block of query rows is one task on the rayon pool, with a single-threaded
//!   `gemm` inside (ndarray's `dot` would start matrixmultiply's own threads, which fight the
//!   pool);
//! - the buffers are the executor's slots, reused from layer to layer, not fresh arrays;
//! - keys a query cannot see are skipped: when nothing will read the raw scores of future
//!   positions they are never computed, softmax and `p · v` stop at the last visible key. The
//!   skipping is checked against the data (a lifted mask or an edited pattern shows up as
//!   finite scores or non-zero weights past the diagonal) and falls back to whole rows.

use ndarray::{Array3, ArrayView3, ArrayViewMut3};
use rayon::prelude::*;

/// Query rows per task: enough tasks to keep both threads busy, few enough to amortize.
fn block_rows(q_pos: usize) -> usize {
    (q_pos / (4 * rayon::current_num_threads().max(1))).clamp(8, 64)
}

/// Keys `0..visible(i)` are in the past of query row `i` (absolute position `pos_offset + i`).
fn visible(pos_offset: usize, i: usize, k_pos: usize) -> usize {
    (pos_offset + i + 1).min(k_pos)
}

/// Makes `slot` a `[a, b, c]` array, reusing its allocation when it already has that shape.
fn reshape_slot(slot: &mut Array3<f32>, shape: (usize, usize, usize)) {
    if slot.dim() != shape || !slot.is_standard_layout() {
        *slot = Array3::zeros(shape);
    }
}

/// `C[m, n] = scale · A[m, k] · B[k, n]` (overwriting C), single-threaded, any strides.
///
/// # Safety
/// Every element `A[r, c]` at `a + r·a_rs + c·a_cs` (likewise `B`, `C`) must be in bounds of
/// its allocation for `r < m`, `c < k` (resp. `n`), and `C` must not overlap `A` or `B`.
#[allow(unsafe_code, clippy::too_many_arguments)]
unsafe fn gemm_into(m: usize, n: usize, k: usize, c: *mut f32, c_rs: usize, a: *const f32, a_rs: usize, b: *const f32, b_rs: usize, b_cs: usize, scale: f32) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: forwarded from this function's contract.
    unsafe {
        gemm::gemm(m, n, k, c, 1, c_rs as isize, false, a, 1, a_rs as isize, b, b_cs as isize, b_rs as isize, 0.0, scale, false, false, false, gemm::Parallelism::None);
    }
}

/// `s[h, i, j] = q[i, h] · k[j, h / group] · scale` (`scale` = 1/sqrt(d_head) but in Gemma) into `out` (`[heads, q_pos, k_pos]`).
/// With `causal: Some(pos_offset)` only the visible keys are computed and the rest are set to
/// `-inf`: the masked scores, for a pass that needs no raw score of a future position.
pub fn scores_into(q: ArrayView3<f32>, k: ArrayView3<f32>, group: usize, scale: f32, causal: Option<usize>, out: &mut Array3<f32>) {
    let (q_pos, heads, d_head) = q.dim();
    let (k_pos, kv_heads, _) = k.dim();
    reshape_slot(out, (heads, q_pos, k_pos));
    let (q, k) = (q.as_standard_layout(), k.as_standard_layout());
    let block = block_rows(q_pos);
    let Some(dst) = out.as_slice_mut() else { return };
    if q_pos == 0 || k_pos == 0 {
        return;
    }
    let (q_ptr, k_ptr) = (q.as_ptr() as usize, k.as_ptr() as usize);
    dst.par_chunks_mut(q_pos * k_pos).enumerate().for_each(|(h, s_h)| {
        s_h.par_chunks_mut(block * k_pos).enumerate().for_each(|(b, rows)| {
            let i0 = b * block;
            let m = rows.len() / k_pos;
            let n = causal.map_or(k_pos, |at| visible(at, i0 + m - 1, k_pos));
            let g = (h / group.max(1)).min(kv_heads - 1);
            #[allow(unsafe_code)]
            // SAFETY: A = q[i0.., h, ..]: rows i0..i0+m < q_pos, d_head columns, in `q`
            // (standard layout [q_pos, heads, d_head]); B = k[.., g, ..]ᵀ: element (d, j) at
            // j·kv_heads·d_head + g·d_head + d with j < n ≤ k_pos; C = `rows`, m rows of k_pos
            // (n ≤ k_pos used), a chunk of `out`, which neither input aliases.
            unsafe {
                let a = (q_ptr as *const f32).add(i0 * heads * d_head + h * d_head);
                let bk = (k_ptr as *const f32).add(g * d_head);
                gemm_into(m, n, d_head, rows.as_mut_ptr(), k_pos, a, heads * d_head, bk, 1, kv_heads * d_head, scale);
            }
            if let Some(at) = causal {
                for (r, row) in rows.chunks_mut(k_pos).enumerate() {
                    row[visible(at, i0 + r, k_pos)..].fill(f32::NEG_INFINITY);
                }
            }
        });
    });
}

/// The causal mask in place: key `j` beyond query `i`'s position becomes `-inf`.
pub fn mask_in_place(mut s: ArrayViewMut3<f32>, pos_offset: usize) {
    let (_, q_pos, k_pos) = s.dim();
    let Some(values) = s.as_slice_mut() else {
        return super::ops::causal_mask_in_place(s, pos_offset);
    };
    if k_pos == 0 {
        return;
    }
    values.par_chunks_mut(k_pos).with_min_len(64).enumerate().for_each(|(r, row)| {
        row[visible(pos_offset, r % q_pos, k_pos)..].fill(f32::NEG_INFINITY);
    });
}

/// Softmax over the last axis in place (max-subtracted; `-inf` becomes exactly 0). With
/// `causal: Some(pos_offset)`, a row whose future keys all hold `-inf` (the mask's work) is
/// normalized over its visible keys only and the rest set to 0, the same numbers without the
/// exponentials of the masked half.
pub fn softmax_in_place(mut s: ArrayViewMut3<f32>, causal: Option<usize>) {
    let (_, q_pos, k_pos) = s.dim();
    let Some(values) = s.as_slice_mut() else {
        return super::ops::softmax_last_in_place(s);
    };
    if k_pos == 0 {
        return;
    }
    values.par_chunks_mut(k_pos).with_min_len(16).enumerate().for_each(|(r, row)| {
        let end = match causal {
            Some(at) => {
                let end = visible(at, r % q_pos, k_pos);
                if row[end..].iter().all(|&v| v == f32::NEG_INFINITY) { end } else { k_pos }
            }
            None => k_pos,
        };
        let (seen, hidden) = row.split_at_mut(end);
        let max = seen.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in seen.iter_mut() {
            *v = exp_nonpositive(*v - max);
        }
        let sum = lane_sum(seen);
        for v in seen.iter_mut() {
            *v /= sum;
        }
        hidden.fill(0.0);
    });
}

/// The pattern from the raw scores: the causal mask, then the softmax over visible keys.
pub fn masked_softmax_in_place(mut s: ArrayViewMut3<f32>, pos_offset: usize) {
    mask_in_place(s.view_mut(), pos_offset);
    softmax_in_place(s, Some(pos_offset));
}

/// `e^x` for `x ≤ 0` (a score minus its row's maximum): Cephes' `expf` (2^k · e^r with a
/// degree-6 polynomial for e^r) without branches or library calls, so the loop over a row
/// vectorizes; libm's scalar `expf` was most of softmax's time on long prompts. Within 2 ulp
/// of `f32::exp`; `-inf` and anything below -87 give exactly 0, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let xc = if x < -87.0 { -87.0 } else { x }; // not `max`, which would turn NaN into -87
    let k = (xc * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = xc - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let poly = ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5;
    let e_r = poly * r * r + r + 1.0;
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    if x < -87.0 { 0.0 } else { e_r * scale }
}

/// Sum in eight lanes (vectorizable, and closer to exact than one running sum).
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// `z[i, h] = Σ_j p[h, i, j] · v[j, h / group]` into `out` (`[q_pos, heads, d_head]`). With
/// `causal: Some(pos_offset)`, the sum stops at the last visible key of a block of rows when
/// every weight past it is exactly 0 (as softmax leaves masked keys).
pub fn attend_into(p: ArrayView3<f32>, v: ArrayView3<f32>, group: usize, causal: Option<usize>, out: &mut Array3<f32>) {
    let (heads, q_pos, k_pos) = p.dim();
    let (_, kv_heads, d_head) = v.dim();
    reshape_slot(out, (q_pos, heads, d_head));
    let (p, v) = (p.as_standard_layout(), v.as_standard_layout());
    let block = block_rows(q_pos);
    let Some(dst) = out.as_slice_mut() else { return };
    if q_pos == 0 || k_pos == 0 || d_head == 0 {
        dst.fill(0.0);
        return;
    }
    let Some(weights) = p.as_slice() else { return };
    let v_ptr = v.as_ptr() as usize;
    dst.par_chunks_mut(block * heads * d_head).enumerate().for_each(|(b, z_rows)| {
        let i0 = b * block;
        let m = z_rows.len() / (heads * d_head);
        for h in 0..heads {
            let rows = &weights[(h * q_pos + i0) * k_pos..(h * q_pos + i0 + m) * k_pos];
            let n = match causal {
                Some(at) => {
                    let past = rows.chunks(k_pos).enumerate().all(|(r, row)| row[visible(at, i0 + r, k_pos)..].iter().all(|&w| w == 0.0));
                    if past { visible(at, i0 + m - 1, k_pos) } else { k_pos }
                }
                None => k_pos,
            };
            let g = (h / group.max(1)).min(kv_heads - 1);
            #[allow(unsafe_code)]
            // SAFETY: A = `rows`, m rows of k_pos (n ≤ k_pos used); B = v[.., g, ..]: element
            // (j, d) at j·kv_heads·d_head + g·d_head + d, j < n ≤ k_pos, in `v` (standard layout
            // [k_pos, kv_heads, d_head]); C = z[i0.., h, ..] inside `z_rows` (m rows of
            // heads·d_head), a chunk of `out`, which neither input aliases.
            unsafe {
                let bv = (v_ptr as *const f32).add(g * d_head);
                gemm_into(m, d_head, n, z_rows.as_mut_ptr().add(h * d_head), heads * d_head, rows.as_ptr(), k_pos, bv, kv_heads * d_head, 1, 1.0);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::ops;
    use super::*;

    fn max_diff(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
        assert_eq!(a.dim(), b.dim());
        a.iter().zip(b).fold(0.0f32, |m, (x, y)| if x == y { m } else { m.max((x - y).abs()) })
    }

    fn data(shape: (usize, usize, usize), seed: usize) -> Array3<f32> {
        Array3::from_shape_fn(shape, |(a, b, c)| (((a * 31 + b * 17 + c * 7 + seed) % 23) as f32 - 11.0) * 0.09)
    }

    /// Every path against the plain ops: prefill, a continuation over a KV cache, GQA groups,
    /// shapes that leave ragged blocks.
    #[test]
    fn the_softmax_exponential_is_within_two_ulp_of_libm() {
        let mut worst = 0u32;
        for i in 0..=200_000 {
            let x = -90.0 * i as f32 / 200_000.0;
            let (ours, libm) = (super::exp_nonpositive(x), x.exp());
            if x < -87.0 {
                assert_eq!(ours, 0.0);
                continue;
            }
            worst = worst.max(ours.to_bits().abs_diff(libm.to_bits()));
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(super::exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(super::exp_nonpositive(0.0), 1.0);
        assert!(super::exp_nonpositive(f32::NAN).is_nan(), "a NaN score must reach the pattern");
    }

    #[test]
    fn fast_attention_equals_the_plain_ops() {
        for (q_pos, offset, heads, kv_heads, d) in [(1, 0, 1, 1, 4), (5, 0, 9, 3, 8), (70, 0, 4, 2, 16), (3, 40, 6, 3, 8), (130, 7, 2, 1, 5)] {
            let k_pos = offset + q_pos;
            let group = heads / kv_heads;
            let q = data((q_pos, heads, d), 1);
            let k = data((k_pos, kv_heads, d), 2);
            let v = data((k_pos, kv_heads, d), 3);
            let raw = ops::attention_scores(q.view(), k.view(), group);
            let masked = ops::causal_mask(raw.view(), offset);
            let pattern = ops::softmax_last(masked.view());
            let z = ops::attend(pattern.view(), v.view(), group);

            let mut s = Array3::zeros((0, 0, 0));
            scores_into(q.view(), k.view(), group, 1.0 / (q.dim().2 as f32).sqrt(), None, &mut s);
            assert!(max_diff(&s, &raw) < 1e-5, "raw scores {q_pos}/{offset}");
            mask_in_place(s.view_mut(), offset);
            assert!(max_diff(&s, &masked) < 1e-5, "masked {q_pos}/{offset}");
            let mut causal = Array3::zeros((0, 0, 0));
            scores_into(q.view(), k.view(), group, 1.0 / (q.dim().2 as f32).sqrt(), Some(offset), &mut causal);
            assert!(max_diff(&causal, &masked) < 1e-5, "causal-only scores {q_pos}/{offset}");
            softmax_in_place(s.view_mut(), Some(offset));
            assert!(max_diff(&s, &pattern) < 1e-6, "pattern {q_pos}/{offset}");
            let mut out = Array3::zeros((0, 0, 0));
            attend_into(s.view(), v.view(), group, Some(offset), &mut out);
            assert!(max_diff(&out, &z) < 1e-5, "z {q_pos}/{offset}");
        }
    }

    /// A lifted mask (finite scores past the diagonal) and an edited pattern (weight on a
    /// future key) are used, not skipped.
    #[test]
    fn skipping_follows_the_data_not_the_assumption() {
        let (q_pos, heads, d) = (12, 2, 4);
        let q = data((q_pos, heads, d), 4);
        let k = data((q_pos, heads, d), 5);
        let v = data((q_pos, heads, d), 6);
        let mut s = Array3::zeros((0, 0, 0));
        scores_into(q.view(), k.view(), 1, 1.0 / (q.dim().2 as f32).sqrt(), None, &mut s);
        let unmasked = ops::softmax_last(s.view());
        softmax_in_place(s.view_mut(), Some(0));
        assert!(max_diff(&s, &unmasked) < 1e-6);
        assert!(s[[0, 0, q_pos - 1]] > 0.0, "row 0 must see the last key when the mask is lifted");

        let mut edited = ops::softmax_last(ops::causal_mask(s.view(), 0).view());
        edited[[1, 2, 9]] = 0.5;
        let mut out = Array3::zeros((0, 0, 0));
        attend_into(edited.view(), v.view(), 1, Some(0), &mut out);
        assert!(max_diff(&out, &ops::attend(edited.view(), v.view(), 1)) < 1e-5);
    }
}
