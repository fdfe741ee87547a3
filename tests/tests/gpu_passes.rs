//! Whole GPU passes against the CPU reference on the four fixtures: every hook, stepping,
//! streaming, the KV cache, capture filters, interventions and activation rounding, split
//! buffers, greedy and sampled generation. Bounds from `TOLERANCES.md`.
//!
//! No adapter: each test prints a note and passes, unless `GLASSBOX_REQUIRE_GPU=1` (CI).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test here

use std::ops::ControlFlow;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, StepOutput, generate, generate_uncached, generate_with};
use glassbox_engine::exec::gpu::GpuOptions;
use glassbox_engine::program::hooks::HookKind;
use glassbox_engine::exec::intervene::{ActivationPrecision, Edit, Intervention, Values};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::tensor::{Dim, Tensor};
use glassbox_engine::exec::trace::{CaptureFilter, Trace};
use glassbox_engine::{BlockHook, HookKey, Step};
use glassbox_tests::gpu::*;
use glassbox_tests::tolerance::*;
use glassbox_tests::{FIXTURES, first_divergence, fixtures_dir, golden_greedy, gpu_or_skip, read_goldens};

#[test]
fn every_hook_matches_the_cpu_on_all_fixtures() {
    let ctx = gpu_or_skip!();
    for name in FIXTURES {
        let model = load(name);
        let ids = input_ids(name);
        let cpu = cpu_pass(&model, &ids, PassOptions::default());
        let mut exec = gpu_exec(&ctx, &model, GpuOptions::default());
        let gpu = exec.forward(&ids, PassOptions::default()).unwrap();
        let worst = compare_traces(&gpu, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("{name}: first diverging hook: {e}"));
        let (err, same) = logits_agree(&gpu, &cpu);
        assert!(f64::from(err) <= GPU_LOGITS_ABS && same, "{name}: logits max abs {err:e}, same argmax everywhere: {same}");
        eprintln!("{name}: {} hooks, worst NMSE {:.2e}, worst max abs {:.2e}, logits max abs {err:.2e}", gpu.len(), worst.nmse, worst.max_abs);
        let goldens = read_goldens(&fixtures_dir().join(name).join("golden.safetensors")).unwrap();
        if let Some(d) = first_divergence(&gpu, &goldens, FIXTURE_HOOK_REL as f32) {
            panic!("{name}: GPU vs transformers, first diverging hook: {d}");
        }
    }
}

#[test]
fn greedy_generation_matches_the_goldens_with_the_gpu_cache() {
    let ctx = gpu_or_skip!();
    for name in FIXTURES {
        let model = load(name);
        let ids = input_ids(name);
        let want = golden_greedy(name);
        let mut exec = gpu_exec(&ctx, &model, GpuOptions::default());
        let cached = generate(&mut exec, &ids, 8, SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
        assert_eq!(cached, want, "{name}: cached greedy generation on the GPU");
        assert_eq!(exec.cache_len(), ids.len() + 7, "{name}: cache length after generation");
        if name == "tiny-gqa-tied" {
            assert_eq!(generate_uncached(&mut exec, &ids, 8, &[]).unwrap(), want, "{name}: uncached");
        }
    }
}

#[test]
fn sampled_generation_matches_the_cpu() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-mha-untied");
    let params = SamplingParams { temperature: 0.9, top_k: 20, top_p: 0.95, seed: 7 };
    let ids = input_ids("tiny-mha-untied");
    let cpu = generate(&mut CpuExecutor::new(Arc::clone(&model)), &ids, 6, params, &[], &mut |_| {}).unwrap();
    let gpu = generate(&mut gpu_exec(&ctx, &model, GpuOptions::default()), &ids, 6, params, &[], &mut |_| {}).unwrap();
    assert_eq!(gpu, cpu, "seeded sampling");
}

#[test]
fn stepping_stops_anywhere_and_resumes_to_the_same_trace() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    let cpu = cpu_pass(&model, &ids, PassOptions::default());
    let mut exec = gpu_exec(&ctx, &model, GpuOptions::default());
    exec.begin(&ids, PassOptions::default()).unwrap();
    let stop: Step = "blocks.1.softmax".parse().unwrap();
    exec.run_to(stop).unwrap();
    assert_eq!(exec.trace().last_step, Some(stop));
    assert_eq!(exec.next_step(), Some("blocks.1.z".parse().unwrap()));
    assert!(exec.trace().get("blocks.1.attn.hook_pattern".parse().unwrap()).is_some());
    assert!(exec.trace().get("blocks.1.attn.hook_z".parse().unwrap()).is_none(), "ran past the stop");
    exec.run_to(stop).unwrap(); // already there: no-op
    assert_eq!(exec.step().unwrap(), Some("blocks.1.z".parse().unwrap()));
    exec.run_to_end().unwrap();
    assert_eq!(exec.step().unwrap(), None);
    compare_traces(&exec.take_trace(), &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("resumed pass: {e}"));
    // One step per submit gives the same trace as one submit for the whole pass.
    exec.reset();
    exec.begin(&ids, PassOptions::default()).unwrap();
    while exec.step().unwrap().is_some() {}
    compare_traces(exec.trace(), &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("step by step: {e}"));
    let err = exec.run_to("blocks.2.q".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("past the model"), "{err}");
}

#[test]
fn kv_cache_semantics_match_the_cpu() {
    let ctx = gpu_or_skip!();
    let name = "tiny-llama31-rope-scaling";
    let model = load(name);
    let ids = input_ids(name);
    let split = ids.len() / 2;
    let mut cpu = CpuExecutor::new(Arc::clone(&model));
    let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
    for e in [&mut cpu as &mut dyn Executor, &mut gpu] {
        e.forward(&ids[..split], PassOptions::capture(CaptureFilter::Nothing)).unwrap();
    }
    assert_eq!(gpu.cache_len(), split);
    let tail_cpu = cpu.forward(&ids[split..], PassOptions::default()).unwrap();
    let tail_gpu = gpu.forward(&ids[split..], PassOptions::default()).unwrap();
    assert_eq!(tail_gpu.pos_offset, split);
    compare_traces(&tail_gpu, &tail_cpu, PASS_HOOK).unwrap_or_else(|e| panic!("cached second half: {e}"));
    // A pass abandoned mid-way leaves the cache as it was; cache_len follows the CPU's.
    for e in [&mut cpu as &mut dyn Executor, &mut gpu] {
        e.begin(&[4, 5], PassOptions::default()).unwrap();
        e.run_to("blocks.0.rope".parse().unwrap()).unwrap();
    }
    assert_eq!(gpu.cache_len(), cpu.cache_len(), "mid-pass, before the last layer's rope");
    for e in [&mut cpu as &mut dyn Executor, &mut gpu] {
        e.run_to("blocks.1.scores".parse().unwrap()).unwrap();
    }
    assert_eq!(gpu.cache_len(), cpu.cache_len(), "mid-pass, after the last layer's rope");
    for e in [&mut cpu as &mut dyn Executor, &mut gpu] {
        e.begin(&[6], PassOptions::default()).unwrap();
    }
    assert_eq!(gpu.trace().pos_offset, ids.len());
    let one_cpu = cpu.forward(&[6], PassOptions::default()).unwrap();
    let one_gpu = gpu.forward(&[6], PassOptions::default()).unwrap();
    compare_traces(&one_gpu, &one_cpu, PASS_HOOK).unwrap_or_else(|e| panic!("after an abandoned pass: {e}"));
}

#[test]
fn capture_filter_reads_back_only_what_is_asked() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-smollm2-shape");
    let ids = input_ids("tiny-smollm2-shape");
    let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
    let mut cpu = CpuExecutor::new(Arc::clone(&model));
    let filters = [
        CaptureFilter::Nothing,
        CaptureFilter::kinds([HookKind::Block(BlockHook::Pattern), HookKind::Block(BlockHook::ResidPost)]),
        CaptureFilter::kinds([HookKind::Probs]),
        CaptureFilter::keys(["blocks.1.attn.hook_rot_k".parse::<HookKey>().unwrap(), HookKey::Logits]),
    ];
    for filter in filters {
        let options = PassOptions { capture: filter.clone(), sampling: SamplingParams { temperature: 0.8, ..SamplingParams::greedy() }, ..PassOptions::default() };
        cpu.reset();
        gpu.reset();
        let want = cpu.forward(&ids, options.clone()).unwrap();
        let got = gpu.forward(&ids, options).unwrap();
        compare_traces(&got, &want, PASS_HOOK).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
        assert!(got.sampled.is_some());
    }
}

#[test]
fn weights_and_read_back_split_across_buffers_give_the_same_pass() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    // 4 KiB per buffer: the embedding (97×64 f32) becomes 7 chunks, every MLP matrix several;
    // 16 KiB read back per submit: the captured pass takes several submits.
    let options = GpuOptions { max_chunk_bytes: Some(4096), max_readback_bytes: Some(16384), ..GpuOptions::default() };
    let mut exec = gpu_exec(&ctx, &model, options);
    let gpu = exec.forward(&ids, PassOptions::default()).unwrap();
    let cpu = cpu_pass(&model, &ids, PassOptions::default());
    compare_traces(&gpu, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("chunked weights: {e}"));
    let out = generate(&mut exec, &ids, 3, SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
    assert_eq!(out, golden_greedy("tiny-gqa-tied")[..3], "chunked weights: greedy generation (decode path)");
}

#[test]
fn bad_input_is_a_clear_error() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-gqa-tied");
    let mut exec = gpu_exec(&ctx, &model, GpuOptions::default());
    let err = exec.begin(&[1, 97], PassOptions::default()).unwrap_err();
    assert!(err.to_string().contains("97"), "{err}");
    assert!(exec.begin(&[], PassOptions::default()).is_err());
    assert!(exec.step().unwrap().is_none(), "no pass after a failed begin");
    let too_long = vec![1u32; 129];
    assert!(exec.begin(&too_long, PassOptions::default()).unwrap_err().to_string().contains("context"));
}

/// Interventions on many kinds of hooks at once, including the ones with side effects: an
/// edited RMSNorm scale (the output is recomputed from it), edited rotated keys (the cache
/// holds them), the logits (the sampled token follows them).
fn edit_suite(model: &glassbox_engine::Model, other: &Trace) -> Vec<Vec<Intervention>> {
    let d = model.config.d_model();
    let steer = Tensor::new(vec![Dim::DModel], ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[d]), random(d, 5, 2.0)).unwrap()).unwrap();
    let steer = Values { tensor: Arc::new(steer), first_position: 0 };
    let v = model.config.vocab_size;
    let bias = Tensor::new(vec![Dim::Vocab], ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[v]), random(v, 6, 30.0)).unwrap()).unwrap();
    let bias = Values { tensor: Arc::new(bias), first_position: 0 };
    vec![
        vec![Intervention::zero_heads(0, vec![0, 2]), Intervention::zero(HookKey::Block(1, BlockHook::MlpOut))],
        vec![Intervention::new(HookKey::Block(0, BlockHook::Ln1Scale), Edit::Scale(3.0)).positions(vec![1, 4])],
        vec![Intervention::zero(HookKey::Block(0, BlockHook::RotK)).positions(vec![0]).heads(vec![1])],
        vec![Intervention::new(HookKey::Block(1, BlockHook::ResidMid), Edit::Add(steer)).positions(vec![2, 3])],
        vec![Intervention::patch_from(other, HookKey::Block(1, BlockHook::AttnOut)).unwrap().positions(vec![5])],
        vec![Intervention::patch_from(other, HookKey::Block(0, BlockHook::Pattern)).unwrap().heads(vec![3])],
        vec![Intervention::new(HookKey::Block(1, BlockHook::MlpPre), Edit::Scale(0.0)).features(vec![0, 1, 2, 3, 4, 5])],
        vec![Intervention::new(HookKey::Logits, Edit::Add(bias))],
    ]
}

#[test]
fn interventions_are_the_same_on_the_gpu_as_on_the_cpu() {
    let ctx = gpu_or_skip!();
    for name in ["tiny-gqa-tied", "tiny-llama31-rope-scaling"] {
        let model = load(name);
        let ids = input_ids(name);
        let mut other_ids = ids.clone();
        other_ids.rotate_left(3);
        let other = cpu_pass(&model, &other_ids, PassOptions::default());
        let plain = cpu_pass(&model, &ids, PassOptions::default());
        let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
        for (i, edits) in edit_suite(&model, &other).into_iter().enumerate() {
            let options = PassOptions { interventions: edits, ..PassOptions::default() };
            let cpu = cpu_pass(&model, &ids, options.clone());
            gpu.reset();
            let got = gpu.forward(&ids, options.clone()).unwrap();
            let worst = compare_traces(&got, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("{name}, edit set {i}: {e}"));
            eprintln!("{name}, edit set {i}: worst NMSE {:.2e}", worst.nmse);
            let changed = cpu.keys().filter(|&k| cpu.get(k) != plain.get(k)).count();
            assert!(changed > 0, "{name}, edit set {i} changed nothing");
            // With the KV cache: generation under the same edits picks the same tokens. A patch
            // of every position has no values for the new ones: a clear error, on both.
            let cpu_ids = generate_with(&mut CpuExecutor::new(Arc::clone(&model)), &ids, 3, &options, &[], &mut |_| {});
            let gpu_ids = generate_with(&mut gpu, &ids, 3, &options, &[], &mut |_| {});
            match (cpu_ids, gpu_ids) {
                (Ok(c), Ok(g)) => assert_eq!(g, c, "{name}, edit set {i}: generation"),
                (Err(c), Err(g)) => {
                    assert_eq!(c.to_string(), g.to_string());
                    assert!(c.to_string().contains("but this pass needs"), "{c}");
                }
                (c, g) => panic!("{name}, edit set {i}: CPU {c:?} vs GPU {g:?}"),
            }
        }
    }
}

#[test]
fn rounded_activations_are_the_same_on_the_gpu_as_on_the_cpu() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-smollm2-shape");
    let ids = input_ids("tiny-smollm2-shape");
    let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
    for precision in [ActivationPrecision::F16, ActivationPrecision::Bf16] {
        let options = PassOptions { activations: precision, ..PassOptions::default() };
        let cpu = cpu_pass(&model, &ids, options.clone());
        gpu.reset();
        let got = gpu.forward(&ids, options).unwrap();
        let worst = compare_traces_with(&got, &cpu, |k| if k == HookKey::Probs { ROUNDED_PROBS } else { ROUNDED_PASS_HOOK })
            .unwrap_or_else(|e| panic!("{}: {e}", precision.name()));
        eprintln!("{} activations: worst NMSE {:.2e}", precision.name(), worst.nmse);
        let q = got.get("blocks.1.attn.hook_q".parse().unwrap()).unwrap();
        assert!(q.data.iter().all(|&v| precision.round(v) == v), "{}: GPU activations are rounded", precision.name());
    }
}

#[test]
fn streaming_in_batches_hands_over_every_step_once() {
    let ctx = gpu_or_skip!();
    let model = load("tiny-mha-untied");
    let ids = input_ids("tiny-mha-untied");
    let cpu = cpu_pass(&model, &ids, PassOptions::default());
    let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
    gpu.begin(&ids, PassOptions::default()).unwrap();
    let mut streamed = Trace::default();
    let mut steps = Vec::new();
    // Stop after the batch holding the first 20 steps, then resume to the end.
    gpu.stream_to(Step::Sample, 7, &mut |o: StepOutput| {
        steps.push(o.step);
        for (k, t) in o.tensors {
            streamed.insert_shared(k, t);
        }
        streamed.sampled = streamed.sampled.or(o.sampled);
        if steps.len() >= 20 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .unwrap();
    assert_eq!(steps.len(), 21, "a batch of 7 is handed over whole before the run stops");
    assert!(gpu.trace().is_empty(), "streamed tensors are moved out, not kept");
    gpu.stream_to(Step::Sample, 7, &mut |o: StepOutput| {
        steps.push(o.step);
        for (k, t) in o.tensors {
            streamed.insert_shared(k, t);
        }
        streamed.sampled = streamed.sampled.or(o.sampled);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(steps, glassbox_engine::program::step::Program::of(&model.config).steps().to_vec(), "every step once, in order");
    streamed.token_ids = cpu.token_ids.clone();
    streamed.last_step = Some(Step::Sample);
    compare_traces(&streamed, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("streamed pass: {e}"));
}

#[test]
fn f16_weights_agree_with_f32_on_the_fixtures() {
    let ctx = gpu_or_skip!();
    for options in f16_options(&ctx) {
        let (mut agree, mut total, mut kl_sum) = (0, 0, 0.0);
        for name in FIXTURES {
            let model = load(name);
            let ids = input_ids(name);
            let capture = PassOptions::capture(CaptureFilter::keys([HookKey::Logits]));
            let cpu = cpu_pass(&model, &ids, capture.clone());
            let mut exec = gpu_exec(&ctx, &model, options);
            let f16 = exec.forward(&ids, capture).unwrap();
            let (per_pos, kl) = f16_agreement(&cpu, &f16);
            let (a, t) = (per_pos.iter().filter(|&&x| x).count(), per_pos.len());
            eprintln!("{name}, {}: top-1 {a}/{t}, mean KL {kl:.2e}", exec.device_name());
            (agree, total, kl_sum) = (agree + a, total + t, kl_sum + kl * t as f64);
        }
        let rate = agree as f64 / total as f64;
        eprintln!("fixtures, f16 {options:?}: top-1 agreement {agree}/{total} = {:.1}%, mean KL {:.2e}", rate * 100.0, kl_sum / total as f64);
        assert!(rate >= F16_TOP1_AGREEMENT && kl_sum / total as f64 <= F16_MEAN_KL, "f16 top-1 agreement {agree}/{total} on the fixtures");
    }
}

#[test]
fn timestamp_queries_measure_gpu_time_without_changing_a_number() {
    let ctx = gpu_or_skip!();
    let name = "tiny-gqa-tied";
    let (model, ids) = (load(name), input_ids(name));
    let mut exec = gpu_exec(&ctx, &model, GpuOptions::default());
    let plain = exec.forward(&ids, PassOptions::default()).unwrap();
    let offered = glassbox_engine::exec::gpu::timer::GpuTimer::supported(&ctx);
    assert_eq!(exec.set_gpu_timing(true), offered, "timing is on exactly where the device has timestamp queries");
    if !offered {
        eprintln!("note: {} has no timestamp queries; GPU time cannot be measured here", ctx.name());
        assert!(exec.take_gpu_time().is_none());
        return;
    }
    exec.reset(); // the same positions again, not a continuation of the cache
    let timed = exec.forward(&ids, PassOptions::default()).unwrap();
    let time = exec.take_gpu_time().unwrap();
    eprintln!("{}: one pass, {} compute passes timed, {:.3} ms of GPU time", ctx.name(), time.passes, time.ms());
    assert!(time.passes > 0 && time.ns > 0.0 && time.untimed == 0, "{time:?}");
    assert_eq!(exec.take_gpu_time().unwrap().passes, 0, "take starts afresh");
    for (k, t) in plain.iter() {
        assert_eq!(Some(&**t), timed.get(k), "{k}");
    }
    assert!(!exec.set_gpu_timing(false) && exec.take_gpu_time().is_none());
}
