//! `y = x · Wᵀ` for the CPU reference, `W` stored `[out, in]` as in the checkpoint and read
//! where it lies (a [`Matrix`], usually memory-mapped). Three kernels, chosen by shape:
//!
//! - [`wide`](super::wide): broadcast weights against 64-row panels of `x`; prefill with f32
//!   weights on AVX-512 processors (the fastest where it runs);
//! - [`xwt`](super::xwt): dot products of contiguous rows, any weight dtype; what decode and
//!   the long-`in` matrices (down_proj) run on;
//! - the `gemm` crate on the transposed view `Wᵀ` (strides, no copy), f32 weights only; it is
//!   the faster one for the rest of prefill on processors without AVX-512.
//!
//! Each picks its instruction set at run time (we may not build with `target-cpu=native`).

use ndarray::{Array2, ArrayView2};

use super::wide;
use super::xwt::{self, Rows, WeightData};
use crate::error::{EngineError, Result};
use crate::matrix::Matrix;

fn mismatch(x: (usize, usize), w: (usize, usize)) -> EngineError {
    EngineError::Shape(format!("x · Wᵀ with x {x:?} and W {w:?} (W is [out, in])"))
}

/// `x · Wᵀ`: `x` `[pos, in]`, `w` `[out, in]` → `[pos, out]`.
pub fn linear(x: ArrayView2<f32>, w: &Matrix) -> Result<Array2<f32>> {
    let (m, k) = x.dim();
    let n = w.nrows();
    if w.ncols() != k {
        return Err(mismatch(x.dim(), w.dim()));
    }
    let rows = w.rows();
    if wide::fits(m, &rows) {
        let x = x.as_standard_layout();
        let mut y = Array2::<f32>::zeros((m, n)); // [pos, out]
        let data = x.as_slice().ok_or_else(|| mismatch(x.dim(), w.dim()))?;
        let out = y.as_slice_mut().ok_or_else(|| mismatch((m, k), w.dim()))?;
        if !wide::xwt_wide(Rows { data, rows: m, stride: k }, rows, out, n) {
            return Err(mismatch((m, k), w.dim()));
        }
        return Ok(y);
    }
    // One row (decode) streams the weights: the row-dot kernel reads them fastest.
    let one_row = m == 1 && xwt::isa() != xwt::Isa::Portable;
    let gemm_fits = matches!(rows.data, WeightData::F32(_)) && !one_row && !(k >= 1024 && m <= 512);
    if let (true, Some(view)) = (gemm_fits, w.as_f32()) {
        return matmul(x, view.t());
    }
    let x = x.as_standard_layout();
    let mut y = Array2::<f32>::zeros((m, n)); // [pos, out]
    let data = x.as_slice().ok_or_else(|| mismatch(x.dim(), w.dim()))?;
    let out = y.as_slice_mut().ok_or_else(|| mismatch((m, k), w.dim()))?;
    if !xwt::xwt(Rows { data, rows: m, stride: k }, rows, out, n) {
        return Err(mismatch((m, k), w.dim()));
    }
    Ok(y)
}

/// `x: [pos, in]`, `b: [in, out]` (any strides) → `[pos, out]`, with the `gemm` crate.
pub fn matmul(x: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<Array2<f32>> {
    if x.ncols() != b.nrows() {
        return Err(mismatch(x.dim(), (b.ncols(), b.nrows())));
    }
    let x = x.as_standard_layout();
    let (m, k, n) = (x.nrows(), x.ncols(), b.ncols());
    let mut y = Array2::<f32>::zeros((m, n)); // [pos, out]
    if m == 0 || n == 0 || k == 0 {
        return Ok(y);
    }
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    #[allow(unsafe_code)]
    // SAFETY: `x` is standard layout [m, k] and `y` a fresh [m, n] array; `b` is a valid view of
    // [k, n] whose element (r, c) lives at `ptr + r*b_rs + c*b_cs`, exactly the strides passed.
    // `y` is not aliased by either input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            y.as_mut_ptr(),
            1,
            n as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            b_cs,
            b_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pos: usize, k: usize, n: usize) {
        let w = Array2::from_shape_fn((n, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0); // [out, in]
        let x = Array2::from_shape_fn((pos, k), |(i, j)| (i + j) as f32 * 0.1 - 1.0);
        let reference = x.dot(&w.t());
        let wt = w.t().as_standard_layout().into_owned(); // [in, out]
        let m = Matrix::from(w.clone());
        for (name, got) in [("linear", linear(x.view(), &m).unwrap()), ("view", matmul(x.view(), w.t()).unwrap()), ("row-major", matmul(x.view(), wt.view()).unwrap())] {
            let err = (&got - &reference).iter().fold(0.0f32, |m, d| m.max(d.abs()));
            assert!(err < 1e-3 * (k as f32), "{pos}x{k}x{n} {name}: {err}");
        }
    }

    #[test]
    fn a_shape_mismatch_is_an_error_not_zeros() {
        let x = Array2::<f32>::ones((2, 5));
        let w = Array2::<f32>::ones((3, 4)); // [out 3, in 4], but x has 5 columns
        let err = matmul(x.view(), w.t()).unwrap_err().to_string();
        assert!(err.contains("(2, 5)") && err.contains("(3, 4)"), "{err}");
        assert!(linear(x.view(), &Matrix::from(w)).is_err());
    }

    #[test]
    fn every_path_equals_ndarray() {
        // Both kernels: short and long `in`, decode and prefill row counts.
        for (pos, k, n) in [(1, 19, 37), (3, 64, 600), (4, 8, 1), (7, 33, 300), (64, 40, 70), (2, 1100, 9), (600, 1030, 5)] {
            check(pos, k, n);
        }
    }
}
