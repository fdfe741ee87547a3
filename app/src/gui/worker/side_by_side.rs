//! The side-by-side view's runs: one prompt through two models on a thread of its own
//! ("glassbox-side"), beside the model thread — model B loaded there (kept for the next
//! run), both passes on the CPU reference, and what the view draws read off each trace by
//! the engine's analysis (attention patterns, the logit lens at the last position, the
//! next-token distribution). The view polls [`SideRunner`]; each event wakes the UI.
//!
//! Tests and the frame benchmark run the job inline (synchronously, inside `start`).

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::experiments::analysis::{self, lens_top1, residual_keys, top_k};
use glassbox_engine::{BlockHook, CaptureFilter, HookKey, Model, Tensor};

/// Entries of each next-token distribution.
pub const TOP_K: usize = 10;

/// A model to run: already in memory (the app's), or a folder to load.
#[derive(Clone)]
pub enum ModelRef {
    Loaded(Arc<Model>),
    Dir(PathBuf),
}

/// One model's pass over the prompt, as the view draws it.
pub struct SideRun {
    pub name: String,
    /// Display text of each prompt token.
    pub tokens: Vec<String>,
    /// `hook_pattern` of each layer, `[head, q_pos, k_pos]`.
    pub patterns: Vec<Tensor>,
    /// The logit lens at the last position, top-1 (text, probability) of the residual
    /// entering block 0 and leaving each block.
    pub lens: Vec<(String, f32)>,
    /// The next-token distribution at the last position, top [`TOP_K`] (text, probability).
    pub top: Vec<(String, f32)>,
    pub seconds: f32,
}

/// Both runs of a job.
pub struct SideResult {
    pub prompt: String,
    pub a: SideRun,
    pub b: SideRun,
}

/// What a job reports, in order; `Done` or `Failed` ends it.
pub enum SideEvent {
    /// What it is doing now ("Loading Gemma 3 270M…"), English and Chinese.
    Stage(String, String),
    Done(Box<SideResult>),
    Failed(String),
}

/// Starts jobs and hands back their events; a newer job's start makes older ones' events
/// stale (they are dropped when polled).
pub struct SideRunner {
    tx: Sender<(u64, SideEvent)>,
    rx: Receiver<(u64, SideEvent)>,
    latest: u64,
    inline: bool,
    /// Models loaded from folders, kept so the next run does not read them again.
    cache: Arc<Mutex<Vec<(PathBuf, Arc<Model>)>>>,
}

impl SideRunner {
    pub fn new(inline: bool) -> Self {
        let (tx, rx) = mpsc::channel();
        Self { tx, rx, latest: 0, inline, cache: Arc::default() }
    }

    /// Runs `prompt` through `a` and `b`; `repaint` is called after each event.
    pub fn start(&mut self, prompt: String, a: ModelRef, b: ModelRef, repaint: Option<egui::Context>) {
        self.latest += 1;
        let (id, tx, cache) = (self.latest, self.tx.clone(), Arc::clone(&self.cache));
        let job = move || {
            let mut send = |e: SideEvent| {
                let _ = tx.send((id, e));
                if let Some(ctx) = &repaint {
                    ctx.request_repaint();
                }
            };
            let event = match run_job(&prompt, &a, &b, &cache, &mut send) {
                Ok(result) => SideEvent::Done(Box::new(result)),
                Err(message) => SideEvent::Failed(message),
            };
            send(event);
        };
        if self.inline {
            job();
        } else if let Err(e) = std::thread::Builder::new().name("glassbox-side".into()).spawn(job) {
            let _ = self.tx.send((id, SideEvent::Failed(format!("could not start the thread: {e}"))));
        }
    }

    /// The latest job's events since the last poll.
    pub fn poll(&mut self) -> Vec<SideEvent> {
        self.rx.try_iter().filter(|(id, _)| *id == self.latest).map(|(_, e)| e).collect()
    }
}

fn run_job(prompt: &str, a: &ModelRef, b: &ModelRef, cache: &Mutex<Vec<(PathBuf, Arc<Model>)>>, send: &mut dyn FnMut(SideEvent)) -> Result<SideResult, String> {
    let a = resolve(a, cache, send)?;
    let b = resolve(b, cache, send)?;
    let mut run = |m: &Arc<Model>| {
        let name = m.source.name.clone();
        send(SideEvent::Stage(format!("Running {name}…"), format!("正在运行 {name}……")));
        run_one(m, prompt).map_err(|e| format!("{name}: {e}"))
    };
    let (ra, rb) = (run(&a)?, run(&b)?);
    Ok(SideResult { prompt: prompt.to_string(), a: ra, b: rb })
}

/// The model of `r`: in memory, in the cache, or loaded now (and cached).
fn resolve(r: &ModelRef, cache: &Mutex<Vec<(PathBuf, Arc<Model>)>>, send: &mut dyn FnMut(SideEvent)) -> Result<Arc<Model>, String> {
    let dir = match r {
        ModelRef::Loaded(m) => return Ok(Arc::clone(m)),
        ModelRef::Dir(dir) => dir,
    };
    let cached = cache.lock().map_err(|_| "the model cache was poisoned by a crash".to_string())?.iter().find(|(d, _)| d == dir).map(|(_, m)| Arc::clone(m));
    if let Some(m) = cached {
        return Ok(m);
    }
    let shown = dir.display();
    send(SideEvent::Stage(format!("Loading {shown}…"), format!("正在加载 {shown}……")));
    let model = Arc::new(crate::weights_choice::load(dir).map_err(|e| format!("{shown}: {e}"))?);
    if let Ok(mut c) = cache.lock() {
        c.push((dir.clone(), Arc::clone(&model)));
    }
    Ok(model)
}

/// The prompt's ids as the model expects them: its tokenizer's (BOS first where it wants
/// one), or numbers typed for a model without a tokenizer.
fn prompt_ids(model: &Model, prompt: &str) -> Result<Vec<u32>, String> {
    let ids = match &model.tokenizer {
        Some(tok) => tok.encode_prompt(prompt).map_err(|e| e.to_string())?,
        None => super::experiments::text_ids(model, prompt)?,
    };
    match ids.iter().find(|&&id| id as usize >= model.config.vocab_size) {
        Some(id) => Err(format!("token id {id} is outside the vocabulary ({})", model.config.vocab_size)),
        None if ids.is_empty() => Err("the prompt has no tokens".into()),
        None => Ok(ids),
    }
}

fn token_text(model: &Model, id: u32) -> String {
    model.tokenizer.as_ref().map_or_else(|| format!("#{id}"), |t| t.display(id))
}

/// One full pass on the CPU reference, and what the view shows of it.
fn run_one(model: &Arc<Model>, prompt: &str) -> Result<SideRun, String> {
    let started = Instant::now();
    let ids = prompt_ids(model, prompt)?;
    let layers = model.config.n_layers();
    let mut exec = CpuExecutor::new(Arc::clone(model));
    exec.begin(&ids, PassOptions::capture(CaptureFilter::All)).map_err(|e| e.to_string())?;
    exec.run_to_end().map_err(|e| e.to_string())?;
    let trace = exec.take_trace();
    let patterns = (0..layers)
        .map(|l| trace.get(HookKey::Block(l, BlockHook::Pattern)).cloned().ok_or_else(|| format!("layer {l} recorded no attention pattern")))
        .collect::<Result<Vec<_>, _>>()?;
    let last = ids.len() - 1;
    let keys = residual_keys(layers);
    let mut rows = ndarray::Array2::<f32>::zeros((keys.len(), model.config.d_model())); // [n_layers+1, d_model]
    for (i, key) in keys.iter().enumerate() {
        let x = trace.get(*key).and_then(|t| t.as_2d()).ok_or_else(|| format!("the pass did not record `{key}`"))?;
        rows.row_mut(i).assign(&x.row(last));
    }
    let lens = lens_top1(model, rows.view()).map_err(|e| e.to_string())?;
    let logits = analysis::last_logits(&trace).map_err(|e| e.to_string())?;
    Ok(SideRun {
        name: model.source.name.clone(),
        tokens: ids.iter().map(|&id| token_text(model, id)).collect(),
        patterns,
        lens: lens.into_iter().map(|(id, p)| (token_text(model, id), p)).collect(),
        top: top_k(&logits, TOP_K, 1.0).into_iter().map(|r| (token_text(model, r.id), r.prob)).collect(),
        seconds: started.elapsed().as_secs_f32(),
    })
}
