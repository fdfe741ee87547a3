//! What each `Step` does on the GPU: the dispatches it records and the tensors it reads back.
//! The same program as `cpu::CpuExecutor::run`, hook for hook (same keys, dims and shapes).

use crate::config::LlamaConfig;
use crate::gpu::kernels::scores::Heads;
use crate::gpu::kernels::{Dispatch, Kernels, add, attend, embed, mask, matmul, probs, rmsnorm, rope, scores, silu_mul, softmax};
use crate::gpu::state::{Activations, KvCache};
use crate::gpu::weights::GpuWeights;
use crate::hooks::{BlockHook, HookKey};
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

/// Where a hook's values are, with its dims and shape.
type Source<'a> = (&'a wgpu::Buffer, Vec<Dim>, Vec<usize>);

/// The pass in progress, as far as the kernels need to know.
#[derive(Debug, Clone, Copy)]
pub struct PassShape {
    pub n: usize,
    pub pos_offset: usize,
    pub logit_rows: usize,
    pub temperature: f32,
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
}

impl<'a> StepEnv<'a> {
    fn heads(&self) -> Heads {
        Heads {
            n: self.pass.n,
            k_len: self.pass.pos_offset + self.pass.n,
            n_heads: self.c.n_heads(),
            n_kv_heads: self.c.n_kv_heads(),
            d_head: self.c.d_head(),
        }
    }

    /// The kernel launches of `step`, in order.
    pub fn dispatches(&self, step: Step) -> Vec<Dispatch<'a>> {
        let (k, a, c) = (self.k, self.a, self.c);
        let n = self.pass.n;
        let (d, eps) = (c.d_model(), c.eps());
        match step {
            Step::Embed => embed::dispatches(k, &self.w.embed, &a.ids.buf, &a.x.buf, n),
            Step::Layer(l, op) => self.layer_dispatches(l, op),
            Step::LnFinal => vec![rmsnorm::dispatch(k, &a.x.buf, &self.w.norm, &a.scale.buf, &a.h.buf, n, d, eps)],
            Step::Logits => {
                let rows = self.pass.logit_rows;
                matmul::linear(k, self.w.lm_head(), &a.h.buf, &a.logits.buf, rows, n - rows)
            }
            Step::Probs if self.capture.wants(HookKey::Probs) => {
                let (rows, t) = (self.pass.logit_rows, self.pass.temperature);
                vec![probs::dispatch(k, &a.logits.buf, &a.probs.buf, rows, c.vocab_size, t)]
            }
            Step::Probs | Step::Sample => Vec::new(),
        }
    }

    fn layer_dispatches(&self, l: usize, op: LayerOp) -> Vec<Dispatch<'a>> {
        let (k, a, c) = (self.k, self.a, self.c);
        let w = &self.w.layers[l];
        let n = self.pass.n;
        let (d, eps) = (c.d_model(), c.eps());
        let h = self.heads();
        match op {
            LayerOp::Ln1 => vec![rmsnorm::dispatch(k, &a.x.buf, &w.ln1, &a.scale.buf, &a.h.buf, n, d, eps)],
            LayerOp::Q => matmul::linear(k, &w.q, &a.h.buf, &a.q.buf, n, 0),
            LayerOp::K => matmul::linear(k, &w.k, &a.h.buf, &a.k.buf, n, 0),
            LayerOp::V => matmul::linear(k, &w.v, &a.h.buf, &a.v.buf, n, 0),
            LayerOp::Rope => {
                let shape = rope::Shape {
                    n,
                    n_heads: c.n_heads(),
                    n_kv_heads: c.n_kv_heads(),
                    d_head: c.d_head(),
                    pos_offset: self.pass.pos_offset,
                };
                let buffers = [&a.cs.buf, &a.q.buf, &a.k.buf, &a.v.buf, &self.kv.k[l], &self.kv.v[l]];
                vec![rope::dispatch(k, &shape, buffers)]
            }
            LayerOp::Scores => vec![scores::dispatch(k, h, &a.q.buf, &self.kv.k[l], &a.scores.buf)],
            LayerOp::Mask => vec![mask::dispatch(k, h, self.pass.pos_offset, &a.scores.buf)],
            LayerOp::Softmax => vec![softmax::dispatch(k, &a.scores.buf, h.n_heads * n, h.k_len)],
            LayerOp::Z => {
                let buffers = [&a.scores.buf, &self.kv.v[l], &a.ablate.buf, &a.z.buf];
                vec![attend::dispatch(k, h, l * c.n_heads(), buffers)]
            }
            LayerOp::OProj => matmul::linear(k, &w.o, &a.z.buf, &a.out.buf, n, 0),
            LayerOp::AttnAdd | LayerOp::MlpAdd => vec![add::dispatch(k, &a.x.buf, &a.out.buf, n * d)],
            LayerOp::Ln2 => vec![rmsnorm::dispatch(k, &a.x.buf, &w.ln2, &a.scale.buf, &a.h.buf, n, d, eps)],
            LayerOp::Gate => matmul::linear(k, &w.gate, &a.h.buf, &a.gate.buf, n, 0),
            LayerOp::Up => matmul::linear(k, &w.up, &a.h.buf, &a.up.buf, n, 0),
            LayerOp::SiluMul => vec![silu_mul::dispatch(k, &a.gate.buf, &a.up.buf, &a.post.buf, n * c.d_mlp())],
            LayerOp::Down => matmul::linear(k, &w.down, &a.post.buf, &a.out.buf, n, 0),
        }
    }

    /// The tensors `step` reads back (those the capture filter wants, plus the sampled row).
    pub fn captures(&self, step: Step) -> Vec<Capture<'a>> {
        let (a, c) = (self.a, self.c);
        let n = self.pass.n;
        let (d, f, v) = (c.d_model(), c.d_mlp(), c.vocab_size);
        let (hh, kvh, dh) = (c.n_heads(), c.n_kv_heads(), c.d_head());
        let k_len = self.pass.pos_offset + n;
        use BlockHook as B;
        use Dim::*;
        // (hook, buffer, dims, shape) of each tensor the step records, in the CPU's order.
        let resid = |buf| (buf, vec![Pos, DModel], vec![n, d]);
        let scale = || (&a.scale.buf, vec![Pos], vec![n]);
        let heads = |buf| (buf, vec![Pos, Head, DHead], vec![n, hh, dh]);
        let kv_heads = |buf| (buf, vec![Pos, KvHead, DHead], vec![n, kvh, dh]);
        let pattern = || (&a.scores.buf, vec![Head, QPos, KPos], vec![hh, n, k_len]);
        let mlp = |buf| (buf, vec![Pos, DMlp], vec![n, f]);
        let recorded: Vec<(HookKey, Source<'a>)> = match step {
            Step::Embed => vec![(HookKey::Embed, resid(&a.x.buf))],
            Step::Layer(l, op) => {
                let key = |h| HookKey::Block(l, h);
                match op {
                    LayerOp::Ln1 => vec![
                        (key(B::ResidPre), resid(&a.x.buf)),
                        (key(B::Ln1Scale), scale()),
                        (key(B::Ln1Normalized), resid(&a.h.buf)),
                    ],
                    LayerOp::Q => vec![(key(B::Q), heads(&a.q.buf))],
                    LayerOp::K => vec![(key(B::K), kv_heads(&a.k.buf))],
                    LayerOp::V => vec![(key(B::V), kv_heads(&a.v.buf))],
                    LayerOp::Rope => vec![(key(B::RotQ), heads(&a.q.buf)), (key(B::RotK), kv_heads(&a.k.buf))],
                    LayerOp::Scores => vec![(key(B::RawScores), pattern())],
                    LayerOp::Mask => vec![(key(B::AttnScores), pattern())],
                    LayerOp::Softmax => vec![(key(B::Pattern), pattern())],
                    LayerOp::Z => vec![(key(B::Z), heads(&a.z.buf))],
                    LayerOp::OProj => vec![(key(B::AttnOut), resid(&a.out.buf))],
                    LayerOp::AttnAdd => vec![(key(B::ResidMid), resid(&a.x.buf))],
                    LayerOp::Ln2 => vec![(key(B::Ln2Scale), scale()), (key(B::Ln2Normalized), resid(&a.h.buf))],
                    LayerOp::Gate => vec![(key(B::MlpPre), mlp(&a.gate.buf))],
                    LayerOp::Up => vec![(key(B::MlpPreLinear), mlp(&a.up.buf))],
                    LayerOp::SiluMul => vec![(key(B::MlpPost), mlp(&a.post.buf))],
                    LayerOp::Down => vec![(key(B::MlpOut), resid(&a.out.buf))],
                    LayerOp::MlpAdd => vec![(key(B::ResidPost), resid(&a.x.buf))],
                }
            }
            Step::LnFinal => vec![(HookKey::LnFinalScale, scale()), (HookKey::LnFinalNormalized, resid(&a.h.buf))],
            Step::Logits => vec![(HookKey::Logits, (&a.logits.buf, vec![Pos, Vocab], vec![self.pass.logit_rows, v]))],
            Step::Probs => vec![(HookKey::Probs, (&a.probs.buf, vec![Pos, Vocab], vec![self.pass.logit_rows, v]))],
            Step::Sample => {
                let last = Capture {
                    target: Target::SampleRow,
                    buffer: &a.logits.buf,
                    offset: (self.pass.logit_rows - 1) * v,
                    len: v,
                };
                return vec![last];
            }
        };
        recorded
            .into_iter()
            .filter(|(key, _)| self.capture.wants(*key))
            .map(|(key, (buffer, dims, shape))| Capture {
                len: shape.iter().product(),
                target: Target::Hook { key, dims, shape },
                buffer,
                offset: 0,
            })
            .collect()
    }
}
