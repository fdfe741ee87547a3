//! GFLOP/s (and GB/s of weights) of the CPU's `x · Wᵀ` at SmolLM2's shapes: the dispatch the
//! executor uses (`linear`), the row-dot kernel alone (`xwt`), the broadcast-panel kernel alone
//! (`wide`, AVX-512 only), and the gemm crate on a transposed copy (`[in, out]`, the layout
//! Glassbox no longer keeps) for comparison.
//! `cargo run --release --example matmul_speed -p glassbox-engine`
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::time::Instant;

use glassbox_engine::exec::cpu::xwt::{Rows, WeightData, WeightRows, isa, xwt};
use ndarray::Array2;

fn main() {
    println!("instruction set: {:?}, threads {}", isa(), rayon::current_num_threads());
    for (m, k, n) in [(1usize, 576usize, 1536usize), (1, 1536, 576), (1, 576, 49152), (64, 576, 1536), (64, 1536, 576), (64, 576, 576), (64, 576, 49152), (1024, 576, 1536), (1024, 1536, 576)] {
        let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 7) % 13) as f32 * 0.01);
        let w = Array2::from_shape_fn((n, k), |(i, j)| ((i * 17 + j * 3) % 11) as f32 * 0.01); // [out, in]
        let wt = w.t().as_standard_layout().into_owned();
        let mut y = vec![0.0f32; m * n];
        let reps = if m >= 1024 { 5 } else if m == 1 { 200 } else { 20 };
        let time = |f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        };
        let ours = time(&mut || {
            let ok = xwt(Rows { data: x.as_slice().unwrap(), rows: m, stride: k }, WeightRows { data: WeightData::F32(w.as_slice().unwrap()), rows: n, cols: k, stride: k }, &mut y, n);
            assert!(ok);
        });
        let wide_rows = WeightRows { data: WeightData::F32(w.as_slice().unwrap()), rows: n, cols: k, stride: k };
        let wide_runs = glassbox_engine::exec::cpu::wide::fits(m, &wide_rows);
        let wide = time(&mut || {
            let x = Rows { data: x.as_slice().unwrap(), rows: m, stride: k };
            let _ = glassbox_engine::exec::cpu::wide::xwt_wide(x, wide_rows, &mut y, n);
        });
        // Not run (one row, or no AVX-512): no figure.
        let wide = if wide_runs { wide } else { f64::NAN };
        let theirs = time(&mut || {
            let _ = std::hint::black_box(glassbox_engine::exec::cpu::matmul::matmul(x.view(), wt.view()));
        });
        let matrix = glassbox_engine::load::matrix::Matrix::from(w.clone());
        let used = time(&mut || {
            let _ = std::hint::black_box(glassbox_engine::exec::cpu::matmul::linear(x.view(), &matrix));
        });
        let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
        let gb = |s: f64| (n * k * 4) as f64 / s / 1e9;
        println!(
            "{m:>5}x{k:>5}x{n:>6}: linear {:>8.3} ms ({:>5.0} GF/s, {:>5.1} GB/s)  xwt {:>8.3} ms ({:>5.0})  wide {:>8.3} ms ({:>5.0})  gemm [in,out] {:>8.3} ms ({:>5.0})",
            used * 1e3, gf(used), gb(used), ours * 1e3, gf(ours), wide * 1e3, gf(wide), theirs * 1e3, gf(theirs)
        );
    }
}
