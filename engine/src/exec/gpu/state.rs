//! GPU-resident state between steps: the activations of the pass in progress (grow-only
//! buffers, reused pass after pass so cached bind groups stay valid) and the KV cache.

use crate::load::config::LlamaConfig;
use crate::error::Result;
use crate::exec::gpu::context::GpuContext;

/// A storage buffer that is replaced by a larger one when a pass needs more.
pub struct Grow {
    label: &'static str,
    pub buf: wgpu::Buffer,
}

impl Grow {
    fn new(ctx: &GpuContext, label: &'static str) -> Result<Self> {
        Ok(Self { label, buf: ctx.storage(label, 16, wgpu::BufferUsages::empty())? })
    }

    /// Makes room for `bytes`; `true` if the buffer was replaced.
    fn ensure(&mut self, ctx: &GpuContext, bytes: u64) -> Result<bool> {
        if bytes <= self.buf.size() {
            return Ok(false);
        }
        ctx.check_size(self.label, bytes)?;
        // Powers of two so decoding token by token reallocates only log(n) times.
        let size = bytes.next_power_of_two().min(ctx.max_binding_bytes()).max(bytes);
        self.buf = ctx.storage(self.label, size, wgpu::BufferUsages::empty())?;
        Ok(true)
    }
}

/// What one pass needs room for.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// New tokens in this pass.
    pub n: usize,
    /// Keys visible to this pass: the cache before it plus `n`.
    pub k_len: usize,
    /// Rows of logits computed: `n` when logits or probs are captured, else 1.
    pub logit_rows: usize,
    pub probs: bool,
}

pub struct Activations {
    pub ids: Grow,    // [n] u32
    /// Absolute positions `pos_offset..` (learned positions gather their rows with them).
    pub pos_ids: Grow, // [n] u32
    /// Zeros: every token's type (BERT's token-type row 0).
    pub type_ids: Grow, // [n] u32
    pub cs: Grow,     // [n, d_head/2] (cos, sin)
    /// The sliding-window layers' table where their θ differs (Gemma 3).
    pub cs_local: Grow, // [n, d_head/2] (cos, sin)
    /// Where an in-place norm writes before its result is copied back (post-norm, sandwich
    /// norms, the embedding LayerNorm, the MLM head).
    pub tmp: Grow,    // [n, d_model]
    /// The MLM head's LayerNorm scale (not a hook).
    pub tmp_scale: Grow, // [n]
    /// Fills bindings a kernel mode does not read.
    pub dummy: Grow,
    pub x: Grow,      // [n, d_model]  residual stream
    pub h: Grow,      // [n, d_model]  normalized sublayer input
    pub scale: Grow,  // [n]  RMSNorm scale
    pub q: Grow,      // [n, n_heads, d_head]
    pub k: Grow,      // [n, n_kv_heads, d_head]
    pub v: Grow,      // [n, n_kv_heads, d_head]
    pub scores: Grow, // [n_heads, n, k_len]  raw → masked → pattern, in place
    pub z: Grow,      // [n, n_heads, d_head]
    pub out: Grow,    // [n, d_model]  what the current sublayer writes
    pub gate: Grow,   // [n, d_mlp]
    pub up: Grow,     // [n, d_mlp]
    pub post: Grow,   // [n, d_mlp]
    pub logits: Grow, // [logit_rows, vocab]
    pub probs: Grow,  // [1, vocab]  the last position's, only when captured
}

impl Activations {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        Ok(Self {
            ids: Grow::new(ctx, "ids")?,
            pos_ids: Grow::new(ctx, "position ids")?,
            type_ids: Grow::new(ctx, "token type ids")?,
            cs: Grow::new(ctx, "rope cos/sin")?,
            cs_local: Grow::new(ctx, "local rope cos/sin")?,
            tmp: Grow::new(ctx, "norm scratch")?,
            tmp_scale: Grow::new(ctx, "norm scratch scale")?,
            dummy: Grow::new(ctx, "unused binding")?,
            x: Grow::new(ctx, "residual stream")?,
            h: Grow::new(ctx, "normalized")?,
            scale: Grow::new(ctx, "rms scale")?,
            q: Grow::new(ctx, "q")?,
            k: Grow::new(ctx, "k")?,
            v: Grow::new(ctx, "v")?,
            scores: Grow::new(ctx, "attention scores")?,
            z: Grow::new(ctx, "z")?,
            out: Grow::new(ctx, "sublayer out")?,
            gate: Grow::new(ctx, "mlp gate")?,
            up: Grow::new(ctx, "mlp up")?,
            post: Grow::new(ctx, "mlp post")?,
            logits: Grow::new(ctx, "hook_logits")?,
            probs: Grow::new(ctx, "hook_probs")?,
        })
    }

    /// Grows what `s` needs; `true` if any buffer was replaced (cached bind groups are stale).
    pub fn ensure(&mut self, ctx: &GpuContext, c: &LlamaConfig, s: Sizes) -> Result<bool> {
        let f = |elements: usize| (elements * 4) as u64;
        let (n, d) = (s.n, c.d_model());
        let needs = [
            (&mut self.ids, f(n)),
            (&mut self.pos_ids, f(n)),
            (&mut self.type_ids, f(n)),
            (&mut self.cs, f(n * c.d_head())),
            (&mut self.cs_local, f(n * c.d_head())),
            (&mut self.tmp, f(n * d)),
            (&mut self.tmp_scale, f(n)),
            (&mut self.x, f(n * d)),
            (&mut self.h, f(n * d)),
            (&mut self.scale, f(n)),
            (&mut self.q, f(n * c.q_dim())),
            (&mut self.k, f(n * c.kv_dim())),
            (&mut self.v, f(n * c.kv_dim())),
            (&mut self.scores, f(c.n_heads() * n * s.k_len)),
            (&mut self.z, f(n * c.q_dim())),
            (&mut self.out, f(n * d)),
            (&mut self.gate, f(n * c.d_mlp())),
            (&mut self.up, f(n * c.d_mlp())),
            (&mut self.post, f(n * c.d_mlp())),
            (&mut self.logits, f(s.logit_rows * c.vocab_size)),
            (&mut self.probs, if s.probs { f(c.vocab_size) } else { 0 }),
        ];
        let mut replaced = false;
        for (grow, bytes) in needs {
            replaced |= grow.ensure(ctx, bytes)?;
        }
        Ok(replaced)
    }
}

/// Rotated keys and values per layer, `[capacity, n_kv_heads, d_head]`, with the number of
/// valid rows per layer (layers fill one by one as a pass runs, as on the CPU).
pub struct KvCache {
    pub k: Vec<wgpu::Buffer>,
    pub v: Vec<wgpu::Buffer>,
    pub len: Vec<usize>,
    capacity: usize,
    row_bytes: u64,
}

impl KvCache {
    pub fn new(ctx: &GpuContext, n_layers: usize, kv_dim: usize) -> Result<Self> {
        let mut cache = Self {
            k: Vec::new(),
            v: Vec::new(),
            len: vec![0; n_layers],
            capacity: 0,
            row_bytes: (kv_dim * 4) as u64,
        };
        cache.allocate(ctx, 64)?;
        Ok(cache)
    }

    fn allocate(&mut self, ctx: &GpuContext, rows: usize) -> Result<()> {
        let bytes = rows as u64 * self.row_bytes;
        ctx.check_size("KV cache (one layer)", bytes)?;
        let n_layers = self.len.len();
        let make = |kind: &str| -> Result<Vec<wgpu::Buffer>> {
            (0..n_layers)
                .map(|l| ctx.storage(&format!("{kind} cache {l}"), bytes, wgpu::BufferUsages::empty()))
                .collect()
        };
        let (k, v) = (make("k")?, make("v")?);
        if self.capacity > 0 {
            // Keep the rows already cached.
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            for l in 0..n_layers {
                let used = self.len[l] as u64 * self.row_bytes;
                if used == 0 {
                    continue;
                }
                encoder.copy_buffer_to_buffer(&self.k[l], 0, &k[l], 0, used);
                encoder.copy_buffer_to_buffer(&self.v[l], 0, &v[l], 0, used);
            }
            ctx.queue.submit([encoder.finish()]);
        }
        self.k = k;
        self.v = v;
        self.capacity = rows;
        Ok(())
    }

    /// Room for `rows` positions; `true` if the buffers were replaced.
    pub fn ensure(&mut self, ctx: &GpuContext, rows: usize) -> Result<bool> {
        if rows <= self.capacity {
            return Ok(false);
        }
        ctx.scoped("growing the KV cache", || self.allocate(ctx, rows.next_power_of_two()))??;
        Ok(true)
    }

    pub fn truncate(&mut self, len: usize) {
        for l in &mut self.len {
            *l = (*l).min(len);
        }
    }

    pub fn cached(&self) -> usize {
        self.len.last().copied().unwrap_or(0)
    }

    /// Bytes of the rows held, keys and values. Every layer keeps every position, sliding
    /// window or not: the kernels index keys by absolute position in one shared capacity
    /// (the buffers themselves are that capacity, a power of two, per layer).
    pub fn bytes(&self) -> usize {
        self.len.iter().map(|&l| 2 * l * self.row_bytes as usize).sum()
    }
}
