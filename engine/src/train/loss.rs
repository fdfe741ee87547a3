//! The training objective: mean next-token cross-entropy over positions `0..T−1`
//! (transformers' `labels=input_ids`). Every position predicts the token after it; no
//! labels but the text itself, which is why language-model pre-training is self-supervised.
//! BERT's masked-LM loss scores only the positions given a label (the masked ones).

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1};

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
    let per_position: Vec<f32> = (0..t - 1)
        .map(|i| cross_entropy_row(logits.row(i), ids[i + 1] as usize, n, dlogits.row_mut(i)))
        .collect();
    Ok(NextTokenLoss {
        loss: mean(&per_position),
        per_position,
        dlogits,
    })
}

/// The label transformers' losses skip (`ignore_index`): BERT's unmasked positions.
pub const IGNORE_LABEL: i64 = -100;

/// BERT's masked-LM loss (`BertForMaskedLM(labels=…)`): mean cross-entropy over the
/// positions whose label is not −100; `dlogits = (softmax − onehot) / n_scored` on those
/// rows and 0 on the rest. `per_position` has one value per scored position, in order.
/// Nothing is shifted: each position predicts its own (masked) token.
pub fn masked_lm_loss(logits: ArrayView2<f32>, labels: &[i64]) -> Result<NextTokenLoss> {
    let (t, vocab) = logits.dim();
    if labels.len() != t {
        return Err(EngineError::Input(format!("masked-LM loss needs one label per logits row ({t} rows, {} labels)", labels.len())));
    }
    if let Some((p, &bad)) = labels.iter().enumerate().find(|&(_, &l)| l != IGNORE_LABEL && !(0..vocab as i64).contains(&l)) {
        return Err(EngineError::Input(format!("label {bad} at position {p} is outside the vocabulary ({vocab}) and is not {IGNORE_LABEL}")));
    }
    let scored: Vec<usize> = (0..t).filter(|&p| labels[p] != IGNORE_LABEL).collect();
    if scored.is_empty() {
        return Err(EngineError::Input(format!("masked-LM loss has no scored position: all {t} labels are {IGNORE_LABEL}")));
    }
    let n = scored.len() as f32;
    let mut dlogits = Array2::<f32>::zeros((t, vocab)); // [pos, vocab]
    let per_position: Vec<f32> = scored
        .iter()
        .map(|&p| cross_entropy_row(logits.row(p), labels[p] as usize, n, dlogits.row_mut(p)))
        .collect();
    Ok(NextTokenLoss {
        loss: mean(&per_position),
        per_position,
        dlogits,
    })
}

/// `−log softmax(row)[target]`, and `(softmax(row) − onehot(target)) / n` written into `d`;
/// log-sum-exp in f64 around the row's max so large logits neither overflow nor round away.
fn cross_entropy_row(row: ArrayView1<f32>, target: usize, n: f32, mut d: ArrayViewMut1<f32>) -> f32 {
    let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f64 = row.iter().map(|&v| f64::from((v - max).exp())).sum();
    let log_z = f64::from(max) + sum.ln();
    for (j, o) in d.iter_mut().enumerate() {
        let p = (f64::from(row[j]) - log_z).exp() as f32;
        *o = (p - if j == target { 1.0 } else { 0.0 }) / n;
    }
    (log_z - f64::from(row[target])) as f32
}

fn mean(values: &[f32]) -> f32 {
    (values.iter().map(|&l| f64::from(l)).sum::<f64>() / values.len() as f64) as f32
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

    #[test]
    fn masked_lm_uniform_logits_score_only_labelled_rows() {
        let logits = Array2::<f32>::zeros((4, 8));
        let l = masked_lm_loss(logits.view(), &[-100, 3, -100, 5]).unwrap();
        assert!((l.loss - 8f32.ln()).abs() < 1e-6);
        assert_eq!(l.per_position.len(), 2);
        // Two scored rows: each target entry is (1/8 − 1)/2, the others (1/8)/2.
        assert!((l.dlogits[[1, 3]] - (1.0 / 8.0 - 1.0) / 2.0).abs() < 1e-7);
        assert!((l.dlogits[[3, 0]] - (1.0 / 8.0) / 2.0).abs() < 1e-7);
        for p in [0, 2] {
            assert!(l.dlogits.row(p).iter().all(|&v| v == 0.0), "ignored row {p} has a gradient");
        }
    }

    #[test]
    fn masked_lm_hand_computed_case() {
        // Row 0 ignored; row 1 logits [0, ln 3] → p = [1/4, 3/4], label 0 → loss ln 4;
        // row 2 logits [ln 2, 0] → p = [2/3, 1/3], label 0 → loss ln(3/2).
        let logits = array![[9.0f32, -9.0], [0.0, 3f32.ln()], [2f32.ln(), 0.0]];
        let l = masked_lm_loss(logits.view(), &[-100, 0, 0]).unwrap();
        assert!((l.per_position[0] - 4f32.ln()).abs() < 1e-6);
        assert!((l.per_position[1] - 1.5f32.ln()).abs() < 1e-6);
        assert!((l.loss - (4f32.ln() + 1.5f32.ln()) / 2.0).abs() < 1e-6);
        assert!((l.dlogits[[1, 0]] - (0.25 - 1.0) / 2.0).abs() < 1e-6);
        assert!((l.dlogits[[2, 1]] - (1.0 / 3.0) / 2.0).abs() < 1e-6);
        assert!(l.dlogits.row(0).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn masked_lm_errors_name_the_problem() {
        let logits = Array2::<f32>::zeros((3, 4));
        let message = |labels: &[i64]| match masked_lm_loss(logits.view(), labels) {
            Err(EngineError::Input(m)) => m,
            other => panic!("expected an input error for {labels:?}, got {other:?}"),
        };
        assert!(message(&[1, 2]).contains("3 rows, 2 labels"));
        assert!(message(&[-100, -100, -100]).contains("no scored position"));
        let too_big = message(&[-100, 4, 0]);
        assert!(too_big.contains("label 4 at position 1"), "{too_big}");
        assert!(message(&[0, 1, -1]).contains("label -1 at position 2"));
    }
}
