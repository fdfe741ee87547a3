//! `y = x · B` for the CPU reference, where `B` is a weight seen as `[in, out]`: either the
//! checkpoint's `[out, in]` matrix transposed as a view (`w.t()`), or a copy stored `[in, out]`
//! row-major, which the executor keeps because the gemm kernels run about twice as fast on it.
//!
//! Few rows (decode) against `[out, in]` weights take a GEMV path that streams the weights once
//! across threads; everything else goes to the `gemm` crate, which picks AVX-512/AVX2 kernels at run time (we may not
//! build with `target-cpu=native`).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::{EngineError, Result};

/// Up to this many rows a matmul is memory-bound: read each weight once.
const GEMV_MAX_ROWS: usize = 4;
/// Output columns (or rows) per parallel task: large enough to amortize scheduling.
const CHUNK: usize = 256;

/// `y = x · Wᵀ` given the weight in both layouts: decode reads `w` `[out, in]` (each output
/// a dot product of contiguous rows, the weights streamed once); prefill multiplies by
/// `wt` `[in, out]`, the layout the gemm kernels are fastest on.
pub fn linear_both(x: ArrayView2<f32>, w: ArrayView2<f32>, wt: ArrayView2<f32>) -> Result<Array2<f32>> {
    // x: [pos, in] → [pos, out]
    if x.ncols() != w.ncols() || w.dim() != (wt.ncols(), wt.nrows()) {
        return Err(mismatch(x, w));
    }
    if x.nrows() <= GEMV_MAX_ROWS && w.is_standard_layout() {
        return gemv_col_major(x.as_standard_layout().view(), w.t());
    }
    gemm(x.as_standard_layout().view(), wt)
}

fn mismatch(x: ArrayView2<f32>, w: ArrayView2<f32>) -> EngineError {
    EngineError::Shape(format!("x · Wᵀ with x {:?} and W {:?} (W is [out, in])", x.dim(), w.dim()))
}

/// `x: [pos, in]`, `b: [in, out]` (any strides) → `[pos, out]`.
pub fn matmul(x: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<Array2<f32>> {
    if x.ncols() != b.nrows() {
        return Err(mismatch(x, b.t()));
    }
    let x = x.as_standard_layout();
    // Few rows against a transposed row-major weight: stream it once, row by row. (A
    // row-major `[in, out]` weight has no such pass: its columns are strided.)
    if x.nrows() <= GEMV_MAX_ROWS && b.strides()[0] == 1 {
        return gemv_col_major(x.view(), b);
    }
    gemm(x.view(), b)
}

/// Callers have checked `x.ncols() == b.nrows()`.
fn gemm(x: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<Array2<f32>> {
    let (m, k, n) = (x.nrows(), x.ncols(), b.ncols());
    let mut y = Array2::<f32>::zeros((m, n)); // [pos, out]
    if b.nrows() != k {
        return Err(mismatch(x, b.t()));
    }
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

/// `b` is the transpose of a row-major `[out, in]` matrix: each output is a dot product of
/// contiguous rows, threads over output chunks.
fn gemv_col_major(x: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<Array2<f32>> {
    let w = b.t(); // [out, in], row-major
    let (pos, k, n) = (x.nrows(), x.ncols(), w.nrows());
    let (Some(xs), Some(ws)) = (x.as_slice(), w.to_slice()) else {
        return Ok(x.dot(&b));
    };
    let mut y_t = vec![0.0f32; n * pos]; // [out, pos]
    y_t.par_chunks_mut(CHUNK * pos).enumerate().for_each(|(chunk, part)| {
        for (r, out) in part.chunks_mut(pos).enumerate() {
            let o = chunk * CHUNK + r;
            let w_row = &ws[o * k..(o + 1) * k];
            for (p, v) in out.iter_mut().enumerate() {
                *v = dot(&xs[p * k..(p + 1) * k], w_row);
            }
        }
    });
    let y_t = Array2::from_shape_vec((n, pos), y_t).map_err(|e| EngineError::Shape(format!("gemv output [{n}, {pos}]: {e}")))?;
    Ok(y_t.reversed_axes().as_standard_layout().into_owned())
}

/// Dot product in 8 independent lanes so the compiler vectorizes it without `-C target-cpu`.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (xa, xb) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += xa[l] * xb[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pos: usize, k: usize, n: usize) {
        let w = Array2::from_shape_fn((n, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0); // [out, in]
        let x = Array2::from_shape_fn((pos, k), |(i, j)| (i + j) as f32 * 0.1 - 1.0);
        let reference = x.dot(&w.t());
        let wt = w.t().as_standard_layout().into_owned(); // [in, out]
        for (name, got) in [("view", matmul(x.view(), w.t()).unwrap()), ("row-major", matmul(x.view(), wt.view()).unwrap())] {
            let err = (&got - &reference).iter().fold(0.0f32, |m, d| m.max(d.abs()));
            assert!(err < 1e-3, "{pos}x{k}x{n} {name}: {err}");
        }
    }

    #[test]
    fn a_shape_mismatch_is_an_error_not_zeros() {
        let x = Array2::<f32>::ones((2, 5));
        let w = Array2::<f32>::ones((3, 4)); // [out 3, in 4], but x has 5 columns
        let err = matmul(x.view(), w.t()).unwrap_err().to_string();
        assert!(err.contains("(2, 5)") && err.contains("(3, 4)"), "{err}");
        let wt = w.t().to_owned();
        assert!(linear_both(x.view(), w.view(), wt.view()).is_err());
    }

    #[test]
    fn every_path_equals_ndarray() {
        for (pos, k, n) in [(1, 19, 37), (3, 64, 600), (4, 8, 1), (7, 33, 300), (64, 40, 70)] {
            check(pos, k, n);
        }
    }
}
