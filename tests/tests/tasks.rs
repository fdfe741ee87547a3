//! The four task APIs: well-formed results on a tiny fixture model, and on SmolLM2 a
//! sentiment label from the fixed set with its probabilities.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::article::tasks::{self, SENTIMENT_LABELS, TaskKind, TaskOptions};
use glassbox_engine::{HookKey, Model};
use glassbox_tests::fixture_with_tokenizer;

fn check_sentiment(out: &tasks::TaskOutput) {
    let s = out.sentiment.as_ref().expect("sentiment scores");
    assert!(SENTIMENT_LABELS.contains(&s.label));
    // The answer is the label the model wrote (sampled), else the most likely one.
    let written = tasks::label_in(&out.generated_text);
    assert_eq!(out.answer, written.unwrap_or(s.label));
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
    let n_hooks = glassbox_engine::program::step::Program::of(&model.config).hooks().len();
    let o = TaskOptions::with_seed(7);
    let outs = [
        tasks::generate_text(&model, &mut exec, "Write a clause.", &o).unwrap(),
        tasks::analyze_sentiment(&model, &mut exec, "Great phone.", &o).unwrap(),
        tasks::answer_question(&model, &mut exec, "Who?", Some("Alice wrote it."), &o).unwrap(),
        tasks::extract_key_information(&model, &mut exec, "Dose 5 mg daily.", &o).unwrap(),
    ];
    for (out, kind) in outs.iter().zip(TaskKind::ALL) {
        assert_eq!(out.kind, kind);
        assert!(out.prompt.starts_with("<|im_start|>user\n") && out.prompt.ends_with("<|im_start|>assistant\n"));
        assert_eq!(out.trace.token_ids, out.prompt_ids);
        assert_eq!(out.trace.len(), n_hooks, "{kind:?}: the trace holds every hook");
        assert!(!out.generated_ids.is_empty() && out.generated_ids.len() <= 64);
    }
    check_sentiment(&outs[1]);
    assert!(tasks::generate_text(&model, &mut exec, "   ", &o).is_err());
}

#[test]
fn smollm2_sentiment_gives_a_label_with_probabilities() {
    let Some(model) = glassbox_tests::golden::smollm2() else { return };
    let mut exec = CpuExecutor::new(model.clone());
    for name in ["stock-news", "smartwatch-review"] {
        let preset = tasks::preset(name).unwrap();
        assert_eq!(preset.kind, TaskKind::Sentiment);
        let out = tasks::analyze_sentiment(&model, &mut exec, preset.text, &TaskOptions::greedy()).unwrap();
        assert!(out.sampling.is_greedy());
        check_sentiment(&out);
        // The label words carry real probability mass: the model is answering the question.
        let raw: f32 = out.sentiment.as_ref().unwrap().raw.iter().map(|r| r.1).sum();
        assert!(raw > 0.05, "{name}: only {raw} of the distribution is on label words");
    }
}

/// Tasks sample as the lessons say (temperature 0.7, top-p 0.9 by default): two seeds can
/// give different answers, the same seed the same one, and temperature 0 is greedy whatever
/// the seed, equal to argmax decoding step by step.
#[test]
fn tasks_honour_the_sampling_settings_on_a_fixture() {
    let (_tmp, dir) = fixture_with_tokenizer("tiny-smollm2-shape");
    let model = Arc::new(Model::load(&dir).unwrap());
    let mut exec = CpuExecutor::new(model.clone());
    let defaults = TaskOptions::default();
    assert_eq!((defaults.sampling.temperature, defaults.sampling.top_p), (0.7, 0.9));
    let run = |exec: &mut CpuExecutor, o: TaskOptions| {
        tasks::generate_text(&model, exec, "Write a clause.", &o).unwrap().generated_ids
    };
    // Random weights spread probability widely: different seeds must diverge somewhere.
    let sampled: Vec<Vec<u32>> = (1..=4).map(|s| run(&mut exec, TaskOptions::with_seed(s))).collect();
    assert!(sampled.iter().any(|g| *g != sampled[0]), "four seeds gave one answer: {sampled:?}");
    assert_eq!(run(&mut exec, TaskOptions::with_seed(2)), sampled[1], "a seed reproduces its answer");
    let mut greedy = TaskOptions::greedy();
    let g1 = run(&mut exec, greedy);
    greedy.sampling.seed = 99;
    assert_eq!(run(&mut exec, greedy), g1, "temperature 0 ignores the seed");
    // Greedy = argmax of each step's logits, checked by running the sequence once more.
    let tok = model.tokenizer.as_ref().unwrap();
    let prompt = tok
        .apply_chat_template(&[glassbox_engine::load::tokenizer::ChatMessage::user("Write a clause.")], true)
        .unwrap();
    let mut ids = tok.encode(&prompt).unwrap();
    let n_prompt = ids.len();
    ids.extend(&g1);
    use glassbox_engine::exec::executor::{Executor, PassOptions};
    exec.reset();
    let trace = exec.forward(&ids, PassOptions::capture(glassbox_engine::CaptureFilter::All)).unwrap();
    let logits = trace.get(HookKey::Logits).and_then(|t| t.as_2d()).unwrap();
    for (i, &id) in g1.iter().enumerate() {
        let row = logits.row(n_prompt - 1 + i).to_vec();
        assert_eq!(glassbox_engine::exec::sampling::argmax(&row), id, "greedy token {i}");
    }
}

#[test]
fn label_in_finds_whole_label_words() {
    assert_eq!(tasks::label_in("Negative"), Some("negative"));
    assert_eq!(tasks::label_in("The sentiment of this text is neutral,"), Some("neutral"));
    assert_eq!(tasks::label_in("A positive sentiment."), Some("positive"));
    assert_eq!(tasks::label_in("Nonpositive? unclear"), None);
}
