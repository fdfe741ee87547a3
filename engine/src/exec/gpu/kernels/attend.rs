//! Pattern · V (GQA).

use bytemuck::{Pod, Zeroable};

use super::scores::Heads;
use super::{Dispatch, Kernels, grid_elements, u};

pub const SOURCE: &str = include_str!("attend.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub k_len: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub d_head: u32,
    pub group: u32,
    pub _pad: [u32; 2],
}

/// `pattern` [H, n, k_len], `v_cache` [≥ k_len, KVH, D] → `z` [n, H, D].
pub fn dispatch<'a>(k: &'a Kernels, h: Heads, [pattern, v_cache, z]: [&'a wgpu::Buffer; 3]) -> Dispatch<'a> {
    let params = Params {
        n: u(h.n),
        k_len: u(h.k_len),
        n_heads: u(h.n_heads),
        n_kv_heads: u(h.n_kv_heads),
        d_head: u(h.d_head),
        group: u(h.group()),
        _pad: [0; 2],
    };
    let len = h.n * h.n_heads * h.d_head;
    Dispatch::new(&k.attend, &params, vec![pattern, v_cache, z], grid_elements(len))
}
