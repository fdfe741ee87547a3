//! GGUF blocks read as they lie: a tile of quantized weight rows widened into a small f32
//! buffer that stays in cache, for the row-dot kernel (`xwt.rs`) to multiply against every
//! row of `x` (activations stay f32). The whole matrix is never widened.
//!
//! Two paths with AVX2 (`avx2.rs`; without it, the reference dequantizer and a tile):
//! - one row of `x` (decode): the blocks are multiplied in registers as `d · Σ q·x + m · Σx`
//!   per 32 values, half the float work of widening each weight;
//! - two or more rows (prefill, `panel.rs`): a tile of rows widened bit for bit as the
//!   reference dequantizer (`load/gguf/dequant.rs`) does, multiplied against every row of `x`.
//! Each path's per-row bits do not depend on the row count, but they round differently from
//! each other: a decoded row can differ from the same row in a prefill by float rounding
//! (≤ ~1e-6 of Σ|x·w|), not bit for bit.

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2;
pub mod panel;

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
        use avx2::*;
        // SAFETY (of the calls below): `isa()` found AVX2, FMA and F16C on this processor.
        #[allow(unsafe_code)]
        unsafe {
            match ty {
                GgmlType::Q8_0 => return widen::<Q8_0>(bytes, out),
                GgmlType::Q4_0 => return widen::<Q4_0>(bytes, out),
                GgmlType::Q4_1 => return widen::<Q4_1>(bytes, out),
                GgmlType::Q5_0 => return widen::<Q5_0>(bytes, out),
                GgmlType::Q5_1 => return widen::<Q5_1>(bytes, out),
                GgmlType::Q4K => return widen::<Q4K>(bytes, out),
                GgmlType::Q5K => return widen::<Q5K>(bytes, out),
                GgmlType::Q6K => return widen::<Q6K>(bytes, out),
                GgmlType::F16 => return f16_row(bytes, out),
                _ => {}
            }
        }
    }
    let _ = isa;
    portable_row(ty, bytes, out);
}

/// Whether [`dot_rows`] serves `ty` on `isa` (the block types, with AVX2).
pub fn fused(isa: Isa, ty: GgmlType) -> bool {
    let blocks = !matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 | GgmlType::Unsupported(_));
    cfg!(target_arch = "x86_64") && blocks && isa != Isa::Portable && super::xwt::isa() != Isa::Portable
}

/// The sums of `x`'s values `32t..32t + 32`, which [`dot_rows`] multiplies by the offsets of
/// Q4_1, Q5_1 and the K-quants (once per row of `x`, for all rows of `W`).
pub fn chunk_sums(x: &[f32]) -> Vec<f32> {
    x.chunks_exact(32).map(|c| c.iter().sum::<f32>()).collect()
}

/// One row of `x` (`k` values; `x_sums` its [`chunk_sums`]) times rows `j..j + nr` of `q`
/// (`nr` ≤ 4; the rest of the result is a repeat), the weights never formed: what decode
/// runs. Zeros where [`fused`] is false.
pub fn dot_rows(isa: Isa, x: &[f32], x_sums: &[f32], q: QuantRows<'_>, j: usize, nr: usize, k: usize) -> [f32; 4] {
    let whole = nr >= 1 && x.len() >= k && x_sums.len() >= k / 32 && q.bytes.len() >= (j + nr) * q.row_bytes;
    if !fused(isa, q.ty) || !whole {
        return [0.0; 4];
    }
    #[cfg(target_arch = "x86_64")]
    {
        use avx2::*;
        let rows: [*const u8; 4] = std::array::from_fn(|b| q.row(j + b.min(nr - 1)).as_ptr());
        let x = x.as_ptr();
        // SAFETY: `fused` found AVX2, FMA and F16C; `x` holds `k` values, `x_sums` k / 32, and
        // each row its `row_bytes` (= k / block whole blocks, which `xwt` checked).
        #[allow(unsafe_code)]
        unsafe {
            return match q.ty {
                GgmlType::Q8_0 => dot4::<Q8_0>(x, x_sums, rows, k, 4 * q.row_bytes),
                GgmlType::Q4_0 => dot4::<Q4_0>(x, x_sums, rows, k, 4 * q.row_bytes),
                GgmlType::Q4_1 => dot4::<Q4_1>(x, x_sums, rows, k, 4 * q.row_bytes),
                GgmlType::Q5_0 => dot4::<Q5_0>(x, x_sums, rows, k, 4 * q.row_bytes),
                GgmlType::Q5_1 => dot4::<Q5_1>(x, x_sums, rows, k, 4 * q.row_bytes),
                GgmlType::Q4K => dot4::<Q4K>(x, x_sums, rows, k, 4 * q.row_bytes),
                GgmlType::Q5K => dot4::<Q5K>(x, x_sums, rows, k, 4 * q.row_bytes),
                GgmlType::Q6K => dot4::<Q6K>(x, x_sums, rows, k, 4 * q.row_bytes),
                _ => [0.0; 4],
            };
        }
    }
    #[allow(unreachable_code)]
    [0.0; 4]
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
