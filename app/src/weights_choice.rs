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
    // What building the model freed (its tokenizer's JSON among it) goes back to the system.
    glassbox_engine::load::heap::release_freed();
    model
}

/// clap's parser for `--weights`.
pub fn parse(s: &str) -> Result<WeightsMode, String> {
    WeightsMode::parse(s).ok_or_else(|| format!("`{s}` is not a weights mode: native (GGUF blocks as downloaded) or f32"))
}
