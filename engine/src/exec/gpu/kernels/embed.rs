//! Embedding gather `x = E[ids]`, one dispatch per chunk of the table.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, grid_elements, u};
use crate::exec::gpu::weights::GpuMatrix;

pub const SOURCE: &str = include_str!("embed.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub d: u32,
    pub stride: u32,
    pub row_start: u32,
    pub rows: u32,
    pub _pad: [u32; 3],
}

/// `ids` [n] u32 → `x` [n, d_model], through the table's own weight format.
pub fn dispatches<'a>(table: &'a GpuMatrix, ids: &'a wgpu::Buffer, x: &'a wgpu::Buffer, n: usize) -> Vec<Dispatch<'a>> {
    table
        .chunks
        .iter()
        .map(|chunk| {
            let params = Params {
                n: u(n),
                d: u(table.cols),
                stride: u(table.stride),
                row_start: u(chunk.row_start),
                rows: u(chunk.rows),
                _pad: [0; 3],
            };
            Dispatch::new(&table.kernels.embed, &params, vec![&chunk.buffer, ids, x], grid_elements(n * table.cols))
        })
        .collect()
}
