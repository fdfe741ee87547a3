//! Dequantizers that reproduce ggml's reference `dequantize_row_*` bit for bit: the same
//! f16→f32 scale conversion and the same single f32 multiply (and add) per element.

use half::f16;

use super::types::GgmlType;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DequantError {
    #[error("{ty} is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)")]
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
        GgmlType::Unsupported(_) => return Err(DequantError::Unsupported { ty }),
    }
    Ok(out)
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

#[cfg(test)]
#[path = "dequant_tests.rs"]
mod tests;
