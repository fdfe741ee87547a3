//! Turning the last position's logits into a next token: greedy, temperature, top-k, top-p,
//! seeded. `distribution` is what the Output view shows, so the bars and the draw agree.

/// How the next token is chosen. `temperature <= 0` means greedy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1.0 = off).
    pub top_p: f32,
    pub seed: u64,
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self::greedy()
    }
}

/// softmax(logits / t), max-subtracted, the sum in f64; `t <= 0` means 1.
pub fn softmax_with_temperature(logits: &[f32], temperature: f32) -> Vec<f32> {
    let mut probs = logits.to_vec();
    softmax_in_place(&mut probs, temperature);
    probs
}

/// [`softmax_with_temperature`] over a row in place (the CPU executor's `hook_probs`).
pub fn softmax_in_place(row: &mut [f32], temperature: f32) {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in row.iter_mut() {
        *v = ((*v - max) / t).exp();
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Index of the largest logit; the lowest index wins ties, as torch's argmax does.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// The renormalized distribution sampling draws from, sorted by probability (descending).
/// Greedy gives the single argmax with probability 1.
pub fn distribution(logits: &[f32], params: &SamplingParams) -> Vec<(u32, f32)> {
    if params.is_greedy() {
        return vec![(argmax(logits), 1.0)];
    }
    let probs = softmax_with_temperature(logits, params.temperature);
    let mut ranked: Vec<(u32, f32)> = probs
        .iter()
        .enumerate()
        .map(|(i, &p)| (i as u32, p))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if params.top_k > 0 {
        ranked.truncate(params.top_k);
    }
    if params.top_p < 1.0 {
        let mut total = 0.0f32;
        let keep = ranked
            .iter()
            .position(|&(_, p)| {
                total += p;
                total >= params.top_p
            })
            .map_or(ranked.len(), |i| i + 1);
        ranked.truncate(keep.max(1));
    }
    let sum: f32 = ranked.iter().map(|&(_, p)| p).sum();
    for entry in &mut ranked {
        entry.1 /= sum;
    }
    ranked
}

/// A seeded sampler (SplitMix64: small, fast, reproducible across platforms).
#[derive(Debug, Clone)]
pub struct Sampler {
    pub params: SamplingParams,
    state: u64,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        Self {
            params,
            state: params.seed,
        }
    }

    fn next_f32(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let dist = distribution(logits, &self.params);
        if dist.len() == 1 {
            return dist[0].0;
        }
        let r = self.next_f32();
        let mut acc = 0.0;
        for &(id, p) in &dist {
            acc += p;
            if r < acc {
                return id;
            }
        }
        dist.last().map_or(0, |&(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGITS: [f32; 5] = [1.0, 3.0, 2.0, 0.5, 2.9];

    #[test]
    fn greedy_picks_argmax() {
        let mut s = Sampler::new(SamplingParams::greedy());
        assert_eq!(s.sample(&LOGITS), 1);
    }

    #[test]
    fn top_k_keeps_k_and_renormalizes() {
        let p = SamplingParams { temperature: 1.0, top_k: 2, top_p: 1.0, seed: 1 };
        let d = distribution(&LOGITS, &p);
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 4]);
        assert!((d.iter().map(|x| x.1).sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn top_p_keeps_smallest_set_reaching_p() {
        let probs = softmax_with_temperature(&LOGITS, 1.0);
        let p = SamplingParams { temperature: 1.0, top_k: 0, top_p: probs[1] + 1e-3, seed: 1 };
        assert_eq!(distribution(&LOGITS, &p).len(), 2);
    }

    #[test]
    fn temperature_sharpens_and_seed_reproduces() {
        let cold = softmax_with_temperature(&LOGITS, 0.1);
        let hot = softmax_with_temperature(&LOGITS, 10.0);
        assert!(cold[1] > 0.7 && hot[1] < 0.3);
        let p = SamplingParams { temperature: 1.5, top_k: 0, top_p: 1.0, seed: 42 };
        let a: Vec<u32> = { let mut s = Sampler::new(p); (0..50).map(|_| s.sample(&LOGITS)).collect() };
        let b: Vec<u32> = { let mut s = Sampler::new(p); (0..50).map(|_| s.sample(&LOGITS)).collect() };
        assert_eq!(a, b);
        assert!(a.iter().any(|&t| t != 1), "sampling at T=1.5 never left the argmax");
    }
}
