//! Pattern · V (GQA) with head ablation.

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
    pub ablate_offset: u32,
    pub _pad: u32,
}

/// `pattern` [H, n, k_len], `v_cache` [≥ k_len, KVH, D], `ablate` flags (this layer's
/// start at `ablate_offset`) → `z` [n, H, D].
pub fn dispatch<'a>(
    k: &'a Kernels,
    h: Heads,
    ablate_offset: usize,
    [pattern, v_cache, ablate, z]: [&'a wgpu::Buffer; 4],
) -> Dispatch<'a> {
    let params = Params {
        n: u(h.n),
        k_len: u(h.k_len),
        n_heads: u(h.n_heads),
        n_kv_heads: u(h.n_kv_heads),
        d_head: u(h.d_head),
        group: u(h.group()),
        ablate_offset: u(ablate_offset),
        _pad: 0,
    };
    let len = h.n * h.n_heads * h.d_head;
    Dispatch::new(&k.attend, &params, vec![pattern, v_cache, ablate, z], grid_elements(len))
}
