//! What each `Step` does on the GPU: for every hook its op-table entry lists, the kernels
//! that produce it, then its rounding (a lower-precision pass) and the pass's interventions on
//! it; then the op's other effects (RoPE appends k and v to the cache); and which tensors it
//! reads back. The same program as `cpu::CpuExecutor`, hook for hook.

use crate::config::LlamaConfig;
use crate::gpu::kernels::scores::Heads;
use crate::gpu::kernels::{Cmd, Dispatch, Kernels, add, attend, embed, intervene, mask, matmul, probs, rmsnorm, rope, scores, silu_mul, softmax};
use crate::gpu::state::{Activations, KvCache};
use crate::gpu::weights::GpuWeights;
use crate::hooks::{BlockHook, HookKey};
use crate::executor::Switches;
use crate::intervene::{ActivationPrecision, Resolved};
use crate::op_table::{self, PassDims, Slot};
use crate::step::{LayerOp, Step};
use crate::tensor::Dim;
use crate::trace::CaptureFilter;

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

/// The pass in progress, as far as the kernels need to know.
#[derive(Debug, Clone, Copy)]
pub struct PassShape {
    pub dims: PassDims,
    pub pos_offset: usize,
    pub temperature: f32,
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
    pub k: &'a Kernels,
    pub w: &'a GpuWeights,
    pub a: &'a Activations,
    pub kv: &'a KvCache,
    pub pass: PassShape,
    pub capture: &'a CaptureFilter,
    pub edits: &'a [PassEdit],
    pub precision: ActivationPrecision,
    pub switches: Switches,
}

impl<'a> StepEnv<'a> {
    fn heads(&self) -> Heads {
        let d = self.pass.dims;
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

    /// `hook_probs` is computed only to be looked at (or edited).
    fn skips(&self, key: HookKey) -> bool {
        key == HookKey::Probs && !self.capture.wants(key) && !self.edited(key)
    }

    /// The commands of `step`, in order.
    pub fn commands(&self, step: Step) -> Vec<Cmd<'a>> {
        let layer = step.layer().unwrap_or(0);
        let mut cmds = Vec::new();
        for spec in op_table::spec(step).hooks {
            let key = spec.kind.at(layer);
            if self.skips(key) {
                continue;
            }
            cmds.extend(self.produce(key).into_iter().map(Cmd::Dispatch));
            let buffer = self.slot(spec.slot);
            let len = spec.shape(self.c, self.pass.dims).iter().product();
            if let Some(round) = intervene::round(self.k, self.precision, buffer, len, &self.a.dummy.buf) {
                cmds.push(Cmd::Dispatch(round));
            }
            for e in self.edits.iter().filter(|e| e.resolved.hook == key) {
                cmds.push(Cmd::Dispatch(intervene::edit(self.k, &e.resolved, buffer, &e.flags, &e.values)));
            }
        }
        if let Step::Layer(l, LayerOp::Rope) = step {
            // The rotated (and possibly edited) keys and the values join the cache.
            let row = (self.c.kv_dim() * 4) as u64;
            let (at, bytes) = (self.pass.pos_offset as u64 * row, self.pass.dims.n as u64 * row);
            cmds.push(Cmd::Copy { src: &self.a.k.buf, src_offset: 0, dst: &self.kv.k[l], dst_offset: at, bytes });
            cmds.push(Cmd::Copy { src: &self.a.v.buf, src_offset: 0, dst: &self.kv.v[l], dst_offset: at, bytes });
        }
        cmds
    }

    /// The kernels that compute `key` into its slot.
    fn produce(&self, key: HookKey) -> Vec<Dispatch<'a>> {
        let (k, a, c) = (self.k, self.a, self.c);
        let d = self.pass.dims;
        let (dm, eps) = (c.d_model(), c.eps());
        match key {
            HookKey::Embed => embed::dispatches(k, &self.w.embed, &a.ids.buf, &a.x.buf, d.n),
            // Other families' hooks: the executor refuses their models before any pass.
            HookKey::PosEmbed | HookKey::TokenTypeEmbed | HookKey::EmbedLnScale | HookKey::EmbedLnNormalized | HookKey::MlmTransform => Vec::new(),
            HookKey::Block(l, hook) => self.block(l, hook),
            HookKey::LnFinalScale => vec![rmsnorm::dispatch(k, &a.x.buf, &self.w.norm, &a.scale.buf, &a.h.buf, d.n, dm, eps, false)],
            HookKey::LnFinalNormalized => self.renormalize(HookKey::LnFinalScale, &self.w.norm),
            HookKey::Logits => matmul::linear(k, self.w.lm_head(), &a.h.buf, &a.logits.buf, d.logit_rows, d.n - d.logit_rows),
            HookKey::Probs => vec![probs::dispatch(k, &a.logits.buf, &a.probs.buf, d.logit_rows - 1, 1, c.vocab_size, self.pass.temperature)],
        }
    }

    /// RMSNorm's output was written with its scale; it is recomputed only when the scale was
    /// rounded or edited after that.
    fn renormalize(&self, scale_key: HookKey, g: &'a wgpu::Buffer) -> Vec<Dispatch<'a>> {
        if self.precision == ActivationPrecision::F32 && !self.edited(scale_key) {
            return Vec::new();
        }
        let (a, c) = (self.a, self.c);
        vec![rmsnorm::dispatch(self.k, &a.x.buf, g, &a.scale.buf, &a.h.buf, self.pass.dims.n, c.d_model(), c.eps(), true)]
    }

    fn block(&self, l: usize, hook: BlockHook) -> Vec<Dispatch<'a>> {
        use BlockHook as H;
        let (k, a, c) = (self.k, self.a, self.c);
        let w = &self.w.layers[l];
        let n = self.pass.dims.n;
        let (d, eps) = (c.d_model(), c.eps());
        let h = self.heads();
        match hook {
            H::ResidPre => Vec::new(),
            // Other families' hooks: the executor refuses their models before any pass.
            H::QNormed | H::KNormed | H::Ln1PostScale | H::Ln1PostNormalized | H::Ln2PostScale | H::Ln2PostNormalized | H::ResidMidPreNorm | H::ResidPostPreNorm => Vec::new(),
            H::Ln1Scale => vec![rmsnorm::dispatch(k, &a.x.buf, &w.ln1, &a.scale.buf, &a.h.buf, n, d, eps, false)],
            H::Ln1Normalized => self.renormalize(HookKey::Block(l, H::Ln1Scale), &w.ln1),
            H::Q => matmul::linear(k, &w.q, &a.h.buf, &a.q.buf, n, 0),
            H::K => matmul::linear(k, &w.k, &a.h.buf, &a.k.buf, n, 0),
            H::V => matmul::linear(k, &w.v, &a.h.buf, &a.v.buf, n, 0),
            H::RotQ | H::RotK if self.switches.no_rope => Vec::new(),
            H::RotQ => vec![rope::dispatch(k, &a.cs.buf, &a.q.buf, n, c.n_heads(), c.d_head())],
            H::RotK => vec![rope::dispatch(k, &a.cs.buf, &a.k.buf, n, c.n_kv_heads(), c.d_head())],
            H::RawScores => vec![scores::dispatch(k, h, &a.q.buf, &self.kv.k[l], &a.scores.buf)],
            H::AttnScores if self.switches.no_causal_mask => Vec::new(),
            H::AttnScores => vec![mask::dispatch(k, h, self.pass.pos_offset, &a.scores.buf)],
            H::Pattern => vec![softmax::dispatch(k, &a.scores.buf, h.n_heads * n, h.k_len)],
            H::Z => vec![attend::dispatch(k, h, [&a.scores.buf, &self.kv.v[l], &a.z.buf])],
            H::AttnOut => matmul::linear(k, &w.o, &a.z.buf, &a.out.buf, n, 0),
            H::ResidMid | H::ResidPost => vec![add::dispatch(k, &a.x.buf, &a.out.buf, n * d)],
            H::Ln2Scale => vec![rmsnorm::dispatch(k, &a.x.buf, &w.ln2, &a.scale.buf, &a.h.buf, n, d, eps, false)],
            H::Ln2Normalized => self.renormalize(HookKey::Block(l, H::Ln2Scale), &w.ln2),
            H::MlpPre => matmul::linear(k, &w.gate, &a.h.buf, &a.gate.buf, n, 0),
            H::MlpPreLinear => matmul::linear(k, &w.up, &a.h.buf, &a.up.buf, n, 0),
            H::MlpPost => vec![silu_mul::dispatch(k, &a.gate.buf, &a.up.buf, &a.post.buf, n * c.d_mlp())],
            H::MlpOut => matmul::linear(k, &w.down, &a.post.buf, &a.out.buf, n, 0),
        }
    }

    /// The tensors `step` reads back: the hooks the capture filter wants, in op-table order,
    /// plus the sampled row for `Sample`.
    pub fn captures(&self, step: Step) -> Vec<Capture<'a>> {
        if step == Step::Sample {
            let v = self.c.vocab_size;
            let offset = (self.pass.dims.logit_rows - 1) * v;
            return vec![Capture { target: Target::SampleRow, buffer: &self.a.logits.buf, offset, len: v }];
        }
        let layer = step.layer().unwrap_or(0);
        op_table::spec(step)
            .hooks
            .iter()
            .map(|spec| (spec.kind.at(layer), spec))
            .filter(|(key, _)| self.capture.wants(*key) && !self.skips(*key))
            .map(|(key, spec)| {
                let shape = spec.shape(self.c, self.pass.dims);
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
