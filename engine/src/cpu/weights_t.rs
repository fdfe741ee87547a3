//! Transposed copies of the checkpoint's `[out, in]` weights for prefill (see [`WeightsT`]).

use ndarray::Array2;

use crate::model::Model;

/// One layer's linear weights stored `[in, out]` row-major: `y = x · w`.
pub struct LayerWeightsT {
    pub q_proj: Array2<f32>,    // [d_model, n_heads·d_head]
    pub k_proj: Array2<f32>,    // [d_model, n_kv_heads·d_head]
    pub v_proj: Array2<f32>,    // [d_model, n_kv_heads·d_head]
    pub o_proj: Array2<f32>,    // [n_heads·d_head, d_model]
    pub gate_proj: Array2<f32>, // [d_model, d_mlp]
    pub up_proj: Array2<f32>,   // [d_model, d_mlp]
    pub down_proj: Array2<f32>, // [d_mlp, d_model]
}

/// Transposed copies of the checkpoint's `[out, in]` weights, for prefill. The math is the
/// same (`x · Wᵀ`); the gemm kernels run about twice as fast on this layout, at the cost of a
/// second copy of the weights in memory. Decode keeps reading the originals, whose rows are
/// the dot products it needs.
pub struct WeightsT {
    pub layers: Vec<LayerWeightsT>,
    pub lm_head: Array2<f32>, // [d_model, vocab]
}

fn transposed(w: &Array2<f32>) -> Array2<f32> {
    w.t().as_standard_layout().into_owned()
}

impl WeightsT {
    pub fn new(model: &Model) -> Self {
        use rayon::prelude::*;
        let layers = model
            .weights
            .layers
            .par_iter()
            .map(|l| LayerWeightsT {
                q_proj: transposed(&l.self_attn.q_proj),
                k_proj: transposed(&l.self_attn.k_proj),
                v_proj: transposed(&l.self_attn.v_proj),
                o_proj: transposed(&l.self_attn.o_proj),
                gate_proj: transposed(&l.mlp.gate_proj),
                up_proj: transposed(&l.mlp.up_proj),
                down_proj: transposed(&l.mlp.down_proj),
            })
            .collect();
        let lm_head = model.weights.lm_head().t().as_standard_layout().into_owned();
        Self { layers, lm_head }
    }
}
