//! The backward of one decoder block's ops, in reverse program order: the residual adds
//! (and BERT's add-then-norm), the sublayer-output norms (Gemma's sandwich, OLMo 2), the MLP
//! (gated or not, with its biases), attention (scores at the `Arch`'s scale, the mask, RoPE
//! per layer type, QK-norm per head or over all heads, q/k/v biases) and the pre-norms.

use ndarray::ArrayView2;

use super::backward::Backward;
use super::grad_acts::{activation_backward, bias_backward, gelu_mul_backward};
use super::grad_norms::{rms_all_heads_backward, rms_heads_backward};
use super::grad_ops as g;
use super::params::layer_param;
use crate::error::{EngineError, Result};
use crate::load::arch::MlpKind;
use crate::load::longrope::Rope;
use crate::program::hooks::{BlockHook as H, HookKey};
use crate::program::op::LayerOp;

/// Which sublayer of a block: its hooks and its norms' canonical names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sub {
    Attn,
    Mlp,
}

impl Sub {
    /// The residual stream the sublayer reads (and its pre-norm normalizes).
    fn resid_in(self) -> H {
        if self == Sub::Attn { H::ResidPre } else { H::ResidMid }
    }
    /// The pre-norm's scale and output.
    fn pre_norm(self) -> (H, H) {
        if self == Sub::Attn { (H::Ln1Scale, H::Ln1Normalized) } else { (H::Ln2Scale, H::Ln2Normalized) }
    }
    /// The norm around this sublayer: before it (pre-norm), or after the add (post-norm).
    fn norm_name(self) -> &'static str {
        if self == Sub::Attn { "input_layernorm" } else { "post_attention_layernorm" }
    }
    /// What the sublayer's last projection writes.
    fn out(self) -> H {
        if self == Sub::Attn { H::AttnOut } else { H::MlpOut }
    }
    /// The norm on the sublayer's output (sandwich, OLMo 2): scale, output, weight name.
    fn out_norm(self) -> (H, H, &'static str) {
        if self == Sub::Attn { (H::Ln1PostScale, H::Ln1PostNormalized, "attn_out_norm") } else { (H::Ln2PostScale, H::Ln2PostNormalized, "mlp_out_norm") }
    }
    /// Post-norm: the sum before its norm, and the norm's scale.
    fn add_norm(self) -> (H, H) {
        if self == Sub::Attn { (H::ResidMidPreNorm, H::Ln1Scale) } else { (H::ResidPostPreNorm, H::Ln2Scale) }
    }
}

fn norm_prefix(l: usize, leaf: &str) -> String {
    format!("model.layers.{l}.{leaf}")
}

fn bias_name(l: usize, leaf: &str) -> String {
    format!("model.layers.{l}.{leaf}.bias")
}

impl Backward<'_> {
    pub(super) fn layer_op(&mut self, l: usize, op: LayerOp) -> Result<()> {
        use LayerOp as O;
        match op {
            O::MlpAdd => self.residual_add(l, Sub::Mlp),
            O::MlpAddNorm => self.add_norm(l, Sub::Mlp)?,
            O::MlpPostNorm => self.out_norm(l, Sub::Mlp)?,
            O::Down => self.down(l)?,
            O::SiluMul | O::GeluMul => self.gated(l, op)?,
            O::Act => self.act(l)?,
            O::Up | O::Gate | O::MlpIn => self.mlp_in(l, op)?,
            O::Ln2 => self.pre_norm(l, Sub::Mlp)?,
            O::AttnAdd => self.residual_add(l, Sub::Attn),
            O::AttnAddNorm => self.add_norm(l, Sub::Attn)?,
            O::AttnPostNorm => self.out_norm(l, Sub::Attn)?,
            O::OProj => self.o_proj(l)?,
            O::Z => self.z(l)?,
            O::Softmax => self.softmax(l)?,
            O::Mask => self.mask(l)?,
            O::Scores => self.scores(l)?,
            O::Rope => self.rope(l)?,
            O::QkNorm => self.qk_norm(l)?,
            O::V | O::K | O::Q => self.qkv(l, op)?,
            O::Ln1 => self.pre_norm(l, Sub::Attn)?,
            O::BlockIn => self.block_in(l),
        }
        Ok(())
    }

    fn residual_add(&mut self, l: usize, sub: Sub) {
        // x_out = x_in + added  ⇒  d(added) = dx_out; dx_in starts as dx_out
        self.dout = self.dx.clone(); // [pos, d_model]
        let added = if self.arch.placement.normed_output() { sub.out_norm().1 } else { sub.out() };
        self.record(HookKey::Block(l, added), self.dout.clone().into_dyn());
    }

    fn add_norm(&mut self, l: usize, sub: Sub) -> Result<()> {
        // x_out = norm(x_in + out)  ⇒  d(sum) by the norm's backward; both addends get it
        let (sum_key, scale_key) = sub.add_norm();
        let x = self.f2(HookKey::Block(l, sum_key))?; // [pos, d_model]
        let scale = self.f1(HookKey::Block(l, scale_key))?; // [pos]
        let mut dsum = self.norm_backward(self.dx.clone().view(), x, scale, &norm_prefix(l, sub.norm_name()))?; // [pos, d_model]
        self.precision.round(&mut dsum);
        self.record(HookKey::Block(l, sum_key), dsum.clone().into_dyn());
        self.record(HookKey::Block(l, sub.out()), dsum.clone().into_dyn());
        self.dout = dsum.clone();
        self.dx = dsum;
        Ok(())
    }

    fn out_norm(&mut self, l: usize, sub: Sub) -> Result<()> {
        // added = rmsnorm(out) ⊙ g  ⇒  d(out) by RMSNorm's backward;  dg = Σ_pos d(added) ⊙ n
        let (scale_key, _, leaf) = sub.out_norm();
        let x = self.f2(HookKey::Block(l, sub.out()))?; // [pos, d_model]
        let scale = self.f1(HookKey::Block(l, scale_key))?; // [pos]
        let name = layer_param(l, leaf);
        let (dx, dg) = g::rmsnorm_backward(self.dout.view(), x, scale, self.params.vector(&name)?);
        self.acc(&name, dg)?;
        self.dout = dx; // [pos, d_model]
        self.precision.round(&mut self.dout);
        self.record(HookKey::Block(l, sub.out()), self.dout.clone().into_dyn());
        Ok(())
    }

    fn down(&mut self, l: usize) -> Result<()> {
        // mlp_out = post · W_downᵀ (+ b)  ⇒  dpost = dout · W_down;  dW_down = doutᵀ · post
        let post = self.f2(HookKey::Block(l, H::MlpPost))?; // [pos, d_mlp]
        let name = layer_param(l, "mlp.down_proj");
        self.dpost = g::linear_dx(self.dout.view(), self.params.mat(&name)?); // [pos, d_mlp]
        self.acc(&name, g::linear_dw(self.dout.view(), post))?;
        self.acc_if_present(&bias_name(l, "mlp.down_proj"), bias_backward(self.dout.view()))?;
        self.precision.round(&mut self.dpost);
        self.record(HookKey::Block(l, H::MlpPost), self.dpost.clone().into_dyn());
        Ok(())
    }

    fn gated(&mut self, l: usize, op: LayerOp) -> Result<()> {
        // post = act(gate) ⊙ up  ⇒  dup = dpost ⊙ act(gate);  dgate = dpost ⊙ up ⊙ act'(gate)
        let gate = self.f2(HookKey::Block(l, H::MlpPre))?; // [pos, d_mlp]
        let up = self.f2(HookKey::Block(l, H::MlpPreLinear))?; // [pos, d_mlp]
        let (dgate, dup) = if op == LayerOp::SiluMul {
            g::silu_mul_backward(self.dpost.view(), gate, up)
        } else {
            gelu_mul_backward(self.dpost.view(), gate, up)
        };
        (self.dgate, self.dup) = (dgate, dup); // [pos, d_mlp] each
        self.precision.round(&mut self.dgate);
        self.precision.round(&mut self.dup);
        self.record(HookKey::Block(l, H::MlpPre), self.dgate.clone().into_dyn());
        self.record(HookKey::Block(l, H::MlpPreLinear), self.dup.clone().into_dyn());
        Ok(())
    }

    fn act(&mut self, l: usize) -> Result<()> {
        // post = act(pre)  ⇒  dpre = dpost ⊙ act'(pre)
        let MlpKind::Plain(act) = self.arch.mlp else {
            return Err(EngineError::Input("an ungated activation step in a gated MLP".into()));
        };
        let pre = self.f2(HookKey::Block(l, H::MlpPre))?; // [pos, d_mlp]
        self.dgate = activation_backward(self.dpost.view(), pre, act); // [pos, d_mlp]
        self.precision.round(&mut self.dgate);
        self.record(HookKey::Block(l, H::MlpPre), self.dgate.clone().into_dyn());
        Ok(())
    }

    /// What a sublayer's projections read: its pre-norm's output, or the residual stream.
    fn sublayer_input(&self, l: usize, sub: Sub) -> Result<ArrayView2<'_, f32>> {
        let key = if self.arch.placement.pre() { sub.pre_norm().1 } else { sub.resid_in() };
        self.f2(HookKey::Block(l, key))
    }

    fn mlp_in(&mut self, l: usize, op: LayerOp) -> Result<()> {
        // up = h · W_upᵀ, gate = h · W_gateᵀ (+ b)  ⇒  dh = dup · W_up + dgate · W_gate
        // (backward order up, gate: up starts dh afresh; an ungated MLP's one projection too)
        let h = self.sublayer_input(l, Sub::Mlp)?.to_owned(); // [pos, d_model]
        let (grad, leaf) = if op == LayerOp::Up { (self.dup.clone(), "mlp.up_proj") } else { (self.dgate.clone(), "mlp.gate_proj") };
        let name = layer_param(l, leaf);
        let dh = g::linear_dx(grad.view(), self.params.mat(&name)?); // [pos, d_model]
        self.acc(&name, g::linear_dw(grad.view(), h.view()))?;
        self.acc_if_present(&bias_name(l, leaf), bias_backward(grad.view()))?;
        if op == LayerOp::Gate { self.dh += &dh } else { self.dh = dh }
        if op != LayerOp::Up {
            self.sublayer_input_done(l, Sub::Mlp);
        }
        Ok(())
    }

    /// The sublayer's input gradient is whole: recorded at the pre-norm's output, or, where
    /// the sublayer read the residual stream itself, added to the stream's gradient.
    fn sublayer_input_done(&mut self, l: usize, sub: Sub) {
        self.precision.round(&mut self.dh);
        if self.arch.placement.pre() {
            self.record(HookKey::Block(l, sub.pre_norm().1), self.dh.clone().into_dyn());
        } else {
            self.dx += &self.dh;
            if sub == Sub::Mlp {
                self.record(HookKey::Block(l, H::ResidMid), self.dx.clone().into_dyn());
            }
        }
    }

    fn pre_norm(&mut self, l: usize, sub: Sub) -> Result<()> {
        // h = norm(x) ⊙ g (+ b)  ⇒  dx += the norm's backward of dh
        let (scale_key, _) = sub.pre_norm();
        let x = self.f2(HookKey::Block(l, sub.resid_in()))?; // [pos, d_model]
        let scale = self.f1(HookKey::Block(l, scale_key))?; // [pos]
        let dx = self.norm_backward(self.dh.clone().view(), x, scale, &norm_prefix(l, sub.norm_name()))?; // [pos, d_model]
        self.dx += &dx;
        self.precision.round(&mut self.dx);
        self.record(HookKey::Block(l, sub.resid_in()), self.dx.clone().into_dyn());
        if sub == Sub::Attn {
            self.record_previous_resid_post(l);
        }
        Ok(())
    }

    fn block_in(&mut self, l: usize) {
        // A block with no pre-norm: its residual input's gradient is complete here.
        self.record(HookKey::Block(l, H::ResidPre), self.dx.clone().into_dyn());
        self.record_previous_resid_post(l);
    }

    /// The residual entering block l is the one leaving block l − 1.
    fn record_previous_resid_post(&mut self, l: usize) {
        if l > 0 {
            self.record(HookKey::Block(l - 1, H::ResidPost), self.dx.clone().into_dyn());
        }
    }

    fn o_proj(&mut self, l: usize) -> Result<()> {
        // attn_out = merge(z) · W_oᵀ (+ b)  ⇒  dz = split(dout · W_o);  dW_o = doutᵀ · merge(z)
        let z = self.f3(HookKey::Block(l, H::Z))?; // [pos, n_heads, d_head]
        let z_flat = g::merge_heads(z)?; // [pos, n_heads·d_head]
        let name = layer_param(l, "self_attn.o_proj");
        self.dz = g::split_heads(g::linear_dx(self.dout.view(), self.params.mat(&name)?), self.c.n_heads())?; // [pos, n_heads, d_head]
        self.acc(&name, g::linear_dw(self.dout.view(), z_flat.view()))?;
        self.acc_if_present(&bias_name(l, "self_attn.o_proj"), bias_backward(self.dout.view()))?;
        self.precision.round(&mut self.dz);
        self.record(HookKey::Block(l, H::Z), self.dz.clone().into_dyn());
        Ok(())
    }

    fn z(&mut self, l: usize) -> Result<()> {
        // z[i,h] = Σ_j p[h,i,j]·v[j,g(h)]  ⇒  dp[h,i,j] = dz[i,h]·v[j,g(h)];  dv[j,g] = Σ_{h∈g} Σ_i p[h,i,j]·dz[i,h]
        let p = self.f3(HookKey::Block(l, H::Pattern))?; // [n_heads, q_pos, k_pos]
        let v = self.f3(HookKey::Block(l, H::V))?; // [pos, n_kv_heads, d_head]
        let (dp, dv) = g::attend_backward(self.dz.view(), p, v, self.c.group_size());
        (self.dpattern, self.dv) = (dp, dv);
        self.precision.round(&mut self.dpattern);
        self.precision.round(&mut self.dv);
        self.record(HookKey::Block(l, H::Pattern), self.dpattern.clone().into_dyn());
        self.record(HookKey::Block(l, H::V), self.dv.clone().into_dyn());
        Ok(())
    }

    fn softmax(&mut self, l: usize) -> Result<()> {
        // p = softmax(s)  ⇒  ds = p ⊙ (dp − Σ_k p_k·dp_k)
        let p = self.f3(HookKey::Block(l, H::Pattern))?; // [n_heads, q_pos, k_pos]
        self.dscores = g::softmax_backward(self.dpattern.view(), p); // [n_heads, q_pos, k_pos]
        self.precision.round(&mut self.dscores);
        self.record(HookKey::Block(l, H::AttnScores), self.dscores.clone().into_dyn());
        Ok(())
    }

    fn mask(&mut self, l: usize) -> Result<()> {
        // masked = where(visible, s, −∞)  ⇒  ds_raw = ds where visible, else 0 (already 0:
        // p = 0 there; kept explicit because the mask is what cuts those keys off)
        let masked = self.f3(HookKey::Block(l, H::AttnScores))?; // [n_heads, q_pos, k_pos]
        ndarray::Zip::from(&mut self.dscores).and(masked).for_each(|d, &s| {
            if s == f32::NEG_INFINITY {
                *d = 0.0;
            }
        });
        self.record(HookKey::Block(l, H::RawScores), self.dscores.clone().into_dyn());
        Ok(())
    }

    /// The q and k the scores read, and those RoPE rotated: the last of q → QK-norm → RoPE
    /// the block has.
    fn qk_keys(&self, after_rope: bool) -> (H, H) {
        if after_rope && self.arch.uses_rope() {
            (H::RotQ, H::RotK)
        } else if self.arch.qk_norm {
            (H::QNormed, H::KNormed)
        } else {
            (H::Q, H::K)
        }
    }

    fn scores(&mut self, l: usize) -> Result<()> {
        // s[h,i,j] = q[i,h]·k[j,g(h)]·c  ⇒  dq = ds·k·c;  dk = Σ_{h∈g} dsᵀ·q·c  (c: the score scale)
        let (qk, kk) = self.qk_keys(true);
        let q = self.f3(HookKey::Block(l, qk))?; // [pos, n_heads, d_head]
        let k = self.f3(HookKey::Block(l, kk))?; // [pos, n_kv_heads, d_head]
        let (dq, dk) = g::scores_backward(self.dscores.view(), q, k, self.c.group_size(), self.arch.score_scale);
        (self.dq, self.dk) = (dq, dk);
        self.precision.round(&mut self.dq);
        self.precision.round(&mut self.dk);
        self.record(HookKey::Block(l, qk), self.dq.clone().into_dyn());
        self.record(HookKey::Block(l, kk), self.dk.clone().into_dyn());
        Ok(())
    }

    fn rope(&mut self, l: usize) -> Result<()> {
        // rot = R(θ)·x per pair (i, i+half)  ⇒  dx = R(−θ)·drot  (the layer's own θ: Gemma's
        // sliding layers rotate by the local one; longrope picks its table by the pass's end)
        let local = self.arch.layers.get(l).is_some_and(|a| a.local_rope);
        let off = self.fwd.pos_offset;
        let end = off + self.dq.dim().0;
        let rope = match (&self.inv_freq_local, local) {
            (Some(f), true) => Rope::plain(f),
            _ => crate::load::longrope::pick(&self.inv_freq, self.longrope.as_ref(), end),
        };
        self.dq = g::rope_backward(self.dq.view(), rope, off); // [pos, n_heads, d_head]
        self.dk = g::rope_backward(self.dk.view(), rope, off); // [pos, n_kv_heads, d_head]
        self.precision.round(&mut self.dq);
        self.precision.round(&mut self.dk);
        let (qk, kk) = self.qk_keys(false);
        self.record(HookKey::Block(l, qk), self.dq.clone().into_dyn());
        self.record(HookKey::Block(l, kk), self.dk.clone().into_dyn());
        Ok(())
    }

    fn qk_norm(&mut self, l: usize) -> Result<()> {
        // q' = rmsnorm(q) ⊙ g per head (or over all heads: OLMo 2)  ⇒  RMSNorm's backward
        let eps = self.c.eps();
        let backward = if self.arch.qk_norm_whole { rms_all_heads_backward } else { rms_heads_backward };
        let (q, k) = (self.f3(HookKey::Block(l, H::Q))?, self.f3(HookKey::Block(l, H::K))?); // [pos, heads, d_head] each
        let (qn, kn) = (layer_param(l, "self_attn.q_norm"), layer_param(l, "self_attn.k_norm"));
        let (dq, dgq) = backward(self.dq.view(), q, self.params.vector(&qn)?, eps);
        let (dk, dgk) = backward(self.dk.view(), k, self.params.vector(&kn)?, eps);
        self.acc(&qn, dgq)?;
        self.acc(&kn, dgk)?;
        (self.dq, self.dk) = (dq, dk);
        self.precision.round(&mut self.dq);
        self.precision.round(&mut self.dk);
        self.record(HookKey::Block(l, H::Q), self.dq.clone().into_dyn());
        self.record(HookKey::Block(l, H::K), self.dk.clone().into_dyn());
        Ok(())
    }

    fn qkv(&mut self, l: usize, op: LayerOp) -> Result<()> {
        // q|k|v = h · Wᵀ (+ b)  ⇒  dh += d(q|k|v) · W;  dW = d(q|k|v)ᵀ · h;  db = Σ_pos d(q|k|v)
        // (backward order v, k, q: v starts dh afresh)
        let h = self.sublayer_input(l, Sub::Attn)?.to_owned(); // [pos, d_model]
        let (grad, leaf) = match op {
            LayerOp::V => (&self.dv, "self_attn.v_proj"),
            LayerOp::K => (&self.dk, "self_attn.k_proj"),
            _ => (&self.dq, "self_attn.q_proj"),
        };
        let flat = g::merge_heads(grad.view())?; // [pos, heads·d_head]
        let name = layer_param(l, leaf);
        let dh = g::linear_dx(flat.view(), self.params.mat(&name)?); // [pos, d_model]
        self.acc(&name, g::linear_dw(flat.view(), h.view()))?;
        self.acc_if_present(&bias_name(l, leaf), bias_backward(flat.view()))?;
        if op == LayerOp::V { self.dh = dh } else { self.dh += &dh }
        if op == LayerOp::Q {
            self.sublayer_input_done(l, Sub::Attn);
        }
        Ok(())
    }
}

/// The gradient formula of one block op's backward, in plain text.
pub fn formula(op: LayerOp) -> &'static str {
    use LayerOp as O;
    match op {
        O::MlpAdd | O::AttnAdd => "x_out = x_in + sublayer:   d(sublayer) = dx_out;  dx_in starts as dx_out",
        O::MlpAddNorm | O::AttnAddNorm => "x_out = LayerNorm(x_in + sublayer):   d(sum) by LayerNorm's backward;  both x_in and the sublayer get it",
        O::MlpPostNorm | O::AttnPostNorm => "added = RMSNorm(out) ⊙ g:   d(out) by RMSNorm's backward;  dg = Σ_pos d(added) ⊙ n",
        O::Down => "dpost = dout · W_down;   dW_down = dout^T · post;   db = Σ_pos dout",
        O::SiluMul => "dup = dpost ⊙ silu(gate);   dgate = dpost ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate)))",
        O::GeluMul => "dup = dpost ⊙ gelu(gate);   dgate = dpost ⊙ up ⊙ gelu'(gate)",
        O::Act => "dpre = dpost ⊙ act'(pre)   (ReLU: 1 where pre > 0, else 0;  GELU: Φ(pre) + pre·φ(pre))",
        O::Up => "dh = dup · W_up;   dW_up = dup^T · h",
        O::Gate => "dh += dgate · W_gate;   dW_gate = dgate^T · h",
        O::MlpIn => "dh = dpre · W_in;   dW_in = dpre^T · h;   db = Σ_pos dpre",
        O::OProj => "dz = dout · W_o (split into heads);   dW_o = dout^T · z",
        O::Z => "dp[h,i,j] = dz[i,h] · v[j];   dv[j] = Σ_h Σ_i p[h,i,j] · dz[i,h]",
        O::Softmax => "ds = p ⊙ (dp − Σ_k p_k · dp_k)   (0 wherever p = 0: the masked keys)",
        O::Mask => "masked scores get no gradient: a key the mask hides cannot be learned from",
        O::Scores => "dq = ds · k · c;   dk = Σ_heads ds^T · q · c   (c = the score scale, 1/√d_head)",
        O::Rope => "a rotation's gradient is the rotation back: angle −θ on each pair (i, i + d_head/2)",
        O::QkNorm => "q' = RMSNorm(q) ⊙ g:   dq by RMSNorm's backward (per head, or over all heads);  dg = Σ dq' ⊙ n",
        O::V => "dh = dv · W_v;   dW_v = dv^T · h;   db = Σ_pos dv",
        O::K => "dh += dk · W_k;   dW_k = dk^T · h",
        O::Q => "dh += dq · W_q;   dW_q = dq^T · h",
        O::Ln1 | O::Ln2 => "n = norm(x):   dx += the norm's backward of dh;   dg = Σ_pos dh ⊙ n",
        O::BlockIn => "the block's input: its gradient is the sum of what every path through the block sent back",
    }
}

