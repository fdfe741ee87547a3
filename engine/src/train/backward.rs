//! The backward pass as a story: the forward program (`Step::program`) run in reverse, one
//! step per forward op, each turning the gradient of the op's output into the gradients of
//! its inputs and of its weights. It reads only the forward `Trace` (every hook captured),
//! so the forward code exists once, in the CPU executor.
//!
//! Gradients of activations are recorded in a second `Trace` under the same hook names
//! (`grads.get(blocks.1.attn.hook_pattern)` = ∂loss/∂pattern); gradients of parameters under
//! their checkpoint names. A tied embedding gets both of its uses summed.

use ndarray::{Array2, Array3, ArrayView1, ArrayView2, ArrayView3};

use super::grad_ops as g;
use super::loss::{NextTokenLoss, next_token_loss};
use super::params::{EMBED, NORM, Params, layer_param};
use super::precision::Precision;
use crate::load::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey};
use crate::program::op::{LayerOp, Step};
use crate::exec::tensor::Tensor;
use crate::exec::trace::Trace;

/// The reverse program: the forward steps from `probs` (the loss) back to `embed`.
pub fn backward_program(n_layers: usize) -> Vec<Step> {
    crate::program::step::Program::llama(n_layers)
        .steps()
        .iter()
        .copied()
        .rev()
        .filter(|s| *s != Step::Sample)
        .collect()
}

/// One backward pass in progress; `step()` runs the next op.
pub struct Backward<'a> {
    c: &'a LlamaConfig,
    params: &'a Params,
    fwd: &'a Trace,
    inv_freq: Vec<f32>,
    precision: Precision,
    program: Vec<Step>,
    next: usize,
    // The running gradients, named by the forward tensor they are the gradient of.
    dlogits: Array2<f32>, // [pos, vocab]
    dx: Array2<f32>,      // [pos, d_model]   the residual stream
    dh: Array2<f32>,      // [pos, d_model]   normalized input of the current sublayer
    dout: Array2<f32>,    // [pos, d_model]   what the current sublayer wrote
    dpost: Array2<f32>,   // [pos, d_mlp]
    dgate: Array2<f32>,   // [pos, d_mlp]
    dup: Array2<f32>,     // [pos, d_mlp]
    dz: Array3<f32>,      // [pos, n_heads, d_head]
    dpattern: Array3<f32>, // [n_heads, q_pos, k_pos]
    dscores: Array3<f32>, // [n_heads, q_pos, k_pos]
    dq: Array3<f32>,      // [pos, n_heads, d_head]
    dk: Array3<f32>,      // [pos, n_kv_heads, d_head]
    dv: Array3<f32>,      // [pos, n_kv_heads, d_head]
    /// Set by the first step.
    pub loss: Option<NextTokenLoss>,
    /// ∂loss/∂parameter under checkpoint names.
    pub param_grads: Params,
    /// ∂loss/∂activation under hook names.
    pub hook_grads: Trace,
    /// Which hook gradients each backward step recorded, in the order they ran.
    pub recorded: Vec<(Step, Vec<HookKey>)>,
}

/// The gradients of one sequence.
pub struct Gradients {
    pub loss: NextTokenLoss,
    pub params: Params,
    pub hooks: Trace,
    /// Which hook gradients each backward step recorded, in the order they ran.
    pub recorded: Vec<(Step, Vec<HookKey>)>,
}

/// Forward trace in, every gradient out.
pub fn backward(
    c: &LlamaConfig,
    params: &Params,
    fwd: &Trace,
    precision: Precision,
) -> Result<Gradients> {
    let mut b = Backward::new(c, params, fwd, precision);
    b.run_to_end()?;
    b.finish()
}

impl<'a> Backward<'a> {
    pub fn new(c: &'a LlamaConfig, params: &'a Params, fwd: &'a Trace, precision: Precision) -> Self {
        let e2 = || Array2::<f32>::zeros((0, 0));
        let e3 = || Array3::<f32>::zeros((0, 0, 0));
        Self {
            c,
            params,
            fwd,
            inv_freq: c.inv_freq(),
            precision,
            program: backward_program(c.n_layers()),
            next: 0,
            dlogits: e2(),
            dx: e2(),
            dh: e2(),
            dout: e2(),
            dpost: e2(),
            dgate: e2(),
            dup: e2(),
            dz: e3(),
            dpattern: e3(),
            dscores: e3(),
            dq: e3(),
            dk: e3(),
            dv: e3(),
            loss: None,
            param_grads: params.zeros_like(),
            hook_grads: Trace::new(fwd.token_ids.clone(), fwd.pos_offset, 1.0),
            recorded: Vec::new(),
        }
    }

    /// The forward step whose backward runs next.
    pub fn next_step(&self) -> Option<Step> {
        self.program.get(self.next).copied()
    }

    pub fn program(&self) -> &[Step] {
        &self.program
    }

    pub fn run_to_end(&mut self) -> Result<()> {
        while self.step()?.is_some() {}
        Ok(())
    }

    pub fn finish(self) -> Result<Gradients> {
        let loss = self
            .loss
            .ok_or_else(|| EngineError::Input("the backward pass has not run".into()))?;
        Ok(Gradients {
            loss,
            params: self.param_grads,
            hooks: self.hook_grads,
            recorded: self.recorded,
        })
    }

    /// Runs the backward of one forward step.
    pub fn step(&mut self) -> Result<Option<Step>> {
        let Some(step) = self.next_step() else {
            return Ok(None);
        };
        let before: std::collections::BTreeSet<HookKey> = self.hook_grads.keys().collect();
        match step {
            Step::Probs => self.loss()?,
            Step::Logits => self.logits()?,
            Step::LnFinal => self.ln_final()?,
            Step::Layer(l, op) => self.layer_op(l, op)?,
            Step::Embed => self.embed()?,
            Step::Sample => {}
            Step::PosEmbed | Step::TokenTypeEmbed | Step::EmbedNorm | Step::MlmTransform => return Err(llama_only(step)),
        }
        self.next += 1;
        self.hook_grads.last_step = Some(step);
        let new = self.hook_grads.keys().filter(|k| !before.contains(k)).collect();
        self.recorded.push((step, new));
        Ok(Some(step))
    }

    fn loss(&mut self) -> Result<()> {
        // loss = mean_i −log softmax(logits[i])[ids[i+1]]
        // ∂loss/∂logits[i] = (softmax(logits[i]) − onehot(ids[i+1])) / (T − 1)
        let logits = self.f2(HookKey::Logits)?; // [pos, vocab]
        let loss = next_token_loss(logits, &self.fwd.token_ids)?;
        self.dlogits = loss.dlogits.clone(); // [pos, vocab]
        self.precision.round(&mut self.dlogits);
        self.record(HookKey::Logits, self.dlogits.clone().into_dyn());
        self.loss = Some(loss);
        Ok(())
    }

    fn logits(&mut self) -> Result<()> {
        // logits = h · Wᵀ (W = lm_head, or the embedding when tied)
        // dh = dlogits · W;  dW += dlogitsᵀ · h
        let h = self.f2(HookKey::LnFinalNormalized)?; // [pos, d_model]
        let w = self.params.lm_head()?; // [vocab, d_model]
        self.dh = g::linear_dx(self.dlogits.view(), w); // [pos, d_model]
        let dw = g::linear_dw(self.dlogits.view(), h); // [vocab, d_model]
        self.acc(self.params.lm_head_name(), dw)?;
        self.precision.round(&mut self.dh);
        self.record(HookKey::LnFinalNormalized, self.dh.clone().into_dyn());
        Ok(())
    }

    fn ln_final(&mut self) -> Result<()> {
        // h = x / s ⊙ g  ⇒  dx = (dn − n·mean(dn⊙n)) / s with dn = dh⊙g;  dg = Σ_pos dh⊙n
        let last = self.c.n_layers().saturating_sub(1);
        let x = self.f2(HookKey::Block(last, BlockHook::ResidPost))?; // [pos, d_model]
        let scale = self.f1(HookKey::LnFinalScale)?; // [pos]
        let (dx, dg) = g::rmsnorm_backward(self.dh.view(), x, scale, self.params.vector(NORM)?);
        self.acc(NORM, dg)?;
        self.dx = dx; // [pos, d_model]
        self.precision.round(&mut self.dx);
        if self.c.n_layers() > 0 {
            self.record(HookKey::Block(last, BlockHook::ResidPost), self.dx.clone().into_dyn());
        }
        Ok(())
    }

    fn layer_op(&mut self, l: usize, op: LayerOp) -> Result<()> {
        let key = |h: BlockHook| HookKey::Block(l, h);
        let w = |leaf: &str| layer_param(l, leaf);
        let group = self.c.group_size();
        let r = self.precision;
        match op {
            LayerOp::MlpAdd => {
                // x_post = x_mid + mlp_out  ⇒  d(mlp_out) = dx_post; dx_mid starts as dx_post
                self.dout = self.dx.clone(); // [pos, d_model]
                self.record(key(BlockHook::MlpOut), self.dout.clone().into_dyn());
            }
            LayerOp::Down => {
                // mlp_out = post · W_downᵀ  ⇒  dpost = dout · W_down;  dW_down = doutᵀ · post
                let post = self.f2(key(BlockHook::MlpPost))?; // [pos, d_mlp]
                let wd = self.params.mat(&w("mlp.down_proj"))?; // [d_model, d_mlp]
                self.dpost = g::linear_dx(self.dout.view(), wd); // [pos, d_mlp]
                let dw = g::linear_dw(self.dout.view(), post); // [d_model, d_mlp]
                self.acc(&w("mlp.down_proj"), dw)?;
                r.round(&mut self.dpost);
                self.record(key(BlockHook::MlpPost), self.dpost.clone().into_dyn());
            }
            LayerOp::SiluMul => {
                // post = silu(gate) ⊙ up  ⇒  dup = dpost ⊙ silu(gate);
                // dgate = dpost ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate)))
                let gate = self.f2(key(BlockHook::MlpPre))?; // [pos, d_mlp]
                let up = self.f2(key(BlockHook::MlpPreLinear))?; // [pos, d_mlp]
                let (dgate, dup) = g::silu_mul_backward(self.dpost.view(), gate, up);
                (self.dgate, self.dup) = (dgate, dup); // [pos, d_mlp] each
                r.round(&mut self.dgate);
                r.round(&mut self.dup);
                self.record(key(BlockHook::MlpPre), self.dgate.clone().into_dyn());
                self.record(key(BlockHook::MlpPreLinear), self.dup.clone().into_dyn());
            }
            LayerOp::Up => {
                // up = h · W_upᵀ  ⇒  dh = dup · W_up;  dW_up = dupᵀ · h
                let h = self.f2(key(BlockHook::Ln2Normalized))?; // [pos, d_model]
                self.dh = g::linear_dx(self.dup.view(), self.params.mat(&w("mlp.up_proj"))?); // [pos, d_model]
                self.acc(&w("mlp.up_proj"), g::linear_dw(self.dup.view(), h))?;
            }
            LayerOp::Gate => {
                // gate = h · W_gateᵀ  ⇒  dh += dgate · W_gate;  dW_gate = dgateᵀ · h
                let h = self.f2(key(BlockHook::Ln2Normalized))?; // [pos, d_model]
                self.dh += &g::linear_dx(self.dgate.view(), self.params.mat(&w("mlp.gate_proj"))?); // [pos, d_model]
                self.acc(&w("mlp.gate_proj"), g::linear_dw(self.dgate.view(), h))?;
                r.round(&mut self.dh);
                self.record(key(BlockHook::Ln2Normalized), self.dh.clone().into_dyn());
            }
            LayerOp::Ln2 => {
                // h = rmsnorm(x_mid) ⊙ g  ⇒  dx_mid += (dn − n·mean(dn⊙n)) / s;  dg = Σ_pos dh⊙n
                let x = self.f2(key(BlockHook::ResidMid))?; // [pos, d_model]
                let scale = self.f1(key(BlockHook::Ln2Scale))?; // [pos]
                let gw = self.params.vector(&w("post_attention_layernorm"))?; // [d_model]
                let (dx, dg) = g::rmsnorm_backward(self.dh.view(), x, scale, gw);
                self.dx += &dx; // [pos, d_model]
                self.acc(&w("post_attention_layernorm"), dg)?;
                r.round(&mut self.dx);
                self.record(key(BlockHook::ResidMid), self.dx.clone().into_dyn());
            }
            LayerOp::AttnAdd => {
                // x_mid = x_pre + attn_out  ⇒  d(attn_out) = dx_mid; dx_pre starts as dx_mid
                self.dout = self.dx.clone(); // [pos, d_model]
                self.record(key(BlockHook::AttnOut), self.dout.clone().into_dyn());
            }
            LayerOp::OProj => {
                // attn_out = merge(z) · W_oᵀ  ⇒  dz = split(dout · W_o);  dW_o = doutᵀ · merge(z)
                let z = self.f3(key(BlockHook::Z))?; // [pos, n_heads, d_head]
                let z_flat = g::merge_heads(z)?; // [pos, n_heads·d_head]
                let wo = self.params.mat(&w("self_attn.o_proj"))?; // [d_model, n_heads·d_head]
                self.dz = g::split_heads(g::linear_dx(self.dout.view(), wo), self.c.n_heads())?; // [pos, n_heads, d_head]
                self.acc(&w("self_attn.o_proj"), g::linear_dw(self.dout.view(), z_flat.view()))?;
                r.round(&mut self.dz);
                self.record(key(BlockHook::Z), self.dz.clone().into_dyn());
            }
            LayerOp::Z => {
                // z[i,h] = Σ_j p[h,i,j]·v[j,g(h)]  ⇒  dp[h,i,j] = dz[i,h]·v[j,g(h)];
                // dv[j,g] = Σ_{h∈g} Σ_i p[h,i,j]·dz[i,h]
                let p = self.f3(key(BlockHook::Pattern))?; // [n_heads, q_pos, k_pos]
                let v = self.f3(key(BlockHook::V))?; // [pos, n_kv_heads, d_head]
                let (dp, dv) = g::attend_backward(self.dz.view(), p, v, group);
                (self.dpattern, self.dv) = (dp, dv);
                r.round(&mut self.dpattern);
                r.round(&mut self.dv);
                self.record(key(BlockHook::Pattern), self.dpattern.clone().into_dyn());
                self.record(key(BlockHook::V), self.dv.clone().into_dyn());
            }
            LayerOp::Softmax => {
                // p = softmax(s)  ⇒  ds = p ⊙ (dp − Σ_k p_k·dp_k)
                let p = self.f3(key(BlockHook::Pattern))?; // [n_heads, q_pos, k_pos]
                self.dscores = g::softmax_backward(self.dpattern.view(), p); // [n_heads, q_pos, k_pos]
                r.round(&mut self.dscores);
                self.record(key(BlockHook::AttnScores), self.dscores.clone().into_dyn());
            }
            LayerOp::Mask => {
                // masked = where(j ≤ i, s, −∞)  ⇒  ds_raw = ds where j ≤ i, else 0 (already 0:
                // p = 0 there; kept explicit because the mask is what cuts the future off)
                let raw = self.f3(key(BlockHook::AttnScores))?; // [n_heads, q_pos, k_pos]
                ndarray::Zip::from(&mut self.dscores)
                    .and(raw)
                    .for_each(|d, &s| if s == f32::NEG_INFINITY { *d = 0.0 });
                self.record(key(BlockHook::RawScores), self.dscores.clone().into_dyn());
            }
            LayerOp::Scores => {
                // s[h,i,j] = q[i,h]·k[j,g(h)]/√d_head  ⇒  dq = ds·k/√d_head;  dk = Σ_{h∈g} dsᵀ·q/√d_head
                let q = self.f3(key(BlockHook::RotQ))?; // [pos, n_heads, d_head]
                let k = self.f3(key(BlockHook::RotK))?; // [pos, n_kv_heads, d_head]
                let (dq, dk) = g::scores_backward(self.dscores.view(), q, k, group);
                (self.dq, self.dk) = (dq, dk);
                r.round(&mut self.dq);
                r.round(&mut self.dk);
                self.record(key(BlockHook::RotQ), self.dq.clone().into_dyn());
                self.record(key(BlockHook::RotK), self.dk.clone().into_dyn());
            }
            LayerOp::Rope => {
                // rot = R(θ)·x per pair (i, i+half)  ⇒  dx = R(−θ)·drot
                let off = self.fwd.pos_offset;
                self.dq = g::rope_backward(self.dq.view(), &self.inv_freq, off); // [pos, n_heads, d_head]
                self.dk = g::rope_backward(self.dk.view(), &self.inv_freq, off); // [pos, n_kv_heads, d_head]
                r.round(&mut self.dq);
                r.round(&mut self.dk);
                self.record(key(BlockHook::Q), self.dq.clone().into_dyn());
                self.record(key(BlockHook::K), self.dk.clone().into_dyn());
            }
            LayerOp::V | LayerOp::K | LayerOp::Q => {
                // q|k|v = h · Wᵀ  ⇒  dh += d(q|k|v) · W;  dW = d(q|k|v)ᵀ · h
                // (backward order V, K, Q: the first of them to run starts dh afresh)
                let h = self.f2(key(BlockHook::Ln1Normalized))?; // [pos, d_model]
                let (grad, leaf) = match op {
                    LayerOp::V => (&self.dv, "self_attn.v_proj"),
                    LayerOp::K => (&self.dk, "self_attn.k_proj"),
                    _ => (&self.dq, "self_attn.q_proj"),
                };
                let flat = g::merge_heads(grad.view())?; // [pos, heads·d_head]
                let dh = g::linear_dx(flat.view(), self.params.mat(&w(leaf))?); // [pos, d_model]
                let dw = g::linear_dw(flat.view(), h); // [heads·d_head, d_model]
                if op == LayerOp::V {
                    self.dh = dh;
                } else {
                    self.dh += &dh;
                }
                self.acc(&w(leaf), dw)?;
                if op == LayerOp::Q {
                    r.round(&mut self.dh);
                    self.record(key(BlockHook::Ln1Normalized), self.dh.clone().into_dyn());
                }
            }
            LayerOp::Ln1 => {
                // h = rmsnorm(x_pre) ⊙ g  ⇒  dx_pre += (dn − n·mean(dn⊙n)) / s;  dg = Σ_pos dh⊙n
                let x = self.f2(key(BlockHook::ResidPre))?; // [pos, d_model]
                let scale = self.f1(key(BlockHook::Ln1Scale))?; // [pos]
                let gw = self.params.vector(&w("input_layernorm"))?; // [d_model]
                let (dx, dg) = g::rmsnorm_backward(self.dh.view(), x, scale, gw);
                self.dx += &dx; // [pos, d_model]
                self.acc(&w("input_layernorm"), dg)?;
                r.round(&mut self.dx);
                self.record(key(BlockHook::ResidPre), self.dx.clone().into_dyn());
                if l > 0 {
                    // The residual entering block l is the one leaving block l − 1.
                    self.record(HookKey::Block(l - 1, BlockHook::ResidPost), self.dx.clone().into_dyn());
                }
            }
            other => return Err(llama_only(Step::Layer(l, other))),
        }
        Ok(())
    }

    fn embed(&mut self) -> Result<()> {
        // x[p] = E[ids[p]]  ⇒  dE[t] += Σ_{p: ids[p] = t} dx[p]  (tied: added to the head's use)
        let de = g::embed_backward(self.dx.view(), &self.fwd.token_ids, self.c.vocab_size); // [vocab, d_model]
        self.acc(EMBED, de)?;
        self.record(HookKey::Embed, self.dx.clone().into_dyn());
        Ok(())
    }

    fn acc<D: ndarray::Dimension>(&mut self, name: &str, grad: ndarray::Array<f32, D>) -> Result<()> {
        let slot = self
            .param_grads
            .get_mut(name)
            .ok_or_else(|| EngineError::Input(format!("parameter `{name}` is missing")))?;
        let grad = grad.into_dyn();
        if slot.shape() != grad.shape() {
            return Err(EngineError::Input(format!(
                "gradient of `{name}` has shape {:?}, the parameter {:?}",
                grad.shape(),
                slot.shape()
            )));
        }
        *slot += &grad;
        Ok(())
    }

    fn need(&self, key: HookKey) -> Result<&'a Tensor> {
        self.fwd.get(key).ok_or_else(|| {
            EngineError::Input(format!(
                "the backward pass needs `{key}` from the forward pass: capture every hook"
            ))
        })
    }

    fn f1(&self, key: HookKey) -> Result<ArrayView1<'a, f32>> {
        self.need(key)?.data.view().into_dimensionality().map_err(shape_err)
    }

    fn f2(&self, key: HookKey) -> Result<ArrayView2<'a, f32>> {
        self.need(key)?.as_2d().ok_or_else(|| EngineError::Input(format!("`{key}` is not 2-D")))
    }

    fn f3(&self, key: HookKey) -> Result<ArrayView3<'a, f32>> {
        self.need(key)?.as_3d().ok_or_else(|| EngineError::Input(format!("`{key}` is not 3-D")))
    }

    /// A hook's gradient, under the hook's own dims from the op table.
    fn record(&mut self, key: HookKey, a: ndarray::ArrayD<f32>) {
        let dims = crate::program::op::hook_spec(key.kind()).map_or_else(Vec::new, |(_, spec)| spec.dims.to_vec());
        if let Some(t) = Tensor::new(dims, a) {
            self.hook_grads.insert(key, t);
        }
    }
}

/// Training runs Llama-family models: another family's op has no backward yet.
fn llama_only(step: Step) -> EngineError {
    EngineError::Input(format!("`{step}` has no backward pass yet: training runs Llama-family models only"))
}

fn shape_err(e: ndarray::ShapeError) -> EngineError {
    EngineError::Input(format!("unexpected tensor shape in the forward trace: {e}"))
}

/// The gradient formula of a backward step, for a person reading the step-through (the same
/// formulas as the comments above, in plain text).
pub fn formula(step: Step) -> &'static str {
    match step {
        Step::Probs | Step::Sample => "dlogits[i] = (softmax(logits[i]) − onehot(token[i+1])) / (T − 1);  loss = mean of −log p(next token)",
        Step::Logits => "dh = dlogits · W_U;   dW_U += dlogits^T · h   (tied: W_U is the embedding)",
        Step::LnFinal | Step::Layer(_, LayerOp::Ln1 | LayerOp::Ln2) => {
            "n = x / s,  dn = dh ⊙ g:   dx += (dn − n · mean(dn ⊙ n)) / s;   dg = Σ_pos dh ⊙ n"
        }
        Step::Layer(_, LayerOp::MlpAdd | LayerOp::AttnAdd) => "x_out = x_in + sublayer:   d(sublayer) = dx_out;  dx_in starts as dx_out",
        Step::Layer(_, LayerOp::Down) => "dpost = dout · W_down;   dW_down = dout^T · post",
        Step::Layer(_, LayerOp::SiluMul) => "dup = dpost ⊙ silu(gate);   dgate = dpost ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate)))",
        Step::Layer(_, LayerOp::Up) => "dh = dup · W_up;   dW_up = dup^T · h",
        Step::Layer(_, LayerOp::Gate) => "dh += dgate · W_gate;   dW_gate = dgate^T · h",
        Step::Layer(_, LayerOp::OProj) => "dz = dout · W_o (split into heads);   dW_o = dout^T · z",
        Step::Layer(_, LayerOp::Z) => "dp[h,i,j] = dz[i,h] · v[j];   dv[j] = Σ_h Σ_i p[h,i,j] · dz[i,h]",
        Step::Layer(_, LayerOp::Softmax) => "ds = p ⊙ (dp − Σ_k p_k · dp_k)   (0 wherever p = 0: the masked future)",
        Step::Layer(_, LayerOp::Mask) => "masked scores (j > i) get no gradient: the future cannot be learned from",
        Step::Layer(_, LayerOp::Scores) => "dq = ds · k / √d_head;   dk = Σ_heads ds^T · q / √d_head",
        Step::Layer(_, LayerOp::Rope) => "a rotation's gradient is the rotation back: angle −θ on each pair (i, i + d_head/2)",
        Step::Layer(_, LayerOp::V) => "dh = dv · W_v;   dW_v = dv^T · h",
        Step::Layer(_, LayerOp::K) => "dh += dk · W_k;   dW_k = dk^T · h",
        Step::Layer(_, LayerOp::Q) => "dh += dq · W_q;   dW_q = dq^T · h",
        Step::Embed => "dE[t] += dx[p] for every position p holding token t (tied: added to the output head's share)",
        _ => "no backward yet: training runs Llama-family models only",
    }
}
