//! GGUF → Hugging Face folder: renamed f32 tensors with llama.cpp's Q/K row permutation
//! undone, plus `config.json`, `tokenizer.json` and `tokenizer_config.json`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use super::GgufError;
use super::config_json::{architecture, build_config_json};
use super::reader::{GgufFile, unsupported_type};
use super::safetensors_out::SafetensorsWriter;
use super::tokenizer_json::{build_tokenizer_config_json, build_tokenizer_json};

/// One tensor of the output, planned before any data is written so every problem
/// (unknown name, unsupported type, bad head split) surfaces before the slow part.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertedTensor {
    pub gguf_name: String,
    pub hf_name: String,
    /// `[out_features, in_features]` for matrices.
    pub hf_shape: Vec<usize>,
    /// Heads to un-permute over the output rows (Llama Q and K only).
    pub unpermute_heads: Option<usize>,
    /// Subtract 1 from every value: Gemma norm weights, which llama.cpp stores as `1 + w`.
    pub norm_shift: bool,
}

/// Tensors that carry no weights of their own: llama.cpp stores Llama 3 RoPE frequency
/// factors (and Phi-3's longrope factors) as tensors, but transformers derives them from
/// `rope_scaling` in config.json, which `build_config_json` writes from the same data.
const DERIVED_TENSORS: &[&str] = &["rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight"];

/// The Hugging Face name for a GGUF tensor name, or None when it has no Llama counterpart.
pub fn hf_tensor_name(gguf_name: &str) -> Option<String> {
    let base = gguf_name.strip_suffix(".weight")?;
    let fixed = match base {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(format!("{name}.weight"));
    }
    let rest = base.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf_part = match part {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_part}.weight"))
}

pub fn planned_tensors(gguf: &GgufFile) -> Result<Vec<ConvertedTensor>, GgufError> {
    let path = gguf.path();
    let arch = architecture(gguf)?;
    if arch == super::gemma3::ARCH {
        return planned_gemma3(gguf);
    }
    let variant = super::variants::ARCHS.contains(&arch);
    let n_head = gguf.get_u32(&format!("{arch}.attention.head_count"))? as usize;
    let n_head_kv_key = format!("{arch}.attention.head_count_kv");
    let n_head_kv = gguf.opt_u32(&n_head_kv_key)?.map_or(n_head, |n| n as usize);
    let mut plan = Vec::with_capacity(gguf.tensors().len());
    for info in gguf.tensors() {
        if DERIVED_TENSORS.contains(&info.name.as_str()) {
            continue;
        }
        let hf_name = if variant { super::variants::hf_tensor_name(arch, &info.name) } else { hf_tensor_name(&info.name) };
        let hf_name = hf_name.ok_or_else(|| {
            GgufError::tensor(
                path,
                &info.name,
                if variant {
                    format!("has no counterpart in the Hugging Face `{arch}` layout; this converter handles that family's tensors as gguf-py names them")
                } else {
                    "has no Llama (LlamaForCausalLM) counterpart; this converter only handles Llama-architecture GGUF files without biases".to_string()
                },
            )
        })?;
        if info.byte_len().is_none() {
            return Err(unsupported_type(path, info));
        }
        let hf_shape = info.hf_shape();
        // Only llama.cpp's Llama converter permutes Q and K.
        let unpermute_heads = if variant {
            None
        } else if info.name.ends_with(".attn_q.weight") {
            Some(n_head)
        } else if info.name.ends_with(".attn_k.weight") {
            Some(n_head_kv)
        } else {
            None
        };
        if let Some(heads) = unpermute_heads {
            check_head_split(&hf_shape, heads)
                .map_err(|msg| GgufError::tensor(path, &info.name, msg))?;
        }
        plan.push(ConvertedTensor {
            gguf_name: info.name.clone(),
            hf_name,
            hf_shape,
            unpermute_heads,
            norm_shift: false,
        });
    }
    let layer_tensors: &[&str] = if variant { super::variants::layer_tensors(arch) } else { &crate::load::load_check::LAYER_TENSORS };
    check_complete(gguf, arch, &plan, layer_tensors)?;
    Ok(plan)
}

/// Gemma 3: gguf-py's names, no Q/K permutation to undo, every norm weight shifted back by 1.
fn planned_gemma3(gguf: &GgufFile) -> Result<Vec<ConvertedTensor>, GgufError> {
    let path = gguf.path();
    let mut plan = Vec::with_capacity(gguf.tensors().len());
    for info in gguf.tensors() {
        if DERIVED_TENSORS.contains(&info.name.as_str()) {
            continue;
        }
        let hf_name = super::gemma3::gemma3_hf_tensor_name(&info.name).ok_or_else(|| {
            GgufError::tensor(
                path,
                &info.name,
                "has no Gemma 3 (Gemma3ForCausalLM) counterpart; this converter handles the \
                 text model's tensors only",
            )
        })?;
        if info.byte_len().is_none() {
            return Err(unsupported_type(path, info));
        }
        plan.push(ConvertedTensor {
            gguf_name: info.name.clone(),
            hf_name,
            hf_shape: info.hf_shape(),
            unpermute_heads: None,
            norm_shift: super::gemma3::has_norm_shift(&info.name),
        });
    }
    check_complete(gguf, super::gemma3::ARCH, &plan, &super::gemma3::GEMMA3_LAYER_TENSORS)?;
    Ok(plan)
}

/// Every tensor `block_count` layers need, all listed at once when some are missing, before
/// anything is written.
fn check_complete(
    gguf: &GgufFile,
    arch: &str,
    plan: &[ConvertedTensor],
    layer_tensors: &[&str],
) -> Result<(), GgufError> {
    let n_layers = block_count(gguf, arch)?;
    let have: std::collections::HashSet<&str> = plan.iter().map(|t| t.hf_name.as_str()).collect();
    let mut want = vec![
        "model.embed_tokens.weight".to_string(),
        "model.norm.weight".to_string(),
    ];
    for l in 0..n_layers {
        want.extend(layer_tensors.iter().map(|t| format!("model.layers.{l}.{t}")));
    }
    let missing: Vec<String> = want.into_iter().filter(|n| !have.contains(n.as_str())).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(GgufError::unsupported(
        gguf.path(),
        format!(
            "{} tensors that {arch}.block_count = {n_layers} needs are missing (Hugging Face \
             names): {}",
            missing.len(),
            crate::load::load_check::compact_names(&missing)
        ),
    ))
}

/// The most layers a file may claim: more is no real model, and lists sized by it
/// (`layer_types`, the expected tensors) would take gigabytes.
const MAX_BLOCKS: u64 = 4096;

/// `{arch}.block_count`, at most [`MAX_BLOCKS`].
pub(crate) fn block_count(gguf: &GgufFile, arch: &str) -> Result<u64, GgufError> {
    let key = format!("{arch}.block_count");
    let n_layers = gguf.get_u64(&key)?;
    if n_layers > MAX_BLOCKS {
        return Err(GgufError::metadata(
            gguf.path(),
            &key,
            format!("{n_layers} layers is not a real model (at most {MAX_BLOCKS})"),
        ));
    }
    Ok(n_layers)
}

fn check_head_split(shape: &[usize], heads: usize) -> Result<(), String> {
    let [rows, _cols] = shape else {
        return Err(format!(
            "expected a 2-D matrix to split into heads, shape {shape:?}"
        ));
    };
    if heads == 0 || rows % heads != 0 || !(rows / heads).is_multiple_of(2) {
        return Err(format!(
            "{rows} output rows do not split into {heads} heads of an even size"
        ));
    }
    Ok(())
}

/// Undo llama.cpp's per-head row permutation of Q/K (which turns HF's half-split RoPE into
/// ggml's interleaved one): `hf[h*d + j] = gguf[h*d + 2j]`, `hf[h*d + d/2 + j] = gguf[h*d + 2j + 1]`.
/// `data` is row-major `[rows, cols]`; rows must split into `heads` heads of even size.
pub fn unpermute_rows(data: &[f32], cols: usize, heads: usize) -> Vec<f32> {
    reorder_rows(
        data,
        cols,
        heads,
        |d, h, j| (h * d + 2 * j, h * d + j),
        |d, h, j| (h * d + 2 * j + 1, h * d + d / 2 + j),
    )
}

/// The permutation llama.cpp's converter applies; the inverse of [`unpermute_rows`].
pub fn permute_rows(data: &[f32], cols: usize, heads: usize) -> Vec<f32> {
    reorder_rows(
        data,
        cols,
        heads,
        |d, h, j| (h * d + j, h * d + 2 * j),
        |d, h, j| (h * d + d / 2 + j, h * d + 2 * j + 1),
    )
}

/// Each map gives (source row, destination row) for head `h`, pair `j`, head size `d`.
fn reorder_rows(
    data: &[f32],
    cols: usize,
    heads: usize,
    even: impl Fn(usize, usize, usize) -> (usize, usize),
    odd: impl Fn(usize, usize, usize) -> (usize, usize),
) -> Vec<f32> {
    let rows = data.len() / cols.max(1);
    let d = rows / heads.max(1);
    let mut out = vec![0.0f32; data.len()];
    let mut copy = |(src, dst): (usize, usize)| {
        out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
    };
    for h in 0..heads {
        for j in 0..d / 2 {
            copy(even(d, h, j));
            copy(odd(d, h, j));
        }
    }
    out
}

/// Convert `gguf` into the (existing, empty) folder `out_dir`. `progress` gets a stage
/// label and the overall fraction done.
pub fn convert_gguf_to_hf(
    gguf: &Path,
    out_dir: &Path,
    progress: &mut dyn FnMut(&str, f32),
) -> Result<(), GgufError> {
    convert_gguf_to_hf_cancellable(gguf, out_dir, progress, &AtomicBool::new(false))
}

/// [`convert_gguf_to_hf`] that stops between tensors once `cancel` is set (the caller
/// removes the partial folder).
pub fn convert_gguf_to_hf_cancellable(
    gguf: &Path,
    out_dir: &Path,
    progress: &mut dyn FnMut(&str, f32),
    cancel: &AtomicBool,
) -> Result<(), GgufError> {
    let cancelled = || GgufError::output(out_dir, "conversion cancelled");
    progress("reading GGUF header", 0.0);
    let file = GgufFile::open(gguf)?;
    let plan = planned_tensors(&file)?;
    // Metadata files first: they are cheap and fail fast on unsupported tokenizers.
    let config = build_config_json(&file)?;
    let tokenizer = build_tokenizer_json(&file)?;
    let tokenizer_config = build_tokenizer_config_json(&file)?;
    let mut files = serde_json::Map::new();
    for (name, value) in [
        ("config.json", &config),
        ("tokenizer.json", &tokenizer),
        ("tokenizer_config.json", &tokenizer_config),
    ] {
        files.insert(name.into(), write_json(&out_dir.join(name), value)?);
    }

    let st_path = out_dir.join("model.safetensors");
    let header: Vec<(String, Vec<usize>)> = plan
        .iter()
        .map(|t| (t.hf_name.clone(), t.hf_shape.clone()))
        .collect();
    let mut writer = SafetensorsWriter::create(&st_path, &header)?;
    let total = plan.len().max(1) as f32;
    for (i, t) in plan.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        progress(&format!("converting {}", t.gguf_name), i as f32 / total);
        let (shape, values) = file.tensor_f32(&t.gguf_name)?;
        let mut values = match t.unpermute_heads {
            Some(heads) => unpermute_rows(&values, shape.last().copied().unwrap_or(1), heads),
            None => values,
        };
        if t.norm_shift {
            // transformers' `weights - 1` on the dequantized f32 values, the same rounding.
            values.iter_mut().for_each(|v| *v -= 1.0);
        }
        writer.write_tensor(&t.hf_name, &values)?;
    }
    let (size, sha256) = writer.finish()?;
    files.insert(
        "model.safetensors".into(),
        serde_json::json!({"size": size, "sha256": sha256}),
    );
    write_json(&out_dir.join(SOURCE_FILE), &source_note(gguf, &file, files))?;
    progress("conversion done", 1.0);
    Ok(())
}

/// Written beside the converted weights so the app can say what the f32 numbers came from.
pub const SOURCE_FILE: &str = "glassbox_source.json";

/// "Q4_1 weights (token embedding Q8_0) computed in f32": the most common storage type of the
/// matrices, and the embedding's when it differs.
fn source_note(
    gguf: &Path,
    file: &GgufFile,
    files: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let (kinds, counts) = storage_kinds(file);
    serde_json::json!({
        "source": gguf.file_name().map(|n| n.to_string_lossy().into_owned()),
        "weights_note": format!("{kinds} computed in f32"),
        "tensor_types": counts,
        // Size and sha256 of every file, so a damaged cache is found and repaired.
        "files": files,
    })
}

/// "Q4_1 weights (token embedding Q8_0)": the most common storage type of the matrices, and
/// the embedding's when it differs; with the count of matrices per type.
pub fn storage_kinds(file: &GgufFile) -> (String, std::collections::BTreeMap<String, usize>) {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut embedding = None;
    for t in file.tensors().iter().filter(|t| t.dims.len() == 2) {
        let kind = t.ggml_type.to_string();
        if t.name == "token_embd.weight" {
            embedding = Some(kind.clone());
        }
        *counts.entry(kind).or_default() += 1;
    }
    let main = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| "unknown".into());
    let kinds = match embedding {
        Some(e) if e != main => format!("{main} weights (token embedding {e})"),
        _ => format!("{main} weights"),
    };
    (kinds, counts)
}

/// Writes pretty JSON; returns `{"size", "sha256"}` of what was written.
fn write_json(path: &Path, value: &serde_json::Value) -> Result<serde_json::Value, GgufError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| GgufError::output(path, e.to_string()))?;
    std::fs::write(path, &text).map_err(|e| GgufError::io(path, e))?;
    let sha256: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(serde_json::json!({"size": text.len(), "sha256": sha256}))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
