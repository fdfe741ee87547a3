//! Checkpoints as Hugging Face folders for every family: `config.json` (the family's form
//! transformers reads), `model.safetensors` (the family's tensor names, f32, metadata
//! `{"format": "pt"}` as transformers requires) and `tokenizer.json`. Glassbox opens one like
//! any model (`--model DIR`, the app's slider).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::json;

use super::hf_config::{hf_config_json, transformers_runs};
use super::hf_export::{Export, to_hf};
use super::params::Params;
use crate::load::config::LlamaConfig;
use crate::error::{EngineError, Result};

/// Intermediate checkpoints live in `OUT/checkpoints/step-NNNNNN/`; the final one is `OUT`.
pub const CHECKPOINTS_DIR: &str = "checkpoints";

pub fn step_dir(out: &Path, step: usize) -> PathBuf {
    out.join(CHECKPOINTS_DIR).join(format!("step-{step:06}"))
}

/// Every saved checkpoint under `out`, by step (the final folder itself is not listed).
pub fn list_checkpoints(out: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(out.join(CHECKPOINTS_DIR))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("config.json").is_file())
                .filter_map(|p| {
                    let step = p.file_name()?.to_str()?.strip_prefix("step-")?.parse().ok()?;
                    Some((step, p))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Beside a checkpoint of a recipe variant no transformers class runs.
pub const VARIANT_README: &str = "README.md";
const VARIANT_README_TEXT: &str = "# A Glassbox recipe variant\n\n\
This model is Llama's recipe with switches changed (the `glassbox_variant` object in\n\
config.json: norm placement, norm kind, positions or MLP). transformers has no class for it:\n\
`LlamaForCausalLM` would load these weights into another network or refuse them.\n\
Glassbox opens the folder (`glassbox --model DIR`, or the app's model picker).\n";

/// Writes the folder (created if needed; files replaced one by one via a temporary name, so a
/// reader never sees half a file) in the family's own checkpoint form (`hf_config.rs`,
/// `hf_export.rs`): transformers' `from_pretrained` reads it. `note` becomes the source line
/// the app's status bar shows.
pub fn save_checkpoint(
    dir: &Path,
    c: &LlamaConfig,
    params: &Params,
    tokenizer_json: Option<&str>,
    note: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    let entries = to_hf(c, params, Export::Values)?
        .iter()
        .map(|(name, t)| Entry::f32(name, t.shape(), t.iter().copied()))
        .collect();
    write_safetensors(&dir.join("model.safetensors"), entries)?;
    let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    write_atomic(&dir.join("config.json"), &pretty(&hf_config_json(c)))?;
    variant_readme(dir, !transformers_runs(c))?;
    if let Some(tok) = tokenizer_json {
        write_atomic(&dir.join("tokenizer.json"), tok.as_bytes())?;
    }
    let source = json!({"weights_note": note});
    write_atomic(&dir.join(crate::load::gguf::SOURCE_FILE), &pretty(&source))?;
    Ok(())
}

/// The README beside a variant's checkpoint; removed when the folder is rewritten as a model
/// transformers runs, so it never describes weights it does not belong to.
fn variant_readme(dir: &Path, variant: bool) -> Result<()> {
    let readme = dir.join(VARIANT_README);
    if variant {
        write_atomic(&readme, VARIANT_README_TEXT.as_bytes())
    } else if readme.is_file() {
        std::fs::remove_file(&readme).map_err(|e| EngineError::io(&readme, e))
    } else {
        Ok(())
    }
}

/// One tensor for [`write_safetensors`]: name, dtype, shape, little-endian bytes.
pub struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Entry {
    pub fn f32(name: &str, shape: &[usize], values: impl Iterator<Item = f32>) -> Self {
        Self {
            name: name.to_string(),
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            bytes: values.flat_map(f32::to_le_bytes).collect(),
        }
    }

    pub fn i64(name: &str, values: &[i64]) -> Self {
        Self {
            name: name.to_string(),
            dtype: Dtype::I64,
            shape: vec![values.len()],
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// A safetensors file with metadata `{"format": "pt"}` (transformers refuses files without it).
pub fn write_safetensors(path: &Path, entries: Vec<Entry>) -> Result<()> {
    let views = entries
        .iter()
        .map(|e| {
            TensorView::new(e.dtype, e.shape.clone(), &e.bytes)
                .map(|v| (e.name.as_str(), v))
                .map_err(|err| EngineError::Tensor {
                    file: path.to_path_buf(),
                    tensor: e.name.clone(),
                    msg: err.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let st = safetensors::serialize(views, Some(meta)).map_err(|e| EngineError::Safetensors {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    write_atomic(path, &st)
}

/// What `glassbox grad` writes, in the layout of the fixtures' `grad.safetensors`: `loss`,
/// `input_ids`, `grad.<parameter>` for every parameter under the family's checkpoint name
/// (fused and transposed as the checkpoint stores it), and the hook gradients
/// `grad.hook_embed`, `grad.blocks.L.hook_resid_pre`, `grad.blocks.L.attn.hook_pattern`,
/// `grad.ln_final.hook_normalized`, `grad.hook_logits`.
pub fn save_gradients(path: &Path, c: &LlamaConfig, grads: &super::backward::Gradients, ids: &[u32]) -> Result<()> {
    use crate::program::hooks::{BlockHook, HookKey};
    let mut entries = vec![
        Entry::f32("loss", &[1], std::iter::once(grads.loss.loss)),
        Entry::i64("input_ids", &ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>()),
    ];
    for (name, t) in to_hf(c, &grads.params, Export::Gradients)? {
        entries.push(Entry::f32(&format!("grad.{name}"), t.shape(), t.iter().copied()));
    }
    let mut hooks = vec![HookKey::Embed];
    for l in 0..c.n_layers() {
        hooks.push(HookKey::Block(l, BlockHook::ResidPre));
        hooks.push(HookKey::Block(l, BlockHook::Pattern));
    }
    // BERT has no final norm: its head reads the MLM transform.
    hooks.push(if c.arch().final_norm { HookKey::LnFinalNormalized } else { HookKey::MlmTransform });
    hooks.push(HookKey::Logits);
    for key in hooks {
        let t = grads
            .hooks
            .get(key)
            .ok_or_else(|| EngineError::Input(format!("the backward pass recorded no gradient for `{key}`")))?;
        entries.push(Entry::f32(&format!("grad.{key}"), t.shape(), t.data.iter().copied()));
    }
    write_safetensors(path, entries)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_folder_says_transformers_cannot_run_it_and_loses_that_note_when_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        variant_readme(tmp.path(), true).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(VARIANT_README)).unwrap();
        assert!(text.contains("transformers has no class") && text.contains("Glassbox opens"), "{text}");
        variant_readme(tmp.path(), false).unwrap();
        assert!(!tmp.path().join(VARIANT_README).exists());
    }
}
