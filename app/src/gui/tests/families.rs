//! The views on each family's tiny fixture (Gemma 3, GPT-2, BERT, Qwen 2, Qwen 3, OLMo 2,
//! Phi-3; random weights, no
//! tokenizer, prompts typed as ids): every figure says what this family computes. Each check
//! is a label the Llama-only figure did not have.

use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use glassbox_engine::{LayerOp, Model, Step};

use super::{app_on, harness, repo_root};
use crate::gui::app::GlassboxApp;
use crate::gui::views::ViewId;
use crate::gui::views::attention::AttentionView;
use crate::gui::views::attention::AttnMode;

fn fixture(name: &str) -> Arc<Model> {
    Arc::new(Model::load(&repo_root().join("tests/fixtures").join(name)).expect("fixture loads"))
}

/// The app on a fixture with `ids` run to the end.
fn ran(name: &str, ids: &str) -> Harness<'static, GlassboxApp> {
    let mut h = harness(app_on(fixture(name), ids));
    h.run();
    {
        let r = h.state_mut().ready().expect("ready");
        r.s.prompt = ids.into();
        r.s.run();
        r.s.poll();
        assert!(r.s.error.is_none(), "{:?}", r.s.error);
        assert!(r.s.n_tokens() > 0);
    }
    h.run();
    h
}

fn show(h: &mut Harness<'static, GlassboxApp>, step: Step, view: ViewId) {
    h.state_mut().ready().expect("ready").s.goto(step);
    h.state_mut().view = view;
    h.run();
    h.run();
}

fn has(h: &Harness<'static, GlassboxApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[track_caller]
fn assert_has(h: &Harness<'static, GlassboxApp>, text: &str) {
    assert!(has(h, text), "no label containing {text:?}");
}

const IDS: &str = "5 17 42 8 33 61 2 90 14 27";

#[test]
fn gemma3_diagram_shows_sandwich_norms_qk_norm_and_local_layers() {
    let mut h = ran("tiny-gemma3", IDS);
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("overview"));
    assert_has(&h, "The model: a Gemma 3 decoder");
    assert_has(&h, "RMSNorm · (1 + w) (pre-attention)");
    assert_has(&h, "RMSNorm · (1 + w) (post-attention)");
    assert_has(&h, "RMSNorm · (1 + w) (post-MLP)");
    assert_has(&h, "QK-norm");
    assert_has(&h, "sliding window 4");
    assert_has(&h, "global (G): L3");
    assert_has(&h, "1 shared K/V head (multi-query)");
    assert_has(&h, "GeGLU MLP");
    assert_has(&h, "scaled by √64 = 8.00");
}

#[test]
fn gemma3_local_layer_head_marks_the_band_and_a_global_one_does_not() {
    let mut h = ran("tiny-gemma3", IDS);
    h.state_mut().ready().expect("ready").views.the::<AttentionView>().mode = AttnMode::Head;
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("attention"));
    h.state_mut().ready().expect("ready").s.sel.position = 9;
    h.run();
    assert_has(&h, "local: sliding window 4");
    assert_has(&h, "Query 9 sees keys 6–9");
    // The masked cells outside the band: key 0 is hidden from query 9 in layer 0 …
    show(&mut h, Step::Layer(3, LayerOp::Softmax), ViewId("attention"));
    assert_has(&h, "Global layer: no window");
    assert!(!has(&h, "sliding window 4 (the last"), "layer 3 is global");
}

#[test]
fn gemma3_norm_view_shows_one_plus_w_and_the_post_norms() {
    let mut h = ran("tiny-gemma3", IDS);
    show(&mut h, Step::Layer(1, LayerOp::Ln1), ViewId("rmsnorm"));
    assert_has(&h, "⊙ (1 + w)");
    show(&mut h, Step::Layer(1, LayerOp::MlpPostNorm), ViewId("rmsnorm"));
    assert_has(&h, "RMSNorm · blocks.1.ln2_post");
    show(&mut h, Step::Layer(1, LayerOp::GeluMul), ViewId("mlp"));
    assert_has(&h, "post = gelu_tanh(gate) ⊙ up");
    show(&mut h, Step::Embed, ViewId("embedding"));
    assert_has(&h, "× √64 = 8.0000");
    assert_has(&h, "blocks.0.hook_resid_pre");
}

#[test]
fn gpt2_views_show_layernorm_learned_positions_and_an_ungated_mlp() {
    let mut h = ran("tiny-gpt2", IDS);
    show(&mut h, Step::Layer(0, LayerOp::Ln1), ViewId("overview"));
    assert_has(&h, "The model: a GPT-2 decoder");
    assert_has(&h, "+ learned position embeddings");
    assert_has(&h, "LayerNorm (pre-norm)");
    assert!(!has(&h, "RMSNorm ("), "GPT-2 has no RMSNorm");
    // The norm view's tab names GPT-2's norm too.
    assert!(h.query_all_by_label("LayerNorm").count() > 0 && h.query_all_by_label("RMSNorm").count() == 0, "the tab says LayerNorm");
    show(&mut h, Step::Layer(0, LayerOp::Ln1), ViewId("rmsnorm"));
    assert_has(&h, "LayerNorm(x) = (x − mean(x)) / √(var(x) + eps) ⊙ g + b");
    assert_has(&h, "+ b (bias)");
    assert_has(&h, "mean(x) =");
    show(&mut h, Step::PosEmbed, ViewId("embedding"));
    assert_has(&h, "+ learned position embedding: row");
    assert_has(&h, "hook_pos_embed");
    show(&mut h, Step::Layer(0, LayerOp::Act), ViewId("mlp"));
    assert_has(&h, "pre = W_in·x + b");
    assert_has(&h, "W_in·x + b  (mlp.hook_pre)");
    assert!(!has(&h, "mlp.hook_pre_linear"), "no up projection in GPT-2");
}

#[test]
fn bert_views_show_post_norm_two_way_attention_and_fill_in_the_blank() {
    let mut h = ran("tiny-bert-mlm", IDS);
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("overview"));
    assert_has(&h, "BERT encoder");
    assert_has(&h, "⊕ add, then LayerNorm (post-norm)");
    assert_has(&h, "+ token-type embeddings");
    assert_has(&h, "× 2 encoder layers");
    assert_has(&h, "Softmax → the word in each [MASK]");
    h.state_mut().ready().expect("ready").views.the::<AttentionView>().mode = AttnMode::Head;
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("attention"));
    assert_has(&h, "Two-way attention (BERT): no causal mask, no triangle");
    show(&mut h, Step::EmbedNorm, ViewId("rmsnorm"));
    assert_has(&h, "LayerNorm · embed_ln");
    show(&mut h, Step::Logits, ViewId("output"));
    assert_has(&h, "fill in each [MASK]");
    assert_has(&h, "[MASK] at position");
    assert!(!has(&h, "Next token after position"), "BERT does not generate");
}

#[test]
fn smollm2_diagram_keeps_its_llama_labels() {
    let mut h = ran("tiny-smollm2-shape", &super::fixture_ids());
    show(&mut h, Step::Layer(1, LayerOp::Softmax), ViewId("overview"));
    assert_has(&h, "The model: a Llama-family decoder");
    assert_has(&h, "RMSNorm (pre-norm)");
    assert_has(&h, "9 query heads in 3 GQA groups");
    assert_has(&h, "every layer: causal attention");
    assert!(!has(&h, "(1 + w)"), "Llama's RMSNorm has a plain g");
    assert!(!has(&h, "post-norm"));
}

#[test]
fn qwen2_diagram_names_the_qkv_biases() {
    let mut h = ran("tiny-qwen2", IDS);
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("overview"));
    assert_has(&h, "The model: a Qwen 2 decoder");
    assert_has(&h, "q, k, v projections with biases (+ b)");
    assert!(!has(&h, "QK-norm"), "Qwen 2 has no QK-norm");
    assert!(!has(&h, "fused"));
}

#[test]
fn qwen3_diagram_names_per_head_qk_norm_and_the_wider_heads() {
    let mut h = ran("tiny-qwen3", IDS);
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("overview"));
    assert_has(&h, "The model: a Qwen 3 decoder");
    assert_has(&h, "QK-norm: RMSNorm on each head of q and k, before RoPE");
    // 4 heads × head_dim 32 = 128 on a 64-wide stream.
    assert_has(&h, "4 heads × 32 = 128 ≠ d_model 64");
    assert!(!has(&h, "with biases"), "Qwen 3 has no q/k/v bias");
}

#[test]
fn olmo2_diagram_puts_the_norms_after_the_sublayers() {
    let mut h = ran("tiny-olmo2", IDS);
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("overview"));
    assert_has(&h, "The model: an OLMo 2 decoder");
    assert_has(&h, "RMSNorm after attention (no pre-norm)");
    assert_has(&h, "RMSNorm after the MLP (no pre-norm)");
    assert_has(&h, "x + RMSNorm(attn(x))");
    assert_has(&h, "QK-norm over the whole width");
    assert!(!has(&h, "(pre-norm)"), "OLMo 2 norms nothing before a sublayer");
    assert!(!has(&h, "d_model 64"), "4 × 16 = 64");
}

#[test]
fn phi3_diagram_shows_the_fused_weights_with_the_hooks_apart() {
    let mut h = ran("tiny-phi3", IDS);
    show(&mut h, Step::Layer(0, LayerOp::Softmax), ViewId("overview"));
    assert_has(&h, "The model: a Phi-3 decoder");
    // q 64 + k 64 + v 64 rows.
    assert_has(&h, "fused qkv_proj: one 192 × 64 weight, hooks q, k, v apart");
    assert_has(&h, "fused gate_up_proj: one");
    // The hooks stay apart: a step button each.
    for op in ["q", "k", "v", "gate", "up"] {
        assert!(h.query_all_by_label(op).count() > 0, "no step button {op}");
    }
}

/// Every view and sub-panel of the four newer families, painted in Chinese: no panic, and no
/// English UI word (the rule of `ui_language`).
#[test]
fn newer_families_paint_every_view_in_chinese() {
    use super::ui_language::{english_words, exempt, painted_text};
    use crate::gui::i18n::Lang;
    use crate::gui::views::registry;
    let views = registry::catalog();
    let mut screens: Vec<(ViewId, Option<&str>)> = views.iter().map(|v| (v.id, None)).collect();
    screens.extend(views.iter().flat_map(|v| v.modes.iter().map(|&m| (v.id, Some(m)))));
    let mut problems = Vec::new();
    for name in ["tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let mut h = ran(name, IDS);
        h.state_mut().lang = Lang::Zh;
        h.state_mut().show_lesson = false;
        if let Some(v) = h.state_mut().ready().and_then(|r| r.views.get_mut::<crate::gui::views::side_by_side::SideBySideView>()) {
            v.inline = true;
        }
        for &(view, mode) in &screens {
            {
                let app = h.state_mut();
                let r = app.ready().expect("ready");
                r.s.goto(Step::Layer(1, LayerOp::SiluMul));
                if let Some(m) = mode {
                    r.views.set_mode(m);
                }
                app.view = view;
            }
            h.run();
            h.run();
            // The patching panel's default clean and corrupt prompts are input, not UI (a
            // prompt is English in both languages); the SmolLM2 check paints its results instead.
            let input = |t: &str| t.starts_with("The capital of");
            let texts: Vec<String> = painted_text(h.output()).into_iter().filter(|t| !exempt(t) && !input(t) && !english_words(t).is_empty()).collect();
            if !texts.is_empty() {
                problems.push(format!("{name} {view:?} {mode:?}: {texts:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "English in the Chinese UI:\n{}", problems.join("\n"));
}
