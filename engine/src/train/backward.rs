//! The backward pass as a story: the forward program (`Program::new(arch)`) run in reverse,
//! one step per forward op, each turning the gradient of the op's output into the gradients
//! of its inputs and of its weights. It reads only the forward `Trace` (every hook captured),
//! so the forward code exists once, in the CPU executor; the family's switches (`Arch`) pick
//! the norm, the MLP, the positions and the objective, as they do going forward.
//!
//! Gradients of activations are recorded in a second `Trace` under the same hook names
//! (`grads.get(blocks.1.attn.hook_pattern)` = ∂loss/∂pattern); gradients of parameters under
//! their canonical names (`Params`). A tied embedding gets both of its uses summed. The block
//! ops are in `backward_block.rs`.

use ndarray::{Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis};

use super::grad_acts::{activation_backward, bias_backward};
use super::grad_norms::layernorm_backward;
use super::grad_ops as g;
use super::loss::{NextTokenLoss, masked_lm_loss, next_token_loss};
use super::params::{EMBED, Params};
use super::precision::Precision;
use crate::error::{EngineError, Result};
use crate::exec::cpu::ops;
use crate::exec::tensor::Tensor;
use crate::exec::trace::Trace;
use crate::load::arch::{Arch, NormKind};
use crate::load::config::LlamaConfig;
use crate::program::hooks::{BlockHook, HookKey};
use crate::program::op::{LayerOp, Step};

/// What the model is trained to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Objective {
    /// Predict every next token (causal LMs: `labels = input_ids`).
    NextToken,
    /// Predict the tokens behind the masks (BERT): one label per position, −100 where a
    /// position is not scored.
    MaskedLm { labels: Vec<i64> },
}

pub(crate) const POSITIONS: &str = "model.embed_positions.weight";
pub(crate) const TOKEN_TYPES: &str = "model.embed_token_types.weight";

/// The reverse program: the forward steps from `probs` (the loss) back to `embed`.
pub fn backward_program(arch: &Arch) -> Vec<Step> {
    crate::program::step::Program::new(arch)
        .steps()
        .iter()
        .copied()
        .rev()
        .filter(|s| *s != Step::Sample)
        .collect()
}

/// One backward pass in progress; `step()` runs the next op.
pub struct Backward<'a> {
    pub(super) c: &'a LlamaConfig,
    pub(super) arch: Arch,
    pub(super) params: &'a Params,
    pub(super) fwd: &'a Trace,
    objective: Objective,
    pub(super) inv_freq: Vec<f32>,
    pub(super) inv_freq_local: Option<Vec<f32>>,
    pub(super) longrope: Option<crate::load::longrope::LongRope>,
    pub(super) precision: Precision,
    program: Vec<Step>,
    next: usize,
    // The running gradients, named by the forward tensor they are the gradient of.
    pub(super) dlogits: Array2<f32>, // [pos, vocab]
    pub(super) dx: Array2<f32>,      // [pos, d_model]   the residual stream
    pub(super) dh: Array2<f32>,      // [pos, d_model]   input of the current sublayer
    pub(super) dout: Array2<f32>,    // [pos, d_model]   what the current sublayer wrote
    pub(super) dpost: Array2<f32>,   // [pos, d_mlp]
    pub(super) dgate: Array2<f32>,   // [pos, d_mlp]
    pub(super) dup: Array2<f32>,     // [pos, d_mlp]
    pub(super) dz: Array3<f32>,      // [pos, n_heads, d_head]
    pub(super) dpattern: Array3<f32>, // [n_heads, q_pos, k_pos]
    pub(super) dscores: Array3<f32>, // [n_heads, q_pos, k_pos]
    pub(super) dq: Array3<f32>,      // [pos, n_heads, d_head]
    pub(super) dk: Array3<f32>,      // [pos, n_kv_heads, d_head]
    pub(super) dv: Array3<f32>,      // [pos, n_kv_heads, d_head]
    /// Set by the first step.
    pub loss: Option<NextTokenLoss>,
    /// ∂loss/∂parameter under canonical names.
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

/// Forward trace in, every gradient of the next-token loss out.
pub fn backward(c: &LlamaConfig, params: &Params, fwd: &Trace, precision: Precision) -> Result<Gradients> {
    backward_for(c, params, fwd, precision, &Objective::NextToken)
}

/// Forward trace in, every gradient of `objective`'s loss out.
pub fn backward_for(c: &LlamaConfig, params: &Params, fwd: &Trace, precision: Precision, objective: &Objective) -> Result<Gradients> {
    let mut b = Backward::new(c, params, fwd, precision).with_objective(objective.clone());
    b.run_to_end()?;
    b.finish()
}

impl<'a> Backward<'a> {
    pub fn new(c: &'a LlamaConfig, params: &'a Params, fwd: &'a Trace, precision: Precision) -> Self {
        let e2 = || Array2::<f32>::zeros((0, 0));
        let e3 = || Array3::<f32>::zeros((0, 0, 0));
        let arch = c.arch();
        Self {
            c,
            program: backward_program(&arch),
            arch,
            params,
            fwd,
            objective: Objective::NextToken,
            inv_freq: c.inv_freq(),
            inv_freq_local: c.inv_freq_local(),
            longrope: c.longrope(),
            precision,
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

    /// The loss this pass differentiates (next-token by default).
    pub fn with_objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
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
        let loss = self.loss.ok_or_else(|| EngineError::Input("the backward pass has not run".into()))?;
        Ok(Gradients { loss, params: self.param_grads, hooks: self.hook_grads, recorded: self.recorded })
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
            Step::MlmTransform => self.mlm_transform()?,
            Step::LnFinal => self.ln_final()?,
            Step::Layer(l, op) => self.layer_op(l, op)?,
            Step::EmbedNorm => self.embed_norm()?,
            Step::TokenTypeEmbed => self.token_types()?,
            Step::PosEmbed => self.positions()?,
            Step::Embed => self.embed()?,
            Step::Sample => {}
        }
        self.next += 1;
        self.hook_grads.last_step = Some(step);
        let new = self.hook_grads.keys().filter(|k| !before.contains(k)).collect();
        self.recorded.push((step, new));
        Ok(Some(step))
    }

    fn loss(&mut self) -> Result<()> {
        // next token: ∂loss/∂logits[i] = (softmax(logits[i]) − onehot(ids[i+1])) / (T − 1)
        // masked LM:  the same at the scored positions, over their count; 0 elsewhere
        let logits = self.f2(HookKey::Logits)?; // [pos, vocab]
        let loss = match &self.objective {
            Objective::NextToken => next_token_loss(logits, &self.fwd.token_ids)?,
            Objective::MaskedLm { labels } => masked_lm_loss(logits, labels)?,
        };
        self.dlogits = loss.dlogits.clone(); // [pos, vocab]
        self.precision.round(&mut self.dlogits);
        self.record(HookKey::Logits, self.dlogits.clone().into_dyn());
        self.loss = Some(loss);
        Ok(())
    }

    /// What the output head reads: the final norm's output, or BERT's MLM transform.
    fn head_input(&self) -> HookKey {
        if self.arch.mlm_head { HookKey::MlmTransform } else { HookKey::LnFinalNormalized }
    }

    fn logits(&mut self) -> Result<()> {
        // logits = h · Wᵀ (+ b)  (W = lm_head, or the embedding when tied)
        // dh = dlogits · W;  dW += dlogitsᵀ · h;  db = Σ_pos dlogits
        let key = self.head_input();
        let h = self.f2(key)?; // [pos, d_model]
        let w = self.params.lm_head()?; // [vocab, d_model]
        self.dh = g::linear_dx(self.dlogits.view(), w); // [pos, d_model]
        let dw = g::linear_dw(self.dlogits.view(), h); // [vocab, d_model]
        self.acc(self.params.lm_head_name(), dw)?;
        self.acc_if_present("mlm.decoder.bias", bias_backward(self.dlogits.view()))?;
        self.precision.round(&mut self.dh);
        self.record(key, self.dh.clone().into_dyn());
        Ok(())
    }

    fn mlm_transform(&mut self) -> Result<()> {
        // t = x · W_denseᵀ + b;  a = act(t);  y = LayerNorm(a)  (t, a recomputed from x)
        // da = LayerNorm backward;  dt = da ⊙ act'(t);  dx = dt · W_dense
        let x = self.f2(self.last_resid_post())?; // [pos, d_model]
        let t = ops::add_bias(ops::linear(x, self.params.mat("mlm.dense.weight")?)?, Some(&self.params.vector("mlm.dense.bias")?.to_owned()))?; // [pos, d_model]
        let act = self.arch.head_activation();
        let a = ops::activate(t.view(), act); // [pos, d_model]
        let scale = ops::ln_scale(a.view(), self.c.eps()); // [pos]
        let (da, dg, db) = layernorm_backward(self.dh.view(), a.view(), scale.view(), self.params.vector("mlm.norm.weight")?);
        self.acc("mlm.norm.weight", dg)?;
        self.acc("mlm.norm.bias", db)?;
        let dt = activation_backward(da.view(), t.view(), act); // [pos, d_model]
        self.dx = g::linear_dx(dt.view(), self.params.mat("mlm.dense.weight")?); // [pos, d_model]
        self.acc("mlm.dense.weight", g::linear_dw(dt.view(), x))?;
        self.acc("mlm.dense.bias", bias_backward(dt.view()))?;
        self.precision.round(&mut self.dx);
        self.record(self.last_resid_post(), self.dx.clone().into_dyn());
        Ok(())
    }

    fn ln_final(&mut self) -> Result<()> {
        // h = norm(x) ⊙ g (+ b)  ⇒  dx by the norm's backward;  dg = Σ_pos dh ⊙ n
        let x = self.f2(self.last_resid_post())?; // [pos, d_model]
        let scale = self.f1(HookKey::LnFinalScale)?; // [pos]
        self.dx = self.norm_backward(self.dh.clone().view(), x, scale, "model.norm")?; // [pos, d_model]
        self.precision.round(&mut self.dx);
        if self.c.n_layers() > 0 {
            self.record(self.last_resid_post(), self.dx.clone().into_dyn());
        }
        Ok(())
    }

    pub(super) fn last_resid_post(&self) -> HookKey {
        HookKey::Block(self.c.n_layers().saturating_sub(1), BlockHook::ResidPost)
    }

    fn embed_norm(&mut self) -> Result<()> {
        // BERT: x = E[ids] + P[pos] + T[types];  resid_pre(0) = LayerNorm(x)
        let mut x = self.f2(HookKey::Embed)?.to_owned(); // [pos, d_model]
        x += &self.f2(HookKey::PosEmbed)?;
        x += &self.f2(HookKey::TokenTypeEmbed)?;
        let scale = self.f1(HookKey::EmbedLnScale)?; // [pos]
        self.record(HookKey::EmbedLnNormalized, self.dx.clone().into_dyn());
        let (dx, dg, db) = layernorm_backward(self.dx.view(), x.view(), scale, self.params.vector("model.embed_norm.weight")?);
        self.acc("model.embed_norm.weight", dg)?;
        self.acc("model.embed_norm.bias", db)?;
        self.dx = dx; // [pos, d_model]
        self.precision.round(&mut self.dx);
        Ok(())
    }

    fn token_types(&mut self) -> Result<()> {
        // every token is type 0: dT[0] = Σ_pos dx
        let rows = self.params.mat(TOKEN_TYPES)?.nrows();
        let mut dt = Array2::<f32>::zeros((rows, self.dx.ncols())); // [types, d_model]
        dt.row_mut(0).assign(&self.dx.sum_axis(Axis(0)));
        self.acc(TOKEN_TYPES, dt)?;
        self.record(HookKey::TokenTypeEmbed, self.dx.clone().into_dyn());
        Ok(())
    }

    fn positions(&mut self) -> Result<()> {
        // x[p] += P[offset + p]  ⇒  dP[offset + p] = dx[p]
        let rows = self.params.mat(POSITIONS)?.nrows();
        let at: Vec<u32> = (0..self.dx.nrows()).map(|p| (self.fwd.pos_offset + p) as u32).collect();
        self.acc(POSITIONS, g::embed_backward(self.dx.view(), &at, rows))?;
        self.record(HookKey::PosEmbed, self.dx.clone().into_dyn());
        Ok(())
    }

    fn embed(&mut self) -> Result<()> {
        // x[p] = E[ids[p]] · s  ⇒  d(E[ids[p]]) = dx[p] · s;  dE[t] += Σ_{p: ids[p] = t}
        // (tied: added to the head's use)
        let mut de_rows = self.dx.clone(); // [pos, d_model]
        if let Some(s) = self.arch.embed_scale {
            de_rows.mapv_inplace(|v| v * s);
        }
        let de = g::embed_backward(de_rows.view(), &self.fwd.token_ids, self.c.vocab_size); // [vocab, d_model]
        self.acc(EMBED, de)?;
        self.record(HookKey::Embed, de_rows.into_dyn());
        Ok(())
    }

    /// The family's norm (`NAME.weight`, and `NAME.bias` for LayerNorm) backward: the
    /// weight's (and bias's) gradients accumulated, the input's returned.
    pub(super) fn norm_backward(&mut self, dy: ArrayView2<f32>, x: ArrayView2<f32>, scale: ArrayView1<f32>, name: &str) -> Result<Array2<f32>> {
        let (weight, bias) = (format!("{name}.weight"), format!("{name}.bias"));
        let params = self.params;
        let gw = params.vector(&weight)?;
        match self.arch.norm {
            NormKind::Rms => {
                let (dx, dg) = g::rmsnorm_backward(dy, x, scale, gw);
                self.acc(&weight, dg)?;
                Ok(dx)
            }
            NormKind::Layer => {
                let (dx, dg, db) = layernorm_backward(dy, x, scale, gw);
                self.acc(&weight, dg)?;
                self.acc_if_present(&bias, db)?;
                Ok(dx)
            }
        }
    }

    pub(super) fn acc<D: ndarray::Dimension>(&mut self, name: &str, grad: ndarray::Array<f32, D>) -> Result<()> {
        let slot = self.param_grads.get_mut(name).ok_or_else(|| EngineError::Input(format!("parameter `{name}` is missing")))?;
        let grad = grad.into_dyn();
        if slot.shape() != grad.shape() {
            return Err(EngineError::Input(format!("gradient of `{name}` has shape {:?}, the parameter {:?}", grad.shape(), slot.shape())));
        }
        *slot += &grad;
        Ok(())
    }

    /// Accumulates into an optional parameter (a bias the family may not have).
    pub(super) fn acc_if_present<D: ndarray::Dimension>(&mut self, name: &str, grad: ndarray::Array<f32, D>) -> Result<()> {
        if self.params.get(name).is_some() { self.acc(name, grad) } else { Ok(()) }
    }

    fn need(&self, key: HookKey) -> Result<&'a Tensor> {
        self.fwd
            .get(key)
            .ok_or_else(|| EngineError::Input(format!("the backward pass needs `{key}` from the forward pass: capture every hook")))
    }

    pub(super) fn f1(&self, key: HookKey) -> Result<ArrayView1<'a, f32>> {
        self.need(key)?.data.view().into_dimensionality().map_err(shape_err)
    }

    pub(super) fn f2(&self, key: HookKey) -> Result<ArrayView2<'a, f32>> {
        self.need(key)?.as_2d().ok_or_else(|| EngineError::Input(format!("`{key}` is not 2-D")))
    }

    pub(super) fn f3(&self, key: HookKey) -> Result<ArrayView3<'a, f32>> {
        self.need(key)?.as_3d().ok_or_else(|| EngineError::Input(format!("`{key}` is not 3-D")))
    }

    /// A hook's gradient, under the hook's own dims from the op table.
    pub(super) fn record(&mut self, key: HookKey, a: ndarray::ArrayD<f32>) {
        let dims = crate::program::op::hook_spec(key.kind()).map_or_else(Vec::new, |(_, spec)| spec.dims.to_vec());
        if let Some(t) = Tensor::new(dims, a) {
            self.hook_grads.insert(key, t);
        }
    }
}

fn shape_err(e: ndarray::ShapeError) -> EngineError {
    EngineError::Input(format!("unexpected tensor shape in the forward trace: {e}"))
}

/// The gradient formula of a backward step, for a person reading the step-through (the same
/// formulas as the comments, in plain text).
pub fn formula(step: Step) -> &'static str {
    match step {
        Step::Probs | Step::Sample => "dlogits[i] = (softmax(logits[i]) − onehot(target[i])) / (number scored);  loss = mean of −log p(target)",
        Step::Logits => "dh = dlogits · W_U;   dW_U += dlogits^T · h   (tied: W_U is the embedding)",
        Step::MlmTransform => "t = W·x + b, a = gelu(t), y = LayerNorm(a):   da by LayerNorm's backward;  dt = da ⊙ gelu'(t);  dx = dt · W",
        Step::LnFinal | Step::Layer(_, LayerOp::Ln1 | LayerOp::Ln2) => {
            "RMSNorm n = x / s: dx = (dn − n · mean(dn ⊙ n)) / s;   LayerNorm n = (x − μ) / s: dx = (dn − mean(dn) − n · mean(dn ⊙ n)) / s;   dg = Σ_pos dh ⊙ n, db = Σ_pos dh"
        }
        Step::EmbedNorm => "LayerNorm of the summed embeddings: dx = (dn − mean(dn) − n · mean(dn ⊙ n)) / s;  each embedding table gets dx",
        Step::TokenTypeEmbed => "every token is type 0:  dT[0] = Σ_pos dx",
        Step::PosEmbed => "dP[p] = dx[p]:  each position's row learns from its own place only",
        Step::Embed => "dE[t] += dx[p] (× the embedding scale) for every position p holding token t (tied: added to the output head's share)",
        Step::Layer(_, op) => super::backward_block::formula(op),
    }
}
