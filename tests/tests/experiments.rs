//! The experiments against transformers on SmolLM2 (direct logit attribution, activation
//! patching, head scores, ablations) and on inputs the reference never saw: what must hold
//! for any prompt (components sum to the logit, patching the only differing token restores
//! the clean run, the probe finds an induction head), comparisons of runs, quantized weights
//! and NumPy files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{PassOptions, Switches};
use glassbox_engine::experiments::attribution::{self, attribute};
use glassbox_engine::experiments::compare::compare;
use glassbox_engine::experiments::head_catalog::{self, HeadScores, head_scores};
use glassbox_engine::experiments::npy;
use glassbox_engine::experiments::patching::{PatchHook, PatchSetup, patch_grid};
use glassbox_engine::experiments::quantize::{WeightQuant, quantized_model};
use glassbox_engine::{ActivationPrecision, BlockHook, HookKey, Intervention, Model};
use glassbox_tests::golden;
use glassbox_tests::gpu::{cpu_pass, input_ids, load};

/// DLA components and the logit (as the reference README suggests).
const DLA_ABS: f64 = 2e-3;
/// Patching scores.
const PATCH_ABS: f64 = 1e-2;
/// Head scores.
const HEADS_ABS: f64 = 1e-3;

fn max_abs(a: &[Vec<f32>], b: &[Vec<f64>]) -> f64 {
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (f64::from(*p) - q).abs())).fold(0.0, f64::max)
}

#[test]
fn direct_logit_attribution_matches_transformers() {
    let Some(model) = golden::smollm2() else { return };
    for case in golden::interventions().dla {
        let trace = cpu_pass(&model, &case.token_ids, PassOptions::capture(attribution::capture()));
        let a = attribute(&model, &trace, case.target_id, None).unwrap();
        assert!((f64::from(a.logit) - case.logit).abs() <= DLA_ABS, "{}: logit {} vs {}", case.name, a.logit, case.logit);
        assert_eq!(a.components.len(), case.components.len());
        for (ours, want) in a.components.iter().zip(&case.components) {
            assert_eq!(ours.name, want.name);
            assert!((f64::from(ours.value) - want.value).abs() <= DLA_ABS, "{}: {} is {} vs {}", case.name, ours.name, ours.value, want.value);
        }
    }
}

#[test]
fn attribution_components_sum_to_the_logit_on_any_prompt() {
    let cases: Vec<(Arc<Model>, Vec<u32>)> = ["tiny-gqa-tied", "tiny-mha-untied", "tiny-llama31-rope-scaling"]
        .into_iter()
        .map(|n| (load(n), input_ids(n)))
        .chain(golden::smollm2().map(|m| {
            let ids = m.tokenizer.as_ref().unwrap().encode("Snow is white and grass is").unwrap();
            (m, ids)
        }))
        .collect();
    for (model, ids) in cases {
        let trace = cpu_pass(&model, &ids, PassOptions::capture(attribution::capture()));
        let logits = trace.last_logits.clone().unwrap();
        let top = glassbox_engine::exec::sampling::argmax(&logits);
        for minus in [None, Some((top + 1) % model.config.vocab_size as u32)] {
            let a = attribute(&model, &trace, top, minus).unwrap();
            let tolerance = 1e-4 * a.components.iter().map(|c| c.value.abs()).sum::<f32>().max(1.0);
            assert!((a.sum() - a.logit).abs() <= tolerance, "sum {} vs logit {} (minus {minus:?})", a.sum(), a.logit);
            assert_eq!(a.components.len(), 1 + model.config.n_layers() * (model.config.n_heads() + 1));
        }
    }
}

#[test]
fn patching_grids_match_transformers() {
    let Some(model) = golden::smollm2() else { return };
    let case = &golden::interventions().patch[0];
    let setup = PatchSetup { clean: case.clean_ids.clone(), corrupt: case.corrupt_ids.clone(), answer: case.answer_id, wrong: case.wrong_id };
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    for hook in PatchHook::ALL {
        let start = std::time::Instant::now();
        let grid = patch_grid(&mut exec, &setup, hook, &mut |_, _| ControlFlow::Continue(())).unwrap().unwrap();
        let want = match hook {
            PatchHook::ResidPre => &case.scores.resid_pre,
            PatchHook::AttnOut => &case.scores.attn_out,
            PatchHook::MlpOut => &case.scores.mlp_out,
            PatchHook::Z => &case.scores.z,
        };
        let err = max_abs(&grid.scores, want);
        eprintln!("{}: {} cells in {:.1} s, max abs error {err:.2e}", hook.name(), grid.scores.len() * grid.scores[0].len(), start.elapsed().as_secs_f64());
        assert!(err <= PATCH_ABS, "{}: scores off by {err:e}", hook.name());
        assert!((f64::from(grid.clean_ld) - case.clean_ld).abs() <= DLA_ABS && (f64::from(grid.corrupt_ld) - case.corrupt_ld).abs() <= DLA_ABS);
    }
}

#[test]
fn patching_the_only_differing_token_restores_the_clean_run() {
    let model = load("tiny-smollm2-shape");
    let clean = input_ids("tiny-smollm2-shape");
    let mut corrupt = clean.clone();
    let at = 9;
    corrupt[at] = (corrupt[at] + 17) % model.config.vocab_size as u32;
    // The answer and wrong tokens: what each run predicts.
    let next = |ids: &[u32]| cpu_pass(&model, ids, PassOptions::capture(glassbox_engine::CaptureFilter::Nothing)).sampled.unwrap();
    let (answer, wrong) = (next(&clean), next(&corrupt));
    let wrong = if wrong == answer { (answer + 1) % model.config.vocab_size as u32 } else { wrong };
    let setup = PatchSetup { clean, corrupt, answer, wrong };
    let mut exec = CpuExecutor::new(Arc::clone(&model));
    let mut calls = 0;
    let grid = patch_grid(&mut exec, &setup, PatchHook::ResidPre, &mut |_, _| {
        calls += 1;
        ControlFlow::Continue(())
    })
    .unwrap()
    .unwrap();
    for (p, &score) in grid.scores[0].iter().enumerate() {
        let want = if p == at { 1.0 } else { 0.0 };
        assert!((score - want).abs() < 1e-4, "layer 0, position {p}: {score}");
    }
    // Positions before the change see the same past in both runs.
    assert!(grid.scores.iter().all(|row| row[..at].iter().all(|s| s.abs() < 1e-4)));
    assert_eq!(calls, 2 * 17 + 1);
    // A cancelled grid stops and says so.
    let cancelled = patch_grid(&mut exec, &setup, PatchHook::Z, &mut |done, _| if done >= 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) });
    assert!(cancelled.unwrap().is_none());
}

#[test]
fn head_scores_match_transformers() {
    let Some(model) = golden::smollm2() else { return };
    let case = &golden::interventions().heads[0];
    let trace = cpu_pass(&model, &case.token_ids, PassOptions::capture(head_catalog::capture()));
    let s = head_scores(&trace, model.config.n_layers()).unwrap();
    for (name, ours, want) in [
        ("previous_token", &s.previous_token, &case.previous_token),
        ("first_token", &s.first_token, &case.first_token),
        ("induction", &s.induction, &case.induction),
        ("duplicate", &s.duplicate, &case.duplicate),
    ] {
        let err = max_abs(ours, want);
        assert!(err <= HEADS_ABS, "{name}: off by {err:e}");
    }
}

#[test]
fn the_built_in_probe_finds_smollm2s_induction_heads() {
    let Some(model) = golden::smollm2() else { return };
    let reference = &golden::interventions().heads[0];
    let probe = head_catalog::probe_sequence(model.config.vocab_size, 20, 7);
    assert_ne!(probe, reference.token_ids, "a sequence the reference never saw");
    let trace = cpu_pass(&model, &probe, PassOptions::capture(head_catalog::capture()));
    let s = head_scores(&trace, model.config.n_layers()).unwrap();
    let (l, h, score) = HeadScores::best(&s.induction).unwrap();
    // The reference's three strongest induction heads.
    let mut ranked: Vec<(usize, usize, f64)> =
        reference.induction.iter().enumerate().flat_map(|(l, r)| r.iter().enumerate().map(move |(h, &v)| (l, h, v))).collect();
    ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
    eprintln!("probe seed 7: best induction head L{l}.H{h} ({score:.3}); reference top 3 {:?}", &ranked[..3]);
    assert!(score > 0.5, "L{l}.H{h} scores only {score}");
    assert!(ranked[..3].iter().any(|&(rl, rh, _)| (rl, rh) == (l, h)), "L{l}.H{h} is not among the reference's top 3");
}

#[test]
fn comparisons_find_where_two_runs_part() {
    let model = load("tiny-smollm2-shape");
    let ids = input_ids("tiny-smollm2-shape");
    let run = |m: &Arc<Model>, ids: &[u32], o: PassOptions| cpu_pass(m, ids, o);
    let a = run(&model, &ids, PassOptions::default());
    let same = compare(&a, &run(&model, &ids, PassOptions::default()), 5).unwrap();
    assert_eq!(same.first_apart, None);
    assert!(same.kl.iter().all(|&k| k == 0.0));
    let apart = |o: PassOptions| compare(&a, &run(&model, &ids, o), 5).unwrap().first_apart.map(|k| k.to_string());
    let ablate = PassOptions { interventions: vec![Intervention::zero_heads(1, vec![2])], ..PassOptions::default() };
    assert_eq!(apart(ablate).as_deref(), Some("blocks.1.attn.hook_z"));
    let no_mask = PassOptions { switches: Switches { no_causal_mask: true, ..Switches::default() }, ..PassOptions::default() };
    assert_eq!(apart(no_mask).as_deref(), Some("blocks.0.attn.hook_attn_scores"));
    let no_rope = PassOptions { switches: Switches { no_rope: true, ..Switches::default() }, ..PassOptions::default() };
    assert_eq!(apart(no_rope).as_deref(), Some("blocks.0.attn.hook_rot_q"));
    let mut other = ids.clone();
    other[4] += 1;
    let prompt = compare(&a, &run(&model, &other, PassOptions::default()), 5).unwrap();
    assert_eq!(prompt.first_apart, Some(HookKey::Embed));
    assert_eq!(prompt.residual.len(), model.config.n_layers() + 1);
    // Lower precision: every run parts somewhere, and 4-bit weights move the answer most.
    let kl_of = |m: &Arc<Model>, o: PassOptions| *compare(&a, &run(m, &ids, o), 5).unwrap().kl.last().unwrap();
    let f16 = kl_of(&model, PassOptions { activations: ActivationPrecision::F16, ..PassOptions::default() });
    let bf16_weights = kl_of(&Arc::new(quantized_model(&model, WeightQuant::Bf16).unwrap()), PassOptions::default());
    let q4 = kl_of(&Arc::new(quantized_model(&model, WeightQuant::Q4).unwrap()), PassOptions::default());
    eprintln!("KL at the last position: f16 activations {f16:.2e}, bf16 weights {bf16_weights:.2e}, 4-bit weights {q4:.2e}");
    assert!(f16 > 0.0 && bf16_weights > 0.0 && q4 > bf16_weights, "f16 {f16}, bf16 {bf16_weights}, q4 {q4}");
}

#[test]
fn hooks_export_as_numpy_files() {
    let model = load("tiny-gqa-tied");
    let ids = input_ids("tiny-gqa-tied");
    let capture = glassbox_engine::CaptureFilter::parse("attn.hook_pattern,blocks.1.hook_resid_post").unwrap();
    let trace = cpu_pass(&model, &ids, PassOptions::capture(capture));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hooks.npz");
    let entries: Vec<(String, &glassbox_engine::Tensor)> = trace.iter().map(|(k, t)| (k.to_string(), &**t)).collect();
    assert_eq!(entries.len(), 3);
    npy::write_npz(&path, &entries).unwrap();
    // Read it back: a zip of `<hook>.npy`, each holding the tensor's shape and values.
    let file = std::fs::File::open(&path).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    for (name, t) in &entries {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(&format!("{name}.npy")).unwrap(), &mut bytes).unwrap();
        assert_eq!(bytes, npy::npy_bytes(t));
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let values: Vec<f32> = bytes[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(values, t.data.iter().copied().collect::<Vec<_>>(), "{name}");
    }
    let shape = trace.get(HookKey::Block(1, BlockHook::Pattern)).unwrap().shape().to_vec();
    let shape = shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    glassbox_tests::numpy_check(
        &path,
        &format!("z = np.load(path); p = z['blocks.1.attn.hook_pattern']; assert p.shape == ({shape}) and p.dtype == np.float32, p.shape; assert abs(p.sum(-1) - 1).max() < 1e-5"),
    );
}
