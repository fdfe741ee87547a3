//! The screenshot script's commands (see `screenshot`), applied to the app.

use glassbox_engine::Step;

use super::{GlassboxApp, Phase};
use crate::gui::i18n::Lang;
use crate::gui::lessons;
use crate::gui::views::residual::ResidualView;
use crate::gui::views::tasks::TasksView;
use crate::gui::views::tokens::TokensView;
use crate::gui::views::training::{self, TrainingView};
use crate::gui::views::side_by_side::{self, SideBySideView};
use crate::gui::views::{ViewId, attention, residual};

impl GlassboxApp {
    fn script_idle(&self) -> bool {
        match &self.phase {
            Phase::Ready(r) => {
                let s = &r.s;
                !s.running
                    && !r.prompt.tokenizing()
                    && !s.is_generating()
                    && !s.task_running
                    && (s.analysis.is_some() || s.n_tokens() == 0 || s.error.is_some())
                    && s.detail_pending().is_none()
                    && !r.views.busy(s, self.view)
                    && !self.picker.loader.busy()
                    && self.pending_action.is_none()
            }
            Phase::Start(fr) => !fr.busy(),
        }
    }

    pub(super) fn run_script(&mut self, ctx: &egui::Context) {
        if !matches!(self.phase, Phase::Ready(_)) {
            // Every command needs the model: wait for it to load.
            if self.script.is_some() {
                ctx.request_repaint_after(std::time::Duration::from_millis(50));
            }
            return;
        }
        let Some(mut script) = self.script.take() else {
            return;
        };
        let idle = self.script_idle();
        if let Some(cmd) = script.poll(ctx, idle)
            && let Err(e) = self.script_command(ctx, &cmd)
        {
            eprintln!("glassbox: script `{cmd}`: {e}");
        }
        self.script = Some(script);
    }

    fn script_command(&mut self, ctx: &egui::Context, cmd: &str) -> Result<(), String> {
        let (name, arg) = cmd
            .split_once(' ')
            .map_or((cmd, ""), |(a, b)| (a, b.trim()));
        match name {
            "size" => Ok(()),
            "picker" => self.picker.script(ctx, arg),
            // A workshop's PgDn / PgUp (`workshop next|prev`).
            "workshop" => {
                self.workshop_step(if arg == "prev" { -1 } else { 1 }, ctx);
                Ok(())
            }
            "export" | "panels" | "quit" | "lang" | "dark" | "zoom" | "present" => {
                self.window_command(ctx, name, arg)
            }
            "view" | "goto" | "lesson" | "action" => self.navigate_command(ctx, name, arg),
            "sidebyside" | "sidebysideruns" => self.side_by_side_command(ctx, name, arg),
            "mode" | "attn" | "residual" | "scale" | "augment" => self.panel_command(name, arg),
            "reveal" => {
                self.lessons.reveal_all();
                Ok(())
            }
            "handout" => {
                self.start_handout(std::path::PathBuf::from(arg));
                Ok(())
            }
            "promptfile" => {
                // A prompt too long for one script line, run as the Run button runs it:
                // tokenized off the UI thread, cut to the model's context with a notice.
                let text = std::fs::read_to_string(arg).map_err(|e| format!("{arg}: {e}"))?;
                let lang = self.lang;
                let r = self.ready().ok_or("no model")?;
                r.s.prompt = text;
                r.prompt.run(ctx, &mut r.s, lang);
                Ok(())
            }
            _ if name.starts_with("train") => self.training_command(ctx, name, arg),
            _ => self.session_command(name, arg),
        }
    }

    /// The window: export, panels, language, theme, zoom, presenter mode, quit.
    fn window_command(&mut self, ctx: &egui::Context, name: &str, arg: &str) -> Result<(), String> {
        match name {
            "export" => self.export_next = true,
            "panels" => {
                self.show_diagram = arg.contains("diagram");
                self.show_lesson = arg.contains("lesson");
            }
            "quit" => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            "lang" => self.lang = if arg == "zh" { Lang::Zh } else { Lang::En },
            "dark" => self.dark = arg == "on",
            "zoom" => {
                self.zoom = arg.parse().map_err(|_| "zoom F".to_string())?;
                self.applied_style = Some((self.dark, 0, self.presenting));
                ctx.set_zoom_factor(self.zoom);
            }
            "present" => self.presenting = arg == "on",
            other => return Err(format!("unknown command `{other}`")),
        }
        Ok(())
    }

    /// Where the app is: a view, a step, a lesson, a lesson's action.
    fn navigate_command(&mut self, ctx: &egui::Context, name: &str, arg: &str) -> Result<(), String> {
        let lesson_view = |app: &Self, id: &str| app.lessons.library.get(app.lang, id).and_then(lessons::Lesson::view);
        match name {
            "view" => self.view = ViewId::from_id(arg).ok_or("unknown view")?,
            "goto" => self.goto(arg.parse::<Step>().map_err(|e| e.to_string())?),
            "lesson" => {
                self.lessons.open = Some(arg.to_string());
                if let Some(v) = lesson_view(self, arg) {
                    self.view = v;
                }
            }
            "action" => {
                let i = arg.parse::<usize>().map_err(|e| e.to_string())?;
                let open = self.lessons.open.clone().unwrap_or_default();
                let action = self
                    .lessons
                    .library
                    .get(self.lang, &open)
                    .and_then(|l| l.front.actions.get(i).cloned())
                    .ok_or("no such action")?;
                let lesson_view = lesson_view(self, &open);
                self.ready().ok_or("no model")?;
                self.run_lesson_action(action, lesson_view, ctx);
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        Ok(())
    }

    /// `sidebyside NAME`: the side-by-side view against model NAME (or the model folder NAME),
    /// both runs started;
    /// `sidebysideruns`: that view scrolled down to its runs.
    fn side_by_side_command(&mut self, ctx: &egui::Context, name: &str, arg: &str) -> Result<(), String> {
        self.view = side_by_side::ID;
        let r = self.ready().ok_or("no model")?;
        let v = r.views.get_mut::<SideBySideView>().ok_or("no side-by-side view")?;
        if name == "sidebysideruns" {
            v.scroll_to_runs = true;
            return Ok(());
        }
        if v.candidates.is_empty() {
            v.fill_candidates(&r.s);
        }
        if !v.choose_b(arg) {
            let dir = std::path::Path::new(arg);
            if !dir.is_dir() {
                return Err(format!("no model `{arg}` to put beside this one"));
            }
            v.add_folder(dir)?;
        }
        if !v.run_chosen(ctx) {
            return Err("one of the two models has no weights to run".into());
        }
        Ok(())
    }

    /// A view's sub-panel or settings: `mode M` (and its view), `attn`/`residual M` (the
    /// view stays), `scale`, `augment`.
    fn panel_command(&mut self, name: &str, arg: &str) -> Result<(), String> {
        let r = self.ready().ok_or("no model")?;
        match name {
            "mode" => self.view = r.views.set_mode(arg).ok_or("unknown mode")?,
            "attn" | "residual" => {
                let mode = if arg == "overview" { "all-layers" } else { arg };
                let view = ViewId::for_mode(mode).filter(|v| [attention::ID, residual::ID].contains(v));
                view.and_then(|_| r.views.set_mode(mode)).ok_or("unknown mode")?;
            }
            "scale" => {
                // `scale norms|writes log|linear|sqrt|perrow|robust [hide0]`
                use crate::gui::heatmap::{ScaleMode, ScaleOpts};
                const USAGE: &str = "scale norms|writes MODE [hide0]";
                let mut it = arg.split_whitespace();
                let (which, mode) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                let mode = match mode {
                    "linear" => ScaleMode::Linear,
                    "sqrt" => ScaleMode::Sqrt,
                    "log" => ScaleMode::Log,
                    "perrow" => ScaleMode::PerRow,
                    "robust" => ScaleMode::Robust,
                    _ => return Err(USAGE.into()),
                };
                let opts = ScaleOpts::new(mode, it.next() == Some("hide0"));
                let res = r.views.get_mut::<ResidualView>().ok_or(USAGE)?;
                match which {
                    "norms" => res.norm_scale = opts,
                    "writes" => res.write_scale = opts,
                    _ => return Err(USAGE.into()),
                }
            }
            "augment" => {
                use glassbox_engine::article::augment::AugmentOp;
                let op = AugmentOp::ALL
                    .into_iter()
                    .find(|o| o.name() == arg)
                    .ok_or("augment replace|delete|insert")?;
                let augment = &mut r.views.get_mut::<TokensView>().ok_or("no tokens view")?.augment;
                augment.op = op;
                if !augment.run_new_text(&mut r.s) {
                    return Err("the prompt is too short to augment".into());
                }
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        Ok(())
    }

    /// The Training view: `train PRESET [STEPS]`, `trainresume N`, `traininspect`,
    /// `traintab step|curves|compare`, `traingrads [STEP]`, `trainopen`, `traincompare PATH`,
    /// `traincompareopen RECIPE`.
    fn training_command(&mut self, ctx: &egui::Context, name: &str, arg: &str) -> Result<(), String> {
        let lang = self.lang;
        let r = self.ready().ok_or("no model")?;
        let t = r.views.get_mut::<TrainingView>().ok_or("no training view")?;
        match name {
            "train" => {
                // A fresh run that pauses after STEPS (`wait` waits).
                let mut parts = arg.split_whitespace();
                t.preset = parts
                    .next()
                    .and_then(glassbox_engine::train::Preset::from_name)
                    .ok_or("train induction|text [STEPS]")?;
                let steps = parts.next().map(str::parse::<usize>).transpose().map_err(|e| e.to_string())?;
                t.start(ctx, steps);
                self.view = training::ID;
            }
            "trainresume" => t.resume_for(ctx, arg.parse::<usize>().map_err(|e| e.to_string())?),
            "traininspect" => {
                t.inspect(ctx);
                t.running = true;
            }
            "traintab" => {
                use crate::gui::views::training::TrainTab;
                t.tab = match arg {
                    "step" => TrainTab::StepThrough,
                    "compare" => TrainTab::Compare,
                    _ => TrainTab::Curves,
                };
            }
            // `traincompare PATH`: a `glassbox train --compare` folder's compare.json, as
            // "Open comparison…" opens it.
            "traincompare" => {
                t.compare.load(std::path::Path::new(arg), lang);
                t.tab = crate::gui::views::training::TrainTab::Compare;
                self.view = training::ID;
            }
            // `traincompareopen RECIPE`: that run's checkpoint as the model, as its button.
            "traincompareopen" => {
                let loaded = t.compare.loaded.as_ref().ok_or("no comparison open")?;
                let run = loaded.file.runs.iter().find(|r| r.recipe == arg).ok_or("no such recipe")?;
                let dir = loaded.checkpoint(run);
                let prompt = r.s.prompt.clone();
                self.open_model(&dir, prompt, &format!("`{arg}`"), None, ctx);
            }
            "traingrads" => self.train_grads_command(ctx, arg)?,
            "trainopen" => {
                // Opens the checkpoint the slider shows, as its button does.
                let (step, dir) = t.history.checkpoints.get(t.checkpoint_index).cloned().ok_or("no checkpoint yet")?;
                let (prompt, head) = (t.probe.clone(), t.best_head_at(step));
                self.open_model(&dir, prompt, &format!("checkpoint {step}"), head, ctx);
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        Ok(())
    }

    /// `traingrads [STEP]`: the laid-open step's gradients in the views, as the
    /// step-through's button opens them, at STEP (a forward step) if given.
    fn train_grads_command(&mut self, ctx: &egui::Context, arg: &str) -> Result<(), String> {
        let r = self.ready().ok_or("no model")?;
        let t = r.views.get_mut::<TrainingView>().ok_or("no training view")?;
        let insp = t.step_through.inspection().ok_or("no step laid open")?;
        let step = &insp.step;
        let at = if arg.is_empty() {
            Step::Layer(0, glassbox_engine::LayerOp::Softmax)
        } else {
            arg.parse::<Step>().map_err(|e| e.to_string())?
        };
        let grads = crate::gui::session::Gradients {
            trace: step.grads.hooks.clone(),
            analysis: Some(insp.grad_analysis.clone()),
            recorded: step.grads.recorded.clone(),
            loss: step.grads.loss.loss,
            train_step: step.report.step,
            on: true,
        };
        let (dir, prompt) = (insp.dir.clone(), insp.prompt.clone());
        let head = t.best_head_at(step.report.step);
        self.open_model(&dir, prompt, "gradients", head, ctx);
        self.open_gradients(grads, at);
        Ok(())
    }

    /// The session: prompt, window, budget, chat, run, ablation, selection, sampling,
    /// generation, tasks.
    fn session_command(&mut self, name: &str, arg: &str) -> Result<(), String> {
        let num = || arg.parse::<usize>().map_err(|e| e.to_string());
        let r = self.ready().ok_or("no model")?;
        let s = &mut r.s;
        match name {
            "prompt" => {
                s.prompt = arg.to_string();
                s.fixed_ids = None;
                s.run();
            }
            "window" => s.set_window_start(num()?),
            "budget" => s.budget = num()? as u64 * glassbox_engine::long::budget::MIB,
            "chat" => s.chat = arg == "on",
            "run" => s.run(),
            // `ablate 17.3,18.6` (layer.head; nothing: none), then the pass again.
            "ablate" => {
                s.ablate = crate::gui::views::experiments::compare::parse_heads(arg)?;
                s.rerun();
            }
            "head" => s.sel.head = num()?,
            "position" => s.sel.position = num()?,
            "key" => s.sel.key_position = Some(num()?),
            "temperature" => {
                s.sampling.temperature = arg.parse().map_err(|_| "temperature X".to_string())?
            }
            "generate" => s.generate(num()?),
            "task" => {
                let (kind, text) = arg.split_once(' ').ok_or("task KIND TEXT")?;
                let kind = glassbox_engine::article::tasks::TaskKind::from_name(kind)
                    .ok_or("unknown task")?;
                let tasks = r.views.get_mut::<TasksView>().ok_or("no tasks view")?;
                tasks.task = kind;
                tasks.input = text.to_string();
                let options = tasks.next_options();
                s.run_task(kind, text.to_string(), options);
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        Ok(())
    }
}
