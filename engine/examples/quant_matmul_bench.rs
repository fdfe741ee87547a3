//! Speed of `x · Wᵀ` with GGUF blocks read as they lie (`linear` on `Matrix::quantized`) against
//! the f32 kernel on the same, dequantized weights: medians of interleaved repetitions.
//!
//! - `shapes`: random valid blocks at SmolLM2's, Gemma 3 270M's and Llama 3.1 8B's shapes, one
//!   row of `x` (decode) and 64 (prefill); G weight-elements/s and GFLOP/s.
//! - `models`: every matrix of a real GGUF, in file order, for one decoded token (the tied head
//!   once, one row) and for a 64-token prefill (the head on the last row only): the matmul-only
//!   time per token that bounds tok/s.
//!
//! `cargo run --release --example quant_matmul_bench -p glassbox-engine -- [shapes|models|all] [reps] [shape filter]`
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use glassbox_engine::exec::cpu::matmul::linear;
use glassbox_engine::exec::cpu::xwt::isa;
use glassbox_engine::load::gguf::dequant::dequantize;
use glassbox_engine::load::gguf::{GgmlType, GgufFile};
use glassbox_engine::load::matrix::{Matrix, QuantBytes};
use ndarray::{Array2, s};

/// Nanoseconds this process's threads have spent on a processor (`/proc/self/task/*/schedstat`),
/// so a figure is not inflated by time other programs took on a shared machine.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()).filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok()).sum()
}

/// Medians (seconds) of `reps` interleaved runs of each closure, after one warm-up each: wall
/// time, and processor time over all threads (`cpu_ns`).
fn medians(reps: usize, fs: &mut [&mut dyn FnMut()]) -> (Vec<f64>, Vec<f64>) {
    fs.iter_mut().for_each(|f| f());
    let mut times = vec![Vec::with_capacity(reps); fs.len()];
    let mut cpu = vec![Vec::with_capacity(reps); fs.len()];
    for _ in 0..reps {
        for ((f, t), c) in fs.iter_mut().zip(&mut times).zip(&mut cpu) {
            let (start, c0) = (Instant::now(), cpu_ns());
            f();
            t.push(start.elapsed().as_secs_f64());
            c.push((cpu_ns() - c0) as f64 * 1e-9);
        }
    }
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    (times.into_iter().map(median).collect(), cpu.into_iter().map(median).collect())
}

fn random_blocks(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let (block, block_bytes) = ty.block_layout().unwrap();
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let scale = |v: u64| half::f16::from_f32(((v >> 40) % 1000) as f32 * 1e-5 + 1e-3).to_le_bytes();
    let mut out = Vec::with_capacity(rows * cols / block * block_bytes);
    for _ in 0..rows * cols / block {
        let start = out.len();
        out.extend((0..block_bytes).map(|_| next() as u8));
        let b = &mut out[start..];
        let at: &[usize] = match ty {
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => &[0],
            GgmlType::Q6K => &[208],
            _ => &[0, 2],
        };
        for &a in at {
            b[a..a + 2].copy_from_slice(&scale(next()));
        }
    }
    out
}

fn matrices(ty: GgmlType, bytes: Vec<u8>, n: usize, k: usize) -> (Matrix, Matrix) {
    let f32s = Array2::from_shape_vec((n, k), dequantize(ty, &bytes, n * k).unwrap()).unwrap();
    (Matrix::quantized(ty, QuantBytes::Owned(Arc::from(bytes)), n, k).unwrap(), Matrix::from(f32s))
}

fn shapes(reps: usize, only: &str) {
    use GgmlType::*;
    let table: [(&str, usize, usize, &[GgmlType]); 13] = [
        ("smollm2 gate/up", 576, 1536, &[Q4_1]),
        ("smollm2 down", 1536, 576, &[Q4_1]),
        ("smollm2 q/o", 576, 576, &[Q4_1]),
        ("smollm2 k/v", 576, 192, &[Q4_1]),
        ("smollm2 head", 576, 49152, &[Q8_0]),
        ("gemma gate/up", 640, 2048, &[Q5_0, Q8_0]),
        ("gemma down", 2048, 640, &[Q6K, Q4K]),
        ("gemma q", 640, 1024, &[Q5_0]),
        ("gemma o", 1024, 640, &[Q4K]),
        ("gemma k/v", 640, 256, &[Q5_0, Q8_0]),
        ("gemma head", 640, 262144, &[Q8_0]),
        ("llama8b gate/up", 4096, 14336, &[Q4K]),
        ("llama8b down", 14336, 4096, &[Q6K]),
    ];
    println!("{:<16} {:>6} {:>7} {:>5} {:>3} | {:>9} {:>7} {:>6} | {:>9} {:>7} {:>6} | {:>5}", "shape", "in", "out", "type", "m", "quant ms", "Gw/s", "GF/s", "f32 ms", "Gw/s", "GF/s", "ratio");
    for (name, k, n, tys) in table.into_iter().filter(|t| t.0.contains(only)) {
        for &ty in tys {
            let (q, f) = matrices(ty, random_blocks(ty, n, k, (n * k) as u64), n, k);
            for m in [1usize, 64] {
                let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 7) % 13) as f32 * 0.01 - 0.06);
                let reps = if n * k * m > 1 << 28 { reps.div_ceil(4).max(3) } else { reps };
                let (t, _) = medians(reps, &mut [&mut || drop(std::hint::black_box(linear(x.view(), &q).unwrap())), &mut || drop(std::hint::black_box(linear(x.view(), &f).unwrap()))]);
                let w = |s: f64| (n * k) as f64 / s / 1e9;
                let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
                println!(
                    "{name:<16} {k:>6} {n:>7} {:>5} {m:>3} | {:>9.3} {:>7.2} {:>6.1} | {:>9.3} {:>7.2} {:>6.1} | {:>5.2}",
                    ty.to_string(),
                    t[0] * 1e3,
                    w(t[0]),
                    gf(t[0]),
                    t[1] * 1e3,
                    w(t[1]),
                    gf(t[1]),
                    t[1] / t[0]
                );
            }
        }
    }
}

/// Every 2-D tensor of a GGUF as (name, quantized, f32); the token embedding last (the tied
/// head), unless the file has its own `output.weight`.
fn model_matrices(path: &Path) -> Vec<(String, Matrix, Matrix)> {
    let file = GgufFile::open(path).unwrap();
    let has_output = file.tensor("output.weight").is_some();
    let mut out = Vec::new();
    let mut head = None;
    for info in file.tensors() {
        if info.dims.len() != 2 || (has_output && info.name == "token_embd.weight") {
            continue;
        }
        let (k, n) = (info.dims[0] as usize, info.dims[1] as usize);
        let bytes = file.tensor_bytes(info).unwrap().to_vec();
        let (q, f) = matrices(info.ggml_type, bytes, n, k);
        if info.name == "token_embd.weight" || info.name == "output.weight" {
            head = Some((info.name.clone(), q, f));
        } else {
            out.push((info.name.clone(), q, f));
        }
    }
    out.extend(head);
    out
}

fn models(reps: usize) {
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = format!("{home}/.cache/glassbox/models");
    for path in [format!("{cache}/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"), format!("{cache}/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")] {
        let path = path.as_str();
        if !Path::new(path).exists() {
            println!("{path}: not found, skipped");
            continue;
        }
        let ms = model_matrices(Path::new(path));
        let weights: usize = ms.iter().map(|(_, q, _)| q.nrows() * q.ncols()).sum();
        let qbytes: usize = ms.iter().map(|(_, q, _)| q.bytes()).sum();
        println!("{path}: {} matrices, {:.0} M weights, {:.0} MB as blocks, {:.0} MB as f32", ms.len(), weights as f64 / 1e6, qbytes as f64 / 1e6, weights as f64 * 4e-6);
        let last = ms.len() - 1;
        for m in [1usize, 64] {
            let xs: Vec<Array2<f32>> = ms.iter().map(|(_, q, _)| Array2::from_shape_fn((m, q.ncols()), |(i, j)| ((i * 31 + j * 7) % 13) as f32 * 0.01 - 0.06)).collect();
            let run = |f32s: bool| {
                for (i, ((_, q, f), x)) in ms.iter().zip(&xs).enumerate() {
                    // The head reads only the last row in a prefill, as llama.cpp's does.
                    let x = if i == last { x.slice(s![m - 1.., ..]) } else { x.view() };
                    drop(std::hint::black_box(linear(x, if f32s { f } else { q }).unwrap()));
                }
            };
            let (t, cpu) = medians(reps, &mut [&mut || run(false), &mut || run(true)]);
            let what = if m == 1 { "decode, one token" } else { "prefill, 64 tokens" };
            let bound = if m == 1 { "decode" } else { "prefill" };
            println!("  {what:<19}: quant {:>8.2} ms   f32 {:>8.2} ms   ({:.2}× the f32 speed; the matmuls alone bound {bound} at {:.0} tok/s)", t[0] * 1e3, t[1] * 1e3, t[1] / t[0], m as f64 / t[0]);
            println!("  {:<19}  processor time, all threads: quant {:>8.2} ms   f32 {:>8.2} ms   (÷ 2 cores, unshared: {bound} at {:.0} tok/s)", "", cpu[0] * 1e3, cpu[1] * 1e3, 2.0 * m as f64 / cpu[0]);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("all", String::as_str);
    let reps = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(15);
    println!("instruction set: {:?}, threads {}, {reps} interleaved repetitions, medians", isa(), rayon::current_num_threads());
    if what == "shapes" || what == "all" {
        shapes(reps, args.get(3).map_or("", String::as_str));
    }
    if what == "models" || what == "all" {
        models(reps);
    }
}
