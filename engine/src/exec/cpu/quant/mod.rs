//! GGUF blocks read as they lie: a tile of quantized weight rows widened into a small f32
//! buffer that stays in cache, for the row-dot kernel (`xwt.rs`) to multiply against every
//! row of `x` (activations stay f32). The whole matrix is never widened.
//!
//! The widened values are bit for bit the reference dequantizer's (`load/gguf/dequant.rs`), so
//! a product equals the f32 kernel's on the dequantized matrix exactly, and a row's bits do not
//! depend on how many rows of `x` the call has (prefill and decode agree).

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2;

use super::xwt::Isa;
use crate::load::gguf::GgmlType;
use crate::load::gguf::dequant::dequantize;
use crate::load::matrix::{QuantRows, WeightData, WeightRows};

/// Rows `j..j + n` of `q` (`k` values each) as f32 in `out` (`n · k` values, row-major).
pub fn dequantize_rows(isa: Isa, q: QuantRows<'_>, j: usize, n: usize, k: usize, out: &mut Vec<f32>) {
    out.resize(n * k, 0.0);
    for (r, row) in (j..j + n).zip(out.chunks_exact_mut(k.max(1))) {
        widen_row(isa, q.ty, q.row(r), row);
    }
}

/// One row's blocks (`bytes`) widened into `out` (the row's values).
pub fn widen_row(isa: Isa, ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable && super::xwt::isa() != Isa::Portable {
        // SAFETY (of the calls below): `isa()` found AVX2, FMA and F16C on this processor.
        #[allow(unsafe_code)]
        unsafe {
            match ty {
                GgmlType::Q8_0 => return blocks(bytes, out, 34, 32, |b, o| avx2::q8_0(b, o)),
                GgmlType::Q4_0 => return blocks(bytes, out, 18, 32, |b, o| avx2::q4_0(b, o)),
                GgmlType::Q4_1 => return blocks(bytes, out, 20, 32, |b, o| avx2::q4_1(b, o)),
                GgmlType::Q5_0 => return blocks(bytes, out, 22, 32, |b, o| avx2::q5_0(b, o)),
                GgmlType::Q5_1 => return blocks(bytes, out, 24, 32, |b, o| avx2::q5_1(b, o)),
                GgmlType::Q4K => return blocks(bytes, out, 144, 256, |b, o| avx2::q4_k(b, o)),
                GgmlType::Q5K => return blocks(bytes, out, 176, 256, |b, o| avx2::q5_k(b, o)),
                GgmlType::Q6K => return blocks(bytes, out, 210, 256, |b, o| avx2::q6_k(b, o)),
                GgmlType::F16 => return avx2::f16_row(bytes, out),
                _ => {}
            }
        }
    }
    let _ = isa;
    portable_row(ty, bytes, out);
}

/// `widen` on each whole block of `bytes` (`block_bytes` each) into `out` (`block` values each).
fn blocks(bytes: &[u8], out: &mut [f32], block_bytes: usize, block: usize, widen: impl Fn(&[u8], &mut [f32])) {
    for (b, o) in bytes.chunks_exact(block_bytes).zip(out.chunks_exact_mut(block)) {
        widen(b, o);
    }
}

/// The reference dequantizer, and plain loops for the float types (which the compiler
/// vectorizes). A row that does not decode (the shapes were checked, so never) reads as zeros.
fn portable_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    match ty {
        GgmlType::F32 => out.iter_mut().zip(bytes.chunks_exact(4)).for_each(|(o, b)| *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::Bf16 => out.iter_mut().zip(bytes.chunks_exact(2)).for_each(|(o, b)| *o = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)),
        _ => match dequantize(ty, bytes, out.len()) {
            Ok(v) => out.copy_from_slice(&v),
            Err(_) => out.fill(0.0),
        },
    }
}

/// F32, F16 and BF16 GGUF tensors whose bytes are aligned for their type, seen as the plain
/// weights the f32/bf16/f16 kernels read directly (no widening pass); anything else unchanged.
pub fn as_plain(w: WeightRows<'_>) -> WeightRows<'_> {
    let WeightData::Quant(q) = w.data else { return w };
    let bytes = q.bytes.get(..w.rows * q.row_bytes).unwrap_or(q.bytes);
    let data = match q.ty {
        GgmlType::F32 => bytemuck::try_cast_slice(bytes).ok().map(WeightData::F32),
        GgmlType::F16 => bytemuck::try_cast_slice(bytes).ok().map(WeightData::F16),
        GgmlType::Bf16 => bytemuck::try_cast_slice(bytes).ok().map(WeightData::Bf16),
        _ => None,
    };
    match data {
        Some(data) if cfg!(target_endian = "little") => WeightRows { data, ..w },
        _ => w,
    }
}

#[cfg(test)]
#[path = "quant_tests.rs"]
mod tests;
