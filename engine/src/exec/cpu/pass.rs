//! The CPU executor's state for the pass in progress: its activation slots (named as in the
//! op table) and the interventions laid out for it.

use ndarray::{ArcArray, Array, ArrayViewD, ArrayViewMutD, Dimension, Ix1, Ix2, Ix3, IxDyn};

use crate::exec::driver::PassPlan;
use crate::program::op_table::Slot;

type Shared<D> = ArcArray<f32, D>;

/// The activations of the pass in progress, one field per [`Slot`]. Each is shared with the
/// trace once recorded (see [`Slots::share`]): an op that writes a fresh array costs no copy
/// to record, and one that changes a recorded slot in place (the residual add, the mask)
/// copies it first.
pub struct Slots {
    pub x: Shared<Ix2>,      // [pos, d_model]  the residual stream
    pub scale: Shared<Ix1>,  // [pos]  RMSNorm scale of the current norm
    pub h: Shared<Ix2>,      // [pos, d_model]  normalized input of the current sublayer
    pub q: Shared<Ix3>,      // [pos, n_heads, d_head]
    pub k: Shared<Ix3>,      // [pos, n_kv_heads, d_head]
    pub v: Shared<Ix3>,      // [pos, n_kv_heads, d_head]
    pub scores: Shared<Ix3>, // [n_heads, q_pos, k_pos]  raw → masked → pattern, in place
    pub z: Shared<Ix3>,      // [pos, n_heads, d_head]
    pub out: Shared<Ix2>,    // [pos, d_model]  what the current sublayer writes
    pub gate: Shared<Ix2>,   // [pos, d_mlp]
    pub up: Shared<Ix2>,     // [pos, d_mlp]
    pub post: Shared<Ix2>,   // [pos, d_mlp]
    pub logits: Shared<Ix2>, // [logit_rows, vocab]  the last rows
    pub probs: Shared<Ix2>,  // [logit_rows, vocab]
}

/// The slot's array to write into again, if the trace does not hold it; otherwise an empty one
/// (a kernel that overwrites the whole slot need not copy the recorded values first).
pub fn reusable<D: Dimension>(slot: &mut Shared<D>) -> Array<f32, D> {
    let ndim = slot.ndim();
    let empty = || Array::<f32, D>::zeros(D::zeros(ndim));
    std::mem::replace(slot, empty().into_shared()).try_into_owned_nocopy().unwrap_or_else(|_| empty())
}

/// `slots.<field>.<methods>` for the field that holds `slot`: the one place that maps a slot
/// to its field, for every accessor below.
macro_rules! on_slot {
    ($slots:expr, $slot:expr, $($call:tt)*) => {
        match $slot {
            Slot::Resid => $slots.x.$($call)*,
            Slot::Scale => $slots.scale.$($call)*,
            Slot::Normed => $slots.h.$($call)*,
            Slot::Q => $slots.q.$($call)*,
            Slot::K => $slots.k.$($call)*,
            Slot::V => $slots.v.$($call)*,
            Slot::Scores => $slots.scores.$($call)*,
            Slot::Z => $slots.z.$($call)*,
            Slot::Out => $slots.out.$($call)*,
            Slot::Gate => $slots.gate.$($call)*,
            Slot::Up => $slots.up.$($call)*,
            Slot::Post => $slots.post.$($call)*,
            Slot::Logits => $slots.logits.$($call)*,
            Slot::Probs => $slots.probs.$($call)*,
        }
    };
}

impl Slots {
    fn empty() -> Self {
        let e2 = || Shared::<Ix2>::zeros((0, 0));
        let e3 = || Shared::<Ix3>::zeros((0, 0, 0));
        Self {
            x: e2(),
            scale: Shared::<Ix1>::zeros(0),
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

    /// The slot's values, to read.
    pub fn get(&self, slot: Slot) -> ArrayViewD<'_, f32> {
        on_slot!(self, slot, view().into_dyn())
    }

    /// The slot's values as the trace records them: the same buffer, shared.
    pub fn share(&self, slot: Slot) -> Shared<IxDyn> {
        on_slot!(self, slot, clone().into_dyn())
    }

    /// The slot's values, for rounding and editing (copied first if the trace holds them).
    pub fn get_mut(&mut self, slot: Slot) -> ArrayViewMutD<'_, f32> {
        on_slot!(self, slot, view_mut().into_dyn())
    }
}

/// The pass in progress on the CPU: its plan and its activation slots.
pub struct Pass {
    pub plan: PassPlan,
    pub slots: Slots,
}

impl Pass {
    pub fn new(plan: PassPlan) -> Self {
        Self { plan, slots: Slots::empty() }
    }
}
