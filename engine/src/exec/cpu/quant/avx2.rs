//! Each block type widened with AVX2, 32 values (four vectors) at a time.
//!
//! One `parts` function per type reads 32-value chunk `s` of the block at `b` (chunk 0 for the
//! 32-value types, 0..8 for the K-quants) as `d · q + m`: the whole numbers `q` (as f32), a
//! scale `d` per 16 values and an offset `m` (none for the symmetric types). Two users:
//! - [`widen`] stores `q · d (+ m)` into a tile, bit for bit what the reference
//!   (`load/gguf/dequant.rs`) gives (the same f16→f32 scales, one multiply and one add per
//!   value in its order, never an FMA): prefill multiplies the tile with the f32 kernel;
//! - [`dot4`] (decode) never forms the values: per chunk it sums `q · x` and adds `d` times
//!   that and `m` times the chunk's `Σx`: half the float work per weight.
//! Callers pass whole blocks (pointers inside the rows `xwt` checked).

use std::arch::x86_64::*;

/// The f16 at `p`, widened and splat.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_splat(p: *const u8) -> __m256 {
    // SAFETY: the caller's `p` has 2 readable bytes.
    let bits = unsafe { p.cast::<u16>().read_unaligned() };
    _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// The f16 at `p` as an f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: as in `f16_splat`.
    _mm256_cvtss_f32(unsafe { f16_splat(p) })
}

/// Eight bytes from `p`, zero-extended to i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn u8x8(p: *const u8) -> __m256i {
    // SAFETY: the caller's `p` has 8 readable bytes.
    unsafe { _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast())) }
}

/// The 16 bytes at `p` as four vectors of i32 lanes, each byte's low nibble (`high` false)
/// or high nibble.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles16(p: *const u8, high: bool) -> [__m256i; 2] {
    // SAFETY: the caller's `p` has 16 readable bytes.
    let v = unsafe { _mm_loadu_si128(p.cast()) };
    let v = _mm_and_si128(if high { _mm_srli_epi16::<4>(v) } else { v }, _mm_set1_epi8(0x0f));
    [_mm256_cvtepu8_epi32(v), _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(v))]
}

/// A 32-value block's nibbles: low nibbles are elements 0..16, high nibbles 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles32(p: *const u8) -> [__m256i; 4] {
    // SAFETY: the caller's `p` has 16 readable bytes.
    let ([a, b], [c, d]) = unsafe { (nibbles16(p, false), nibbles16(p, true)) };
    [a, b, c, d]
}

/// The fifth bits of elements `8g..8g + 8` of a Q5 block (`qh`: its little-endian u32 in
/// every lane), as 16 or 0 per lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fifth_bits(qh: __m256i, g: usize) -> __m256i {
    let bit = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(8 * g as i32));
    _mm256_slli_epi32::<4>(_mm256_and_si256(_mm256_srlv_epi32(qh, bit), _mm256_set1_epi32(1)))
}

/// A chunk as `d · q + m` (see the module comment).
pub struct Parts {
    pub q: [__m256; 4],
    /// Values 0..16 and 16..32.
    pub d: [__m256; 2],
    pub m: Option<f32>,
}

/// `q` as f32, one scale for all 32 values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn parts(q: [__m256i; 4], d: __m256, m: Option<f32>) -> Parts {
    Parts { q: q.map(|q| _mm256_cvtepi32_ps(q)), d: [d, d], m }
}

/// A block type as its chunks.
pub trait Chunks {
    /// Values and bytes per block.
    const BLOCK: usize;
    const BYTES: usize;
    /// Values `32s..32s + 32` of the block at `b`.
    unsafe fn parts(b: *const u8, s: usize) -> Parts;
}

macro_rules! chunks {
    ($name:ident, $block:expr, $bytes:expr, |$b:ident, $s:ident| $body:block) => {
        pub struct $name;
        impl Chunks for $name {
            const BLOCK: usize = $block;
            const BYTES: usize = $bytes;
            #[inline]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn parts($b: *const u8, $s: usize) -> Parts {
                let _ = $s;
                // SAFETY: `b` points at a whole block of this type (module comment).
                unsafe { $body }
            }
        }
    };
}

chunks!(Q8_0, 32, 34, |b, s| {
    let q = std::array::from_fn(|g| _mm256_cvtepi8_epi32(_mm_loadl_epi64(b.add(2 + 8 * g).cast())));
    parts(q, f16_splat(b), None)
});

chunks!(Q4_0, 32, 18, |b, s| {
    let q = nibbles32(b.add(2)).map(|q| _mm256_sub_epi32(q, _mm256_set1_epi32(8)));
    parts(q, f16_splat(b), None)
});

chunks!(Q4_1, 32, 20, |b, s| { parts(nibbles32(b.add(4)), f16_splat(b), Some(f16_at(b.add(2)))) });

chunks!(Q5_0, 32, 22, |b, s| {
    let qh = _mm256_set1_epi32(b.add(2).cast::<i32>().read_unaligned());
    let n = nibbles32(b.add(6));
    let q = std::array::from_fn(|g| _mm256_sub_epi32(_mm256_or_si256(n[g], fifth_bits(qh, g)), _mm256_set1_epi32(16)));
    parts(q, f16_splat(b), None)
});

chunks!(Q5_1, 32, 24, |b, s| {
    let qh = _mm256_set1_epi32(b.add(4).cast::<i32>().read_unaligned());
    let n = nibbles32(b.add(8));
    parts(std::array::from_fn(|g| _mm256_or_si256(n[g], fifth_bits(qh, g))), f16_splat(b), Some(f16_at(b.add(2))))
});

/// ggml's `get_scale_min_k4` (as in `load/gguf/dequant.rs`): sub-block `j`'s 6-bit scale and min.
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 { (q[j] & 63, q[j + 4] & 63) } else { ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)) }
}

/// Q4_K/Q5_K sub-block `s`'s `d · scale` and `−dmin · min`, as the reference rounds them.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_scale(b: *const u8, s: usize) -> (__m256, Option<f32>) {
    // SAFETY: a Q4_K/Q5_K block starts with d, dmin and 12 bytes of scales.
    let (d, dmin, packed) = unsafe { (f16_at(b), f16_at(b.add(2)), b.add(4).cast::<[u8; 12]>().read_unaligned()) };
    let (sc, m) = scale_min_k4(s, &packed);
    (_mm256_set1_ps(d * f32::from(sc)), Some(-(dmin * f32::from(m))))
}

// Q4_K: byte `l` of 32-byte group `p` holds element `l` of sub-block 2p (low nibble) and of
// sub-block 2p + 1 (high nibble).
chunks!(Q4K, 256, 144, |b, s| {
    let (d, m) = k_scale(b, s);
    let qs = b.add(16 + 32 * (s / 2));
    let ([q0, q1], [q2, q3]) = (nibbles16(qs, s % 2 == 1), nibbles16(qs.add(16), s % 2 == 1));
    parts([q0, q1, q2, q3], d, m)
});

// Q5_K: Q4_K plus `qh` (32 bytes): bit `s` of byte `l` is the fifth bit of element `l` of
// sub-block `s`.
chunks!(Q5K, 256, 176, |b, s| {
    let (d, m) = k_scale(b, s);
    let qs = b.add(48 + 32 * (s / 2));
    let ([q0, q1], [q2, q3]) = (nibbles16(qs, s % 2 == 1), nibbles16(qs.add(16), s % 2 == 1));
    let bit = _mm256_set1_epi32(1 << s);
    let q = [q0, q1, q2, q3];
    let q = std::array::from_fn(|g| {
        let unset = _mm256_cmpeq_epi32(_mm256_and_si256(u8x8(b.add(16 + 8 * g)), bit), _mm256_setzero_si256());
        _mm256_add_epi32(q[g], _mm256_andnot_si256(unset, _mm256_set1_epi32(16)))
    });
    parts(q, d, m)
});

// Q6_K: two halves of 128; element `l + 32k` of half `h` (chunk s = 4h + k) takes a nibble of
// `ql` (byte l, or l + 32 for odd k; high nibble for k ≥ 2) and bits 2k, 2k + 1 of `qh[l]`,
// minus 32, times `d · scales[8h + l / 16 + 2k]`.
chunks!(Q6K, 256, 210, |b, s| {
    let (h, k) = (s / 4, s % 4);
    let d = f16_at(b.add(208));
    let ql = b.add(64 * h + 32 * (k % 2));
    let qh = b.add(128 + 32 * h);
    let shift = _mm_cvtsi32_si128(2 * k as i32);
    let q = std::array::from_fn(|g| {
        let low = u8x8(ql.add(8 * g));
        let low = if k >= 2 { _mm256_srli_epi32::<4>(low) } else { _mm256_and_si256(low, _mm256_set1_epi32(0x0f)) };
        let high = _mm256_slli_epi32::<4>(_mm256_and_si256(_mm256_srl_epi32(u8x8(qh.add(8 * g)), shift), _mm256_set1_epi32(3)));
        _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(low, high), _mm256_set1_epi32(32)))
    });
    let scale = |half: usize| _mm256_set1_ps(d * f32::from(*b.add(192 + 8 * h + half + 2 * k) as i8));
    Parts { q, d: [scale(0), scale(1)], m: None }
});

/// A row of whole `T` blocks (`bytes`) widened into `out`, bit for bit as the reference.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn widen<T: Chunks>(bytes: &[u8], out: &mut [f32]) {
    for (b, o) in bytes.chunks_exact(T::BYTES).zip(out.chunks_exact_mut(T::BLOCK)) {
        for s in 0..T::BLOCK / 32 {
            // SAFETY: `b` is a whole block; `o` holds its BLOCK values, 32s + 32 ≤ BLOCK.
            unsafe {
                let p = T::parts(b.as_ptr(), s);
                for g in 0..4 {
                    let v = _mm256_mul_ps(p.q[g], p.d[g / 2]);
                    let v = p.m.map_or(v, |m| _mm256_add_ps(v, _mm256_set1_ps(m)));
                    _mm256_storeu_ps(o.as_mut_ptr().add(32 * s + 8 * g), v);
                }
            }
        }
    }
}

/// Dot products of one row of `x` (`k` values; `x_sums[t]` = the sum of its values
/// `32t..32t + 32`) with 4 rows of `T` blocks, the weights never formed: per chunk,
/// `d · Σ q·x` (lane-wise, summed across lanes once at the end) `+ m · Σx`. `ahead`: bytes
/// from a row to the same row of the next tile (prefetched).
///
/// # Safety
/// `x` has `k` readable values, `x_sums` `k / 32`; each row has `k / T::BLOCK` whole blocks;
/// the processor has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot4<T: Chunks>(x: *const f32, x_sums: &[f32], rows: [*const u8; 4], k: usize, ahead: usize) -> [f32; 4] {
    let mut v = [_mm256_setzero_ps(); 4];
    let mut offsets = [0.0f32; 4];
    let per = T::BLOCK / 32;
    for t in 0..k / 32 {
        let (block, s) = (t / per, t % per);
        // SAFETY: see the function's contract; 32t + 32 ≤ k.
        unsafe {
            let xs: [__m256; 4] = std::array::from_fn(|g| _mm256_loadu_ps(x.add(32 * t + 8 * g)));
            for b in 0..4 {
                // The weights stream from memory once per token: ask for the next tile's bytes
                // (`ahead` further, the same place in row b + 4) while these are multiplied.
                // A prefetch never faults; the address is only computed, never dereferenced.
                _mm_prefetch::<_MM_HINT_T0>(rows[b].wrapping_add(ahead + 32 * t * T::BYTES / T::BLOCK).cast());
                let p = T::parts(rows[b].add(block * T::BYTES), s);
                let lo = _mm256_fmadd_ps(xs[1], p.q[1], _mm256_mul_ps(xs[0], p.q[0]));
                let hi = _mm256_fmadd_ps(xs[3], p.q[3], _mm256_mul_ps(xs[2], p.q[2]));
                v[b] = _mm256_fmadd_ps(p.d[1], hi, _mm256_fmadd_ps(p.d[0], lo, v[b]));
                if let Some(m) = p.m {
                    offsets[b] += m * x_sums[t];
                }
            }
        }
    }
    let sums = crate::exec::cpu::xwt::sum4_256(v);
    std::array::from_fn(|b| sums[b] + offsets[b])
}

/// A row of f16 values (any width).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn f16_row(b: &[u8], out: &mut [f32]) {
    let n = out.len().min(b.len() / 2);
    let full = n / 8 * 8;
    for c in (0..full).step_by(8) {
        // SAFETY: `b` holds 2·n bytes and `out` n values, c + 8 ≤ n.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(c), _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(2 * c).cast()))) }
    }
    for (c, o) in out.iter_mut().enumerate().take(n).skip(full) {
        *o = half::f16::from_bits(u16::from_le_bytes([b[2 * c], b[2 * c + 1]])).to_f32();
    }
}
