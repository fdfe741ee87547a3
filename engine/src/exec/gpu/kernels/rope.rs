//! RoPE of q or k in place.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};
use crate::exec::cpu::ops::rope_rotation;
use crate::load::longrope::Rope;

pub const SOURCE: &str = include_str!("rope.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub heads: u32,
    pub d_head: u32,
    pub _pad: u32,
}
/// `(cos, sin)` pairs `[n, d_head/2]` for positions `pos_offset..`, computed exactly as
/// `cpu::ops::rope` does (`rope_rotation`: f32 angle, f32 `sin_cos`, times the scale), for
/// the kernel's `cs` binding.
pub fn cos_sin_table(rope: Rope<'_>, pos_offset: usize, n: usize) -> Vec<f32> {
    let half = rope.inv_freq.len();
    let mut table = Vec::with_capacity(n * half * 2); // [n, d_head/2, 2]
    for p in 0..n {
        let position = (pos_offset + p) as f32;
        table.extend(rope_rotation(rope, position, half).into_iter().flat_map(|(sin, cos)| [cos, sin]));
    }
    table
}

/// Rotates `x` [n, heads, d_head] in place with the `cs` table of its positions.
pub fn dispatch<'a>(k: &'a Kernels, cs: &'a wgpu::Buffer, x: &'a wgpu::Buffer, n: usize, heads: usize, d_head: usize) -> Dispatch<'a> {
    let params = Params { n: u(n), heads: u(heads), d_head: u(d_head), _pad: 0 };
    Dispatch::new(&k.rope, &params, vec![cs, x], grid_elements(n * heads * (d_head / 2)))
}
