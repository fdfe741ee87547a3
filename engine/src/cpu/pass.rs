//! The CPU executor's state for the pass in progress: its activation slots (named as in the
//! op table) and the interventions laid out for it.

use ndarray::{Array1, Array2, Array3, ArrayViewMutD};

use crate::executor::PassOptions;
use crate::intervene::Resolved;
use crate::op_table::{PassDims, Slot};

/// The activations of the pass in progress, one field per [`Slot`].
pub struct Slots {
    pub x: Array2<f32>,      // [pos, d_model]  the residual stream
    pub scale: Array1<f32>,  // [pos]  RMSNorm scale of the current norm
    pub h: Array2<f32>,      // [pos, d_model]  normalized input of the current sublayer
    pub q: Array3<f32>,      // [pos, n_heads, d_head]
    pub k: Array3<f32>,      // [pos, n_kv_heads, d_head]
    pub v: Array3<f32>,      // [pos, n_kv_heads, d_head]
    pub scores: Array3<f32>, // [n_heads, q_pos, k_pos]  raw → masked → pattern, in place
    pub z: Array3<f32>,      // [pos, n_heads, d_head]
    pub out: Array2<f32>,    // [pos, d_model]  what the current sublayer writes
    pub gate: Array2<f32>,   // [pos, d_mlp]
    pub up: Array2<f32>,     // [pos, d_mlp]
    pub post: Array2<f32>,   // [pos, d_mlp]
    pub logits: Array2<f32>, // [logit_rows, vocab]  the last rows
    pub probs: Array2<f32>,  // [logit_rows, vocab]
}

impl Slots {
    fn empty() -> Self {
        let e2 = || Array2::<f32>::zeros((0, 0));
        let e3 = || Array3::<f32>::zeros((0, 0, 0));
        Self {
            x: e2(),
            scale: Array1::zeros(0),
            h: e2(),
            q: e3(),
            k: e3(),
            v: e3(),
            scores: e3(),
            z: e3(),
            out: e2(),
            gate: e2(),
            up: e2(),
            post: e2(),
            logits: e2(),
            probs: e2(),
        }
    }

    /// The slot's values, for rounding, editing and recording.
    pub fn get_mut(&mut self, slot: Slot) -> ArrayViewMutD<'_, f32> {
        match slot {
            Slot::Resid => self.x.view_mut().into_dyn(),
            Slot::Scale => self.scale.view_mut().into_dyn(),
            Slot::Normed => self.h.view_mut().into_dyn(),
            Slot::Q => self.q.view_mut().into_dyn(),
            Slot::K => self.k.view_mut().into_dyn(),
            Slot::V => self.v.view_mut().into_dyn(),
            Slot::Scores => self.scores.view_mut().into_dyn(),
            Slot::Z => self.z.view_mut().into_dyn(),
            Slot::Out => self.out.view_mut().into_dyn(),
            Slot::Gate => self.gate.view_mut().into_dyn(),
            Slot::Up => self.up.view_mut().into_dyn(),
            Slot::Post => self.post.view_mut().into_dyn(),
            Slot::Logits => self.logits.view_mut().into_dyn(),
            Slot::Probs => self.probs.view_mut().into_dyn(),
        }
    }
}

pub struct Pass {
    pub ids: Vec<u32>,
    pub pos_offset: usize,
    pub options: PassOptions,
    pub dims: PassDims,
    /// `options.interventions` laid out for this pass.
    pub edits: Vec<Resolved>,
    /// Index of the next step in the program.
    pub next: usize,
    pub slots: Slots,
}

impl Pass {
    pub fn new(ids: &[u32], pos_offset: usize, options: PassOptions, dims: PassDims, edits: Vec<Resolved>) -> Self {
        Self { ids: ids.to_vec(), pos_offset, options, dims, edits, next: 0, slots: Slots::empty() }
    }
}
