//! RMSNorm with its scale (`hook_scale`).

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid, u};

pub const SOURCE: &str = include_str!("rmsnorm.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub d: u32,
    pub eps: f32,
    pub _pad: u32,
}

/// `x` [rows, d], `g` [d] → `scale` [rows], `y` [rows, d].
#[allow(clippy::too_many_arguments)]
pub fn dispatch<'a>(
    k: &'a Kernels,
    x: &'a wgpu::Buffer,
    g: &'a wgpu::Buffer,
    scale: &'a wgpu::Buffer,
    y: &'a wgpu::Buffer,
    rows: usize,
    d: usize,
    eps: f32,
) -> Dispatch<'a> {
    let params = Params { rows: u(rows), d: u(d), eps, _pad: 0 };
    Dispatch::new(&k.rmsnorm, &params, vec![x, g, scale, y], grid(rows))
}
