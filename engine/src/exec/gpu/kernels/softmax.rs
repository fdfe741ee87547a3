//! Row softmax in place (attention pattern).

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid, u};

pub const SOURCE: &str = include_str!("softmax.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub len: u32,
    pub _pad: [u32; 2],
}

/// `s` [rows, len].
pub fn dispatch<'a>(k: &'a Kernels, s: &'a wgpu::Buffer, rows: usize, len: usize) -> Dispatch<'a> {
    let params = Params { rows: u(rows), len: u(len), _pad: [0; 2] };
    Dispatch::new(&k.softmax, &params, vec![s], grid(rows))
}
