//! A 64-token prefill of a real GGUF with its weights as downloaded, on the CPU: medians of
//! interleaved passes, wall time and processor time over all threads (so a figure taken on a
//! shared machine can be read against what the two cores would give unshared).
//!
//! - `last row`: nothing captured, so only the last row's logits are computed (what llama.cpp
//!   computes by default, and what sampling the next token needs);
//! - `all rows`: `hook_logits` captured, so the LM head runs on all 64 rows (what `glassbox
//!   bench` calls "no capture": the logits of every position are kept);
//! - `full capture`: every hook recorded.
//!
//! `cargo run --release --example prefill_bench -p glassbox-engine -- MODEL.gguf [reps] [tokens] [only: last|all|full]`
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::{CaptureFilter, HookKey, Model, WeightsMode};

/// Nanoseconds this process's threads have spent on a processor.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()).filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok()).sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: prefill_bench MODEL.gguf [reps] [tokens]");
    let reps: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(7);
    let n: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(64);
    let model = Arc::new(Model::load_with(Path::new(path), WeightsMode::Native).unwrap());
    let vocab = model.config.vocab_size as u32;
    let ids: Vec<u32> = (0..n as u32).map(|i| (i * 7919 + 2) % vocab.min(32000)).collect();
    let mut exec = CpuExecutor::new(model);
    let only = args.get(4).map_or("", String::as_str);
    let filters: Vec<_> = [("last row", CaptureFilter::Nothing), ("all rows", CaptureFilter::keys([HookKey::Logits])), ("full capture", CaptureFilter::All)].into_iter().filter(|f| f.0.contains(only)).collect();
    let mut wall = vec![Vec::new(); filters.len()];
    let mut cpu = vec![Vec::new(); filters.len()];
    for rep in 0..=reps {
        for (f, (_, filter)) in filters.iter().enumerate() {
            exec.reset();
            let (t, c) = (Instant::now(), cpu_ns());
            drop(exec.forward(&ids, PassOptions::capture(filter.clone())).unwrap());
            if rep > 0 {
                wall[f].push(t.elapsed().as_secs_f64() * 1e3);
                cpu[f].push((cpu_ns() - c) as f64 * 1e-6);
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("{path}: prefill of {n} tokens, {reps} interleaved passes each, medians (load average {})", load.split_whitespace().next().unwrap_or("?"));
    for (f, (name, _)) in filters.iter().enumerate() {
        let c = median(cpu[f].clone());
        println!("  {name:<13} wall {:>8.1} ms   processor {:>8.1} ms (÷ 2 cores: {:>6.1} ms)", median(wall[f].clone()), c, c / 2.0);
    }
}
