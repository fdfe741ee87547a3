//! The downloaded GGUF kept beside the converted files, so `--weights native` loads it offline:
//! moved into the staged folder before that folder's rename into the cache, or put into a
//! finished folder of an older build by the next `glassbox fetch`. Listed in
//! `glassbox_source.json` with its size and sha256, checked like the converted files.

use std::path::Path;

use crate::load::gguf::SOURCE_FILE;

use super::{FetchError, io_err};

/// Whether `dir` holds the GGUF `name` and its note lists it.
pub(super) fn has_gguf(dir: &Path, name: &str) -> bool {
    let listed = super::verify::recorded_files(dir).ok().flatten().is_some_and(|f| f.contains_key(name));
    listed && dir.join(name).is_file()
}

/// Moves `gguf` (already checked against `sha256`) into `dir` under its own name and lists
/// it in the note. Each file appears by a rename, so a reader sees it whole or not at all.
pub(super) fn keep_gguf(gguf: &Path, dir: &Path, sha256: &str) -> Result<(), FetchError> {
    let name = gguf.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let size = std::fs::metadata(gguf).map_err(io_err(gguf))?.len();
    let partial = dir.join(format!(".{name}.partial"));
    if std::fs::rename(gguf, &partial).is_err() {
        std::fs::copy(gguf, &partial).map_err(io_err(&partial))?;
    }
    let target = dir.join(&name);
    std::fs::rename(&partial, &target).map_err(io_err(&target))?;
    record(dir, &name, size, sha256)
}

/// `files[name] = {size, sha256}` in the note, written beside it and renamed over it.
fn record(dir: &Path, name: &str, size: u64, sha256: &str) -> Result<(), FetchError> {
    let path = dir.join(SOURCE_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    let mut note: serde_json::Value = serde_json::from_str(&text).map_err(|e| FetchError::Damaged { path: path.clone(), why: e.to_string() })?;
    if let Some(files) = note.get_mut("files").and_then(|f| f.as_object_mut()) {
        files.insert(name.to_string(), serde_json::json!({"size": size, "sha256": sha256}));
    }
    let text = serde_json::to_string_pretty(&note).map_err(|e| FetchError::Damaged { path: path.clone(), why: e.to_string() })?;
    let tmp = dir.join(format!(".{SOURCE_FILE}.partial"));
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}
