//! The CPU reference backend: the forward pass as a story, one hook at a time, in f32.
//! It is the oracle for every number Glassbox shows.
//!
//! The pass driver (`exec::driver`) walks each step's hooks; for each, [`CpuBackend::produce`]
//! computes the value (the algorithm, in data-flow order), then it is rounded (if the pass
//! emulates a lower precision), edited by the pass's interventions and recorded
//! ([`CpuBackend::record`]).

pub mod attention;
pub mod matmul;
pub mod xwt;
pub mod quant;
pub mod wide;
pub mod ops;
mod pass;

use std::sync::Arc;

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, s};

use crate::exec::driver::{Backend, Driver, Effect, HookWork, PassPlan, effects, hook_work};

use crate::load::arch::{AttnMask, MlpKind, NormKind, NormPlacement};

use crate::error::{EngineError, Result};
use crate::exec::executor::{BackendKind, PassOptions};
use crate::program::hooks::{BlockHook, HookKey};
use crate::load::matrix::Matrix;
use crate::load::model::Model;
use crate::program::op_table::{HookSpec, Slot};
use crate::exec::sampling::Sampler;
use crate::program::op::Step;
use crate::exec::tensor::{Dim, Tensor};
use crate::exec::intervene::ActivationPrecision;
use crate::exec::trace::{Derivation, Trace};
use matmul::{linear, linear_many};
use pass::Pass;

/// Rotated keys and values of one layer: every position seen so far, or for a sliding-window
/// layer the positions from `start` on (the ones a later query can still see).
#[derive(Default)]
struct LayerCache {
    /// Absolute position of the first row held.
    start: usize,
    k: Vec<f32>, // [len − start, n_kv_heads, d_head], flattened
    v: Vec<f32>, // [len − start, n_kv_heads, d_head], flattened
}

impl LayerCache {
    /// Positions cached, counting the ones a window dropped.
    fn len(&self, row: usize) -> usize {
        self.start + self.k.len() / row.max(1)
    }
}

/// The CPU reference executor: the shared pass driver over the CPU backend.
pub type CpuExecutor = Driver<CpuBackend>;

impl CpuExecutor {
    pub fn new(model: Arc<Model>) -> Self {
        Driver::with_backend(CpuBackend::new(model))
    }
}

pub struct CpuBackend {
    model: Arc<Model>,
    cache: Vec<LayerCache>,
    pass: Option<Pass>,
}

impl CpuBackend {
    pub fn new(model: Arc<Model>) -> Self {
        let n = model.config.n_layers();
        Self {
            cache: (0..n).map(|_| LayerCache::default()).collect(),
            pass: None,
            model,
        }
    }

    /// The step's hooks, each produced, rounded, edited and recorded as the driver orders,
    /// then what the op does besides producing them.
    fn run_step(&mut self, pass: &mut Pass, step: Step, trace: &mut Trace) -> Result<()> {
        for (key, spec, work) in hook_work(step, &pass.plan) {
            match work {
                HookWork::Produce => {
                    self.produce(pass, key)?;
                    self.check_shape(pass, key, spec)?;
                }
                HookWork::Round(precision) => precision.round_all(pass.slots.get_mut(spec.slot)),
                HookWork::Edit(i) => pass.plan.edits[i].apply(pass.slots.get_mut(spec.slot))?,
                HookWork::Record { wanted } => self.record(pass, key, spec, wanted, trace)?,
            }
        }
        match effects(step, &self.model.arch, &pass.plan) {
            Some(Effect::CacheKv(l)) => self.append_kv(pass, l),
            Some(Effect::ScaleEmbed(scale)) => pass.slots.x *= scale, // [pos, d_model]
            Some(Effect::AddToResid) => {
                let p = &mut pass.slots;
                p.x += &p.out; // [pos, d_model]
            }
            Some(Effect::Sample) => {
                let logits = &pass.slots.logits; // [rows, vocab]
                let last = logits.row(logits.nrows().saturating_sub(1)).to_vec(); // [vocab]
                trace.sampled = Some(Sampler::new(pass.plan.options.sampling).sample(&last));
                trace.last_logits = Some(last);
            }
            None => {}
        }
        Ok(())
    }

    /// Computes `key` into its slot: the forward pass, one hook at a time.
    fn produce(&self, pass: &mut Pass, key: HookKey) -> Result<()> {
        let m = &*self.model;
        let w = &m.weights;
        let eps = m.config.eps();
        let at = pass.plan.pos_offset;
        let p = &mut pass.slots;
        match key {
            HookKey::Embed => p.x = embed(&w.embed_tokens, &pass.plan.ids)?.into_shared(), // [pos, d_model]
            HookKey::PosEmbed => {
                let table = &self.positions()?.position_embeddings; // [max_positions, d_model]
                let positions: Vec<u32> = (at..at + pass.plan.ids.len()).map(|i| i as u32).collect();
                p.out = embed(table, &positions)?.into_shared(); // [pos, d_model]
            }
            HookKey::TokenTypeEmbed => {
                let table = self.positions()?.token_type_embeddings.as_ref().ok_or_else(|| missing("token_type_embeddings"))?; // [types, d_model]
                p.out = embed(table, &vec![0; pass.plan.ids.len()])?.into_shared(); // [pos, d_model]  every token is type 0
            }
            HookKey::EmbedLnScale => p.scale = self.norm_scale(p.x.view()).into_shared(), // [pos]
            HookKey::EmbedLnNormalized => {
                let [g, b] = self.positions()?.layer_norm.as_ref().ok_or_else(|| missing("embeddings.LayerNorm"))?;
                p.x = ops::ln_apply(p.x.view(), p.scale.view(), g.view(), b.view())?.into_shared(); // [pos, d_model]
            }
            HookKey::Block(l, hook) => self.block(pass, l, hook)?,
            HookKey::LnFinalScale => p.scale = self.norm_scale(p.x.view()).into_shared(), // [pos]
            HookKey::LnFinalNormalized => {
                let norm = w.norm.as_ref().ok_or_else(|| missing("the final norm"))?;
                p.h = self.norm_apply(p.x.view(), p.scale.view(), norm, w.norm_bias.as_ref())?.into_shared(); // [pos, d_model]
            }
            HookKey::MlmTransform => {
                let head = w.mlm.as_ref().ok_or_else(|| missing("cls.predictions.transform"))?;
                let t = ops::add_bias(linear(p.x.view(), &head.dense)?, Some(&head.dense_bias))?; // [pos, d_model]
                let t = ops::activate(t.view(), m.arch.head_activation()); // [pos, d_model]
                let [g, b] = &head.layer_norm;
                let scale = ops::ln_scale(t.view(), eps); // [pos]
                p.h = ops::ln_apply(t.view(), scale.view(), g.view(), b.view())?.into_shared(); // [pos, d_model]
            }
            HookKey::Logits => {
                let rows = p.h.slice(s![p.h.nrows() - pass.plan.dims.logit_rows.., ..]); // [logit_rows, d_model]
                p.logits = lm_head(m, rows)?.into_shared(); // [logit_rows, vocab]
            }
            HookKey::Probs => {
                let last = p.logits.slice(s![p.logits.nrows().saturating_sub(1).., ..]); // [1, vocab]
                p.probs = ops::softmax_rows(last, pass.plan.options.sampling.temperature).into_shared(); // [1, vocab]
            }
        }
        Ok(())
    }

    /// One decoder block, hook by hook, as the algorithm reads. The family's switches
    /// (`Arch`) pick the norm, the mask and the MLP; the program picks which hooks run.
    fn block(&self, pass: &mut Pass, l: usize, hook: BlockHook) -> Result<()> {
        use BlockHook as H;
        let m = &*self.model;
        let (c, arch) = (&m.config, &m.arch);
        let w = &m.weights.layers[l];
        let (eps, group, at) = (c.eps(), c.group_size(), pass.plan.pos_offset);
        let end = at + pass.plan.ids.len();
        let switches = pass.plan.options.switches;
        let mask = if switches.no_causal_mask { AttnMask::Bidirectional } else { arch.mask(l) };
        // A block without pre-norms (BERT's post-norm, OLMo 2) feeds each sublayer the
        // residual stream itself.
        let post_norm = arch.placement == NormPlacement::Post;
        let (attn_bias, mlp_bias) = (w.self_attn.bias.as_ref(), w.mlp.bias.as_ref());
        let p = &mut pass.slots;
        let input = if arch.placement.pre() { p.h.view() } else { p.x.view() }; // [pos, d_model]
        match hook {
            // Attention sublayer: x + o_proj(attention(norm(x)))
            H::ResidPre => {} // x as the block receives it
            H::Ln1Scale | H::Ln2Scale => p.scale = self.norm_scale(p.x.view()).into_shared(), // [pos]
            H::Ln1Normalized => p.h = self.norm_apply(p.x.view(), p.scale.view(), weight(&w.input_layernorm, "input_layernorm")?, bias_of(&w.norm_bias, 0))?.into_shared(), // [pos, d_model]
            // q, k and v read the same input: one call computes all three (read and transposed
            // once, one parallel region); the k and v steps record what it left in their slots.
            H::Q => {
                let a = &w.self_attn;
                let [q, k, v] = linear_many(input, [&a.q_proj, &a.k_proj, &a.v_proj])?; // [pos, n_heads·d_head], [pos, kv_dim] × 2
                let q = ops::add_bias(q, attn_bias.map(|b| &b.q_proj))?; // [pos, n_heads·d_head]
                let k = ops::add_bias(k, attn_bias.map(|b| &b.k_proj))?; // [pos, kv_dim]
                let v = ops::add_bias(v, attn_bias.map(|b| &b.v_proj))?; // [pos, kv_dim]
                p.q = ops::split_heads(q, c.n_heads())?.into_shared(); // [pos, n_heads, d_head]
                p.k = ops::split_heads(k, c.n_kv_heads())?.into_shared(); // [pos, n_kv_heads, d_head]
                p.v = ops::split_heads(v, c.n_kv_heads())?.into_shared(); // [pos, n_kv_heads, d_head]
            }
            H::K | H::V => {} // computed with q
            // QK-norm per head, or over all heads at once (OLMo 2).
            H::QNormed | H::KNormed => {
                let (x, g) = if hook == H::QNormed { (&mut p.q, weight(&w.self_attn.q_norm, "self_attn.q_norm")?) } else { (&mut p.k, weight(&w.self_attn.k_norm, "self_attn.k_norm")?) };
                let norm = if arch.qk_norm_whole { ops::rms_all_heads } else { ops::rms_heads };
                *x = norm(x.view(), g.view(), eps)?.into_shared(); // [pos, heads, d_head]
            }
            H::RotQ | H::RotK if switches.no_rope => {} // positions left out: rot_q = q, rot_k = k
            // The pass's end picks longrope's table (transformers: max(position_ids) + 1).
            H::RotQ => p.q = ops::rope(p.q.view(), m.rope_of(l, end), at).into_shared(), // [pos, n_heads, d_head]
            H::RotK => p.k = ops::rope(p.k.view(), m.rope_of(l, end), at).into_shared(), // [pos, n_kv_heads, d_head]
            H::RawScores => {
                // Future keys' scores only when something reads them (or nothing masks them).
                let skip_future = mask.is_causal() && !pass.plan.options.touches(HookKey::Block(l, H::RawScores));
                let (keys, start) = self.cached(l, true, mask)?; // [held, n_kv_heads, d_head]
                let mut scores = pass::reusable(&mut p.scores);
                if start == 0 {
                    attention::scores_into(p.q.view(), keys, group, arch.score_scale, skip_future.then_some(at), &mut scores); // [n_heads, q_pos, k_pos]
                } else {
                    let mut held = Array3::zeros((0, 0, 0));
                    attention::scores_into(p.q.view(), keys, group, arch.score_scale, skip_future.then_some(at - start), &mut held); // [n_heads, q_pos, held]
                    // Keys the window dropped: no query of this pass sees them, so their scores
                    // are the mask's -inf already before the mask.
                    let (heads, q_pos, n_held) = held.dim();
                    scores = Array3::from_elem((heads, q_pos, start + n_held), f32::NEG_INFINITY); // [n_heads, q_pos, k_pos]
                    scores.slice_mut(s![.., .., start..]).assign(&held);
                }
                p.scores = scores.into_shared();
            }
            H::AttnScores => match mask {
                AttnMask::Bidirectional => {} // every key stays visible
                AttnMask::Causal => attention::mask_in_place(p.scores.view_mut(), at), // [n_heads, q_pos, k_pos]
                AttnMask::Sliding { .. } => ops::mask_with_in_place(p.scores.view_mut(), at, mask), // [n_heads, q_pos, k_pos]
            },
            H::Pattern => attention::softmax_in_place(p.scores.view_mut(), mask.is_causal().then_some(at)), // [n_heads, q_pos, k_pos]
            H::Z => {
                let mut z = pass::reusable(&mut p.z);
                let (values, start) = self.cached(l, false, mask)?; // [held, n_kv_heads, d_head]
                let pattern = p.scores.slice(s![.., .., start..]); // [n_heads, q_pos, held]
                attention::attend_into(pattern, values, group, mask.is_causal().then_some(at - start), &mut z); // [pos, n_heads, d_head]
                p.z = z.into_shared();
            }
            H::AttnOut => {
                let z = ops::merge_heads(p.z.view())?; // [pos, n_heads·d_head]
                p.out = ops::add_bias(linear(z.view(), &w.self_attn.o_proj)?, attn_bias.and_then(|b| b.o_proj.as_ref()))?.into_shared(); // [pos, d_model]
            }
            // Sandwich norms (Gemma): the sublayer's output is normed before it is added.
            H::Ln1PostScale | H::Ln2PostScale => p.scale = ops::rms_scale(p.out.view(), eps).into_shared(), // [pos]
            H::Ln1PostNormalized => p.out = ops::rms_apply(p.out.view(), p.scale.view(), sandwich(w, 0)?.view()).into_shared(), // [pos, d_model]
            H::Ln2PostNormalized => p.out = ops::rms_apply(p.out.view(), p.scale.view(), sandwich(w, 1)?.view()).into_shared(), // [pos, d_model]
            // Post-norm (BERT): add, then norm the sum.
            H::ResidMidPreNorm | H::ResidPostPreNorm => p.x += &p.out, // [pos, d_model]  residual add
            H::ResidMid if post_norm => p.x = self.norm_apply(p.x.view(), p.scale.view(), weight(&w.input_layernorm, "input_layernorm")?, bias_of(&w.norm_bias, 0))?.into_shared(), // [pos, d_model]
            H::ResidMid => p.x += &p.out, // [pos, d_model]  residual add
            // MLP sublayer: x + down(act(gate(h)) ⊙ up(h)), or x + down(act(W_in h + b)) + b
            H::Ln2Normalized => p.h = self.norm_apply(p.x.view(), p.scale.view(), weight(&w.post_attention_layernorm, "post_attention_layernorm")?, bias_of(&w.norm_bias, 1))?.into_shared(), // [pos, d_model]
            H::MlpPre => match &w.mlp.up_proj {
                // gate and up read the same h: one call, as for q, k, v.
                Some(up) => {
                    let [gate, up] = linear_many(input, [&w.mlp.gate_proj, up])?; // [pos, d_mlp] × 2
                    p.gate = gate.into_shared(); // [pos, d_mlp]
                    p.up = up.into_shared(); // [pos, d_mlp]
                }
                None => p.gate = ops::add_bias(linear(input, &w.mlp.gate_proj)?, mlp_bias.map(|b| &b.gate_proj))?.into_shared(), // [pos, d_mlp]
            },
            H::MlpPreLinear => {} // computed with the gate
            H::MlpPost => {
                p.post = match arch.mlp {
                    MlpKind::SwiGlu => ops::silu_mul(p.gate.view(), p.up.view()), // [pos, d_mlp]
                    MlpKind::GeGlu => ops::gelu_mul(p.gate.view(), p.up.view()), // [pos, d_mlp]
                    MlpKind::Plain(act) => ops::activate(p.gate.view(), act), // [pos, d_mlp]
                }
                .into_shared();
            }
            H::MlpOut => p.out = ops::add_bias(linear(p.post.view(), &w.mlp.down_proj)?, mlp_bias.map(|b| &b.down_proj))?.into_shared(), // [pos, d_model]
            H::ResidPost if post_norm => p.x = self.norm_apply(p.x.view(), p.scale.view(), weight(&w.post_attention_layernorm, "post_attention_layernorm")?, bias_of(&w.norm_bias, 1))?.into_shared(), // [pos, d_model]
            H::ResidPost => p.x += &p.out, // [pos, d_model]  residual add
        }
        Ok(())
    }

    /// The scale of the family's norm: RMS, or LayerNorm's standard deviation.
    fn norm_scale(&self, x: ArrayView2<f32>) -> Array1<f32> {
        let eps = self.model.config.eps();
        match self.model.arch.norm {
            NormKind::Rms => ops::rms_scale(x, eps), // [pos]
            NormKind::Layer => ops::ln_scale(x, eps), // [pos]
        }
    }

    /// The family's norm applied with its scale (and LayerNorm's bias).
    fn norm_apply(&self, x: ArrayView2<f32>, scale: ArrayView1<f32>, weight: &Array1<f32>, bias: Option<&Array1<f32>>) -> Result<Array2<f32>> {
        match (self.model.arch.norm, bias) {
            (NormKind::Layer, Some(b)) => ops::ln_apply(x, scale, weight.view(), b.view()), // [pos, d_model]
            (NormKind::Layer, None) => Err(missing("a LayerNorm bias")),
            (NormKind::Rms, _) => Ok(ops::rms_apply(x, scale, weight.view())), // [pos, d_model]
        }
    }

    fn positions(&self) -> Result<&crate::load::model::LearnedPositions> {
        self.model.weights.positions.as_ref().ok_or_else(|| missing("position_embeddings"))
    }

    /// A hook's slot holds the shape its dims say, or the op is wrong: an error, not a guess.
    fn check_shape(&self, pass: &Pass, key: HookKey, spec: &HookSpec) -> Result<()> {
        let want = spec.shape(&self.model.config, pass.plan.dims);
        let shape = pass.slots.get(spec.slot).shape().to_vec();
        if shape != want {
            return Err(EngineError::Shape(format!(
                "`{key}` (op {}) holds {shape:?} where its dims {:?} say {want:?}",
                Step::producing(key),
                spec.dims,
            )));
        }
        Ok(())
    }

    /// Records `key` if the capture filter wants it: the slot's own buffer handed over, or,
    /// when the value can be worked out from one the trace holds, a reference to that.
    fn record(&self, pass: &Pass, key: HookKey, spec: &HookSpec, wanted: bool, trace: &mut Trace) -> Result<()> {
        if !wanted {
            if matches!(spec.slot, Slot::Resid | Slot::Logits) {
                // Uncaptured, but cheap to watch: a NaN anywhere reaches these.
                trace.check_finite(key, pass.slots.get(spec.slot));
            }
            return Ok(());
        }
        if let Some((raw, how)) = self.derivable(pass, key, trace) {
            if key == HookKey::Logits {
                trace.check_finite(key, pass.slots.get(spec.slot)); // the row the pass computed
            }
            trace.insert_derived(key, raw, how);
            return Ok(());
        }
        if let Some(same) = self.previous_resid_post(pass, key, trace) {
            trace.insert_shared(key, same);
            return Ok(());
        }
        let value = pass.slots.share(spec.slot);
        let ndim = value.ndim();
        let tensor = Tensor::shared(spec.dims.to_vec(), value).ok_or_else(|| EngineError::Shape(format!("`{key}`: {} dims for a {ndim}-d value", spec.dims.len())))?;
        trace.check_finite(key, tensor.data.view());
        trace.insert(key, tensor);
        Ok(())
    }

    /// The recorded raw scores that `key` (masked scores or pattern) can be worked out from on
    /// demand, when this pass computed it from them with nothing in between: no edit on the
    /// masked scores or the pattern, no rounding, the causal mask on.
    fn derivable(&self, pass: &Pass, key: HookKey, trace: &Trace) -> Option<(Arc<Tensor>, Derivation)> {
        if key == HookKey::Logits {
            return self.derived_logits(pass);
        }
        let HookKey::Block(l, hook) = key else { return None };
        let at = pass.plan.pos_offset;
        let how = match hook {
            BlockHook::AttnScores => Derivation::InPlace { pos_offset: at, apply: attention::mask_in_place },
            BlockHook::Pattern => Derivation::InPlace { pos_offset: at, apply: attention::masked_softmax_in_place },
            _ => return None,
        };
        let edited = |h| pass.plan.edits.iter().any(|e| e.hook == HookKey::Block(l, h));
        if pass.plan.options.switches.no_causal_mask
            || self.model.arch.mask(l) != AttnMask::Causal
            || pass.plan.options.activations != ActivationPrecision::F32
            || edited(BlockHook::AttnScores)
            || edited(BlockHook::Pattern)
        {
            return None;
        }
        let raw = trace.get_shared_stored(HookKey::Block(l, BlockHook::RawScores))?;
        Some((raw, how))
    }

    /// Every row's logits, when [`logits_derived`]: the final norm's rows (the pass's own
    /// slot, shared) and the LM head this pass runs, applied when read. The same function on
    /// the same rows gives the bits a pass that computed every row records.
    fn derived_logits(&self, pass: &Pass) -> Option<(Arc<Tensor>, Derivation)> {
        if !logits_derived(&self.model, &pass.plan) {
            return None;
        }
        let rows = Tensor::shared(vec![Dim::Pos, Dim::DModel], pass.slots.h.clone().into_dyn())?; // [pos, d_model]
        let model = Arc::clone(&self.model);
        let head = move |rows: &Tensor| {
            let logits = rows.as_2d().map(|h| lm_head(&model, h)); // [pos, vocab]
            // The pass ran the same product on the last rows, so it cannot fail here;
            // were it to, the hook reads as empty rather than as made-up numbers.
            let logits = logits.and_then(|l| l.ok()).unwrap_or_else(|| Array2::zeros((0, model.config.vocab_size)));
            Tensor { dims: vec![Dim::Pos, Dim::Vocab], data: logits.into_dyn().into_shared() }
        };
        Some((Arc::new(rows), Derivation::Map(Arc::new(head))))
    }

    /// A block's `hook_resid_pre` is the previous block's `hook_resid_post`, value for value,
    /// unless an edit on it changed it: one copy serves both.
    fn previous_resid_post(&self, pass: &Pass, key: HookKey, trace: &Trace) -> Option<Arc<Tensor>> {
        let HookKey::Block(l, BlockHook::ResidPre) = key else { return None };
        if l == 0 || pass.plan.edits.iter().any(|e| e.hook == key) {
            return None;
        }
        trace.get_shared_stored(HookKey::Block(l - 1, BlockHook::ResidPost))
    }

    /// Appends the pass's rotated keys and values to the layer's cache (after their hooks, so
    /// an edited key or value is the one later positions attend to).
    fn append_kv(&mut self, pass: &Pass, l: usize) {
        let cache = &mut self.cache[l];
        cache.k.extend(pass.slots.k.iter());
        cache.v.extend(pass.slots.v.iter());
    }

    /// The layer's cached keys (or values) and the position of the first: every position so
    /// far, or a sliding-window layer's last ones. A pass that lifts the mask (`mask` is not
    /// the layer's) needs every key, which a window may have dropped.
    fn cached(&self, l: usize, keys: bool, mask: AttnMask) -> Result<(ArrayView3<'_, f32>, usize)> {
        let c = &self.model.config;
        let layer = &self.cache[l];
        if layer.start > 0 && mask != self.model.arch.mask(l) {
            return Err(EngineError::Input(format!(
                "layer {l}'s KV cache keeps only its sliding window (positions {}…): a pass with another mask needs every key; reset the executor and run the whole sequence",
                layer.start
            )));
        }
        let data = if keys { &layer.k } else { &layer.v };
        let row = c.n_kv_heads() * c.d_head();
        let view = ArrayView3::from_shape((data.len() / row, c.n_kv_heads(), c.d_head()), data)
            .map_err(|e| EngineError::Shape(format!("KV cache of layer {l}: {e}")))?;
        Ok((view, layer.start))
    }

    /// Drops what a sliding-window layer's later queries can never see, before a pass with
    /// `options` begins. A query at position `q ≥ len` sees keys `> q − window`, so only the
    /// last `window − 1` rows can still be read. Within one pass every row is kept, since its
    /// queries (many rows in a prefill) each need a different window: a local layer holds at
    /// most `window − 1 + n` rows during a pass of `n` new tokens. A pass that records or edits
    /// the layer's raw scores (q·k of every key, before the mask) or lifts the mask keeps
    /// them all; once an earlier pass has cut them, the raw scores of the keys gone are -inf.
    fn forget_outside_windows(&mut self, options: &PassOptions) {
        let row = self.model.config.kv_dim().max(1);
        for (l, layer) in self.cache.iter_mut().enumerate() {
            let AttnMask::Sliding { window } = self.model.arch.mask(l) else { continue };
            if options.switches.no_causal_mask || options.touches(HookKey::Block(l, BlockHook::RawScores)) {
                continue;
            }
            let keep_from = layer.len(row).saturating_sub(window.saturating_sub(1));
            if keep_from > layer.start {
                let dropped = (keep_from - layer.start) * row;
                layer.k.drain(..dropped);
                layer.v.drain(..dropped);
                layer.start = keep_from;
            }
        }
    }

    /// Bytes of keys and values the cache holds now.
    pub fn kv_bytes(&self) -> usize {
        self.cache.iter().map(|c| (c.k.len() + c.v.len()) * std::mem::size_of::<f32>()).sum()
    }
}

/// The LM head (and BERT's decoder bias) on rows of the final hidden state: `[rows, vocab]`.
fn lm_head(m: &Model, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
    let bias = m.weights.mlm.as_ref().map(|h| &h.decoder_bias);
    ops::add_bias(linear(rows, m.weights.lm_head())?, bias)
}

/// Rows of logits a pass with [`logits_derived`] computes itself: the last one is sampled from
/// and softmaxed into `hook_probs`. Two, not one, so the product runs the kernel it runs for
/// every row (one row takes the decode kernel).
const SAMPLED_ROWS: usize = 2;

/// Whether a pass records every row's `hook_logits` as derived ([`CpuBackend::derived_logits`])
/// and computes only the last [`SAMPLED_ROWS`] itself: the logits are captured but neither
/// edited nor rounded, and the LM head is a block type on the panel kernel, whose rows have the
/// same bits whatever the row count (`quant/panel.rs`; the `gemm` crate's f32 rows do not), so
/// the sample, `hook_probs` and the derived rows are bit for bit those of a pass that computed
/// every row. At a 262,144-token vocabulary the rows are 1 MiB each, and nothing but a reader
/// needs them.
fn logits_derived(model: &Model, plan: &PassPlan) -> bool {
    let o = &plan.options;
    let panel = model.weights.lm_head().quant_type().is_some_and(|ty| quant::fused(xwt::isa(), ty));
    panel
        && plan.ids.len() > SAMPLED_ROWS
        && o.capture.wants(HookKey::Logits)
        && o.activations == ActivationPrecision::F32
        && !o.interventions.iter().any(|i| i.hook == HookKey::Logits)
}

/// The error for a weight the family's program needs but the model lacks (a model built in
/// code with another family's config).
fn missing(what: &str) -> EngineError {
    EngineError::Input(format!("this model has no {what}, which its config.json's family needs"))
}

fn weight<'a>(w: &'a Option<Array1<f32>>, name: &str) -> Result<&'a Array1<f32>> {
    w.as_ref().ok_or_else(|| missing(name))
}

fn bias_of(biases: &Option<[Array1<f32>; 2]>, i: usize) -> Option<&Array1<f32>> {
    biases.as_ref().map(|b| &b[i])
}

fn sandwich(w: &crate::load::model::DecoderLayer, i: usize) -> Result<&Array1<f32>> {
    w.sublayer_out_norm.as_ref().map(|n| &n[i]).ok_or_else(|| missing("post-sublayer norms"))
}

/// Rows of the embedding table: `x[p] = E[ids[p]]`.
fn embed(table: &Matrix, ids: &[u32]) -> Result<Array2<f32>> {
    // table: [vocab, d_model] → [pos, d_model]
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= table.nrows()) {
        return Err(EngineError::Input(format!("token id {bad} is outside the embedding table ({} rows)", table.nrows())));
    }
    let mut x = Array2::<f32>::zeros((ids.len(), table.ncols())); // [pos, d_model]
    for (mut row, &id) in x.outer_iter_mut().zip(ids) {
        row.assign(&table.row(id as usize));
    }
    Ok(x)
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

impl Backend for CpuBackend {
    fn model(&self) -> &Arc<Model> {
        &self.model
    }

    fn device_name(&self) -> String {
        "CPU (f32 reference)".into()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn start(&mut self, plan: &PassPlan) -> Result<()> {
        let mut plan = plan.clone();
        if logits_derived(&self.model, &plan) {
            plan.dims.logit_rows = SAMPLED_ROWS;
        }
        self.pass = Some(Pass::new(plan));
        Ok(())
    }

    fn load_resid(&mut self, x: ArrayView2<'_, f32>) -> Result<()> {
        let pass = self.pass.as_mut().ok_or_else(|| EngineError::Input("no pass in progress".into()))?;
        pass.slots.x = x.to_owned().into_shared(); // [pos, d_model]
        Ok(())
    }

    /// The CPU hands each step's tensors over as soon as they exist.
    fn stream_batch(&self, _asked: usize) -> usize {
        1
    }

    fn pooled<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        with_warm_pool(f)
    }

    fn run(&mut self, _plan: &PassPlan, steps: &[Step], trace: &mut Trace) -> Result<()> {
        let mut pass = self.pass.take().ok_or_else(|| EngineError::Input("no pass in progress: call begin() first".into()))?;
        let result = steps.iter().try_for_each(|&step| self.run_step(&mut pass, step, trace));
        self.pass = Some(pass);
        result
    }

    fn cache_len(&self) -> usize {
        let row = self.model.config.kv_dim();
        self.cache.last().map_or(0, |c| c.len(row))
    }

    fn kv_cache_bytes(&self) -> usize {
        self.kv_bytes()
    }

    fn truncate_cache(&mut self, len: usize) {
        let row = self.model.config.kv_dim();
        for layer in &mut self.cache {
            if len < layer.start {
                // Rows before the window are gone: nothing from them can be kept.
                *layer = LayerCache::default();
                continue;
            }
            layer.k.truncate((len - layer.start) * row);
            layer.v.truncate((len - layer.start) * row);
        }
    }

    fn before_pass(&mut self, options: &PassOptions) {
        self.forget_outside_windows(options);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::executor::{Executor, PassOptions};
    use crate::program::op::LayerOp;
    use crate::exec::trace::CaptureFilter;
    use crate::load::model::ModelSource;
    use crate::train::params::Params;
    use crate::train::presets::tiny_config;

    fn tiny() -> Arc<Model> {
        let c = tiny_config(40, 16, 24, 2, 4, 2, true);
        let source = ModelSource { dir: "tiny".into(), name: "tiny".into(), weights_note: String::new() };
        Arc::new(Params::init(&c, 3, 0.2).to_model(&c, None, source).unwrap())
    }

    #[test]
    fn recording_hands_the_trace_the_slot_and_an_in_place_change_copies_it_first() {
        let mut exec = CpuExecutor::new(tiny());
        exec.begin(&[1, 5, 9, 2, 7], PassOptions::capture(CaptureFilter::All)).unwrap();
        exec.run_to(Step::Layer(0, LayerOp::Q)).unwrap();
        let q = HookKey::Block(0, BlockHook::Q);
        let slot = exec.backend().pass.as_ref().unwrap().slots.q.as_ptr();
        assert_eq!(exec.trace().get(q).unwrap().data.as_ptr(), slot, "hook_q is the slot's own buffer, not a copy");
        exec.run_to_end().unwrap();
        let t = exec.trace();
        let get = |h| t.get(HookKey::Block(0, h)).unwrap().data.clone();
        // The residual adds run in place on a slot the trace holds: each record keeps what its
        // hook saw.
        assert_eq!(get(BlockHook::ResidMid), &get(BlockHook::ResidPre) + &get(BlockHook::AttnOut));
        assert_eq!(get(BlockHook::ResidPost), &get(BlockHook::ResidMid) + &get(BlockHook::MlpOut));
        assert_ne!(get(BlockHook::ResidPre), get(BlockHook::ResidMid));
    }
}
