//! The recently opened models, most recent first, persisted in `state.json`'s
//! `recent_models` (an older file without it reads as an empty list).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many the list keeps.
pub const MAX_RECENT: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentModel {
    pub name: String,
    pub path: PathBuf,
}

impl RecentModel {
    /// Moved or deleted since: shown, greyed, rather than silently dropped.
    pub fn missing(&self) -> bool {
        !self.path.exists()
    }
}

/// `path` goes to the front; an earlier entry for the same model (same path, or the same
/// file through another spelling) is removed; the list is cut to [`MAX_RECENT`].
pub fn remember(list: &mut Vec<RecentModel>, name: &str, path: &Path) {
    let key = canonical(path);
    list.retain(|r| canonical(&r.path) != key);
    list.insert(0, RecentModel { name: name.to_string(), path: key });
    list.truncate(MAX_RECENT);
}

/// Values from disk: duplicates and overflow removed, order kept.
pub fn sanitize(list: &mut Vec<RecentModel>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|r| seen.insert(r.path.clone()));
    list.truncate(MAX_RECENT);
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// The name a model is listed under: its folder or file name.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn most_recent_first_deduplicated_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut list = Vec::new();
        for i in 0..12 {
            let p = dir.path().join(format!("m{i}"));
            std::fs::create_dir(&p).unwrap();
            remember(&mut list, &format!("m{i}"), &p);
        }
        assert_eq!(list.len(), MAX_RECENT);
        assert_eq!(list[0].name, "m11");
        // m5 again, spelled with a `..`: one entry, now first.
        let again = dir.path().join("m11/../m5");
        remember(&mut list, "m5", &again);
        assert_eq!(list.len(), MAX_RECENT);
        assert_eq!(list[0].name, "m5");
        assert_eq!(list.iter().filter(|r| r.name == "m5").count(), 1);
        assert_eq!(list[1].name, "m11");
    }

    #[test]
    fn a_deleted_model_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gone");
        std::fs::create_dir(&p).unwrap();
        let mut list = Vec::new();
        remember(&mut list, "gone", &p);
        assert!(!list[0].missing());
        std::fs::remove_dir(&p).unwrap();
        assert!(list[0].missing());
    }

    #[test]
    fn an_old_state_file_without_the_list_still_loads() {
        let s: crate::gui::state::PersistedState = serde_json::from_str(r#"{"prompt": "hi", "zoom": 1.0}"#).unwrap();
        assert_eq!(s.prompt, "hi");
        assert!(s.recent_models.is_empty());
        let mut list = vec![
            RecentModel { name: "a".into(), path: "/a".into() },
            RecentModel { name: "a".into(), path: "/a".into() },
        ];
        sanitize(&mut list);
        assert_eq!(list.len(), 1);
    }
}
