//! `glassbox train --compare` as users run it: compare.json with every run (same token
//! stream, parameters within 5 % of the budget), the same seed giving bit-identical curves,
//! a PNG that decodes and an SVG that parses with one `<path>` per curve, a checkpoint per
//! recipe, and a bad recipe name as one clear line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{assert_one_line_error, glassbox, json_of};

use std::path::Path;

use glassbox_engine::train::compare::{CompareReport, read_report};

const BUDGET: f64 = 20_000.0;

fn compare(recipes: &str, out: &Path) -> CompareReport {
    let v = json_of(&glassbox(&[
        "train", "--compare", recipes, "--preset", "induction", "--steps", "3", "--eval-every", "3", "--seed", "5",
        "--budget", "20000", "--out", out.to_str().unwrap(), "--json",
    ]));
    let report = read_report(out).unwrap();
    assert_eq!(serde_json::from_value::<CompareReport>(v).unwrap(), report, "stdout is compare.json");
    report
}

fn check_report(report: &CompareReport, recipes: &[&str], out: &Path) {
    assert_eq!(report.runs.iter().map(|r| r.recipe.as_str()).collect::<Vec<_>>(), recipes);
    assert_eq!((report.preset.as_str(), report.seed, report.steps), ("induction", 5, 3));
    for run in &report.runs {
        assert!((run.params as f64 / BUDGET - 1.0).abs() <= 0.05, "{}: {} parameters", run.recipe, run.params);
        assert_eq!(run.loss.len(), 3, "{}", run.recipe);
        assert_eq!(run.eval.iter().map(|e| e.step).collect::<Vec<_>>(), [0, 3]);
        assert!(run.steps_per_second > 0.0);
        assert!(out.join(&run.recipe).join("model.safetensors").is_file(), "{}'s checkpoint", run.recipe);
        assert_eq!(run.batches_hash, report.runs[0].batches_hash, "{}: the same token stream", run.recipe);
    }
}

fn check_figures(out: &Path, curves: usize) {
    let file = std::fs::File::open(out.join("compare.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 600));
    let text = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    let mut xml = quick_xml::Reader::from_str(&text);
    let (mut paths, mut texts) = (0, Vec::new());
    loop {
        match xml.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) if e.name().as_ref() == b"path" => paths += 1,
            quick_xml::events::Event::Text(t) => texts.push(String::from_utf8_lossy(t.as_ref()).into_owned()),
            _ => {}
        }
    }
    assert_eq!(paths, curves, "one path per curve");
    for label in ["step", "loss (nats)", "llama loss", "llama held-out"] {
        assert!(texts.iter().any(|t| t.trim() == label), "{label:?} in the SVG's text: {texts:?}");
    }
}

#[test]
fn compare_writes_the_report_and_figures_and_repeats_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let first = compare("llama", &a);
    check_report(&first, &["llama"], &a);
    check_figures(&a, 2);
    let again = compare("llama", &b);
    let bits = |r: &CompareReport| r.runs.iter().map(|r| r.loss.iter().map(|l| l.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>();
    assert_eq!(bits(&first), bits(&again), "the same seed gives the same curves");
}

/// The brief's pair: Llama against NoPE. NoPE trains once the any-`Arch` backward (the
/// lead's `train/backward.rs`) is merged; until then its backward asks for RoPE's hooks.
#[test]
fn compare_llama_against_nope_on_one_token_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let first = compare("llama,llama-nope", &a);
    check_report(&first, &["llama", "llama-nope"], &a);
    check_figures(&a, 4);
    let again = compare("llama,llama-nope", &b);
    assert_eq!(first.runs.iter().map(|r| r.loss.clone()).collect::<Vec<_>>(), again.runs.iter().map(|r| r.loss.clone()).collect::<Vec<_>>());
    assert_ne!(first.runs[0].loss, first.runs[1].loss, "RoPE or not changes the run");
}

#[test]
fn an_unknown_recipe_is_one_line_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = glassbox(&["train", "--compare", "llama,t5", "--preset", "text", "--out", tmp.path().to_str().unwrap()]);
    assert_one_line_error(&out, "`t5`");
    let out = glassbox(&["train", "--recipe", "t5", "--preset", "text", "--out", tmp.path().to_str().unwrap()]);
    assert_one_line_error(&out, "`t5`");
}
