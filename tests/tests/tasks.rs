//! The four task APIs: well-formed results on a tiny fixture model, and on SmolLM2 a
//! sentiment label from the fixed set with its probabilities.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::cpu::CpuExecutor;
use glassbox_engine::tasks::{self, SENTIMENT_LABELS, TaskKind};
use glassbox_engine::{HookKey, Model};
use glassbox_tests::fixture_with_tokenizer;

fn check_sentiment(out: &tasks::TaskOutput) {
    let s = out.sentiment.as_ref().expect("sentiment scores");
    assert!(SENTIMENT_LABELS.contains(&s.label));
    assert_eq!(out.answer, s.label);
    let total: f32 = s.probs.iter().map(|p| p.1).sum();
    assert!((total - 1.0).abs() < 1e-4, "label probabilities sum to {total}");
    for ((l1, p), (l2, raw)) in s.probs.iter().zip(&s.raw) {
        assert_eq!(l1, l2);
        assert!((0.0..=1.0).contains(p) && (0.0..=1.0).contains(raw) && raw <= p);
    }
    let best = s.probs.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(best.0, s.label);
}

#[test]
fn every_task_returns_a_well_formed_answer_and_its_trace_on_a_fixture() {
    let (_tmp, dir) = fixture_with_tokenizer("tiny-smollm2-shape");
    let model = Arc::new(Model::load(&dir).unwrap());
    let mut exec = CpuExecutor::new(model.clone());
    let n_hooks = HookKey::all(model.config.n_layers()).len();
    let outs = [
        tasks::generate_text(&model, &mut exec, "Write a clause.").unwrap(),
        tasks::analyze_sentiment(&model, &mut exec, "Great phone.").unwrap(),
        tasks::answer_question(&model, &mut exec, "Who?", Some("Alice wrote it.")).unwrap(),
        tasks::extract_key_information(&model, &mut exec, "Dose 5 mg daily.").unwrap(),
    ];
    for (out, kind) in outs.iter().zip(TaskKind::ALL) {
        assert_eq!(out.kind, kind);
        assert!(out.prompt.starts_with("<|im_start|>user\n") && out.prompt.ends_with("<|im_start|>assistant\n"));
        assert_eq!(out.trace.token_ids, out.prompt_ids);
        assert_eq!(out.trace.len(), n_hooks, "{kind:?}: the trace holds every hook");
        assert!(!out.generated_ids.is_empty() && out.generated_ids.len() <= 64);
    }
    check_sentiment(&outs[1]);
    assert!(tasks::generate_text(&model, &mut exec, "   ").is_err());
}

#[test]
fn smollm2_sentiment_gives_a_label_with_probabilities() {
    let Some(model) = glassbox_tests::golden::smollm2() else { return };
    let mut exec = CpuExecutor::new(model.clone());
    for name in ["stock-news", "smartwatch-review"] {
        let preset = tasks::preset(name).unwrap();
        assert_eq!(preset.kind, TaskKind::Sentiment);
        let out = tasks::analyze_sentiment(&model, &mut exec, preset.text).unwrap();
        check_sentiment(&out);
        // The label words carry real probability mass: the model is answering the question.
        let raw: f32 = out.sentiment.as_ref().unwrap().raw.iter().map(|r| r.1).sum();
        assert!(raw > 0.05, "{name}: only {raw} of the distribution is on label words");
    }
}
