//! Saved sessions (`NAME.glassbox.json`, File → Save session… / Open session…, `glassbox
//! --session FILE`): what a class needs to reopen a figure — the model (name and sha256 of its
//! config and weights), prompt, chat template, step, view and mode, selection, sampling,
//! ablated heads, the Experiments view's settings and results, a training-run reference.
//!
//! A session file is untrusted input: [`read`] and [`check_against`] refuse it whole (bad
//! JSON with line and column, an unknown version, absurd numbers, paths leaving the session's
//! folder) before the app changes anything. Not `gui/session.rs`, which is the live state of
//! the loaded model.

pub mod apply;
pub mod frame;
pub mod dialog;
pub mod experiments;
pub mod paths;

use std::path::Path;

use glassbox_engine::{LlamaConfig, Step};
use serde::{Deserialize, Serialize};

use super::prompt_input;
use super::session::Selection;
use super::views::ViewId;

/// The format this build writes and reads.
pub const VERSION: u32 = 1;
/// Files end so; `Save session…` adds it.
pub const EXTENSION: &str = ".glassbox.json";
/// Larger files are not read at all (a session with every experiment is well under this).
const MAX_BYTES: u64 = 64 << 20;
/// The sampling caps the app's own settings use (`state.rs`).
pub const MAX_TEMPERATURE: f32 = 2.0;
pub const MAX_TOP_K: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    pub glassbox_session: u32,
    pub model: ModelRef,
    pub prompt: String,
    pub chat: bool,
    /// The cursor as a step name (`blocks.3.softmax`).
    pub step: String,
    pub view: ViewId,
    /// The sub-panels open in their views (`View::mode`), e.g. `["head", "patching"]`.
    #[serde(default)]
    pub modes: Vec<String>,
    pub selection: Selection,
    pub sampling: Sampling,
    /// `[layer, head]` pairs switched off in the ablation picker.
    #[serde(default)]
    pub ablated_heads: Vec<[usize; 2]>,
    #[serde(default)]
    pub experiments: Option<experiments::SavedExperiments>,
    #[serde(default)]
    pub training: Option<TrainingRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// As shown or known (`smollm2-135m-instruct`).
    pub name: String,
    /// `glassbox_engine::load::fetch::model_sha256` of its folder.
    pub sha256: String,
    /// The folder relative to the session's, when it lies inside it.
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
}

/// The Training view's run: its folder relative to the session's, and the checkpoint shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingRef {
    pub run: String,
    pub checkpoint: usize,
}

/// Reads and checks what needs no model: JSON, version, numbers, prompt size, step name,
/// relative paths. `Err` is one message for the user.
pub fn read(path: &Path) -> Result<SessionFile, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.len() > MAX_BYTES {
        return Err(format!("{shown} is {} bytes: not a session file (at most {MAX_BYTES})", meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| format!("{shown} is not UTF-8 text: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("{shown} is not valid JSON: {e} (line {}, column {})", e.line(), e.column()))?;
    match value.get("glassbox_session").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => return Err(format!("{shown} is a version {v} session; this Glassbox reads version {VERSION}: open it with a newer Glassbox")),
        None => return Err(format!("{shown} is not a Glassbox session (no \"glassbox_session\" version number)")),
    }
    let file: SessionFile = serde_json::from_str(text)
        .map_err(|e| format!("{shown}: {e} (line {}, column {})", e.line(), e.column()))?;
    check_plain(&file).map_err(|e| format!("{shown}: {e}"))?;
    Ok(file)
}

/// The checks that need no model.
fn check_plain(f: &SessionFile) -> Result<(), String> {
    let s = &f.sampling;
    if !s.temperature.is_finite() || !(0.0..=MAX_TEMPERATURE).contains(&s.temperature) {
        return Err(format!("temperature {} is outside 0–{MAX_TEMPERATURE}", s.temperature));
    }
    if !s.top_p.is_finite() || !(0.01..=1.0).contains(&s.top_p) {
        return Err(format!("top_p {} is outside 0.01–1", s.top_p));
    }
    if s.top_k > MAX_TOP_K {
        return Err(format!("top_k {} is over {MAX_TOP_K}", s.top_k));
    }
    let chars = f.prompt.chars().count();
    if chars > prompt_input::CHAR_CAP {
        return Err(format!("the prompt has {chars} characters; the prompt box holds at most {}", prompt_input::CHAR_CAP));
    }
    f.step.parse::<Step>().map_err(|e| format!("step `{}`: {e}", f.step))?;
    if f.model.sha256.len() != 64 || !f.model.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("the model's sha256 `{}` is not 64 hex digits", f.model.sha256));
    }
    for rel in f.model.path.iter().chain(f.training.iter().map(|t| &t.run)) {
        paths::check_relative(rel)?;
    }
    if let Some(x) = &f.experiments {
        x.check_plain()?;
    }
    Ok(())
}

/// The checks against the model the session names (its config): layer, head, position,
/// step, ablations and experiment results in range.
pub fn check_against(f: &SessionFile, c: &LlamaConfig) -> Result<(), String> {
    let (layers, heads) = (c.n_layers(), c.n_heads());
    let sel = &f.selection;
    let positions = c.max_position_embeddings;
    if sel.layer >= layers {
        return Err(format!("layer {} does not exist: the model has {layers} layers", sel.layer));
    }
    if sel.head >= heads {
        return Err(format!("head {} does not exist: the model has {heads} heads per layer", sel.head));
    }
    for p in [Some(sel.position), sel.key_position].into_iter().flatten() {
        if p >= positions {
            return Err(format!("position {p} is beyond the model's {positions} positions"));
        }
    }
    if let Some(n) = sel.neuron.filter(|&n| n >= c.intermediate_size) {
        return Err(format!("neuron {n} does not exist: the MLP has {}", c.intermediate_size));
    }
    if let Ok(step) = f.step.parse::<Step>()
        && step.layer().is_some_and(|l| l >= layers)
    {
        return Err(format!("step `{}` is beyond the model's {layers} layers", f.step));
    }
    if let Some(&[l, h]) = f.ablated_heads.iter().find(|&&[l, h]| l >= layers || h >= heads) {
        return Err(format!("ablated head L{l} H{h} does not exist ({layers} layers × {heads} heads)"));
    }
    if let Some(x) = &f.experiments {
        x.check_against(c)?;
    }
    Ok(())
}

/// A folder's files as far as its identity goes: names, sizes and modification times.
type Stamp = Vec<(String, u64, Option<std::time::SystemTime>)>;

fn stamp(dir: &Path) -> Option<Stamp> {
    let mut v: Stamp = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors") || e.file_name() == "config.json")
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), m.len(), m.modified().ok()))
        })
        .collect();
    v.sort();
    Some(v)
}

/// `model_sha256`, remembered per folder while its files keep their sizes and times: opening a
/// session checks the loaded model (a workshop on every PgDn), and a folder without recorded
/// hashes would otherwise be read whole each time.
pub fn identity(dir: &Path) -> Result<String, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<(std::path::PathBuf, Stamp), String>>> = OnceLock::new();
    let key = stamp(dir).map(|s| (dir.to_path_buf(), s));
    let seen = SEEN.get_or_init(Mutex::default);
    if let Some(k) = &key
        && let Some(sha) = seen.lock().unwrap_or_else(|p| p.into_inner()).get(k)
    {
        return Ok(sha.clone());
    }
    let sha = glassbox_engine::load::fetch::model_sha256(dir)?;
    if let Some(k) = key {
        seen.lock().unwrap_or_else(|p| p.into_inner()).insert(k, sha.clone());
    }
    Ok(sha)
}

/// Works out `dir`'s identity on a thread, so Save session… and a workshop's next session
/// find it remembered instead of reading the weights on the UI thread.
pub fn warm_identity(dir: &Path) {
    let dir = dir.to_path_buf();
    let _ = std::thread::Builder::new().name("glassbox-identity".into()).spawn(move || {
        let _ = identity(&dir);
    });
}
