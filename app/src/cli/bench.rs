//! `glassbox bench`: load time, prefill of the fixed 64-token prompt with and without full
//! capture, decode speed, peak memory; medians over repeated runs. With `--device gpu` the
//! CPU figures are measured in the same run and the ratios printed. `--frames` and
//! `--patching` add the GUI's frame time and a patching grid through the app's model thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use glassbox_engine::executor::{Executor, PassOptions};
use glassbox_engine::hooks::{BlockHook, HookKind};
use glassbox_engine::sampling::SamplingParams;
use glassbox_engine::trace::CaptureFilter;
use glassbox_engine::Model;
use serde_json::{Value, json};

use super::output::outln;
use super::model_arg::{make_executor, resolve_model_path};
use glassbox_engine::{Device, Precision};

/// The fixed benchmark prompt: 64 SmolLM2 tokens.
const PROMPT64: &str = include_str!("../../../tests/fixtures/bench/prompt64.txt");

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Repetitions per figure (the median is reported)
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Tokens per decode run
    #[arg(long, default_value_t = 32)]
    pub decode_tokens: usize,
    /// Also print the time per kind of step for one captured prefill and one decode pass
    #[arg(long)]
    pub per_op: bool,
    /// Also measure the GUI's frame time on the attention overview (all layers × heads)
    #[arg(long)]
    pub frames: bool,
    /// Tokens for the frame-time measurement
    #[arg(long, default_value_t = 128)]
    pub frame_tokens: usize,
    /// Also time a patching grid (resid_pre, every layer × 6 positions of "The capital city
    /// of France/Italy is") through the app's model thread, as the Experiments view runs it
    #[arg(long)]
    pub patching: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn time_ms(f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct Figures {
    device: String,
    prefill_capture_ms: f64,
    prefill_ms: f64,
    decode_tok_s: f64,
    decode_capture_tok_s: f64,
}

/// Prefill and decode figures for one executor.
fn measure(exec: &mut dyn Executor, ids: &[u32], args: &BenchArgs) -> Result<Figures> {
    let mut prefill = |capture: CaptureFilter| -> Result<f64> {
        exec.reset();
        exec.forward(ids, PassOptions::capture(capture.clone()))?; // warm-up
        let mut times = Vec::new();
        for _ in 0..args.runs {
            exec.reset();
            times.push(time_ms(&mut || exec.forward(ids, PassOptions::capture(capture.clone())).map(|_| ()).map_err(Into::into))?);
        }
        Ok(median(times))
    };
    let prefill_capture_ms = prefill(CaptureFilter::All)?;
    let prefill_ms = prefill(CaptureFilter::Nothing)?;
    // What the app records per generated token: patterns and the residual stream.
    let per_step = CaptureFilter::kinds([
        HookKind::Block(BlockHook::Pattern),
        HookKind::Block(BlockHook::ResidPost),
        HookKind::Embed,
    ]);
    let decode_tok_s = decode(exec, ids, CaptureFilter::Nothing, args)?;
    let decode_capture_tok_s = decode(exec, ids, per_step, args)?;
    Ok(Figures {
        device: exec.device_name(),
        prefill_capture_ms,
        prefill_ms,
        decode_tok_s,
        decode_capture_tok_s,
    })
}

/// Tokens per second of single-token passes on top of the prompt's KV cache (median run).
fn decode(exec: &mut dyn Executor, ids: &[u32], capture: CaptureFilter, args: &BenchArgs) -> Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..args.runs.clamp(1, 3) {
        exec.reset();
        let options = PassOptions { sampling: SamplingParams::greedy(), ..PassOptions::capture(CaptureFilter::Nothing) };
        let mut next = exec.forward(ids, options)?.sampled.context("no token sampled")?;
        let step_options = PassOptions { capture: capture.clone(), ..PassOptions::default() };
        let start = Instant::now();
        for _ in 0..args.decode_tokens {
            next = exec.forward(&[next], step_options.clone())?.sampled.context("no token sampled")?;
        }
        rates.push(args.decode_tokens as f64 / start.elapsed().as_secs_f64());
    }
    Ok(median(rates))
}

pub fn run(model_path: Option<PathBuf>, args: BenchArgs, gui: &super::GuiHooks) -> Result<()> {
    let path = resolve_model_path(model_path)?;
    let model = Arc::new(Model::load(&path)?); // first load warms the page cache
    let mut loads = Vec::new();
    for _ in 0..args.runs.clamp(1, 5) {
        loads.push(time_ms(&mut || Model::load(&path).map(|_| ()).map_err(Into::into))?);
    }
    let load_ms = median(loads);
    let tok = model.tokenizer.as_ref().context("the benchmark prompt needs the model's tokenizer.json")?;
    let ids = tok.encode(PROMPT64)?;

    let setup_start = Instant::now();
    let mut exec = make_executor(model.clone(), args.device, args.precision)?;
    let setup_ms = setup_start.elapsed().as_secs_f64() * 1e3;
    let (profile, decode_profile) = if args.per_op {
        let prefill = per_op_profile(exec.as_mut(), &ids, CaptureFilter::All)?;
        let mut decode = Vec::new();
        for _ in 0..8 {
            decode = profile_pass(exec.as_mut(), &ids[..1], CaptureFilter::Nothing)?;
        }
        (prefill, decode)
    } else {
        (Vec::new(), Vec::new())
    };
    let main = measure(exec.as_mut(), &ids, &args)?;
    drop(exec);
    let cpu = if args.device == Device::Cpu {
        None
    } else {
        let mut cpu_exec = make_executor(model.clone(), Device::Cpu, Precision::F32)?;
        Some(measure(cpu_exec.as_mut(), &ids, &args)?)
    };
    let frames = if args.frames {
        let (median_ms, p95_ms) = (gui.frame_bench)(model.clone(), args.frame_tokens, 120)?;
        let (captured, held) = (gui.trace_memory)(model.clone(), ids.len())?;
        Some(json!({
            "view": "attention overview (all layers × heads)", "tokens": args.frame_tokens, "median_ms": median_ms, "p95_ms": p95_ms,
            "trace_memory": {"tokens": ids.len(), "captured_mib": captured as f64 / 1048576.0, "held_by_ui_and_worker_mib": held as f64 / 1048576.0},
        }))
    } else {
        None
    };
    let patching = if args.patching {
        let (cells, passes, seconds) = (gui.patching)(model.clone(), args.device)?;
        Some(json!({"hook": "resid_pre", "cells": cells, "passes": passes, "seconds": seconds, "ms_per_pass": seconds * 1e3 / passes.max(1) as f64}))
    } else {
        None
    };
    let peak = peak_rss_mib();
    let figures = |f: &Figures| {
        json!({
            "device": f.device,
            "prefill64_full_capture_ms": f.prefill_capture_ms,
            "prefill64_no_capture_ms": f.prefill_ms,
            "decode_tokens_per_s": f.decode_tok_s,
            "decode_tokens_per_s_with_capture": f.decode_capture_tok_s,
        })
    };
    let mut out = json!({
        "model": model.source.name,
        "prompt_tokens": ids.len(),
        "runs": args.runs,
        "load_from_cache_ms": load_ms,
        "executor_setup_ms": setup_ms,
        "peak_rss_mib": peak,
        "result": figures(&main),
    });
    if let Some(cpu) = &cpu {
        out["cpu"] = figures(cpu);
        out["ratios_gpu_over_cpu"] = json!({
            "prefill64_full_capture_speedup": cpu.prefill_capture_ms / main.prefill_capture_ms,
            "prefill64_no_capture_speedup": cpu.prefill_ms / main.prefill_ms,
            "decode_speedup": main.decode_tok_s / cpu.decode_tok_s,
        });
    }
    if let Some(frames) = frames {
        out["gui_frame_time"] = frames;
    }
    if let Some(p) = patching {
        out["gui_patching_grid"] = p;
    }
    if !profile.is_empty() {
        out["per_op_ms"] = json!(profile);
        out["decode_per_op_ms"] = json!(decode_profile);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        print_text(&out)?;
    }
    Ok(())
}

fn print_text(out: &Value) -> Result<()> {
    outln!("model {} · prompt {} tokens · median of {} runs", out["model"], out["prompt_tokens"], out["runs"])?;
    outln!("load from cache        {:>9.1} ms", out["load_from_cache_ms"].as_f64().unwrap_or(f64::NAN))?;
    outln!("executor setup         {:>9.1} ms", out["executor_setup_ms"].as_f64().unwrap_or(f64::NAN))?;
    for key in ["result", "cpu"] {
        let f = &out[key];
        if f.is_null() {
            continue;
        }
        outln!("[{}]", f["device"].as_str().unwrap_or("?"))?;
        outln!("  prefill-64, full capture {:>9.1} ms", f["prefill64_full_capture_ms"].as_f64().unwrap_or(f64::NAN))?;
        outln!("  prefill-64, no capture   {:>9.1} ms", f["prefill64_no_capture_ms"].as_f64().unwrap_or(f64::NAN))?;
        outln!("  decode                   {:>9.1} tokens/s", f["decode_tokens_per_s"].as_f64().unwrap_or(f64::NAN))?;
        outln!("  decode, capture per step {:>9.1} tokens/s", f["decode_tokens_per_s_with_capture"].as_f64().unwrap_or(f64::NAN))?;
    }
    if !out["ratios_gpu_over_cpu"].is_null() {
        outln!("GPU vs CPU: {}", out["ratios_gpu_over_cpu"])?;
    }
    if let Some(ops) = out["per_op_ms"].as_array() {
        let parts: Vec<String> = ops.iter().map(|o| format!("{} {:.1}", o[0].as_str().unwrap_or("?"), o[1].as_f64().unwrap_or(0.0))).collect();
        outln!("time per step kind (ms, one captured prefill): {}", parts.join(", "))?;
    }
    if let Some(ops) = out["decode_per_op_ms"].as_array() {
        let total: f64 = ops.iter().map(|o| o[1].as_f64().unwrap_or(0.0)).sum();
        let parts: Vec<String> = ops.iter().take(8).map(|o| format!("{} {:.2}", o[0].as_str().unwrap_or("?"), o[1].as_f64().unwrap_or(0.0))).collect();
        outln!("time per step kind (ms, one decode pass, total {total:.1}): {}", parts.join(", "))?;
    }
    if !out["gui_frame_time"].is_null() {
        let f = &out["gui_frame_time"];
        outln!("GUI frame, attention overview at {} tokens: median {:.2} ms, p95 {:.2} ms", f["tokens"], f["median_ms"].as_f64().unwrap_or(f64::NAN), f["p95_ms"].as_f64().unwrap_or(f64::NAN))?;
    }
    if !out["gui_patching_grid"].is_null() {
        let p = &out["gui_patching_grid"];
        outln!(
            "GUI patching grid (resid_pre, {} cells, {} passes, model thread): {:.2} s, {:.1} ms per pass",
            p["cells"],
            p["passes"],
            p["seconds"].as_f64().unwrap_or(f64::NAN),
            p["ms_per_pass"].as_f64().unwrap_or(f64::NAN)
        )?;
    }
    outln!("peak memory            {:>9.1} MiB", out["peak_rss_mib"].as_f64().unwrap_or(f64::NAN))?;
    Ok(())
}

/// Milliseconds spent in each kind of step over one captured prefill, largest first: where
/// the time goes.
pub fn per_op_profile(exec: &mut dyn Executor, ids: &[u32], capture: CaptureFilter) -> Result<Vec<(String, f64)>> {
    exec.reset();
    profile_pass(exec, ids, capture)
}

/// [`per_op_profile`] for one pass on top of whatever the KV cache holds.
fn profile_pass(exec: &mut dyn Executor, ids: &[u32], capture: CaptureFilter) -> Result<Vec<(String, f64)>> {
    use std::collections::BTreeMap;
    exec.begin(ids, PassOptions::capture(capture))?;
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    loop {
        let start = Instant::now();
        let Some(step) = exec.step()? else { break };
        let kind = match step {
            glassbox_engine::Step::Layer(_, op) => op.name().to_string(),
            other => other.to_string(),
        };
        *totals.entry(kind).or_default() += start.elapsed().as_secs_f64() * 1e3;
    }
    let mut list: Vec<(String, f64)> = totals.into_iter().collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(list)
}
