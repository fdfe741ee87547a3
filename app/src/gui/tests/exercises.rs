//! The exercises at the end of every lesson and the handout: two or three questions per
//! lesson in both languages, every answer filled from the lesson's model and the pass, the
//! answers equal to values read independently, hidden until asked for, and File → Export
//! handout's files (lesson, figures, answer sheet apart).

use std::sync::Arc;

use egui_kittest::kittest::Queryable;
use glassbox_engine::experiments::analysis;
use glassbox_engine::{BlockHook, HookKey, LlamaConfig, Model};

use super::{app_with_lesson, fixture_ids, fixture_model, harness, inline_session, repo_root};
use crate::gui::i18n::Lang;
use crate::gui::lesson_answers::{Answer, answer, question_text, trace_value};
use crate::gui::lesson_numbers::{lesson_config, model_config};
use crate::gui::lesson_panel::LessonPanel;
use crate::gui::lessons::Library;
use crate::gui::session::Session;
use crate::gui::theme::Theme;
use crate::gui::views::ViewId;

fn library() -> Library {
    let lib = Library::load(Some(repo_root().join("lessons")));
    assert!(lib.errors.is_empty(), "{:#?}", lib.errors);
    lib
}

/// A session on `model` that has run `prompt` (greedy, so the sampled token is the argmax).
fn ran(model: &Arc<Model>, prompt: &str) -> Session {
    let mut s = inline_session(model);
    s.sampling.temperature = 0.0;
    s.prompt = prompt.to_string();
    s.run();
    s.poll();
    assert!(s.n_tokens() > 0 && s.analysis.is_some(), "the pass ran");
    s
}

#[test]
fn every_lesson_has_two_or_three_questions_in_both_languages() {
    let lib = library();
    assert!(lib.en.len() >= 34, "only {} lessons", lib.en.len());
    for en in &lib.en {
        let zh = lib.get(Lang::Zh, en.id()).expect("the Chinese lesson");
        let n = en.front.questions.len();
        assert!((2..=3).contains(&n), "{}: {n} questions", en.id());
        assert_eq!(zh.front.questions.len(), n, "{}: zh and en differ", en.id());
    }
}

/// Without a pass the trace names say "run the prompt first", never "unknown"; with the
/// fixture's pass every answer of every lesson is filled.
#[test]
fn every_answer_fills_on_the_lessons_model() {
    let lib = library();
    let model = fixture_model();
    let s = ran(&model, &fixture_ids());
    let mut needs_run = 0;
    for l in lib.en.iter().chain(&lib.zh) {
        let lesson_model = l.front.model.as_deref().unwrap_or("smollm2-135m-instruct");
        let config = model_config(lesson_model).expect("lesson model config");
        for q in &l.front.questions {
            let text = question_text(q, &config);
            assert!(!text.contains("{{") && !text.trim().is_empty(), "{}: {text}", l.id());
            match answer(&q.answer, &config, None) {
                Answer::Ready(a) => assert!(!a.contains("{{"), "{}: {a}", l.id()),
                Answer::NeedsRun => needs_run += 1,
                Answer::Unknown(names) => panic!("{}: no value for {names:?}", l.id()),
            }
            let on_fixture = lesson_config(l.front.model.as_deref(), &model.config).0;
            match answer(&q.answer, &on_fixture, Some(&s)) {
                Answer::Ready(a) => assert!(!a.contains("{{") && !a.is_empty(), "{}: {a}", l.id()),
                other => panic!("{}: {:?} after a pass: {other:?}", l.id(), q.answer),
            }
        }
    }
    assert!(needs_run >= 20, "only {needs_run} answers read the pass");
}

#[test]
fn an_unknown_name_is_reported_not_hidden() {
    let config = model_config("smollm2-135m-instruct").expect("config");
    assert_eq!(answer("{{no_such_name}}", &config, None), Answer::Unknown(vec!["no_such_name".into()]));
    assert_eq!(answer("{{top1_token}}", &config, None), Answer::NeedsRun);
}

fn quoted(s: &Session, id: u32) -> String {
    format!("“{}”", crate::gui::views::visible(&s.token_text(id)))
}

/// Each trace answer against the same quantity read another way: the argmax of the last
/// logits (the engine's top-k) and the greedy sample, the pattern's entries, the residual
/// norm from `hook_resid_post`, the cache size by its formula.
fn check_trace_answers(model: &Arc<Model>, prompt: &str) {
    let mut s = ran(model, prompt);
    let c: &LlamaConfig = &model.config;
    let v = |s: &Session, name: &str| trace_value(s, name).unwrap_or_else(|| panic!("{name}: no value"));
    let logits = s.trace.get(HookKey::Logits).and_then(|t| t.as_2d()).expect("logits");
    let logits = logits.row(logits.nrows() - 1).to_vec();
    let top = analysis::top_k(&logits, 2, 1.0);
    assert_eq!(v(&s, "top1_token"), quoted(&s, top[0].id));
    assert_eq!(v(&s, "top2_token"), quoted(&s, top[1].id));
    assert_eq!(v(&s, "sampled_token"), v(&s, "top1_token"), "greedy picks the top token");
    assert_eq!(v(&s, "top1_prob"), format!("{:.1}%", 100.0 * top[0].prob));
    assert_eq!(v(&s, "n_tokens"), s.trace.token_ids.len().to_string());
    let layer = c.n_layers() - 1;
    s.goto(glassbox_engine::Step::Layer(layer, glassbox_engine::LayerOp::Softmax));
    s.sel.head = c.n_heads() - 1;
    s.sel.position = 0;
    let pattern = s.trace.get(HookKey::Block(layer, BlockHook::Pattern)).and_then(|t| t.as_3d()).expect("pattern").to_owned();
    let row = pattern.slice(ndarray::s![c.n_heads() - 1, s.n_tokens() - 1, ..]).to_vec();
    let best = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a))).expect("a key");
    assert_eq!(v(&s, "attn_top_key"), best.to_string());
    assert_eq!(v(&s, "attn_top_weight"), format!("{:.1}%", 100.0 * row[best]));
    assert_eq!(v(&s, "first_token_weight"), format!("{:.1}%", 100.0 * row[0]));
    assert_eq!(v(&s, "attn_query"), (s.n_tokens() - 1).to_string(), "the last query, whatever the selection");
    let resid = s.trace.get(HookKey::Block(layer, BlockHook::ResidPost)).and_then(|t| t.as_2d()).expect("resid").to_owned();
    let norm = resid.row(s.n_tokens() - 1).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert_eq!(v(&s, "resid_norm_last"), format!("{norm:.1}"));
    let bytes = c.n_layers() * 2 * c.n_kv_heads() * c.d_head() * s.n_tokens() * 4;
    assert_eq!(s.cache_len, s.n_tokens());
    assert_eq!(v(&s, "kv_cache_bytes").replace(',', ""), format!("{bytes} B"));
    let config_answer = answer("{{gqa_group}}", c, Some(&s));
    assert_eq!(config_answer, Answer::Ready((c.n_heads() / c.n_kv_heads()).to_string()));
}

#[test]
fn trace_answers_equal_independent_readings_on_the_fixture() {
    check_trace_answers(&fixture_model(), &fixture_ids());
}

#[test]
fn trace_answers_equal_independent_readings_on_smollm2() {
    let Some(model) = super::smollm2() else { return };
    check_trace_answers(&model, "The capital of France is");
    let s = ran(&model, "The capital of France is");
    assert_eq!(trace_value(&s, "top1_token").as_deref(), Some("“␣Paris”"), "SmolLM2's known continuation");
}

/// The lesson panel alone, tall enough that the questions are laid out, on a pass.
fn panel_harness(lesson: &str, s: Session, lang: Lang) -> egui_kittest::Harness<'static, (LessonPanel, Session)> {
    let panel = LessonPanel::new(library(), Some(lesson.into()));
    egui_kittest::Harness::builder()
        .with_size(egui::vec2(600.0, 12000.0))
        .with_context_setup(crate::gui::fonts::install)
        .build_ui_state(
            move |ui, (p, s): &mut (LessonPanel, Session)| {
                let config = s.model.config.clone();
                p.ui_with_pass(ui, lang, &Theme::new(false), &config, Some(s));
            },
            (panel, s),
        )
}

#[test]
fn an_answer_is_hidden_until_show_answer_is_clicked() {
    let model = fixture_model();
    for (lang, show) in [(Lang::En, "Show answer"), (Lang::Zh, "显示答案")] {
        let s = ran(&model, &fixture_ids());
        let lesson = library().get(lang, "12-logits-sampling").expect("lesson 12").clone();
        let expected = match answer(&lesson.front.questions[0].answer, &model.config, Some(&s)) {
            Answer::Ready(a) => a,
            other => panic!("{other:?}"),
        };
        let mut h = panel_harness("12-logits-sampling", s, lang);
        h.run();
        let question = question_text(&lesson.front.questions[0], &model.config);
        h.get_by_label(&format!("1. {question}"));
        assert!(h.query_by_label(&expected).is_none(), "{lang:?}: the answer shows before the click");
        let buttons: Vec<_> = h.get_all_by_label(show).collect();
        assert_eq!(buttons.len(), lesson.front.questions.len());
        buttons[0].click();
        h.run();
        h.get_by_label(&expected);
    }
}

#[test]
fn a_question_that_needs_a_pass_says_run_the_prompt_first() {
    let model = fixture_model();
    let s = inline_session(&model);
    let mut h = panel_harness("12-logits-sampling", s, Lang::En);
    h.run();
    h.get_all_by_label("Show answer").next().expect("a button").click();
    h.run();
    h.get_by_label(&Answer::NeedsRun.text(Lang::En));
}

#[test]
fn the_handout_writes_the_lesson_its_figure_and_the_answers_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lesson_id = "08-scores-mask-softmax";
    let mut app = app_with_lesson(fixture_model(), &fixture_ids(), lesson_id);
    app.view = ViewId::from_id("attention").expect("attention view");
    let mut h = harness(app);
    h.run();
    h.state_mut().start_handout(dir.path().to_path_buf());
    h.run();
    let md = std::fs::read_to_string(dir.path().join(format!("{lesson_id}.md"))).expect("the handout");
    let sheet = std::fs::read_to_string(dir.path().join(format!("{lesson_id}-answers.md"))).expect("the answer sheet");
    let png = dir.path().join(format!("{lesson_id}-figure-1.png"));
    assert!(md.contains(&format!("]({lesson_id}-figure-1.png)")), "the figure is linked:\n{md}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).expect("png written")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("decodes");
    assert!(info.width > 100 && info.height > 100, "{info:?}");
    assert!(buf.iter().any(|&b| b != buf[0]), "the figure is not blank");
    let lib = library();
    let lesson = lib.get(Lang::En, lesson_id).expect("lesson");
    assert!(md.contains("## Why the mask matters"), "the body is in the handout");
    let Some(r) = h.state_mut().ready() else { panic!("ready") };
    for q in &lesson.front.questions {
        let text = question_text(q, &r.s.model.config);
        assert!(md.contains(&text) && sheet.contains(&text), "{text}");
        let Answer::Ready(a) = answer(&q.answer, &r.s.model.config, Some(&r.s)) else { panic!("{:?}", q.answer) };
        assert!(sheet.contains(&a), "the sheet has `{a}`:\n{sheet}");
        if a.len() > 8 {
            assert!(!md.contains(&a), "the handout gives away `{a}`");
        }
    }
    assert!(!md.contains("Answer:") && sheet.contains("Answer:"));
    assert!(!md.contains("{{"), "numbers filled in");
    // The lesson's committed screenshots come along (the test runs from the repository).
    assert!(!lesson.front.screenshots.is_empty());
    for name in &lesson.front.screenshots {
        assert!(dir.path().join(format!("en-{name}.png")).is_file(), "{name} copied");
        assert!(md.contains(&format!("](en-{name}.png)")), "{name} linked:\n{md}");
    }
}

/// The File menu's entry opens the folder dialog; Export writes the handout there.
#[test]
fn file_menu_export_handout_writes_into_the_chosen_folder() {
    let dir = super::exports::export_dir().join("handouts");
    let lesson_id = "06-gqa";
    let _ = std::fs::remove_file(dir.join(format!("{lesson_id}.md")));
    let mut h = harness(app_with_lesson(fixture_model(), &fixture_ids(), lesson_id));
    h.run();
    h.get_by_label("File").click();
    h.run();
    h.get_by_label("Export handout…").click();
    h.run();
    h.get_by_label("Export").click();
    h.run();
    let md = std::fs::read_to_string(dir.join(format!("{lesson_id}.md"))).expect("the handout");
    assert!(md.contains("How many query heads share one K/V head in this model?"), "{md}");
    let sheet = std::fs::read_to_string(dir.join(format!("{lesson_id}-answers.md"))).expect("the sheet");
    assert!(sheet.contains("**Answer:** 3"), "{sheet}");
    let notice = h.state().notices.last().map(|n| n.0.clone()).unwrap_or_default();
    assert!(notice.starts_with("Handout saved"), "{notice}");
}
