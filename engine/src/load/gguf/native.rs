//! A GGUF loaded as downloaded: the file mapped once, every matrix kept in its own block type
//! (`Matrix::quantized`, no f32 copy), config.json, tokenizer.json and tokenizer_config.json
//! built in memory from the metadata by the same functions the converter writes them with.
//! The converter's plan (`planned_tensors`) names every tensor, says which Q/K rows llama.cpp
//! permuted and which Gemma norms carry its `+1`; the family mapping then takes the tensors
//! from a [`Checkpoint`] of held tensors as it takes a safetensors file's.

use std::path::Path;
use std::sync::Arc;

use super::GgufError;
use super::config_json::build_config_json;
use super::convert::{ConvertedTensor, planned_tensors, storage_kinds};
use super::reader::{GgufFile, TensorInfo, unsupported_type};
use super::tokenizer_json::{build_gemma_tokenizer, build_tokenizer_config_json, build_tokenizer_json};
use crate::error::{EngineError, Result};
use crate::load::config::LlamaConfig;
use crate::load::matrix::{Matrix, QuantBytes};
use crate::load::tokenizer::{Pieces, Tokenizer};
use crate::load::weights::{Checkpoint, Held};

/// What a native load reads from a GGUF before the family mapping.
pub struct NativeParts {
    pub config: LlamaConfig,
    pub tokenizer: Option<Tokenizer>,
    pub checkpoint: Checkpoint,
    /// "Q4_1 weights (token embedding Q8_0), as downloaded".
    pub weights_note: String,
}

/// Reads `path` natively: metadata first (they fail fast), then every tensor in place.
pub fn open_native(path: &Path) -> Result<NativeParts> {
    let file = GgufFile::open(path)?;
    parts_of(&file)
}

/// [`open_native`] on a file already parsed (from disk, or bytes in memory for the fuzzer:
/// then the blocks are copied, as there is no map to keep them in).
pub fn parts_of(file: &GgufFile) -> Result<NativeParts> {
    let path = file.path();
    let plan = planned_tensors(file)?;
    let config_text = build_config_json(file)?.to_string();
    let config = LlamaConfig::from_json(&config_text, path)?;
    let tokenizer = tokenizer_of(file, config.vocab_size)?;
    // The tokenizer's JSON is freed: give it back before the weights' pages come in on top.
    crate::load::heap::release_freed();
    let tensors = plan.iter().map(|t| held_tensor(file, t)).collect::<Result<Vec<_>>>()?;
    let (kinds, _) = storage_kinds(file);
    Ok(NativeParts {
        config,
        tokenizer,
        checkpoint: Checkpoint::from_held(path, tensors),
        weights_note: format!("{kinds}, as downloaded"),
    })
}

/// The tokenizer the converter would write, built in memory: Gemma's 262,144 tokens directly
/// (their JSON would be the load's peak), a byte-level BPE through its small JSON.
fn tokenizer_of(file: &GgufFile, vocab: usize) -> Result<Option<Tokenizer>> {
    let path = file.path();
    let config = build_tokenizer_config_json(file)?.as_object().cloned().unwrap_or_default();
    if let Some(inner) = build_gemma_tokenizer(file)? {
        let pieces = Pieces { metaspace: true, byte_level: false };
        return Tokenizer::from_inner(path, inner, pieces, path, config, vocab).map(Some);
    }
    let text = build_tokenizer_json(file)?.to_string();
    Tokenizer::from_texts(path, &text, path, config, vocab).map(Some)
}

/// One planned tensor under its Hugging Face name: a matrix's blocks in place (Q/K rows
/// un-permuted into a copy), a vector in f32 (Gemma's norm `+1` taken off).
fn held_tensor(file: &GgufFile, t: &ConvertedTensor) -> Result<(String, Vec<usize>, Held)> {
    let path = file.path();
    let info = file.tensor(&t.gguf_name).ok_or_else(|| GgufError::tensor(path, &t.gguf_name, "is not in the file"))?;
    let held = match t.hf_shape[..] {
        [rows, cols] => Held::Matrix(matrix_of(file, info, t.unpermute_heads, rows, cols)?),
        _ => {
            let (_, mut values) = file.tensor_f32(&t.gguf_name)?;
            if t.norm_shift {
                values.iter_mut().for_each(|v| *v -= 1.0);
            }
            Held::Vector(values)
        }
    };
    Ok((t.hf_name.clone(), t.hf_shape.clone(), held))
}

/// A 2-D tensor's blocks as a `Matrix`; refused when its rows are not whole blocks or a block's
/// scale is NaN or infinite (every value computed from it would be).
fn matrix_of(file: &GgufFile, info: &TensorInfo, unpermute: Option<usize>, rows: usize, cols: usize) -> Result<Matrix> {
    let path = file.path();
    let err = |msg: String| EngineError::from(GgufError::tensor(path, &info.name, msg));
    let len = info.byte_len().ok_or_else(|| unsupported_type(path, info))? as usize;
    let bytes = match (unpermute, file.shared_map()) {
        (Some(heads), _) => {
            let row_bytes = len / rows.max(1);
            QuantBytes::Owned(unpermute_row_bytes(file.tensor_bytes(info)?, row_bytes, heads).into())
        }
        (None, Some(map)) => QuantBytes::Mapped { map: Arc::clone(&map), offset: file.tensor_file_offset(info) as usize, len },
        (None, None) => QuantBytes::Owned(file.tensor_bytes(info)?.into()),
    };
    let m = Matrix::quantized(info.ggml_type, bytes, rows, cols).map_err(err)?;
    if let Some((row, col)) = m.first_non_finite_block() {
        // An infinite scale makes infinities (and NaN where a value is 0); a NaN one only NaN.
        let block = info.ggml_type.block_layout().map_or(1, |(b, _)| b);
        let values = m.row(row);
        let infinite = values.iter().skip(col).take(block).any(|v| v.is_infinite());
        let what = if infinite { "an infinite" } else { "a NaN" };
        return Err(err(format!("block at row {row}, column {col} has {what} scale; the file is damaged, download it again")));
    }
    Ok(m)
}

/// Undo llama.cpp's per-head Q/K row permutation on whole rows of blocks (the row-level
/// [`super::unpermute_rows`]): `hf[h·d + j] = gguf[h·d + 2j]`, `hf[h·d + d/2 + j] = gguf[h·d + 2j + 1]`.
/// The planner checked that the rows split into `heads` heads of an even size.
pub fn unpermute_row_bytes(data: &[u8], row_bytes: usize, heads: usize) -> Vec<u8> {
    let rows = data.len() / row_bytes.max(1);
    let d = rows / heads.max(1);
    let mut out = vec![0u8; data.len()];
    let mut copy = |src: usize, dst: usize| {
        out[dst * row_bytes..(dst + 1) * row_bytes].copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
    };
    for h in 0..heads {
        for j in 0..d / 2 {
            copy(h * d + 2 * j, h * d + j);
            copy(h * d + 2 * j + 1, h * d + d / 2 + j);
        }
    }
    out
}

#[cfg(test)]
#[path = "native_tests.rs"]
mod tests;
