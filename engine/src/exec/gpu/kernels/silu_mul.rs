//! The MLP's activation: `silu(gate) ⊙ up`, `gelu_tanh(gate) ⊙ up`, or one activation on
//! the ungated MLP's pre-activation.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};
use crate::load::arch::{Activation, MlpKind};

pub const SOURCE: &str = include_str!("silu_mul.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub len: u32,
    pub mode: u32,
    pub _pad: [u32; 2],
}

/// What the kernel computes (the shader's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `silu(gate) ⊙ up` (SwiGLU).
    SiluMul = 0,
    /// `gelu_tanh(gate) ⊙ up` (GeGLU).
    GeluTanhMul = 1,
    /// `gelu(gate)` by erf.
    Gelu = 2,
    GeluTanh = 3,
    Relu = 4,
    Silu = 5,
}

impl Mode {
    /// The mode of an MLP kind.
    pub fn of(mlp: MlpKind) -> Self {
        match mlp {
            MlpKind::SwiGlu => Mode::SiluMul,
            MlpKind::GeGlu => Mode::GeluTanhMul,
            MlpKind::Plain(act) => Self::activation(act),
        }
    }

    /// One activation on its own.
    pub fn activation(act: Activation) -> Self {
        match act {
            Activation::Gelu => Mode::Gelu,
            Activation::GeluTanh => Mode::GeluTanh,
            Activation::Relu => Mode::Relu,
            Activation::Silu => Mode::Silu,
        }
    }

    /// Whether the mode reads `up`.
    pub fn gated(self) -> bool {
        matches!(self, Mode::SiluMul | Mode::GeluTanhMul)
    }
}

/// `post` [len] from `gate` [len] (and `up` [len] in the gated modes; any buffer otherwise).
pub fn dispatch<'a>(k: &'a Kernels, mode: Mode, gate: &'a wgpu::Buffer, up: &'a wgpu::Buffer, post: &'a wgpu::Buffer, len: usize) -> Dispatch<'a> {
    let params = Params { len: u(len), mode: mode as u32, _pad: [0; 2] };
    Dispatch::new(&k.silu_mul, &params, vec![gate, up, post], grid_elements(len))
}
