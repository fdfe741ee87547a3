//! The model runs here, never on the UI thread.
//!
//! A named thread ("glassbox-model") owns the executor (opened by the engine's `backend`, on
//! eframe's GPU device when there is a hardware one). The UI sends [`Command`]s; the thread
//! streams the step program (`Executor::stream_to`: on the GPU, one submit and one read-back
//! per batch of steps) and sends each step's tensors as a [`Reply::Delta`]. Tensors are shared
//! (`Arc`), not copied: the UI's trace and the worker's own view of the last pass (for the
//! logit lens and the analysis) hold the same numbers once. Each reply wakes the UI with
//! `request_repaint`.
//!
//! Every pass carries a number; the UI bumps `latest` when it starts a new one, and a running
//! pass that is no longer the latest stops between steps, so typing a new prompt never waits
//! for an old one to finish.
//!
//! A prompt whose full capture would not fit the memory budget runs as a long pass
//! (`long_pass.rs`): the engine's overview in chunks, then one block's detail at a time for
//! the window of rows the views show, recomputed when asked for.
//!
//! Tests use [`Worker::inline`]: the same core, run synchronously inside `send`.

mod long_pass;

use std::collections::VecDeque;
use std::ops::{ControlFlow, Range};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};

use anyhow::{Context as _, Result};
use glassbox_engine::experiments::analysis;
use glassbox_engine::exec::backend::{self, Backend};
use glassbox_engine::exec::executor::{BackendKind, Executor, PassOptions, StepOutput};
use glassbox_engine::exec::gpu::GpuContext;
use glassbox_engine::long::overview::{Overview, OverviewOptions};
use glassbox_engine::long::recompute::{Detail, KeyCut};
use glassbox_engine::exec::reference_check::{self, ReferenceCheck};
use glassbox_engine::article::tasks::{self, TaskKind, TaskOptions, TaskOutput};
use glassbox_engine::{BlockHook, CaptureFilter, Device, HookKey, Model, Precision, Step, Tensor, Trace};

pub mod experiments;
pub mod side_by_side;

/// Steps per GPU submit when streaming a pass to the UI: one layer's worth, so the views fill
/// in layer by layer without a read-back per op.
const STREAM_BATCH: usize = 17;

/// Where replies go: the channel to the UI (thread) or a queue (inline).
pub type Out<'a> = dyn FnMut(Reply) + Send + 'a;

pub enum Command {
    /// Forget the KV cache and run `ids` through the whole step program, streaming.
    Run {
        pass: u64,
        ids: Vec<u32>,
        options: PassOptions,
        /// Bytes the pass may leave for the views (`budget::plan`).
        budget: u64,
    },
    /// Continue `ids` by up to `n` tokens with the KV cache (nothing captured, so it is
    /// quick), then run the whole sequence once more with capture so every view shows it.
    Generate {
        pass: u64,
        ids: Vec<u32>,
        n: usize,
        options: PassOptions,
        eos: Vec<u32>,
        budget: u64,
    },
    /// Compute the logit lens grid of `pass` (expensive: asked for only when shown); of a
    /// long pass, for the window's `rows`.
    LogitLens { pass: u64, rows: Option<Range<usize>> },
    /// Recompute `detail` of the long pass `pass` for query rows `rows`. `req` numbers the
    /// request; one superseded before it starts is skipped.
    Detail {
        pass: u64,
        req: u64,
        detail: Detail,
        rows: Range<usize>,
    },
    /// Replace the executor; f16 needs the GPU executor.
    SetPrecision(Precision),
    /// Run the last complete pass of `pass` again on the CPU reference and compare every
    /// hook (only meaningful on the GPU).
    CheckReference { pass: u64 },
    /// One of the article's four uses (engine `tasks`), its prompt pass fully traced.
    Task {
        pass: u64,
        kind: TaskKind,
        text: String,
        options: TaskOptions,
    },
    /// Start an experiment (replacing one in progress); it runs a unit at a time between
    /// the other commands.
    Experiment { id: u64, job: experiments::Job },
    /// Stop experiment `id` before its next unit.
    CancelExperiment(u64),
}

/// Cheap quantities read off a finished pass by the engine's analysis functions.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// `-log p(token[i+1])` for each position but the last.
    pub losses: Option<Vec<f32>>,
    /// `[n_layers + 1][pos]`: embed, then after each block.
    pub residual_norms: Option<Vec<Vec<f32>>>,
    /// `[layer][0 = attention, 1 = MLP][pos]`.
    pub write_norms: Option<Vec<[Vec<f32>; 2]>>,
}

/// `[layer][0 = after attention, 1 = after MLP][pos] = (top-1 id, its probability)`.
pub type LensGrid = Vec<[Vec<(u32, f32)>; 2]>;

pub enum Reply {
    /// The executor in use (status bar).
    Device {
        name: String,
        precision: Precision,
        kind: BackendKind,
    },
    Begun {
        pass: u64,
        token_ids: Vec<u32>,
        pos_offset: usize,
        temperature: f32,
        /// A long pass: the overview, then details on demand.
        long: bool,
    },
    Delta {
        pass: u64,
        step: Step,
        tensors: Vec<(HookKey, Arc<Tensor>)>,
        sampled: Option<u32>,
    },
    Finished {
        pass: u64,
        cache_len: usize,
    },
    /// A long pass has run its first `done` tokens.
    Progress { pass: u64, done: usize },
    /// A long pass's overview (shared with the worker, which recomputes from it).
    Overview {
        pass: u64,
        overview: Arc<Overview>,
        options: OverviewOptions,
    },
    /// A recomputed block (its attention cut to the window's keys, see `recompute::cut_keys`).
    Detail {
        pass: u64,
        req: u64,
        detail: Detail,
        rows: Range<usize>,
        result: Result<Box<(Trace, KeyCut)>, String>,
    },
    Analysis {
        pass: u64,
        analysis: Analysis,
    },
    Lens {
        pass: u64,
        grid: Result<LensGrid, String>,
    },
    /// One generated token; the KV cache now holds `cache_len` positions.
    Token {
        pass: u64,
        id: u32,
        cache_len: usize,
    },
    Failed {
        pass: u64,
        message: String,
    },
    /// A task's answer and the trace of its prompt pass (moved, not copied).
    Task {
        pass: u64,
        output: Box<TaskOutput>,
        analysis: Analysis,
        cache_len: usize,
    },
    /// Something the user asked for is not possible here (e.g. f16 without a GPU).
    Notice(String),
    /// What the check against the CPU reference found for `pass`.
    Checked {
        pass: u64,
        check: Result<ReferenceCheck, String>,
    },
    /// What experiment `id` reports.
    Experiment { id: u64, event: experiments::Event },
}

impl Analysis {
    fn of(trace: &Trace, n_layers: usize) -> Self {
        Self {
            losses: analysis::next_token_losses(trace).ok(),
            residual_norms: analysis::residual_norms(trace, n_layers).ok(),
            write_norms: analysis::write_norms(trace, n_layers).ok(),
        }
    }
}

/// "Context: … Question: …" → (question, context), as the lessons write QA inputs.
fn split_qa(text: &str) -> (&str, Option<&str>) {
    match text.split_once("Question:") {
        Some((before, question)) => {
            let context = before.trim().trim_start_matches("Context:").trim();
            (question.trim(), (!context.is_empty()).then_some(context))
        }
        None => (text.trim(), None),
    }
}

/// What the thread owns.
pub struct WorkerCore {
    model: Arc<Model>,
    exec: Box<dyn Executor>,
    device: Device,
    /// eframe's device, shared with the executor when it runs on the GPU.
    gpu: Option<Arc<GpuContext>>,
    latest: Arc<AtomicU64>,
    /// The last complete pass, as shared handles on the tensors the UI holds (no copy): what
    /// the logit lens reads.
    finished: Option<(u64, Trace)>,
    /// The last long pass: its overview (shared with the UI), ids and options.
    long: Option<long_pass::LongState>,
    /// The newest detail request: older ones still queued are skipped.
    latest_detail: Arc<AtomicU64>,
    /// The options of `finished` when it was a full pass from the first token (Run,
    /// Generate), for running it again on the CPU reference.
    finished_options: Option<PassOptions>,
    /// The experiment in progress.
    experiment: Option<experiments::Running>,
    /// The weights' precision of `exec`; experiments run in f32, on `exp_exec` when `exec`
    /// holds f16 weights.
    precision: Precision,
    exp_exec: Option<Box<dyn Executor>>,
}

impl WorkerCore {
    pub(crate) fn new(model: Arc<Model>, device: Device, gpu: Option<Arc<GpuContext>>, latest: Arc<AtomicU64>, out: &mut Out<'_>) -> Result<Self> {
        let Backend { exec, notice } = backend::open(Arc::clone(&model), device, Precision::F32, gpu.clone())?;
        if let Some(notice) = notice {
            out(Reply::Notice(notice));
        }
        Ok(Self {
            model,
            exec,
            device,
            gpu,
            latest,
            finished: None,
            long: None,
            latest_detail: Arc::new(AtomicU64::new(0)),
            finished_options: None,
            experiment: None,
            precision: Precision::F32,
            exp_exec: None,
        })
    }

    fn device_reply(&self) -> Reply {
        Reply::Device {
            name: self.exec.device_name(),
            precision: self.precision,
            kind: self.exec.kind(),
        }
    }

    fn cancelled(&self, pass: u64) -> bool {
        self.latest.load(Ordering::Acquire) != pass
    }

    pub fn handle(&mut self, cmd: Command, out: &mut Out<'_>) {
        match cmd {
            Command::Run { pass, ids, options, budget } => {
                self.with_fallback(pass, out, |me, out| {
                    me.run_planned(pass, &ids, options.clone(), budget, out)
                });
            }
            Command::Generate {
                pass,
                ids,
                n,
                options,
                eos,
                budget,
            } => {
                self.with_fallback(pass, out, |me, out| {
                    me.generate(pass, ids.clone(), n, options.clone(), &eos, budget, out)
                });
            }
            Command::LogitLens { pass, rows } => {
                if let Some(rows) = rows {
                    self.window_lens(pass, rows, out);
                } else if let Some((p, trace)) = &self.finished
                    && *p == pass
                {
                    let grid = analysis::logit_lens_grid(&self.model, trace).map_err(|e| e.to_string());
                    out(Reply::Lens { pass, grid });
                }
            }
            Command::Detail { pass, req, detail, rows } => self.detail(pass, req, detail, rows, out),
            Command::Task {
                pass,
                kind,
                text,
                options,
            } => {
                self.with_fallback(pass, out, |me, out| {
                    me.task(pass, kind, &text, &options, out)
                });
            }
            Command::SetPrecision(precision) => {
                // f16 exists only on the GPU; f32 goes back to the default device.
                let device = match precision {
                    Precision::F16 => Device::Gpu,
                    Precision::F32 => self.device,
                };
                match backend::open(Arc::clone(&self.model), device, precision, self.gpu.clone()) {
                    Ok(Backend { exec, notice }) => {
                        self.exec = exec;
                        self.long = None;
                        self.precision = precision;
                        self.finished = None;
                        self.exp_exec = None;
                        out(self.device_reply());
                        if let Some(notice) = notice {
                            out(Reply::Notice(notice));
                        }
                    }
                    Err(e) => out(Reply::Notice(format!("{precision} weights: {e}"))),
                }
            }
            Command::CheckReference { pass } => {
                let check = self.check_reference(pass);
                out(Reply::Checked { pass, check });
            }
            Command::Experiment { id, job } => {
                if let Some(old) = self.experiment.take() {
                    out(Reply::Experiment { id: old.id, event: experiments::Event::Cancelled });
                }
                match experiments::Running::new(id, job, &self.model) {
                    Ok(r) => self.experiment = Some(r),
                    Err(message) => out(Reply::Experiment { id, event: experiments::Event::Failed(message) }),
                }
            }
            Command::CancelExperiment(id) => {
                if self.experiment.as_ref().is_some_and(|r| r.id == id) {
                    self.experiment = None;
                    out(Reply::Experiment { id, event: experiments::Event::Cancelled });
                }
            }
        }
    }

    pub fn has_experiment(&self) -> bool {
        self.experiment.is_some()
    }

    /// Runs one unit of the experiment in progress and reports what it produced.
    pub fn advance_experiment(&mut self, out: &mut Out<'_>) {
        let Some(mut job) = self.experiment.take() else { return };
        let id = job.id;
        let (device, gpu) = (self.device, self.gpu.clone());
        let mut open = |m: Arc<Model>| backend::open(m, device, Precision::F32, gpu.clone()).map(|b| b.exec).map_err(|e| e.to_string());
        if self.precision != Precision::F32 && self.exp_exec.is_none() {
            match open(Arc::clone(&self.model)) {
                Ok(e) => self.exp_exec = Some(e),
                Err(message) => return out(Reply::Experiment { id, event: experiments::Event::Failed(message) }),
            }
        }
        let exec: &mut dyn Executor = match (&mut self.exp_exec, self.precision) {
            (Some(e), p) if p != Precision::F32 => e.as_mut(),
            _ => self.exec.as_mut(),
        };
        let name = exec.device_name();
        let mut env = experiments::Env { model: &self.model, exec, open: &mut open };
        match job.advance(&mut env) {
            Ok((events, finished)) => {
                for event in events {
                    out(Reply::Experiment { id, event });
                }
                if finished {
                    out(Reply::Experiment { id, event: experiments::Event::Done { seconds: job.seconds(), device: name } });
                } else {
                    self.experiment = Some(job);
                }
            }
            Err(message) => out(Reply::Experiment { id, event: experiments::Event::Failed(message) }),
        }
    }

    /// The last complete pass, run again on the CPU reference (the engine's
    /// `reference_check`), each hook held to the bound of the GPU's weight precision.
    fn check_reference(&self, pass: u64) -> Result<ReferenceCheck, String> {
        if self.exec.kind() != BackendKind::Gpu {
            return Err("the model runs on the CPU reference already: there is nothing to check".into());
        }
        let (Some((p, trace)), Some(options)) = (&self.finished, &self.finished_options) else {
            return Err("no complete pass to check yet: run the prompt to the end first".into());
        };
        if *p != pass {
            return Err("the pass changed before the check began: press the button again".into());
        }
        let bound = match self.precision {
            Precision::F32 => reference_check::f32_bound,
            Precision::F16 => reference_check::f16_bound,
        };
        reference_check::check_against_cpu(&self.model, trace, options, &bound).map_err(|e| e.to_string())
    }

    /// Runs `job`; if it fails on a GPU executor (say, a buffer over the adapter's limit),
    /// tells the user and runs it again on the CPU reference, which stays for the session.
    fn with_fallback(
        &mut self,
        pass: u64,
        out: &mut Out<'_>,
        mut job: impl FnMut(&mut Self, &mut Out<'_>) -> Result<(), String>,
    ) {
        let Err(message) = job(self, out) else { return };
        if self.exec.kind() == BackendKind::Cpu {
            out(Reply::Failed { pass, message });
            return;
        }
        let why = format!("{} failed: {message}", self.exec.device_name());
        let Backend { exec, notice } = backend::cpu_fallback(Arc::clone(&self.model), &why);
        out(Reply::Notice(notice.unwrap_or(why)));
        self.exec = exec;
        self.device = Device::Cpu;
        self.precision = Precision::F32;
        // An f32 twin for experiments would sit on the same failed GPU.
        self.exp_exec = None;
        out(self.device_reply());
        if let Err(message) = job(self, out) {
            out(Reply::Failed { pass, message });
        }
    }

    /// Streams the whole program over `ids` to the UI, step by step. `Ok` also when a newer
    /// pass cancelled it.
    fn run_pass(&mut self, pass: u64, ids: &[u32], options: PassOptions, out: &mut Out<'_>) -> Result<(), String> {
        self.finished = None;
        self.long = None;
        self.finished_options = Some(options.clone());
        self.exec.reset();
        self.exec.begin(ids, options).map_err(|e| e.to_string())?;
        let t = self.exec.trace();
        let mut kept = Trace::new(t.token_ids.clone(), t.pos_offset, t.temperature);
        out(Reply::Begun {
            pass,
            token_ids: t.token_ids.clone(),
            pos_offset: t.pos_offset,
            temperature: t.temperature,
            long: false,
        });
        let latest = Arc::clone(&self.latest);
        let mut sink = |o: StepOutput| {
            for (key, tensor) in &o.tensors {
                kept.insert_shared(*key, Arc::clone(tensor));
            }
            kept.last_step = Some(o.step);
            kept.sampled = kept.sampled.or(o.sampled);
            out(Reply::Delta { pass, step: o.step, tensors: o.tensors, sampled: o.sampled });
            if latest.load(Ordering::Acquire) == pass { ControlFlow::Continue(()) } else { ControlFlow::Break(()) }
        };
        self.exec.stream_to(Step::Sample, STREAM_BATCH, &mut sink).map_err(|e| e.to_string())?;
        if self.cancelled(pass) || self.exec.next_step().is_some() {
            return Ok(());
        }
        kept.non_finite = self.exec.trace().non_finite;
        if let Some(bad) = kept.non_finite {
            out(Reply::Notice(bad.to_string()));
        }
        out(Reply::Finished { pass, cache_len: self.exec.cache_len() });
        let analysis = Analysis::of(&kept, self.model.config.n_layers());
        out(Reply::Analysis { pass, analysis });
        self.finished = Some((pass, kept));
        Ok(())
    }

    fn task(&mut self, pass: u64, kind: TaskKind, text: &str, options: &TaskOptions, out: &mut Out<'_>) -> Result<(), String> {
        self.finished = None;
        self.long = None;
        self.finished_options = None;
        let (model, exec) = (&*self.model, &mut *self.exec);
        let result = match kind {
            TaskKind::Generate => tasks::generate_text(model, exec, text, options),
            TaskKind::Sentiment => tasks::analyze_sentiment(model, exec, text, options),
            TaskKind::Qa => {
                let (question, context) = split_qa(text);
                tasks::answer_question(model, exec, question, context, options)
            }
            TaskKind::Extract => tasks::extract_key_information(model, exec, text, options),
        };
        match result {
            Ok(output) => {
                let n_layers = self.model.config.n_layers();
                let analysis = Analysis::of(&output.trace, n_layers);
                // Shared handles on the residual stream, for the logit lens (no copy).
                let mut residuals = Trace::default();
                for l in 0..n_layers {
                    for h in [BlockHook::ResidMid, BlockHook::ResidPost] {
                        if let Some(t) = output.trace.get_shared(HookKey::Block(l, h)) {
                            residuals.insert_shared(HookKey::Block(l, h), Arc::clone(t));
                        }
                    }
                }
                self.finished = Some((pass, residuals));
                out(Reply::Task {
                    pass,
                    output: Box::new(output),
                    analysis,
                    cache_len: self.exec.cache_len(),
                });
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    #[allow(clippy::too_many_arguments)] // the request's fields, unpacked where it is matched
    fn generate(
        &mut self,
        pass: u64,
        ids: Vec<u32>,
        n: usize,
        options: PassOptions,
        eos: &[u32],
        budget: u64,
        out: &mut Out<'_>,
    ) -> Result<(), String> {
        self.finished = None;
        self.long = None;
        self.exec.reset();
        let mut quiet = options.clone();
        quiet.capture = CaptureFilter::Nothing;
        let mut seq = ids.clone();
        let mut input = ids;
        for i in 0..n {
            if self.cancelled(pass) {
                return Ok(());
            }
            // Each token draws with its own seed, as `executor::generate` does.
            quiet.sampling.seed = options.sampling.seed.wrapping_add(i as u64);
            let next = self
                .exec
                .begin(&input, quiet.clone())
                .and_then(|()| self.exec.run_to_end())
                .map(|()| self.exec.trace().sampled);
            let id = match next {
                Ok(Some(id)) => id,
                Ok(None) => return Err("the pass ended without sampling".into()),
                Err(e) => return Err(e.to_string()),
            };
            seq.push(id);
            out(Reply::Token {
                pass,
                id,
                cache_len: self.exec.cache_len(),
            });
            if eos.contains(&id) {
                break;
            }
            input = vec![id];
        }
        self.run_planned(pass, &seq, options, budget, out)
    }
}

enum Mode {
    Thread {
        tx: Sender<Command>,
        rx: Receiver<Reply>,
    },
    Inline {
        core: Box<WorkerCore>,
        queue: VecDeque<Reply>,
    },
}

/// The UI's handle on the worker.
pub struct Worker {
    mode: Mode,
    latest: Arc<AtomicU64>,
    next_pass: u64,
    /// The worker's `latest_detail`: a new detail request supersedes queued ones.
    latest_detail: Arc<AtomicU64>,
    next_detail: u64,
}

impl Worker {
    /// Starts the "glassbox-model" thread. The executor is built on that thread (a GPU
    /// executor may need its device there), and `ctx` is woken whenever a reply arrives.
    pub fn spawn(model: Arc<Model>, device: Device, gpu: Option<Arc<GpuContext>>, ctx: Option<egui::Context>) -> Result<Self> {
        let latest = Arc::new(AtomicU64::new(0));
        let latest_detail = Arc::new(AtomicU64::new(0));
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
        let (reply_tx, reply_rx) = mpsc::channel::<Reply>();
        let (thread_latest, thread_detail) = (Arc::clone(&latest), Arc::clone(&latest_detail));
        std::thread::Builder::new()
            .name("glassbox-model".into())
            .spawn(move || {
                let mut out = |r: Reply| {
                    // The UI may be gone (window closed): nothing left to tell.
                    let _ = reply_tx.send(r);
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                };
                let mut core = match WorkerCore::new(model, device, gpu, thread_latest, &mut out) {
                    Ok(core) => core,
                    Err(e) => {
                        out(Reply::Failed {
                            pass: 0,
                            message: format!("{e:#}"),
                        });
                        return;
                    }
                };
                core.latest_detail = thread_detail;
                out(core.device_reply());
                loop {
                    // Commands first; an experiment advances a unit whenever none waits.
                    let cmd = if core.has_experiment() {
                        match cmd_rx.try_recv() {
                            Ok(cmd) => Some(cmd),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Disconnected) => break,
                        }
                    } else {
                        match cmd_rx.recv() {
                            Ok(cmd) => Some(cmd),
                            Err(_) => break,
                        }
                    };
                    match cmd {
                        Some(cmd) => core.handle(cmd, &mut out),
                        None => core.advance_experiment(&mut out),
                    }
                }
            })
            .context("starting the glassbox-model thread")?;
        Ok(Self {
            mode: Mode::Thread {
                tx: cmd_tx,
                rx: reply_rx,
            },
            latest,
            next_pass: 0,
            latest_detail,
            next_detail: 0,
        })
    }

    /// The same worker, run synchronously (tests, benchmarks, scripted screenshots).
    pub fn inline(model: Arc<Model>, device: Device) -> Result<Self> {
        Self::inline_on(model, device, None)
    }

    /// [`Worker::inline`] on a GPU device of the caller's (tests of GPU faults).
    pub fn inline_on(model: Arc<Model>, device: Device, gpu: Option<Arc<GpuContext>>) -> Result<Self> {
        let latest = Arc::new(AtomicU64::new(0));
        let latest_detail = Arc::new(AtomicU64::new(0));
        let mut queue = VecDeque::new();
        let mut core = WorkerCore::new(model, device, gpu, Arc::clone(&latest), &mut |r| queue.push_back(r))?;
        // Shared, so a new detail request skips queued older ones.
        core.latest_detail = Arc::clone(&latest_detail);
        queue.push_back(core.device_reply());
        Ok(Self {
            mode: Mode::Inline {
                core: Box::new(core),
                queue,
            },
            latest,
            next_pass: 0,
            latest_detail,
            next_detail: 0,
        })
    }

    /// A fresh detail request number; queued older requests are skipped.
    pub fn new_detail(&mut self) -> u64 {
        self.next_detail += 1;
        self.latest_detail.store(self.next_detail, Ordering::Release);
        self.next_detail
    }

    /// A fresh pass number; any pass still running stops at its next step.
    pub fn new_pass(&mut self) -> u64 {
        self.next_pass += 1;
        self.latest.store(self.next_pass, Ordering::Release);
        self.next_pass
    }

    pub fn send(&mut self, cmd: Command) {
        match &mut self.mode {
            Mode::Thread { tx, .. } => {
                // A dead thread already sent `Failed`; nothing more to do here.
                let _ = tx.send(cmd);
            }
            Mode::Inline { core, queue } => core.handle(cmd, &mut |r| queue.push_back(r)),
        }
    }

    /// The worker's shared view of the last complete pass (inline workers only): lets tests
    /// check that it holds the UI's tensors, not copies.
    pub fn finished_trace(&self) -> Option<&Trace> {
        match &self.mode {
            Mode::Inline { core, .. } => core.finished.as_ref().map(|(_, t)| t),
            Mode::Thread { .. } => None,
        }
    }

    /// The inline worker's experiment advances one unit per call (the thread needs no
    /// pumping): a test sees a grid fill in frame by frame and can cancel it half-way.
    pub fn pump(&mut self) {
        if let Mode::Inline { core, queue } = &mut self.mode
            && core.has_experiment()
        {
            core.advance_experiment(&mut |r| queue.push_back(r));
        }
    }

    pub fn try_recv(&mut self) -> Option<Reply> {
        match &mut self.mode {
            Mode::Thread { rx, .. } => rx.try_recv().ok(),
            Mode::Inline { queue, .. } => queue.pop_front(),
        }
    }
}
