//! Lesson numbers (`{{name}}` in a body) come from a model's config: every one a lesson
//! writes has a value, the values are the transformers numbers, and a different loaded
//! model gives different text.

use std::sync::Arc;

use egui_kittest::kittest::Queryable;
use glassbox_engine::{LlamaConfig, Model};

use super::{app_on, harness, repo_root};
use crate::gui::lesson_numbers::{fill, model_config, same_model, value};
use crate::gui::lessons::{Library, run_action};

fn library() -> Library {
    let lib = Library::load(Some(repo_root().join("lessons")));
    assert!(lib.errors.is_empty(), "{:#?}", lib.errors);
    lib
}

fn fixture_config(name: &str) -> LlamaConfig {
    LlamaConfig::from_file(&repo_root().join("tests/fixtures").join(name).join("config.json")).expect("fixture config")
}

#[test]
fn every_number_a_lesson_writes_has_a_value() {
    let lib = library();
    let mut filled = 0;
    for l in lib.en.iter().chain(&lib.zh) {
        let model = l.front.model.as_deref().unwrap_or("smollm2-135m-instruct");
        let config = model_config(model).expect("lesson model config");
        let (text, unknown) = fill(&l.body, &config);
        assert!(unknown.is_empty(), "{}: no value for {unknown:?}", l.id());
        assert!(!text.contains("{{"), "{}: unfilled", l.id());
        filled += l.body.matches("{{").count();
    }
    assert!(filled >= 100, "only {filled} numbers filled");
}

/// The values against transformers (`sum(p.numel())`, see tests/fixtures/arch_params.json)
/// and hand arithmetic: Gemma 3 270M keeps 15 local layers of 512 positions and 3 global
/// layers of 4096 at a 4k context, 2 × 1 K/V head × 256 values each.
#[test]
fn the_numbers_are_the_models() {
    let gemma = model_config("gemma-3-270m").expect("gemma config");
    assert_eq!(value(&gemma, "params_total").as_deref(), Some("268,098,176"));
    assert_eq!(value(&gemma, "n_local_layers").as_deref(), Some("15"));
    assert_eq!(value(&gemma, "sliding_window").as_deref(), Some("512"));
    assert_eq!(value(&gemma, "kv_values_at_4k").as_deref(), Some("10,223,616"));
    assert_eq!(value(&gemma, "kv_values_at_4k_all_global").as_deref(), Some("37,748,736"));
    assert_eq!(value(&gemma, "kv_saving_pct").as_deref(), Some("73"));
    assert_eq!(value(&gemma, "embed_scale").as_deref(), Some("25.30"));
    let smol = model_config("smollm2-135m-instruct").expect("smollm2 config");
    assert_eq!(value(&smol, "params_total").as_deref(), Some("134,515,008"));
    assert_eq!(value(&smol, "sliding_window"), None, "a Llama has no window");
    assert_eq!(value(&model_config("gpt2").expect("gpt2"), "params_total").as_deref(), Some("124,439,808"));
    let bert = model_config("bert-base-uncased").expect("bert");
    assert_eq!(value(&bert, "params_total").as_deref(), Some("109,514,298"));
    assert_eq!(value(&bert, "token_types").as_deref(), Some("2"));
    // Lesson 34: 6·N·D with Meta's 15.6 T tokens is Meta's reported ~3.8e25 FLOPs; 16 bytes
    // a parameter for AdamW training is 6.5 TB, 82 GPUs of 80 GB.
    let llama = model_config("llama-3.1-405b").expect("405b");
    assert_eq!(value(&llama, "params_total").as_deref(), Some("405,853,388,800"));
    assert_eq!(value(&llama, "train_flops_6nd").as_deref(), Some("3.8e25"));
    assert_eq!(value(&llama, "bytes_bf16_gb").as_deref(), Some("811.7"));
    assert_eq!(value(&llama, "bytes_adamw_gb").as_deref(), Some("6493.7"));
    assert_eq!(value(&llama, "gpus_80gb_adamw").as_deref(), Some("82"));
    assert_eq!(value(&smol, "train_flops_6nd").as_deref(), Some("1.6e21"));
    assert_eq!(value(&gemma, "train_tokens_t"), None, "no stated token count, no number");
}

/// The newer families' bundled configs (lesson 35) give transformers' totals
/// (tests/fixtures/arch_params.json) and Qwen 3's q wider than its stream: 16 heads × 128.
#[test]
fn the_newer_families_bundled_numbers() {
    let totals = [("qwen2.5-0.5b", "494,032,768"), ("qwen3-0.6b", "596,049,920"), ("olmo-2-0425-1b", "1,484,916,736"), ("phi-3-mini-4k", "3,821,079,552")];
    for (id, total) in totals {
        let c = model_config(id).expect("bundled config");
        assert_eq!(value(&c, "params_total").as_deref(), Some(total), "{id}");
    }
    let qwen3 = model_config("qwen3-0.6b").expect("qwen3");
    assert_eq!((value(&qwen3, "q_dim").as_deref(), value(&qwen3, "d_model").as_deref()), (Some("2048"), Some("1024")));
}

/// The same lesson text on another model of the family gives that model's numbers: the
/// text holds names, not numbers.
#[test]
fn a_loaded_model_fills_in_its_own_numbers() {
    let lib = library();
    let lesson = lib.en.iter().find(|l| l.id() == "31-gemma3-choices").expect("lesson 31");
    let tiny = fixture_config("tiny-gemma3");
    let real = model_config("gemma-3-270m").expect("gemma");
    let (on_tiny, _) = fill(&lesson.body, &tiny);
    let (on_real, _) = fill(&lesson.body, &real);
    assert!(on_real.contains("| layers | 18 |"), "{on_real}");
    let tiny_layers = format!("| layers | {} |", tiny.n_layers());
    assert!(on_tiny.contains(&tiny_layers), "{on_tiny}");
    assert_ne!(on_tiny, on_real);
    assert!(same_model(&real, &real) && !same_model(&tiny, &real));
}

/// With SmolLM2's fixture loaded, the Gemma lesson says whose numbers it shows.
#[test]
fn the_panel_says_whose_numbers_it_shows() {
    let app = super::app_with_lesson(super::fixture_model(), &super::fixture_ids(), "31-gemma3-choices");
    let h = harness(app);
    h.get_by_label_contains("The numbers below are gemma-3-270m's");
    h.get_by_label_contains("268,098,176");
}

/// Gemma 3 270M from the cache: every action of the Gemma lesson opens it (once) and runs.
/// Skips when it is not cached, unless GLASSBOX_REQUIRE_MODEL is set.
#[test]
fn every_gemma_action_runs_on_gemma() {
    let Some(gemma) = super::gemma() else { return };
    let lib = library();
    let lesson = lib.en.iter().find(|l| l.id() == "31-gemma3-choices").expect("lesson 31");
    let mut app = app_on(Arc::clone(&gemma), "");
    for a in &lesson.front.actions {
        assert_eq!(a.model.as_deref(), Some("gemma-3-270m"));
        let r = app.ready().expect("ready");
        run_action(a, &mut r.s);
        r.s.poll();
        assert!(r.s.error.is_none(), "`{}`: {:?}", a.label, r.s.error);
        assert!(r.s.analysis.is_some(), "`{}`: pass incomplete", a.label);
    }
    let _: &Model = &gemma;
}
