//! Dequantizers that reproduce ggml's reference `dequantize_row_*` bit for bit: the same
//! f16→f32 scale conversion and the same f32 multiplies and adds per element, in the same
//! order (Rust never fuses them into an FMA, and ggml's reference C is built without).

use half::f16;

use super::types::{GgmlType, QK_K};

/// What [`dequantize`] reads, for error messages.
pub const SUPPORTED: &str = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DequantError {
    #[error("{ty} is not supported (supported: {SUPPORTED})")]
    Unsupported { ty: GgmlType },
    #[error("{n} elements is not a whole number of {ty} blocks of {block}")]
    PartialBlock {
        ty: GgmlType,
        n: usize,
        block: usize,
    },
    #[error("{ty} data is {got} bytes but {n} elements need {need}")]
    WrongLength {
        ty: GgmlType,
        n: usize,
        need: usize,
        got: usize,
    },
}

pub fn dequantize(ty: GgmlType, data: &[u8], n: usize) -> Result<Vec<f32>, DequantError> {
    let (block, block_bytes) = ty.block_layout().ok_or(DequantError::Unsupported { ty })?;
    if !n.is_multiple_of(block) {
        return Err(DequantError::PartialBlock { ty, n, block });
    }
    let need = (n / block).checked_mul(block_bytes);
    if need != Some(data.len()) {
        return Err(DequantError::WrongLength {
            ty,
            n,
            need: need.unwrap_or(usize::MAX),
            got: data.len(),
        });
    }
    let mut out = Vec::with_capacity(n);
    let blocks = data.chunks_exact(block_bytes);
    match ty {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
        // BF16 is the top half of an f32, so widening is a shift, exactly as ggml does.
        GgmlType::Bf16 => out.extend(
            blocks.map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)),
        ),
        GgmlType::Q8_0 => blocks.for_each(|b| q8_0_block(b, &mut out)),
        GgmlType::Q4_0 => blocks.for_each(|b| q4_0_block(b, &mut out)),
        GgmlType::Q4_1 => blocks.for_each(|b| q4_1_block(b, &mut out)),
        GgmlType::Q5_0 => blocks.for_each(|b| q5_0_block(b, &mut out)),
        GgmlType::Q5_1 => blocks.for_each(|b| q5_1_block(b, &mut out)),
        GgmlType::Q4K => blocks.for_each(|b| q4_k_block(b, &mut out)),
        GgmlType::Q5K => blocks.for_each(|b| q5_k_block(b, &mut out)),
        GgmlType::Q6K => blocks.for_each(|b| q6_k_block(b, &mut out)),
        GgmlType::Unsupported(_) => return Err(DequantError::Unsupported { ty }),
    }
    Ok(out)
}

/// Byte offsets of a block's float fields (f16 scales and mins), the only parts of a quantized
/// block that can be NaN or infinite; the rest are small integers.
fn scale_offsets(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q6K => &[QK_K / 2 + QK_K / 4 + QK_K / 16],
        _ => &[],
    }
}

/// The first block (of `ty`'s blocks in `data`) whose scale or min is NaN or infinite, or
/// whose value is, for the float types. Reads only the float fields.
pub fn first_non_finite_block(ty: GgmlType, data: &[u8]) -> Option<usize> {
    let (_, block_bytes) = ty.block_layout()?;
    let bad16 = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) & 0x7c00 == 0x7c00;
    let mut blocks = data.chunks_exact(block_bytes);
    match ty {
        GgmlType::F32 => blocks.position(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
        GgmlType::F16 => blocks.position(|b| bad16(b, 0)),
        GgmlType::Bf16 => blocks.position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7f80 == 0x7f80),
        _ => {
            let at = scale_offsets(ty);
            blocks.position(|b| at.iter().any(|&o| bad16(b, o)))
        }
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

fn q8_0_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
}

/// Low nibbles hold elements 0..16 and high nibbles 16..32, not interleaved pairs.
fn q4_0_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    out.extend(qs.iter().map(|&q| f32::from((q & 0x0f) as i8 - 8) * d));
    out.extend(qs.iter().map(|&q| f32::from((q >> 4) as i8 - 8) * d));
}

fn q4_1_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qs = &b[4..20];
    out.extend(qs.iter().map(|&q| f32::from(q & 0x0f) * d + m));
    out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
}

/// The 32 five-bit values of a Q5_0/Q5_1 block: `qs` holds the low four bits (low nibbles
/// elements 0..16, high nibbles 16..32, as in Q4_0) and bit `j` of the little-endian u32 `qh`
/// is the fifth bit of element `j`.
fn q5_values(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    std::array::from_fn(|j| {
        let nibble = if j < 16 { qs[j] & 0x0f } else { qs[j - 16] >> 4 };
        let fifth = ((qh >> j) & 1) as u8;
        nibble | (fifth << 4)
    })
}

/// Q5_0: `(q - 16) * d`, q in 0..32.
fn q5_0_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let q = q5_values(&b[2..6], &b[6..22]);
    out.extend(q.iter().map(|&q| f32::from(q as i8 - 16) * d));
}

/// Q5_1: `q * d + m`, q in 0..32.
fn q5_1_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let q = q5_values(&b[4..8], &b[8..24]);
    out.extend(q.iter().map(|&q| f32::from(q) * d + m));
}

/// ggml's `get_scale_min_k4`: sub-block `j`'s 6-bit scale and min from the 12 packed bytes.
/// Sub-blocks 0..4 keep theirs in the low 6 bits of bytes j and j+4; sub-blocks 4..8 keep
/// their low 4 bits in byte j+4 and their top 2 bits in the spare high bits of bytes j-4, j.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q4_K: 8 sub-blocks of 32, each `d·scale · q - dmin·min`; one byte holds element `l` of
/// sub-block 2k (low nibble) and element `l` of sub-block 2k+1 (high nibble).
fn q4_k_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..16 + QK_K / 2];
    for (pair, q) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * pair, scales);
        let (sc2, m2) = scale_min_k4(2 * pair + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        out.extend(q.iter().map(|&x| d1 * f32::from(x & 0x0f) - m1));
        out.extend(q.iter().map(|&x| d2 * f32::from(x >> 4) - m2));
    }
}

/// Q5_K: Q4_K's layout plus `qh`, whose bit 2k (2k+1) of byte `l` is the fifth bit of
/// element `l` of sub-block 2k (2k+1).
fn q5_k_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..16 + QK_K / 8];
    let qs = &b[16 + QK_K / 8..16 + QK_K / 8 + QK_K / 2];
    for (pair, ql) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * pair, scales);
        let (sc2, m2) = scale_min_k4(2 * pair + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let (u1, u2) = (1u8 << (2 * pair), 2u8 << (2 * pair));
        let high = |h: u8, u: u8| if h & u != 0 { 16 } else { 0 };
        out.extend(
            ql.iter()
                .zip(qh)
                .map(|(&x, &h)| d1 * f32::from((x & 0x0f) + high(h, u1)) - m1),
        );
        out.extend(
            ql.iter()
                .zip(qh)
                .map(|(&x, &h)| d2 * f32::from((x >> 4) + high(h, u2)) - m2),
        );
    }
}

/// Q6_K: two halves of 128; in each, element `l + 32k` (k = 0..4) takes a nibble of `ql`
/// and two bits of `qh[l]`, minus 32, times `d · scales[16-element group]`.
fn q6_k_block(b: &[u8], out: &mut Vec<f32>) {
    let ql_all = &b[..QK_K / 2];
    let qh_all = &b[QK_K / 2..QK_K / 2 + QK_K / 4];
    let sc_all = &b[QK_K / 2 + QK_K / 4..QK_K / 2 + QK_K / 4 + QK_K / 16];
    let d = f16_at(b, QK_K / 2 + QK_K / 4 + QK_K / 16);
    for half in 0..2 {
        let ql = &ql_all[64 * half..64 * half + 64];
        let qh = &qh_all[32 * half..32 * half + 32];
        let sc = &sc_all[8 * half..8 * half + 8];
        let mut y = [0.0f32; 128];
        for l in 0..32 {
            let is = l / 16;
            let q = [
                (ql[l] & 0x0f) | ((qh[l] & 3) << 4),
                (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4),
                (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
            ];
            for (k, &q) in q.iter().enumerate() {
                let scale = f32::from(sc[is + 2 * k] as i8);
                y[l + 32 * k] = d * scale * f32::from(q as i8 - 32);
            }
        }
        out.extend(y);
    }
}

#[cfg(test)]
#[path = "dequant_tests.rs"]
mod tests;
