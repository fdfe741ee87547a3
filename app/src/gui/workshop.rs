//! Workshop mode (`glassbox --workshop FILE`): a class walks through a list of sessions.
//! FILE is `{"workshop": "title", "sessions": ["a.glassbox.json", …]}`, paths relative to its
//! folder (checked as a session's are). The prompt box and the model picker are locked, and
//! PgDn / PgUp or ◀ ▶ in the menu bar open the next / previous session.

use std::path::{Path, PathBuf};

use egui::{Key, Modifiers, RichText, Ui};
use serde::Deserialize;

use super::i18n::Lang;
use super::saved_session::paths;

/// A workshop file larger than this is not one.
const MAX_BYTES: u64 = 1 << 20;
const MAX_SESSIONS: usize = 500;
const MAX_TITLE: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkshopFile {
    workshop: String,
    sessions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workshop {
    pub title: String,
    /// Resolved inside the workshop file's folder.
    pub sessions: Vec<PathBuf>,
    /// The session open now.
    pub index: usize,
}

/// The tooltip of every locked control.
pub fn locked_text(lang: Lang) -> &'static str {
    lang.tr(
        "Locked in workshop mode: every session brings its own prompt and model. PgDn / PgUp move through the sessions.",
        "研讨模式下已锁定：每个会话自带提示词和模型。PgDn / PgUp 切换会话。",
    )
}

impl Workshop {
    /// Reads and checks the whole list before anything is opened.
    pub fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
        if meta.len() > MAX_BYTES {
            return Err(format!("{shown} is {} bytes: not a workshop file", meta.len()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let file: WorkshopFile = serde_json::from_str(&text)
            .map_err(|e| format!("{shown} is not a workshop file: {e} (line {}, column {})", e.line(), e.column()))?;
        if file.sessions.is_empty() || file.sessions.len() > MAX_SESSIONS {
            return Err(format!("{shown} lists {} sessions: a workshop has 1 to {MAX_SESSIONS}", file.sessions.len()));
        }
        if file.workshop.chars().count() > MAX_TITLE {
            return Err(format!("{shown}: the title is over {MAX_TITLE} characters"));
        }
        let folder = paths::folder_of(path);
        let sessions = file
            .sessions
            .iter()
            .map(|rel| paths::resolve_inside(&folder, rel).map_err(|e| format!("{shown}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { title: file.workshop, sessions, index: 0 })
    }

    /// The index `delta` away, if there is one.
    pub fn neighbour(&self, delta: isize) -> Option<usize> {
        let i = self.index as isize + delta;
        (0..self.sessions.len() as isize).contains(&i).then_some(i as usize)
    }
}

/// PgDn / PgUp: the step to take through the list (0: none pressed).
pub fn keys(ctx: &egui::Context) -> isize {
    ctx.input_mut(|i| {
        let next = i.consume_key(Modifiers::NONE, Key::PageDown);
        let prev = i.consume_key(Modifiers::NONE, Key::PageUp);
        isize::from(next) - isize::from(prev)
    })
}

/// "2 / 5: title" with ◀ ▶ in the menu bar; returns the step clicked.
pub fn bar_ui(ui: &mut Ui, w: &Workshop, lang: Lang) -> isize {
    let mut delta = 0;
    ui.separator();
    let prev = ui.add_enabled(w.neighbour(-1).is_some(), egui::Button::new("◀"));
    if prev.on_hover_text(lang.tr("Previous session (PgUp)", "上一个会话（PgUp）")).clicked() {
        delta = -1;
    }
    let label = format!("{} / {}: {}", w.index + 1, w.sessions.len(), w.title);
    ui.label(RichText::new(label).strong()).on_hover_text(locked_text(lang));
    let next = ui.add_enabled(w.neighbour(1).is_some(), egui::Button::new("▶"));
    if next.on_hover_text(lang.tr("Next session (PgDn)", "下一个会话（PgDn）")).clicked() {
        delta = 1;
    }
    delta
}
