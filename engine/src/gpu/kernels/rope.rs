//! RoPE of q and k in place, appending rotated k and v to the KV cache.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};

pub const SOURCE: &str = include_str!("rope.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub d_head: u32,
    pub pos_offset: u32,
    pub _pad: [u32; 3],
}

/// `(cos, sin)` pairs `[n, d_head/2]` for positions `pos_offset..`, computed exactly as
/// `cpu::ops::rope` does (f32 angle, f32 `sin_cos`), for the kernel's `cs` binding.
pub fn cos_sin_table(inv_freq: &[f32], pos_offset: usize, n: usize) -> Vec<f32> {
    let mut table = Vec::with_capacity(n * inv_freq.len() * 2); // [n, d_head/2, 2]
    for p in 0..n {
        let position = (pos_offset + p) as f32;
        for &f in inv_freq {
            let (sin, cos) = (position * f).sin_cos();
            table.extend([cos, sin]);
        }
    }
    table
}

pub struct Shape {
    pub n: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub pos_offset: usize,
}

/// Buffers: `cs` table, `q` [n, H, D], `k` and `v` [n, KVH, D], caches [cap, KVH, D].
pub fn dispatch<'a>(k: &'a Kernels, s: &Shape, buffers: [&'a wgpu::Buffer; 6]) -> Dispatch<'a> {
    let params = Params {
        n: u(s.n),
        n_heads: u(s.n_heads),
        n_kv_heads: u(s.n_kv_heads),
        d_head: u(s.d_head),
        pos_offset: u(s.pos_offset),
        _pad: [0; 3],
    };
    let threads = s.n * (s.n_heads + s.n_kv_heads) * (s.d_head / 2);
    Dispatch::new(&k.rope, &params, buffers.to_vec(), grid_elements(threads))
}
