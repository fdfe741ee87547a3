//! Row bias added in place (`x += b` on every row), or a scalar scale in place (`x *= s`).

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};

pub const SOURCE: &str = include_str!("bias.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub len: u32,
    pub cols: u32,
    pub scale: f32,
    pub has_bias: u32,
}

/// `x` [rows, cols] += `b` [cols] on every row.
pub fn add_bias<'a>(k: &'a Kernels, x: &'a wgpu::Buffer, b: &'a wgpu::Buffer, rows: usize, cols: usize) -> Dispatch<'a> {
    let params = Params { len: u(rows * cols), cols: u(cols.max(1)), scale: 1.0, has_bias: 1 };
    Dispatch::new(&k.bias, &params, vec![x, b], grid_elements(rows * cols))
}

/// `x` [len] *= `scale`; `dummy` fills the unread bias binding.
pub fn scale<'a>(k: &'a Kernels, x: &'a wgpu::Buffer, dummy: &'a wgpu::Buffer, len: usize, scale: f32) -> Dispatch<'a> {
    let params = Params { len: u(len), cols: 1, scale, has_bias: 0 };
    Dispatch::new(&k.bias, &params, vec![x, dummy], grid_elements(len))
}
