//! Times the prefill matmul shapes of SmolLM2 (x·Wᵀ) through the CPU executor's `matmul` on `[in, out]` weights.
//! `cargo run --release --example matmul_speed -p glassbox-engine`
use std::time::Instant;

use glassbox_engine::cpu::matmul::linear_both;
use ndarray::Array2;

fn main() {
    for (m, k, n) in [(64, 576, 1536), (64, 1536, 576), (64, 576, 576), (64, 576, 49152), (1, 576, 1536), (1, 576, 49152)] {
        let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 7) % 13) as f32 * 0.01);
        let w = Array2::from_shape_fn((n, k), |(i, j)| ((i * 17 + j * 3) % 11) as f32 * 0.01);
        let wt = w.t().as_standard_layout().into_owned(); // [in, out], as the CPU executor keeps it
        let _ = linear_both(x.view(), w.view(), wt.view());
        let reps = 20;
        let start = Instant::now();
        for _ in 0..reps {
            let _ = std::hint::black_box(linear_both(x.view(), w.view(), wt.view()));
        }
        let s = start.elapsed().as_secs_f64() / reps as f64;
        let gflops = 2.0 * (m * k * n) as f64 / s / 1e9;
        let gbs = (n * k * 4) as f64 / s / 1e9;
        println!("{m:>3}x{k:>5}x{n:>6}: {:>8.3} ms  {gflops:>7.1} GFLOP/s  {gbs:>6.1} GB/s weights", s * 1e3);
    }
}
