//! Scripted runs of the real window, for `scripts/screenshots.sh`: the env var
//! `GLASSBOX_SCREENSHOT_SCRIPT` holds commands (one per line or `;`-separated) that drive
//! the app and save screenshots (`ViewportCommand::Screenshot`), then quit.
//!
//! Commands: `size W H` (window size, read at start-up), `lang en|zh`, `dark on|off`,
//! `zoom F`, `prompt TEXT`, `promptfile PATH`, `wait [SECONDS]` (default 600), `budget MIB`, `window START` (a long
//! prompt's first shown position), `chat on|off`, `run`, `wait`, `goto STEP`, `view NAME`,
//! `head N`, `position N`, `key N`, `attn head|layer|overview|lines`,
//! `residual norms|writes|lens`, `lesson ID`, `action N`, `temperature X`, `generate N`,
//! `task KIND TEXT` (generate|sentiment|qa|extract), `export` (File → Export figure), `panels diagram,lesson` (which side
//! panels show), `mode NAME` (a sub-panel), `ablate L.H,L.H` (heads ablated, then the pass again),
//! `frames N`, `shot PATH`, `reveal` (every answer of the open lesson shown, scrolled to),
//! `handout DIR` (File → Export handout… into DIR), `workshop next|prev`, `quit`.


use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const ENV: &str = "GLASSBOX_SCREENSHOT_SCRIPT";

/// Where the screenshot callback leaves the image for the next frame.
type ShotSlot = Arc<Mutex<Option<Arc<egui::ColorImage>>>>;

pub struct Script {
    commands: Vec<String>,
    next: usize,
    /// Frames to let pass before the next command (layout settles, textures upload).
    settle: u32,
    waiting_since: Option<Instant>,
    shot: Option<(PathBuf, ShotSlot)>,
}

impl Script {
    pub fn from_env() -> Option<Self> {
        let text = std::env::var(ENV).ok().filter(|t| !t.trim().is_empty())?;
        let commands = text
            .split(['\n', ';'])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        Some(Self {
            commands,
            next: 0,
            settle: 3,
            waiting_since: None,
            shot: None,
        })
    }

    /// `size W H` from the script, for the initial window.
    pub fn window_size(&self) -> Option<[f32; 2]> {
        self.commands.iter().find_map(|c| {
            let mut it = c.strip_prefix("size ")?.split_whitespace();
            Some([it.next()?.parse().ok()?, it.next()?.parse().ok()?])
        })
    }

    /// The next command to run this frame, if the script is not waiting.
    /// `idle`: the model has finished everything it was asked.
    pub fn poll(&mut self, ctx: &egui::Context, idle: bool) -> Option<String> {
        // Waiting on the model, a few frames a second will do: a frame on Xvfb's software
        // renderer costs the CPU a long pass needs (replies wake the app anyway).
        if self.waiting_since.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(250));
        } else {
            ctx.request_repaint();
        }
        if let Some((path, slot)) = &self.shot {
            let image = slot.lock().ok().and_then(|mut s| s.take());
            match image {
                Some(img) => {
                    match super::export::save_color_image(&img, path) {
                        Ok(()) => eprintln!("glassbox: screenshot {}", path.display()),
                        Err(e) => {
                            eprintln!("glassbox: screenshot {} failed: {e:#}", path.display())
                        }
                    }
                    self.shot = None;
                    self.settle = 1;
                }
                None => return None,
            }
        }
        if self.settle > 0 {
            self.settle -= 1;
            return None;
        }
        let cmd = self.commands.get(self.next)?.clone();
        if cmd == "wait" || cmd.starts_with("wait ") {
            let limit = cmd.strip_prefix("wait ").and_then(|s| s.trim().parse().ok()).unwrap_or(600);
            let since = *self.waiting_since.get_or_insert_with(Instant::now);
            if !idle && since.elapsed().as_secs() < limit {
                return None;
            }
            self.waiting_since = None;
            self.next += 1;
            self.settle = 3;
            return None;
        }
        self.next += 1;
        self.settle = 3;
        if let Some(path) = cmd.strip_prefix("shot ") {
            let slot = Arc::new(Mutex::new(None));
            let cb_slot = Arc::clone(&slot);
            let cb_ctx = ctx.clone();
            ctx.request_screenshot(move |img| {
                if let Ok(mut s) = cb_slot.lock() {
                    *s = Some(img);
                }
                cb_ctx.request_repaint();
            });
            self.shot = Some((PathBuf::from(path.trim()), slot));
            return None;
        }
        if let Some(n) = cmd
            .strip_prefix("frames ")
            .and_then(|n| n.trim().parse().ok())
        {
            self.settle = n;
            return None;
        }
        Some(cmd)
    }
}
