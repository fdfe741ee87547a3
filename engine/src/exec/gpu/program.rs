//! What each `Step` does on the GPU: for every hook its op-table entry lists, the kernels
//! that produce it, then its rounding (a lower-precision pass) and the pass's interventions on
//! it; then the op's other effects (the op before `scores` appends k and v to the cache; Gemma's
//! embedding scale, learned positions added after their hooks); and which tensors it
//! reads back. The same program as `cpu::CpuExecutor`, hook for hook.

use crate::load::arch::{Arch, AttnMask, NormKind, NormPlacement};
use crate::load::config::LlamaConfig;
use crate::exec::gpu::kernels::scores::Heads;
use crate::exec::gpu::kernels::silu_mul::Mode;
use crate::exec::gpu::kernels::{Cmd, Dispatch, Kernels, add, attend, bias, embed, intervene, layernorm, mask, matmul, probs, qk_norm, rmsnorm, rope, scores, silu_mul, softmax};
use crate::exec::gpu::state::{Activations, KvCache};
use crate::exec::gpu::weights::{GpuMatrix, GpuWeights};
use crate::program::hooks::{BlockHook, HookKey};
use crate::exec::driver::{Effect, HookWork, PassPlan, effects, hook_work};
use crate::exec::intervene::{ActivationPrecision, Resolved};
use crate::program::op_table::Slot;
use crate::program::op::Step;
use crate::exec::tensor::Dim;

/// What a read-back region becomes.
#[derive(Debug, Clone)]
pub enum Target {
    Hook { key: HookKey, dims: Vec<Dim>, shape: Vec<usize> },
    /// The last logits row, for the `Sample` step.
    SampleRow,
}

/// `len` f32 values of `buffer` from element `offset`.
pub struct Capture<'a> {
    pub target: Target,
    pub buffer: &'a wgpu::Buffer,
    pub offset: usize,
    pub len: usize,
}

/// An intervention of the pass with its flags and values uploaded.
pub struct PassEdit {
    pub resolved: Resolved,
    pub flags: wgpu::Buffer,
    pub values: wgpu::Buffer,
}

/// Everything a step reads, borrowed for one group of steps.
pub struct StepEnv<'a> {
    pub c: &'a LlamaConfig,
    /// The family's switches (norm kind and placement, masks, MLP, scales).
    pub arch: &'a Arch,
    /// Whether the sliding-window layers have a RoPE table of their own (`cs_local`).
    pub local_rope: bool,
    pub k: &'a Kernels,
    pub w: &'a GpuWeights,
    pub a: &'a Activations,
    pub kv: &'a KvCache,
    /// The pass as the driver planned it (which hooks, which edits, in which order).
    pub plan: &'a PassPlan,
    /// The interventions, uploaded, in the plan's order.
    pub edits: &'a [PassEdit],
}

impl<'a> StepEnv<'a> {
    fn heads(&self) -> Heads {
        let d = self.plan.dims;
        Heads {
            n: d.n,
            k_len: d.k_len,
            n_heads: self.c.n_heads(),
            n_kv_heads: self.c.n_kv_heads(),
            d_head: self.c.d_head(),
        }
    }

    /// The buffer holding a slot.
    fn slot(&self, s: Slot) -> &'a wgpu::Buffer {
        let a = self.a;
        match s {
            Slot::Resid => &a.x.buf,
            Slot::Scale => &a.scale.buf,
            Slot::Normed => &a.h.buf,
            Slot::Q => &a.q.buf,
            Slot::K => &a.k.buf,
            Slot::V => &a.v.buf,
            Slot::Scores => &a.scores.buf,
            Slot::Z => &a.z.buf,
            Slot::Out => &a.out.buf,
            Slot::Gate => &a.gate.buf,
            Slot::Up => &a.up.buf,
            Slot::Post => &a.post.buf,
            Slot::Logits => &a.logits.buf,
            Slot::Probs => &a.probs.buf,
        }
    }

    fn edited(&self, key: HookKey) -> bool {
        self.edits.iter().any(|e| e.resolved.hook == key)
    }


    /// The commands of `step`, in order: each hook's work as the driver orders it, then the
    /// op's effects.
    pub fn commands(&self, step: Step) -> Vec<Cmd<'a>> {
        let mut cmds = Vec::new();
        for (key, spec, work) in hook_work(step, self.plan) {
            let buffer = self.slot(spec.slot);
            let len = spec.shape(self.c, self.plan.dims).iter().product();
            match work {
                HookWork::Produce => cmds.extend(self.produce(key)),
                HookWork::Round(precision) => cmds.extend(intervene::round(self.k, precision, buffer, len, &self.a.dummy.buf).map(Cmd::Dispatch)),
                HookWork::Edit(i) => {
                    let e = &self.edits[i];
                    cmds.push(Cmd::Dispatch(intervene::edit(self.k, &e.resolved, buffer, &e.flags, &e.values)));
                }
                HookWork::Record { .. } => cmds.push(Cmd::ReadHook(key)),
            }
        }
        let (a, n, d) = (self.a, self.plan.dims.n, self.c.d_model());
        match effects(step, self.arch, self.plan) {
            Some(Effect::CacheKv(l)) => {
                let row = (self.c.kv_dim() * 4) as u64;
                let (at, bytes) = (self.plan.pos_offset as u64 * row, n as u64 * row);
                cmds.push(Cmd::Copy { src: &a.k.buf, src_offset: 0, dst: &self.kv.k[l], dst_offset: at, bytes });
                cmds.push(Cmd::Copy { src: &a.v.buf, src_offset: 0, dst: &self.kv.v[l], dst_offset: at, bytes });
            }
            Some(Effect::ScaleEmbed(s)) => cmds.push(Cmd::Dispatch(bias::scale(self.k, &a.x.buf, &a.dummy.buf, n * d, s))),
            Some(Effect::AddToResid) => cmds.push(Cmd::Dispatch(add::dispatch(self.k, &a.x.buf, &a.out.buf, n * d))),
            // The sampled row is read back after the step; the executor samples it.
            Some(Effect::Sample) | None => {}
        }
        cmds
    }

    /// The kernels that compute `key` into its slot.
    fn produce(&self, key: HookKey) -> Vec<Cmd<'a>> {
        let (k, a, c) = (self.k, self.a, self.c);
        let d = self.plan.dims;
        let dm = c.d_model();
        let w = self.w;
        let dispatches = |v: Vec<Dispatch<'a>>| v.into_iter().map(Cmd::Dispatch).collect::<Vec<_>>();
        match key {
            HookKey::Embed => dispatches(embed::dispatches(&w.embed, &a.ids.buf, &a.x.buf, d.n)),
            HookKey::PosEmbed => match &w.positions {
                Some(p) => dispatches(embed::dispatches(&p.table, &a.pos_ids.buf, &a.out.buf, d.n)),
                None => Vec::new(), // refused at load (`GpuWeights::upload`)
            },
            HookKey::TokenTypeEmbed => match w.positions.as_ref().and_then(|p| p.token_types.as_ref()) {
                Some(t) => dispatches(embed::dispatches(t, &a.type_ids.buf, &a.out.buf, d.n)),
                None => Vec::new(),
            },
            HookKey::EmbedLnScale => {
                let [g, b] = self.embed_ln();
                vec![Cmd::Dispatch(layernorm::dispatch(k, &a.x.buf, [g, b], &a.scale.buf, &a.tmp.buf, d.n, dm, c.eps(), false))]
            }
            HookKey::EmbedLnNormalized => {
                let [g, b] = self.embed_ln();
                let mut cmds = Vec::new();
                if self.rescale(HookKey::EmbedLnScale) {
                    cmds.push(Cmd::Dispatch(layernorm::dispatch(k, &a.x.buf, [g, b], &a.scale.buf, &a.tmp.buf, d.n, dm, c.eps(), true)));
                }
                cmds.push(self.copy(&a.tmp.buf, &a.x.buf, d.n * dm));
                cmds
            }
            HookKey::Block(l, hook) => self.block(l, hook),
            HookKey::LnFinalScale => vec![Cmd::Dispatch(self.norm(&a.x.buf, self.final_norm(), w.norm_bias.as_ref(), &a.h.buf, false))],
            HookKey::LnFinalNormalized => self.renormalize(HookKey::LnFinalScale, self.final_norm(), w.norm_bias.as_ref()),
            HookKey::MlmTransform => {
                let Some(head) = &w.mlm else { return Vec::new() };
                // h = LayerNorm(gelu(x · Wᵀ + b)), through the scratch buffer.
                let mut cmds = dispatches(matmul::linear(&head.dense, &a.x.buf, &a.tmp.buf, d.n, 0));
                cmds.push(Cmd::Dispatch(bias::add_bias(k, &a.tmp.buf, &head.dense_bias, d.n, dm)));
                cmds.push(Cmd::Dispatch(silu_mul::dispatch(k, Mode::activation(self.arch.head_activation()), &a.tmp.buf, &a.dummy.buf, &a.h.buf, d.n * dm)));
                let [g, b] = &head.layer_norm;
                cmds.push(Cmd::Dispatch(layernorm::dispatch(k, &a.h.buf, [g, b], &a.tmp_scale.buf, &a.tmp.buf, d.n, dm, c.eps(), false)));
                cmds.push(self.copy(&a.tmp.buf, &a.h.buf, d.n * dm));
                cmds
            }
            HookKey::Logits => {
                let mut cmds = dispatches(matmul::linear(w.lm_head(), &a.h.buf, &a.logits.buf, d.logit_rows, d.n - d.logit_rows));
                if let Some(head) = &w.mlm {
                    cmds.push(Cmd::Dispatch(bias::add_bias(k, &a.logits.buf, &head.decoder_bias, d.logit_rows, c.vocab_size)));
                }
                cmds
            }
            HookKey::Probs => vec![Cmd::Dispatch(probs::dispatch(k, &a.logits.buf, &a.probs.buf, d.logit_rows - 1, 1, c.vocab_size, self.plan.options.sampling.temperature))],
        }
    }

    fn copy(&self, src: &'a wgpu::Buffer, dst: &'a wgpu::Buffer, len: usize) -> Cmd<'a> {
        Cmd::Copy { src, src_offset: 0, dst, dst_offset: 0, bytes: (len * 4) as u64 }
    }

    fn final_norm(&self) -> &'a wgpu::Buffer {
        self.w.norm.as_ref().unwrap_or(&self.a.dummy.buf)
    }

    fn embed_ln(&self) -> [&'a wgpu::Buffer; 2] {
        match self.w.positions.as_ref().and_then(|p| p.layer_norm.as_ref()) {
            Some([g, b]) => [g, b],
            None => [&self.a.dummy.buf; 2], // refused at load
        }
    }

    /// The family's norm of `x` [n, d_model] with weight `g` (and LayerNorm's bias `b`) into
    /// the scale slot and `y`; `given` reads the scale instead of computing it.
    fn norm(&self, x: &'a wgpu::Buffer, g: &'a wgpu::Buffer, b: Option<&'a wgpu::Buffer>, y: &'a wgpu::Buffer, given: bool) -> Dispatch<'a> {
        let (a, c, n) = (self.a, self.c, self.plan.dims.n);
        match self.arch.norm {
            NormKind::Rms => rmsnorm::dispatch(self.k, x, g, &a.scale.buf, y, n, c.d_model(), c.eps(), given),
            NormKind::Layer => layernorm::dispatch(self.k, x, [g, b.unwrap_or(&a.dummy.buf)], &a.scale.buf, y, n, c.d_model(), c.eps(), given),
        }
    }

    /// Whether a norm's output must be computed again from its scale: the scale was rounded
    /// or edited after the norm wrote its output with it.
    fn rescale(&self, scale_key: HookKey) -> bool {
        self.plan.options.activations != ActivationPrecision::F32 || self.edited(scale_key)
    }

    /// The pre-norm output `h` was written with its scale; it is recomputed only when the
    /// scale was rounded or edited after that.
    fn renormalize(&self, scale_key: HookKey, g: &'a wgpu::Buffer, b: Option<&'a wgpu::Buffer>) -> Vec<Cmd<'a>> {
        if !self.rescale(scale_key) {
            return Vec::new();
        }
        vec![Cmd::Dispatch(self.norm(&self.a.x.buf, g, b, &self.a.h.buf, true))]
    }

    /// A norm whose output replaces its input (post-norm's `x`, a sandwich norm's `out`): the
    /// scale step wrote it into the scratch buffer; recomputed there if the scale changed,
    /// then copied over the input.
    fn norm_in_place(&self, scale_key: HookKey, x: &'a wgpu::Buffer, norm: Dispatch<'a>) -> Vec<Cmd<'a>> {
        let mut cmds = Vec::new();
        if self.rescale(scale_key) {
            cmds.push(Cmd::Dispatch(norm));
        }
        cmds.push(self.copy(&self.a.tmp.buf, x, self.plan.dims.n * self.c.d_model()));
        cmds
    }

    /// RoPE's cos/sin table of layer `l` (Gemma's sliding layers have their own θ).
    fn cos_sin(&self, l: usize) -> &'a wgpu::Buffer {
        let local = self.local_rope && self.arch.layers.get(l).is_some_and(|x| x.local_rope);
        if local { &self.a.cs_local.buf } else { &self.a.cs.buf }
    }

    fn block(&self, l: usize, hook: BlockHook) -> Vec<Cmd<'a>> {
        use BlockHook as H;
        let (k, a, c) = (self.k, self.a, self.c);
        let w = &self.w.layers[l];
        let n = self.plan.dims.n;
        let (d, eps) = (c.d_model(), c.eps());
        let h = self.heads();
        let dummy = &a.dummy.buf;
        // A block without pre-norms (BERT's post-norm, OLMo 2) feeds each sublayer the
        // residual stream itself.
        let post_norm = self.arch.placement == NormPlacement::Post;
        let input = if self.arch.placement.pre() { &a.h.buf } else { &a.x.buf };
        // `check_parts` made sure a family whose program has these norms has their weights.
        let (ln1, ln2) = (w.ln1.as_ref().unwrap_or(dummy), w.ln2.as_ref().unwrap_or(dummy));
        // OLMo 2's QK-norm spans every head of a position: one row of heads·d_head.
        let qk_rows = |heads: usize| if self.arch.qk_norm_whole { (1, heads * c.d_head()) } else { (heads, c.d_head()) };
        let norm_bias = |i: usize| w.norm_bias.as_ref().map(|b| &b[i]);
        let attn_bias = |i: usize| w.attn_bias.as_ref().map(|b| &b[i]);
        let mlp_bias = |i: usize| w.mlp_bias.as_ref().map(|b| &b[i]);
        let sandwich = |i: usize| w.sublayer_out_norm.as_ref().map_or(dummy, |s| &s[i]);
        let qk_norm = |i: usize| w.qk_norm.as_ref().map_or(dummy, |s| &s[i]);
        // x · Wᵀ (+ b) into `y` [n, cols].
        let linear = |m: &'a GpuMatrix, x: &'a wgpu::Buffer, y: &'a wgpu::Buffer, b: Option<&'a wgpu::Buffer>| {
            let mut cmds: Vec<Cmd<'a>> = matmul::linear(m, x, y, n, 0).into_iter().map(Cmd::Dispatch).collect();
            if let Some(b) = b {
                cmds.push(Cmd::Dispatch(bias::add_bias(k, y, b, n, m.rows)));
            }
            cmds
        };
        let one = |d: Dispatch<'a>| vec![Cmd::Dispatch(d)];
        let attn_mask = if self.plan.options.switches.no_causal_mask { AttnMask::Bidirectional } else { self.arch.mask(l) };
        match hook {
            H::ResidPre => Vec::new(),
            // Post-norm: the attention add's norm writes the scratch buffer; `hook_resid_mid`
            // copies it over x.
            H::Ln1Scale if post_norm => one(self.norm(&a.x.buf, ln1, norm_bias(0), &a.tmp.buf, false)),
            H::Ln1Scale => one(self.norm(&a.x.buf, ln1, norm_bias(0), &a.h.buf, false)),
            H::Ln1Normalized => self.renormalize(HookKey::Block(l, H::Ln1Scale), ln1, norm_bias(0)),
            H::Q => linear(&w.q, input, &a.q.buf, attn_bias(0)),
            H::K => linear(&w.k, input, &a.k.buf, attn_bias(1)),
            H::V => linear(&w.v, input, &a.v.buf, attn_bias(2)),
            H::QNormed => {
                let (heads, width) = qk_rows(c.n_heads());
                one(qk_norm::dispatch(k, &a.q.buf, qk_norm(0), n, heads, width, eps))
            }
            H::KNormed => {
                let (heads, width) = qk_rows(c.n_kv_heads());
                one(qk_norm::dispatch(k, &a.k.buf, qk_norm(1), n, heads, width, eps))
            }
            H::RotQ | H::RotK if self.plan.options.switches.no_rope => Vec::new(),
            H::RotQ => one(rope::dispatch(k, self.cos_sin(l), &a.q.buf, n, c.n_heads(), c.d_head())),
            H::RotK => one(rope::dispatch(k, self.cos_sin(l), &a.k.buf, n, c.n_kv_heads(), c.d_head())),
            H::RawScores => one(scores::dispatch(k, h, self.arch.score_scale, &a.q.buf, &self.kv.k[l], &a.scores.buf)),
            H::AttnScores => match attn_mask {
                AttnMask::Bidirectional => Vec::new(), // every key stays visible
                AttnMask::Causal => one(mask::dispatch(k, h, self.plan.pos_offset, 0, &a.scores.buf)),
                AttnMask::Sliding { window } => one(mask::dispatch(k, h, self.plan.pos_offset, window.max(1), &a.scores.buf)),
            },
            H::Pattern => one(softmax::dispatch(k, &a.scores.buf, h.n_heads * n, h.k_len)),
            H::Z => one(attend::dispatch(k, h, [&a.scores.buf, &self.kv.v[l], &a.z.buf])),
            H::AttnOut => linear(&w.o, &a.z.buf, &a.out.buf, w.o_bias.as_ref()),
            // Sandwich norms (Gemma): the sublayer's output normed before the add, via the
            // scratch buffer.
            H::Ln1PostScale => one(rmsnorm::dispatch(k, &a.out.buf, sandwich(0), &a.scale.buf, &a.tmp.buf, n, d, eps, false)),
            H::Ln2PostScale => one(rmsnorm::dispatch(k, &a.out.buf, sandwich(1), &a.scale.buf, &a.tmp.buf, n, d, eps, false)),
            H::Ln1PostNormalized => {
                let again = rmsnorm::dispatch(k, &a.out.buf, sandwich(0), &a.scale.buf, &a.tmp.buf, n, d, eps, true);
                self.norm_in_place(HookKey::Block(l, H::Ln1PostScale), &a.out.buf, again)
            }
            H::Ln2PostNormalized => {
                let again = rmsnorm::dispatch(k, &a.out.buf, sandwich(1), &a.scale.buf, &a.tmp.buf, n, d, eps, true);
                self.norm_in_place(HookKey::Block(l, H::Ln2PostScale), &a.out.buf, again)
            }
            // Post-norm (BERT): add, then norm the sum.
            H::ResidMidPreNorm | H::ResidPostPreNorm => one(add::dispatch(k, &a.x.buf, &a.out.buf, n * d)),
            H::ResidMid if post_norm => {
                let again = self.norm(&a.x.buf, ln1, norm_bias(0), &a.tmp.buf, true);
                self.norm_in_place(HookKey::Block(l, H::Ln1Scale), &a.x.buf, again)
            }
            H::ResidPost if post_norm => {
                let again = self.norm(&a.x.buf, ln2, norm_bias(1), &a.tmp.buf, true);
                self.norm_in_place(HookKey::Block(l, H::Ln2Scale), &a.x.buf, again)
            }
            H::ResidMid | H::ResidPost => one(add::dispatch(k, &a.x.buf, &a.out.buf, n * d)),
            H::Ln2Scale if post_norm => one(self.norm(&a.x.buf, ln2, norm_bias(1), &a.tmp.buf, false)),
            H::Ln2Scale => one(self.norm(&a.x.buf, ln2, norm_bias(1), &a.h.buf, false)),
            H::Ln2Normalized => self.renormalize(HookKey::Block(l, H::Ln2Scale), ln2, norm_bias(1)),
            // A gated MLP has no biases; an ungated one's first projection may.
            H::MlpPre => linear(&w.gate, input, &a.gate.buf, if w.up.is_some() { None } else { mlp_bias(0) }),
            H::MlpPreLinear => match &w.up {
                Some(up) => linear(up, input, &a.up.buf, None),
                None => Vec::new(),
            },
            H::MlpPost => {
                let mode = Mode::of(self.arch.mlp);
                let up = if mode.gated() { &a.up.buf } else { dummy };
                one(silu_mul::dispatch(k, mode, &a.gate.buf, up, &a.post.buf, n * c.d_mlp()))
            }
            H::MlpOut => linear(&w.down, &a.post.buf, &a.out.buf, mlp_bias(1)),
        }
    }

    /// The tensors `step` reads back: the hooks the capture filter wants, in op-table order,
    /// plus the sampled row for `Sample`.
    pub fn captures(&self, step: Step) -> Vec<Capture<'a>> {
        if step == Step::Sample {
            let v = self.c.vocab_size;
            let offset = (self.plan.dims.logit_rows - 1) * v;
            return vec![Capture { target: Target::SampleRow, buffer: &self.a.logits.buf, offset, len: v }];
        }
        let layer = step.layer().unwrap_or(0);
        crate::program::op::spec(step)
            .hooks
            .iter()
            .map(|spec| (spec.kind.at(layer), spec))
            .filter(|(key, _)| self.plan.options.capture.wants(*key) && !self.plan.skips(*key))
            .map(|(key, spec)| {
                let shape = spec.shape(self.c, self.plan.dims);
                Capture {
                    len: shape.iter().product(),
                    target: Target::Hook { key, dims: spec.dims.to_vec(), shape },
                    buffer: self.slot(spec.slot),
                    offset: 0,
                }
            })
            .collect()
    }
}
