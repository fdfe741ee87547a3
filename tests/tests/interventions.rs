//! Writable hook points on the CPU reference: ablations against transformers on SmolLM2, and
//! what an intervention means (identity edits change nothing, patching the stream makes the
//! source run, edits apply by absolute position across the KV cache, the recorded hook is the
//! edited value); the op table as both what a step records and what streaming hands over; and
//! the report of the first non-finite value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, StepOutput, generate_with};
use glassbox_engine::exec::intervene::{Edit, Intervention};
use glassbox_engine::exec::sampling::argmax;
use glassbox_engine::exec::trace::{CaptureFilter, Trace};
use glassbox_engine::{BlockHook, HookKey, Model, Step};
use glassbox_tests::golden;
use glassbox_tests::gpu::{cpu_pass, input_ids, load, logits};
use glassbox_tests::tolerance::INTERVENTION_LOGITS_ABS;

fn with(edits: Vec<Intervention>) -> PassOptions {
    PassOptions { interventions: edits, ..PassOptions::default() }
}

#[test]
fn ablations_match_transformers_on_smollm2() {
    let Some(model) = golden::smollm2() else { return };
    for case in golden::interventions().ablate {
        let options = PassOptions { interventions: case.interventions(), ..PassOptions::capture(CaptureFilter::keys([HookKey::Logits])) };
        let trace = cpu_pass(&model, &case.token_ids, options.clone());
        let rows = logits(&trace);
        let argmax_all: Vec<u32> = rows.outer_iter().map(|r| argmax(&r.to_vec())).collect();
        assert_eq!(argmax_all, case.argmax_all, "{}: argmax at every position", case.name);
        let last = rows.row(rows.nrows() - 1);
        let worst = case.last_top20.iter().map(|w| f64::from((last[w.id as usize] - w.logit).abs())).fold(0.0, f64::max);
        eprintln!("{}: top-20 logits max abs error {worst:.2e}", case.name);
        assert!(worst <= INTERVENTION_LOGITS_ABS, "{}: top-20 logits off by {worst:e}", case.name);
        let greedy = generate_with(&mut CpuExecutor::new(Arc::clone(&model)), &case.token_ids, 8, &options, &[], &mut |_| {}).unwrap();
        assert_eq!(greedy, case.greedy8, "{}: 8 greedy tokens under the ablation", case.name);
    }
}

#[test]
fn identity_edits_leave_every_hook_as_it_was() {
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    let plain = cpu_pass(&model, &ids, PassOptions::default());
    // Scale by 1 and patch with the pass's own values, on every hook there is.
    let edits: Vec<Intervention> = plain
        .keys()
        .flat_map(|k| [Intervention::new(k, Edit::Scale(1.0)), Intervention::patch_from(&plain, k).unwrap()])
        .collect();
    let edited = cpu_pass(&model, &ids, with(edits));
    assert_eq!(edited.keys().collect::<Vec<_>>(), plain.keys().collect::<Vec<_>>());
    for k in plain.keys() {
        assert_eq!(edited.get(k), plain.get(k), "{k}");
    }
}

#[test]
fn patching_the_whole_stream_gives_the_source_run() {
    let model = load("tiny-mha-untied");
    let ids = input_ids("tiny-mha-untied");
    let mut other_ids = ids.clone();
    other_ids.reverse();
    let source = cpu_pass(&model, &other_ids, PassOptions::default());
    let patch = Intervention::patch_from(&source, HookKey::Block(0, BlockHook::ResidPre)).unwrap();
    let patched = cpu_pass(&model, &ids, with(vec![patch]));
    assert_eq!(patched.get(HookKey::Embed), cpu_pass(&model, &ids, PassOptions::default()).get(HookKey::Embed), "the edit comes after hook_embed");
    for k in source.keys().filter(|k| k.layer().is_some() || *k == HookKey::Logits) {
        assert_eq!(patched.get(k), source.get(k), "{k}");
    }
    assert_eq!(patched.sampled, source.sampled);
}

#[test]
fn recorded_hooks_show_the_edited_values_and_later_ops_use_them() {
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    let plain = cpu_pass(&model, &ids, PassOptions::default());
    let edits = vec![
        Intervention::zero(HookKey::Block(1, BlockHook::RotK)).positions(vec![0]).heads(vec![1]),
        Intervention::zero_heads(0, vec![3]),
    ];
    let t = cpu_pass(&model, &ids, with(edits));
    let z = t.get(HookKey::Block(0, BlockHook::Z)).unwrap().as_3d().unwrap();
    assert!(z.slice(ndarray::s![.., 3, ..]).iter().all(|&v| v == 0.0), "ablated z is recorded as 0");
    assert_ne!(t.get(HookKey::Block(0, BlockHook::AttnOut)), plain.get(HookKey::Block(0, BlockHook::AttnOut)), "o_proj saw the ablation");
    // Key 0 of kv head 1 is zero, so every query of heads 2 and 3 (group of 2) scores 0 there.
    let scores = t.get(HookKey::Block(1, BlockHook::RawScores)).unwrap().as_3d().unwrap();
    for h in [2, 3] {
        assert!(scores.slice(ndarray::s![h, .., 0]).iter().all(|&v| v == 0.0), "head {h} reads the edited key from the cache");
    }
    assert!(scores.slice(ndarray::s![0, .., 0]).iter().any(|&v| v != 0.0), "kv head 0 untouched");
}

#[test]
fn edits_apply_by_absolute_position_across_the_kv_cache() {
    let model = load("tiny-llama31-rope-scaling");
    let ids = input_ids("tiny-llama31-rope-scaling");
    let edit = || with(vec![Intervention::zero(HookKey::Block(0, BlockHook::AttnOut)).positions(vec![10, 30])]);
    let whole = cpu_pass(&model, &ids, edit());
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    exec.forward(&ids[..20], edit()).unwrap();
    let tail = exec.forward(&ids[20..], edit()).unwrap();
    let last = |t: &Trace| logits(t).row(logits(t).nrows() - 1).to_vec();
    // Equal up to the matmul blocking of 20 rows vs 40 (~1e-6); the edits move logits by ~1.
    let apart = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(apart(&last(&tail), &last(&whole)) < 1e-4, "the cached second half sees the edit at position 10 and makes its own at 30");
    let plain = cpu_pass(&model, &ids, PassOptions::default());
    assert!(apart(&last(&plain), &last(&whole)) > 1e-2, "the edits matter");
    let out = tail.get(HookKey::Block(0, BlockHook::AttnOut)).unwrap().as_2d().unwrap();
    assert!(out.row(10).iter().all(|&v| v == 0.0), "position 30 is row 10 of the second pass");
}

#[test]
fn every_step_records_exactly_its_op_table_hooks() {
    let model = load("tiny-smollm2-shape");
    let ids = input_ids("tiny-smollm2-shape");
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    exec.begin(&ids, PassOptions::default()).unwrap();
    let mut seen = 0;
    while let Some(step) = exec.step().unwrap() {
        let keys: Vec<HookKey> = exec.trace().keys().collect();
        let new: Vec<HookKey> = step.hooks().into_iter().filter(|k| keys.contains(k)).collect();
        assert_eq!(new, step.hooks(), "{step} records its table's hooks");
        seen += step.hooks().len();
        assert_eq!(keys.len(), seen, "{step} records nothing else");
        for k in step.hooks() {
            let (_, spec) = glassbox_engine::program::op::hook_spec(k.kind()).unwrap();
            assert_eq!(exec.trace().get(k).unwrap().dims, spec.dims, "{k}: named dims");
        }
    }
}

#[test]
fn streaming_moves_each_steps_tensors_out_in_order() {
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    let whole = cpu_pass(&model, &ids, PassOptions::default());
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    exec.begin(&ids, PassOptions::default()).unwrap();
    let mut outputs: Vec<StepOutput> = Vec::new();
    exec.stream_to("blocks.0.z".parse().unwrap(), 1, &mut |o| {
        outputs.push(o);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(exec.next_step(), Some("blocks.0.o_proj".parse().unwrap()), "stops after the asked step");
    exec.stream_to(Step::Sample, 1, &mut |o| {
        outputs.push(o);
        if outputs.len() == 20 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .unwrap();
    assert_eq!(outputs.len(), 20, "Break stops the run");
    exec.stream_to(Step::Sample, 1, &mut |o| {
        outputs.push(o);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(exec.trace().is_empty(), "the executor keeps no copy");
    let steps: Vec<Step> = outputs.iter().map(|o| o.step).collect();
    assert_eq!(steps, glassbox_engine::program::step::Program::llama(2).steps().to_vec());
    for o in &outputs {
        for (k, t) in &o.tensors {
            assert_eq!(Some(&**t), whole.get(*k), "{k}");
        }
    }
    assert_eq!(outputs.last().unwrap().sampled, whole.sampled);
}

#[test]
fn the_first_non_finite_hook_is_named() {
    let mut model = Model::load(&glassbox_tests::fixtures_dir().join("tiny-gqa-tied")).unwrap();
    model.weights.layers[1].self_attn.q_proj.f32_mut()[[5, 0]] = f32::NAN;
    let model = Arc::new(model);
    let ids = input_ids("tiny-gqa-tied");
    let all = cpu_pass(&model, &ids, PassOptions::default());
    let bad = all.non_finite.expect("NaN weights give NaN activations");
    assert_eq!(bad.key, "blocks.1.attn.hook_q".parse().unwrap(), "{bad}");
    assert!(bad.to_string().contains("blocks.1.q"), "{bad}");
    // Uncaptured: the residual stream still shows where it went wrong.
    let quiet = cpu_pass(&model, &ids, PassOptions::capture(CaptureFilter::Nothing));
    assert_eq!(quiet.non_finite.map(|b| b.key), Some("blocks.1.hook_resid_mid".parse().unwrap()));
    // The causal mask's -inf are meant, not a fault.
    let fine = cpu_pass(&load("tiny-gqa-tied"), &ids, PassOptions::default());
    assert_eq!(fine.non_finite, None);
}

#[test]
fn masked_scores_and_pattern_are_kept_as_the_raw_scores_until_read() {
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    let plain = cpu_pass(&model, &ids, PassOptions::default());
    let (raw, masked, pattern) = (HookKey::Block(1, BlockHook::RawScores), HookKey::Block(1, BlockHook::AttnScores), HookKey::Block(1, BlockHook::Pattern));
    assert!(!plain.is_pending(raw), "the raw scores are held as computed");
    assert!(plain.is_pending(masked) && plain.is_pending(pattern), "nothing has read them yet");
    let before = plain.bytes();
    let size = plain.get(raw).unwrap().data.len() * 4;
    // An identity edit on the pattern makes the pass record both as it computed them: the
    // derived values must be those very bits.
    let stored = cpu_pass(&model, &ids, with(vec![Intervention::new(pattern, Edit::Scale(1.0))]));
    assert!(!stored.is_pending(masked) && !stored.is_pending(pattern));
    assert_eq!(plain.get(masked), stored.get(masked));
    assert_eq!(plain.get(pattern), stored.get(pattern));
    assert_eq!(plain.bytes(), before + 2 * size, "reading works each out once");
    let later = cpu_pass(&model, &ids, PassOptions::default());
    later.materialize();
    assert!(later.keys().all(|k| !later.is_pending(k)), "materialize works every entry out");
    assert!(later.bytes() > plain.bytes(), "every layer's masked scores and pattern now held, not one layer's");
    let row_sums: Vec<f32> = plain.get(pattern).unwrap().data.rows().into_iter().map(|r| r.sum()).collect();
    assert!(row_sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{row_sums:?}");
}

#[test]
fn a_blocks_resid_pre_is_the_previous_resid_post_held_once() {
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    let plain = cpu_pass(&model, &ids, PassOptions::default());
    let (post0, pre1) = (HookKey::Block(0, BlockHook::ResidPost), HookKey::Block(1, BlockHook::ResidPre));
    assert!(Arc::ptr_eq(plain.get_shared(post0).unwrap(), plain.get_shared(pre1).unwrap()));
    // Edited, the stream entering block 1 is its own tensor and the edit shows only there.
    let edited = cpu_pass(&model, &ids, with(vec![Intervention::new(pre1, Edit::Scale(2.0))]));
    assert_eq!(edited.get(post0), plain.get(post0));
    let doubled = plain.get(pre1).unwrap().data.mapv(|v| v * 2.0);
    assert_eq!(edited.get(pre1).unwrap().data, doubled);
}
