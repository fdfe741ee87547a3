//! The training thread ("glassbox-train"), separate from the model worker so the app keeps
//! answering while a tiny Llama trains. The UI sends [`TrainCmd`]s; the thread steps the
//! trainer (and, for the precision overlay, a bf16 twin on the same batches), evaluates,
//! saves checkpoints and sends every report as a [`TrainMsg`], waking the UI each time.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::Duration;

use anyhow::Result;
use glassbox_engine::experiments::analysis;
use glassbox_engine::train::checkpoint::{save_checkpoint, step_dir};
use glassbox_engine::train::{EvalReport, Precision, StepInspection, StepReport, TrainOptions, Trainer};

use super::worker::Analysis;

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainSetup {
    pub options: TrainOptions,
    /// Also train a bf16 twin (same seed, same batches) for the loss overlay.
    pub compare_bf16: bool,
    /// Pause after this many steps (`None`: run to the end).
    pub stop_after: Option<usize>,
    /// Milliseconds to wait after each step, so a class can watch (0: full speed).
    pub delay_ms: u64,
}

pub enum TrainCmd {
    /// Throw away any run and start a fresh one (checkpoints in `options.out`).
    Start(TrainSetup),
    Pause,
    /// Continue; `Some(n)`: for `n` more steps, then pause.
    Resume(Option<usize>),
    /// One step laid open (forward, loss, backward, update), then pause.
    Inspect,
    SetDelay(u64),
    Shutdown,
}

/// A step laid open, with the weights before it saved as a checkpoint so the existing views
/// can show its forward pass.
pub struct Inspection {
    pub step: StepInspection,
    pub dir: PathBuf,
    /// The example as text the checkpoint's tokenizer reads back into the same ids.
    pub prompt: String,
    /// Norms of the gradients at the residual stream and at each sublayer's output (the
    /// Residual view's pictures, for ∂loss/∂x).
    pub grad_analysis: Analysis,
}

pub enum TrainMsg {
    Started {
        summary: String,
        total_steps: usize,
        /// A held-out sequence as prompt text (induction: repeated random tokens).
        probe: String,
    },
    Step { bf16: bool, report: StepReport },
    Eval { bf16: bool, report: EvalReport },
    Checkpoint { step: usize, dir: PathBuf },
    Inspected(Box<Inspection>),
    Running(bool),
    Finished,
    Error(String),
}

pub struct TrainWorker {
    tx: Sender<TrainCmd>,
    rx: Receiver<TrainMsg>,
}

impl TrainWorker {
    pub fn spawn(ctx: Option<egui::Context>) -> Result<Self> {
        let (tx, cmd_rx) = mpsc::channel();
        let (msg_tx, rx) = mpsc::channel();
        // Detached: dropping the worker asks the thread to stop; nobody waits for it.
        std::thread::Builder::new()
            .name("glassbox-train".into())
            .spawn(move || {
                let send = |m: TrainMsg| {
                    let _ = msg_tx.send(m);
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                };
                Loop::default().run(&cmd_rx, &send);
            })?;
        Ok(Self { tx, rx })
    }

    pub fn send(&self, cmd: TrainCmd) {
        let _ = self.tx.send(cmd);
    }

    pub fn try_recv(&self) -> Option<TrainMsg> {
        self.rx.try_recv().ok()
    }
}

impl Drop for TrainWorker {
    fn drop(&mut self) {
        // The thread stops after the step (or evaluation) it is in; the UI does not wait for
        // it. Its remaining reports go nowhere.
        let _ = self.tx.send(TrainCmd::Shutdown);
    }
}

#[derive(Default)]
struct Loop {
    main: Option<Trainer>,
    twin: Option<Trainer>,
    running: bool,
    budget: Option<usize>,
    delay_ms: u64,
}

impl Loop {
    fn run(&mut self, rx: &Receiver<TrainCmd>, send: &dyn Fn(TrainMsg)) {
        loop {
            let cmd = if self.running {
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return,
                }
            };
            let result = match cmd {
                Some(TrainCmd::Shutdown) => return,
                Some(c) => self.handle(c, send),
                None => self.step(send),
            };
            if let Err(e) = result {
                self.running = false;
                send(TrainMsg::Error(format!("{e:#}")));
                send(TrainMsg::Running(false));
            }
        }
    }

    fn handle(&mut self, cmd: TrainCmd, send: &dyn Fn(TrainMsg)) -> Result<()> {
        match cmd {
            TrainCmd::Start(setup) => self.start(setup, send)?,
            TrainCmd::Pause => self.set_running(false, send),
            TrainCmd::Resume(n) => {
                if self.main.as_ref().is_some_and(|t| !t.done()) {
                    self.budget = n;
                    self.set_running(true, send);
                }
            }
            TrainCmd::Inspect => self.inspect(send)?,
            TrainCmd::SetDelay(ms) => self.delay_ms = ms,
            TrainCmd::Shutdown => {}
        }
        Ok(())
    }

    fn set_running(&mut self, on: bool, send: &dyn Fn(TrainMsg)) {
        self.running = on;
        send(TrainMsg::Running(on));
    }

    fn start(&mut self, setup: TrainSetup, send: &dyn Fn(TrainMsg)) -> Result<()> {
        self.main = None;
        self.twin = None;
        if let Some(out) = &setup.options.out {
            // A fresh run replaces the previous run's checkpoints.
            let _ = std::fs::remove_dir_all(out);
        }
        let main = Trainer::new(setup.options.clone())?;
        if setup.compare_bf16 && setup.options.precision == Precision::F32 {
            let twin = TrainOptions {
                precision: Precision::Bf16,
                out: None,
                ..setup.options.clone()
            };
            self.twin = Some(Trainer::new(twin)?);
        }
        let c = main.config();
        let probe_ids = match main.options.preset {
            glassbox_engine::train::Preset::Induction => main.data.probe_set().first(),
            glassbox_engine::train::Preset::Text => main.data.eval_set().first(),
        };
        let probe = probe_ids.map(|ids| main.data.prompt_text(ids)).unwrap_or_default();
        send(TrainMsg::Started {
            probe,
            summary: format!(
                "{} layers · d_model {} · {} heads ({} K/V) · vocab {} · {} parameters · batch {} × {} tokens",
                c.n_layers(),
                c.d_model(),
                c.n_heads(),
                c.n_kv_heads(),
                c.vocab_size,
                c.n_params(),
                main.spec.batch_size,
                main.spec.seq_len
            ),
            total_steps: main.total_steps(),
        });
        self.main = Some(main);
        self.delay_ms = setup.delay_ms;
        self.budget = setup.stop_after;
        self.evaluate(send)?;
        self.set_running(setup.stop_after != Some(0), send);
        Ok(())
    }

    fn evaluate(&mut self, send: &dyn Fn(TrainMsg)) -> Result<()> {
        let Some(main) = &self.main else { return Ok(()) };
        send(TrainMsg::Eval { bf16: false, report: main.evaluate()? });
        if let Some(out) = &main.options.out {
            let dir = step_dir(out, main.step);
            main.save(&dir)?;
            send(TrainMsg::Checkpoint { step: main.step, dir });
        }
        if let Some(twin) = &self.twin {
            send(TrainMsg::Eval { bf16: true, report: twin.evaluate()? });
        }
        Ok(())
    }

    fn after_step(&mut self, send: &dyn Fn(TrainMsg)) -> Result<()> {
        let Some(main) = &self.main else { return Ok(()) };
        let (step, every, done) = (main.step, main.spec.eval_every, main.done());
        if step.is_multiple_of(every) || done {
            self.evaluate(send)?;
        }
        if let Some(b) = &mut self.budget {
            *b = b.saturating_sub(1);
        }
        if done {
            self.running = false;
            send(TrainMsg::Finished);
            send(TrainMsg::Running(false));
        } else if self.budget == Some(0) {
            self.budget = None;
            self.set_running(false, send);
        }
        Ok(())
    }

    fn step(&mut self, send: &dyn Fn(TrainMsg)) -> Result<()> {
        let Some(main) = &mut self.main else {
            self.running = false;
            return Ok(());
        };
        if main.done() {
            self.running = false;
            return Ok(());
        }
        send(TrainMsg::Step { bf16: false, report: main.train_step()? });
        if let Some(twin) = &mut self.twin {
            send(TrainMsg::Step { bf16: true, report: twin.train_step()? });
        }
        self.after_step(send)?;
        if self.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.delay_ms));
        }
        Ok(())
    }

    fn inspect(&mut self, send: &dyn Fn(TrainMsg)) -> Result<()> {
        self.running = false;
        let Some(main) = &mut self.main else {
            anyhow::bail!("start a training run first");
        };
        if main.done() {
            anyhow::bail!("the run is finished: reset to step through a training step");
        }
        let step = main.train_step_inspected()?;
        let dir = main
            .options
            .out
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join("inspect");
        let note = format!("weights before training step {}", step.report.step);
        save_checkpoint(&dir, main.config(), &step.before, Some(&main.data.tokenizer_json()?), &note)?;
        let prompt = main.data.prompt_text(&step.ids);
        send(TrainMsg::Step { bf16: false, report: step.report.clone() });
        if let Some(twin) = &mut self.twin {
            send(TrainMsg::Step { bf16: true, report: twin.train_step()? });
        }
        let n_layers = main.config().n_layers();
        let grad_analysis = Analysis {
            losses: None,
            residual_norms: analysis::residual_norms(&step.grads.hooks, n_layers).ok(),
            write_norms: analysis::write_norms(&step.grads.hooks, n_layers).ok(),
        };
        send(TrainMsg::Inspected(Box::new(Inspection { step, dir, prompt, grad_analysis })));
        self.after_step(send)?;
        self.set_running(false, send);
        Ok(())
    }
}
