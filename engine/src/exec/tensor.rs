//! A recorded tensor: f32 values with named dimensions, so a view or an export never has to
//! guess which axis is the head and which the position.

use ndarray::{ArcArray, ArrayD, ArrayView2, ArrayView3, IxDyn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    Pos,
    QPos,
    KPos,
    DModel,
    Head,
    KvHead,
    DHead,
    DMlp,
    Vocab,
}

impl Dim {
    pub fn name(self) -> &'static str {
        match self {
            Dim::Pos => "pos",
            Dim::QPos => "q_pos",
            Dim::KPos => "k_pos",
            Dim::DModel => "d_model",
            Dim::Head => "head",
            Dim::KvHead => "kv_head",
            Dim::DHead => "d_head",
            Dim::DMlp => "d_mlp",
            Dim::Vocab => "vocab",
        }
    }

    /// A token position (of the query or the residual stream): indexed by absolute position
    /// when interventions select positions or take values from another pass.
    pub fn is_position(self) -> bool {
        matches!(self, Dim::Pos | Dim::QPos)
    }

    /// A head axis (query or key/value heads).
    pub fn is_head(self) -> bool {
        matches!(self, Dim::Head | Dim::KvHead)
    }
}

/// The values are shared (copy-on-write): a pass records a slot by handing the trace its
/// buffer, not a copy, and the slot is copied only if the pass later changes it in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<Dim>,
    pub data: ArcArray<f32, IxDyn>,
}

impl Tensor {
    /// Panics never: a shape/dim count mismatch is a programming error reported as `None`.
    pub fn new(dims: Vec<Dim>, data: ArrayD<f32>) -> Option<Self> {
        Self::shared(dims, data.into_shared())
    }

    /// A tensor over values someone else may also hold (nothing is copied).
    pub fn shared(dims: Vec<Dim>, data: ArcArray<f32, IxDyn>) -> Option<Self> {
        (dims.len() == data.ndim()).then_some(Self { dims, data })
    }

    pub fn from_vec(dims: Vec<Dim>, shape: &[usize], values: Vec<f32>) -> Option<Self> {
        let data = ArrayD::from_shape_vec(IxDyn(shape), values).ok()?;
        Self::new(dims, data)
    }

    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// `[rows, cols]` view, for 2-D tensors.
    pub fn as_2d(&self) -> Option<ArrayView2<'_, f32>> {
        self.data.view().into_dimensionality().ok()
    }

    /// `[a, b, c]` view, for 3-D tensors.
    pub fn as_3d(&self) -> Option<ArrayView3<'_, f32>> {
        self.data.view().into_dimensionality().ok()
    }

    pub fn dims_string(&self) -> String {
        let parts: Vec<String> = self
            .dims
            .iter()
            .zip(self.shape())
            .map(|(d, n)| format!("{}={n}", d.name()))
            .collect();
        format!("[{}]", parts.join(", "))
    }
}
