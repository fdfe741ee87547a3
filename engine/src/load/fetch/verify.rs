//! Is a cached model folder intact? `glassbox_source.json` records the size and sha256 of
//! every file the converter wrote; sizes are checked on every load (cheap), hashes by
//! `glassbox fetch`, which converts again when anything differs. Folders converted by older
//! builds (no file list) are checked for what the safetensors header itself implies.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::load::gguf::SOURCE_FILE;

use super::{MARKER_FILE, hex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// File sizes, and the safetensors header against the file length.
    Sizes,
    /// Also every file's sha256 (reads the whole model).
    Hashes,
}

/// `Err` says which file is damaged and how.
pub fn verify_model_dir(dir: &Path, verify: Verify) -> Result<(), String> {
    let st = dir.join("model.safetensors");
    let expected = safetensors_expected_size(&st)?;
    let actual = std::fs::metadata(&st).map_err(|e| format!("model.safetensors: {e}"))?.len();
    if expected != actual {
        return Err(format!(
            "model.safetensors is {actual} bytes but its header describes {expected}"
        ));
    }
    let Some(files) = recorded_files(dir)? else {
        return Ok(());
    };
    for (name, want) in &files {
        // Names come from our own converter; anything else is not ours to open.
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(format!("{SOURCE_FILE} lists an unexpected file {name:?}"));
        }
        let path = dir.join(name);
        let size = std::fs::metadata(&path)
            .map_err(|e| format!("{name}: {e}"))?
            .len();
        let want_size = want.get("size").and_then(|s| s.as_u64());
        if want_size != Some(size) {
            return Err(format!(
                "{name} is {size} bytes, expected {}",
                want_size.map_or_else(|| "?".into(), |s| s.to_string())
            ));
        }
        if verify == Verify::Hashes {
            let want_hash = want.get("sha256").and_then(|s| s.as_str()).unwrap_or("");
            let got = sha256_file(&path).map_err(|e| format!("{name}: {e}"))?;
            if got != want_hash {
                return Err(format!("{name} has sha256 {got}, expected {want_hash}"));
            }
        }
    }
    Ok(())
}

/// The `files` table (name → `size`, `sha256`) of `dir`'s converter note; `None` without a
/// note or without the table.
pub(super) fn recorded_files(dir: &Path) -> Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
    let Ok(text) = std::fs::read_to_string(dir.join(SOURCE_FILE)) else {
        return Ok(None);
    };
    let note: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{SOURCE_FILE}: {e}"))?;
    Ok(note.get("files").and_then(|f| f.as_object()).cloned())
}

/// For [`crate::Model::load`]: a cache folder (one with the completion marker) whose files
/// do not have their recorded sizes is an error that says how to repair it.
pub fn check_cached_sizes(dir: &Path) -> Result<(), super::FetchError> {
    if !dir.join(MARKER_FILE).is_file() {
        return Ok(());
    }
    verify_model_dir(dir, Verify::Sizes).map_err(|why| super::FetchError::Damaged { path: dir.to_path_buf(), why })
}

/// 8 + header length + the end of the last tensor's data, from the header alone.
fn safetensors_expected_size(path: &Path) -> Result<u64, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("model.safetensors: {e}"))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| format!("model.safetensors: header length: {e}"))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(format!("model.safetensors: header length {n} is absurd"));
    }
    let mut header = Vec::new();
    f.take(n)
        .read_to_end(&mut header)
        .map_err(|e| format!("model.safetensors: header: {e}"))?;
    if header.len() as u64 != n {
        return Err(format!(
            "model.safetensors is truncated inside its {n}-byte header"
        ));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| format!("model.safetensors: header: {e}"))?;
    let end = json
        .as_object()
        .map(|o| {
            o.values()
                .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    Ok(8 + n + end)
}

pub(super) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}
