//! Sessions and workshops in the app's frame: the shortcuts (Ctrl+S, Ctrl+Shift+O), the
//! Save / Open window, a `--session` / `--workshop` given at start, PgDn / PgUp.

use std::path::PathBuf;

use egui::{Key, KeyboardShortcut, Modifiers};

use super::dialog::{Chosen, Purpose};
use crate::gui::app::{GlassboxApp, Phase};
use crate::gui::theme::Theme;
use crate::gui::workshop::{self, Workshop};

pub const SAVE_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
/// Shift: Ctrl+O alone opens a model.
pub const OPEN_SHORTCUT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::O);

/// What the command line asked to open once the window is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    Session(PathBuf),
    Workshop(PathBuf),
}

impl GlassboxApp {
    /// Once a frame, before the model picker reads Ctrl+O.
    pub(crate) fn sessions_frame(&mut self, ctx: &egui::Context) {
        self.startup_frame(ctx);
        let (save, open) = ctx.input_mut(|i| (i.consume_shortcut(&SAVE_SHORTCUT), i.consume_shortcut(&OPEN_SHORTCUT)));
        if save && matches!(self.phase, Phase::Ready(_)) {
            self.session_dialog.show(Purpose::Save);
        }
        if open {
            self.session_dialog.show(Purpose::Open);
        }
        // Even from the (locked) prompt box: it cannot be edited, so PgDn is always the class's.
        if self.workshop.is_some() {
            let delta = workshop::keys(ctx);
            self.workshop_step(delta, ctx);
        }
        let error = Theme::new(self.dark).error();
        match self.session_dialog.window(ctx, self.lang, error) {
            Some(Chosen::Save(path)) => self.save_session(&path, ctx.input(|i| i.time)),
            Some(Chosen::Open(path)) => {
                if let Err(e) = self.open_session(&path, ctx) {
                    self.refused(e);
                }
            }
            None => {}
        }
    }

    /// A refused session: said where it was asked for, nothing else changes.
    fn refused(&mut self, e: String) {
        let text = self.lang.tf(format!("The session was not opened: {e}"), format!("会话未打开：{e}"));
        match &mut self.phase {
            Phase::Start(fr) => fr.error = Some(text),
            Phase::Ready(_) => self.notices.push((text, None)),
        }
    }

    /// The next (`delta` 1) or previous (-1) session of the workshop.
    pub fn workshop_step(&mut self, delta: isize, ctx: &egui::Context) {
        let Some(w) = &self.workshop else { return };
        let Some(i) = (delta != 0).then(|| w.neighbour(delta)).flatten() else { return };
        let path = w.sessions[i].clone();
        match self.open_session(&path, ctx) {
            Ok(()) => {
                if let Some(w) = &mut self.workshop {
                    w.index = i;
                }
            }
            Err(e) => self.refused(e),
        }
    }

    /// Opens a workshop: the whole list checked, then its first session.
    pub fn open_workshop(&mut self, path: &std::path::Path, ctx: &egui::Context) -> Result<(), String> {
        let w = Workshop::read(path)?;
        let first = w.sessions[0].clone();
        self.open_session(&first, ctx)?;
        self.workshop = Some(w);
        Ok(())
    }

    /// The command line's session or workshop, once the first-run load (if any) has ended.
    fn startup_frame(&mut self, ctx: &egui::Context) {
        if let Phase::Start(fr) = &self.phase
            && fr.busy()
        {
            return;
        }
        let Some(startup) = self.startup.take() else { return };
        let opened = match &startup {
            Startup::Session(p) => self.open_session(p, ctx),
            Startup::Workshop(p) => self.open_workshop(p, ctx),
        };
        if let Err(e) = opened {
            self.refused(e);
        }
    }
}
