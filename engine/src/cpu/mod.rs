//! The CPU reference executor: the forward pass as a story, one `Step` at a time, in f32.
//! It is the oracle for every number Glassbox shows.

pub mod matmul;
pub mod ops;

use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayView3, s};

use crate::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::executor::{Executor, PassOptions};
use crate::hooks::{BlockHook, HookKey};
use crate::model::Model;
use crate::sampling::Sampler;
use crate::step::{LayerOp, Step};
use matmul::linear_both;
use crate::tensor::{Dim, Tensor};
use crate::trace::Trace;

/// Rotated keys and values of every position seen so far, for one layer.
#[derive(Default)]
struct LayerCache {
    k: Vec<f32>, // [len, n_kv_heads, d_head], flattened
    v: Vec<f32>, // [len, n_kv_heads, d_head], flattened
}

/// The activations of the pass in progress, in data-flow order.
struct Pass {
    ids: Vec<u32>,
    pos_offset: usize,
    options: PassOptions,
    next: usize,
    x: Array2<f32>,       // [pos, d_model]  the residual stream
    h: Array2<f32>,       // [pos, d_model]  normalized input of the current sublayer
    q: Array3<f32>,       // [pos, n_heads, d_head]
    k: Array3<f32>,       // [pos, n_kv_heads, d_head]
    v: Array3<f32>,       // [pos, n_kv_heads, d_head]
    scores: Array3<f32>,  // [n_heads, q_pos, k_pos]
    pattern: Array3<f32>, // [n_heads, q_pos, k_pos]
    z: Array3<f32>,       // [pos, n_heads, d_head]
    out: Array2<f32>,     // [pos, d_model]  what the current sublayer writes
    gate: Array2<f32>,    // [pos, d_mlp]
    up: Array2<f32>,      // [pos, d_mlp]
    post: Array2<f32>,    // [pos, d_mlp]
    logits: Array2<f32>,  // [rows, vocab]  every position when captured, else the last
}

/// One layer's linear weights stored `[in, out]` row-major: `y = x · w`.
struct LayerWeightsT {
    q_proj: Array2<f32>,    // [d_model, n_heads·d_head]
    k_proj: Array2<f32>,    // [d_model, n_kv_heads·d_head]
    v_proj: Array2<f32>,    // [d_model, n_kv_heads·d_head]
    o_proj: Array2<f32>,    // [n_heads·d_head, d_model]
    gate_proj: Array2<f32>, // [d_model, d_mlp]
    up_proj: Array2<f32>,   // [d_model, d_mlp]
    down_proj: Array2<f32>, // [d_mlp, d_model]
}

/// Transposed copies of the checkpoint's `[out, in]` weights, for prefill. The math is the
/// same (`x · Wᵀ`); the gemm kernels run about twice as fast on this layout, at the cost of a
/// second copy of the weights in memory. Decode keeps reading the originals, whose rows are
/// the dot products it needs.
struct WeightsT {
    layers: Vec<LayerWeightsT>,
    lm_head: Array2<f32>, // [d_model, vocab]
}

fn transposed(w: &Array2<f32>) -> Array2<f32> {
    w.t().as_standard_layout().into_owned()
}

impl WeightsT {
    fn new(model: &Model) -> Self {
        use rayon::prelude::*;
        let layers = model
            .weights
            .layers
            .par_iter()
            .map(|l| LayerWeightsT {
                q_proj: transposed(&l.self_attn.q_proj),
                k_proj: transposed(&l.self_attn.k_proj),
                v_proj: transposed(&l.self_attn.v_proj),
                o_proj: transposed(&l.self_attn.o_proj),
                gate_proj: transposed(&l.mlp.gate_proj),
                up_proj: transposed(&l.mlp.up_proj),
                down_proj: transposed(&l.mlp.down_proj),
            })
            .collect();
        let lm_head = model.weights.lm_head().t().as_standard_layout().into_owned();
        Self { layers, lm_head }
    }
}

pub struct CpuExecutor {
    model: Arc<Model>,
    weights_t: Arc<WeightsT>,
    program: Vec<Step>,
    cache: Vec<LayerCache>,
    pass: Option<Pass>,
    trace: Trace,
}

impl CpuExecutor {
    pub fn new(model: Arc<Model>) -> Self {
        let n = model.config.n_layers();
        Self {
            weights_t: Arc::new(WeightsT::new(&model)),
            program: Step::program(n),
            cache: (0..n).map(|_| LayerCache::default()).collect(),
            pass: None,
            trace: Trace::default(),
            model,
        }
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    fn run(&mut self, step: Step) -> Result<()> {
        let Some(mut pass) = self.pass.take() else {
            return Err(EngineError::Input("no pass in progress: call begin() first".into()));
        };
        let result = match step {
            Step::Embed => self.embed(&mut pass),
            Step::Layer(l, op) => self.layer_op(&mut pass, l, op),
            Step::LnFinal => {
                let (scale, h) = ops::rmsnorm(pass.x.view(), self.model.weights.norm.view(), self.eps()); // [pos, d_model]
                self.record(&pass, HookKey::LnFinalScale, &[Dim::Pos], scale.into_dyn());
                self.record2(&pass, HookKey::LnFinalNormalized, [Dim::Pos, Dim::DModel], &h);
                pass.h = h;
                Ok(())
            }
            Step::Logits => {
                let c = &pass.options.capture;
                let all_rows = c.wants(HookKey::Logits) || c.wants(HookKey::Probs);
                let first = if all_rows { 0 } else { pass.h.nrows() - 1 };
                let rows = pass.h.slice(s![first.., ..]); // [rows, d_model]
                pass.logits = linear_both(rows, self.model.weights.lm_head(), self.weights_t.lm_head.view()); // [rows, vocab]
                self.record2(&pass, HookKey::Logits, [Dim::Pos, Dim::Vocab], &pass.logits);
                Ok(())
            }
            Step::Probs => {
                if pass.options.capture.wants(HookKey::Probs) {
                    let probs = ops::softmax_rows(pass.logits.view(), pass.options.sampling.temperature); // [pos, vocab]
                    self.record2(&pass, HookKey::Probs, [Dim::Pos, Dim::Vocab], &probs);
                }
                Ok(())
            }
            Step::Sample => {
                let last = pass.logits.row(pass.logits.nrows() - 1).to_vec(); // [vocab]
                self.trace.sampled = Some(Sampler::new(pass.options.sampling).sample(&last));
                Ok(())
            }
        };
        self.trace.last_step = Some(step);
        self.pass = Some(pass);
        result
    }

    fn embed(&mut self, pass: &mut Pass) -> Result<()> {
        let table = &self.model.weights.embed_tokens; // [vocab, d_model]
        let x = Array2::from_shape_fn((pass.ids.len(), table.ncols()), |(p, j)| {
            table[[pass.ids[p] as usize, j]]
        }); // [pos, d_model]
        self.record2(pass, HookKey::Embed, [Dim::Pos, Dim::DModel], &x);
        pass.x = x;
        Ok(())
    }

    fn layer_op(&mut self, pass: &mut Pass, l: usize, op: LayerOp) -> Result<()> {
        let model = Arc::clone(&self.model);
        let c = &model.config;
        let w = &model.weights.layers[l];
        let weights_t = Arc::clone(&self.weights_t);
        let wt = &weights_t.layers[l];
        let key = |h: BlockHook| HookKey::Block(l, h);
        match op {
            LayerOp::Ln1 => {
                self.record2(pass, key(BlockHook::ResidPre), [Dim::Pos, Dim::DModel], &pass.x);
                let (scale, h) = ops::rmsnorm(pass.x.view(), w.input_layernorm.view(), self.eps()); // [pos, d_model]
                self.record(pass, key(BlockHook::Ln1Scale), &[Dim::Pos], scale.into_dyn());
                self.record2(pass, key(BlockHook::Ln1Normalized), [Dim::Pos, Dim::DModel], &h);
                pass.h = h;
            }
            LayerOp::Q => {
                pass.q = ops::split_heads(linear_both(pass.h.view(), w.self_attn.q_proj.view(), wt.q_proj.view()), c.n_heads()); // [pos, n_heads, d_head]
                self.record3(pass, key(BlockHook::Q), [Dim::Pos, Dim::Head, Dim::DHead], &pass.q);
            }
            LayerOp::K => {
                pass.k = ops::split_heads(linear_both(pass.h.view(), w.self_attn.k_proj.view(), wt.k_proj.view()), c.n_kv_heads()); // [pos, n_kv_heads, d_head]
                self.record3(pass, key(BlockHook::K), [Dim::Pos, Dim::KvHead, Dim::DHead], &pass.k);
            }
            LayerOp::V => {
                pass.v = ops::split_heads(linear_both(pass.h.view(), w.self_attn.v_proj.view(), wt.v_proj.view()), c.n_kv_heads()); // [pos, n_kv_heads, d_head]
                self.record3(pass, key(BlockHook::V), [Dim::Pos, Dim::KvHead, Dim::DHead], &pass.v);
            }
            LayerOp::Rope => {
                pass.q = ops::rope(pass.q.view(), &model.inv_freq, pass.pos_offset); // [pos, n_heads, d_head]
                pass.k = ops::rope(pass.k.view(), &model.inv_freq, pass.pos_offset); // [pos, n_kv_heads, d_head]
                self.record3(pass, key(BlockHook::RotQ), [Dim::Pos, Dim::Head, Dim::DHead], &pass.q);
                self.record3(pass, key(BlockHook::RotK), [Dim::Pos, Dim::KvHead, Dim::DHead], &pass.k);
                let cache = &mut self.cache[l];
                cache.k.extend(pass.k.iter());
                cache.v.extend(pass.v.iter());
            }
            LayerOp::Scores => {
                let k_all = self.cached(l, true)?; // [k_pos, n_kv_heads, d_head]
                pass.scores = ops::attention_scores(pass.q.view(), k_all, c.group_size()); // [n_heads, q_pos, k_pos]
                self.record3(pass, key(BlockHook::RawScores), [Dim::Head, Dim::QPos, Dim::KPos], &pass.scores);
            }
            LayerOp::Mask => {
                pass.scores = ops::causal_mask(pass.scores.view(), pass.pos_offset); // [n_heads, q_pos, k_pos]
                self.record3(pass, key(BlockHook::AttnScores), [Dim::Head, Dim::QPos, Dim::KPos], &pass.scores);
            }
            LayerOp::Softmax => {
                pass.pattern = ops::softmax_last(pass.scores.view()); // [n_heads, q_pos, k_pos]
                self.record3(pass, key(BlockHook::Pattern), [Dim::Head, Dim::QPos, Dim::KPos], &pass.pattern);
            }
            LayerOp::Z => {
                let v_all = self.cached(l, false)?; // [k_pos, n_kv_heads, d_head]
                pass.z = ops::attend(pass.pattern.view(), v_all, c.group_size()); // [pos, n_heads, d_head]
                for &(layer, head) in &pass.options.ablate_heads {
                    if layer == l && head < c.n_heads() {
                        pass.z.slice_mut(s![.., head, ..]).fill(0.0);
                    }
                }
                self.record3(pass, key(BlockHook::Z), [Dim::Pos, Dim::Head, Dim::DHead], &pass.z);
            }
            LayerOp::OProj => {
                let z_flat = ops::merge_heads(pass.z.view()); // [pos, n_heads·d_head]
                pass.out = linear_both(z_flat.view(), w.self_attn.o_proj.view(), wt.o_proj.view()); // [pos, d_model]
                self.record2(pass, key(BlockHook::AttnOut), [Dim::Pos, Dim::DModel], &pass.out);
            }
            LayerOp::AttnAdd => {
                pass.x = &pass.x + &pass.out; // [pos, d_model]  residual add
                self.record2(pass, key(BlockHook::ResidMid), [Dim::Pos, Dim::DModel], &pass.x);
            }
            LayerOp::Ln2 => {
                let (scale, h) = ops::rmsnorm(pass.x.view(), w.post_attention_layernorm.view(), self.eps()); // [pos, d_model]
                self.record(pass, key(BlockHook::Ln2Scale), &[Dim::Pos], scale.into_dyn());
                self.record2(pass, key(BlockHook::Ln2Normalized), [Dim::Pos, Dim::DModel], &h);
                pass.h = h;
            }
            LayerOp::Gate => {
                pass.gate = linear_both(pass.h.view(), w.mlp.gate_proj.view(), wt.gate_proj.view()); // [pos, d_mlp]
                self.record2(pass, key(BlockHook::MlpPre), [Dim::Pos, Dim::DMlp], &pass.gate);
            }
            LayerOp::Up => {
                pass.up = linear_both(pass.h.view(), w.mlp.up_proj.view(), wt.up_proj.view()); // [pos, d_mlp]
                self.record2(pass, key(BlockHook::MlpPreLinear), [Dim::Pos, Dim::DMlp], &pass.up);
            }
            LayerOp::SiluMul => {
                pass.post = ops::silu_mul(pass.gate.view(), pass.up.view()); // [pos, d_mlp]
                self.record2(pass, key(BlockHook::MlpPost), [Dim::Pos, Dim::DMlp], &pass.post);
            }
            LayerOp::Down => {
                pass.out = linear_both(pass.post.view(), w.mlp.down_proj.view(), wt.down_proj.view()); // [pos, d_model]
                self.record2(pass, key(BlockHook::MlpOut), [Dim::Pos, Dim::DModel], &pass.out);
            }
            LayerOp::MlpAdd => {
                pass.x = &pass.x + &pass.out; // [pos, d_model]  residual add
                self.record2(pass, key(BlockHook::ResidPost), [Dim::Pos, Dim::DModel], &pass.x);
            }
        }
        Ok(())
    }

    /// The layer's cached keys (or values) for every position so far.
    fn cached(&self, l: usize, keys: bool) -> Result<ArrayView3<'_, f32>> {
        let c = &self.model.config;
        let data = if keys { &self.cache[l].k } else { &self.cache[l].v };
        let row = c.n_kv_heads() * c.d_head();
        ArrayView3::from_shape((data.len() / row, c.n_kv_heads(), c.d_head()), data)
            .map_err(|e| EngineError::Input(format!("KV cache of layer {l}: {e}")))
    }

    fn eps(&self) -> f32 {
        self.model.config.eps()
    }

    fn record(&mut self, pass: &Pass, key: HookKey, dims: &[Dim], data: ndarray::ArrayD<f32>) {
        if pass.options.capture.wants(key)
            && let Some(t) = Tensor::new(dims.to_vec(), data)
        {
            self.trace.insert(key, t);
        }
    }

    fn record2(&mut self, pass: &Pass, key: HookKey, dims: [Dim; 2], a: &Array2<f32>) {
        if pass.options.capture.wants(key) {
            self.record(pass, key, &dims, a.clone().into_dyn());
        }
    }

    fn record3(&mut self, pass: &Pass, key: HookKey, dims: [Dim; 3], a: &Array3<f32>) {
        if pass.options.capture.wants(key) {
            self.record(pass, key, &dims, a.clone().into_dyn());
        }
    }

    fn truncate_cache(&mut self, len: usize) {
        let row = self.model.config.kv_dim();
        for layer in &mut self.cache {
            layer.k.truncate(len * row);
            layer.v.truncate(len * row);
        }
    }
}

/// Runs `f` on the rayon pool while a second task keeps the other worker awake, stealing the
/// matmul pieces `f` spawns. Without it, every one of the ~200 matmuls of a pass pays for
/// waking a parked thread (on these VMs about as long as the matmul), halving throughput.
fn with_warm_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    if rayon::current_num_threads() < 2 {
        return f();
    }
    let done = AtomicBool::new(false);
    rayon::scope(|scope| {
        scope.spawn(|_| {
            while !done.load(Ordering::Acquire) {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    std::hint::spin_loop();
                }
            }
        });
        let result = f();
        done.store(true, Ordering::Release);
        result
    })
}

impl Executor for CpuExecutor {
    fn run_to(&mut self, target: Step) -> Result<()> {
        let n = self.model.config.n_layers();
        if target.layer().is_some_and(|l| l >= n) {
            return Err(EngineError::Input(format!("step `{target}` is past the model's {n} layers")));
        }
        let target_index = target.index(n);
        with_warm_pool(|| {
            while let Some(next) = self.next_step() {
                if next.index(n) > target_index {
                    break;
                }
                self.step()?;
            }
            Ok(())
        })
    }

    fn run_to_end(&mut self) -> Result<()> {
        with_warm_pool(|| {
            while self.step()?.is_some() {}
            Ok(())
        })
    }

    fn config(&self) -> &LlamaConfig {
        &self.model.config
    }

    fn device_name(&self) -> String {
        "CPU (f32 reference)".into()
    }

    fn begin(&mut self, ids: &[u32], options: PassOptions) -> Result<()> {
        if let Some(pass) = &self.pass
            && pass.next < self.program.len()
        {
            let offset = pass.pos_offset;
            self.truncate_cache(offset);
        }
        let pos_offset = self.cache_len();
        crate::executor::check_pass_input(&self.model.config, ids, pos_offset)?;
        let temperature = options.sampling.temperature;
        self.trace = Trace::new(ids.to_vec(), pos_offset, temperature);
        let empty2 = || Array2::<f32>::zeros((0, 0));
        let empty3 = || Array3::<f32>::zeros((0, 0, 0));
        self.pass = Some(Pass {
            ids: ids.to_vec(),
            pos_offset,
            options,
            next: 0,
            x: empty2(),
            h: empty2(),
            q: empty3(),
            k: empty3(),
            v: empty3(),
            scores: empty3(),
            pattern: empty3(),
            z: empty3(),
            out: empty2(),
            gate: empty2(),
            up: empty2(),
            post: empty2(),
            logits: empty2(),
        });
        Ok(())
    }

    fn next_step(&self) -> Option<Step> {
        let pass = self.pass.as_ref()?;
        self.program.get(pass.next).copied()
    }

    fn step(&mut self) -> Result<Option<Step>> {
        let Some(step) = self.next_step() else {
            return Ok(None);
        };
        self.run(step)?;
        if let Some(pass) = &mut self.pass {
            pass.next += 1;
        }
        Ok(Some(step))
    }

    fn trace(&self) -> &Trace {
        &self.trace
    }

    fn take_trace(&mut self) -> Trace {
        std::mem::take(&mut self.trace)
    }

    fn cache_len(&self) -> usize {
        let row = self.model.config.kv_dim().max(1);
        self.cache.last().map_or(0, |c| c.k.len() / row)
    }

    fn reset(&mut self) {
        self.pass = None;
        self.truncate_cache(0);
        self.trace = Trace::default();
    }
}
