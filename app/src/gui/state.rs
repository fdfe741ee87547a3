//! What survives a restart: prompt, selection, cursor, language, theme, zoom, view, open
//! lesson, the memory budget, the recent models and the weights setting, in `$XDG_CONFIG_HOME/glassbox/state.json` (else `~/.config/...`; or
//! `$GLASSBOX_STATE_FILE`). Written atomically (temp file + rename) so a crash mid-write
//! never leaves half a file; a file that does not parse is renamed aside and reported,
//! never a crash.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::i18n::Lang;
use super::session::Selection;
use super::views::ViewId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistedState {
    pub prompt: String,
    pub chat: bool,
    pub selection: Selection,
    /// The cursor as a step name ("blocks.3.softmax"), valid for any model size.
    pub cursor: String,
    pub lang: Lang,
    pub dark: bool,
    pub zoom: f32,
    pub view: ViewId,
    pub open_lesson: Option<String>,
    pub follow_cursor: bool,
    pub show_diagram: bool,
    pub show_lesson: bool,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    /// The memory budget for what a pass keeps for the views, in MiB.
    pub budget_mib: u64,
    /// The models opened lately, most recent first (`recent.rs`).
    pub recent_models: Vec<super::recent::RecentModel>,
    /// How models load: native (a GGUF's blocks as downloaded) or f32; `None`: by the path
    /// (native for a .gguf file, f32 for a folder). `--weights` overrides it at start-up.
    pub weights: Option<glassbox_engine::WeightsMode>,
}

impl Default for PersistedState {
    fn default() -> Self {
        Self {
            prompt: "The capital of France is".into(),
            chat: false,
            selection: Selection::default(),
            cursor: "embed".into(),
            lang: Lang::En,
            dark: false,
            zoom: 1.0,
            view: super::views::tokens::ID,
            open_lesson: Some("01-overview".into()),
            follow_cursor: true,
            show_diagram: true,
            show_lesson: true,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            budget_mib: glassbox_engine::long::budget::DEFAULT_BUDGET / glassbox_engine::long::budget::MIB,
            recent_models: Vec::new(),
            weights: None,
        }
    }
}

pub fn default_path() -> Option<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = nonempty("GLASSBOX_STATE_FILE") {
        return Some(p);
    }
    let base = nonempty("XDG_CONFIG_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| nonempty("HOME").map(|h| h.join(".config")))?;
    Some(base.join("glassbox").join("state.json"))
}

/// Loads the state; a missing file is the default. A file that is not UTF-8 JSON of the
/// expected shape is moved to `state.json.<time>.bak` (never overwritten by the next save)
/// and the returned notice says where.
pub fn load(path: &Path) -> (PersistedState, Option<String>) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (PersistedState::default(), None);
        }
        Err(e) => {
            return (
                PersistedState::default(),
                Some(format!(
                    "could not read {}: {e}; using defaults",
                    path.display()
                )),
            );
        }
    };
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|e| format!("not UTF-8: {e}"))
        .and_then(|text| serde_json::from_str::<PersistedState>(text).map_err(|e| e.to_string()));
    match parsed {
        Ok(s) => (sanitize(s), None),
        Err(e) => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = path.with_extension(format!("json.{stamp}.bak"));
            let moved = std::fs::rename(path, &aside);
            let notice = match moved {
                Ok(()) => format!(
                    "The saved state {} was damaged ({e}); it was moved to {} and defaults are used.",
                    path.display(),
                    aside.display()
                ),
                Err(m) => format!(
                    "The saved state {} was damaged ({e}) and could not be moved aside ({m}); defaults are used.",
                    path.display()
                ),
            };
            (PersistedState::default(), Some(notice))
        }
    }
}

/// Values from disk are not trusted to be in range.
fn sanitize(mut s: PersistedState) -> PersistedState {
    if !(0.5..=3.0).contains(&s.zoom) || !s.zoom.is_finite() {
        s.zoom = 1.0;
    }
    if !(0.0..=2.0).contains(&s.temperature) || !s.temperature.is_finite() {
        s.temperature = 1.0;
    }
    if !(0.01..=1.0).contains(&s.top_p) || !s.top_p.is_finite() {
        s.top_p = 1.0;
    }
    s.top_k = s.top_k.min(100);
    use glassbox_engine::long::budget::{MAX_BUDGET, MIB, MIN_BUDGET};
    s.budget_mib = s.budget_mib.clamp(MIN_BUDGET / MIB, MAX_BUDGET / MIB);
    super::recent::sanitize(&mut s.recent_models);
    s
}

/// Atomic write: a temp file in the same folder, then rename over the old one.
pub fn save(path: &Path, state: &PersistedState) -> Result<()> {
    write_json_atomic(path, state)
}

/// `value` as pretty JSON at `path`, atomically (state.json, saved sessions): a temp file in
/// the same folder, synced, then renamed over the old file.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = serde_json::to_string_pretty(value)?;
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let written = write_synced(&tmp, text.as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
        });
    if written.is_err() {
        // A full disk leaves a short (often empty) temp file: never leave it behind, and
        // the old file is untouched.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes and syncs, so the rename never publishes a file whose bytes are still in flight.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("glassbox-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trips_and_writes_atomically() {
        let dir = temp_dir("rt");
        let path = dir.join("state.json");
        let s = PersistedState {
            prompt: "深度学习模型的核心是".into(),
            lang: Lang::Zh,
            weights: Some(glassbox_engine::WeightsMode::Native),
            selection: Selection {
                head: 4,
                ..Selection::default()
            },
            zoom: 1.5,
            open_lesson: Some("07-rope".into()),
            ..PersistedState::default()
        };
        save(&path, &s).unwrap();
        let (back, notice) = load(&path);
        assert_eq!(back, s);
        assert!(notice.is_none());
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn row26_corrupt_file_is_set_aside_with_a_notice() {
        let dir = temp_dir("corrupt");
        let path = dir.join("state.json");
        std::fs::write(&path, "{ this is not json").unwrap();
        let (s, notice) = load(&path);
        assert_eq!(s, PersistedState::default());
        let notice = notice.expect("a notice");
        assert!(notice.contains("moved to"), "{notice}");
        assert!(!path.exists());
        let aside = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".bak"));
        assert!(aside);
    }

    #[test]
    fn row26_invalid_utf8_file_is_backed_up_before_defaults_are_saved() {
        let dir = temp_dir("utf8");
        let path = dir.join("state.json");
        let bad = b"{\"prompt\": \"\xff\xfe caf\xe9\"}".to_vec();
        std::fs::write(&path, &bad).unwrap();
        let (s, notice) = load(&path);
        assert_eq!(s, PersistedState::default());
        let notice = notice.expect("a notice");
        assert!(notice.contains("not UTF-8") && notice.contains(".bak"), "{notice}");
        // Saving the defaults now does not destroy the user's bytes.
        save(&path, &s).unwrap();
        let backup = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(".bak"))
            .expect("a .bak file");
        assert_eq!(std::fs::read(backup.path()).unwrap(), bad);
    }

    /// A full disk, simulated by pointing the temp file at /dev/full (Linux).
    #[cfg(target_os = "linux")]
    #[test]
    fn row26_full_disk_leaves_no_temp_file_and_keeps_the_old_state() {
        let dir = temp_dir("full");
        let path = dir.join("state.json");
        let old = PersistedState {
            prompt: "kept".into(),
            ..PersistedState::default()
        };
        save(&path, &old).unwrap();
        let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let new = PersistedState {
            prompt: "lost".into(),
            ..PersistedState::default()
        };
        let err = save(&path, &new).unwrap_err();
        assert!(format!("{err:#}").contains("No space left"), "{err:#}");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["state.json".to_string()]);
        assert_eq!(load(&path).0.prompt, "kept");
    }

    #[test]
    fn out_of_range_values_are_reset() {
        let dir = temp_dir("range");
        let path = dir.join("state.json");
        std::fs::write(&path, r#"{"zoom": 40.0, "top_p": 7.0}"#).unwrap();
        let (s, notice) = load(&path);
        assert!(notice.is_none());
        assert_eq!(s.zoom, 1.0);
        assert_eq!(s.top_p, 1.0);
    }
}
