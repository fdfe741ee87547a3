//! SmolLM2-135M-Instruct on the GPU, in CI on lavapipe: the five goldens (every hook against
//! the CPU reference, logits against transformers), greedy generation with the GPU's KV cache
//! against transformers, f16 weights against f32, and the ablation reference. Generation and
//! ablated generation take 8 new tokens per prompt (20 decode passes each would take minutes on
//! a software GPU); the f16 check runs the whole 20-token continuation in one pass.
//!
//! No adapter: each test prints a note and passes, unless `GLASSBOX_REQUIRE_GPU=1` (CI); no
//! model: the same, unless `GLASSBOX_REQUIRE_MODEL=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test here

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, generate, generate_with};
use glassbox_engine::exec::gpu::{GpuContext, GpuExecutor, GpuOptions};
use glassbox_engine::exec::sampling::{SamplingParams, argmax};
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{HookKey, Model};
use glassbox_tests::golden::{self, PROMPTS};
use glassbox_tests::gpu::*;
use glassbox_tests::tolerance::*;
use glassbox_tests::gpu_or_skip;

/// New tokens per prompt for generation and the f16 check.
const NEW_TOKENS: usize = 8;

fn smollm2() -> Option<Arc<Model>> {
    golden::smollm2()
}

/// One f32 GPU executor for the tests of this file: uploading SmolLM2 and compiling the
/// kernels is most of the cost on a software GPU, so it is done once.
fn shared_gpu(ctx: &Arc<GpuContext>, model: &Arc<Model>) -> MutexGuard<'static, GpuExecutor> {
    static EXEC: OnceLock<Mutex<GpuExecutor>> = OnceLock::new();
    let exec = EXEC.get_or_init(|| Mutex::new(gpu_exec(ctx, model, GpuOptions::default())));
    exec.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Asserts the last-position top-20 of `logits_row` against transformers' within `bound`.
#[track_caller]
fn top20_matches(label: &str, logits_row: &[f32], want: &[golden::IdLogit], bound: f64) {
    for (i, w) in want.iter().enumerate() {
        let ours = logits_row[w.id as usize];
        assert!(
            f64::from((ours - w.logit).abs()) <= bound,
            "{label}: logit of id {} (rank {i}) is {ours}, transformers {} (bound {bound})",
            w.id,
            w.logit
        );
    }
    assert_eq!(argmax(logits_row), want[0].id, "{label}: top-1");
}

#[test]
fn smollm2_goldens_match_the_cpu_and_transformers() {
    let ctx = gpu_or_skip!();
    let Some(model) = smollm2() else { return };
    let mut gpu = shared_gpu(&ctx, &model);
    for id in PROMPTS {
        let g = golden::prompt(id);
        let cpu = cpu_pass(&model, &g.token_ids, PassOptions::default());
        gpu.reset();
        let got = gpu.forward(&g.token_ids, PassOptions::default()).unwrap();
        let worst = compare_traces(&got, &cpu, SMOLLM2_PASS_HOOK).unwrap_or_else(|e| panic!("SmolLM2 {id}: first diverging hook: {e}"));
        let (err, same) = logits_agree(&got, &cpu);
        eprintln!("SmolLM2 {id} ({} tokens, {} hooks): worst NMSE {:.2e}; logits max abs {err:.2e}", g.token_ids.len(), got.len(), worst.nmse);
        assert!(f64::from(err) <= GPU_LOGITS_ABS && same, "{id}: logits max abs {err:e}, same argmax everywhere: {same}");
        let last = logits(&got).row(g.token_ids.len() - 1).to_vec();
        let want: Vec<golden::IdLogit> = g.last_logits_top20.iter().map(|t| golden::IdLogit { id: t.id, logit: t.logit }).collect();
        top20_matches(id, &last, &want, GPU_VS_REFERENCE_ABS);
    }
}

#[test]
fn smollm2_greedy_generation_with_the_gpu_cache_agrees_with_transformers() {
    let ctx = gpu_or_skip!();
    let Some(model) = smollm2() else { return };
    let mut gpu = shared_gpu(&ctx, &model);
    for id in PROMPTS {
        let g = golden::prompt(id);
        let want = golden::generation(id);
        let ours = generate(&mut *gpu, &g.token_ids, NEW_TOKENS, SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
        let cpu = generate(&mut CpuExecutor::new(Arc::clone(&model)), &g.token_ids, NEW_TOKENS, SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
        assert_eq!(ours, cpu, "{id}: GPU and CPU greedy tokens");
        // Transformers' tokens, up to the first step where its top two logits were closer than
        // the GPU tolerance (a near-tie either side may break differently).
        let sure = want.per_step.iter().take_while(|s| f64::from(s.top1_minus_top2) > 2.0 * GPU_VS_REFERENCE_ABS).count().min(NEW_TOKENS);
        assert_eq!(ours[..sure], want.new_token_ids[..sure], "{id}: greedy tokens vs transformers (first {sure}, before any near-tie)");
        eprintln!("{id}: {NEW_TOKENS} greedy tokens equal the CPU's; the first {sure} equal transformers'");
    }
}

/// The f16 path the adapter runs fastest: native shader-f16 where present.
fn f16_exec(ctx: &Arc<GpuContext>, model: &Arc<Model>) -> glassbox_engine::exec::gpu::GpuExecutor {
    let options = *f16_options(ctx).last().expect("an f16 path");
    gpu_exec(ctx, model, options)
}

#[test]
fn smollm2_f16_weights_agree_with_f32() {
    let ctx = gpu_or_skip!();
    let Some(model) = smollm2() else { return };
    let mut f16 = f16_exec(&ctx, &model);
    let (mut agree, mut total, mut kl_sum) = (0usize, 0usize, 0.0f64);
    for id in PROMPTS {
        // Prompt and transformers' whole continuation: one pass, every position counts.
        let mut seq = golden::prompt(id).token_ids;
        seq.extend(&golden::generation(id).new_token_ids);
        let capture = PassOptions::capture(CaptureFilter::keys([HookKey::Logits]));
        let reference = cpu_pass(&model, &seq, capture.clone());
        f16.reset();
        let got = f16.forward(&seq, capture).unwrap();
        let (per_pos, kl) = f16_agreement(&reference, &got);
        let a = per_pos.iter().filter(|&&x| x).count();
        eprintln!("{id}, {}: top-1 {a}/{}, mean KL {kl:.2e}", f16.device_name(), per_pos.len());
        (agree, total, kl_sum) = (agree + a, total + per_pos.len(), kl_sum + kl * per_pos.len() as f64);
    }
    let (rate, kl) = (agree as f64 / total as f64, kl_sum / total as f64);
    eprintln!("SmolLM2 f16 weights: top-1 agreement {agree}/{total} = {:.2}%, mean KL {kl:.2e}", rate * 100.0);
    assert!(rate >= F16_TOP1_AGREEMENT, "f16 top-1 agreement {agree}/{total}");
    assert!(kl <= F16_MEAN_KL, "f16 mean KL {kl:e}");
}

#[test]
fn smollm2_ablations_on_the_gpu_match_transformers() {
    let ctx = gpu_or_skip!();
    let Some(model) = smollm2() else { return };
    let mut gpu = shared_gpu(&ctx, &model);
    for case in golden::interventions().ablate {
        let options = PassOptions { interventions: case.interventions(), ..PassOptions::capture(CaptureFilter::keys([HookKey::Logits])) };
        gpu.reset();
        let got = gpu.forward(&case.token_ids, options.clone()).unwrap();
        let rows = logits(&got);
        let argmax_all: Vec<u32> = rows.outer_iter().map(|r| argmax(&r.to_vec())).collect();
        assert_eq!(argmax_all, case.argmax_all, "{}: argmax at every position", case.name);
        top20_matches(&case.name, &rows.row(rows.nrows() - 1).to_vec(), &case.last_top20, GPU_VS_REFERENCE_ABS);
        let greedy = generate_with(&mut *gpu, &case.token_ids, 8, &options, &[], &mut |_| {}).unwrap();
        assert_eq!(greedy, case.greedy8, "{}: 8 greedy tokens under the ablation", case.name);
    }
}
