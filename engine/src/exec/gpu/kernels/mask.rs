//! Causal or sliding-window mask in place.

use bytemuck::{Pod, Zeroable};

use super::scores::Heads;
use super::{Dispatch, Kernels, grid_elements, u};

pub const SOURCE: &str = include_str!("mask.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub k_len: u32,
    pub n_heads: u32,
    pub pos_offset: u32,
    /// 0: causal; else the sliding window (key position > query position − window).
    pub window: u32,
    pub _pad: [u32; 3],
}

/// `s` [H, n, k_len], query rows at positions `pos_offset..`; `window` 0 is the causal mask.
pub fn dispatch<'a>(k: &'a Kernels, h: Heads, pos_offset: usize, window: usize, s: &'a wgpu::Buffer) -> Dispatch<'a> {
    let params = Params { n: u(h.n), k_len: u(h.k_len), n_heads: u(h.n_heads), pos_offset: u(pos_offset), window: u(window), _pad: [0; 3] };
    Dispatch::new(&k.mask, &params, vec![s], grid_elements(h.score_len()))
}
