use half::f16;

use super::*;
use crate::load::gguf::builder::f16_bytes;

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
    let msg = match dequantize(GgmlType::from_id(11), &[], 0) {
        Ok(_) => panic!("Q3_K is not decoded"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.starts_with("ggml type 11 (Q3_K) is not supported"),
        "{msg}"
    );
}

// --- K-quants: blocks built by hand, expected values from a per-element reading of the
// layout (index arithmetic, not the block loops of the decoder).

/// Deterministic filler bytes.
fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// ggml's packing of eight 6-bit (scale, min) pairs into 12 bytes.
fn pack_scales(sc: [u8; 8], mn: [u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            q[j] = sc[j];
            q[j + 4] = mn[j];
        } else {
            q[j + 4] = (sc[j] & 0xf) | ((mn[j] & 0xf) << 4);
            q[j - 4] |= (sc[j] >> 4) << 6;
            q[j] |= (mn[j] >> 4) << 6;
        }
    }
    q
}

const SC: [u8; 8] = [1, 63, 17, 40, 5, 37, 62, 33];
const MN: [u8; 8] = [0, 2, 63, 21, 48, 50, 7, 60];

fn q4_k_block_bytes(d: f32, dmin: f32, seed: u32) -> Vec<u8> {
    let mut b = f16_bytes(d).to_vec();
    b.extend(f16_bytes(dmin));
    b.extend(pack_scales(SC, MN));
    b.extend(bytes(128, seed));
    b
}

fn q4_k_expected(b: &[u8]) -> Vec<f32> {
    let d = f16_to_f32([b[0], b[1]]);
    let dmin = f16_to_f32([b[2], b[3]]);
    (0..256)
        .map(|e| {
            let (sb, l) = (e / 32, e % 32);
            let byte = b[16 + (sb / 2) * 32 + l];
            let q = if sb % 2 == 0 { byte & 0xf } else { byte >> 4 };
            (d * f32::from(SC[sb])) * f32::from(q) - dmin * f32::from(MN[sb])
        })
        .collect()
}

#[test]
fn q4_k_is_bit_exact() -> Result<(), DequantError> {
    let mut data = q4_k_block_bytes(D, -M, 1);
    data.extend(q4_k_block_bytes(0.25, 0.125, 2));
    let got = dequantize(GgmlType::Q4K, &data, 512)?;
    assert_eq!(bits(&got[..256]), bits(&q4_k_expected(&data[..144])));
    assert_eq!(bits(&got[256..]), bits(&q4_k_expected(&data[144..])));
    Ok(())
}

#[test]
fn q4_k_spot_values() -> Result<(), DequantError> {
    // d = 1, dmin = 0.5; sub-block 5 (scale 37, min 50) element 3 has high nibble 9:
    // 37·9 − 0.5·50 = 308. Sub-block 0 (scale 1, min 0) element 0 has low nibble 4: 4.
    let mut b = f16_bytes(1.0).to_vec();
    b.extend(f16_bytes(0.5));
    b.extend(pack_scales(SC, MN));
    let mut qs = [0u8; 128];
    qs[0] = 0x04;
    qs[2 * 32 + 3] = 0x90;
    b.extend(qs);
    let got = dequantize(GgmlType::Q4K, &b, 256)?;
    assert_eq!(got[0], 4.0);
    assert_eq!(got[5 * 32 + 3], 308.0);
    // Sub-block 2 (scale 17, min 63) element 1: nibble 0 → −31.5.
    assert_eq!(got[2 * 32 + 1], -31.5);
    Ok(())
}

fn q5_k_block_bytes(d: f32, dmin: f32, seed: u32) -> Vec<u8> {
    let mut b = f16_bytes(d).to_vec();
    b.extend(f16_bytes(dmin));
    b.extend(pack_scales(SC, MN));
    b.extend(bytes(32 + 128, seed));
    b
}

fn q5_k_expected(b: &[u8]) -> Vec<f32> {
    let d = f16_to_f32([b[0], b[1]]);
    let dmin = f16_to_f32([b[2], b[3]]);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    (0..256)
        .map(|e| {
            let (sb, l) = (e / 32, e % 32);
            let byte = qs[(sb / 2) * 32 + l];
            let low = if sb % 2 == 0 { byte & 0xf } else { byte >> 4 };
            let high = (qh[l] >> sb) & 1;
            let q = low + 16 * high;
            (d * f32::from(SC[sb])) * f32::from(q) - dmin * f32::from(MN[sb])
        })
        .collect()
}

#[test]
fn q5_k_is_bit_exact() -> Result<(), DequantError> {
    let mut data = q5_k_block_bytes(D, -M, 3);
    data.extend(q5_k_block_bytes(-0.5, 0.0625, 4));
    let got = dequantize(GgmlType::Q5K, &data, 512)?;
    assert_eq!(bits(&got[..256]), bits(&q5_k_expected(&data[..176])));
    assert_eq!(bits(&got[256..]), bits(&q5_k_expected(&data[176..])));
    Ok(())
}

#[test]
fn q5_k_spot_value() -> Result<(), DequantError> {
    // Sub-block 7 (scale 33, min 60), element 31: high nibble 15 + fifth bit 16 = 31;
    // d = 1, dmin = 0.5 → 33·31 − 30 = 993.
    let mut b = f16_bytes(1.0).to_vec();
    b.extend(f16_bytes(0.5));
    b.extend(pack_scales(SC, MN));
    let mut qh = [0u8; 32];
    qh[31] = 1 << 7;
    b.extend(qh);
    let mut qs = [0u8; 128];
    qs[3 * 32 + 31] = 0xf0;
    b.extend(qs);
    let got = dequantize(GgmlType::Q5K, &b, 256)?;
    assert_eq!(got[7 * 32 + 31], 993.0);
    assert_eq!(got[6 * 32 + 31], -3.5, "sub-block 6: q 0, min 7 · 0.5");
    Ok(())
}

fn q6_k_block_bytes(d: f32, seed: u32) -> Vec<u8> {
    let mut b = bytes(128 + 64, seed);
    let scales: [i8; 16] = [1, -1, 127, -128, 5, 9, -33, 64, 2, 3, -7, 100, -100, 0, 45, -12];
    b.extend(scales.iter().map(|&s| s as u8));
    b.extend(f16_bytes(d));
    b
}

fn q6_k_expected(b: &[u8]) -> Vec<f32> {
    let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
    let d = f16_to_f32([b[208], b[209]]);
    (0..256)
        .map(|e| {
            let (half, r) = (e / 128, e % 128);
            let (k, l) = (r / 32, r % 32);
            let byte = ql[half * 64 + l + 32 * (k % 2)];
            let low = if k < 2 { byte & 0xf } else { byte >> 4 };
            let high = (qh[half * 32 + l] >> (2 * k)) & 3;
            let q = i32::from(low | (high << 4)) - 32;
            d * f32::from(sc[e / 16] as i8) * q as f32
        })
        .collect()
}

#[test]
fn q6_k_is_bit_exact() -> Result<(), DequantError> {
    let mut data = q6_k_block_bytes(D, 5);
    data.extend(q6_k_block_bytes(-1.5, 6));
    let got = dequantize(GgmlType::Q6K, &data, 512)?;
    assert_eq!(bits(&got[..256]), bits(&q6_k_expected(&data[..210])));
    assert_eq!(bits(&got[256..]), bits(&q6_k_expected(&data[210..])));
    Ok(())
}

#[test]
fn q6_k_spot_value() -> Result<(), DequantError> {
    // Element 128 + 64 + 5 (second half, k = 2, l = 5): high nibble of ql[64 + 5] = 0xA,
    // qh[32 + 5] bits 4..6 = 0b11 → q = 0x3A − 32 = 26; scale index 12 = −100; d = 0.5.
    let mut b = vec![0u8; 128 + 64];
    b[64 + 5] = 0xa0;
    b[128 + 32 + 5] = 0b0011_0000;
    let scales: [i8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -100, 0, 0, 0];
    b.extend(scales.iter().map(|&s| s as u8));
    b.extend(f16_bytes(0.5));
    let got = dequantize(GgmlType::Q6K, &b, 256)?;
    assert_eq!(got[128 + 64 + 5], -1300.0);
    Ok(())
}

#[test]
fn k_quants_need_whole_super_blocks() {
    assert_eq!(
        dequantize(GgmlType::Q4K, &[0u8; 144], 128),
        Err(DequantError::PartialBlock {
            ty: GgmlType::Q4K,
            n: 128,
            block: 256
        })
    );
    assert!(matches!(
        dequantize(GgmlType::Q6K, &[0u8; 209], 256),
        Err(DequantError::WrongLength { need: 210, .. })
    ));
}

// --- Q5_0 / Q5_1: a hand-built block read element by element, and gguf-py's own output on
// seeded random blocks (engine/testdata/q5_reference.json, made by gguf-py 0.19.0's
// `gguf.quants.dequantize`).

/// Element `j` of a Q5 block from the layout, one element at a time.
fn q5_expected(qh: u32, qs: &[u8], j: usize) -> u8 {
    let nibble = if j < 16 { qs[j] & 0x0f } else { qs[j - 16] >> 4 };
    nibble | ((((qh >> j) & 1) as u8) << 4)
}

#[test]
fn q5_0_is_bit_exact_fifth_bit_from_qh() -> Result<(), DequantError> {
    let qs = nibbles();
    // Fifth bits set on elements 0, 3, 16 and 31 (and a few more).
    let qh: u32 = 0b1000_0000_0000_0001_0000_0000_1010_1001;
    let mut block = f16_bytes(D).to_vec();
    block.extend(qh.to_le_bytes());
    block.extend(qs);
    let d = f16_to_f32(f16_bytes(D));
    let want: Vec<f32> = (0..32)
        .map(|j| (q5_expected(qh, &qs, j) as i32 - 16) as f32 * d)
        .collect();
    let mut two = block.clone();
    two.extend(&block);
    let got = dequantize(GgmlType::Q5_0, &two, 64)?;
    assert_eq!(bits(&got[..32]), bits(&want));
    assert_eq!(bits(&got[32..]), bits(&want));
    // Element 0: low nibble 0, fifth bit set: (16 - 16) * d = 0. Element 16: high nibble of
    // byte 0 is 15, fifth bit (bit 16) set: (31 - 16) * d.
    assert_eq!(got[0], 0.0);
    assert_eq!(got[16].to_bits(), (15.0 * d).to_bits());
    // Element 1: low nibble 7, no fifth bit: (7 - 16) * d.
    assert_eq!(got[1].to_bits(), (-9.0 * d).to_bits());
    Ok(())
}

#[test]
fn q5_1_is_bit_exact_fifth_bit_from_qh() -> Result<(), DequantError> {
    let qs = nibbles();
    let qh: u32 = 0xdead_beef;
    let mut block = f16_bytes(D).to_vec();
    block.extend(f16_bytes(M));
    block.extend(qh.to_le_bytes());
    block.extend(qs);
    let d = f16_to_f32(f16_bytes(D));
    let m = f16_to_f32(f16_bytes(M));
    let want: Vec<f32> = (0..32)
        .map(|j| q5_expected(qh, &qs, j) as f32 * d + m)
        .collect();
    assert_eq!(bits(&dequantize(GgmlType::Q5_1, &block, 32)?), bits(&want));
    Ok(())
}

#[test]
fn q5_matches_gguf_py_on_random_blocks() -> Result<(), DequantError> {
    let text = include_str!("../../../testdata/q5_reference.json");
    let reference: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let cases = reference["cases"].as_array().map(Vec::as_slice).unwrap_or_default();
    assert_eq!(cases.len(), 2, "one case per type");
    for case in cases {
        let ty = match case["type"].as_str() {
            Some("Q5_0") => GgmlType::Q5_0,
            Some("Q5_1") => GgmlType::Q5_1,
            other => panic!("unexpected type {other:?}"),
        };
        let hex = case["blocks_hex"].as_str().unwrap_or_default();
        let data: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let want: Vec<u32> = case["f32_bits"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect())
            .unwrap_or_default();
        assert_eq!(want.len(), 128, "{ty}: four blocks");
        let got = dequantize(ty, &data, want.len())?;
        for (i, (g, w)) in bits(&got).iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{ty} element {i}: {} vs gguf-py {}", f32::from_bits(*g), f32::from_bits(*w));
        }
    }
    Ok(())
}

#[test]
fn truncated_q5_blocks_are_errors() {
    for (ty, block) in [(GgmlType::Q5_0, 22), (GgmlType::Q5_1, 24)] {
        assert_eq!(
            dequantize(ty, &vec![0u8; block * 2 - 1], 64),
            Err(DequantError::WrongLength { ty, n: 64, need: block * 2, got: block * 2 - 1 })
        );
        assert_eq!(
            dequantize(ty, &vec![0u8; block], 16),
            Err(DequantError::PartialBlock { ty, n: 16, block: 32 })
        );
    }
    assert!(SUPPORTED.contains("Q5_0") && SUPPORTED.contains("Q5_1"));
}
