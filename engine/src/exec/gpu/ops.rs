//! Single GPU kernels on ndarray inputs, with the signatures of `cpu::ops`, so every kernel
//! can be tested against the CPU reference on its own. Each call uploads, runs one group of
//! dispatches and reads back: simple, not fast.

use std::sync::Arc;

use ndarray::{Array1, Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayViewD, IxDyn};

use crate::error::{EngineError, Result};
use crate::exec::gpu::context::GpuContext;
use crate::exec::gpu::kernels::scores::Heads;
use crate::load::arch::{Activation, AttnMask};
use crate::exec::gpu::kernels::silu_mul::Mode;
use crate::exec::gpu::kernels::{Dispatch, Kernels, WeightFormat, add, attend, bias, embed, intervene, layernorm, mask, matmul, probs, qk_norm, rmsnorm, rope, scores, silu_mul, softmax};
use crate::exec::intervene::{ActivationPrecision, Resolved};
use crate::exec::gpu::recorder::{Params, Recorder};
use crate::exec::gpu::weights::{GpuMatrix, upload_f32};
use crate::load::longrope::Rope;
use crate::load::matrix::Matrix;

pub struct GpuOps {
    ctx: Arc<GpuContext>,
    kernels: Kernels,
}

impl GpuOps {
    pub fn new(ctx: Arc<GpuContext>, format: WeightFormat) -> Result<Self> {
        let kernels = Kernels::new(&ctx, format)?;
        Ok(Self { ctx, kernels })
    }

    pub fn format(&self) -> WeightFormat {
        self.kernels.format
    }

    fn upload(&self, label: &str, values: impl IntoIterator<Item = f32>) -> Result<wgpu::Buffer> {
        let v: Vec<f32> = values.into_iter().collect();
        upload_f32(&self.ctx, label, &v)
    }

    fn zeros(&self, label: &str, len: usize) -> Result<wgpu::Buffer> {
        self.upload(label, std::iter::repeat_n(0.0, len))
    }

    fn matrix(&self, w: ArrayView2<f32>, max_chunk_bytes: u64) -> Result<GpuMatrix> {
        GpuMatrix::upload(&self.ctx, &self.kernels.weights, "weights", w, self.kernels.format, max_chunk_bytes)
    }

    fn run(&self, dispatches: &[Dispatch<'_>]) -> Result<()> {
        self.ctx.scoped("running a kernel", || {
            let mut rec = Recorder::new(&self.ctx);
            for d in dispatches {
                rec.dispatch(d, Params::OneOff);
            }
            rec.submit(None).map(|_| ())
        })?
    }

    fn read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let bytes = self.ctx.read_back(buffer, 0, (len * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn read2(&self, buffer: &wgpu::Buffer, shape: (usize, usize)) -> Result<Array2<f32>> {
        Array2::from_shape_vec(shape, self.read(buffer, shape.0 * shape.1)?).map_err(shape_error)
    }

    fn read3(&self, buffer: &wgpu::Buffer, shape: (usize, usize, usize)) -> Result<Array3<f32>> {
        Array3::from_shape_vec(shape, self.read(buffer, shape.0 * shape.1 * shape.2)?).map_err(shape_error)
    }

    /// `x · Wᵀ` (GEMV for ≤ 4 rows, tiled above), `w` split into chunks of at most
    /// `max_chunk_bytes` (`u64::MAX`: one chunk).
    pub fn linear(&self, x: ArrayView2<f32>, w: ArrayView2<f32>, max_chunk_bytes: u64) -> Result<Array2<f32>> {
        let out = w.nrows();
        let wm = self.matrix(w, max_chunk_bytes)?;
        self.linear_on(x, &wm, out)
    }

    /// `x · Wᵀ` for a model's matrix, uploaded as the executor would (a quantized one as its
    /// blocks, read by its format's kernels), split into chunks of at most `max_chunk_bytes`.
    pub fn linear_matrix(&self, x: ArrayView2<f32>, w: &Matrix, max_chunk_bytes: u64) -> Result<Array2<f32>> {
        let wm = GpuMatrix::from_matrix(&self.ctx, &self.kernels.weights, "weights", w, self.kernels.format, max_chunk_bytes)?;
        self.linear_on(x, &wm, w.nrows())
    }

    fn linear_on(&self, x: ArrayView2<f32>, wm: &GpuMatrix, out: usize) -> Result<Array2<f32>> {
        let m = x.nrows();
        let xb = self.upload("x", x.iter().copied())?; // [m, in]
        let y = self.zeros("y", m * out)?; // [m, out]
        self.run(&matmul::linear(wm, &xb, &y, m, 0))?;
        self.read2(&y, (m, out))
    }

    /// `E[ids]`, the table split into chunks of at most `max_chunk_bytes`.
    pub fn embed(&self, table: ArrayView2<f32>, ids: &[u32], max_chunk_bytes: u64) -> Result<Array2<f32>> {
        let tm = self.matrix(table, max_chunk_bytes)?;
        self.embed_on(&tm, ids)
    }

    /// `E[ids]` from a model's table, uploaded as the executor would (a quantized one as its
    /// blocks).
    pub fn embed_matrix(&self, table: &Matrix, ids: &[u32], max_chunk_bytes: u64) -> Result<Array2<f32>> {
        let tm = GpuMatrix::from_matrix(&self.ctx, &self.kernels.weights, "table", table, self.kernels.format, max_chunk_bytes)?;
        self.embed_on(&tm, ids)
    }

    fn embed_on(&self, tm: &GpuMatrix, ids: &[u32]) -> Result<Array2<f32>> {
        let d = tm.cols;
        let idb = self.ctx.storage("ids", (ids.len() * 4) as u64, wgpu::BufferUsages::empty())?;
        self.ctx.queue.write_buffer(&idb, 0, bytemuck::cast_slice(ids));
        let x = self.zeros("x", ids.len() * d)?; // [n, d]
        self.run(&embed::dispatches(tm, &idb, &x, ids.len()))?;
        self.read2(&x, (ids.len(), d))
    }

    pub fn rmsnorm(&self, x: ArrayView2<f32>, weight: ArrayView1<f32>, eps: f32) -> Result<(Array1<f32>, Array2<f32>)> {
        let (rows, d) = x.dim();
        let xb = self.upload("x", x.iter().copied())?;
        let g = self.upload("g", weight.iter().copied())?;
        let scale = self.zeros("scale", rows)?; // [rows]
        let y = self.zeros("y", rows * d)?; // [rows, d]
        self.run(&[rmsnorm::dispatch(&self.kernels, &xb, &g, &scale, &y, rows, d, eps, false)])?;
        Ok((Array1::from(self.read(&scale, rows)?), self.read2(&y, (rows, d))?))
    }

    /// RMSNorm's output from a given scale (the kernel's `given_scale` mode).
    pub fn rms_apply(&self, x: ArrayView2<f32>, scale: ArrayView1<f32>, weight: ArrayView1<f32>) -> Result<Array2<f32>> {
        let (rows, d) = x.dim();
        let xb = self.upload("x", x.iter().copied())?;
        let g = self.upload("g", weight.iter().copied())?;
        let sb = self.upload("scale", scale.iter().copied())?;
        let y = self.zeros("y", rows * d)?;
        self.run(&[rmsnorm::dispatch(&self.kernels, &xb, &g, &sb, &y, rows, d, 0.0, true)])?;
        self.read2(&y, (rows, d))
    }

    /// RoPE of `x` [pos, heads, D] at positions `pos_offset..`.
    pub fn rope(&self, x: ArrayView3<f32>, r: Rope<'_>, pos_offset: usize) -> Result<Array3<f32>> {
        let (n, heads, d_head) = x.dim();
        let cs = self.upload("cs", rope::cos_sin_table(r, pos_offset, n))?;
        let xb = self.upload("x", x.iter().copied())?;
        self.run(&[rope::dispatch(&self.kernels, &cs, &xb, n, heads, d_head)])?;
        self.read3(&xb, x.dim())
    }

    /// `q·k / sqrt(d_head)`, as `cpu::ops::attention_scores`.
    pub fn attention_scores(&self, q: ArrayView3<f32>, k: ArrayView3<f32>) -> Result<Array3<f32>> {
        // As the CPU reference computes it: f32 division by an f32 square root.
        self.attention_scores_scaled(q, k, 1.0 / (q.dim().2 as f32).sqrt())
    }

    /// `q·k · scale` (`Arch::score_scale`).
    pub fn attention_scores_scaled(&self, q: ArrayView3<f32>, k: ArrayView3<f32>, scale: f32) -> Result<Array3<f32>> {
        let h = heads(q.dim(), k.dim())?;
        let qb = self.upload("q", q.iter().copied())?;
        let kb = self.upload("k", k.iter().copied())?;
        let s = self.zeros("scores", h.score_len())?;
        self.run(&[scores::dispatch(&self.kernels, h, scale, &qb, &kb, &s)])?;
        self.read3(&s, (h.n_heads, h.n, h.k_len))
    }

    pub fn causal_mask(&self, s: ArrayView3<f32>, pos_offset: usize) -> Result<Array3<f32>> {
        self.mask_with(s, pos_offset, AttnMask::Causal)
    }

    /// A layer's mask, as `cpu::ops::mask_with_in_place` (bidirectional: no dispatch).
    pub fn mask_with(&self, s: ArrayView3<f32>, pos_offset: usize, m: AttnMask) -> Result<Array3<f32>> {
        let (hh, n, k_len) = s.dim();
        let h = Heads { n, k_len, n_heads: hh, n_kv_heads: 1, d_head: 1 };
        let sb = self.upload("scores", s.iter().copied())?;
        let window = match m {
            AttnMask::Bidirectional => return Ok(s.to_owned()),
            AttnMask::Causal => 0,
            AttnMask::Sliding { window } => window.max(1),
        };
        self.run(&[mask::dispatch(&self.kernels, h, pos_offset, window, &sb)])?;
        self.read3(&sb, s.dim())
    }

    pub fn softmax_last(&self, s: ArrayView3<f32>) -> Result<Array3<f32>> {
        let (a, b, len) = s.dim();
        let sb = self.upload("scores", s.iter().copied())?;
        self.run(&[softmax::dispatch(&self.kernels, &sb, a * b, len)])?;
        self.read3(&sb, s.dim())
    }

    /// `pattern` [H, n, k_len] · `v` [k_len, KVH, D].
    pub fn attend(&self, pattern: ArrayView3<f32>, v: ArrayView3<f32>) -> Result<Array3<f32>> {
        let (hh, n, k_len) = pattern.dim();
        let (_, kvh, d_head) = v.dim();
        let h = Heads { n, k_len, n_heads: hh, n_kv_heads: kvh, d_head };
        let pb = self.upload("pattern", pattern.iter().copied())?;
        let vb = self.upload("v", v.iter().copied())?;
        let z = self.zeros("z", n * hh * d_head)?;
        self.run(&[attend::dispatch(&self.kernels, h, [&pb, &vb, &z])])?;
        self.read3(&z, (n, hh, d_head))
    }

    pub fn silu_mul(&self, gate: ArrayView2<f32>, up: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.activation(Mode::SiluMul, gate, Some(up))
    }

    /// `gelu_tanh(gate) ⊙ up`, as `cpu::ops::gelu_mul`.
    pub fn gelu_mul(&self, gate: ArrayView2<f32>, up: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.activation(Mode::GeluTanhMul, gate, Some(up))
    }

    /// One activation on every element, as `cpu::ops::activate`.
    pub fn activate(&self, x: ArrayView2<f32>, act: Activation) -> Result<Array2<f32>> {
        self.activation(Mode::activation(act), x, None)
    }

    fn activation(&self, mode: Mode, gate: ArrayView2<f32>, up: Option<ArrayView2<f32>>) -> Result<Array2<f32>> {
        let gb = self.upload("gate", gate.iter().copied())?;
        let ub = match up {
            Some(up) => self.upload("up", up.iter().copied())?,
            None => self.zeros("unused up", 4)?,
        };
        let post = self.zeros("post", gate.len())?;
        self.run(&[silu_mul::dispatch(&self.kernels, mode, &gb, &ub, &post, gate.len())])?;
        self.read2(&post, gate.dim())
    }

    /// LayerNorm: the per-row scale and the output, as `cpu::ops::ln_scale` and `ln_apply`.
    pub fn layernorm(&self, x: ArrayView2<f32>, weight: ArrayView1<f32>, b: ArrayView1<f32>, eps: f32) -> Result<(Array1<f32>, Array2<f32>)> {
        let (rows, d) = x.dim();
        let xb = self.upload("x", x.iter().copied())?;
        let g = self.upload("g", weight.iter().copied())?;
        let bb = self.upload("b", b.iter().copied())?;
        let scale = self.zeros("scale", rows)?; // [rows]
        let y = self.zeros("y", rows * d)?; // [rows, d]
        self.run(&[layernorm::dispatch(&self.kernels, &xb, [&g, &bb], &scale, &y, rows, d, eps, false)])?;
        Ok((Array1::from(self.read(&scale, rows)?), self.read2(&y, (rows, d))?))
    }

    /// LayerNorm's output from a given scale (the kernel's `given_scale` mode).
    pub fn ln_apply(&self, x: ArrayView2<f32>, scale: ArrayView1<f32>, weight: ArrayView1<f32>, b: ArrayView1<f32>) -> Result<Array2<f32>> {
        let (rows, d) = x.dim();
        let xb = self.upload("x", x.iter().copied())?;
        let g = self.upload("g", weight.iter().copied())?;
        let bb = self.upload("b", b.iter().copied())?;
        let sb = self.upload("scale", scale.iter().copied())?;
        let y = self.zeros("y", rows * d)?;
        self.run(&[layernorm::dispatch(&self.kernels, &xb, [&g, &bb], &sb, &y, rows, d, 0.0, true)])?;
        self.read2(&y, (rows, d))
    }

    /// RMSNorm over each head of `x` [pos, heads, d_head] in place, as `cpu::ops::rms_heads`.
    pub fn rms_heads(&self, x: ArrayView3<f32>, weight: ArrayView1<f32>, eps: f32) -> Result<Array3<f32>> {
        let (n, heads, d_head) = x.dim();
        let xb = self.upload("x", x.iter().copied())?;
        let g = self.upload("g", weight.iter().copied())?;
        self.run(&[qk_norm::dispatch(&self.kernels, &xb, &g, n, heads, d_head, eps)])?;
        self.read3(&xb, x.dim())
    }

    /// `x + b` on every row, in place, as `cpu::ops::add_bias`.
    pub fn add_bias(&self, x: ArrayView2<f32>, b: ArrayView1<f32>) -> Result<Array2<f32>> {
        let (rows, cols) = x.dim();
        let xb = self.upload("x", x.iter().copied())?;
        let bb = self.upload("b", b.iter().copied())?;
        self.run(&[bias::add_bias(&self.kernels, &xb, &bb, rows, cols)])?;
        self.read2(&xb, x.dim())
    }

    /// `x · s`, in place.
    pub fn scale(&self, x: ArrayView2<f32>, s: f32) -> Result<Array2<f32>> {
        let xb = self.upload("x", x.iter().copied())?;
        let dummy = self.zeros("dummy", 4)?;
        self.run(&[bias::scale(&self.kernels, &xb, &dummy, x.len(), s)])?;
        self.read2(&xb, x.dim())
    }

    pub fn add(&self, x: ArrayView2<f32>, y: ArrayView2<f32>) -> Result<Array2<f32>> {
        let xb = self.upload("x", x.iter().copied())?;
        let yb = self.upload("y", y.iter().copied())?;
        self.run(&[add::dispatch(&self.kernels, &xb, &yb, x.len())])?;
        self.read2(&xb, x.dim())
    }

    pub fn softmax_rows(&self, logits: ArrayView2<f32>, temperature: f32) -> Result<Array2<f32>> {
        let (rows, vocab) = logits.dim();
        let lb = self.upload("logits", logits.iter().copied())?;
        let pb = self.zeros("probs", logits.len())?;
        self.run(&[probs::dispatch(&self.kernels, &lb, &pb, 0, rows, vocab, temperature)])?;
        self.read2(&pb, logits.dim())
    }
}

impl GpuOps {
    /// An intervention laid out by `Intervention::resolve`, applied to `data` by the kernel.
    pub fn intervene(&self, data: ArrayViewD<f32>, r: &Resolved) -> Result<ArrayD<f32>> {
        let xb = self.upload("hook", data.iter().copied())?;
        let flags = intervene::flags(r);
        let fb = self.ctx.storage("flags", (flags.len() * 4) as u64, wgpu::BufferUsages::empty())?;
        self.ctx.queue.write_buffer(&fb, 0, bytemuck::cast_slice(&flags));
        let vb = self.upload("values", r.values.clone().unwrap_or_else(|| vec![0.0]))?;
        self.run(&[intervene::edit(&self.kernels, r, &xb, &fb, &vb)])?;
        ArrayD::from_shape_vec(IxDyn(data.shape()), self.read(&xb, data.len())?).map_err(shape_error)
    }

    /// Every value rounded to `precision` by the kernel.
    pub fn round(&self, data: ArrayViewD<f32>, precision: ActivationPrecision) -> Result<ArrayD<f32>> {
        let xb = self.upload("hook", data.iter().copied())?;
        let dummy = self.zeros("dummy", 4)?;
        if let Some(d) = intervene::round(&self.kernels, precision, &xb, data.len(), &dummy) {
            self.run(&[d])?;
        }
        ArrayD::from_shape_vec(IxDyn(data.shape()), self.read(&xb, data.len())?).map_err(shape_error)
    }
}

fn heads(q: (usize, usize, usize), k: (usize, usize, usize)) -> Result<Heads> {
    if q.2 != k.2 || k.1 == 0 || !q.1.is_multiple_of(k.1) {
        return Err(EngineError::Input(format!("q {q:?} and k {k:?} do not share a head geometry")));
    }
    Ok(Heads { n: q.0, k_len: k.0, n_heads: q.1, n_kv_heads: k.1, d_head: q.2 })
}

fn shape_error(e: ndarray::ShapeError) -> EngineError {
    EngineError::Gpu(format!("read back a tensor of the wrong size: {e}"))
}
