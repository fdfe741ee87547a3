//! `silu(gate) ⊙ up`.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};

pub const SOURCE: &str = include_str!("silu_mul.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub len: u32,
    pub _pad: [u32; 3],
}

pub fn dispatch<'a>(k: &'a Kernels, gate: &'a wgpu::Buffer, up: &'a wgpu::Buffer, post: &'a wgpu::Buffer, len: usize) -> Dispatch<'a> {
    let params = Params { len: u(len), _pad: [0; 3] };
    Dispatch::new(&k.silu_mul, &params, vec![gate, up, post], grid_elements(len))
}
