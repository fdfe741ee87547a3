//! AdamW (Loshchilov & Hutter) as `torch.optim.AdamW` computes it: decoupled weight decay
//! on matrices and embeddings only (rank ≥ 2; RMSNorm weights are not decayed),
//! bias-corrected first and second moments. Plus the learning-rate schedule (linear warm-up,
//! cosine decay) and global-norm gradient clipping.

use super::params::Params;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        }
    }
}

/// The optimizer state: step count and both moments, named like the parameters.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub config: AdamWConfig,
    pub t: u32,
    pub m: Params,
    pub v: Params,
}

impl AdamW {
    pub fn new(config: AdamWConfig, params: &Params) -> Self {
        Self {
            config,
            t: 0,
            m: params.zeros_like(),
            v: params.zeros_like(),
        }
    }

    /// One update of every parameter with learning rate `lr`:
    /// `w ← w·(1 − lr·λ)` (rank ≥ 2 only), `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
    /// `w ← w − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)`.
    pub fn step(&mut self, params: &mut Params, grads: &Params, lr: f32) {
        self.t += 1;
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.config;
        let bias1 = 1.0 - beta1.powi(self.t as i32);
        let bias2_sqrt = (1.0 - beta2.powi(self.t as i32)).sqrt();
        let step_size = lr / bias1;
        for (name, w) in params.iter_mut() {
            let (Some(g), Some(m), Some(v)) = (grads.get(name), self.m.get_mut(name), self.v.get_mut(name)) else {
                continue;
            };
            let decay = if w.ndim() >= 2 { 1.0 - lr * weight_decay } else { 1.0 };
            ndarray::Zip::from(w).and(g).and(m).and(v).for_each(|w, &g, m, v| {
                *w *= decay;
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                let denom = v.sqrt() / bias2_sqrt + eps;
                *w -= step_size * *m / denom;
            });
        }
    }
}

/// Linear warm-up from 0 to `peak` over `warmup` steps, then cosine decay to `min_lr` at
/// `total` steps. Step numbers count from 0.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrSchedule {
    pub peak: f32,
    pub warmup: usize,
    pub total: usize,
    pub min_lr: f32,
}

impl LrSchedule {
    pub fn constant(lr: f32) -> Self {
        Self {
            peak: lr,
            warmup: 0,
            total: 0,
            min_lr: lr,
        }
    }

    pub fn lr(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.peak * (step + 1) as f32 / self.warmup as f32;
        }
        if self.total <= self.warmup {
            return self.peak;
        }
        let progress = ((step - self.warmup) as f32 / (self.total - self.warmup) as f32).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f32::consts::PI * progress).cos());
        self.min_lr + (self.peak - self.min_lr) * cosine
    }
}

/// Scales the gradients so their global L2 norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_global_norm(grads: &mut Params, max_norm: f32) -> f32 {
    let norm = grads.global_norm();
    if max_norm > 0.0 && norm > max_norm {
        grads.scale(max_norm / (norm + 1e-6));
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let s = LrSchedule { peak: 1.0, warmup: 10, total: 110, min_lr: 0.1 };
        assert!((s.lr(0) - 0.1).abs() < 1e-6);
        assert!((s.lr(9) - 1.0).abs() < 1e-6);
        assert!((s.lr(60) - 0.55).abs() < 1e-5);
        assert!((s.lr(110) - 0.1).abs() < 1e-6);
        assert!(s.lr(30) > s.lr(80));
        assert_eq!(LrSchedule::constant(0.5).lr(1000), 0.5);
    }

    #[test]
    fn clipping_caps_the_global_norm() {
        let mut g = Params::default();
        g.insert("a", ndarray::arr1(&[3.0f32, 4.0]).into_dyn());
        assert_eq!(clip_global_norm(&mut g, 10.0), 5.0);
        assert_eq!(g.global_norm(), 5.0);
        clip_global_norm(&mut g, 1.0);
        assert!((g.global_norm() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn first_step_moves_each_weight_by_about_lr_and_decays_only_matrices() {
        let mut p = Params::default();
        p.insert("m", ndarray::Array2::<f32>::ones((2, 2)).into_dyn());
        p.insert("v", ndarray::Array1::<f32>::ones(2).into_dyn());
        let mut g = p.zeros_like();
        for (_, t) in g.iter_mut() {
            t.fill(0.5);
        }
        let mut opt = AdamW::new(AdamWConfig { weight_decay: 0.5, ..Default::default() }, &p);
        opt.step(&mut p, &g, 0.1);
        // Bias correction makes the first step exactly lr·sign(g).
        assert!((p.get("v").unwrap()[[0]] - 0.9).abs() < 1e-6);
        assert!((p.get("m").unwrap()[[0, 0]] - (0.95 - 0.1)).abs() < 1e-6);
    }
}
