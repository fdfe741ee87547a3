//! One loaded model and everything the UI knows about its current pass: the accumulated
//! `Trace`, how far the worker has got, the step cursor and the selection.
//!
//! The session only arranges; all model math happens in the worker (engine calls).

use std::sync::Arc;

use glassbox_engine::exec::executor::{BackendKind, PassOptions};
use glassbox_engine::exec::reference_check::ReferenceCheck;
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::article::tasks::{SentimentScores, TaskKind, TaskOptions};
use glassbox_engine::load::tokenizer::ChatMessage;
use glassbox_engine::{CaptureFilter, HookKey, Model, Precision, Step, Trace};
use serde::{Deserialize, Serialize};

use super::worker::experiments::{Event, Job};
use super::worker::{Analysis, Command, LensGrid, Reply, Worker};

mod window;
pub use window::LongView;

/// What the user pointed at. Views read and write it; it persists across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Selection {
    pub layer: usize,
    pub head: usize,
    /// Query / token position (0 = first token).
    pub position: usize,
    /// Key position of a clicked attention cell (its provenance is shown).
    pub key_position: Option<usize>,
    /// A chosen MLP neuron.
    pub neuron: Option<usize>,
}

/// The answer of the last task (the Tasks view shows it; its trace is the session's).
#[derive(Debug, Clone)]
pub struct TaskResult {
    pub kind: TaskKind,
    pub input: String,
    /// The chat prompt the template rendered.
    pub prompt: String,
    pub answer: String,
    pub generated_text: String,
    pub sentiment: Option<SentimentScores>,
    /// The sampling the answer was decoded with.
    pub sampling: SamplingParams,
}

/// The gradients of one training step for the sequence on screen (∂loss/∂hook under the
/// same hook names, computed by the engine's `train::backward` on the training thread),
/// shown by the views instead of the activations while `on`.
pub struct Gradients {
    pub trace: Trace,
    /// Norms of the gradient at the residual stream and of what each sublayer receives
    /// (the engine's analysis functions run on `trace`, on the training thread).
    pub analysis: Option<Analysis>,
    /// The backward program as it ran: each forward step and the gradients it recorded.
    pub recorded: Vec<(Step, Vec<HookKey>)>,
    pub loss: f32,
    /// The training step they belong to.
    pub train_step: usize,
    pub on: bool,
}

/// Set on `trace_pass` while the gradients stand in for the trace, so every texture cache
/// keyed on the pass tells them apart from the activations.
const GRADIENT_PASS: u64 = 1 << 63;

pub struct Session {
    pub model: Arc<Model>,
    worker: Worker,
    pub program: Vec<Step>,
    /// Executor name for the status bar, e.g. "CPU (f32 reference)".
    pub device: String,
    pub precision: Precision,
    /// Which executor runs the passes (the check against the CPU reference is for the GPU).
    pub backend: BackendKind,
    /// The last check against the CPU reference: the pass it checked and what it found.
    pub reference: Option<(u64, Result<ReferenceCheck, String>)>,

    pub prompt: String,
    pub chat: bool,
    /// Exact ids to run instead of the prompt (benchmarks).
    pub fixed_ids: Option<Vec<u32>>,
    /// Tokens appended by "sample one" / "generate N"; part of the sequence until the next Run.
    pub generated: Vec<u32>,
    /// Tokens arriving from a generation in progress.
    pub streaming: Vec<u32>,
    generating: bool,
    pub sampling: SamplingParams,
    pub ablate: Vec<(usize, usize)>,
    seed: u64,

    pub pass: u64,
    /// Changes whenever `trace` holds other tensors (a new pass, another window of a long
    /// one, a recomputed block): caches key on it. Between `run()` and the worker's first
    /// reply `pass` is already the new one while `trace` is still the old.
    pub trace_pass: u64,
    generation: u64,
    /// What the views read: the pass's tensors, or for a long pass the window's.
    pub trace: Trace,
    /// Bytes a pass may leave for the views (`budget::plan`); a setting.
    pub budget: u64,
    /// The current pass is a long one: its overview and window.
    pub long: Option<LongView>,
    pub token_texts: Vec<String>,
    /// Program index of the last step whose tensors have arrived.
    pub computed: Option<usize>,
    pub running: bool,
    pub analysis: Option<Analysis>,
    pub lens: Option<Result<LensGrid, String>>,
    lens_asked: bool,
    pub cache_len: usize,
    pub error: Option<String>,
    /// Messages for the notice bar (the app drains them).
    pub notices: Vec<String>,

    pub cursor: usize,
    pub sel: Selection,
    pub task: Option<TaskResult>,
    pub task_running: bool,
    /// What experiments reported, for the Experiments view to take (`(id, event)`).
    pub experiment_events: Vec<(u64, Event)>,
    next_experiment: u64,

    /// A training step's gradients for this sequence, if the Training view opened them.
    pub grads: Option<Gradients>,
    /// True while `trace` and `analysis` hold the gradients (see
    /// [`Session::show_gradients`]).
    showing_gradients: bool,
}

impl Session {
    pub fn new(model: Arc<Model>, worker: Worker) -> Self {
        let program = glassbox_engine::program::step::Program::new(&model.arch).steps().to_vec();
        Self {
            model,
            worker,
            program,
            device: String::new(),
            precision: Precision::F32,
            backend: BackendKind::Cpu,
            reference: None,
            prompt: String::new(),
            chat: false,
            fixed_ids: None,
            generated: Vec::new(),
            streaming: Vec::new(),
            generating: false,
            sampling: SamplingParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                seed: 0,
            },
            ablate: Vec::new(),
            seed: 1,
            pass: 0,
            trace_pass: 0,
            generation: 0,
            trace: Trace::default(),
            budget: glassbox_engine::long::budget::DEFAULT_BUDGET,
            long: None,
            token_texts: Vec::new(),
            computed: None,
            running: false,
            analysis: None,
            lens: None,
            lens_asked: false,
            cache_len: 0,
            error: None,
            notices: Vec::new(),
            cursor: 0,
            sel: Selection::default(),
            task: None,
            task_running: false,
            experiment_events: Vec::new(),
            next_experiment: 0,
            grads: None,
            showing_gradients: false,
        }
    }

    pub fn n_layers(&self) -> usize {
        self.model.config.n_layers()
    }

    pub fn n_tokens(&self) -> usize {
        self.trace.n_tokens()
    }

    pub fn has_tokenizer(&self) -> bool {
        self.model.tokenizer.is_some()
    }

    pub fn model_name(&self) -> String {
        let name = &self.model.source.name;
        if name == glassbox_engine::load::fetch::DEFAULT_MODEL_NAME {
            "SmolLM2-135M-Instruct".to_string()
        } else {
            name.clone()
        }
    }

    /// Display text of a token id (the id itself when the model has no tokenizer).
    pub fn token_text(&self, id: u32) -> String {
        match &self.model.tokenizer {
            Some(t) => t.display(id),
            None => format!("#{id}"),
        }
    }

    /// Ids of the prompt: tokenized (chat-wrapped if asked) or, for a model without a
    /// tokenizer, typed as numbers ("12 7 300").
    pub fn prompt_ids(&self) -> Result<Vec<u32>, String> {
        if let Some(ids) = &self.fixed_ids {
            return Ok(ids.clone());
        }
        let ids = match &self.model.tokenizer {
            Some(tok) => {
                let text = if self.chat {
                    tok.apply_chat_template(&[ChatMessage::user(self.prompt.as_str())], true)
                        .map_err(|e| e.to_string())?
                } else {
                    self.prompt.clone()
                };
                tok.encode_prompt(&text).map_err(|e| e.to_string())?
            }
            None => self
                .prompt
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<u32>().map_err(|_| {
                        format!("`{s}` is not a token id (this model has no tokenizer: type ids)")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if ids.is_empty() {
            return Err("the prompt has no tokens; type some text".into());
        }
        Ok(ids)
    }

    fn sequence_ids(&self) -> Result<Vec<u32>, String> {
        let mut ids = self.prompt_ids()?;
        ids.extend(&self.generated);
        Ok(ids)
    }

    fn options(&self) -> PassOptions {
        let sampling = SamplingParams { seed: self.seed, ..self.sampling };
        PassOptions { sampling, ..PassOptions::capture(CaptureFilter::All) }.with_ablated_heads(&self.ablate)
    }

    fn start_pass(&mut self) -> u64 {
        self.pass = self.worker.new_pass();
        self.error = None;
        self.running = true;
        self.lens = None;
        self.lens_asked = false;
        self.pass
    }

    /// Runs the prompt from scratch (drops any generated continuation).
    pub fn run(&mut self) {
        self.generated.clear();
        self.rerun();
    }

    /// Runs the current sequence again (after a change of ablation or precision).
    pub fn rerun(&mut self) {
        match self.sequence_ids() {
            Ok(ids) => {
                let pass = self.start_pass();
                self.generating = false;
                let options = self.options();
                let budget = self.budget;
                self.worker.send(Command::Run { pass, ids, options, budget });
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Appends up to `n` tokens with the current sampling settings.
    pub fn generate(&mut self, n: usize) {
        match self.sequence_ids() {
            Ok(ids) => {
                let pass = self.start_pass();
                self.generating = true;
                self.streaming.clear();
                let options = self.options();
                // A new seed per request, so "sample one" twice can differ.
                self.seed = self.seed.wrapping_add(n as u64);
                let eos = self.model.config.eos_ids();
                let budget = self.budget;
                self.worker.send(Command::Generate {
                    pass,
                    ids,
                    n,
                    options,
                    eos,
                    budget,
                });
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Runs one of the four tasks on `text`; its prompt pass becomes the session's trace.
    pub fn run_task(&mut self, kind: TaskKind, text: String, options: TaskOptions) {
        let pass = self.start_pass();
        self.generating = false;
        self.task_running = true;
        self.worker.send(Command::Task {
            pass,
            kind,
            text,
            options,
        });
    }

    pub fn set_precision(&mut self, precision: Precision) {
        if precision != self.precision {
            self.worker.send(Command::SetPrecision(precision));
        }
    }

    /// Asks the worker to run the current pass again on the CPU reference and compare.
    pub fn check_reference(&mut self) {
        if !self.running && self.computed.is_some() {
            self.reference = None;
            self.worker.send(Command::CheckReference { pass: self.trace_pass });
        }
    }

    /// The check of the pass on screen, if one was made.
    pub fn reference_check(&self) -> Option<&Result<ReferenceCheck, String>> {
        self.reference.as_ref().filter(|(p, _)| *p == self.trace_pass).map(|(_, c)| c)
    }

    /// Asks the worker for the logit lens of the current pass once it is complete.
    pub fn want_lens(&mut self) {
        if !self.lens_asked && !self.running && self.computed.is_some() {
            self.lens_asked = true;
            let rows = self.long.as_ref().map(LongView::range);
            self.worker.send(Command::LogitLens { pass: self.pass, rows });
        }
    }

    /// Starts an experiment on the model thread (replacing one in progress); returns its id.
    pub fn start_experiment(&mut self, job: Job) -> u64 {
        self.next_experiment += 1;
        let id = self.next_experiment;
        self.worker.send(Command::Experiment { id, job });
        id
    }

    pub fn cancel_experiment(&mut self, id: u64) {
        self.worker.send(Command::CancelExperiment(id));
    }

    /// Folds every waiting reply into the session. Returns true if anything arrived.
    pub fn poll(&mut self) -> bool {
        self.worker.pump();
        let mut any = false;
        while let Some(reply) = self.worker.try_recv() {
            any = true;
            self.apply(reply);
        }
        any
    }

    /// A number `trace_pass` never had.
    fn fresh_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn apply(&mut self, reply: Reply) {
        let Some(reply) = self.apply_long(reply) else { return };
        match reply {
            Reply::Device { name, precision, kind } => {
                self.device = name;
                self.precision = precision;
                self.backend = kind;
            }
            Reply::Checked { pass, check } if pass == self.trace_pass => {
                // Persistent: a divergence must not fade away while its numbers are shown.
                self.notices.push(match &check {
                    Ok(c) => format!("Check against the CPU reference: {c}"),
                    Err(e) => format!("Check against the CPU reference: {e}"),
                });
                self.reference = Some((pass, check));
            }
            Reply::Begun {
                pass,
                token_ids,
                pos_offset,
                temperature,
                ..
            } if pass == self.pass => {
                self.long = None;
                // After generating, look at the newest token.
                let was_last = self.generating;
                if self.generating {
                    self.generated.append(&mut self.streaming);
                    self.generating = false;
                }
                self.token_texts = token_ids.iter().map(|&id| self.token_text(id)).collect();
                self.trace = Trace::new(token_ids, pos_offset, temperature);
                self.trace_pass = self.fresh_generation();
                self.computed = None;
                self.analysis = None;
                let n = self.n_tokens();
                self.sel.position = if was_last {
                    n.saturating_sub(1)
                } else {
                    self.sel.position.min(n.saturating_sub(1))
                };
                if self.sel.key_position.is_some_and(|k| k >= n) {
                    self.sel.key_position = None;
                }
            }
            Reply::Delta {
                pass,
                step,
                tensors,
                sampled,
            } if pass == self.pass => {
                for (key, tensor) in tensors {
                    self.trace.insert_shared(key, tensor);
                }
                self.trace.last_step = Some(step);
                if sampled.is_some() {
                    self.trace.sampled = sampled;
                }
                self.computed = Some(self.index_of(step));
            }
            Reply::Finished { pass, cache_len } if pass == self.pass => {
                self.running = false;
                self.cache_len = cache_len;
            }
            Reply::Analysis { pass, analysis } if pass == self.pass => {
                self.analysis = Some(analysis)
            }
            Reply::Lens { pass, grid } if pass == self.pass => self.lens = Some(grid),
            Reply::Token {
                pass,
                id,
                cache_len,
            } if pass == self.pass => {
                self.streaming.push(id);
                self.cache_len = cache_len;
            }
            Reply::Failed { pass, message } if pass == self.pass || pass == 0 => {
                self.running = false;
                self.task_running = false;
                self.generating = false;
                self.error = Some(message);
            }
            Reply::Task {
                pass,
                output,
                analysis,
                cache_len,
            } if pass == self.pass => {
                let out = *output;
                self.task_running = false;
                self.running = false;
                self.cache_len = cache_len;
                // The task's prompt, already chat-wrapped: Run reproduces this very trace.
                self.prompt = out.prompt.clone();
                self.chat = false;
                self.generated.clear();
                self.token_texts = out
                    .trace
                    .token_ids
                    .iter()
                    .map(|&id| self.token_text(id))
                    .collect();
                self.trace = out.trace;
                self.trace_pass = self.fresh_generation();
                self.long = None;
                self.computed = self.trace.last_step.map(|s| self.index_of(s));
                self.analysis = Some(analysis);
                let n = self.n_tokens();
                self.sel.position = n.saturating_sub(1);
                self.sel.key_position = None;
                self.task = Some(TaskResult {
                    kind: out.kind,
                    input: out.input,
                    prompt: out.prompt,
                    answer: out.answer,
                    generated_text: out.generated_text,
                    sentiment: out.sentiment,
                    sampling: out.sampling,
                });
            }
            Reply::Notice(text) => self.notices.push(text),
            Reply::Experiment { id, event } => self.experiment_events.push((id, event)),
            // Replies of a pass that was superseded.
            _ => {}
        }
    }

    // ---- gradients ----

    /// Whether the gradients belong to the sequence on screen (same tokens, from the first).
    pub fn gradients_match(&self) -> bool {
        self.grads.as_ref().is_some_and(|g| {
            let forward = if self.showing_gradients { &g.trace } else { &self.trace };
            g.trace.token_ids == forward.token_ids && forward.pos_offset == 0
        })
    }

    /// While views draw: puts the gradients where the activations were (trace, residual
    /// analysis; no logit lens), so every view that reads `trace` shows ∂loss/∂hook under
    /// the same hook names. Returns whether it did; [`Session::hide_gradients`] undoes it.
    pub fn show_gradients(&mut self) -> bool {
        if self.showing_gradients || !self.grads.as_ref().is_some_and(|g| g.on) || !self.gradients_match() {
            return false;
        }
        self.swap_gradients();
        true
    }

    pub fn hide_gradients(&mut self) {
        if self.showing_gradients {
            self.swap_gradients();
        }
    }

    /// Whether `trace` holds gradients right now: views label them ∂loss/∂… and colour
    /// them with the diverging map.
    pub fn showing_gradients(&self) -> bool {
        self.showing_gradients
    }

    fn swap_gradients(&mut self) {
        let Some(g) = &mut self.grads else { return };
        std::mem::swap(&mut self.trace, &mut g.trace);
        std::mem::swap(&mut self.analysis, &mut g.analysis);
        self.trace_pass ^= GRADIENT_PASS;
        self.showing_gradients = !self.showing_gradients;
    }

    // ---- the step cursor ----

    pub fn cursor_step(&self) -> Step {
        self.program
            .get(self.cursor)
            .copied()
            .unwrap_or(Step::Embed)
    }

    pub fn last_index(&self) -> usize {
        self.program.len().saturating_sub(1)
    }

    pub fn set_cursor(&mut self, index: usize) {
        self.cursor = index.min(self.last_index());
        if let Some(l) = self.cursor_step().layer() {
            self.sel.layer = l;
        }
    }

    pub fn goto(&mut self, step: Step) {
        self.set_cursor(self.index_of(step));
    }

    /// Where `step` runs in this model's program (or the last step before it, when this
    /// family has no such step: program order is step order).
    pub fn index_of(&self, step: Step) -> usize {
        self.program.binary_search(&step).unwrap_or_else(|i| i.saturating_sub(1))
    }

    /// The ops of one block of this model.
    pub fn block_ops(&self) -> Vec<glassbox_engine::LayerOp> {
        glassbox_engine::LayerOp::block(&self.model.arch)
    }

    /// Is the cursor's step computed in the current pass?
    pub fn step_ready(&self, index: usize) -> bool {
        self.computed.is_some_and(|c| index <= c)
    }

    /// Same operation, `delta` layers away (Shift+→ / Shift+←); outside the layers, the
    /// first or last layer.
    pub fn jump_layer(&mut self, delta: isize) {
        let n = self.n_layers();
        if n == 0 {
            return;
        }
        let target = match self.cursor_step() {
            Step::Layer(l, op) => {
                let l = (l as isize + delta).clamp(0, n as isize - 1) as usize;
                Step::Layer(l, op)
            }
            Step::Embed if delta > 0 => Step::Layer(0, glassbox_engine::LayerOp::Ln1),
            Step::Embed => Step::Embed,
            _ if delta < 0 => Step::Layer(n - 1, glassbox_engine::LayerOp::Ln1),
            other => other,
        };
        self.goto(target);
    }

    /// Layer the one-layer views show: the cursor's, else the last selected.
    pub fn view_layer(&self) -> usize {
        self.cursor_step()
            .layer()
            .unwrap_or(self.sel.layer)
            .min(self.n_layers().saturating_sub(1))
    }

    /// The worker, for tests that look at what it holds.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    pub fn is_generating(&self) -> bool {
        self.generating
    }
}
