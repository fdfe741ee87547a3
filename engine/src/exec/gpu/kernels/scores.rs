//! Scaled q·k scores, GQA, before the mask.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};

pub const SOURCE: &str = include_str!("scores.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub k_len: u32,
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub d_head: u32,
    pub group: u32,
    pub scale: f32,
    pub _pad: u32,
}

/// Head geometry shared by the attention kernels.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub n: usize,
    pub k_len: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
}

impl Heads {
    pub fn group(&self) -> usize {
        (self.n_heads / self.n_kv_heads.max(1)).max(1)
    }

    /// Elements of a `[n_heads, n, k_len]` score tensor.
    pub fn score_len(&self) -> usize {
        self.n_heads * self.n * self.k_len
    }
}

/// `q` [n, H, D], `k_cache` [≥ k_len, KVH, D] → `s` [H, n, k_len], each dot product times
/// `scale` (`Arch::score_scale`: `1/sqrt(d_head)`, or Gemma's `query_pre_attn_scalar^-0.5`).
pub fn dispatch<'a>(k: &'a Kernels, h: Heads, scale: f32, q: &'a wgpu::Buffer, k_cache: &'a wgpu::Buffer, s: &'a wgpu::Buffer) -> Dispatch<'a> {
    let params = Params {
        n: u(h.n),
        k_len: u(h.k_len),
        n_heads: u(h.n_heads),
        n_kv_heads: u(h.n_kv_heads),
        d_head: u(h.d_head),
        group: u(h.group()),
        scale,
        _pad: 0,
    };
    Dispatch::new(&k.scores, &params, vec![q, k_cache, s], grid_elements(h.score_len()))
}
