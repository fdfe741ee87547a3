//! A session file and the app: what `Save session…` captures, and `Open session…` — every
//! check first, then the model (kept when it is the one saved; else found by its sha256 and
//! loaded), then everything restored and the pass run again so the figures show.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use glassbox_engine::load::fetch::KnownModel;
use glassbox_engine::{Model, Step};

use super::experiments::SavedExperiments;
use super::{ModelRef, Sampling, SessionFile, TrainingRef, VERSION, check_against, identity, paths, read};
use crate::gui::app::{GlassboxApp, Phase, Ready};
use crate::gui::views::experiments::ExperimentsView;
use crate::gui::views::training::TrainingView;

impl GlassboxApp {
    /// The current session as a file saved at `path` (paths inside it relative to its folder).
    pub fn capture_session(&self, path: &Path) -> Result<SessionFile, String> {
        let Phase::Ready(r) = &self.phase else {
            return Err("no model is loaded: nothing to save".into());
        };
        let folder = paths::folder_of(path);
        let s = &r.s;
        let sha256 = identity(&s.model.source.dir)?;
        let model = ModelRef {
            name: s.model.source.name.clone(),
            sha256,
            path: paths::relative_inside(&folder, &s.model.source.dir),
        };
        let training = r.views.get::<TrainingView>().and_then(|t| {
            let run = paths::relative_inside(&folder, &t.run_dir())?;
            Some(TrainingRef { run, checkpoint: t.checkpoint_index })
        });
        Ok(SessionFile {
            glassbox_session: VERSION,
            model,
            prompt: s.prompt.clone(),
            chat: s.chat,
            step: s.cursor_step().to_string(),
            view: self.view,
            modes: r.views.iter().filter_map(|v| v.mode()).map(str::to_string).collect(),
            selection: s.sel,
            sampling: Sampling { temperature: s.sampling.temperature, top_k: s.sampling.top_k, top_p: s.sampling.top_p },
            ablated_heads: s.ablate.iter().map(|&(l, h)| [l, h]).collect(),
            experiments: r.views.get::<ExperimentsView>().map(SavedExperiments::capture),
            training,
        })
    }

    /// Writes the session to `path` (temp file, then rename); a notice says where or why not.
    pub fn save_session(&mut self, path: &Path, now: f64) {
        let written = self
            .capture_session(path)
            .and_then(|f| crate::gui::state::write_json_atomic(path, &f).map_err(|e| format!("{e:#}")));
        let lang = self.lang;
        match written {
            Ok(()) => self.notices.push((
                lang.tf(format!("Session saved: {}", path.display()), format!("会话已保存：{}", path.display())),
                Some(now),
            )),
            Err(e) => self.notices.push((lang.tf(format!("The session was not saved: {e}"), format!("会话未保存：{e}")), None)),
        }
    }

    /// Opens a session file. `Err` (one message) leaves the app exactly as it was.
    pub fn open_session(&mut self, path: &Path, ctx: &egui::Context) -> Result<(), String> {
        let file = read(path)?;
        let folder = paths::folder_of(path);
        let found = self.find_model(&file.model, &folder)?;
        let config = match &found {
            Some((m, _)) => &m.config,
            None => match &self.phase {
                Phase::Ready(r) => &r.s.model.config,
                Phase::Start(_) => return Err("no model".into()),
            },
        };
        check_against(&file, config).map_err(|e| format!("{}: {e}", path.display()))?;
        let training = match &file.training {
            Some(t) => Some((paths::resolve_inside(&folder, &t.run)?, t.checkpoint)),
            None => None,
        };
        if let Some((model, dir)) = found {
            self.restored = None;
            self.enter_ready(model, None, Some(ctx));
            self.remember_opened(&dir);
        }
        let lang = self.lang;
        let Phase::Ready(r) = &mut self.phase else {
            return Err("the model could not start".into());
        };
        restore_into(r, &file, ctx, lang);
        if let Some((run, checkpoint)) = training {
            restore_training(r, &run, checkpoint);
        }
        self.view = file.view;
        let now = ctx.input(|i| i.time);
        self.notices.push((lang.tf(format!("Session opened: {}", path.display()), format!("已打开会话：{}", path.display())), Some(now)));
        Ok(())
    }

    /// `None`: the loaded model is the one saved. Else the model found and its folder.
    fn find_model(&self, want: &ModelRef, folder: &Path) -> Result<Option<(Arc<Model>, PathBuf)>, String> {
        if let Phase::Ready(r) = &self.phase
            && identity(&r.s.model.source.dir).is_ok_and(|sha| sha == want.sha256)
        {
            return Ok(None);
        }
        let mut candidates = Vec::new();
        if let Some(rel) = &want.path {
            candidates.push(paths::resolve_inside(folder, rel)?);
        }
        candidates.extend(KnownModel::ALL.into_iter().filter_map(|k| self.picker.known_dir(k)));
        candidates.extend(self.picker.recent.iter().map(|r| r.path.clone()).filter(|p| p.is_dir()));
        let mut differs = None;
        for dir in candidates {
            match identity(&dir) {
                Ok(sha) if sha == want.sha256 => {
                    let model = crate::weights_choice::load(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    return Ok(Some((Arc::new(model), dir)));
                }
                Ok(_) if dir.file_name().is_some_and(|n| n.to_string_lossy() == want.name) => differs = Some(dir),
                _ => {}
            }
        }
        let short = want.sha256.get(..12).unwrap_or(&want.sha256);
        Err(match differs {
            Some(dir) => format!(
                "The session needs the model {} (sha256 {short}…), but {} holds other weights. Nothing was loaded: open the session where its model is, or save it again on this model.",
                want.name,
                dir.display()
            ),
            None => format!(
                "The session needs the model {} (sha256 {short}…), which is not on this computer. Nothing was loaded: open that model once with File → Open model… (or put its folder beside the session file), then open the session again.",
                want.name
            ),
        })
    }
}

/// Prompt, chat, sampling, ablations, selection, step, modes and experiments into the
/// session and views; then the pass runs.
fn restore_into(r: &mut Ready, f: &SessionFile, ctx: &egui::Context, lang: crate::gui::i18n::Lang) {
    let s = &mut r.s;
    s.prompt = f.prompt.clone();
    s.chat = f.chat && s.model.tokenizer.as_ref().is_some_and(|t| t.has_chat_template());
    s.fixed_ids = None;
    s.sampling.temperature = f.sampling.temperature;
    s.sampling.top_k = f.sampling.top_k;
    s.sampling.top_p = f.sampling.top_p;
    s.ablate = f.ablated_heads.iter().map(|&[l, h]| (l, h)).collect();
    s.ablate.sort_unstable();
    s.ablate.dedup();
    s.sel = f.selection;
    if let Ok(step) = f.step.parse::<Step>() {
        s.goto(step);
    }
    for mode in &f.modes {
        r.views.set_mode(mode);
    }
    if let (Some(saved), Some(x)) = (&f.experiments, r.views.get_mut::<ExperimentsView>()) {
        saved.restore(x);
    }
    if !r.s.prompt.trim().is_empty() {
        r.prompt.run(ctx, &mut r.s, lang);
    }
}

/// Points the Training view at the saved run (not while one is training).
fn restore_training(r: &mut Ready, run: &Path, checkpoint: usize) {
    let Some(t) = r.views.get_mut::<TrainingView>() else { return };
    let preset = run.file_name().and_then(|n| glassbox_engine::train::presets::Preset::from_name(&n.to_string_lossy()));
    if let (false, Some(preset), Some(root)) = (t.running, preset, run.parent()) {
        t.preset = preset;
        t.run_root = root.to_path_buf();
        t.checkpoint_index = checkpoint;
    }
}
