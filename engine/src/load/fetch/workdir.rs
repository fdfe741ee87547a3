//! Scratch folders beside the cache (`.tmp-<purpose>-<pid>-<nanos>-<n>`), removed on drop
//! whether the work succeeded or not, and — for a process that was killed before it could
//! drop them — removed by the next fetch once their owner is gone.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{FetchError, io_err};

const PREFIX: &str = ".tmp-";
/// Where a process cannot be checked (no /proc), a folder this old is abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A scratch folder next to the destination (so the final rename never crosses
/// filesystems), removed on drop whether or not the work succeeded.
pub(crate) struct WorkDir(PathBuf);

impl WorkDir {
    pub(crate) fn create(parent: &Path, purpose: &str) -> Result<Self, FetchError> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0u32;
        loop {
            let name = format!("{PREFIX}{purpose}-{}-{nanos}-{attempt}", std::process::id());
            let path = parent.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Best effort: a leftover is removed by the next run (`remove_stale`).
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The pid in `.tmp-<purpose>-<pid>-...`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.split('-');
    let _purpose = parts.next()?;
    parts.next()?.parse().ok()
}

/// Is the process that made a scratch folder gone? Conservative: "no" when unsure.
fn abandoned(path: &Path, pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid.to_string()).exists();
    }
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > ABANDONED_AFTER)
}

/// Removes scratch folders under `parent` left by processes that no longer run (killed
/// mid-fetch: hundreds of megabytes each). Returns the folders removed.
pub fn remove_stale(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        let path = entry.path();
        if path.is_dir() && abandoned(&path, pid) && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_is_read_from_the_name() {
        assert_eq!(owner_pid(".tmp-fetch-1234-999-0"), Some(1234));
        assert_eq!(owner_pid(".tmp-fetch-x-999-0"), None);
        assert_eq!(owner_pid("smollm2"), None);
    }

    #[test]
    fn stale_folders_of_dead_processes_go_live_ones_stay() -> Result<(), FetchError> {
        let tmp = tempfile::tempdir().map_err(io_err(Path::new("tmp")))?;
        // No process has pid u32::MAX - 1 (Linux caps pids far lower).
        let dead = tmp.path().join(format!(".tmp-fetch-{}-1-0", u32::MAX - 1));
        std::fs::create_dir(&dead).map_err(io_err(&dead))?;
        std::fs::write(dead.join("partial.whl"), b"x").map_err(io_err(&dead))?;
        let mine = WorkDir::create(tmp.path(), "fetch")?;
        let other = tmp.path().join("smollm2-135m-instruct");
        std::fs::create_dir(&other).map_err(io_err(&other))?;
        let removed = remove_stale(tmp.path());
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && mine.path().exists() && other.exists());
        Ok(())
    }
}
