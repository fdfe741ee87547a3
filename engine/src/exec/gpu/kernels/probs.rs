//! Vocabulary softmax at a temperature (`hook_probs`).

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid, u};

pub const SOURCE: &str = include_str!("probs.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub vocab: u32,
    pub temperature: f32,
    pub first_row: u32,
}

/// `logits` [rows, vocab] → `probs` [rows, vocab]; `temperature <= 0` means 1, as on the CPU.
/// Softmax of logits rows `first_row .. first_row + rows` into `probs` rows `0 .. rows`.
pub fn dispatch<'a>(
    k: &'a Kernels,
    logits: &'a wgpu::Buffer,
    probs: &'a wgpu::Buffer,
    first_row: usize,
    rows: usize,
    vocab: usize,
    temperature: f32,
) -> Dispatch<'a> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let params = Params { rows: u(rows), vocab: u(vocab), temperature: t, first_row: u(first_row) };
    Dispatch::new(&k.probs, &params, vec![logits, probs], grid(rows))
}
