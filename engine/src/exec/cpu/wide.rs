//! `y = x · Wᵀ` for two or more rows of `x` (prefill), as `(W · xᵀ)ᵀ`: each weight element is
//! broadcast against a panel of up to 64 rows of `x` at once. `x` is transposed into panels once per
//! call (it is small: `[pos, in]`); `W` is read where it lies (the memory-mapped `[out, in]`
//! rows), once per panel. Every broadcast feeds four FMAs and every `x` load six, so the
//! kernel runs at the processor's FMA rate instead of waiting on loads and lane sums as the
//! dot-product kernel ([`xwt`](super::xwt)) does; that kernel stays the one for decode (a
//! single row) and for bf16/f16 weights.
//!
//! AVX-512 only, picked at run time ([`fits`]); other processors keep the other kernels.

use std::cell::RefCell;

use rayon::prelude::*;

use super::xwt::{Isa, Product, Rows, WeightData, WeightRows, isa};

/// Rows of `x` per panel: four vectors of 16 lanes. The last panel is as many vectors wide as
/// its rows need; a row's sums do not depend on its panel (each lane adds its own products in
/// order), so a row gets the same bits whatever the row count of the call.
const PANEL: usize = 64;
/// Rows of `W` per tile: 6 × 4 accumulators fill 24 of the 32 vector registers.
const NR: usize = 6;
/// Panels a task runs each weight row over before moving on: 4 × 64 rows × `in` ≤ 1,536
/// floats is at most 1.5 MiB, about a core's L2 (the panels of a long prompt are not).
const GROUP: usize = 4;

/// A single row wastes 15 of 16 lanes: the dot-product kernel streams its weights faster.
const MIN_ROWS: usize = 2;

thread_local! {
    /// The transposed `x` of the call in progress, reused so a pass does not fault in fresh
    /// pages for it at every matmul.
    static PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether [`xwt_wide`] runs this product on this machine.
pub fn fits(m: usize, w: &WeightRows<'_>) -> bool {
    m >= MIN_ROWS && matches!(w.data, WeightData::F32(_)) && isa() == Isa::Avx512
}

/// Vectors (of 16 rows) in panel `p` of an `m`-row product.
fn vectors(m: usize, p: usize) -> usize {
    (m - p * PANEL).min(PANEL).div_ceil(16)
}

/// `y[i, j] = Σ_c x[i, c] · w[j, c]`, as [`xwt`](super::xwt::xwt); `false` (nothing written)
/// when the shapes do not fit or [`fits`] is false.
#[must_use]
pub fn xwt_wide(x: Rows<'_>, w: WeightRows<'_>, y: &mut [f32], y_stride: usize) -> bool {
    xwt_wide_many(x, &mut [Product { w, y, y_stride }])
}

/// Several products of the same `x` (q, k and v; gate and up): `x` transposed once, and the
/// weight rows of all of them split between the threads in one parallel region.
#[must_use]
pub fn xwt_wide_many(x: Rows<'_>, products: &mut [Product<'_>]) -> bool {
    let m = x.rows;
    let Some(k) = products.first().map(|p| p.w.cols) else { return true };
    let fit = |p: &Product<'_>| fits(m, &p.w) && p.w.cols == k && super::xwt::shapes_fit(x, p.w, p.y, p.y_stride);
    if !products.iter().all(fit) {
        return false;
    }
    // (weights, rows, stride, output address, output stride, first block) of each product.
    let mut outs = Vec::with_capacity(products.len());
    let mut blocks = 0;
    for p in products.iter_mut() {
        let WeightData::F32(wd) = p.w.data else { return false };
        outs.push((wd, p.w.rows, p.w.stride, p.y.as_mut_ptr() as usize, p.y_stride, blocks));
        blocks += p.w.rows.div_ceil(NR);
    }
    PANELS.with(|cell| {
        // A nested call on this thread (a stolen task) gets its own buffer.
        let mut fresh = Vec::new();
        let mut held = cell.try_borrow_mut();
        let buf = match held.as_deref_mut() {
            Ok(b) => b,
            Err(_) => &mut fresh,
        };
        transpose_into(x, k, buf);
        let panels: &[f32] = buf;
        let threads = rayon::current_num_threads().max(1);
        let per_task = blocks.div_ceil(threads * 4).max(1);
        let n_panels = m.div_ceil(PANEL);
        let work = |t: usize| {
            let (b0, b1) = (t * per_task, ((t + 1) * per_task).min(blocks));
            // A group of panels stays in this core's L2 while the task's weight rows pass over
            // it (the weights are the ones re-read, from L3, once per group).
            for group in (0..n_panels).step_by(GROUP) {
                for b in b0..b1 {
                    let Some(&(wd, n, stride, y_addr, y_stride, first)) = outs.iter().rev().find(|o| o.5 <= b) else { continue };
                    let j = (b - first) * NR;
                    let nr = (n - j).min(NR);
                    for p in group..(group + GROUP).min(n_panels) {
                        let mv = vectors(m, p);
                        let panel = &panels[p * PANEL * k..p * PANEL * k + mv * 16 * k];
                        tile(panel, mv, &wd[j * stride..], stride, k, nr, p * PANEL, m, j, y_addr, y_stride);
                    }
                }
            }
        };
        let tasks = blocks.div_ceil(per_task);
        if tasks <= 1 {
            work(0);
        } else {
            (0..tasks).into_par_iter().for_each(work);
        }
    });
    true
}

/// `x` `[m, k]` → panels `[k][width]` (64 rows wide, the last as wide as its rows need, in
/// vectors), the rows past `m` zero. Eight rows at a time, so the reads are eight sequential
/// streams and each write fills eight neighbouring lanes.
fn transpose_into(x: Rows<'_>, k: usize, buf: &mut Vec<f32>) {
    const R: usize = 8;
    let m = x.rows;
    let panels = m.div_ceil(PANEL);
    buf.clear();
    buf.resize((panels - 1) * PANEL * k + vectors(m, panels - 1) * 16 * k, 0.0);
    for i0 in (0..m).step_by(R) {
        let (p, lane0) = (i0 / PANEL, i0 % PANEL);
        let width = vectors(m, p) * 16;
        let panel = &mut buf[p * PANEL * k..p * PANEL * k + width * k];
        if i0 + R <= m {
            let rows: [&[f32]; R] = std::array::from_fn(|a| &x.data[(i0 + a) * x.stride..(i0 + a) * x.stride + k]);
            for (c, out) in panel.chunks_exact_mut(width).enumerate() {
                for (a, row) in rows.iter().enumerate() {
                    out[lane0 + a] = row[c];
                }
            }
        } else {
            for i in i0..m {
                let row = &x.data[i * x.stride..i * x.stride + k];
                for (c, &v) in row.iter().enumerate() {
                    panel[c * width + i % PANEL] = v;
                }
            }
        }
    }
}

/// `y[i0 + a, j + r]` for the panel's real rows `a` and the tile's `nr` weight rows.
#[allow(clippy::too_many_arguments)]
fn tile(panel: &[f32], mv: usize, w: &[f32], w_stride: usize, k: usize, nr: usize, i0: usize, m: usize, j: usize, y_addr: usize, y_stride: usize) {
    let mut acc = [[0.0f32; PANEL]; NR];
    #[cfg(target_arch = "x86_64")]
    {
        // The rows the kernel reads: `nr` rows of `w` (the last repeated to fill NR) and the
        // panel's `k` columns.
        let rows: [&[f32]; NR] = std::array::from_fn(|r| &w[r.min(nr - 1) * w_stride..r.min(nr - 1) * w_stride + k]);
        simd::tile_avx512(panel, mv, rows, k, &mut acc);
    }
    let real = (m - i0).min(PANEL);
    for a in 0..real {
        for (r, sums) in acc.iter().enumerate().take(nr) {
            let v = sums[a];
            // SAFETY: `xwt_wide` checked that `y` holds rows `< m` and columns `< n` at
            // `y_stride`; tasks write disjoint column ranges (their weight rows), so no two
            // writes alias, and `y` stays mutably borrowed for the whole call.
            #[allow(unsafe_code)]
            unsafe {
                *(y_addr as *mut f32).add((i0 + a) * y_stride + j + r) = v;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod simd {
    use std::arch::x86_64::*;

    use super::{NR, PANEL};

    /// `acc[r][a] = Σ_c rows[r][c] · panel[c · 16·mv + a]` for `a < 16·mv`.
    pub fn tile_avx512(panel: &[f32], mv: usize, rows: [&[f32]; NR], k: usize, acc: &mut [[f32; PANEL]; NR]) {
        assert!((1..=4).contains(&mv) && panel.len() >= k * mv * 16 && rows.iter().all(|r| r.len() >= k));
        let rows = rows.map(<[f32]>::as_ptr);
        // SAFETY: `fits` checked AVX-512 on this processor; the assert above bounds every
        // load (panel column c < k of width 16·mv, row element c < k).
        unsafe {
            match mv {
                1 => kernel::<1>(panel.as_ptr(), rows, k, acc),
                2 => kernel::<2>(panel.as_ptr(), rows, k, acc),
                3 => kernel::<3>(panel.as_ptr(), rows, k, acc),
                _ => kernel::<4>(panel.as_ptr(), rows, k, acc),
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const MV: usize>(panel: *const f32, rows: [*const f32; NR], k: usize, acc: &mut [[f32; PANEL]; NR]) {
        let mut v = [[_mm512_setzero_ps(); MV]; NR];
        for c in 0..k {
            // SAFETY: c < k (the caller's bounds).
            unsafe {
                let col = panel.add(c * MV * 16);
                let x: [__m512; MV] = std::array::from_fn(|q| _mm512_loadu_ps(col.add(q * 16)));
                for r in 0..NR {
                    let wv = _mm512_set1_ps(*rows[r].add(c));
                    for q in 0..MV {
                        v[r][q] = _mm512_fmadd_ps(wv, x[q], v[r][q]);
                    }
                }
            }
        }
        for (out, sums) in acc.iter_mut().zip(&v) {
            for (q, &sum) in sums.iter().enumerate() {
                // SAFETY: `out` holds 64 f32, q · 16 + 16 ≤ 16·MV ≤ 64.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(q * 16), sum) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    #[test]
    fn matches_the_dot_product_kernel_on_every_tail() {
        if isa() != Isa::Avx512 {
            eprintln!("no AVX-512 here: the wide kernel is not used on this processor");
            return;
        }
        // Panels with and without a tail, weight rows with and without a partial tile, strided x/y.
        for &(m, k, n) in &[(2, 7, 3), (17, 5, 1), (24, 40, 9), (64, 576, 192), (65, 33, 13), (130, 100, 7), (200, 1536, 20)] {
            let xs = k + 3;
            let x = values(m * xs, 1);
            let w = values(n * (k + 1), 2);
            let wr = WeightRows { data: WeightData::F32(&w), rows: n, cols: k, stride: k + 1 };
            let xr = Rows { data: &x, rows: m, stride: xs };
            let mut want = vec![0.0f32; m * (n + 2)];
            let mut got = vec![f32::NAN; m * (n + 2)];
            assert!(super::super::xwt::xwt_with(Isa::Portable, xr, wr, &mut want, n + 2));
            assert!(xwt_wide(xr, wr, &mut got, n + 2));
            for i in 0..m {
                for j in 0..n {
                    let (a, b) = (got[i * (n + 2) + j], want[i * (n + 2) + j]);
                    assert!((a - b).abs() <= 1e-4 * (k as f32).sqrt(), "{m}×{k}×{n} at ({i}, {j}): {a} vs {b}");
                }
                // Columns past n are not written.
                assert!(got[i * (n + 2) + n].is_nan());
            }
        }
        // A row gets the same bits whatever the row count of the call (a window recomputed
        // alone matches the full pass).
        let (k, n) = (300, 10);
        let x = values(100 * k, 5);
        let w = values(n * k, 6);
        let wr = WeightRows { data: WeightData::F32(&w), rows: n, cols: k, stride: k };
        let mut all = vec![0.0f32; 100 * n];
        assert!(xwt_wide(Rows { data: &x, rows: 100, stride: k }, wr, &mut all, n));
        for (first, rows) in [(0, 2), (3, 17), (40, 60), (98, 2)] {
            let mut part = vec![0.0f32; rows * n];
            assert!(xwt_wide(Rows { data: &x[first * k..], rows, stride: k }, wr, &mut part, n));
            assert_eq!(part, all[first * n..(first + rows) * n], "rows {first}..{}", first + rows);
        }
        // One row, or a bf16 matrix: refused, so the caller uses another kernel.
        let bf = vec![0u16; 16];
        let mut y = vec![0.0; 32];
        assert!(!xwt_wide(Rows { data: &x, rows: 1, stride: 4 }, WeightRows { data: WeightData::F32(&w), rows: 4, cols: 4, stride: 4 }, &mut y, 4));
        assert!(!xwt_wide(Rows { data: &x, rows: 8, stride: 4 }, WeightRows { data: WeightData::Bf16(&bf), rows: 4, cols: 4, stride: 4 }, &mut y, 4));
    }
}
