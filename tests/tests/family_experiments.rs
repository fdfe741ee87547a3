//! Everything built on hooks, on every family (issue 18): direct logit attribution through
//! Gemma's sandwich norms and GPT-2's LayerNorm (BERT refused in one line), the sliding-window
//! KV cache of Gemma's local layers, and patching, head scores, comparisons and long prompts
//! on the GPT-2, BERT and Gemma 3 fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use glassbox_engine::executor::PassOptions;
use glassbox_engine::experiments::attribution::{self, attribute};
use glassbox_engine::{BlockHook, HookKey};
use glassbox_tests::gpu::{cpu_pass, input_ids, load};

/// Components must sum to the logit to float rounding: 1e-3 of the logit's size.
const SUM_REL: f32 = 1e-3;

#[test]
fn attribution_sums_to_the_logit_on_gemma3_and_gpt2() {
    for name in ["tiny-gemma3", "tiny-gpt2"] {
        let model = load(name);
        let ids = input_ids(name);
        let trace = cpu_pass(&model, &ids, PassOptions::capture(attribution::capture()));
        let logits = trace.last_logits.clone().unwrap();
        let top = glassbox_engine::sampling::argmax(&logits);
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
    let trace = cpu_pass(&model, &ids, PassOptions::capture(glassbox_engine::trace::CaptureFilter::All));
    let top = glassbox_engine::sampling::argmax(trace.last_logits.as_ref().unwrap());
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
    use glassbox_engine::arch::AttnMask;
    use glassbox_engine::cpu::CpuExecutor;
    use glassbox_engine::executor::{Executor, generate, generate_uncached};
    use glassbox_engine::sampling::SamplingParams;
    use glassbox_engine::trace::CaptureFilter;

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
