//! A model folder's identity for saved sessions: one sha256 over the sha256 of `config.json`
//! and of every `*.safetensors` file (sorted by name), so the same weights and config give the
//! same identity wherever the folder lives. A cached folder's `glassbox_source.json` already
//! records each file's hash; those are reused when the file still has its recorded size, so a
//! 500 MB model is not read again.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::hex;
use super::verify::{recorded_files, sha256_file};

/// The identity of the model in `dir`; `Err` says which file could not be read.
pub fn model_sha256(dir: &Path) -> Result<String, String> {
    let mut names = vec!["config.json".to_string()];
    let listing = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut weights: Vec<String> = listing
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    if weights.is_empty() {
        return Err(format!("{} holds no .safetensors weights", dir.display()));
    }
    weights.sort();
    names.extend(weights);
    // An unreadable note only means every file is hashed.
    let recorded = recorded_files(dir).ok().flatten();
    let mut all = Sha256::new();
    for name in &names {
        let path = dir.join(name);
        let size = std::fs::metadata(&path).map_err(|e| format!("{name}: {e}"))?.len();
        let known = recorded.as_ref().and_then(|r| r.get(name)).and_then(|f| {
            let same_size = f.get("size").and_then(|s| s.as_u64()) == Some(size);
            f.get("sha256").and_then(|s| s.as_str()).filter(|_| same_size).map(str::to_string)
        });
        let sha = match known {
            Some(sha) => sha,
            None => sha256_file(&path).map_err(|e| format!("{name}: {e}"))?,
        };
        all.update(format!("{name} {sha}\n").as_bytes());
    }
    Ok(hex(&all.finalize()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn same_files_same_identity_and_a_changed_byte_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"abc").unwrap();
        let a = model_sha256(dir.path()).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(model_sha256(dir.path()).unwrap(), a);
        std::fs::write(dir.path().join("model.safetensors"), b"abd").unwrap();
        assert_ne!(model_sha256(dir.path()).unwrap(), a);
    }

    #[test]
    fn a_folder_without_weights_has_no_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        assert!(model_sha256(dir.path()).unwrap_err().contains("no .safetensors"));
    }
}
