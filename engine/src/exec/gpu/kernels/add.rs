//! Residual add in place, `x += y`.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};

pub const SOURCE: &str = include_str!("add.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub len: u32,
    pub _pad: [u32; 3],
}

pub fn dispatch<'a>(k: &'a Kernels, x: &'a wgpu::Buffer, y: &'a wgpu::Buffer, len: usize) -> Dispatch<'a> {
    let params = Params { len: u(len), _pad: [0; 3] };
    Dispatch::new(&k.add, &params, vec![x, y], grid_elements(len))
}
