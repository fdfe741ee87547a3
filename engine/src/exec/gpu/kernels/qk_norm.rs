//! Per-head RMSNorm of q or k in place (QK-norm).

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid, u};

pub const SOURCE: &str = include_str!("qk_norm.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub d: u32,
    pub eps: f32,
    pub _pad: u32,
}

/// `x` [n, heads, d_head] normed per head in place with weight `g` [d_head].
pub fn dispatch<'a>(k: &'a Kernels, x: &'a wgpu::Buffer, g: &'a wgpu::Buffer, n: usize, heads: usize, d_head: usize, eps: f32) -> Dispatch<'a> {
    let rows = n * heads;
    let params = Params { rows: u(rows), d: u(d_head), eps, _pad: 0 };
    Dispatch::new(&k.qk_norm, &params, vec![x, g], grid(rows))
}
