//! GGUF blocks read as they lie: a tile of quantized weight rows dequantized into a small f32
//! buffer that stays in cache, for the row-dot kernel to multiply (activations stay f32).

use crate::load::matrix::QuantRows;

/// Rows `j..j + n` of `q` (`k` values each) as f32 in `out` (`n · k` values, row-major).
pub fn dequantize_rows(q: QuantRows<'_>, j: usize, n: usize, k: usize, out: &mut Vec<f32>) {
    out.clear();
    let mut row = Vec::with_capacity(k);
    for r in j..j + n {
        q.dequantize_row(r, k, &mut row);
        out.extend_from_slice(&row);
    }
}
