//! The Tasks view shows Glassbox's real API next to the article's `from llama3 import
//! Llama3Model` (which does not exist). These are the very lines it shows (a GUI test checks
//! that the view's lines occur here, in order, indentation aside); this test compiles and runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::Model;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::article::tasks::{self, TaskOptions};

fn sentiment_as_the_tasks_view_shows_it(
    model_dir: std::path::PathBuf,
    text: &str,
) -> Result<String, glassbox_engine::EngineError> {
    // snippet-start
    let model = Arc::new(Model::load(&model_dir)?);
    let mut exec = CpuExecutor::new(model.clone());
    let options = TaskOptions::default(); // temperature 0.7, top-p 0.9
    let out = tasks::analyze_sentiment(&model, &mut exec, text, &options)?;
    println!("{} {:?}", out.answer, out.sentiment.map(|s| s.probs));
    // snippet-end
    Ok(out.answer)
}

#[test]
fn the_api_the_tasks_view_shows_runs() {
    let (_tmp, dir) = glassbox_tests::fixture_with_tokenizer("tiny-smollm2-shape");
    let answer = sentiment_as_the_tasks_view_shows_it(dir, "Great phone.").unwrap();
    assert!(tasks::SENTIMENT_LABELS.contains(&answer.as_str()), "{answer}");
}
