//! One intervention (or activation rounding) applied to a hook's buffer in place.

use bytemuck::{Pod, Zeroable};

use super::{Dispatch, Kernels, grid_elements, u};
use crate::exec::intervene::{ActivationPrecision, Mode, Resolved};

pub const SOURCE: &str = include_str!("intervene.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub len: u32,
    pub mode: u32,
    pub a1: u32,
    pub a2: u32,
    pub off1: u32,
    pub off2: u32,
    pub factor: f32,
    pub _pad: u32,
}

/// The hook's shape as three axes (leading axes of extent 1 where it has fewer).
fn three_axes(shape: &[usize]) -> [usize; 3] {
    let mut axes = [1; 3];
    for (slot, &n) in axes.iter_mut().rev().zip(shape.iter().rev()) {
        *slot = n;
    }
    axes
}

/// The per-axis flags padded to three axes, in the layout the kernel reads.
pub fn flags(r: &Resolved) -> Vec<u32> {
    let pad = 3 - r.select.len().min(3);
    let mut flags = vec![1u32; pad];
    flags.extend(r.flags_u32());
    flags
}

/// Applies `r` to `x`; `flags` holds [`flags`]`(r)`, `values` the resolved values (or any buffer).
pub fn edit<'a>(k: &'a Kernels, r: &Resolved, x: &'a wgpu::Buffer, flags: &'a wgpu::Buffer, values: &'a wgpu::Buffer) -> Dispatch<'a> {
    let [a0, a1, a2] = three_axes(&r.shape);
    let (mode, factor) = match r.mode {
        Mode::Zero => (0, 0.0),
        Mode::Scale(f) => (1, f),
        Mode::Add => (2, 0.0),
        Mode::Replace => (3, 0.0),
    };
    let len = a0 * a1 * a2;
    let params = Params { len: u(len), mode, a1: u(a1), a2: u(a2), off1: u(a0), off2: u(a0 + a1), factor, _pad: 0 };
    Dispatch::new(&k.intervene, &params, vec![x, flags, values], grid_elements(len))
}

/// Rounds the first `len` values of `x` to `precision` (`None` for f32: nothing to do).
/// `dummy` fills the unused flag and value bindings.
pub fn round<'a>(k: &'a Kernels, precision: ActivationPrecision, x: &'a wgpu::Buffer, len: usize, dummy: &'a wgpu::Buffer) -> Option<Dispatch<'a>> {
    let mode = match precision {
        ActivationPrecision::F32 => return None,
        ActivationPrecision::F16 => 4,
        ActivationPrecision::Bf16 => 5,
    };
    let params = Params { len: u(len), mode, a1: 1, a2: 1, off1: 0, off2: 0, factor: 0.0, _pad: 0 };
    Some(Dispatch::new(&k.intervene, &params, vec![x, dummy, dummy], grid_elements(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_pad_to_three_axes_at_the_front() {
        assert_eq!(three_axes(&[5, 576]), [1, 5, 576]);
        assert_eq!(three_axes(&[7]), [1, 1, 7]);
        assert_eq!(three_axes(&[9, 4, 4]), [9, 4, 4]);
    }
}
