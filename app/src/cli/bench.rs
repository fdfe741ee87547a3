//! `glassbox bench`: what it costs to look inside the model. Medians over repeated runs of
//! load → ready, prefill with every hook captured and with only the logits, decode, peak
//! memory of a fresh process, and where the time of a pass goes, op by op. With `--device gpu`
//! the CPU figures are measured in the same run and the ratios printed.
//!
//! Both prefill figures compute the logits of every position (a full capture records them;
//! the "no capture" run keeps only them), so they differ by exactly the capture.
//! `--frames` and `--patching` add the GUI's frame time and a patching grid through the app's
//! model thread.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use glassbox_engine::exec::executor::{Executor, PassOptions, StepOutput};
use glassbox_engine::program::hooks::HookKey;
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{Model, Step};
use serde_json::{Value, json};

use super::model_arg::{make_executor, resolve_model_path};
use super::output::outln;
use glassbox_engine::{Device, Precision};

/// The fixed benchmark prompt: 64 SmolLM2 tokens (longer prompts repeat it).
const PROMPT64: &str = include_str!("../../../tests/fixtures/bench/prompt64.txt");

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Prompt length for the prefill figures (the 64-token prompt, repeated as needed)
    #[arg(long, default_value_t = 64)]
    pub tokens: usize,
    /// Repetitions per figure (the median is reported; long prompts run fewer)
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Tokens per decode run
    #[arg(long, default_value_t = 32)]
    pub decode_tokens: usize,
    /// Also print the time per kind of step (inside the executor's thread pool, medians)
    #[arg(long)]
    pub per_op: bool,
    /// Also measure the GUI's frame time on the attention overview (all layers × heads) and on
    /// the side-by-side view with SmolLM2 and Gemma 3 270M runs shown (when both are cached)
    #[arg(long)]
    pub frames: bool,
    /// Tokens for the frame-time measurement
    #[arg(long, default_value_t = 128)]
    pub frame_tokens: usize,
    /// Internal: load once, run one captured prefill, print this process's peak memory
    #[arg(long, hide = true)]
    pub rss_probe: bool,
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

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    vm_mib("VmHWM:")
}

/// A `/proc/self/status` memory line (`VmHWM:`, `VmRSS:`), in MiB.
fn vm_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The 1-minute load average: how busy the machine was (`None` off Linux).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// `n` ids: the 64-token prompt, repeated (after the BOS id where the model expects one:
/// Gemma).
fn prompt_ids(model: &Model, n: usize) -> Result<Vec<u32>> {
    let tok = model.tokenizer.as_ref().context("the benchmark prompt needs the model's tokenizer.json")?;
    let base = tok.encode(PROMPT64)?;
    anyhow::ensure!(!base.is_empty(), "the benchmark prompt encodes to no tokens");
    let with_bos = tok.encode_prompt(PROMPT64)?;
    let bos = &with_bos[..with_bos.len() - base.len()];
    Ok(bos.iter().chain(base.iter().cycle()).copied().take(n.max(1)).collect())
}

struct Figures {
    device: String,
    prefill_capture_ms: f64,
    prefill_ms: f64,
    /// Nothing captured: the LM head on the last row only, as llama.cpp computes by default.
    prefill_last_ms: f64,
    decode_tok_s: f64,
    decode_capture_tok_s: f64,
    /// The greedy ids of the last decode run: the prefill's token, then one per step.
    greedy_ids: Vec<u32>,
}

/// The median of `runs` timed passes over `ids` (after one warm-up).
fn prefill_ms(exec: &mut dyn Executor, ids: &[u32], capture: &CaptureFilter, runs: usize) -> Result<f64> {
    repeated_prefill(exec, ids, capture, runs, |_, wall_ms| wall_ms)
}

/// The median of `figure(exec, wall ms)` over `runs` passes over `ids` from an empty cache,
/// after one warm-up pass.
fn repeated_prefill(
    exec: &mut dyn Executor,
    ids: &[u32],
    capture: &CaptureFilter,
    runs: usize,
    mut figure: impl FnMut(&mut dyn Executor, f64) -> f64,
) -> Result<f64> {
    let mut values = Vec::with_capacity(runs);
    for run in 0..=runs {
        exec.reset();
        let t = Instant::now();
        drop(exec.forward(ids, PassOptions::capture(capture.clone()))?);
        let value = figure(&mut *exec, ms_since(t));
        if run > 0 {
            values.push(value);
        }
    }
    Ok(median(values))
}

/// Prefill and decode figures for one executor.
fn measure(exec: &mut dyn Executor, ids: &[u32], args: &BenchArgs) -> Result<Figures> {
    let runs = if ids.len() > 256 { args.runs.div_ceil(2).max(3) } else { args.runs.max(1) };
    let prefill_capture_ms = prefill_ms(exec, ids, &CaptureFilter::All, runs)?;
    let prefill_last_ms = prefill_ms(exec, ids, &CaptureFilter::Nothing, runs)?;
    let prefill_ms = prefill_ms(exec, ids, &CaptureFilter::keys([HookKey::Logits]), runs)?;
    let decode_ids = &ids[..ids.len().min(64)];
    // What the app records per generated token: patterns and the residual stream.
    let per_step = CaptureFilter::parse("attn.hook_pattern,hook_resid_post,hook_embed")?;
    let (decode_tok_s, greedy_ids) = decode(exec, decode_ids, CaptureFilter::Nothing, args)?;
    let (decode_capture_tok_s, _) = decode(exec, decode_ids, per_step, args)?;
    Ok(Figures { device: exec.device_name(), prefill_capture_ms, prefill_ms, prefill_last_ms, decode_tok_s, decode_capture_tok_s, greedy_ids })
}

/// GPU time from timestamp queries around every compute pass, in runs of their own (reading
/// the timestamps waits for each submit): prefill with full capture and with only the logits,
/// and one decode step. What the wall clock adds beyond it is recording, submits and the
/// read-back. `None` on the CPU or where the device has no timestamp queries.
fn gpu_time(exec: &mut dyn Executor, ids: &[u32], args: &BenchArgs, wall: &Figures) -> Result<Option<Value>> {
    if !exec.set_gpu_timing(true) {
        return Ok(None);
    }
    let runs = args.runs.max(3);
    exec.take_gpu_time();
    let passes = std::cell::Cell::new(0);
    let gpu_ms = |exec: &mut dyn Executor, _wall: f64| {
        let t = exec.take_gpu_time().unwrap_or_default();
        passes.set(t.passes);
        t.ms()
    };
    let capture_ms = repeated_prefill(exec, ids, &CaptureFilter::All, runs, gpu_ms)?;
    let passes = passes.get();
    let logits_ms = repeated_prefill(exec, ids, &CaptureFilter::keys([HookKey::Logits]), runs, gpu_ms)?;
    exec.reset();
    let greedy = PassOptions { sampling: SamplingParams::greedy(), ..PassOptions::capture(CaptureFilter::Nothing) };
    let mut next = exec.forward(&ids[..ids.len().min(64)], greedy.clone())?.sampled.context("no token sampled")?;
    let mut per_token = Vec::new();
    for _ in 0..args.decode_tokens.max(7) {
        exec.take_gpu_time();
        next = exec.forward(&[next], greedy.clone())?.sampled.context("no token sampled")?;
        per_token.push(exec.take_gpu_time().unwrap_or_default().ms());
    }
    exec.set_gpu_timing(false);
    let decode_ms = median(per_token);
    Ok(Some(json!({
        "prefill_full_capture_gpu_ms": capture_ms,
        "prefill_full_capture_rest_ms": wall.prefill_capture_ms - capture_ms,
        "prefill_no_capture_gpu_ms": logits_ms,
        "prefill_no_capture_rest_ms": wall.prefill_ms - logits_ms,
        "compute_passes_per_prefill": passes,
        "decode_gpu_ms_per_token": decode_ms,
        "decode_gpu_bound_tokens_per_s": 1e3 / decode_ms,
    })))
}

/// Tokens per second of single-token passes on top of the prompt's KV cache (median of at
/// least 7 runs), and the greedy ids of the last run.
fn decode(exec: &mut dyn Executor, ids: &[u32], capture: CaptureFilter, args: &BenchArgs) -> Result<(f64, Vec<u32>)> {
    let mut rates = Vec::new();
    let mut greedy = Vec::new();
    for _ in 0..args.runs.max(7) {
        exec.reset();
        let options = PassOptions { sampling: SamplingParams::greedy(), ..PassOptions::capture(CaptureFilter::Nothing) };
        let mut next = exec.forward(ids, options)?.sampled.context("no token sampled")?;
        let step_options = PassOptions { capture: capture.clone(), ..PassOptions::default() };
        greedy = vec![next];
        let start = Instant::now();
        for _ in 0..args.decode_tokens {
            next = exec.forward(&[next], step_options.clone())?.sampled.context("no token sampled")?;
            greedy.push(next);
        }
        rates.push(args.decode_tokens as f64 / start.elapsed().as_secs_f64());
    }
    Ok((median(rates), greedy))
}

/// This binary again with `--rss-probe`: the peak memory of a fresh process that loads the
/// model once and runs one captured prefill (the bench's own process has loaded it many times).
fn fresh_process_rss(model_path: &std::path::Path, args: &BenchArgs) -> Result<f64> {
    let exe = std::env::current_exe().context("finding the glassbox binary")?;
    let out = std::process::Command::new(exe)
        .args(["bench", "--rss-probe", "--weights", crate::weights_choice::mode_for(model_path).name()])
        .args(["--device", args.device.name(), "--precision", args.precision.name(), "--tokens"])
        .arg(args.tokens.to_string())
        .arg("--model")
        .arg(model_path)
        .output()
        .context("running the memory probe")?;
    anyhow::ensure!(out.status.success(), "the memory probe failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    String::from_utf8_lossy(&out.stdout).trim().parse().context("reading the memory probe's figure")
}

fn rss_probe(path: &std::path::Path, args: &BenchArgs) -> Result<()> {
    // GLASSBOX_RSS_STAGES=1: the resident memory after each stage, on stderr (what a budget
    // overrun is made of).
    let stages = std::env::var_os("GLASSBOX_RSS_STAGES").is_some();
    let stage = |what: &str| {
        if stages {
            eprintln!("glassbox: rss after {what}: {:.1} MiB (peak {:.1})", vm_mib("VmRSS:").unwrap_or(f64::NAN), peak_rss_mib().unwrap_or(f64::NAN));
        }
    };
    stage("start");
    let model = Arc::new(crate::weights_choice::load(path)?);
    stage("load");
    let ids = prompt_ids(&model, args.tokens)?;
    let mut exec = make_executor(model, args.device, args.precision)?;
    stage("executor");
    let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::All))?;
    stage("captured prefill");
    drop(trace);
    outln!("{}", peak_rss_mib().unwrap_or(f64::NAN))
}

pub fn run(model_path: Option<PathBuf>, args: BenchArgs, gui: &super::GuiHooks) -> Result<()> {
    let path = resolve_model_path(model_path)?;
    if args.rss_probe {
        return rss_probe(&path, &args);
    }
    let load_avg_before = load_average();
    // Load → ready: everything before the first pass can start (the first load also warms
    // the page cache, so it is not counted).
    let mut ready_ms = Vec::new();
    let mut load_ms = Vec::new();
    drop(make_executor(Arc::new(crate::weights_choice::load(&path)?), args.device, args.precision)?);
    for _ in 0..args.runs.clamp(3, 7) {
        let t = Instant::now();
        let model = Arc::new(crate::weights_choice::load(&path)?);
        load_ms.push(ms_since(t));
        let exec = make_executor(model, args.device, args.precision)?;
        ready_ms.push(ms_since(t));
        drop(exec);
    }
    let model = Arc::new(crate::weights_choice::load(&path)?);
    let ids = prompt_ids(&model, args.tokens)?;

    let mut exec = make_executor(Arc::clone(&model), args.device, args.precision)?;
    let (profile, decode_profile) = if args.per_op {
        (per_op_profile(exec.as_mut(), &ids, CaptureFilter::All, args.runs)?, per_op_profile(exec.as_mut(), &ids[..1], CaptureFilter::Nothing, args.runs.max(7))?)
    } else {
        (Vec::new(), Vec::new())
    };
    let main = measure(exec.as_mut(), &ids, &args)?;
    let gpu_time = gpu_time(exec.as_mut(), &ids, &args, &main)?;
    drop(exec);
    let cpu = if args.device == Device::Cpu {
        None
    } else {
        let mut cpu_exec = make_executor(Arc::clone(&model), Device::Cpu, Precision::F32)?;
        Some(measure(cpu_exec.as_mut(), &ids, &args)?)
    };
    let frames = if args.frames {
        let (median_ms, p95_ms) = (gui.frame_bench)(Arc::clone(&model), args.frame_tokens, 120)?;
        let (captured, held) = (gui.trace_memory)(Arc::clone(&model), ids.len())?;
        let side = match (gui.side_by_side_frames)(Arc::clone(&model), 120)? {
            Some((b, median_ms, p95_ms)) => json!({"model_b": b, "median_ms": median_ms, "p95_ms": p95_ms}),
            None => json!({"skipped": "no second model cached (glassbox fetch gemma-3-270m)"}),
        };
        Some(json!({
            "view": "attention overview (all layers × heads)", "tokens": args.frame_tokens, "median_ms": median_ms, "p95_ms": p95_ms,
            "trace_memory": {"tokens": ids.len(), "captured_mib": captured as f64 / 1048576.0, "held_by_ui_and_worker_mib": held as f64 / 1048576.0},
            "side_by_side": side,
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
    let fresh_rss = fresh_process_rss(&path, &args)?;
    let t = args.tokens;
    let figures = |f: &Figures| {
        let mut v = json!({
            "device": f.device,
            "prefill_full_capture_ms": f.prefill_capture_ms,
            "prefill_no_capture_ms": f.prefill_ms,
            "prefill_last_logits_ms": f.prefill_last_ms,
            "decode_tokens_per_s": f.decode_tok_s,
            "decode_tokens_per_s_with_capture": f.decode_capture_tok_s,
            "greedy_ids": f.greedy_ids,
        });
        if t == 64 {
            v["prefill64_full_capture_ms"] = json!(f.prefill_capture_ms);
            v["prefill64_no_capture_ms"] = json!(f.prefill_ms);
            v["prefill64_last_logits_ms"] = json!(f.prefill_last_ms);
        }
        v
    };
    let mut out = json!({
        "model": model.source.name,
        "prompt_tokens": ids.len(),
        "prompt_ids": ids,
        "runs": args.runs,
        "load_from_cache_ms": median(load_ms),
        "load_ready_ms": median(ready_ms),
        "weights": model.weights_mode().name(),
        "weights_note": model.source.weights_note,
        "weights_resident_mib": model.weights_resident_bytes() as f64 / (1024.0 * 1024.0),
        "peak_rss_mib": fresh_rss,
        "peak_rss_mib_this_process": peak_rss_mib(),
        "load_average_1min": json!({"before": load_avg_before, "after": load_average()}),
        "result": figures(&main),
    });
    if let Some(cpu) = &cpu {
        out["cpu"] = figures(cpu);
        out["ratios_gpu_over_cpu"] = json!({
            "prefill_full_capture_speedup": cpu.prefill_capture_ms / main.prefill_capture_ms,
            "prefill_no_capture_speedup": cpu.prefill_ms / main.prefill_ms,
            "decode_speedup": main.decode_tok_s / cpu.decode_tok_s,
        });
    }
    if let Some(g) = gpu_time {
        out["gpu_time"] = g;
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
        return outln!("{}", serde_json::to_string_pretty(&out)?);
    }
    print_text(&out)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn print_text(out: &Value) -> Result<()> {
    let t = out["prompt_tokens"].as_u64().unwrap_or(0);
    outln!("model {} · prompt {t} tokens · median of {} runs · load average {}", out["model"], out["runs"], out["load_average_1min"])?;
    outln!("weights                {} ({}), {:.1} MiB resident", out["weights"].as_str().unwrap_or("?"), out["weights_note"].as_str().unwrap_or(""), num(&out["weights_resident_mib"]))?;
    outln!("load from cache        {:>9.1} ms", num(&out["load_from_cache_ms"]))?;
    outln!("load → ready           {:>9.1} ms", num(&out["load_ready_ms"]))?;
    for key in ["result", "cpu"] {
        let f = &out[key];
        if f.is_null() {
            continue;
        }
        outln!("[{}]", f["device"].as_str().unwrap_or("?"))?;
        outln!("  prefill-{t}, full capture  {:>9.1} ms", num(&f["prefill_full_capture_ms"]))?;
        outln!("  prefill-{t}, logits only   {:>9.1} ms", num(&f["prefill_no_capture_ms"]))?;
        outln!("  prefill-{t}, last logits   {:>9.1} ms", num(&f["prefill_last_logits_ms"]))?;
        outln!("  decode                     {:>9.1} tokens/s", num(&f["decode_tokens_per_s"]))?;
        outln!("  decode, capture per step   {:>9.1} tokens/s", num(&f["decode_tokens_per_s_with_capture"]))?;
    }
    if !out["ratios_gpu_over_cpu"].is_null() {
        outln!("GPU vs CPU: {}", out["ratios_gpu_over_cpu"])?;
    }
    if !out["gpu_time"].is_null() {
        let g = &out["gpu_time"];
        outln!(
            "GPU time (timestamp queries): prefill-{t} full capture {:.2} ms on the GPU + {:.2} ms recording/read-back; logits only {:.2} + {:.2} ms; decode {:.3} ms per token on the GPU",
            num(&g["prefill_full_capture_gpu_ms"]),
            num(&g["prefill_full_capture_rest_ms"]),
            num(&g["prefill_no_capture_gpu_ms"]),
            num(&g["prefill_no_capture_rest_ms"]),
            num(&g["decode_gpu_ms_per_token"])
        )?;
    }
    for (key, what) in [("per_op_ms", "one captured prefill"), ("decode_per_op_ms", "one decode pass")] {
        if let Some(ops) = out[key].as_array() {
            let total: f64 = ops.iter().map(|o| num(&o[1])).sum();
            let parts: Vec<String> = ops.iter().take(12).map(|o| format!("{} {:.2}", o[0].as_str().unwrap_or("?"), num(&o[1]))).collect();
            outln!("time per step kind (ms, {what}, total {total:.1}): {}", parts.join(", "))?;
        }
    }
    if !out["gui_frame_time"].is_null() {
        let f = &out["gui_frame_time"];
        outln!("GUI frame, attention overview at {} tokens: median {:.2} ms, p95 {:.2} ms", f["tokens"], num(&f["median_ms"]), num(&f["p95_ms"]))?;
        let side = &f["side_by_side"];
        match side["model_b"].as_str() {
            Some(b) => outln!("GUI frame, side by side with {b}, both runs shown: median {:.2} ms, p95 {:.2} ms", num(&side["median_ms"]), num(&side["p95_ms"]))?,
            None => outln!("GUI frame, side by side: skipped ({})", side["skipped"].as_str().unwrap_or("no second model"))?,
        }
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
    outln!("peak memory, fresh process (one load, one captured prefill) {:>7.1} MiB", num(&out["peak_rss_mib"]))?;
    Ok(())
}

/// Milliseconds per kind of step (median over `runs` passes), largest first: where the time
/// goes. Timed inside the executor's own loop (`stream_to`, which on the CPU runs inside its
/// thread pool), from one step's output to the next.
pub fn per_op_profile(exec: &mut dyn Executor, ids: &[u32], capture: CaptureFilter, runs: usize) -> Result<Vec<(String, f64)>> {
    use std::collections::BTreeMap;
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..runs.max(1) {
        exec.reset();
        exec.begin(ids, PassOptions::capture(capture.clone()))?;
        let mut totals: BTreeMap<String, f64> = BTreeMap::new();
        let mut last = Instant::now();
        exec.stream_to(Step::Sample, 1, &mut |o: StepOutput| {
            let kind = match o.step {
                Step::Layer(_, op) => op.name().to_string(),
                other => other.to_string(),
            };
            *totals.entry(kind).or_default() += ms_since(last);
            drop(o);
            last = Instant::now();
            ControlFlow::Continue(())
        })?;
        for (k, v) in totals {
            samples.entry(k).or_default().push(v);
        }
    }
    let mut list: Vec<(String, f64)> = samples.into_iter().map(|(k, v)| (k, median(v))).collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(list)
}
