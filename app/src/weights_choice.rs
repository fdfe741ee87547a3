//! How the app loads models' weights (`--weights native|f32`, the GUI's setting): one choice
//! for the process, read by every loader in the CLI and the GUI. `None` leaves it to the
//! path (`WeightsMode::default_for`: native for a `.gguf` file, f32 for a folder).

use std::path::Path;
use std::sync::RwLock;

use glassbox_engine::{Model, WeightsMode};

static CHOICE: RwLock<Option<WeightsMode>> = RwLock::new(None);

/// Sets the choice (the flag at start-up, the GUI setting when it changes).
pub fn set(choice: Option<WeightsMode>) {
    if let Ok(mut c) = CHOICE.write() {
        *c = choice;
    }
}

/// The choice, `None` when each path decides.
pub fn get() -> Option<WeightsMode> {
    CHOICE.read().ok().and_then(|c| *c)
}

/// What `path` loads as under the choice.
pub fn mode_for(path: &Path) -> WeightsMode {
    get().unwrap_or_else(|| WeightsMode::default_for(path))
}

/// Loads `path` as the choice says.
pub fn load(path: &Path) -> glassbox_engine::Result<Model> {
    let model = Model::load_with(path, mode_for(path));
    release_freed_heap();
    model
}

/// Hands the heap's free memory back to the system: building a large tokenizer (Gemma's
/// 262,144 tokens) goes through JSON values of hundreds of MiB that are freed at once, and
/// `main` asks glibc to keep freed memory for reuse, so without this they stay resident.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_freed_heap() {
    // SAFETY: malloc_trim only returns free pages of the heap to the kernel; live allocations
    // are untouched, and glibc locks its arenas while it runs.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_heap() {}

/// clap's parser for `--weights`.
pub fn parse(s: &str) -> Result<WeightsMode, String> {
    WeightsMode::parse(s).ok_or_else(|| format!("`{s}` is not a weights mode: native (GGUF blocks as downloaded) or f32"))
}
