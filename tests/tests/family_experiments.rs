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
