//! The Training view's Compare recipes page driven by its labels: a `compare.json` (as
//! `glassbox train --compare` writes it) opens, its recipes and final numbers show, a run's
//! checkpoint opens as the app's model, a missing checkpoint and a bad file each give one
//! line, and the page is readable from the back row in presenter mode.

use std::path::{Path, PathBuf};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use serde_json::json;

use super::presenter::{back_row_problems, painted_texts, projector_harness};
use super::{app_on, fixture_ids, fixture_model, harness, repo_root};
use crate::gui::app::GlassboxApp;
use crate::gui::i18n::Lang;
use crate::gui::views::training::{self, TrainingView};

fn view<'a>(h: &'a mut Harness<'static, GlassboxApp>) -> &'a mut TrainingView {
    h.state_mut().ready().expect("ready").views.the::<TrainingView>()
}

/// A tiny model folder copied from a fixture (config and weights only), as a run's checkpoint.
fn checkpoint_from(fixture: &str, to: &Path) {
    std::fs::create_dir_all(to).expect("checkpoint dir");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(repo_root().join("tests/fixtures").join(fixture).join(f), to.join(f)).expect("copy fixture");
    }
}

/// `DIR/compare.json` with three runs: `llama` (checkpoint relative to DIR), `gpt2`
/// (absolute) and `bert-mlm` (its folder never written).
fn comparison(dir: &Path) -> PathBuf {
    checkpoint_from("tiny-gqa-tied", &dir.join("llama"));
    checkpoint_from("tiny-gpt2", &dir.join("gpt2"));
    let file = json!({
        "preset": "text", "seed": 1, "steps": 4, "budget_params": 200000, "written_by": "a newer glassbox",
        "runs": [
            {"recipe": "llama", "params": 198000, "loss": [5.5, 4.75, 3.875, 3.2109],
             "eval": [{"step": 0, "loss": 5.6}, {"step": 4, "loss": 3.4567}], "steps_per_second": 14.2, "checkpoint": "llama"},
            {"recipe": "gpt2", "params": 203456, "loss": [5.5, 5.0, 4.5, 4.0625],
             "eval": [{"step": 0, "loss": 5.6}, {"step": 4, "loss": 4.1875}], "steps_per_second": 9.87,
             "checkpoint": dir.join("gpt2"), "extra": [1, 2]},
            {"recipe": "bert-mlm", "params": 199999, "loss": [6.0, 5.25, 4.5, 4.4375],
             "eval": [{"step": 0, "loss": 6.1}, {"step": 4, "loss": 4.5}], "steps_per_second": 11.0, "checkpoint": "bert-mlm"}
        ]
    });
    let path = dir.join("compare.json");
    std::fs::write(&path, file.to_string()).expect("write compare.json");
    path
}

/// The app on the Training view's Compare recipes page.
fn on_compare_page() -> Harness<'static, GlassboxApp> {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    h.get_by_label("Training").click();
    h.run();
    h.get_by_label("Compare recipes").click();
    h.run();
    h
}

/// Types `path` and presses Open, as a user without a file dialog does.
fn open(h: &mut Harness<'static, GlassboxApp>, path: &Path) {
    view(h).compare.path_text = path.display().to_string();
    h.run();
    h.get_by_label("Open").click();
    h.run_steps(2);
}

fn click_open_run(h: &mut Harness<'static, GlassboxApp>, i: usize) {
    // A pass still running may add a notice above the page when it ends, moving the buttons
    // under the click: settle first.
    settle(h);
    h.query_all_by_label("Open in the other views").nth(i).expect("a button per run").click();
    h.run_steps(3);
    settle(h);
}

/// The opened model runs the prompt on its worker thread: frames until it has finished.
fn settle(h: &mut Harness<'static, GlassboxApp>) {
    let start = std::time::Instant::now();
    while h.state_mut().ready().expect("ready").s.running {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the opened model's pass finished");
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    h.run_steps(3);
}

/// Back to the Training view's Compare recipes page by its tabs.
fn back_to_compare(h: &mut Harness<'static, GlassboxApp>) {
    h.get_by_label("Training").click();
    h.run_steps(2);
    assert_eq!(h.state().view, training::ID);
    h.get_by_label("Compare recipes").click();
    h.run_steps(2);
}

fn model_dir(h: &mut Harness<'static, GlassboxApp>) -> PathBuf {
    h.state_mut().ready().expect("ready").s.model.source.dir.clone()
}

#[test]
fn a_comparison_shows_each_recipe_and_opens_a_runs_checkpoint_in_the_other_views() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = comparison(tmp.path());
    let mut h = on_compare_page();
    assert_eq!(h.state().view, training::ID);
    h.get_by_label("Open comparison…");
    open(&mut h, &path);

    h.get_by_label("preset text · seed 1 · 4 steps · budget 200,000 parameters");
    for recipe in ["llama", "gpt2", "bert-mlm"] {
        assert_eq!(h.query_all_by_label(recipe).count(), 2, "{recipe} in the table and the legend");
        // The legend names each recipe's held-out curve too.
        assert!(h.query_all_by_label_contains(&format!("{recipe} held-out")).count() >= 1, "{recipe}'s held-out curve in the legend");
    }
    for number in ["198,000", "3.2109", "3.4567", "14.2", "203,456", "4.0625", "4.1875", "9.9", "4.4375", "4.5000", "11.0"] {
        h.get_by_label(number);
    }
    assert_eq!(h.query_all_by_label("Open in the other views").count(), 3);

    // The llama run's checkpoint (written relative to the file) becomes the app's model.
    let before = model_dir(&mut h);
    click_open_run(&mut h, 0);
    assert_eq!(h.state().view, crate::gui::views::attention::ID, "the model opens in the attention view");
    let llama = model_dir(&mut h);
    assert_ne!(llama, before);
    assert_eq!(llama.canonicalize().ok(), tmp.path().join("llama").canonicalize().ok());

    // The comparison outlives the switch; the gpt2 run (absolute path) opens next.
    back_to_compare(&mut h);
    click_open_run(&mut h, 1);
    assert_eq!(model_dir(&mut h), tmp.path().join("gpt2"));
    assert_eq!(h.state_mut().ready().expect("ready").s.model.config.model_type.as_deref(), Some("gpt2"));

    // A run whose folder is missing: one line, the model stays.
    back_to_compare(&mut h);
    click_open_run(&mut h, 2);
    assert_eq!(h.state().view, training::ID);
    // Frames until the line shows: a loaded machine may still be finishing gpt2's pass.
    let start = std::time::Instant::now();
    while h.query_by_label_contains("The checkpoint of `bert-mlm` is missing").is_none() {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "the missing checkpoint is one line");
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(model_dir(&mut h), tmp.path().join("gpt2"));
}

#[test]
fn a_missing_or_bad_comparison_is_one_line_and_nothing_panics() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let cases = [
        (tmp.path().join("nowhere/compare.json"), "No such file"),
        (write("bad.json", "{\"runs\": [ {\"recipe\": "), "not a comparison"),
        (write("no-runs.json", "{\"preset\": \"text\", \"runs\": []}"), "no runs"),
        (write("no-loss.json", "{\"runs\": [{\"recipe\": \"gpt2\", \"loss\": []}]}"), "the run `gpt2` has no loss values"),
    ];
    let mut h = on_compare_page();
    for (path, why) in cases {
        open(&mut h, &path);
        h.get_by_label_contains("Could not open the comparison");
        // The same one line says why.
        assert_eq!(h.query_all_by_label_contains(why).count(), 1, "{path:?}: {why}");
        assert!(view(&mut h).compare.loaded.is_none());
        assert_eq!(h.query_all_by_label("Open in the other views").count(), 0);
    }
    // A diverged run (serde_json writes NaN as null) opens; its final loss says NaN.
    let diverged = write("diverged.json", "{\"runs\": [{\"recipe\": \"llama-postnorm\", \"loss\": [5.5, null], \"eval\": [{\"step\": 2, \"loss\": null}]}]}");
    open(&mut h, &diverged);
    assert!(h.query_by_label_contains("Could not open the comparison").is_none());
    assert_eq!(h.query_all_by_label("llama-postnorm").count(), 2, "in the table and the legend");
    assert_eq!(h.query_all_by_label("NaN").count(), 2, "final loss and final held-out loss");
    // A good file after the bad ones opens and clears the line.
    open(&mut h, &comparison(tmp.path()));
    assert!(h.query_by_label_contains("Could not open the comparison").is_none());
    h.get_by_label("3.2109");
}

#[test]
fn the_comparison_in_presenter_mode_is_readable_from_the_back_row() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = comparison(tmp.path());
    let mut h = projector_harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    let mut problems = Vec::new();
    for lang in [Lang::En, Lang::Zh] {
        {
            let app = h.state_mut();
            app.lang = lang;
            app.presenting = true;
            app.show_lesson = false;
            let r = app.ready().expect("ready");
            r.views.the::<TrainingView>().compare.load(&path, lang);
            assert_eq!(r.views.set_mode("recipes"), Some(training::ID));
            app.view = training::ID;
        }
        h.run();
        h.run();
        let texts = painted_texts(h.output());
        for shown in ["llama", "gpt2", "bert-mlm", "3.2109"] {
            assert!(texts.iter().any(|t| t.text == shown), "{lang:?}: {shown} painted");
        }
        problems.extend(back_row_problems(&texts).into_iter().map(|p| format!("{lang:?}: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
