//! Weight quantization made visible (the article's §3.4): the model's f32 weights rounded
//! to a lower-precision format and back, so a pass runs on exactly the numbers that format
//! can hold. RMSNorm weights stay f32, as in every real quantized model.

use std::str::FromStr;

use ndarray::Array2;
use rayon::prelude::*;

use crate::error::{EngineError, Result};
use crate::load::gguf::GgmlType;
use crate::load::gguf::dequant::dequantize;
use crate::load::matrix::Matrix;
use crate::load::model::{Model, WeightsMode};

/// A weight format to round the matrices through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum WeightQuant {
    /// The weights as loaded.
    #[default]
    F32,
    /// bfloat16: 8 exponent bits, 7 mantissa bits (round to nearest even).
    Bf16,
    /// 8-bit integers with one f32 scale per row: `w ≈ q · max|row| / 127`.
    Int8,
    /// 4-bit blocks of 32 with one f16 scale each, llama.cpp's Q4_0: `w ≈ (q − 8) · d`.
    Q4,
    /// A model kept as downloaded (GGUF blocks) with every matrix dequantized to f32 once:
    /// the f32 reference its as-downloaded products must equal up to float rounding.
    F32Reference,
}

impl WeightQuant {
    pub const ALL: [WeightQuant; 5] = [WeightQuant::F32, WeightQuant::Bf16, WeightQuant::Int8, WeightQuant::Q4, WeightQuant::F32Reference];

    pub fn name(self) -> &'static str {
        match self {
            WeightQuant::F32 => "f32",
            WeightQuant::Bf16 => "bf16",
            WeightQuant::Int8 => "int8",
            WeightQuant::Q4 => "q4",
            WeightQuant::F32Reference => "f32-ref",
        }
    }

    /// Bits per weight, scales included.
    pub fn bits_per_weight(self, row_len: usize) -> f32 {
        match self {
            WeightQuant::F32 | WeightQuant::F32Reference => 32.0,
            WeightQuant::Bf16 => 16.0,
            WeightQuant::Int8 => 8.0 + 32.0 / row_len.max(1) as f32,
            WeightQuant::Q4 => 4.5, // 16 bytes of nibbles + a 2-byte scale per 32 weights
        }
    }

    /// One row of weights through this format and back.
    pub fn round_trip(self, row: &[f32]) -> Result<Vec<f32>> {
        Ok(match self {
            WeightQuant::F32 | WeightQuant::F32Reference => row.to_vec(),
            WeightQuant::Bf16 => row.iter().map(|&v| half::bf16::from_f32(v).to_f32()).collect(),
            WeightQuant::Int8 => {
                let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let scale = max / 127.0;
                let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                row.iter().map(|&v| (v * inv).round().clamp(-127.0, 127.0) * scale).collect()
            }
            WeightQuant::Q4 => {
                if !row.len().is_multiple_of(32) {
                    return Err(EngineError::Input(format!(
                        "4-bit blocks need rows that are a multiple of 32 weights; this one has {}",
                        row.len()
                    )));
                }
                let bytes: Vec<u8> = row.chunks_exact(32).flat_map(quantize_q4_0_block).collect();
                dequantize(GgmlType::Q4_0, &bytes, row.len()).map_err(|e| EngineError::Input(format!("4-bit weights: {e}")))?
            }
        })
    }

    /// Every row of `w` through this format and back.
    pub fn matrix(self, w: &Array2<f32>) -> Result<Array2<f32>> {
        if matches!(self, WeightQuant::F32 | WeightQuant::F32Reference) {
            return Ok(w.clone());
        }
        let rows: Vec<Vec<f32>> = (0..w.nrows()).into_par_iter().map(|r| self.round_trip(&w.row(r).to_vec())).collect::<Result<_>>()?;
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        Array2::from_shape_vec(w.dim(), flat).map_err(|e| EngineError::Shape(format!("quantized matrix: {e}")))
    }
}

impl FromStr for WeightQuant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|q| q.name() == s).ok_or_else(|| format!("`{s}` is not a weight format (f32, bf16, int8, q4 or f32-ref)"))
    }
}

/// A row of weights as llama.cpp's Q4_0 blocks (its length a multiple of 32), the bytes a
/// GGUF holds: for building models kept as downloaded in tests and experiments.
pub fn q4_0_blocks(row: &[f32]) -> Result<Vec<u8>> {
    if !row.len().is_multiple_of(32) {
        return Err(EngineError::Input(format!("Q4_0 blocks need rows that are a multiple of 32 weights; this one has {}", row.len())));
    }
    Ok(row.chunks_exact(32).flat_map(quantize_q4_0_block).collect())
}

/// One block of 32 weights as llama.cpp's `quantize_row_q4_0_ref` writes it: the value of
/// largest magnitude maps to −8, `d = max / −8` (stored f16), `q = min(15, ⌊x/d + 8.5⌋)`;
/// low nibbles hold weights 0..16, high nibbles 16..32.
fn quantize_q4_0_block(block: &[f32]) -> Vec<u8> {
    let max = block.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = half::f16::from_f32(d).to_le_bytes().to_vec();
    for j in 0..16 {
        let q = |x: f32| ((x * id + 8.5) as i8).clamp(0, 15) as u8;
        out.push(q(block[j]) | (q(block[j + 16]) << 4));
    }
    out
}

/// `model` with every weight matrix (embedding and output head included) rounded through
/// `format`. The copy has no tokenizer: it runs the same ids as the original.
pub fn quantized_model(model: &Model, format: WeightQuant) -> Result<Model> {
    let w = &model.weights;
    if format == WeightQuant::F32Reference && model.weights_mode() != WeightsMode::Native {
        return Err(EngineError::Input(
            "f32-ref compares weights kept as downloaded with their f32 reference; this model's weights are already f32 (load a .gguf with --weights native)".into(),
        ));
    }
    let q = |m: &Matrix| format.matrix(&m.f32_view()).map(Matrix::from);
    // Norms, biases and position tables stay as they are: only the matrices are rounded.
    let mut weights = w.clone();
    for l in &mut weights.layers {
        let (a, m) = (&mut l.self_attn, &mut l.mlp);
        for matrix in [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj, &mut m.gate_proj, &mut m.down_proj].into_iter().chain(m.up_proj.as_mut()) {
            *matrix = q(matrix)?;
        }
    }
    weights.embed_tokens = q(&w.embed_tokens)?;
    weights.lm_head = w.lm_head.as_ref().map(q).transpose()?;
    let note = match format {
        WeightQuant::F32Reference => format!("{}, dequantized to f32 (the reference)", model.source.weights_note),
        _ => format!("{} → {} weights computed in f32", model.source.weights_note, format.name()),
    };
    Ok(model.with_weights(weights, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_keep_what_they_can_hold() {
        let row: Vec<f32> = (0..64).map(|i| ((i * 37) % 23) as f32 * 0.11 - 1.2).collect();
        for f in WeightQuant::ALL {
            let back = f.round_trip(&row).unwrap();
            let err = row.iter().zip(&back).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let bound = match f {
                WeightQuant::F32 | WeightQuant::F32Reference => 0.0,
                WeightQuant::Bf16 => 1.2 * 2f32.powi(-8),
                WeightQuant::Int8 => 1.22 / 127.0 / 2.0 + 1e-6,
                // Half a step, except the far end: the largest magnitude maps to -8, so +max
                // rounds to +7 steps, a whole step short.
                WeightQuant::Q4 => 1.22 / 8.0 + 1e-3,
            };
            assert!(err <= bound, "{}: max error {err} > {bound}", f.name());
            assert_eq!(f.round_trip(&back).unwrap(), back, "{}: a second round trip changes nothing", f.name());
        }
    }

    #[test]
    fn q4_blocks_are_llama_cpp_q4_0() {
        // The largest magnitude is -4: d = 0.5, and it maps to nibble 0.
        let mut block = [0.0f32; 32];
        block[3] = -4.0;
        block[20] = 1.5;
        let bytes = quantize_q4_0_block(&block);
        assert_eq!(half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(), 0.5);
        assert_eq!(bytes[2 + 3] & 0x0f, 0);
        assert_eq!(bytes[2 + 4] >> 4, 11); // 1.5 / 0.5 + 8 = 11
        let back = dequantize(GgmlType::Q4_0, &bytes, 32).unwrap();
        assert_eq!((back[3], back[20], back[0]), (-4.0, 1.5, 0.0));
    }
}
