//! The training objective: mean next-token cross-entropy over positions `0..T−1`
//! (transformers' `labels=input_ids`). Every position predicts the token after it; no
//! labels but the text itself, which is why language-model pre-training is self-supervised.

use ndarray::{Array2, ArrayView2};

use crate::error::{EngineError, Result};

#[derive(Debug, Clone)]
pub struct NextTokenLoss {
    /// `mean_i −log softmax(logits[i])[ids[i+1]]` over `i = 0..T−1`.
    pub loss: f32,
    /// The same cross-entropy at each position `i` (predicting `ids[i+1]`), `T − 1` values.
    pub per_position: Vec<f32>,
    /// `∂loss/∂logits = (softmax(logits[i]) − onehot(ids[i+1])) / (T − 1)`; the last row,
    /// which predicts nothing, is 0.
    pub dlogits: Array2<f32>, // [pos, vocab]
}

/// Cross-entropy of each position against the next token, and its gradient.
pub fn next_token_loss(logits: ArrayView2<f32>, ids: &[u32]) -> Result<NextTokenLoss> {
    let (t, vocab) = logits.dim();
    if t != ids.len() || t < 2 {
        return Err(EngineError::Input(format!(
            "next-token loss needs at least 2 tokens and one logits row per token ({t} rows, {} ids)",
            ids.len()
        )));
    }
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(EngineError::Input(format!("token id {bad} is outside the vocabulary ({vocab})")));
    }
    let n = (t - 1) as f32;
    let mut dlogits = Array2::<f32>::zeros((t, vocab)); // [pos, vocab]
    let mut per_position = Vec::with_capacity(t - 1);
    for i in 0..t - 1 {
        let row = logits.row(i);
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f64 = row.iter().map(|&v| f64::from((v - max).exp())).sum();
        let log_z = f64::from(max) + sum.ln();
        let target = ids[i + 1] as usize;
        per_position.push((log_z - f64::from(row[target])) as f32);
        let mut d = dlogits.row_mut(i);
        for (j, o) in d.iter_mut().enumerate() {
            let p = (f64::from(row[j]) - log_z).exp() as f32;
            *o = (p - if j == target { 1.0 } else { 0.0 }) / n;
        }
    }
    let loss = (per_position.iter().map(|&l| f64::from(l)).sum::<f64>() / f64::from(n)) as f32;
    Ok(NextTokenLoss {
        loss,
        per_position,
        dlogits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn uniform_logits_give_ln_vocab_and_gradients_sum_to_zero() {
        let logits = Array2::<f32>::zeros((3, 8));
        let l = next_token_loss(logits.view(), &[1, 2, 3]).unwrap();
        assert!((l.loss - 8f32.ln()).abs() < 1e-6);
        for row in l.dlogits.outer_iter() {
            assert!(row.sum().abs() < 1e-6);
        }
        assert!((l.dlogits[[0, 2]] - (1.0 / 8.0 - 1.0) / 2.0).abs() < 1e-6);
        assert!(l.dlogits.row(2).iter().all(|&v| v == 0.0));
        let sharp = array![[0.0f32, 30.0], [0.0, 0.0]];
        assert!(next_token_loss(sharp.view(), &[0, 1]).unwrap().loss < 1e-6);
        assert!(next_token_loss(sharp.view(), &[0]).is_err());
    }
}
