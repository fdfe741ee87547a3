//! `y = x · Wᵀ`: the tiled kernel for many rows, the GEMV kernel (gemv.rs) for 1..4 rows;
//! one dispatch per row chunk of W (a matrix larger than one binding is split by rows), each
//! through the pipeline of W's own weight format.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, u};
use crate::exec::gpu::weights::GpuMatrix;

pub const SOURCE: &str = include_str!("matmul.wgsl");

/// At most this many rows of x go through the GEMV kernel (its vec4 accumulator holds 4).
pub const GEMV_MAX_ROWS: usize = 4;

/// Shared by matmul.wgsl and gemv.wgsl (same struct in both).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub m: u32,
    pub n_out: u32,
    pub k_len: u32,
    pub stride: u32,
    pub x_row_offset: u32,
    pub y_stride: u32,
    pub y_col_offset: u32,
    pub _pad: u32,
}

/// Rows `x_row_offset .. x_row_offset + m` of `x` [*, in] times `w`ᵀ into `y` [m, out], by
/// the kernels built for `w`'s format.
pub fn linear<'a>(
    w: &'a GpuMatrix,
    x: &'a wgpu::Buffer,
    y: &'a wgpu::Buffer,
    m: usize,
    x_row_offset: usize,
) -> Vec<Dispatch<'a>> {
    w.chunks
        .iter()
        .map(|chunk| {
            let params = Params {
                m: u(m),
                n_out: u(chunk.rows),
                k_len: u(w.cols),
                stride: u(w.stride),
                x_row_offset: u(x_row_offset),
                y_stride: u(w.rows),
                y_col_offset: u(chunk.row_start),
                _pad: 0,
            };
            let buffers = vec![&chunk.buffer, x, y];
            if m <= GEMV_MAX_ROWS {
                Dispatch::new(&w.kernels.gemv, &params, buffers, super::gemv::grid_for(chunk.rows))
            } else {
                let g = [u(chunk.rows.div_ceil(64)), u(m.div_ceil(32)), 1];
                Dispatch::new(&w.kernels.matmul, &params, buffers, g)
            }
        })
        .collect()
}

