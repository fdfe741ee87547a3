//! Paths inside session and workshop files: relative to the file's own folder and never
//! leaving it (no absolute paths, no `..`, no symlink that points outside), so a file handed
//! round a class cannot make Glassbox open something elsewhere on the computer.

use std::path::{Component, Path, PathBuf};

/// A path as written in the file: relative, plain components only.
pub fn check_relative(rel: &str) -> Result<(), String> {
    let p = Path::new(rel);
    if rel.is_empty() {
        return Err("an empty path".into());
    }
    if p.is_absolute() || rel.starts_with('/') || rel.starts_with('\\') {
        return Err(format!("the path `{rel}` is absolute: paths must be relative to the file's folder"));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => return Err(format!("the path `{rel}` leaves the file's folder (`..` or a drive)")),
        }
    }
    Ok(())
}

/// `rel` under `base` (the file's folder), resolved through symlinks and still inside it.
pub fn resolve_inside(base: &Path, rel: &str) -> Result<PathBuf, String> {
    check_relative(rel)?;
    let base = base.canonicalize().map_err(|e| format!("{}: {e}", base.display()))?;
    let joined = base.join(rel);
    let real = joined.canonicalize().map_err(|e| format!("{}: {e}", joined.display()))?;
    if !real.starts_with(&base) {
        return Err(format!("`{rel}` points outside the file's folder (to {})", real.display()));
    }
    Ok(real)
}

/// `path` relative to `base` when it lies inside it (for writing a session file).
pub fn relative_inside(base: &Path, path: &Path) -> Option<String> {
    let base = base.canonicalize().ok()?;
    let path = path.canonicalize().ok()?;
    let rel = path.strip_prefix(&base).ok()?;
    let text = rel.to_str()?.to_string();
    Some(if text.is_empty() { ".".into() } else { text })
}

/// The folder a file's relative paths start from.
pub fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
