//! The decode-path matrix-vector kernel; its params are matmul's (`super::matmul::Params`),
//! and `super::matmul::linear` picks it for 1..4 rows.

use super::grid;

pub const SOURCE: &str = include_str!("gemv.wgsl");

/// Rows of W per workgroup (8 groups of 32 lanes; must match gemv.wgsl).
pub const ROWS_PER_GROUP: usize = 8;

pub fn grid_for(rows_of_w: usize) -> [u32; 3] {
    grid(rows_of_w.div_ceil(ROWS_PER_GROUP))
}
