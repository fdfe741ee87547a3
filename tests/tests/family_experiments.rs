//! Everything built on hooks, on every family (issue 18): direct logit attribution through
//! Gemma's sandwich norms, OLMo 2's post-sublayer norms and GPT-2's LayerNorm (BERT refused in
//! one line), the sliding-window KV cache of Gemma's local layers, and patching, head scores,
//! comparisons and long prompts on the GPT-2, BERT, Gemma 3, Qwen 2, Qwen 3, OLMo 2 and Phi-3
//! fixtures (issue 23).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use glassbox_engine::exec::executor::PassOptions;
use glassbox_engine::experiments::attribution::{self, attribute};
use glassbox_engine::{BlockHook, HookKey};
use glassbox_tests::gpu::{cpu_pass, input_ids, load};

/// Components must sum to the logit to float rounding: 1e-3 of the logit's size.
const SUM_REL: f32 = 1e-3;

#[test]
fn attribution_sums_to_the_logit_on_gemma3_gpt2_and_the_newer_families() {
    // OLMo 2's shares go through its post-sublayer norms, as Gemma's through its sandwich.
    for name in ["tiny-gemma3", "tiny-gpt2", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let model = load(name);
        let ids = input_ids(name);
        let trace = cpu_pass(&model, &ids, PassOptions::capture(attribution::capture()));
        let logits = trace.last_logits.clone().unwrap();
        let top = glassbox_engine::exec::sampling::argmax(&logits);
        for minus in [None, Some((top + 1) % model.config.vocab_size as u32)] {
            let a = attribute(&model, &trace, top, minus).unwrap();
            let scale = a.logit.abs().max(a.components.iter().map(|c| c.value.abs()).fold(0.0, f32::max)).max(1.0);
            let err = (a.sum() - a.logit).abs() / scale;
            eprintln!("{name} (minus {minus:?}): logit {:.6}, sum {:.6}, relative error {err:.1e}", a.logit, a.sum());
            assert!(err <= SUM_REL, "{name}: sum {} vs logit {} (minus {minus:?})", a.sum(), a.logit);
            let heads = a.components.iter().filter(|c| c.head.is_some()).count();
            assert_eq!(heads, model.config.n_layers() * model.config.n_heads(), "{name}");
        }
    }
}

/// Gemma's shares are what each post-sublayer norm's output adds, read through the final
/// norm: the heads of a layer sum to `ln1_post.hook_normalized`'s share, the MLP is
/// `ln2_post.hook_normalized`'s (worked out here from the trace, apart from `attribute`).
#[test]
fn gemma_shares_are_the_post_norm_outputs() {
    let model = load("tiny-gemma3");
    let ids = input_ids("tiny-gemma3");
    let trace = cpu_pass(&model, &ids, PassOptions::capture(glassbox_engine::exec::trace::CaptureFilter::All));
    let top = glassbox_engine::exec::sampling::argmax(trace.last_logits.as_ref().unwrap());
    let a = attribute(&model, &trace, top, None).unwrap();
    let last = ids.len() - 1;
    let scale = trace.get(HookKey::LnFinalScale).unwrap().data[[last]];
    let u = &model.weights.lm_head().row(top as usize) * model.weights.norm.as_ref().unwrap() / scale;
    let share = |l: usize, hook: BlockHook| trace.get(HookKey::Block(l, hook)).unwrap().data.index_axis(ndarray::Axis(0), last).to_owned().into_shape_with_order(u.len()).unwrap().dot(&u);
    for l in 0..model.config.n_layers() {
        let heads: f32 = a.components.iter().filter(|c| c.layer == Some(l) && c.head.is_some()).map(|c| c.value).sum();
        let mlp = a.components.iter().find(|c| c.name == format!("L{l}.mlp")).unwrap().value;
        let (want_attn, want_mlp) = (share(l, BlockHook::Ln1PostNormalized), share(l, BlockHook::Ln2PostNormalized));
        assert!((heads - want_attn).abs() <= 1e-4 * want_attn.abs().max(1.0), "L{l}: heads {heads} vs {want_attn}");
        assert!((mlp - want_mlp).abs() <= 1e-4 * want_mlp.abs().max(1.0), "L{l}: mlp {mlp} vs {want_mlp}");
    }
}

#[test]
fn attribution_refuses_bert_in_one_line() {
    let model = load("tiny-bert-mlm");
    let ids = input_ids("tiny-bert-mlm");
    let trace = cpu_pass(&model, &ids, PassOptions::capture(attribution::capture()));
    let err = attribute(&model, &trace, 0, None).unwrap_err().to_string();
    assert!(err.contains("not defined for bert") && !err.contains('\n'), "{err}");
}

/// Gemma's local layers (window 4 in the fixture) keep only the keys a later query can see:
/// generation past the window gives the uncached path's tokens and logits, every local layer
/// holds `window − 1` rows between passes, and a many-row pass after the cache was cut records
/// the same attention and residual as one pass over everything.
#[test]
fn a_local_layers_kv_cache_keeps_only_its_window() {
    use glassbox_engine::load::arch::AttnMask;
    use glassbox_engine::exec::cpu::CpuExecutor;
    use glassbox_engine::exec::executor::{Executor, generate, generate_uncached};
    use glassbox_engine::exec::sampling::SamplingParams;
    use glassbox_engine::exec::trace::CaptureFilter;

    let model = load("tiny-gemma3");
    let c = &model.config;
    let window = (0..c.n_layers()).find_map(|l| match model.arch.mask(l) {
        AttnMask::Sliding { window } => Some(window),
        _ => None,
    });
    let window = window.expect("tiny-gemma3 has local layers");
    let n_local = (0..c.n_layers()).filter(|&l| model.arch.mask(l) != AttnMask::Causal).count();
    let prompt = input_ids("tiny-gemma3");
    assert!(prompt.len() > window);
    let mut exec = CpuExecutor::new(model.clone());
    let new = 3 * window;
    let cached = generate(&mut exec, &prompt, new, SamplingParams::greedy(), &[], &mut |_| ()).unwrap();
    let uncached = generate_uncached(&mut CpuExecutor::new(model.clone()), &prompt, new, &[]).unwrap();
    assert_eq!(cached, uncached);

    // Step by step: the logits of each cached pass against a whole pass, and the bytes held.
    let row_bytes = 2 * c.kv_dim() * 4; // keys and values, f32
    let mut exec = CpuExecutor::new(model.clone());
    let mut seq = prompt.clone();
    let mut input = prompt.clone();
    for step in 0..new {
        let trace = exec.forward(&input, PassOptions::capture(CaptureFilter::Nothing)).unwrap();
        let whole = cpu_pass(&model, &seq, PassOptions::capture(CaptureFilter::Nothing));
        let (a, b) = (trace.last_logits.unwrap(), whole.last_logits.unwrap());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst <= 1e-5, "step {step}: logits differ by {worst}");
        // After this pass, before the next `begin` cuts the windows: every row of the pass is held.
        let len = seq.len();
        let full = c.n_layers() * len * row_bytes;
        let cut = (c.n_layers() - n_local) * len * row_bytes + n_local * (window - 1 + input.len()).min(len) * row_bytes;
        assert_eq!(exec.kv_cache_bytes(), cut, "step {step}");
        assert!(step == 0 || exec.kv_cache_bytes() < full);
        let next = trace.sampled.unwrap();
        seq.push(next);
        input = vec![next];
    }
    eprintln!("after {} positions: {} bytes held, {} with every row", seq.len(), exec.kv_cache_bytes(), c.n_layers() * seq.len() * row_bytes);

    // A multi-row pass after the cut (a chunked prefill) sees exactly its windows. (A pass
    // that records the raw scores keeps every key: they are q·k before the mask.)
    let hooks = [BlockHook::Pattern, BlockHook::AttnScores, BlockHook::Z, BlockHook::ResidPost];
    let mut exec = CpuExecutor::new(model.clone());
    let (head, tail) = prompt.split_at(prompt.len() - 5);
    exec.forward(head, PassOptions::default()).unwrap();
    let full_bytes = exec.kv_cache_bytes();
    let chunk = exec.forward(tail, PassOptions::capture(CaptureFilter::kinds(hooks.map(glassbox_engine::HookKind::Block)))).unwrap();
    assert!(exec.kv_cache_bytes() < full_bytes + tail.len() * c.n_layers() * row_bytes, "the chunk's begin cut the local layers");
    let whole = cpu_pass(&model, &prompt, PassOptions::capture(CaptureFilter::All));
    for l in 0..c.n_layers() {
        for hook in hooks {
            let (ours, all) = (&chunk.get(HookKey::Block(l, hook)).unwrap().data, &whole.get(HookKey::Block(l, hook)).unwrap().data);
            let rows = if hook == BlockHook::Pattern || hook == BlockHook::AttnScores { all.slice_axis(ndarray::Axis(1), (head.len()..).into()) } else { all.slice_axis(ndarray::Axis(0), (head.len()..).into()) };
            assert_eq!(ours.shape(), rows.shape(), "L{l} {hook:?}");
            let worst = ours.iter().zip(rows.iter()).map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() }).fold(0.0, f32::max);
            assert!(worst <= 1e-5, "L{l} {hook:?}: differs by {worst}");
        }
    }
}

/// `have` is `want` up to float rounding (the kernels sum in an order that depends on the
/// pass's row count): within 1e-4 of the largest finite magnitude; equal infinities agree.
fn assert_close(have: &[f32], want: &[f32], what: &str) {
    assert_eq!(have.len(), want.len(), "{what}");
    let scale = want.iter().fold(1.0f32, |m, v| if v.is_finite() { m.max(v.abs()) } else { m });
    let worst = have.iter().zip(want).map(|(a, b)| if a == b { 0.0 } else { (a - b).abs() }).fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
    assert!(worst <= 1e-4 * scale, "{what}: differs by {worst} (largest magnitude {scale})");
}

/// A long prompt over the budget on the new families: the overview in chunks keeps what one
/// full capture records, and a block recomputed for a window of rows from the kept residual
/// stream is the full capture's rows: from block 0's real input (Gemma's √d, GPT-2's
/// positions, BERT's embedding LayerNorm), Gemma's local layers across chunk boundaries, BERT
/// in one piece and its windows over every key.
#[test]
fn a_long_prompt_in_chunks_and_recomputed_blocks_equal_a_full_capture() {
    use glassbox_engine::exec::cpu::CpuExecutor;
    use glassbox_engine::long::overview::{OverviewOptions, kept_hooks, run_overview};
    use glassbox_engine::long::recompute::{Detail, recompute};
    use glassbox_engine::exec::tensor::Dim;
    use std::ops::ControlFlow;

    for name in ["tiny-gemma3", "tiny-gpt2", "tiny-bert-mlm", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let model = load(name);
        let n = model.config.max_position_embeddings.min(100);
        // BERT's queries see every key: its windows keep them all.
        let two_way = name == "tiny-bert-mlm";
        let v = model.config.vocab_size as u64;
        let ids: Vec<u32> = (0..n as u64).map(|i| ((i * 7919 + 13) % v) as u32).collect();
        let full = cpu_pass(&model, &ids, PassOptions::default());
        let mut exec = CpuExecutor::new(model.clone());
        let ov = run_overview(&mut exec, &ids, &PassOptions::default(), OverviewOptions { chunk: 16, keep_mid: true }, &mut |_| ControlFlow::Continue(())).unwrap().unwrap();
        let kept = kept_hooks(true);
        let mut count = 0;
        for (key, t) in full.iter().filter(|(k, _)| kept.wants(*k)) {
            let have = ov.trace.get(key).unwrap_or_else(|| panic!("{name}: {key} not kept"));
            assert_eq!(have.shape(), t.shape(), "{name}: {key}");
            assert_close(&have.data.iter().copied().collect::<Vec<_>>(), &t.data.iter().copied().collect::<Vec<_>>(), &format!("{name}: {key}"));
            count += 1;
        }
        assert!(count > 2 * model.config.n_layers(), "{name}: {count} hooks kept");
        assert_eq!(ov.trace.sampled, full.sampled, "{name}");
        assert_close(&ov.losses, &glassbox_engine::experiments::analysis::next_token_losses(&full).unwrap(), &format!("{name}: losses"));
        for layer in 0..model.config.n_layers() {
            for rows in [0..n, n / 2 - 8..n / 2 + 16, n - 8..n, 3..9] {
                let resid = ov.resid_in(layer).unwrap();
                let got = recompute(&mut exec, &ids, resid, Detail::Layer(layer), rows.clone(), &PassOptions::default()).unwrap();
                for (key, t) in got.iter() {
                    let f = full.get(key).unwrap();
                    let info: Vec<ndarray::SliceInfoElem> = f
                        .dims
                        .iter()
                        .map(|d| match d {
                            Dim::Pos | Dim::QPos => ndarray::Slice::from(rows.clone()).into(),
                            Dim::KPos => ndarray::Slice::from(..if two_way { n } else { rows.end }).into(),
                            _ => ndarray::Slice::from(..).into(),
                        })
                        .collect();
                    let want: Vec<f32> = f.data.slice(info.as_slice()).iter().copied().collect();
                    assert_close(&t.data.iter().copied().collect::<Vec<_>>(), &want, &format!("{name} layer {layer} rows {rows:?}: {key}"));
                }
            }
        }
    }
}

/// Activation patching on GPT-2, BERT and Gemma 3: at block 0 the stream of the one token that
/// differs restores the clean run (score 1) and any other position's changes nothing (0); on
/// the causal families, positions before the change score 0 at every block.
#[test]
fn patching_the_differing_token_restores_the_clean_run_on_every_family() {
    use glassbox_engine::exec::cpu::CpuExecutor;
    use glassbox_engine::experiments::patching::{PatchHook, PatchSetup, patch_grid};
    use std::ops::ControlFlow;

    for name in ["tiny-gpt2", "tiny-bert-mlm", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let model = load(name);
        let clean = input_ids(name);
        let mut corrupt = clean.clone();
        let at = clean.len() / 2;
        corrupt[at] = (corrupt[at] + 17) % model.config.vocab_size as u32;
        let next = |ids: &[u32]| cpu_pass(&model, ids, PassOptions::capture(glassbox_engine::CaptureFilter::Nothing)).sampled.unwrap();
        let (answer, wrong) = (next(&clean), next(&corrupt));
        let wrong = if wrong == answer { (answer + 1) % model.config.vocab_size as u32 } else { wrong };
        let setup = PatchSetup { clean, corrupt, answer, wrong };
        let mut exec = CpuExecutor::new(model.clone());
        for hook in [PatchHook::ResidPre, PatchHook::Z] {
            let grid = patch_grid(&mut exec, &setup, hook, &mut |_, _| ControlFlow::Continue(())).unwrap().unwrap();
            assert_eq!(grid.scores.len(), model.config.n_layers(), "{name}");
            assert!(grid.scores.iter().flatten().all(|s| s.is_finite()), "{name} {hook:?}");
            if hook != PatchHook::ResidPre {
                continue;
            }
            for (p, &score) in grid.scores[0].iter().enumerate() {
                let want = if p == at { 1.0 } else { 0.0 };
                assert!((score - want).abs() < 1e-4, "{name}: layer 0, position {p}: {score}");
            }
            if model.arch.generates() {
                assert!(grid.scores.iter().all(|row| row[..at].iter().all(|s| s.abs() < 1e-4)), "{name}");
            }
        }
    }
}

/// Head scores read the pattern the family's mask made: on Gemma's local layers (window 4) an
/// induction or duplicate head would look 20 positions back, so those scores are exactly 0;
/// every score is a mean of attention weights, in [0, 1], on every family.
#[test]
fn head_scores_follow_each_familys_mask() {
    use glassbox_engine::load::arch::AttnMask;
    use glassbox_engine::experiments::head_catalog::{self, head_scores};

    for name in ["tiny-gpt2", "tiny-bert-mlm", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let model = load(name);
        let ids = head_catalog::probe_sequence(model.config.vocab_size, 20, 1);
        let trace = cpu_pass(&model, &ids, PassOptions::capture(head_catalog::capture()));
        let s = head_scores(&trace, model.config.n_layers()).unwrap();
        for kind in [&s.previous_token, &s.first_token, &s.induction, &s.duplicate] {
            assert!(kind.iter().flatten().all(|v| (0.0..=1.0 + 1e-6).contains(v)), "{name}: {kind:?}");
        }
        for l in 0..model.config.n_layers() {
            let pattern = trace.get(HookKey::Block(l, BlockHook::Pattern)).unwrap().as_3d().unwrap();
            for h in 0..model.config.n_heads() {
                let prev = (1..ids.len()).map(|i| pattern[[h, i, i - 1]]).sum::<f32>() / (ids.len() - 1) as f32;
                assert!((s.previous_token[l][h] - prev).abs() < 1e-6, "{name} L{l}.H{h}");
                if matches!(model.arch.mask(l), AttnMask::Sliding { .. }) {
                    assert_eq!((s.induction[l][h], s.duplicate[l][h]), (0.0, 0.0), "{name} L{l}.H{h} is local");
                }
            }
        }
    }
}

/// `compare` of a run with itself is 0 everywhere; with f16 activations it parts, slightly.
#[test]
fn comparing_a_run_with_itself_gives_zero_on_every_family() {
    use glassbox_engine::ActivationPrecision;
    use glassbox_engine::experiments::compare::compare;

    for name in ["tiny-gpt2", "tiny-bert-mlm", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let model = load(name);
        let ids = input_ids(name);
        let a = cpu_pass(&model, &ids, PassOptions::default());
        let same = compare(&a, &cpu_pass(&model, &ids, PassOptions::default()), 5).unwrap();
        assert_eq!(same.first_apart, None, "{name}");
        assert!(same.hooks.len() > 10 && same.hooks.iter().all(|h| h.rel_l2 == 0.0), "{name}");
        assert!(same.residual.iter().chain(&same.kl).all(|&d| d == 0.0), "{name}");
        assert_eq!(same.top_a, same.top_b);
        let f16 = cpu_pass(&model, &ids, PassOptions { activations: ActivationPrecision::F16, ..PassOptions::default() });
        let apart = compare(&a, &f16, 5).unwrap();
        let kl = apart.kl.last().copied().unwrap();
        assert!(apart.residual.iter().any(|&d| d > 0.0) && kl < 1e-2, "{name}: KL {kl}");
    }
}

/// The residual norms start at the stream entering block 0: Gemma's √d-scaled embedding,
/// GPT-2's embedding plus positions, BERT's normed sum (not `hook_embed`, which is that only
/// in Llama).
#[test]
fn residual_norms_start_at_the_stream_entering_block_0() {
    use glassbox_engine::experiments::analysis::residual_norms;
    for name in ["tiny-gemma3", "tiny-gpt2", "tiny-bert-mlm", "tiny-gqa-tied"] {
        let model = load(name);
        let ids = input_ids(name);
        let trace = cpu_pass(&model, &ids, PassOptions::capture(glassbox_engine::exec::trace::CaptureFilter::All));
        let norms = residual_norms(&trace, model.config.n_layers()).unwrap();
        let l2 = |key| trace.get(key).unwrap().as_2d().unwrap().outer_iter().map(|r| r.dot(&r).sqrt()).collect::<Vec<f32>>();
        let near = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * y.abs().max(1.0));
        assert!(near(&norms[0], &l2(HookKey::Block(0, BlockHook::ResidPre))), "{name}");
        let embed = l2(HookKey::Embed);
        if name == "tiny-gqa-tied" {
            assert!(near(&norms[0], &embed), "Llama's block 0 reads the embedding as it is");
        } else {
            assert!(!near(&norms[0], &embed), "{name}: something comes between the embedding and block 0");
        }
    }
}
