//! `LlamaCppExecutor`: Glassbox's `Executor` on llama.cpp. llama.cpp cannot stop mid-graph, so
//! `begin` runs the whole pass (reading back the hooks the capture wants through `cb_eval`) and
//! `step` then reveals the program's steps one at a time: the trace fills and `last_step`
//! advances exactly as on the other executors, so `trace`, `export` and the views read it
//! unchanged. Glassbox's own sampler picks the next token from llama.cpp's logits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glassbox_engine::error::{EngineError, Result};
use glassbox_engine::exec::executor::{BackendKind, Executor, GpuTime, PassOptions, Sink, StepOutput, check_pass_input};
use glassbox_engine::exec::intervene::ActivationPrecision;
use glassbox_engine::exec::sampling::{Sampler, softmax_with_temperature};
use glassbox_engine::exec::tensor::{Dim, Tensor};
use glassbox_engine::exec::trace::Trace;
use glassbox_engine::load::arch::Family;
use glassbox_engine::program::graph::kv_cache_bytes;
use glassbox_engine::program::hooks::{BlockHook, HookKey};
use glassbox_engine::program::op::Step;
use glassbox_engine::program::op_table::PassDims;
use glassbox_engine::program::step::Program;
use glassbox_engine::{LlamaConfig, Model};

use crate::capture::Capture;
use crate::layout;
use crate::session::{Options, Session};

/// A pass llama.cpp has run, revealed step by step.
struct Pass {
    /// Cache length before the pass.
    pos_offset: usize,
    next: usize,
    /// The hooks read back, waiting for their step.
    staged: BTreeMap<HookKey, Tensor>,
    sampled: u32,
}

pub struct LlamaCppExecutor {
    model: Arc<Model>,
    program: Program,
    session: Session,
    gguf: PathBuf,
    rpc: Vec<String>,
    cache_len: usize,
    pass: Option<Pass>,
    trace: Trace,
    /// Bytes read back from the devices by the last pass.
    pub last_read_bytes: usize,
}

impl LlamaCppExecutor {
    /// Opens `gguf` in llama.cpp beside `model`, Glassbox's load of the same file (its config,
    /// family and program say what the hooks are).
    pub fn open(model: Arc<Model>, gguf: &Path, options: &Options) -> Result<Self> {
        let err = |msg: String| EngineError::io(gguf, std::io::Error::other(msg));
        let mut options = options.clone();
        options.n_ctx = options.n_ctx.min(model.config.max_position_embeddings).max(1);
        // Only llama.cpp's Llama converter interleaves Q/K rows (Glassbox un-permutes them on load).
        let qk_permuted = model.arch.family == Family::Llama;
        let session = Session::open(gguf, &options, qk_permuted).map_err(err)?;
        let program = Program::new(&model.arch);
        Ok(Self { model, program, session, gguf: gguf.to_path_buf(), rpc: options.rpc, cache_len: 0, pass: None, trace: Trace::default(), last_read_bytes: 0 })
    }

    fn engine_error(&self, msg: String) -> EngineError {
        EngineError::io(&self.gguf, std::io::Error::other(format!("llama.cpp engine: {msg}")))
    }

    /// What this first step of the llama.cpp engine does not do, refused before any work.
    fn refuse_unsupported(options: &PassOptions) -> Result<()> {
        let unsupported = if !options.interventions.is_empty() {
            Some("interventions (ablations, edits, patching)")
        } else if options.activations != ActivationPrecision::F32 {
            Some("rounded activations")
        } else if options.switches != Default::default() {
            Some("switching RoPE or the mask off")
        } else {
            None
        };
        match unsupported {
            Some(what) => Err(EngineError::Input(format!("{what} are not available on the llama.cpp engine yet; use --engine glassbox"))),
            None => Ok(()),
        }
    }

    /// Runs the pass in llama.cpp and stages its hooks.
    fn run_pass(&mut self, ids: &[u32], options: &PassOptions, pos_offset: usize) -> Result<Pass> {
        let c = self.model.config.clone();
        let n = ids.len();
        let capture_filter = options.capture.clone();
        let wants_resid_pre = move |l: usize| capture_filter.wants(HookKey::Block(l, BlockHook::ResidPre));
        let filter = options.capture.clone();
        // The logits of every row come along when anything is captured: llama.cpp otherwise
        // drops the rows it needs no output for inside the last block.
        let all_rows = options.capture != glassbox_engine::CaptureFilter::Nothing;
        let mut capture = Capture::new(self.model.arch.family == Family::Llama);
        capture.wants = Box::new(move |key| {
            filter.wants(key)
                || key == HookKey::Logits
                || match key {
                    HookKey::Embed => wants_resid_pre(0),
                    HookKey::Block(l, BlockHook::ResidPost) => wants_resid_pre(l + 1),
                    _ => false,
                }
        });
        self.session.decode(ids, pos_offset, all_rows, &mut capture).map_err(|e| self.engine_error(e))?;
        self.last_read_bytes = capture.bytes;
        let logit_rows = if all_rows { n } else { 1 };
        let dims = PassDims { n, k_len: pos_offset + n, logit_rows };
        let mut staged = BTreeMap::new();
        for node in capture.nodes {
            let key = node.mapped.key;
            let tensor = layout::to_tensor(node, &c, dims).map_err(|e| self.engine_error(e))?;
            staged.insert(key, tensor);
        }
        let last = last_row(staged.get(&HookKey::Logits)).ok_or_else(|| self.engine_error("the pass left no logits".into()))?;
        if !options.capture.wants(HookKey::Logits) {
            staged.remove(&HookKey::Logits);
        } else if logit_rows != n {
            return Err(self.engine_error("logits of one row where every row's was asked".into()));
        }
        self.stage_derived(&mut staged, options, &last);
        self.trace.last_logits = Some(last.clone());
        let sampled = Sampler::new(options.sampling).sample(&last);
        Ok(Pass { pos_offset, next: 0, staged, sampled })
    }

    /// `resid_pre` (the previous block's `resid_post`, or the embedding) and `hook_probs` (the
    /// `Sample` step's distribution), which llama.cpp has no node of its own for.
    fn stage_derived(&self, staged: &mut BTreeMap<HookKey, Tensor>, options: &PassOptions, last: &[f32]) {
        let cap = &options.capture;
        for l in 0..self.model.config.n_layers() {
            let key = HookKey::Block(l, BlockHook::ResidPre);
            let from = if l == 0 { HookKey::Embed } else { HookKey::Block(l - 1, BlockHook::ResidPost) };
            if cap.wants(key)
                && !staged.contains_key(&key)
                && let Some(t) = staged.get(&from).cloned()
            {
                staged.insert(key, t);
            }
            if !cap.wants(from) {
                staged.remove(&from);
            }
        }
        if cap.wants(HookKey::Probs) {
            let probs = softmax_with_temperature(last, options.sampling.temperature);
            if let Some(t) = Tensor::from_vec(vec![Dim::Pos, Dim::Vocab], &[1, probs.len()], probs) {
                staged.insert(HookKey::Probs, t);
            }
        }
    }

    /// The servers the layers are split across (empty: all local).
    pub fn rpc_servers(&self) -> &[String] {
        &self.rpc
    }
}

fn last_row(logits: Option<&Tensor>) -> Option<Vec<f32>> {
    let rows = logits?.as_2d()?;
    Some(rows.row(rows.nrows().checked_sub(1)?).to_vec())
}

impl Executor for LlamaCppExecutor {
    fn config(&self) -> &LlamaConfig {
        &self.model.config
    }

    fn device_name(&self) -> String {
        match self.rpc.len() {
            0 => "llama.cpp (CPU)".to_string(),
            _ => format!("llama.cpp over RPC ({})", self.rpc.join(", ")),
        }
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn begin(&mut self, ids: &[u32], options: PassOptions) -> Result<()> {
        // An unfinished pass is dropped with its cache rows (llama.cpp cached them all).
        if let Some(pass) = self.pass.take()
            && pass.next < self.program.len()
        {
            self.session.truncate(pass.pos_offset);
            self.cache_len = pass.pos_offset;
        }
        Self::refuse_unsupported(&options)?;
        check_pass_input(&self.model.config, ids, self.cache_len)?;
        let pos_offset = self.cache_len;
        self.trace = Trace::new(ids.to_vec(), pos_offset, options.sampling.temperature);
        let pass = self.run_pass(ids, &options, pos_offset)?;
        self.cache_len = pos_offset + ids.len();
        self.pass = Some(pass);
        Ok(())
    }

    fn next_step(&self) -> Option<Step> {
        self.program.get(self.pass.as_ref()?.next)
    }

    fn step(&mut self) -> Result<Option<Step>> {
        let Some(step) = self.next_step() else { return Ok(None) };
        let Some(pass) = self.pass.as_mut() else { return Ok(None) };
        for key in step.hooks() {
            if let Some(t) = pass.staged.remove(&key) {
                if let Some(values) = t.data.as_slice_memory_order() {
                    self.trace.check_finite(key, ndarray::ArrayView1::from(values).into_dyn());
                }
                self.trace.insert(key, t);
            }
        }
        if step == Step::Sample {
            self.trace.sampled = Some(pass.sampled);
        }
        pass.next += 1;
        self.trace.last_step = Some(step);
        Ok(Some(step))
    }

    fn trace(&self) -> &Trace {
        &self.trace
    }

    fn take_trace(&mut self) -> Trace {
        std::mem::take(&mut self.trace)
    }

    fn cache_len(&self) -> usize {
        self.cache_len
    }

    /// llama.cpp's cache holds K and V in f16 for every layer.
    fn kv_cache_bytes(&self) -> usize {
        let c = &self.model.config;
        let bytes = kv_cache_bytes(c, c.n_kv_heads(), self.cache_len, 2);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    fn reset(&mut self) {
        self.pass = None;
        self.session.truncate(0);
        self.cache_len = 0;
        self.trace = Trace::default();
    }

    fn begin_at(&mut self, _ids: &[u32], _options: PassOptions, _layer: usize, _resid_pre: &Tensor) -> Result<()> {
        Err(EngineError::Input("starting a pass at a layer (patching) is not available on the llama.cpp engine yet; use --engine glassbox".into()))
    }

    fn begin_rows_at(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor, _first: usize) -> Result<()> {
        self.begin_at(ids, options, layer, resid_pre)
    }

    fn run_to(&mut self, target: Step) -> Result<()> {
        while let Some(next) = self.next_step() {
            if next > target {
                break;
            }
            self.step()?;
        }
        Ok(())
    }

    fn run_to_end(&mut self) -> Result<()> {
        while self.step()?.is_some() {}
        Ok(())
    }

    fn stream_to(&mut self, last: Step, _batch: usize, sink: &mut Sink<'_>) -> Result<()> {
        while let Some(next) = self.next_step() {
            if next > last {
                break;
            }
            self.step()?;
            if sink(StepOutput::take(&mut self.trace, next)).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn set_gpu_timing(&mut self, _on: bool) -> bool {
        false
    }

    fn take_gpu_time(&mut self) -> Option<GpuTime> {
        None
    }

    fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }
}
