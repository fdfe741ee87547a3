//! LayerNorm with its scale (`hook_scale`), the mirror of rmsnorm.rs.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid, u};

pub const SOURCE: &str = include_str!("layernorm.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub d: u32,
    pub eps: f32,
    pub given_scale: u32,
}

/// `x` [rows, d], weight `g` and bias `b` [d] → `scale` [rows], `y` [rows, d]; with
/// `given_scale`, `y` from the scale already in `scale`.
#[allow(clippy::too_many_arguments)]
pub fn dispatch<'a>(
    k: &'a Kernels,
    x: &'a wgpu::Buffer,
    [g, b]: [&'a wgpu::Buffer; 2],
    scale: &'a wgpu::Buffer,
    y: &'a wgpu::Buffer,
    rows: usize,
    d: usize,
    eps: f32,
    given_scale: bool,
) -> Dispatch<'a> {
    let params = Params { rows: u(rows), d: u(d), eps, given_scale: u32::from(given_scale) };
    Dispatch::new(&k.layernorm, &params, vec![x, g, b, scale, y], grid(rows))
}
