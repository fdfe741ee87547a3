//! Each block type widened to f32 eight values at a time with AVX2, bit for bit what the
//! reference (`load/gguf/dequant.rs`) gives: the same f16→f32 scales, then one multiply and
//! one add or subtract per value, in the reference's order (never fused into an FMA).
//!
//! Every function reads one whole block `b` (its type's bytes) and writes its values to `out`
//! (32 or 256 f32); the caller (`super::widen_row`) hands exact-size chunks.

use std::arch::x86_64::*;

use half::f16;

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Eight bytes from `p`, zero-extended to i32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn u8x8(p: *const u8) -> __m256i {
    // SAFETY: the caller's `p` has 8 readable bytes.
    unsafe { _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast())) }
}

/// Bytes 0..8 (`half` 0) or 8..16 (`half` 1) of `v`, zero-extended to i32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
fn half8(v: __m128i, half: usize) -> __m256i {
    if half == 0 { _mm256_cvtepu8_epi32(v) } else { _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(v)) }
}

/// The low and the high nibbles of 16 bytes at `p`, each as 16 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles(p: *const u8) -> (__m128i, __m128i) {
    // SAFETY: the caller's `p` has 16 readable bytes.
    let v = unsafe { _mm_loadu_si128(p.cast()) };
    let mask = _mm_set1_epi8(0x0f);
    (_mm_and_si128(v, mask), _mm_and_si128(_mm_srli_epi16::<4>(v), mask))
}

/// `out[at..at + 8] = q · d` (`q` i32 lanes).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store_scaled(out: &mut [f32], at: usize, q: __m256i, d: __m256) {
    debug_assert!(at + 8 <= out.len());
    // SAFETY: `out` holds `at + 8` values (the callers' blocks are exact-size chunks).
    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at), _mm256_mul_ps(_mm256_cvtepi32_ps(q), d)) }
}

/// `out[at..at + 8] = q · d + m`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store_affine(out: &mut [f32], at: usize, q: __m256i, d: __m256, m: __m256) {
    debug_assert!(at + 8 <= out.len());
    // SAFETY: as in `store_scaled`.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at), _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), d), m)) }
}

/// `out[at..at + 8] = d · q − m` (the K-quants' order).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store_k(out: &mut [f32], at: usize, q: __m256i, d: __m256, m: __m256) {
    debug_assert!(at + 8 <= out.len());
    // SAFETY: as in `store_scaled`.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at), _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(q)), m)) }
}

/// The fifth bits of elements `8g..8g + 8` of a Q5 block (`qh` as a little-endian u32), as 16
/// or 0 per i32 lane.
#[target_feature(enable = "avx2,fma,f16c")]
fn fifth_bits(qh: u32, g: usize) -> __m256i {
    let bits = _mm256_set1_epi32(((qh >> (8 * g)) & 0xff) as i32);
    let lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let set = _mm256_cmpeq_epi32(_mm256_and_si256(bits, lane), lane);
    _mm256_and_si256(set, _mm256_set1_epi32(16))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub fn q8_0(b: &[u8], out: &mut [f32]) {
    let d = _mm256_set1_ps(f16_at(b, 0));
    for g in 0..4 {
        // SAFETY: a Q8_0 block is 2 + 32 bytes; `out` holds 32 values.
        unsafe {
            let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(b.as_ptr().add(2 + 8 * g).cast()));
            store_scaled(out, 8 * g, q, d);
        }
    }
}

/// Low nibbles are elements 0..16, high nibbles 16..32.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_0(b: &[u8], out: &mut [f32]) {
    let d = _mm256_set1_ps(f16_at(b, 0));
    let eight = _mm256_set1_epi32(8);
    // SAFETY: a Q4_0 block is 2 + 16 bytes; `out` holds 32 values.
    unsafe {
        let (lo, hi) = nibbles(b.as_ptr().add(2));
        for g in 0..4 {
            let q = half8(if g < 2 { lo } else { hi }, g % 2);
            store_scaled(out, 8 * g, _mm256_sub_epi32(q, eight), d);
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (_mm256_set1_ps(f16_at(b, 0)), _mm256_set1_ps(f16_at(b, 2)));
    // SAFETY: a Q4_1 block is 4 + 16 bytes; `out` holds 32 values.
    unsafe {
        let (lo, hi) = nibbles(b.as_ptr().add(4));
        for g in 0..4 {
            store_affine(out, 8 * g, half8(if g < 2 { lo } else { hi }, g % 2), d, m);
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub fn q5_0(b: &[u8], out: &mut [f32]) {
    let d = _mm256_set1_ps(f16_at(b, 0));
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let sixteen = _mm256_set1_epi32(16);
    // SAFETY: a Q5_0 block is 2 + 4 + 16 bytes; `out` holds 32 values.
    unsafe {
        let (lo, hi) = nibbles(b.as_ptr().add(6));
        for g in 0..4 {
            let q = _mm256_or_si256(half8(if g < 2 { lo } else { hi }, g % 2), fifth_bits(qh, g));
            store_scaled(out, 8 * g, _mm256_sub_epi32(q, sixteen), d);
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub fn q5_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (_mm256_set1_ps(f16_at(b, 0)), _mm256_set1_ps(f16_at(b, 2)));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    // SAFETY: a Q5_1 block is 2 + 2 + 4 + 16 bytes; `out` holds 32 values.
    unsafe {
        let (lo, hi) = nibbles(b.as_ptr().add(8));
        for g in 0..4 {
            let q = _mm256_or_si256(half8(if g < 2 { lo } else { hi }, g % 2), fifth_bits(qh, g));
            store_affine(out, 8 * g, q, d, m);
        }
    }
}

/// ggml's `get_scale_min_k4` (as in `load/gguf/dequant.rs`): sub-block `j`'s 6-bit scale and min.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 { (q[j] & 63, q[j + 4] & 63) } else { ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)) }
}

/// Sub-block `j`'s `d · scale` and `dmin · min`, as the reference rounds them.
#[target_feature(enable = "avx2,fma,f16c")]
fn k_scale(b: &[u8], j: usize) -> (__m256, __m256) {
    let (sc, m) = scale_min_k4(j, &b[4..16]);
    (_mm256_set1_ps(f16_at(b, 0) * f32::from(sc)), _mm256_set1_ps(f16_at(b, 2) * f32::from(m)))
}

/// 16 where `h & u` is set, else 0, per i32 lane.
#[target_feature(enable = "avx2,fma,f16c")]
fn sixteen_if(h: __m256i, u: i32) -> __m256i {
    let unset = _mm256_cmpeq_epi32(_mm256_and_si256(h, _mm256_set1_epi32(u)), _mm256_setzero_si256());
    _mm256_andnot_si256(unset, _mm256_set1_epi32(16))
}

/// Bits `shift, shift + 1` of each lane of `qh`, moved to bits 4 and 5 (Q6_K's high bits).
#[target_feature(enable = "avx2,fma,f16c")]
fn q6_high(qh: __m256i, shift: i32) -> __m256i {
    _mm256_slli_epi32::<4>(_mm256_and_si256(_mm256_srlv_epi32(qh, _mm256_set1_epi32(shift)), _mm256_set1_epi32(3)))
}

/// Q4_K: 4 × 32 bytes; byte `l` of chunk `p` holds element `l` of sub-block 2p (low nibble)
/// and of sub-block 2p + 1 (high nibble).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q4_k(b: &[u8], out: &mut [f32]) {
    for p in 0..4 {
        let (d1, m1) = k_scale(b, 2 * p);
        let (d2, m2) = k_scale(b, 2 * p + 1);
        for h in 0..2 {
            // SAFETY: a Q4_K block is 16 + 128 bytes; `out` holds 256 values.
            unsafe {
                let (lo, hi) = nibbles(b.as_ptr().add(16 + 32 * p + 16 * h));
                for g in 0..2 {
                    store_k(out, 64 * p + 16 * h + 8 * g, half8(lo, g), d1, m1);
                    store_k(out, 64 * p + 32 + 16 * h + 8 * g, half8(hi, g), d2, m2);
                }
            }
        }
    }
}

/// Q5_K: Q4_K plus `qh` (32 bytes): bit 2p (2p + 1) of byte `l` is the fifth bit of element
/// `l` of sub-block 2p (2p + 1).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q5_k(b: &[u8], out: &mut [f32]) {
    for p in 0..4 {
        let (d1, m1) = k_scale(b, 2 * p);
        let (d2, m2) = k_scale(b, 2 * p + 1);
        for h in 0..2 {
            // SAFETY: a Q5_K block is 16 + 32 + 128 bytes; `out` holds 256 values.
            unsafe {
                let (lo, hi) = nibbles(b.as_ptr().add(48 + 32 * p + 16 * h));
                for g in 0..2 {
                    let qh = u8x8(b.as_ptr().add(16 + 16 * h + 8 * g));
                    let l = 16 * h + 8 * g;
                    store_k(out, 64 * p + l, _mm256_add_epi32(half8(lo, g), sixteen_if(qh, 1 << (2 * p))), d1, m1);
                    store_k(out, 64 * p + 32 + l, _mm256_add_epi32(half8(hi, g), sixteen_if(qh, 2 << (2 * p))), d2, m2);
                }
            }
        }
    }
}

/// Q6_K: two halves of 128; element `l + 32k` of a half takes a nibble of `ql` and two bits
/// of `qh[l]`, minus 32, times `d · scales[group of 16]`.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn q6_k(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 208);
    let (low4, thirty_two) = (_mm256_set1_epi32(0x0f), _mm256_set1_epi32(32));
    for half in 0..2 {
        for l in (0..32).step_by(8) {
            // SAFETY: a Q6_K block is 128 + 64 + 16 + 2 bytes; `out` holds 256 values.
            unsafe {
                let qa = u8x8(b.as_ptr().add(64 * half + l));
                let qb = u8x8(b.as_ptr().add(64 * half + 32 + l));
                let qh = u8x8(b.as_ptr().add(128 + 32 * half + l));
                let q = [
                    _mm256_or_si256(_mm256_and_si256(qa, low4), q6_high(qh, 0)),
                    _mm256_or_si256(_mm256_and_si256(qb, low4), q6_high(qh, 2)),
                    _mm256_or_si256(_mm256_srli_epi32::<4>(qa), q6_high(qh, 4)),
                    _mm256_or_si256(_mm256_srli_epi32::<4>(qb), q6_high(qh, 6)),
                ];
                for (k, q) in q.into_iter().enumerate() {
                    let scale = f32::from(b[192 + 8 * half + l / 16 + 2 * k] as i8);
                    store_scaled(out, 128 * half + l + 32 * k, _mm256_sub_epi32(q, thirty_two), _mm256_set1_ps(d * scale));
                }
            }
        }
    }
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
    for c in full..n {
        out[c] = f16_at(b, 2 * c);
    }
}
