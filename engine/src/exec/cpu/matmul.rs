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
use super::xwt::{self, Product, Rows, WeightData};
use crate::error::{EngineError, Result};
use crate::load::matrix::Matrix;

fn mismatch(x: (usize, usize), w: (usize, usize)) -> EngineError {
    EngineError::Shape(format!("x · Wᵀ with x {x:?} and W {w:?} (W is [out, in])"))
}

/// Which kernel runs `x · Wᵀ` for `m` rows of `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Wide,
    RowDot,
    Gemm,
}

fn kernel(m: usize, w: &Matrix) -> Kernel {
    let rows = w.rows();
    if wide::fits(m, &rows) {
        return Kernel::Wide;
    }
    // One row (decode) streams the weights: the row-dot kernel reads them fastest.
    let one_row = m == 1 && xwt::isa() != xwt::Isa::Portable;
    let f32_view = matches!(rows.data, WeightData::F32(_)) && w.as_f32().is_some();
    if f32_view && !one_row && !(w.ncols() >= 1024 && m <= 512) { Kernel::Gemm } else { Kernel::RowDot }
}

/// `x · Wᵀ`: `x` `[pos, in]`, `w` `[out, in]` → `[pos, out]`.
pub fn linear(x: ArrayView2<f32>, w: &Matrix) -> Result<Array2<f32>> {
    let [y] = linear_many(x, [w])?;
    Ok(y)
}

/// `x · Wᵢᵀ` for matrices that read the same `x` (q, k, v; gate, up). When they share the
/// broadcast-panel or the row-dot kernel, one call runs them all (`x` transposed once, one
/// parallel region); otherwise they run one after the other. Each output is bit for bit what
/// it gets alone.
pub fn linear_many<const N: usize>(x: ArrayView2<f32>, ws: [&Matrix; N]) -> Result<[Array2<f32>; N]> {
    let (m, k) = x.dim();
    if let Some(w) = ws.iter().find(|w| w.ncols() != k) {
        return Err(mismatch(x.dim(), w.dim()));
    }
    let kernels = ws.map(|w| kernel(m, w));
    let ys = if kernels.iter().all(|&kn| kn == kernels[0] && kn != Kernel::Gemm) {
        together(kernels[0], x, &ws)?
    } else {
        let mut ys = Vec::with_capacity(N);
        for (w, kn) in ws.into_iter().zip(kernels) {
            match (kn, w.as_f32()) {
                (Kernel::Gemm, Some(view)) => ys.push(matmul(x, view.t())?),
                _ => ys.extend(together(kn, x, &[w])?),
            }
        }
        ys
    };
    ys.try_into().map_err(|_| EngineError::Shape(format!("{N} products of x {:?}", (m, k))))
}

/// The products of one `x` on the broadcast-panel or row-dot kernel, in one call.
fn together(kernel: Kernel, x: ArrayView2<f32>, ws: &[&Matrix]) -> Result<Vec<Array2<f32>>> {
    let (m, k) = x.dim();
    let first = ws.first().map_or((0, k), |w| w.dim());
    let x = x.as_standard_layout();
    let data = x.as_slice().ok_or_else(|| mismatch(x.dim(), first))?;
    let mut ys: Vec<Array2<f32>> = ws.iter().map(|w| Array2::<f32>::zeros((m, w.nrows()))).collect(); // [pos, out] each
    let mut products = Vec::with_capacity(ws.len());
    for (y, w) in ys.iter_mut().zip(ws) {
        let y = y.as_slice_mut().ok_or_else(|| mismatch((m, k), w.dim()))?;
        products.push(Product { w: w.rows(), y, y_stride: w.nrows() });
    }
    let x = Rows { data, rows: m, stride: k };
    let ok = match kernel {
        Kernel::Wide => wide::xwt_wide_many(x, &mut products),
        Kernel::RowDot | Kernel::Gemm => xwt::xwt_many(x, &mut products),
    };
    if !ok {
        return Err(mismatch((m, k), first));
    }
    Ok(ys)
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
    fn products_of_one_x_run_together_with_the_bits_each_gets_alone() {
        for (pos, k) in [(1, 40), (2, 33), (64, 576), (70, 100)] {
            let x = Array2::from_shape_fn((pos, k), |(i, j)| ((i * 13 + j * 7) % 17) as f32 * 0.1 - 0.8);
            let w = |n: usize, seed: usize| Array2::from_shape_fn((n, k), |(i, j)| ((i * seed + j * 5) % 19) as f32 * 0.05 - 0.4);
            let f32s = [Matrix::from(w(30, 3)), Matrix::from(w(7, 11)), Matrix::from(w(13, 2))];
            let [a, b, c] = linear_many(x.view(), [&f32s[0], &f32s[1], &f32s[2]]).unwrap();
            for (got, m) in [(a, &f32s[0]), (b, &f32s[1]), (c, &f32s[2])] {
                assert_eq!(got, linear(x.view(), m).unwrap(), "{pos}×{k}");
            }
        }
        let x = Array2::<f32>::ones((2, 5));
        let (good, bad) = (Matrix::from(Array2::<f32>::ones((3, 5))), Matrix::from(Array2::<f32>::ones((3, 4))));
        assert!(linear_many(x.view(), [&good, &bad]).is_err());
    }

    #[test]
    fn every_path_equals_ndarray() {
        // Both kernels: short and long `in`, decode and prefill row counts.
        for (pos, k, n) in [(1, 19, 37), (3, 64, 600), (4, 8, 1), (7, 33, 300), (64, 40, 70), (2, 1100, 9), (600, 1030, 5)] {
            check(pos, k, n);
        }
    }
}
