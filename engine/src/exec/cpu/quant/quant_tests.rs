use std::sync::Arc;

use ndarray::Array2;

use super::*;
use crate::exec::cpu::matmul::{linear, linear_many};
use crate::exec::cpu::xwt::{Product, Rows, isa, xwt_many, xwt_with};
const QK_K: usize = 256;
use crate::load::matrix::{Matrix, QuantBytes};

const TYPES: [GgmlType; 11] = GgmlType::DECODED;

/// Every instruction set this processor runs (the others fall back and are covered already).
fn sets() -> Vec<Isa> {
    match isa() {
        Isa::Avx512 => vec![Isa::Avx512, Isa::Avx2, Isa::Portable],
        Isa::Avx2 => vec![Isa::Avx2, Isa::Portable],
        Isa::Portable => vec![Isa::Portable],
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `rows · cols` values of `ty` as random but valid blocks: random bytes, finite f16 scales
/// (and finite values for the float types).
fn random_blocks(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (block, block_bytes) = ty.block_layout().unwrap();
    let count = rows * cols / block;
    let mut out = Vec::with_capacity(count * block_bytes);
    for _ in 0..count {
        let start = out.len();
        out.extend((0..block_bytes).map(|_| rng.next() as u8));
        let b = &mut out[start..];
        let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
        match ty {
            GgmlType::F32 => b.copy_from_slice(&rng.unit().to_le_bytes()),
            GgmlType::F16 => b.copy_from_slice(&f16(rng.unit())),
            GgmlType::Bf16 => b.copy_from_slice(&half::bf16::from_f32(rng.unit()).to_le_bytes()),
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => b[0..2].copy_from_slice(&f16(rng.unit() * 0.1)),
            GgmlType::Q6K => b[208..210].copy_from_slice(&f16(rng.unit() * 0.01)),
            _ => {
                b[0..2].copy_from_slice(&f16(rng.unit() * 0.1));
                b[2..4].copy_from_slice(&f16(rng.unit() * 0.1));
            }
        }
    }
    out
}

fn quant_rows(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> WeightRows<'_> {
    let (block, block_bytes) = ty.block_layout().unwrap();
    WeightRows { data: WeightData::Quant(QuantRows { ty, bytes, row_bytes: cols / block * block_bytes }), rows, cols, stride: cols }
}

fn widths(ty: GgmlType) -> Vec<usize> {
    match ty {
        GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K => vec![QK_K, 2 * QK_K, 2048],
        GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 => vec![1, 7, 17, 32, 100, 576],
        _ => vec![32, 96, 576],
    }
}

#[test]
fn every_block_type_widens_bit_for_bit_as_the_reference() {
    for ty in TYPES {
        for k in widths(ty) {
            let rows = 5;
            let bytes = random_blocks(ty, rows, k, k as u64 + 7);
            let want = dequantize(ty, &bytes, rows * k).unwrap();
            let q = match quant_rows(ty, &bytes, rows, k).data {
                WeightData::Quant(q) => q,
                _ => unreachable!(),
            };
            for set in sets() {
                let mut got = Vec::new();
                dequantize_rows(set, q, 1, 3, k, &mut got);
                let same = got.iter().zip(&want[k..4 * k]).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same && got.len() == 3 * k, "{ty} k={k} on {set:?}");
            }
        }
    }
}

/// `y = x · Wᵀ` in f64 on the reference-dequantized weights, and Σ|x·w| per output.
fn reference(x: &[f32], m: usize, x_stride: usize, w: &[f32], n: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut y, mut mag) = (vec![0.0; m * n], vec![0.0; m * n]);
    for i in 0..m {
        for j in 0..n {
            for c in 0..k {
                let p = f64::from(x[i * x_stride + c]) * f64::from(w[j * k + c]);
                y[i * n + j] += p;
                mag[i * n + j] += p.abs();
            }
        }
    }
    (y, mag)
}

fn close(got: f32, want: f64, mag: f64) -> bool {
    (f64::from(got) - want).abs() <= 1e-5 * mag + 1e-30
}

#[test]
fn every_type_shape_and_instruction_set_matches_the_dequantized_product() {
    for ty in TYPES {
        for k in widths(ty) {
            for n in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 67] {
                let bytes = random_blocks(ty, n, k, (n * 1000 + k) as u64);
                let wf = dequantize(ty, &bytes, n * k).unwrap();
                for m in [1usize, 2, 3, 4, 5, 17, 64] {
                    if n > 9 && !matches!(m, 1 | 17 | 64) {
                        continue;
                    }
                    // x rows 3 apart past `k`, y rows 2 apart past `n`: strided both ways.
                    let (xs, ys) = (k + 3, n + 2);
                    let mut rng = Rng((m * 31 + n) as u64 | 1);
                    let x: Vec<f32> = (0..m * xs).map(|_| rng.unit()).collect();
                    let (want, mag) = reference(&x, m, xs, &wf, n, k);
                    let plain = WeightRows { data: WeightData::F32(&wf), rows: n, cols: k, stride: k };
                    for set in sets() {
                        let x = Rows { data: &x, rows: m, stride: xs };
                        let mut y = vec![f32::NAN; m * ys];
                        assert!(xwt_with(set, x, quant_rows(ty, &bytes, n, k), &mut y, ys));
                        let mut y_f32 = vec![f32::NAN; m * ys];
                        assert!(xwt_with(set, x, plain, &mut y_f32, ys));
                        // With AVX2 the blocks are summed their own way (see `mod.rs`);
                        // otherwise the tile is the reference's, so the f32 kernel's bits.
                        let exact = !fused(set, ty);
                        for i in 0..m {
                            for j in 0..n {
                                let (got, at) = (y[i * ys + j], i * n + j);
                                assert!(close(got, want[at], mag[at]), "{ty} m={m} n={n} k={k} on {set:?}: ({i}, {j}) {got} vs {}", want[at]);
                                let same = got.to_bits() == y_f32[i * ys + j].to_bits();
                                assert!(same || !exact, "{ty} m={m} n={n} k={k} on {set:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_rows_bits_do_not_depend_on_the_calls_row_count_past_one() {
    let (n, k) = (70, 512);
    for ty in [GgmlType::Q4_1, GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q8_0] {
        let w = Matrix::quantized(ty, QuantBytes::Owned(random_blocks(ty, n, k, 3).into()), n, k).unwrap();
        let x = Array2::from_shape_fn((64, k), |(i, c)| ((i * 7 + c * 13) % 23) as f32 * 0.05 - 0.5);
        let all = linear(x.view(), &w).unwrap();
        for i in [0, 17, 62] {
            let two = linear(x.slice(ndarray::s![i..i + 2, ..]), &w).unwrap();
            assert_eq!(two.row(0), all.row(i), "{ty} row {i}");
            // Decode rounds its own way, within float rounding of the prefill's row.
            let one = linear(x.slice(ndarray::s![i..i + 1, ..]), &w).unwrap();
            let wf = w.to_f32();
            for (j, (&a, &b)) in one.row(0).iter().zip(all.row(i)).enumerate() {
                let mag: f32 = x.row(i).iter().zip(wf.row(j)).map(|(p, q)| (p * q).abs()).sum();
                assert!((a - b).abs() <= 1e-5 * mag, "{ty} row {i} column {j}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn products_of_mixed_types_run_together() {
    let k = 512;
    let tys = [GgmlType::Q4_1, GgmlType::Q6K, GgmlType::F16, GgmlType::Q5_0, GgmlType::Q8_0];
    let ns = [64, 9, 33, 5, 40];
    let bytes: Vec<Vec<u8>> = tys.iter().zip(ns).enumerate().map(|(s, (&ty, n))| random_blocks(ty, n, k, s as u64 + 11)).collect();
    for m in [1usize, 3, 17] {
        let mut rng = Rng(m as u64 + 5);
        let x: Vec<f32> = (0..m * k).map(|_| rng.unit()).collect();
        let mut ys: Vec<Vec<f32>> = ns.iter().map(|&n| vec![f32::NAN; m * n]).collect();
        let mut products: Vec<Product<'_>> = ys.iter_mut().enumerate().map(|(p, y)| Product { w: quant_rows(tys[p], &bytes[p], ns[p], k), y, y_stride: ns[p] }).collect();
        assert!(xwt_many(Rows { data: &x, rows: m, stride: k }, &mut products));
        for (p, y) in ys.iter().enumerate() {
            let wf = dequantize(tys[p], &bytes[p], ns[p] * k).unwrap();
            let (want, mag) = reference(&x, m, k, &wf, ns[p], k);
            assert!(y.iter().zip(want.iter().zip(&mag)).all(|(&g, (&w, &a))| close(g, w, a)), "{} m={m}", tys[p]);
        }
    }
    // Through `linear_many`, as the forward pass calls it: the same bits as one at a time.
    let ms: Vec<Matrix> = tys.iter().zip(ns).zip(&bytes).map(|((&ty, n), b)| Matrix::quantized(ty, QuantBytes::Owned(Arc::from(b.as_slice())), n, k).unwrap()).collect();
    let x = Array2::from_shape_fn((4, k), |(i, c)| ((i + c) % 9) as f32 * 0.1 - 0.4);
    let [a, b, c] = linear_many(x.view(), [&ms[0], &ms[1], &ms[2]]).unwrap();
    assert_eq!(a, linear(x.view(), &ms[0]).unwrap());
    assert_eq!(b, linear(x.view(), &ms[1]).unwrap());
    assert_eq!(c, linear(x.view(), &ms[2]).unwrap());
}

#[test]
fn float_tensors_whose_bytes_are_not_aligned_are_widened_instead() {
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Bf16] {
        for k in [3usize, 17, 40] {
            let n = 6;
            let raw = random_blocks(ty, n, k, 9);
            let mut shifted = vec![0u8];
            shifted.extend_from_slice(&raw);
            let wf = dequantize(ty, &raw, n * k).unwrap();
            let x: Vec<f32> = (0..2 * k).map(|c| (c % 5) as f32 * 0.25 - 0.5).collect();
            let (want, mag) = reference(&x, 2, k, &wf, n, k);
            for set in sets() {
                let mut y = vec![f32::NAN; 2 * n];
                assert!(xwt_with(set, Rows { data: &x, rows: 2, stride: k }, quant_rows(ty, &shifted[1..], n, k), &mut y, n));
                assert!(y.iter().zip(want.iter().zip(&mag)).all(|(&g, (&w, &a))| close(g, w, a)), "{ty} k={k} on {set:?}");
            }
        }
    }
}

/// `x · Wᵀ` for `m` rows of `x` and `n` rows of `ty` blocks, on the dispatch `xwt` picks.
fn product(ty: GgmlType, bytes: &[u8], n: usize, k: usize, x: &[f32], m: usize) -> Vec<f32> {
    let mut y = vec![f32::NAN; m * n];
    assert!(xwt_with(isa(), Rows { data: x, rows: m, stride: k }, quant_rows(ty, bytes, n, k), &mut y, n));
    y
}

#[test]
fn a_columns_bits_do_not_depend_on_the_parallel_piece_it_falls_in() {
    // 300 rows split in pieces between the threads; the same rows alone, or as a
    // differently placed slice, are the same bits (each output is its own FMA chain).
    let (n, k, m) = (300, 512, 64);
    for ty in [GgmlType::Q4_1, GgmlType::Q4K, GgmlType::Q8_0] {
        let bytes = random_blocks(ty, n, k, 21);
        let row_bytes = quant_rows(ty, &bytes, n, k).data;
        let WeightData::Quant(q) = row_bytes else { unreachable!() };
        let mut rng = Rng(77);
        let x: Vec<f32> = (0..m * k).map(|_| rng.unit()).collect();
        let all = product(ty, &bytes, n, k, &x, m);
        for (j0, len) in [(0, 1), (5, 7), (36, 6), (131, 169), (299, 1)] {
            let part = product(ty, &bytes[j0 * q.row_bytes..(j0 + len) * q.row_bytes], len, k, &x, m);
            for i in 0..m {
                for j in 0..len {
                    assert_eq!(part[i * len + j].to_bits(), all[i * n + j0 + j].to_bits(), "{ty} rows {j0}..{}: ({i}, {j})", j0 + len);
                }
            }
        }
    }
}

#[test]
fn buffers_a_thread_keeps_between_calls_carry_nothing_into_the_next() {
    // A wide call, then narrower ones with fewer rows on the same thread: each must equal the
    // same call on a fresh thread (whose buffers are new).
    let shapes = [(GgmlType::Q6K, 40, 2048, 64), (GgmlType::Q5_0, 9, 96, 3), (GgmlType::Q4K, 13, 256, 17), (GgmlType::Q8_0, 7, 32, 2)];
    let inputs: Vec<(GgmlType, Vec<u8>, usize, usize, Vec<f32>, usize)> = shapes
        .iter()
        .enumerate()
        .map(|(s, &(ty, n, k, m))| {
            let mut rng = Rng(s as u64 + 3);
            (ty, random_blocks(ty, n, k, s as u64 + 40), n, k, (0..m * k).map(|_| rng.unit()).collect(), m)
        })
        .collect();
    let here: Vec<Vec<f32>> = inputs.iter().map(|(ty, b, n, k, x, m)| product(*ty, b, *n, *k, x, *m)).collect();
    for ((ty, b, n, k, x, m), got) in inputs.iter().zip(&here) {
        let fresh = std::thread::scope(|s| s.spawn(|| product(*ty, b, *n, *k, x, *m)).join().unwrap());
        let same = got.iter().zip(&fresh).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{ty} {m}×{k}×{n}");
    }
}
