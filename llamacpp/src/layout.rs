//! A node read back from llama.cpp turned into the tensor Glassbox's executors record for the
//! same hook: same named dims, same shape (the op table's), same order of values.

use glassbox_engine::exec::tensor::Tensor;
use glassbox_engine::program::op::hook_spec;
use glassbox_engine::program::op_table::PassDims;
use glassbox_engine::LlamaConfig;

use crate::capture::Node;
use crate::names::Layout;

/// The node as the hook's tensor, or why its shape does not fit.
pub fn to_tensor(node: Node, c: &LlamaConfig, dims: PassDims) -> Result<Tensor, String> {
    let key = node.mapped.key;
    let (_, spec) = hook_spec(key.kind()).ok_or_else(|| format!("`{key}` has no op-table entry"))?;
    let shape = spec.shape(c, dims);
    let want: usize = shape.iter().product();
    let values = match node.mapped.layout {
        Layout::Rows => node.values,
        Layout::Rows2Halves => unpermute_halves(node.values, c.d_head()),
        Layout::Pattern => cut_keys(&node.values, node.ne, dims.k_len),
    };
    if values.len() != want {
        return Err(format!("llama.cpp's node for `{key}` has {} values (ne {:?}); Glassbox's hook is {shape:?}", values.len(), node.ne));
    }
    Tensor::from_vec(spec.dims.to_vec(), &shape, values).ok_or_else(|| format!("`{key}`: shape {shape:?} does not fit its dims"))
}

/// Each head's dims from llama.cpp's interleaved order (`2i + half`) back to the checkpoint's
/// halves (`half · d/2 + i`), as Glassbox's loader un-permutes the weights.
fn unpermute_halves(values: Vec<f32>, d_head: usize) -> Vec<f32> {
    let half = d_head / 2;
    if half == 0 || !values.len().is_multiple_of(d_head) {
        return values;
    }
    let mut out = vec![0f32; values.len()];
    for (src, dst) in values.chunks_exact(d_head).zip(out.chunks_exact_mut(d_head)) {
        for i in 0..half {
            dst[i] = src[2 * i];
            dst[half + i] = src[2 * i + 1];
        }
    }
    out
}

/// `ne = [k_padded, q, heads]` → `[heads, q, k_len]`: the first `k_len` keys of each row (the
/// cache's cells in position order; the padding is masked to zero probability).
fn cut_keys(values: &[f32], ne: [usize; 4], k_len: usize) -> Vec<f32> {
    let k_padded = ne[0];
    if k_padded < k_len {
        return Vec::new();
    }
    values.chunks_exact(k_padded.max(1)).flat_map(|row| row[..k_len].iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_come_back_in_checkpoint_order() {
        // One head of 4 dims interleaved as (a0, b0, a1, b1).
        assert_eq!(unpermute_halves(vec![0., 10., 1., 11.], 4), vec![0., 1., 10., 11.]);
    }

    #[test]
    fn padded_keys_are_cut() {
        let v: Vec<f32> = (0..8).map(|x| x as f32).collect(); // k_padded 4, 2 rows
        assert_eq!(cut_keys(&v, [4, 2, 1, 1], 3), vec![0., 1., 2., 4., 5., 6.]);
    }
}
