use half::f16;

use super::*;
use crate::gguf::test_util::f16_bytes;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn f16_to_f32(bytes: [u8; 2]) -> f32 {
    f16::from_bits(u16::from_le_bytes(bytes)).to_f32()
}

/// A scale that is not exactly representable in a short decimal, so rounding differences
/// would show up in the low bits.
const D: f32 = 0.0123;
const M: f32 = -0.377;

fn nibbles() -> [u8; 16] {
    std::array::from_fn(|i| ((i as u8 * 7) & 0x0f) | (((15 - i as u8) & 0x0f) << 4))
}

#[test]
fn f32_is_bit_exact() -> Result<(), DequantError> {
    let vals = [1.5f32, -0.0, f32::MIN_POSITIVE, 3.0e38, f32::NAN];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(bits(&dequantize(GgmlType::F32, &bytes, 5)?), bits(&vals));
    Ok(())
}

#[test]
fn f16_is_bit_exact() -> Result<(), DequantError> {
    let raw: [u16; 5] = [0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000];
    let bytes: Vec<u8> = raw.iter().flat_map(|v| v.to_le_bytes()).collect();
    let want: Vec<f32> = raw.iter().map(|&b| f16::from_bits(b).to_f32()).collect();
    assert_eq!(bits(&dequantize(GgmlType::F16, &bytes, 5)?), bits(&want));
    // Spot values that do not depend on the half crate.
    assert_eq!(want[0], 1.0);
    assert_eq!(want[1], -2.0);
    assert_eq!(want[2], 2f32.powi(-24));
    assert_eq!(want[3], 65504.0);
    Ok(())
}

#[test]
fn bf16_is_bit_exact() -> Result<(), DequantError> {
    let vals = [1.0f32, -3.140625, 1.0e-20, f32::INFINITY];
    let bytes: Vec<u8> = vals
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let want: Vec<u32> = vals.iter().map(|v| v.to_bits() & 0xffff_0000).collect();
    assert_eq!(bits(&dequantize(GgmlType::Bf16, &bytes, 4)?), want);
    Ok(())
}

#[test]
fn q8_0_is_bit_exact() -> Result<(), DequantError> {
    let qs: [i8; 32] = std::array::from_fn(|i| (i as i8 * 9).wrapping_sub(127));
    let mut block = f16_bytes(D).to_vec();
    block.extend(qs.iter().map(|&q| q as u8));
    let d = f16_to_f32(f16_bytes(D));
    let want: Vec<f32> = qs.iter().map(|&q| (q as f32) * d).collect();
    assert_eq!(bits(&dequantize(GgmlType::Q8_0, &block, 32)?), bits(&want));
    Ok(())
}

#[test]
fn q4_0_is_bit_exact_low_nibbles_first() -> Result<(), DequantError> {
    let qs = nibbles();
    let mut block = f16_bytes(D).to_vec();
    block.extend(qs);
    let d = f16_to_f32(f16_bytes(D));
    let mut want = Vec::new();
    want.extend(qs.iter().map(|&q| (((q & 0x0f) as i32 - 8) as f32) * d));
    want.extend(qs.iter().map(|&q| (((q >> 4) as i32 - 8) as f32) * d));
    let got = dequantize(GgmlType::Q4_0, &block, 32)?;
    assert_eq!(bits(&got), bits(&want));
    // Element 16 comes from the high nibble of byte 0: (15 - 8) * d.
    assert_eq!(got[16].to_bits(), (7.0 * d).to_bits());
    Ok(())
}

#[test]
fn q4_1_is_bit_exact_low_nibbles_first() -> Result<(), DequantError> {
    let qs = nibbles();
    let mut block = f16_bytes(D).to_vec();
    block.extend(f16_bytes(M));
    block.extend(qs);
    let d = f16_to_f32(f16_bytes(D));
    let m = f16_to_f32(f16_bytes(M));
    let mut want = Vec::new();
    want.extend(qs.iter().map(|&q| ((q & 0x0f) as f32) * d + m));
    want.extend(qs.iter().map(|&q| ((q >> 4) as f32) * d + m));
    // Two blocks, to check the second starts at byte 20.
    let mut two = block.clone();
    two.extend(&block);
    let got = dequantize(GgmlType::Q4_1, &two, 64)?;
    assert_eq!(bits(&got[..32]), bits(&want));
    assert_eq!(bits(&got[32..]), bits(&want));
    Ok(())
}

#[test]
fn truncated_block_is_an_error() {
    let block = vec![0u8; 19];
    assert_eq!(
        dequantize(GgmlType::Q4_1, &block, 32),
        Err(DequantError::WrongLength {
            ty: GgmlType::Q4_1,
            n: 32,
            need: 20,
            got: 19
        })
    );
    let msg = DequantError::WrongLength {
        ty: GgmlType::Q4_1,
        n: 32,
        need: 20,
        got: 19,
    }
    .to_string();
    assert_eq!(msg, "Q4_1 data is 19 bytes but 32 elements need 20");
}

#[test]
fn partial_block_is_an_error() {
    assert_eq!(
        dequantize(GgmlType::Q8_0, &[0u8; 34], 31),
        Err(DequantError::PartialBlock {
            ty: GgmlType::Q8_0,
            n: 31,
            block: 32
        })
    );
}

#[test]
fn unknown_type_is_an_error() {
    let msg = match dequantize(GgmlType::from_id(14), &[], 0) {
        Ok(_) => panic!("Q6_K is not decoded"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.starts_with("ggml type 14 (Q6_K) is not supported"),
        "{msg}"
    );
}
