//! Prefill (two or more rows of `x`) with quantized weights, AVX2: `x` transposed into panels
//! of 16 rows (`[k][16]`) once per call ([`Panels`], shared by every parallel piece), and each
//! tile of 6 weight rows widened once (bit for bit the reference's values) into a small
//! buffer, then every weight broadcast against the panels' two vectors: 12 accumulators,
//! 12 FMAs per 8 loads, so the kernel runs near the FMA rate and the widening is paid once for
//! all rows of `x`.
//!
//! Each output is one FMA chain over `in` in order (a lane of its own), so a row's bits do not
//! depend on the call's row count, its place in a panel or how the call is split in pieces.
//! The panels and tiles live in buffers each thread keeps between calls (no allocation per
//! matrix in a prefill).

use std::cell::Cell;
use std::thread::LocalKey;

use super::Isa;
use crate::load::matrix::QuantRows;

/// Rows of `x` per panel (two vectors of 8).
pub const PANEL: usize = 16;
/// Rows of `W` per tile: 6 × 2 accumulators of the 16 vector registers. A parallel piece of
/// a multiple of `NR` rows leaves no tile part empty.
pub const NR: usize = 6;
/// Spare buffers larger than this many values are dropped rather than kept (a long prompt's
/// panels would otherwise stay allocated).
const KEEP: usize = 1 << 20;

thread_local! {
    static SPARE_PANELS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static SPARE_TILE: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// `len` zeros in this thread's spare buffer (or a new one).
fn take(spare: &'static LocalKey<Cell<Vec<f32>>>, len: usize) -> Vec<f32> {
    let mut buf = spare.with(Cell::take);
    buf.clear();
    buf.resize(len, 0.0);
    buf
}

fn give_back(spare: &'static LocalKey<Cell<Vec<f32>>>, buf: Vec<f32>) {
    if buf.capacity() <= KEEP {
        spare.with(|s| s.set(buf));
    }
}

/// `m` rows of `x` (`k` values each) transposed into `m.div_ceil(16)` panels of `[k][16]`,
/// zeros past row `m`: what [`block`] multiplies the widened weights against.
pub struct Panels {
    buf: Vec<f32>,
    m: usize,
    k: usize,
}

impl Panels {
    /// Row `i` of `x` starts at `i · x_stride`; the caller checked `x` holds every row.
    pub fn new(x: &[f32], m: usize, x_stride: usize, k: usize) -> Self {
        let mut buf = take(&SPARE_PANELS, m.div_ceil(PANEL) * PANEL * k);
        for (p, panel) in buf.chunks_exact_mut((PANEL * k).max(1)).enumerate() {
            for lane in 0..(m - p * PANEL).min(PANEL) {
                let row = &x[(p * PANEL + lane) * x_stride..][..k];
                for (c, &v) in row.iter().enumerate() {
                    panel[c * PANEL + lane] = v;
                }
            }
        }
        Self { buf, m, k }
    }

    /// Whether these are the panels of `m` rows of `k` values.
    pub fn fits(&self, m: usize, k: usize) -> bool {
        (self.m, self.k) == (m, k)
    }

    fn count(&self) -> usize {
        self.m.div_ceil(PANEL)
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.buf[p * PANEL * self.k..(p + 1) * PANEL * self.k]
    }
}

impl Drop for Panels {
    fn drop(&mut self) {
        give_back(&SPARE_PANELS, std::mem::take(&mut self.buf));
    }
}

/// `y[i, j] = Σ_c x[i, c] · w[j, c]` for the rows `i` of `x` in `xt` and weight rows `j0..j1`
/// of `q`; `y` at `y_addr` (see `xwt.rs` `block`). The caller checked the shapes (`q`'s rows
/// hold `xt`'s `k` values) and that the processor has AVX2 ([`super::fused`]).
pub fn block(isa: Isa, xt: &Panels, q: QuantRows<'_>, j0: usize, j1: usize, y_addr: usize, y_stride: usize) {
    let (m, k) = (xt.m, xt.k);
    let mut tile = take(&SPARE_TILE, NR * k);
    let mut j = j0;
    while j < j1 {
        let nr = (j1 - j).min(NR);
        for (r, row) in tile.chunks_exact_mut(k.max(1)).enumerate().take(nr) {
            super::widen_row(isa, q.ty, q.row(j + r), row);
        }
        let rows: [&[f32]; NR] = std::array::from_fn(|r| &tile[r.min(nr - 1) * k..(r.min(nr - 1) + 1) * k]);
        for p in 0..xt.count() {
            let mut acc = [[0.0f32; PANEL]; NR];
            #[cfg(target_arch = "x86_64")]
            simd::tile(xt.panel(p), rows, k, &mut acc);
            for a in 0..(m - p * PANEL).min(PANEL) {
                for (r, sums) in acc.iter().enumerate().take(nr) {
                    write(y_addr, (p * PANEL + a) * y_stride + j + r, sums[a]);
                }
            }
        }
        j += nr;
    }
    give_back(&SPARE_TILE, tile);
}

#[inline]
#[allow(unsafe_code)]
fn write(y_addr: usize, index: usize, v: f32) {
    // SAFETY: as in `xwt.rs` `write`: the caller checked `y` holds every index written, and
    // the tasks of one call write disjoint columns.
    unsafe { *(y_addr as *mut f32).add(index) = v }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod simd {
    use std::arch::x86_64::*;

    use super::{NR, PANEL};

    /// `acc[r][a] = Σ_c rows[r][c] · panel[c · 16 + a]`.
    pub fn tile(panel: &[f32], rows: [&[f32]; NR], k: usize, acc: &mut [[f32; PANEL]; NR]) {
        if panel.len() < k * PANEL || rows.iter().any(|r| r.len() < k) || super::super::super::xwt::isa() == super::Isa::Portable {
            return;
        }
        // SAFETY: the processor has AVX2 and FMA (checked above); every load is bounded by the
        // check above (panel column c < k of 16 values, row element c < k).
        unsafe { kernel(panel.as_ptr(), rows.map(<[f32]>::as_ptr), k, acc) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel(panel: *const f32, rows: [*const f32; NR], k: usize, acc: &mut [[f32; PANEL]; NR]) {
        let mut v = [[_mm256_setzero_ps(); 2]; NR];
        for c in 0..k {
            // SAFETY: c < k (the caller's bounds).
            unsafe {
                let x = [_mm256_loadu_ps(panel.add(c * PANEL)), _mm256_loadu_ps(panel.add(c * PANEL + 8))];
                for r in 0..NR {
                    let w = _mm256_set1_ps(*rows[r].add(c));
                    v[r][0] = _mm256_fmadd_ps(w, x[0], v[r][0]);
                    v[r][1] = _mm256_fmadd_ps(w, x[1], v[r][1]);
                }
            }
        }
        for (r, out) in acc.iter_mut().enumerate() {
            // SAFETY: each row of `acc` holds 16 values.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), v[r][0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), v[r][1]);
            }
        }
    }
}
