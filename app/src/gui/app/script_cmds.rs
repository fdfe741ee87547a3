//! The screenshot script's commands (see `screenshot`), applied to the app.

use glassbox_engine::Step;

use super::{GlassboxApp, Phase};
use crate::gui::i18n::Lang;
use crate::gui::lessons;
use crate::gui::views::ViewKind;

impl GlassboxApp {
    fn script_idle(&self) -> bool {
        match &self.phase {
            Phase::Ready(r) => {
                let s = &r.s;
                let lens_pending = self.view == ViewKind::Residual
                    && r.views.residual.mode == crate::gui::views::residual::ResidualMode::Lens
                    && s.lens.is_none();
                !s.running
                    && !r.prompt.tokenizing()
                    && !s.is_generating()
                    && !s.task_running
                    && (s.analysis.is_some() || s.n_tokens() == 0 || s.error.is_some())
                    && !lens_pending
                    && s.detail_pending().is_none()
                    && !r.views.training.running
                    && !r.views.experiments.busy()
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
        use crate::gui::views::attention::AttnMode;
        use crate::gui::views::residual::ResidualMode;
        let (name, arg) = cmd
            .split_once(' ')
            .map_or((cmd, ""), |(a, b)| (a, b.trim()));
        let num = || arg.parse::<usize>().map_err(|e| e.to_string());
        match name {
            "size" => {}
            "picker" => self.picker.script(ctx, arg)?,
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
            "view" => self.view = ViewKind::from_id(arg).ok_or("unknown view")?,
            "goto" => self.goto(arg.parse::<Step>().map_err(|e| e.to_string())?),
            "lesson" => {
                self.lessons.open = Some(arg.to_string());
                if let Some(v) = self
                    .lessons
                    .library
                    .get(self.lang, arg)
                    .and_then(lessons::Lesson::view)
                {
                    self.view = v;
                }
            }
            "action" => {
                let i = num()?;
                let action = self
                    .lessons
                    .open
                    .as_deref()
                    .and_then(|id| self.lessons.library.get(self.lang, id))
                    .and_then(|l| l.front.actions.get(i).cloned())
                    .ok_or("no such action")?;
                let lesson_view = self
                    .lessons
                    .open
                    .as_deref()
                    .and_then(|id| self.lessons.library.get(self.lang, id))
                    .and_then(lessons::Lesson::view);
                let r = self.ready().ok_or("no model")?;
                let outcome = lessons::run_action(&action, &mut r.s);
                if let Some(req) = &outcome.train {
                    r.views.training.apply(req, ctx);
                }
                if let Some(spec) = &outcome.experiment {
                    r.views.experiments.start(spec, &mut r.s);
                }
                if let Some(v) = super::apply_outcome(&mut r.views, &action, outcome, lesson_view) {
                    self.view = v;
                }
            }
            "present" => self.presenting = arg == "on",
            "augment" => {
                use glassbox_engine::article::augment::AugmentOp;
                let op = AugmentOp::ALL
                    .into_iter()
                    .find(|o| o.name() == arg)
                    .ok_or("augment replace|delete|insert")?;
                let r = self.ready().ok_or("no model")?;
                r.views.tokens.augment.op = op;
                if !r.views.tokens.augment.run_new_text(&mut r.s) {
                    return Err("the prompt is too short to augment".into());
                }
            }
            "mode" => {
                let r = self.ready().ok_or("no model")?;
                self.view = r.views.set_mode(arg).ok_or("unknown mode")?;
            }
            "scale" => {
                // `scale norms|writes log|linear|sqrt|perrow|robust [hide0]`
                use crate::gui::heatmap::{ScaleMode, ScaleOpts};
                let mut it = arg.split_whitespace();
                let (which, mode) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                let mode = match mode {
                    "linear" => ScaleMode::Linear,
                    "sqrt" => ScaleMode::Sqrt,
                    "log" => ScaleMode::Log,
                    "perrow" => ScaleMode::PerRow,
                    "robust" => ScaleMode::Robust,
                    _ => return Err("scale norms|writes MODE [hide0]".into()),
                };
                let opts = ScaleOpts::new(mode, it.next() == Some("hide0"));
                let r = self.ready().ok_or("no model")?;
                match which {
                    "norms" => r.views.residual.norm_scale = opts,
                    "writes" => r.views.residual.write_scale = opts,
                    _ => return Err("scale norms|writes MODE [hide0]".into()),
                }
            }
            "train" => {
                // `train PRESET [STEPS]`: a fresh run that pauses after STEPS (`wait` waits).
                let mut parts = arg.split_whitespace();
                let preset = parts
                    .next()
                    .and_then(glassbox_engine::train::Preset::from_name)
                    .ok_or("train induction|text [STEPS]")?;
                let steps = parts.next().map(str::parse::<usize>).transpose().map_err(|e| e.to_string())?;
                let r = self.ready().ok_or("no model")?;
                r.views.training.preset = preset;
                r.views.training.start(ctx, steps);
                self.view = ViewKind::Training;
            }
            "trainresume" => {
                let steps = num()?;
                let r = self.ready().ok_or("no model")?;
                r.views.training.resume_for(ctx, steps);
            }
            "traininspect" => {
                let r = self.ready().ok_or("no model")?;
                r.views.training.inspect(ctx);
                r.views.training.running = true;
            }
            "traintab" => {
                use crate::gui::views::training::TrainTab;
                let r = self.ready().ok_or("no model")?;
                r.views.training.tab = if arg == "step" { TrainTab::StepThrough } else { TrainTab::Curves };
            }
            "traingrads" => {
                // `traingrads [STEP]`: the laid-open step's gradients in the views, as the
                // step-through's button opens them, at STEP (a forward step) if given.
                let r = self.ready().ok_or("no model")?;
                let insp = r.views.training.step_through.inspection().ok_or("no step laid open")?;
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
                let head = r.views.training.best_head_at(step.report.step);
                self.open_model(&dir, prompt, "gradients", head, ctx);
                self.open_gradients(grads, at);
            }
            "trainopen" => {
                // Opens the checkpoint the slider shows, as its button does.
                let r = self.ready().ok_or("no model")?;
                let t = &r.views.training;
                let (step, dir) = t.history.checkpoints.get(t.checkpoint_index).cloned().ok_or("no checkpoint yet")?;
                let (prompt, head) = (t.probe.clone(), t.best_head_at(step));
                self.open_model(&dir, prompt, &format!("checkpoint {step}"), head, ctx);
            }
            "promptfile" => {
                // A prompt too long for one script line, run as the Run button runs it:
                // tokenized off the UI thread, cut to the model's context with a notice.
                let text = std::fs::read_to_string(arg).map_err(|e| format!("{arg}: {e}"))?;
                let lang = self.lang;
                let r = self.ready().ok_or("no model")?;
                r.s.prompt = text;
                r.prompt.run(ctx, &mut r.s, lang);
            }
            "attn" | "residual" => {
                let r = self.ready().ok_or("no model")?;
                match arg {
                    "head" => r.views.attention.mode = AttnMode::Head,
                    "layer" => r.views.attention.mode = AttnMode::Layer,
                    "overview" => r.views.attention.mode = AttnMode::Overview,
                    "lines" => r.views.attention.mode = AttnMode::Lines,
                    "norms" => r.views.residual.mode = ResidualMode::Norms,
                    "writes" => r.views.residual.mode = ResidualMode::Writes,
                    "lens" => r.views.residual.mode = ResidualMode::Lens,
                    _ => return Err("unknown mode".into()),
                }
            }
            _ => {
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
                        s.sampling.temperature =
                            arg.parse().map_err(|_| "temperature X".to_string())?
                    }
                    "generate" => s.generate(num()?),
                    "task" => {
                        let (kind, text) = arg.split_once(' ').ok_or("task KIND TEXT")?;
                        let kind = glassbox_engine::article::tasks::TaskKind::from_name(kind)
                            .ok_or("unknown task")?;
                        r.views.tasks.task = kind;
                        r.views.tasks.input = text.to_string();
                        let options = r.views.tasks.next_options();
                        s.run_task(kind, text.to_string(), options);
                    }
                    other => return Err(format!("unknown command `{other}`")),
                }
            }
        }
        Ok(())
    }
}
