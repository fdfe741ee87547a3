//! Weights kept as downloaded (GGUF blocks, dequantized in the kernels) against the same model
//! dequantized to f32 once: every hook within float rounding, the same greedy tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::exec::executor::{PassOptions, generate};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::WeightsMode;
use glassbox_engine::experiments::quantize::{WeightQuant, quantized_model};
use glassbox_tests::as_downloaded::q4_0_model;
use glassbox_tests::gpu::{compare_traces, cpu_pass, input_ids, load, logits_agree};
use glassbox_tests::tolerance::NATIVE_PASS_HOOK;

#[test]
fn a_model_kept_as_q4_0_blocks_runs_every_hook_as_its_f32_reference() {
    let model = load("tiny-gqa-tied");
    let native = Arc::new(q4_0_model(&model));
    assert_eq!((native.weights_mode(), model.weights_mode()), (WeightsMode::Native, WeightsMode::F32));
    let reference = Arc::new(quantized_model(&native, WeightQuant::F32Reference).unwrap());
    assert_eq!(reference.weights_mode(), WeightsMode::F32, "the reference holds f32 matrices");
    let ids = input_ids("tiny-gqa-tied");
    let a = cpu_pass(&native, &ids, PassOptions::capture(CaptureFilter::All));
    let b = cpu_pass(&reference, &ids, PassOptions::capture(CaptureFilter::All));
    let worst = compare_traces(&a, &b, NATIVE_PASS_HOOK).unwrap();
    let (logit_err, same_top1) = logits_agree(&a, &b);
    eprintln!("Q4_0 as downloaded vs f32 reference: worst hook NMSE {:.2e}, max |Δlogit| {logit_err:.2e}", worst.nmse);
    assert!(same_top1, "every position's top-1 token agrees");
    // The blocks differ from the fixture's f32 weights: a reference that ignored them would
    // agree with the original model instead.
    let original = cpu_pass(&model, &ids, PassOptions::capture(CaptureFilter::All));
    assert!(compare_traces(&a, &original, NATIVE_PASS_HOOK).is_err(), "Q4_0 rounding shows against the original f32 weights");
}

#[test]
fn greedy_generation_from_blocks_equals_the_f32_reference() {
    let model = load("tiny-gqa-tied");
    let native = Arc::new(q4_0_model(&model));
    let reference = Arc::new(quantized_model(&native, WeightQuant::F32Reference).unwrap());
    let ids = input_ids("tiny-gqa-tied");
    let run = |m: &Arc<glassbox_engine::Model>| {
        let mut exec = glassbox_engine::exec::cpu::CpuExecutor::new(Arc::clone(m));
        generate(&mut exec, &ids, 8, SamplingParams::greedy(), &[], &mut |_| ()).unwrap()
    };
    assert_eq!(run(&native), run(&reference));
}

#[test]
fn the_f32_reference_of_an_f32_model_is_refused_in_one_line() {
    let model = load("tiny-gqa-tied");
    let err = quantized_model(&model, WeightQuant::F32Reference).err().unwrap().to_string();
    assert!(err.contains("f32-ref") && err.contains("--weights native") && !err.contains('\n'), "{err}");
}
