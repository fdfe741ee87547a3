//! `y = x · Wᵀ` with `W` in the checkpoint's own layout (`[out, in]`, rows contiguous) and its
//! own dtype (f32, bf16 or f16, widened to f32 in registers): one kernel for prefill and for
//! decode, reading the weights once from wherever they live (the memory-mapped file).
//!
//! Every output is a dot product of two contiguous rows, so the kernel computes 4 × 4 blocks of
//! them at once (16 vector accumulators), vectorized along `in`, and sums the lanes at the end.
//! Output rows are split between the threads; the instruction set is picked at run time
//! (AVX-512, AVX2 + FMA, or portable code), never at build time.

use rayon::prelude::*;

use super::quant::panel::{self, Panels};

pub use crate::load::matrix::{WeightData, WeightRows};

/// The activations: `m` rows of `w.cols` values, row `i` starting at `i · stride`.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub stride: usize,
}

#[cfg(target_arch = "x86_64")]
pub(crate) use simd::sum4_256;

/// Which instructions the kernel uses on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

/// The best instruction set this processor has (checked once).
pub fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    })
}

/// Output rows per parallel task: enough work to be worth a thread, few enough to balance, a
/// multiple of the kernel's tile (`granule` rows of `W`) so no piece ends in a part-empty tile.
fn chunk_rows(n: usize, m: usize, k: usize, granule: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    // Small products run on one thread (waking another costs more than it saves).
    if m * n * k < 1 << 16 {
        return n.max(1);
    }
    n.div_ceil(threads * 4).max(granule).next_multiple_of(granule)
}

/// Whether `w` runs on the quantized prefill kernel (`quant/panel.rs`) for `m` rows of `x`.
fn on_panels(isa: Isa, w: WeightRows<'_>, m: usize) -> bool {
    matches!(super::quant::as_plain(w).data, WeightData::Quant(q) if m > FUSED_ROWS && super::quant::fused(isa, q.ty))
}

/// `x` transposed into panels once for the whole call, when any of `ws` is multiplied on them.
fn panels_for(isa: Isa, x: Rows<'_>, ws: &[WeightRows<'_>]) -> Option<Panels> {
    let w = ws.iter().find(|w| on_panels(isa, **w, x.rows))?;
    Some(Panels::new(x.data, x.rows, x.stride, w.cols))
}

/// Rows of `W` per kernel tile: a parallel piece is a whole number of them.
fn granule(isa: Isa, w: WeightRows<'_>, m: usize) -> usize {
    if on_panels(isa, w, m) { panel::NR } else { 4 }
}

/// `y[i, j] = Σ_c x[i, c] · w[j, c]` for `i < x.rows`, `j < w.rows`; `y` row `i` starts at
/// `i · y_stride`. Panics never: the caller checks shapes (`false` if they do not fit).
#[must_use]
pub fn xwt(x: Rows<'_>, w: WeightRows<'_>, y: &mut [f32], y_stride: usize) -> bool {
    xwt_with(isa(), x, w, y, y_stride)
}

/// [`xwt`] on a given instruction set (tests run every set the processor has).
#[must_use]
pub fn xwt_with(isa: Isa, x: Rows<'_>, w: WeightRows<'_>, y: &mut [f32], y_stride: usize) -> bool {
    let (m, n, k) = (x.rows, w.rows, w.cols);
    if !shapes_fit(x, w, y, y_stride) {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    let isa = match isa {
        Isa::Avx512 | Isa::Avx2 if self::isa() == Isa::Portable => Isa::Portable,
        Isa::Avx512 if self::isa() == Isa::Avx2 => Isa::Avx2,
        other => other,
    };
    let chunk = chunk_rows(n, m, k, granule(isa, w, m));
    let xt = panels_for(isa, x, &[w]);
    if chunk >= n {
        block(isa, x, w, 0, n, y.as_mut_ptr() as usize, y_stride, xt.as_ref());
        return true;
    }
    let y_addr = y.as_mut_ptr() as usize;
    (0..n.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let j0 = c * chunk;
        block(isa, x, w, j0, (j0 + chunk).min(n), y_addr, y_stride, xt.as_ref());
    });
    true
}

/// One of several products of the same `x` ([`xwt_many`], [`xwt_wide_many`]): its weights
/// and where its output goes.
///
/// [`xwt_wide_many`]: super::wide::xwt_wide_many
pub struct Product<'a> {
    pub w: WeightRows<'a>,
    pub y: &'a mut [f32],
    pub y_stride: usize,
}

/// Several products of the same `x` (q, k and v; gate and up) in one parallel region: the
/// threads wake once, and a short matrix (k, v) does not leave a thread idle at its end.
/// `false` (nothing written) if a shape does not fit.
#[must_use]
pub fn xwt_many(x: Rows<'_>, products: &mut [Product<'_>]) -> bool {
    if products.iter().any(|p| !shapes_fit(x, p.w, p.y, p.y_stride)) {
        return false;
    }
    let isa = isa();
    let outs: Vec<(WeightRows<'_>, usize, usize)> = products.iter_mut().map(|p| (p.w, p.y.as_mut_ptr() as usize, p.y_stride)).collect();
    let mut pieces = Vec::new();
    for (i, (w, _, _)) in outs.iter().enumerate() {
        let chunk = chunk_rows(w.rows, x.rows, w.cols, granule(isa, *w, x.rows));
        pieces.extend((0..w.rows).step_by(chunk).map(|j0| (i, j0, (j0 + chunk).min(w.rows))));
    }
    if x.rows == 0 {
        return true;
    }
    let ws: Vec<WeightRows<'_>> = outs.iter().map(|o| o.0).collect();
    let xt = panels_for(isa, x, &ws);
    // Each piece writes its own column range of its own output (see `block`).
    pieces.into_par_iter().for_each(|(i, j0, j1)| {
        let (w, y_addr, y_stride) = outs[i];
        block(isa, x, w, j0, j1, y_addr, y_stride, xt.as_ref());
    });
    true
}

/// Whether `x`, `w` and `y` hold every element a product reads and writes.
pub(crate) fn shapes_fit(x: Rows<'_>, w: WeightRows<'_>, y: &[f32], y_stride: usize) -> bool {
    let (m, n, k) = (x.rows, w.rows, w.cols);
    let x_ok = x.stride >= k && (m == 0 || x.data.len() >= (m - 1) * x.stride + k);
    let y_ok = y_stride >= n && (m == 0 || y.len() >= (m - 1) * y_stride + n);
    w.len_ok() && x_ok && y_ok
}

/// Up to this many rows of `x`, quantized weights are widened in registers for each row (read
/// again per row); more rows share a widened tile (`quant/panel.rs`).
const FUSED_ROWS: usize = 1;

/// Columns `j0..j1` of `y`. `y_addr` is the address of `y`'s first element: the column ranges
/// of different tasks never overlap, so each writes its own elements. `xt`: `x` as panels,
/// for the quantized prefill kernel ([`panels_for`]).
#[allow(clippy::too_many_arguments)]
fn block(isa: Isa, x: Rows<'_>, w: WeightRows<'_>, j0: usize, j1: usize, y_addr: usize, y_stride: usize, xt: Option<&Panels>) {
    let (m, k) = (x.rows, w.cols);
    let w = super::quant::as_plain(w);
    let mut j = j0;
    let mut tile = Vec::new();
    let mut x_sums: Vec<Vec<f32>> = Vec::new();
    while j < j1 {
        let nr = (j1 - j).min(4);
        // Prefill: a tile of weight rows widened once for all rows of `x` (`quant/panel.rs`).
        if let (WeightData::Quant(q), Some(xt)) = (w.data, xt)
            && xt.fits(m, k)
            && m > FUSED_ROWS
            && super::quant::fused(isa, q.ty)
        {
            panel::block(isa, xt, q, j, j1, y_addr, y_stride);
            return;
        }
        // Decode: the blocks are widened in registers, never stored.
        if let WeightData::Quant(q) = w.data
            && m <= FUSED_ROWS
            && super::quant::fused(isa, q.ty)
        {
            if x_sums.len() < m {
                x_sums = (0..m).map(|i| super::quant::chunk_sums(&x.data[i * x.stride..i * x.stride + k])).collect();
            }
            for i in 0..m {
                let acc = super::quant::dot_rows(isa, &x.data[i * x.stride..], &x_sums[i], q, j, nr, k);
                for (b, &v) in acc.iter().enumerate().take(nr) {
                    write(y_addr, i * y_stride + j + b, v);
                }
            }
            j += nr;
            continue;
        }
        // Quantized rows are widened a tile at a time, into the cache, never whole; the tile
        // serves every row of `x`, so prefill pays for it once per 4 weight rows.
        let wj = match w.data {
            WeightData::Quant(q) => {
                super::quant::dequantize_rows(isa, q, j, nr, k, &mut tile);
                WeightRows { data: WeightData::F32(&tile), rows: nr, cols: k, stride: k }
            }
            _ => w.slice_rows(j, nr),
        };
        let mut i = 0;
        while i < m {
            let mr = (m - i).min(4);
            let mut acc = [[0.0f32; 4]; 4];
            dot_tile(isa, &x.data[i * x.stride..], x.stride, mr, wj, nr, k, &mut acc);
            for (a, row) in acc.iter().enumerate().take(mr) {
                for (b, &v) in row.iter().enumerate().take(nr) {
                    write(y_addr, (i + a) * y_stride + j + b, v);
                }
            }
            i += mr;
        }
        j += nr;
    }
}

#[inline]
#[allow(unsafe_code)]
fn write(y_addr: usize, index: usize, v: f32) {
    // SAFETY: `xwt` checked that `y` holds every `(i, j)` written (index < y.len()), and the
    // tasks of one call write disjoint column ranges of it, so no two writes alias; `y` is
    // borrowed mutably for the whole call, so nothing else reads it meanwhile.
    unsafe { *(y_addr as *mut f32).add(index) = v }
}

/// `acc[a][b] = x[a] · w[b]` for `a < mr`, `b < nr` over `k` columns.
#[allow(clippy::too_many_arguments)]
fn dot_tile(isa: Isa, x: &[f32], x_stride: usize, mr: usize, w: WeightRows<'_>, nr: usize, k: usize, acc: &mut [[f32; 4]; 4]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => simd::dot_tile_avx512(x, x_stride, mr, w, nr, k, acc),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => simd::dot_tile_avx2(x, x_stride, mr, w, nr, k, acc),
        _ => dot_tile_portable(x, x_stride, mr, w, nr, k, acc),
    }
}

fn dot_tile_portable(x: &[f32], x_stride: usize, mr: usize, w: WeightRows<'_>, nr: usize, k: usize, acc: &mut [[f32; 4]; 4]) {
    for (a, acc_a) in acc.iter_mut().enumerate().take(mr) {
        let xa = &x[a * x_stride..a * x_stride + k];
        for (b, out) in acc_a.iter_mut().enumerate().take(nr) {
            // Eight lanes, as the vector paths sum, so the compiler can vectorize it.
            let mut lanes = [0.0f32; 8];
            for (c, &xv) in xa.iter().enumerate() {
                lanes[c % 8] += xv * w.get(b, c);
            }
            *out = lanes.iter().sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod simd {
    //! The vector kernels, one per instruction set and weight dtype, each generic over the
    //! rows of `x` in the tile (`MR`, so the 4 × `MR` accumulators stay in registers). Loads
    //! are unaligned and stay inside the bounds `xwt` checked: row `a` of `x` covers
    //! `a · x_stride .. a · x_stride + k`, row `b` of `w` covers `b · stride .. b · stride + k`.
    //! A tile narrower than 4 rows of `w` repeats its last row and drops the extra sums.

    use std::arch::x86_64::*;

    use super::{WeightData, WeightRows};

    macro_rules! tile {
        ($name:ident, $feature:literal, $lanes:expr, $vec:ty, $elem:ty, $zero:ident, $loadx:ident, $loadw:ident, $fma:ident, $sum:ident) => {
            #[target_feature(enable = $feature)]
            unsafe fn $name<const MR: usize>(x: *const f32, x_stride: usize, w: [*const $elem; 4], k: usize, tail: &dyn Fn(usize, usize, usize) -> f32, acc: &mut [[f32; 4]; 4]) {
                const L: usize = $lanes;
                let mut v: [[$vec; 4]; MR] = [[$zero(); 4]; MR];
                let full = k / L * L;
                let mut c = 0;
                // SAFETY: every pointer stays inside the rows `xwt` checked (module comment).
                unsafe {
                    while c < full {
                        let w0 = $loadw(w[0].add(c));
                        let w1 = $loadw(w[1].add(c));
                        let w2 = $loadw(w[2].add(c));
                        let w3 = $loadw(w[3].add(c));
                        for a in 0..MR {
                            let xv = $loadx(x.add(a * x_stride + c));
                            v[a][0] = $fma(xv, w0, v[a][0]);
                            v[a][1] = $fma(xv, w1, v[a][1]);
                            v[a][2] = $fma(xv, w2, v[a][2]);
                            v[a][3] = $fma(xv, w3, v[a][3]);
                        }
                        c += L;
                    }
                }
                for a in 0..MR {
                    let sums = $sum(v[a]);
                    for b in 0..4 {
                        let mut s = sums[b];
                        for t in full..k {
                            s += tail(a, b, t);
                        }
                        acc[a][b] = s;
                    }
                }
            }
        };
    }

    /// The lane sums of four vectors at once (a transpose-and-add tree, not four reductions).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) fn sum4_256(v: [__m256; 4]) -> [f32; 4] {
        let h01 = _mm256_hadd_ps(v[0], v[1]);
        let h23 = _mm256_hadd_ps(v[2], v[3]);
        let h = _mm256_hadd_ps(h01, h23); // [s0 s1 s2 s3 | s0' s1' s2' s3'] per 128-bit half
        let s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let mut out = [0.0f32; 4];
        // SAFETY: `out` holds 4 f32.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), s) };
        out
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn sum4_512(v: [__m512; 4]) -> [f32; 4] {
        let half = |x: __m512| {
            let lo = _mm512_castps512_ps256(x);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x)));
            _mm256_add_ps(lo, hi)
        };
        sum4_256([half(v[0]), half(v[1]), half(v[2]), half(v[3])])
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn f32_16(p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn bf16_16(p: *const u16) -> __m512 {
        unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast())))) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn f16_16(p: *const u16) -> __m512 {
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn f32_8(p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn bf16_8(p: *const u16) -> __m256 {
        unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast())))) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn f16_8(p: *const u16) -> __m256 {
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }

    tile!(t512_f32, "avx512f,avx2,fma,f16c", 16, __m512, f32, _mm512_setzero_ps, f32_16, f32_16, _mm512_fmadd_ps, sum4_512);
    tile!(t512_bf16, "avx512f,avx2,fma,f16c", 16, __m512, u16, _mm512_setzero_ps, f32_16, bf16_16, _mm512_fmadd_ps, sum4_512);
    tile!(t512_f16, "avx512f,avx2,fma,f16c", 16, __m512, u16, _mm512_setzero_ps, f32_16, f16_16, _mm512_fmadd_ps, sum4_512);
    tile!(t256_f32, "avx2,fma,f16c", 8, __m256, f32, _mm256_setzero_ps, f32_8, f32_8, _mm256_fmadd_ps, sum4_256);
    tile!(t256_bf16, "avx2,fma,f16c", 8, __m256, u16, _mm256_setzero_ps, f32_8, bf16_8, _mm256_fmadd_ps, sum4_256);
    tile!(t256_f16, "avx2,fma,f16c", 8, __m256, u16, _mm256_setzero_ps, f32_8, f16_8, _mm256_fmadd_ps, sum4_256);

    /// Pointers to 4 rows of `w` (the last real row repeated when `nr < 4`).
    fn rows<T>(d: &[T], stride: usize, nr: usize) -> [*const T; 4] {
        std::array::from_fn(|b| d[b.min(nr - 1) * stride..].as_ptr())
    }

    macro_rules! dispatch {
        ($f32:ident, $bf16:ident, $f16:ident, $x:expr, $x_stride:expr, $mr:expr, $w:expr, $nr:expr, $k:expr, $acc:expr) => {{
            let (x, xs, w, nr, k) = ($x, $x_stride, $w, $nr, $k);
            let xp = x.as_ptr();
            let tail = |a: usize, b: usize, t: usize| x[a * xs + t] * w.get(b.min(nr - 1), t);
            // SAFETY: see the module comment; the processor has the instruction set (`isa()`).
            unsafe {
                match (w.data, $mr) {
                    (WeightData::F32(d), 1) => $f32::<1>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::F32(d), 2) => $f32::<2>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::F32(d), 3) => $f32::<3>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::F32(d), _) => $f32::<4>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::Bf16(d), 1) => $bf16::<1>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::Bf16(d), 2) => $bf16::<2>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::Bf16(d), 3) => $bf16::<3>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::Bf16(d), _) => $bf16::<4>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::F16(d), 1) => $f16::<1>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::F16(d), 2) => $f16::<2>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::F16(d), 3) => $f16::<3>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    (WeightData::F16(d), _) => $f16::<4>(xp, xs, rows(d, w.stride, nr), k, &tail, $acc),
                    // `block` dequantizes quantized tiles before they get here.
                    (WeightData::Quant(_), _) => super::dot_tile_portable(x, xs, $mr, w, nr, k, $acc),
                }
            }
        }};
    }

    pub fn dot_tile_avx512(x: &[f32], x_stride: usize, mr: usize, w: WeightRows<'_>, nr: usize, k: usize, acc: &mut [[f32; 4]; 4]) {
        dispatch!(t512_f32, t512_bf16, t512_f16, x, x_stride, mr, w, nr, k, acc)
    }

    pub fn dot_tile_avx2(x: &[f32], x_stride: usize, mr: usize, w: WeightRows<'_>, nr: usize, k: usize, acc: &mut [[f32; 4]; 4]) {
        dispatch!(t256_f32, t256_bf16, t256_f16, x, x_stride, mr, w, nr, k, acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k).map(|c| f64::from(x[i * k + c]) * f64::from(w[j * k + c])).sum::<f64>() as f32;
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    #[test]
    fn every_shape_dtype_and_instruction_set_matches_a_plain_sum() {
        for &(m, k, n) in &[(1, 1, 1), (1, 17, 5), (3, 64, 9), (4, 576, 8), (5, 33, 7), (7, 100, 13), (64, 576, 150), (2, 1536, 192)] {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let bf: Vec<u16> = w.iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect();
            let hf: Vec<u16> = w.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
            for (name, data, rounded) in [
                ("f32", WeightData::F32(&w), w.clone()),
                ("bf16", WeightData::Bf16(&bf), bf.iter().map(|&b| half::bf16::from_bits(b).to_f32()).collect()),
                ("f16", WeightData::F16(&hf), hf.iter().map(|&b| half::f16::from_bits(b).to_f32()).collect()),
            ] {
                let want = reference(&x, m, k, &rounded, n);
                for set in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
                    let mut y = vec![f32::NAN; m * n];
                    let ok = xwt_with(set, Rows { data: &x, rows: m, stride: k }, WeightRows { data, rows: n, cols: k, stride: k }, &mut y, n);
                    assert!(ok);
                    let err = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                    assert!(err <= 1e-4 * (k as f32).sqrt(), "{m}×{k}×{n} {name} on {set:?} (this processor: {:?}): {err}", isa());
                }
            }
        }
    }

    #[test]
    fn parallel_pieces_are_whole_tiles_of_their_kernel() {
        for (n, m, k) in [(256usize, 64usize, 640usize), (1024, 64, 640), (640, 64, 2048), (262_144, 64, 640), (67, 17, 512)] {
            for granule in [4, super::panel::NR] {
                let chunk = chunk_rows(n, m, k, granule);
                assert!(chunk % granule == 0 && chunk >= granule, "{n}×{k}, {m} rows, tiles of {granule}: {chunk}");
            }
        }
        // Too small to share: one piece, the whole product.
        assert_eq!(chunk_rows(5, 2, 32, 6), 5);
    }

    #[test]
    fn strided_rows_and_outputs() {
        // x rows 5 apart inside a wider buffer, w rows of a strided view, y with a wide stride.
        let (m, k, n) = (3, 4, 6);
        let xs = values(m * 5, 3);
        let ws = values(n * 7, 4);
        let mut y = vec![0.0f32; m * 10];
        assert!(xwt(Rows { data: &xs, rows: m, stride: 5 }, WeightRows { data: WeightData::F32(&ws), rows: n, cols: k, stride: 7 }, &mut y, 10));
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|c| xs[i * 5 + c] * ws[j * 7 + c]).sum();
                assert!((y[i * 10 + j] - want).abs() < 1e-5);
            }
        }
        // Shapes that do not fit are refused, never read out of bounds.
        assert!(!xwt(Rows { data: &xs, rows: 4, stride: 5 }, WeightRows { data: WeightData::F32(&ws), rows: n, cols: k, stride: 7 }, &mut y, 10));
    }
}
