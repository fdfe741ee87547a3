//! Long prompts in bounded memory: a layer's detail recomputed from the kept residual stream
//! equals what a full capture records up to float rounding, and deterministically (every
//! fixture, SmolLM2, windows of rows, the output head, with an intervention); a pass run in
//! chunks keeps what a one-shot pass records; a window cannot run past its block; the GPU's windows match the CPU.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use glassbox_engine::experiments::analysis;
use glassbox_engine::long::budget;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::gpu::GpuOptions;
use glassbox_engine::long::overview::{OverviewOptions, kept_hooks, run_overview};
use glassbox_engine::long::recompute::{Detail, cut_keys, recompute};
use glassbox_engine::exec::tensor::{Dim, Tensor};
use glassbox_engine::exec::trace::Trace;
use glassbox_engine::{BlockHook, HookKey, LayerOp, Model, Step};
use glassbox_tests::gpu::{cpu_pass, gpu_exec, load};
use glassbox_tests::tolerance::PASS_HOOK;
use glassbox_tests::{FIXTURES, golden, gpu_or_skip};
use ndarray::{Slice, SliceInfoElem};

/// `n` ids spread over the vocabulary (deterministic).
fn ids(model: &Model, n: usize) -> Vec<u32> {
    let v = model.config.vocab_size as u64;
    (0..n as u64).map(|i| ((i * 7919 + 13) % v) as u32).collect()
}

/// The residual stream entering block `layer` in a full trace.
fn resid_in(full: &Trace, layer: usize) -> Tensor {
    let key = if layer == 0 { HookKey::Embed } else { HookKey::Block(layer - 1, BlockHook::ResidPost) };
    full.get(key).unwrap().clone()
}

/// What a full capture holds for rows `rows`: query/position axes cut to the rows, key axes
/// to the keys they see (`..rows.end`).
fn rows_of(t: &Tensor, rows: &Range<usize>) -> Vec<f32> {
    let info: Vec<SliceInfoElem> = t
        .dims
        .iter()
        .map(|d| match d {
            Dim::Pos | Dim::QPos => Slice::from(rows.clone()).into(),
            Dim::KPos => Slice::from(..rows.end).into(),
            _ => Slice::from(..).into(),
        })
        .collect();
    t.data.slice(info.as_slice()).iter().copied().collect()
}

/// `have` is `want` up to float rounding: the row-blocked matmul and attention kernels sum in
/// an order that depends on how many rows a pass has, so a window of rows (or a chunk) can
/// differ from the one-shot pass in the last bits, never more than 1e-4 of the tensor's
/// largest magnitude.
fn assert_close(have: &[f32], want: &[f32], what: &str) {
    assert_eq!(have.len(), want.len(), "{what}");
    let scale = want.iter().fold(1.0f32, |m, v| if v.is_finite() { m.max(v.abs()) } else { m });
    let worst = have
        .iter()
        .zip(want)
        .map(|(a, b)| if a.to_bits() == b.to_bits() { 0.0 } else { (a - b).abs() })
        .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
    assert!(worst <= 1e-4 * scale, "{what}: differs by {worst} (largest magnitude {scale})");
}

/// Every hook of `got` (a window of `rows`) is the full capture's, up to float rounding.
fn assert_rows_equal(full: &Trace, got: &Trace, rows: &Range<usize>, what: &str) {
    assert!(!got.is_empty(), "{what}: nothing recorded");
    assert_eq!(got.pos_offset, rows.start, "{what}");
    for (key, t) in got.iter() {
        if key == HookKey::Probs {
            // The last row's distribution only: the full capture's is the prompt's last row.
            let n = full.n_tokens();
            if rows.end == n {
                let (a, b): (Vec<f32>, Vec<f32>) = (t.data.iter().copied().collect(), full.get(key).unwrap().data.iter().copied().collect());
                assert_close(&a, &b, &format!("{what}: {key}"));
            } else {
                assert_eq!(t.shape()[0], 1, "{what}: {key}");
            }
            continue;
        }
        let want = rows_of(full.get(key).unwrap_or_else(|| panic!("{what}: full capture lacks {key}")), rows);
        let have: Vec<f32> = t.data.iter().copied().collect();
        assert_eq!(have.len(), want.len(), "{what}: {key} {}", t.dims_string());
        assert_close(&have, &want, &format!("{what}: {key} {}", t.dims_string()));
    }
}

fn windows(n: usize) -> Vec<Range<usize>> {
    vec![0..n, 8..24, 16..n, n - 8..n, 5..21, 10..13, n - 3..n - 1]
}

#[test]
fn recomputed_layers_equal_a_full_capture_on_every_fixture() {
    for name in FIXTURES {
        recomputed_layers_equal_a_full_capture(name);
    }
}

/// Qwen 2 (biases), Qwen 3 (QK-norm), OLMo 2 (no pre-norms: the window reads the residual
/// stream itself) and Phi-3 (fused weights, a sliding window in its config).
#[test]
fn recompute_equals_a_full_capture_on_the_newer_families() {
    for name in ["tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        recomputed_layers_equal_a_full_capture(name);
    }
}

fn recomputed_layers_equal_a_full_capture(name: &str) {
    {
        let model = load(name);
        let block_hooks = glassbox_engine::LayerOp::block(&model.arch).iter().flat_map(|op| op.hooks()).count();
        let n = 40.min(model.config.max_position_embeddings);
        let ids = ids(&model, n);
        let full = cpu_pass(&model, &ids, PassOptions::default());
        let mut exec = CpuExecutor::new(Arc::clone(&model));
        for layer in 0..model.config.n_layers() {
            for rows in windows(n) {
                let got = recompute(&mut exec, &ids, &resid_in(&full, layer), Detail::Layer(layer), rows.clone(), &PassOptions::default()).unwrap();
                assert_eq!(got.len(), block_hooks, "{name}: every hook of the block");
                // Deterministic: the same window again gives the same bits.
                let again = recompute(&mut exec, &ids, &resid_in(&full, layer), Detail::Layer(layer), rows.clone(), &PassOptions::default()).unwrap();
                for (key, t) in got.iter() {
                    assert_eq!(Some(&**t), again.get(key), "{name} layer {layer} rows {rows:?}: {key} twice");
                }
                assert_rows_equal(&full, &got, &rows, &format!("{name} layer {layer} rows {rows:?}"));
            }
        }
        let last = model.config.n_layers() - 1;
        for rows in windows(n) {
            let got = recompute(&mut exec, &ids, &resid_in(&full, last), Detail::Output, rows.clone(), &PassOptions::default()).unwrap();
            assert!(got.get(HookKey::Logits).is_some());
            assert_eq!(got.get(HookKey::Probs).is_some(), rows.end == n || rows.end % 8 == 0, "{name}: probs of the run's last row");
            assert_rows_equal(&full, &got, &rows, &format!("{name} output rows {rows:?}"));
        }
    }
}

#[test]
fn recompute_carries_the_pass_interventions() {
    let model = load("tiny-gqa-tied");
    let ids = ids(&model, 32);
    let options = PassOptions::default().with_ablated_heads(&[(1, 2)]);
    let full = cpu_pass(&model, &ids, options.clone());
    let plain = cpu_pass(&model, &ids, PassOptions::default());
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let rows = 8..32;
    let got = recompute(&mut exec, &ids, &resid_in(&full, 1), Detail::Layer(1), rows.clone(), &options).unwrap();
    assert_rows_equal(&full, &got, &rows, "ablated head");
    let z = got.get(HookKey::Block(1, BlockHook::Z)).unwrap().as_3d().unwrap();
    assert!(z.slice(ndarray::s![.., 2, ..]).iter().all(|&v| v == 0.0), "head 2's z is zeroed");
    let ablated: Vec<f32> = got.get(HookKey::Block(1, BlockHook::AttnOut)).unwrap().data.iter().copied().collect();
    assert_ne!(rows_of(plain.get(HookKey::Block(1, BlockHook::AttnOut)).unwrap(), &rows), ablated, "the ablation changes what attention writes");
}

#[test]
fn recompute_on_smollm2_equals_a_full_capture() {
    let Some(model) = golden::smollm2() else { return };
    let tok = model.tokenizer.as_ref().unwrap();
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(12);
    let ids = tok.encode(&text).unwrap();
    let n = ids.len();
    assert!(n > 100, "{n} tokens");
    let full = cpu_pass(&model, &ids, PassOptions::default());
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let last = model.config.n_layers() - 1;
    for layer in [0, 17, last] {
        for rows in [0..n, 40..72, n - 32..n] {
            let t = std::time::Instant::now();
            let got = recompute(&mut exec, &ids, &resid_in(&full, layer), Detail::Layer(layer), rows.clone(), &PassOptions::default()).unwrap();
            eprintln!("SmolLM2 {n} tokens, layer {layer}, rows {rows:?}: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
            assert_rows_equal(&full, &got, &rows, &format!("SmolLM2 layer {layer} rows {rows:?}"));
        }
    }
    let rows = n - 32..n;
    let got = recompute(&mut exec, &ids, &resid_in(&full, last), Detail::Output, rows.clone(), &PassOptions::default()).unwrap();
    assert_rows_equal(&full, &got, &rows, "SmolLM2 output");
}

#[test]
fn a_window_cannot_run_past_its_block() {
    let model = load("tiny-gqa-tied");
    let ids = ids(&model, 24);
    let full = cpu_pass(&model, &ids, PassOptions::default());
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    exec.begin_rows_at(&ids, PassOptions::default(), 0, &resid_in(&full, 0), 8).unwrap();
    exec.run_to(Step::Layer(0, LayerOp::MlpAdd)).unwrap();
    assert!(exec.run_to(Step::Layer(1, LayerOp::MlpAdd)).is_err(), "block 1 has no keys for rows 0..8");
    assert!(exec.begin_rows_at(&ids, PassOptions::default(), 0, &resid_in(&full, 0), 24).is_err(), "an empty window");
    // The next ordinary pass starts from an empty cache.
    exec.begin(&ids, PassOptions::default()).unwrap();
    exec.run_to_end().unwrap();
    assert_eq!(exec.cache_len(), 24);
}

#[test]
fn cutting_keys_rebases_the_window_and_sums_what_it_leaves_out() {
    let model = load("tiny-smollm2-shape");
    let ids = ids(&model, 48);
    let full = cpu_pass(&model, &ids, PassOptions::default());
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let rows = 16..48;
    let mut got = recompute(&mut exec, &ids, &resid_in(&full, 1), Detail::Layer(1), rows.clone(), &PassOptions::default()).unwrap();
    let cut = cut_keys(&mut got).unwrap();
    assert_eq!((got.pos_offset, cut.first_key), (0, 16));
    let p = got.get(HookKey::Block(1, BlockHook::Pattern)).unwrap().as_3d().unwrap();
    assert_eq!(p.dim(), (9, 32, 32));
    let fp = full.get(HookKey::Block(1, BlockHook::Pattern)).unwrap().as_3d().unwrap();
    let before = cut.weight_before.unwrap();
    let before = before.as_2d().unwrap();
    for h in 0..9 {
        for q in 0..32 {
            assert_eq!(p[[h, q, 3]], fp[[h, q + 16, 19]]);
            let rest: f32 = fp.slice(ndarray::s![h, q + 16, ..16]).sum();
            assert_eq!(before[[h, q]], rest);
            let (k, w) = cut.top_before[h][q][0];
            let best = fp.slice(ndarray::s![h, q + 16, ..16]).iter().copied().fold(f32::MIN, f32::max);
            assert!(k < 16 && w == best && fp[[h, q + 16, k]] == w);
        }
    }
}

#[test]
fn a_pass_in_chunks_keeps_exactly_what_a_one_shot_pass_records() {
    let model = load("tiny-smollm2-shape");
    let n = 200;
    let ids = ids(&model, n);
    let full = cpu_pass(&model, &ids, PassOptions::default());
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let mut seen = Vec::new();
    let ov = run_overview(&mut exec, &ids, &PassOptions::default(), OverviewOptions { chunk: 64, keep_mid: true }, &mut |done| {
        seen.push(done);
        ControlFlow::Continue(())
    })
    .unwrap()
    .expect("not cancelled");
    assert_eq!(seen, vec![64, 128, 192, 200]);
    let kept = kept_hooks(true);
    let mut count = 0;
    for (key, t) in full.iter() {
        if !kept.wants(key) {
            assert!(ov.trace.get(key).is_none(), "{key} is not kept");
            continue;
        }
        count += 1;
        let have = ov.trace.get(key).unwrap();
        assert_eq!(have.shape(), t.shape(), "{key}");
        assert_close(&have.data.iter().copied().collect::<Vec<_>>(), &t.data.iter().copied().collect::<Vec<_>>(), &key.to_string());
    }
    assert_eq!(count, ov.trace.len());
    assert_eq!(ov.trace.sampled, full.sampled);
    assert_close(ov.trace.last_logits.as_ref().unwrap(), full.last_logits.as_ref().unwrap(), "last logits");
    assert_close(&ov.losses, &analysis::next_token_losses(&full).unwrap(), "losses");
    let flat = |v: Vec<Vec<f32>>| v.concat();
    assert_close(&flat(ov.residual_norms.clone()), &flat(analysis::residual_norms(&full, 2).unwrap()), "residual norms");
    let writes = |v: &[[Vec<f32>; 2]]| v.iter().flat_map(|[a, m]| a.iter().chain(m).copied()).collect::<Vec<f32>>();
    assert_close(&writes(&ov.write_norms), &writes(&analysis::write_norms(&full, 2).unwrap()), "write norms");
    let logits = full.get(HookKey::Logits).unwrap().as_2d().unwrap();
    for pos in [0, 63, 64, 199] {
        let want = analysis::top_k(&logits.row(pos).to_vec(), 5, 1.0);
        assert_eq!(ov.top[pos].iter().map(|r| r.id).collect::<Vec<_>>(), want.iter().map(|r| r.id).collect::<Vec<_>>(), "top-5 at {pos}");
    }
    // The pooled map: each cell the largest weight of its block of the full pattern.
    assert_eq!(ov.cell, 2);
    for l in 0..2 {
        let fp = full.get(HookKey::Block(l, BlockHook::Pattern)).unwrap().as_3d().unwrap();
        let pooled = ov.attention[l].as_3d().unwrap();
        assert_eq!(pooled.dim(), (9, 100, 100));
        for (h, qc, kc) in [(0, 0, 0), (3, 50, 10), (8, 99, 99), (4, 10, 60)] {
            let block: Vec<f32> = (qc * 2..qc * 2 + 2)
                .flat_map(|q| (kc * 2..kc * 2 + 2).filter(move |&k| k <= q).map(move |k| fp[[h, q, k]]))
                .collect();
            let want = block.iter().copied().reduce(f32::max).unwrap_or(f32::NAN);
            let got = pooled[[h, qc, kc]];
            assert!((got - want).abs() <= 1e-5 || (got.is_nan() && want.is_nan()), "layer {l} head {h} cell ({qc}, {kc}): {got} vs {want}");
        }
    }
    assert!(ov.bytes() < full.bytes() / 4, "{} vs {}", ov.bytes(), full.bytes());
    // The budget's figures bound what is really held, so a plan that fits is kept.
    let c = &model.config;
    assert!(ov.bytes() as u64 <= budget::overview_bytes(c, n, true), "{} > {}", ov.bytes(), budget::overview_bytes(c, n, true));
    assert!(full.bytes() as u64 <= budget::full_capture_bytes(c, n));
    // The block's detail comes back from the kept stream exactly.
    let rows = 136..200;
    let resid = ov.resid_in(1).unwrap();
    let got = recompute(&mut exec, &ids, resid, Detail::Layer(1), rows.clone(), &PassOptions::default()).unwrap();
    assert_rows_equal(&full, &got, &rows, "recompute from the overview");
    assert!(got.bytes() as u64 <= budget::detail_bytes(c, Detail::Layer(1), rows.len(), rows.end));
}

#[test]
fn a_chunked_pass_stops_when_asked() {
    let model = load("tiny-smollm2-shape");
    let ids = ids(&model, 130);
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let got = run_overview(&mut exec, &ids, &PassOptions::default(), OverviewOptions { chunk: 64, keep_mid: false }, &mut |done| {
        if done >= 64 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .unwrap();
    assert!(got.is_none());
    let ov = run_overview(&mut exec, &ids, &PassOptions::default(), OverviewOptions { chunk: 64, keep_mid: false }, &mut |_| ControlFlow::Continue(())).unwrap().unwrap();
    assert!(ov.trace.get(HookKey::Block(0, BlockHook::ResidMid)).is_none(), "resid_mid not kept when not asked");
    assert_eq!(ov.trace.get(HookKey::Block(1, BlockHook::ResidPost)).unwrap().shape(), [130, 576]);
}

#[test]
fn gpu_row_windows_match_the_cpu() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-gqa-tied");
    let ids = ids(&model, 40);
    let full = cpu_pass(&model, &ids, PassOptions::default());
    let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
    let mut cpu = CpuExecutor::new(Arc::clone(&model));
    for (detail, layer) in [(Detail::Layer(0), 0), (Detail::Layer(1), 1), (Detail::Output, 1)] {
        let rows = 16..40;
        let g = recompute(&mut gpu, &ids, &resid_in(&full, layer), detail, rows.clone(), &PassOptions::default()).unwrap();
        let c = recompute(&mut cpu, &ids, &resid_in(&full, layer), detail, rows.clone(), &PassOptions::default()).unwrap();
        let worst = glassbox_tests::gpu::compare_traces(&g, &c, PASS_HOOK).unwrap_or_else(|e| panic!("{detail:?}: {e}"));
        eprintln!("{detail:?} rows {rows:?}: GPU vs CPU worst NMSE {:.2e}", worst.nmse);
    }
    gpu.begin_rows_at(&ids, PassOptions::default(), 0, &resid_in(&full, 0), 8).unwrap();
    assert!(gpu.run_to(Step::Layer(1, LayerOp::Ln1)).is_err(), "block 1 has no keys for rows 0..8");
    // A chunked overview on the GPU reads back only the kept tensors and reductions.
    let opts = OverviewOptions { chunk: 16, keep_mid: true };
    let g = run_overview(&mut gpu, &ids, &PassOptions::default(), opts, &mut |_| ControlFlow::Continue(())).unwrap().unwrap();
    let c = run_overview(&mut cpu, &ids, &PassOptions::default(), opts, &mut |_| ControlFlow::Continue(())).unwrap().unwrap();
    glassbox_tests::gpu::compare_traces(&g.trace, &c.trace, PASS_HOOK).unwrap();
}

/// Figures for the note: an overview pass of SmolLM2 over `GLASSBOX_LONG_TOKENS` (default
/// 8192) tokens on the CPU, a window recompute per layer, and the peak RSS.
/// `cargo test --release -p glassbox-tests --test long_prompts long_prompt_figures -- --ignored --nocapture`
#[test]
#[ignore = "minutes on 2 cores: run by hand for the figures"]
fn long_prompt_figures() {
    let Some(model) = golden::smollm2() else { return };
    let n: usize = std::env::var("GLASSBOX_LONG_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(8192);
    let tok = model.tokenizer.as_ref().unwrap();
    let text = "Glassbox shows every number of a language model's forward pass, one operation at a time. ".repeat(n / 8);
    let mut ids = tok.encode(&text).unwrap();
    ids.truncate(n);
    assert_eq!(ids.len(), n);
    let c = &model.config;
    let budget = glassbox_engine::long::budget::DEFAULT_BUDGET;
    let plan = glassbox_engine::long::budget::plan(c, n, budget);
    eprintln!("{n} tokens, budget {}: {plan:?}", glassbox_engine::long::budget::human(budget));
    let glassbox_engine::long::budget::Plan::Overview(opts) = plan else { return };
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let t = std::time::Instant::now();
    let ov = run_overview(&mut exec, &ids, &PassOptions::default(), opts, &mut |done| {
        eprintln!("  {done} tokens at {:.1} s", t.elapsed().as_secs_f64());
        ControlFlow::Continue(())
    })
    .unwrap()
    .unwrap();
    eprintln!("overview pass: {:.1} s, keeps {}", t.elapsed().as_secs_f64(), glassbox_engine::long::budget::human(ov.bytes() as u64));
    for layer in [0, 15, 29] {
        for rows in [n - 256..n, 0..256] {
            let t = std::time::Instant::now();
            let d = recompute(&mut exec, &ids, ov.resid_in(layer).unwrap(), Detail::Layer(layer), rows.clone(), &PassOptions::default()).unwrap();
            eprintln!("recompute layer {layer} rows {rows:?}: {:.2} s, {}", t.elapsed().as_secs_f64(), glassbox_engine::long::budget::human(d.bytes() as u64));
        }
    }
    let t = std::time::Instant::now();
    let d = recompute(&mut exec, &ids, ov.resid_in(29).unwrap(), Detail::Output, n - 256..n, &PassOptions::default()).unwrap();
    eprintln!("recompute output rows last 256: {:.2} s, {}", t.elapsed().as_secs_f64(), glassbox_engine::long::budget::human(d.bytes() as u64));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines().filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS")) {
        eprintln!("{line}");
    }
}
