//! The lesson files against the app: they parse, both languages have the same lessons,
//! every hook and step they name exists in a real trace, and every action names something
//! the app can do (and, on SmolLM2 when cached, runs without an error).

use std::collections::BTreeSet;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::{BlockHook, CaptureFilter, HookKey, LayerOp, LlamaConfig, Step};

use super::{app_on, fixture_model, repo_root, smollm2};
use crate::gui::i18n::Lang;
use crate::gui::lessons::{Library, check_action, run_action};
use crate::gui::views::{ViewId, registry};

fn library() -> Library {
    let lib = Library::load(Some(repo_root().join("lessons")));
    assert!(
        lib.errors.is_empty(),
        "lesson files that do not parse: {:#?}",
        lib.errors
    );
    assert!(
        lib.en.len() >= 16,
        "expected at least 16 lessons, found {}",
        lib.en.len()
    );
    lib
}

/// SmolLM2-135M's configuration (as the lessons README states it), for range checks when
/// the model itself is not cached.
fn smollm2_config() -> LlamaConfig {
    let json = r#"{"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
        "max_position_embeddings": 8192, "tie_word_embeddings": true}"#;
    LlamaConfig::from_json(json, std::path::Path::new("smollm2.json")).expect("config")
}

#[test]
fn lessons_parse_and_both_languages_match() {
    let lib = library();
    let ids = |lang: Lang| {
        lib.lessons(lang)
            .iter()
            .map(|l| l.id().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Lang::En), ids(Lang::Zh));
    for (en, zh) in lib.en.iter().zip(&lib.zh) {
        assert_eq!(en.front.steps, zh.front.steps, "{}", en.id());
        assert_eq!(en.front.hooks, zh.front.hooks, "{}", en.id());
        assert_eq!(en.front.view, zh.front.view, "{}", en.id());
        assert_eq!(
            en.front.actions.len(),
            zh.front.actions.len(),
            "{}",
            en.id()
        );
        for (a, b) in en.front.actions.iter().zip(&zh.front.actions) {
            let strip = |x: &crate::gui::lessons::Action| crate::gui::lessons::Action {
                label: String::new(),
                ..x.clone()
            };
            assert_eq!(strip(a), strip(b), "{}: action `{}`", en.id(), a.label);
        }
    }
}

/// The tiny fixture of each family the lessons are about (Llama, Gemma 3, GPT-2, BERT), each
/// with every hook captured on a short input.
fn family_traces() -> Vec<(String, Arc<glassbox_engine::Model>, glassbox_engine::Trace)> {
    let mut out = Vec::new();
    for (name, model) in [
        ("tiny-smollm2-shape".to_string(), fixture_model()),
        ("tiny-gemma3".into(), fixture_family("tiny-gemma3")),
        ("tiny-gpt2".into(), fixture_family("tiny-gpt2")),
        ("tiny-bert-mlm".into(), fixture_family("tiny-bert-mlm")),
    ] {
        let mut exec = CpuExecutor::new(Arc::clone(&model));
        let trace = exec
            .forward(&[1, 5, 9, 3, 7], PassOptions::capture(CaptureFilter::All))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, model, trace));
    }
    out
}

fn fixture_family(name: &str) -> Arc<glassbox_engine::Model> {
    let dir = repo_root().join("tests/fixtures").join(name);
    Arc::new(glassbox_engine::Model::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// Every hook and step a lesson names is recorded by a real pass of some family (Gemma's
/// `qk_norm` by the Gemma fixture, BERT's `attn_add_norm` by the BERT one).
#[test]
fn every_hook_and_step_named_by_a_lesson_exists_in_a_fixture_trace() {
    let traces = family_traces();
    let lib = library();
    let mut seen_steps = BTreeSet::new();
    for l in lib.en.iter().chain(&lib.zh) {
        assert!(
            ViewId::from_id(&l.front.view).is_some(),
            "{}: unknown view `{}`",
            l.id(),
            l.front.view
        );
        for h in &l.front.hooks {
            let key = match BlockHook::from_name(h) {
                Some(b) => HookKey::Block(0, b),
                None => h
                    .parse::<HookKey>()
                    .unwrap_or_else(|e| panic!("{}: {e}", l.id())),
            };
            assert!(
                traces.iter().any(|(_, _, t)| t.get(key).is_some()),
                "{}: hook `{h}` is not in any family's trace",
                l.id()
            );
        }
        let mut steps: Vec<String> = l.front.steps.clone();
        steps.extend(
            l.front
                .actions
                .iter()
                .filter_map(|a| a.goto.as_deref())
                .map(|g| g.rsplit('.').next().unwrap_or(g).to_string()),
        );
        for kind in steps {
            let recorded_by = traces.iter().find(|(_, model, trace)| {
                let n = model.config.n_layers();
                let step = match LayerOp::ALL.into_iter().find(|op| op.name() == kind) {
                    Some(op) => Step::Layer(n - 1, op),
                    None => kind
                        .parse::<Step>()
                        .unwrap_or_else(|e| panic!("{}: {e}", l.id())),
                };
                let in_program = glassbox_engine::program::step::Program::new(&model.config.arch())
                    .steps()
                    .contains(&step);
                in_program
                    && step.hooks().iter().all(|key| trace.get(*key).is_some())
                    && (step != Step::Sample || trace.sampled.is_some())
            });
            assert!(recorded_by.is_some(), "{}: no family's pass records step `{kind}`", l.id());
            seen_steps.insert(kind);
        }
    }
    assert!(seen_steps.len() >= 20, "only {} steps checked", seen_steps.len());
}

#[test]
fn every_action_names_something_the_app_knows() {
    let lib = library();
    let smollm2 = smollm2_config();
    for l in lib.en.iter().chain(&lib.zh) {
        assert!(!l.front.actions.is_empty(), "{}: no actions", l.id());
        for a in &l.front.actions {
            let config = match a.model.as_deref() {
                Some(m) => crate::gui::lesson_numbers::model_config(m).unwrap_or_else(|e| panic!("{}: {e}", l.id())),
                None => smollm2.clone(),
            };
            let errs = check_action(a, &config);
            assert!(errs.is_empty(), "{} / `{}`: {errs:?}", l.id(), a.label);
        }
    }
}

/// On the fixture: actions change the cursor, selection and sampling as the README says,
/// and an ablation reruns the pass with the head's z zeroed.
#[test]
fn actions_apply_in_order_on_the_fixture() {
    let mut app = app_on(fixture_model(), &super::fixture_ids());
    let r = app.ready().expect("ready");
    r.s.poll();
    let a = crate::gui::lessons::Action {
        label: "x".into(),
        goto: Some("blocks.1.softmax".into()),
        head: Some(5),
        position: Some(999),
        temperature: Some(0.5),
        top_k: Some(7),
        ablate_heads: Some(vec![[1, 5]]),
        ..Default::default()
    };
    let out = run_action(&a, &mut r.s);
    r.s.poll();
    assert!(out.task.is_none());
    assert_eq!(r.s.cursor_step(), Step::Layer(1, LayerOp::Softmax));
    assert_eq!(
        (r.s.sel.head, r.s.sel.position),
        (5, 16),
        "past the end selects the last position"
    );
    assert_eq!((r.s.sampling.temperature, r.s.sampling.top_k), (0.5, 7));
    let z =
        r.s.trace
            .get(HookKey::Block(1, BlockHook::Z))
            .and_then(|t| t.as_3d())
            .expect("z");
    assert!(
        z.slice(ndarray::s![.., 5, ..]).iter().all(|&v| v == 0.0),
        "head 5 ablated"
    );
    assert!(z.slice(ndarray::s![.., 4, ..]).iter().any(|&v| v != 0.0));
    // The next action without `ablate_heads` turns the ablation off again.
    let b = crate::gui::lessons::Action {
        label: "y".into(),
        head: Some(1),
        ..Default::default()
    };
    run_action(&b, &mut r.s);
    r.s.poll();
    assert!(r.s.ablate.is_empty());
    let z =
        r.s.trace
            .get(HookKey::Block(1, BlockHook::Z))
            .and_then(|t| t.as_3d())
            .expect("z");
    assert!(
        z.slice(ndarray::s![.., 5, ..]).iter().any(|&v| v != 0.0),
        "ablation does not leak"
    );
    // f16 needs the GPU executor: without one a notice says so and f32 stays.
    let c = crate::gui::lessons::Action {
        label: "z".into(),
        precision: Some("f16".into()),
        ..Default::default()
    };
    run_action(&c, &mut r.s);
    r.s.poll();
    assert!(r.s.error.is_none(), "{:?}", r.s.error);
    assert!(
        r.s.precision == glassbox_engine::Precision::F16 || !r.s.notices.is_empty(),
        "either f16 runs or the user is told why not"
    );
    let t = crate::gui::lessons::Action {
        label: "t".into(),
        task: Some("qa".into()),
        prompt: Some("Question: why?".into()),
        ..Default::default()
    };
    let out = run_action(&t, &mut r.s);
    assert_eq!(
        out.task,
        Some((
            glassbox_engine::article::tasks::TaskKind::Qa,
            Some("Question: why?".into())
        ))
    );
}

/// Every action of every lesson, on the real model: no errors, and a prompt action leaves
/// a complete trace. Skips when SmolLM2 is not cached.
#[test]
fn every_action_runs_on_smollm2() {
    let Some(model) = smollm2() else { return };
    let mut app = app_on(model, "The capital of France is");
    let lib = library();
    for l in &lib.en {
        // Another model's actions run in `every_gemma_action_runs_on_gemma`.
        for a in l.front.actions.iter().filter(|a| a.model.as_deref().is_none_or(|m| m == "smollm2-135m-instruct")) {
            let r = app.ready().expect("ready");
            run_action(a, &mut r.s);
            r.s.poll();
            assert!(
                r.s.error.is_none(),
                "{} / `{}`: {:?}",
                l.id(),
                a.label,
                r.s.error
            );
            if a.prompt.is_some() && a.task.is_none() {
                assert!(
                    r.s.analysis.is_some(),
                    "{} / `{}`: pass incomplete",
                    l.id(),
                    a.label
                );
            }
            if let Some(n) = a.generate {
                assert!(
                    !r.s.generated.is_empty() && r.s.generated.len() <= n,
                    "{} / `{}`",
                    l.id(),
                    a.label
                );
            }
        }
    }
}

/// Every number a lesson states about SmolLM2 is declared in `[facts]`; here each one is
/// checked against the real model's config (fetched on first use), and unknown fact keys
/// are errors rather than silently unchecked.
#[test]
fn every_stated_fact_matches_the_running_smollm2() {
    const KNOWN: [&str; 13] = [
        "n_layers", "d_model", "n_heads", "n_kv_heads", "d_head", "d_mlp", "vocab_size",
        "rope_theta", "rms_norm_eps", "max_position_embeddings", "tied_embeddings", "gqa_group",
        "n_params_millions",
    ];
    let lib = library();
    let mut checked = 0;
    for lesson in lib.en.iter().chain(&lib.zh) {
        for key in lesson.front.facts.iter().flat_map(|f| f.keys()) {
            assert!(KNOWN.contains(&key.as_str()), "{}: unknown fact `{key}`", lesson.id());
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} facts declared");
    let Some(model) = smollm2() else { return };
    for lesson in lib.en.iter().chain(&lib.zh) {
        let wrong = crate::gui::lessons::facts_mismatch(&lesson.front, &model.config);
        assert!(wrong.is_empty(), "{}: {wrong:?}", lesson.id());
    }
}

/// Lesson 01's table is the one `model_table` generates from the bundled configs, in both
/// languages; and SmolLM2's bundled config agrees with the model the app loads.
#[test]
fn lesson_01_table_is_generated_from_the_bundled_configs() {
    use crate::gui::model_table;
    let lib = library();
    let cards = model_table::bundled().expect("bundled configs");
    for lang in Lang::ALL {
        let lesson = lib.get(lang, "01-overview").expect("lesson 01");
        let table = model_table::markdown(&cards, lang);
        assert!(
            lesson.body.contains(&table),
            "lesson 01 ({}) must hold exactly this generated table:\n{table}",
            lang.code()
        );
    }
    let Some(model) = smollm2() else { return };
    let (a, b) = (&cards[0].config, &model.config);
    let fields = |c: &LlamaConfig| {
        (
            c.n_layers(),
            c.d_model(),
            c.n_heads(),
            c.n_kv_heads(),
            c.d_head(),
            c.d_mlp(),
            c.vocab_size,
            c.rope_theta(),
            c.max_position_embeddings,
            c.tie_word_embeddings,
            c.n_params(),
        )
    };
    assert_eq!(fields(a), fields(b), "assets/models/smollm2-135m-instruct.json vs the loaded model");
    assert_eq!(a.rope_kind(), b.rope_kind());
}

/// Inline code spans of a Markdown body (outside fenced blocks).
fn code_spans(body: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in body.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let parts: Vec<&str> = line.split('`').collect();
        spans.extend(parts.iter().skip(1).step_by(2).map(|s| s.to_string()));
    }
    spans
}

/// Names a lesson body uses must exist: hooks and steps in inline code, and views by title.
#[test]
fn lessons_name_only_real_hooks_steps_and_views() {
    let lib = library();
    let config = smollm2_config();
    let hook_ok = |s: &str| {
        BlockHook::from_name(s).is_some()
            || s.parse::<HookKey>().is_ok()
            || BlockHook::ALL
                .iter()
                .any(|h| h.name().rsplit('.').next() == Some(s))
            || ["ln_final.hook_normalized", "ln_final.hook_scale"].contains(&s)
    };
    let step_kinds: Vec<&str> = LayerOp::ALL
        .iter()
        .map(|op| op.name())
        .chain(["embed", "ln_final", "logits", "probs", "sample"])
        .collect();
    let mut checked = 0;
    for l in lib.en.iter().chain(&lib.zh) {
        for span in code_spans(&l.body) {
            if step_kinds.contains(&span.as_str()) {
                checked += 1;
            } else if span.starts_with("ln") || span.ends_with("_proj") {
                panic!("{}: `{span}` names no step", l.id());
            } else if span.contains("hook_") {
                assert!(hook_ok(&span), "{}: no hook `{span}`", l.id());
                checked += 1;
            } else if span.starts_with("blocks.") {
                let step: Step = span
                    .parse()
                    .unwrap_or_else(|e| panic!("{}: `{span}`: {e}", l.id()));
                assert!(
                    step.layer().is_none_or(|n| n < config.n_layers()),
                    "{}: `{span}` is past the last layer",
                    l.id()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} names checked");
    // Views by title: "the Tokens view" / "The Tasks panel"; “词元”视图 / “任务”面板.
    let titles = |lang: Lang| -> Vec<&'static str> {
        registry::catalog().iter().map(|v| v.id.title(lang)).collect()
    };
    let known = |lang: Lang, name: &str| {
        titles(lang)
            .iter()
            .any(|t| *t == name || t.split(' ').next() == Some(name) || t.starts_with(name))
    };
    let mut views = 0;
    for l in &lib.en {
        // Words without surrounding punctuation or a possessive "'s".
        let words: Vec<String> = l
            .body
            .split_whitespace()
            .map(|w| {
                let w = w.trim_matches(|c: char| !c.is_alphanumeric());
                w.trim_end_matches("'s").trim_end_matches("’s").to_string()
            })
            .collect();
        for (i, w) in words.iter().enumerate() {
            if !(w == "view" || w == "panel") || i < 2 {
                continue;
            }
            // "the Residual stream view": the words back to "the".
            let mut name: Vec<&str> = Vec::new();
            for prev in words[..i].iter().rev() {
                if prev.eq_ignore_ascii_case("the") {
                    break;
                }
                name.insert(0, prev);
            }
            // "the Tokens view's augmentation panel": the view was checked at "view".
            if name.iter().any(|n| *n == "view" || *n == "panel") {
                continue;
            }
            let name = name.join(" ");
            if name.chars().next().is_some_and(char::is_uppercase) && name.split(' ').count() <= 3 {
                assert!(known(Lang::En, &name), "{}: no view called `{name}`", l.id());
                views += 1;
            }
        }
    }
    for l in &lib.zh {
        for part in l.body.split('“').skip(1) {
            if let Some((name, rest)) = part.split_once('”')
                && (rest.starts_with("视图") || rest.starts_with("面板"))
            {
                assert!(known(Lang::Zh, name), "{}: no view called “{name}”", l.id());
                views += 1;
            }
        }
    }
    assert!(views >= 10, "only {views} view names checked");
}

/// One Chinese term per concept across the lessons and the UI strings: the variants on the
/// left were in use beside the chosen term on the right.
#[test]
fn one_chinese_term_per_concept() {
    const VARIANTS: [(&str, &str); 4] = [
        ("遮罩", "掩码 (mask)"),
        ("抽样", "采样 (sampling)"),
        ("解码层", "解码器层 (decoder layer)"),
        ("词嵌入", "嵌入 (embedding)"),
    ];
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let mut walk = vec![repo_root().join("app/src/gui"), repo_root().join("lessons/zh")];
    while let Some(dir) = walk.pop() {
        for e in std::fs::read_dir(&dir).expect("folder").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk.push(p);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "md") {
                files.push(p);
            }
        }
    }
    let this_file = std::path::Path::new(file!()).file_name().map(|f| f.to_os_string());
    let mut offenders = Vec::new();
    for f in &files {
        if f.file_name().map(|n| n.to_os_string()) == this_file {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("text");
        for (bad, good) in VARIANTS {
            if text.contains(bad) {
                offenders.push(format!("{}: `{bad}` (use {good})", f.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// Every training action of every lesson starts its run in the Training view and gets as
/// far as a reported step (and, with `inspect`, a laid-open step) without an error.
#[test]
fn every_training_action_runs_in_the_training_view() {
    use crate::gui::lessons::train_request;
    use crate::gui::views::training::TrainingView;
    let lib = library();
    let ctx = egui::Context::default();
    let mut seen = 0;
    for l in lib.en.iter().chain(&lib.zh) {
        for a in &l.front.actions {
            let req = train_request(a).unwrap_or_else(|e| panic!("{} / `{}`: {e}", l.id(), a.label));
            let Some(req) = req else { continue };
            assert_eq!(l.front.view, "training", "{}: training actions belong in the Training view", l.id());
            if lib.zh.iter().any(|z| std::ptr::eq(z, l)) {
                continue; // zh has the same actions as en (checked above): run each once
            }
            seen += 1;
            let tmp = tempfile::tempdir().expect("temp dir");
            let mut view = TrainingView::default();
            view.run_root = tmp.path().to_path_buf();
            view.apply(&req, &ctx);
            let start = std::time::Instant::now();
            loop {
                view.poll(&ctx);
                assert!(view.error.is_none(), "{} / `{}`: {:?}", l.id(), a.label, view.error);
                let stepped = view.step() >= 1;
                let inspected = view.step_through.inspection().is_some();
                if stepped && (!req.inspect || inspected) {
                    break;
                }
                assert!(start.elapsed().as_secs() < 120, "{} / `{}`: no step reported", l.id(), a.label);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(view.preset, req.preset);
            if req.precision == crate::gui::views::training::PrecisionMode::Both {
                while view.history.bf16_steps.is_empty() {
                    view.poll(&ctx);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
            if let Some(r) = view.history.steps.last() {
                assert_eq!(r.worker_grad_norms.len(), req.workers, "{}", l.id());
            }
        }
    }
    assert!(seen >= 7, "only {seen} training actions");
}

/// Every experiment action of every lesson, on the real model: the action runs, its
/// experiment runs to a result in the Experiments view with no error. Skips when SmolLM2 is
/// not cached.
#[test]
fn every_experiment_action_runs_on_smollm2() {
    let lib = library();
    let config = smollm2_config();
    let mut seen = 0;
    for l in &lib.en {
        for a in l.front.actions.iter().filter(|a| a.experiment.is_some()) {
            assert!(check_action(a, &config).is_empty(), "{} / `{}`", l.id(), a.label);
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} experiment actions");
    let Some(model) = smollm2() else { return };
    let mut app = app_on(model, "The capital of France is");
    for l in &lib.en {
        for a in l.front.actions.iter().filter(|a| a.experiment.is_some()) {
            let r = app.ready().expect("ready");
            let outcome = run_action(a, &mut r.s);
            let spec = outcome.experiment.expect("the outcome carries the experiment");
            r.views.the::<crate::gui::views::experiments::ExperimentsView>().start(&spec, &mut r.s);
            let start = std::time::Instant::now();
            while r.views.the::<crate::gui::views::experiments::ExperimentsView>().busy() {
                r.s.poll();
                r.views.the::<crate::gui::views::experiments::ExperimentsView>().absorb(&mut r.s);
                assert!(start.elapsed().as_secs() < 600, "{} / `{}` did not finish", l.id(), a.label);
            }
            let x = &r.views.the::<crate::gui::views::experiments::ExperimentsView>();
            for runner in [&x.compare.runner, &x.patching.runner, &x.attribution.runner, &x.catalog.runner] {
                assert!(runner.error.is_none(), "{} / `{}`: {:?}", l.id(), a.label, runner.error);
            }
            let has_result = match spec.kind.as_str() {
                "compare" | "ladder" => x.compare.result.as_ref().is_some_and(|c| c.b.iter().all(|(_, _, cmp)| cmp.first_apart.is_some())),
                "patch" => x.patching.grids.iter().all(|g| g.done == g.scores.len()) && !x.patching.grids.is_empty(),
                "dla" => x.attribution.result.as_ref().is_some_and(|d| (d.attribution.sum() - d.attribution.logit).abs() < 1e-2),
                _ => x.catalog.result.is_some(),
            };
            assert!(has_result, "{} / `{}`: no result", l.id(), a.label);
            assert!(r.s.error.is_none(), "{} / `{}`: {:?}", l.id(), a.label, r.s.error);
        }
    }
}
