//! Saved sessions and workshop mode on the fixture model: a session reopens in a fresh app
//! bit for bit (trace, experiment results), a malformed file of each kind is refused with
//! the app unchanged, and in a workshop PgDn opens the next session while the prompt box
//! takes no typing.

use std::path::{Path, PathBuf};

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use glassbox_engine::Step;
use serde_json::{Value, json};

use super::experiments::until_idle;
use super::{app_on, fixture_ids, fixture_model, harness};
use crate::gui::app::GlassboxApp;
use crate::gui::saved_session::{self, SessionFile, paths};
use crate::gui::views::experiments::{ExperimentSpec, ExperimentsView};
use crate::gui::views::{ViewId, attention};

fn ready<'a>(h: &'a mut Harness<'static, GlassboxApp>) -> &'a mut crate::gui::app::Ready {
    h.state_mut().ready().expect("ready")
}

/// Frames until the pass has finished.
fn until_pass_done(h: &mut Harness<'static, GlassboxApp>) {
    for _ in 0..200 {
        h.run();
        let s = &ready(h).s;
        if !s.running && s.analysis.is_some() {
            return;
        }
    }
    panic!("the pass did not finish: {:?}", ready(h).s.error);
}

fn start(h: &mut Harness<'static, GlassboxApp>, spec: ExperimentSpec) {
    let r = ready(h);
    r.views.the::<ExperimentsView>().start(&spec, &mut r.s);
    until_idle(h, 400);
}

/// The fixture app with a prompt, a step, a view and mode, an ablated head and two
/// experiments' results.
fn prepared_app() -> Harness<'static, GlassboxApp> {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    until_pass_done(&mut h);
    start(&mut h, ExperimentSpec { kind: "heads".into(), probe: Some(true), ..Default::default() });
    let corrupt = {
        let mut ids: Vec<String> = fixture_ids().split_whitespace().map(str::to_string).collect();
        ids[2] = "7".into();
        ids.join(" ")
    };
    let patch = ExperimentSpec { kind: "patch".into(), corrupt: Some(corrupt), answer: Some("5".into()), wrong: Some("9".into()), hook: Some("z".into()), ..Default::default() };
    start(&mut h, patch);
    start(&mut h, ExperimentSpec { kind: "dla".into(), ..Default::default() });
    let r = ready(&mut h);
    r.s.ablate = vec![(0, 1)];
    // The Output view's distribution is at this temperature: set before the pass runs.
    r.s.sampling.temperature = 0.7;
    r.s.rerun();
    r.s.goto("blocks.1.softmax".parse::<Step>().expect("step"));
    r.s.sel.head = 4;
    r.s.sel.position = 3;
    r.views.set_mode("layer");
    h.state_mut().view = attention::ID;
    until_pass_done(&mut h);
    h
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("glassbox-sessions-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn save(h: &mut Harness<'static, GlassboxApp>, path: &Path) {
    h.state_mut().save_session(path, 0.0);
    assert!(path.is_file(), "{:?}", h.state().notices);
}

fn open(h: &mut Harness<'static, GlassboxApp>, path: &Path) -> Result<(), String> {
    let ctx = h.ctx.clone();
    let r = h.state_mut().open_session(path, &ctx);
    h.run();
    r
}

/// Every f32 of the trace, by hook, as bits.
fn trace_bits(h: &mut Harness<'static, GlassboxApp>) -> Vec<(String, Vec<u32>)> {
    let mut v: Vec<(String, Vec<u32>)> =
        ready(h).s.trace.iter().map(|(k, t)| (k.to_string(), t.data.iter().map(|x| x.to_bits()).collect())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn experiment_bits(h: &mut Harness<'static, GlassboxApp>) -> (Vec<Vec<u32>>, Vec<u32>, Vec<u32>) {
    let x = ready(h).views.the::<ExperimentsView>();
    let grids = x.patching.grids.iter().map(|g| g.scores.iter().map(|s| s.to_bits()).collect()).collect();
    let heads = x.catalog.result.as_ref().expect("catalog result");
    let s = &heads.scores;
    let cat = [&s.previous_token, &s.first_token, &s.induction, &s.duplicate].iter().flat_map(|m| m.iter().flatten()).map(|v| v.to_bits()).collect();
    let dla = x.attribution.result.as_ref().expect("attribution result");
    let a = &dla.attribution;
    let mut dla_bits: Vec<u32> = a.components.iter().map(|c| c.value.to_bits()).collect();
    dla_bits.push(a.logit.to_bits());
    dla_bits.extend(dla.top.iter().flat_map(|r| [r.id, r.logit.to_bits(), r.prob.to_bits()]));
    (grids, cat, dla_bits)
}

#[test]
fn a_saved_session_reopens_bit_for_bit_in_a_fresh_app() {
    let dir = temp_dir("bits");
    let path = dir.join(format!("lesson{}", saved_session::EXTENSION));
    let mut a = prepared_app();
    save(&mut a, &path);
    let (trace_a, exp_a) = (trace_bits(&mut a), experiment_bits(&mut a));
    assert!(!exp_a.0.is_empty() && !exp_a.1.is_empty() && !exp_a.2.is_empty());

    let mut b = harness(app_on(fixture_model(), "1 2 3"));
    until_pass_done(&mut b);
    open(&mut b, &path).expect("opens");
    until_pass_done(&mut b);
    assert_eq!(b.state().view, attention::ID);
    let r = ready(&mut b);
    assert_eq!(r.s.prompt, fixture_ids());
    assert_eq!(r.s.cursor_step().to_string(), "blocks.1.softmax");
    assert_eq!(r.s.ablate, vec![(0, 1)]);
    assert_eq!((r.s.sel.head, r.s.sel.position), (4, 3));
    assert_eq!(r.s.sampling.temperature.to_bits(), 0.7f32.to_bits());
    assert_eq!(r.views.iter().find(|v| v.id() == attention::ID.0).and_then(|v| v.mode()), Some("layer"));
    let trace_b = trace_bits(&mut b);
    assert_eq!(trace_a.len(), trace_b.len());
    assert!(trace_a.iter().any(|(k, _)| k.contains("pattern")) && trace_a.iter().any(|(k, _)| k.contains("logits")), "{:?}", trace_a.iter().map(|x| &x.0).collect::<Vec<_>>());
    for (x, y) in trace_a.iter().zip(&trace_b) {
        assert!(x == y, "{} differs after reopening", x.0);
    }
    assert_eq!(exp_a, experiment_bits(&mut b), "experiment results bit for bit");
    // The figures are there: the attention view draws with the reopened trace.
    b.run();
}

/// A valid session file as JSON, to break one field at a time.
fn valid_json(dir: &Path) -> Value {
    let mut a = harness(app_on(fixture_model(), &fixture_ids()));
    until_pass_done(&mut a);
    let f: SessionFile = a.state().capture_session(&dir.join("x.glassbox.json")).expect("capture");
    serde_json::to_value(f).expect("json")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn every_kind_of_bad_session_file_is_refused_and_the_app_keeps_its_state() {
    let dir = temp_dir("bad");
    let good = valid_json(&dir);
    let outside = temp_dir("outside");
    std::os::unix::fs::symlink(&outside, dir.join("escape")).expect("symlink");
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        edit(&mut v);
        v.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad JSON", "{\n  \"glassbox_session\": 1,\n  \"prompt\": ".into(), "line 3, column"),
        ("unknown version", broken(&|v| v["glassbox_session"] = json!(7)), "version 7"),
        ("no version", broken(&|v| { v.as_object_mut().expect("object").remove("glassbox_session"); }), "not a Glassbox session"),
        ("unknown field", broken(&|v| v["surprise"] = json!(1)), "unknown field"),
        ("unknown model", broken(&|v| v["model"]["sha256"] = json!("0".repeat(64))), "not on this computer"),
        ("bad sha", broken(&|v| v["model"]["sha256"] = json!("xyz")), "64 hex digits"),
        ("huge temperature", broken(&|v| v["sampling"]["temperature"] = json!(1e30)), "temperature"),
        ("negative temperature", broken(&|v| v["sampling"]["temperature"] = json!(-1.0)), "temperature"),
        ("absurd top_k", broken(&|v| v["sampling"]["top_k"] = json!(1_000_000)), "top_k"),
        ("absurd top_p", broken(&|v| v["sampling"]["top_p"] = json!(5.0)), "top_p"),
        ("prompt over the cap", broken(&|v| v["prompt"] = json!("x".repeat(crate::gui::prompt_input::CHAR_CAP + 1))), "characters"),
        ("unknown step", broken(&|v| v["step"] = json!("blocks.0.nonsense")), "step"),
        ("layer out of range", broken(&|v| v["selection"]["layer"] = json!(99)), "layer 99"),
        ("head out of range", broken(&|v| v["selection"]["head"] = json!(9)), "head 9"),
        ("position out of range", broken(&|v| v["selection"]["position"] = json!(1_000_000_000u64)), "position"),
        ("step beyond the layers", broken(&|v| v["step"] = json!("blocks.5.softmax")), "beyond"),
        ("ablated head out of range", broken(&|v| v["ablated_heads"] = json!([[0, 40]])), "ablated head"),
        ("absolute model path", broken(&|v| v["model"]["path"] = json!("/etc")), "absolute"),
        ("model path with ..", broken(&|v| v["model"]["path"] = json!("../x")), "leaves"),
        ("training path with ..", broken(&|v| v["training"] = json!({"run": "a/../../b", "checkpoint": 0})), "leaves"),
        ("symlink out of the folder", broken(&|v| v["training"] = json!({"run": "escape", "checkpoint": 0})), "outside"),
        ("bad experiment panel", broken(&|v| v["experiments"]["mode"] = json!("nope")), "not a panel"),
        ("attribution beyond the layers", broken(&|v| v["experiments"]["attribution"]["result"] = json!({"ids": [1], "target": 2, "minus": null, "logit_bits": 0, "components": [{"name": "L99.mlp", "layer": 99, "head": null, "value_bits": 0}], "top": []})), "attribution"),
        ("wrong grid shape", broken(&|v| v["experiments"]["catalog"]["result"] = json!({"ids": [1], "previous_token_bits": [[0]], "first_token_bits": [], "induction_bits": [], "duplicate_bits": []})), "head-catalog"),
    ];
    let mut h = harness(app_on(fixture_model(), "3 1 4 1 5"));
    until_pass_done(&mut h);
    let before = (ready(&mut h).s.prompt.clone(), ready(&mut h).s.cursor, h.state().view, trace_bits(&mut h));
    for (what, text, needle) in cases {
        let p = write(&dir, &format!("{}.glassbox.json", what.replace(' ', "-")), &text);
        let err = open(&mut h, &p).expect_err(what);
        assert!(err.contains(needle), "{what}: {err}");
        let after = (ready(&mut h).s.prompt.clone(), ready(&mut h).s.cursor, h.state().view, trace_bits(&mut h));
        assert!(after == before, "{what}: the app changed");
    }
    // The valid file itself opens (the cases above fail for their one fault).
    let p = write(&dir, "good.glassbox.json", &good.to_string());
    open(&mut h, &p).expect("the unbroken file opens");
}

/// What a session saves as a view's mode is the mode it opens (the attention view's
/// `ablate` opens the picker beside the current mode, not a mode of its own).
#[test]
fn every_views_mode_is_saved_as_it_was_set() {
    let mut views = crate::gui::views::Views::default();
    let modes: Vec<&'static str> = views.iter().flat_map(|v| v.modes().iter().copied()).filter(|&m| m != "ablate").collect();
    assert!(modes.len() > 10);
    for m in modes {
        let id = views.set_mode(m).expect("a mode");
        let now = views.iter().find(|v| v.id() == id.0).and_then(|v| v.mode());
        // The Tasks view's code panel and the side-by-side view's `compare-*` (which choose
        // model B) are not saved yet.
        if m != "code" && !m.starts_with("compare-") {
            assert_eq!(now, Some(m), "view {} does not report its mode {m}", id.0);
        }
    }
}

#[test]
fn relative_paths_stay_inside_the_folder() {
    let dir = temp_dir("paths");
    std::fs::create_dir_all(dir.join("runs/induction")).expect("dir");
    assert!(paths::resolve_inside(&dir, "runs/induction").is_ok());
    assert!(paths::resolve_inside(&dir, "..").is_err());
    assert!(paths::resolve_inside(&dir, "/tmp").is_err());
    assert_eq!(paths::relative_inside(&dir, &dir.join("runs/induction")).as_deref(), Some("runs/induction"));
    assert_eq!(paths::relative_inside(&dir.join("runs"), &dir), None);
}

fn prompt_of(h: &mut Harness<'static, GlassboxApp>) -> String {
    ready(h).s.prompt.clone()
}

#[test]
fn workshop_pgdn_opens_the_next_session_and_the_prompt_is_locked() {
    let dir = temp_dir("workshop");
    let first = fixture_ids();
    let second = "5 6 7 8 9".to_string();
    for (name, prompt, step) in [("one", &first, "blocks.0.softmax"), ("two", &second, "blocks.1.softmax")] {
        let mut a = harness(app_on(fixture_model(), prompt));
        until_pass_done(&mut a);
        ready(&mut a).s.goto(step.parse::<Step>().expect("step"));
        save(&mut a, &dir.join(format!("{name}.glassbox.json")));
    }
    let list = json!({"workshop": "Attention", "sessions": ["one.glassbox.json", "two.glassbox.json"]});
    let wpath = write(&dir, "class.json", &list.to_string());

    let mut h = harness(app_on(fixture_model(), "1 2 3"));
    until_pass_done(&mut h);
    let ctx = h.ctx.clone();
    h.state_mut().open_workshop(&wpath, &ctx).expect("workshop opens");
    until_pass_done(&mut h);
    assert_eq!(prompt_of(&mut h), first);
    h.get_by_label("1 / 2: Attention");

    // The prompt box takes no typing.
    let input = h.get_by_role(egui::Role::TextInput);
    input.focus();
    input.type_text(" 42");
    h.run();
    assert_eq!(prompt_of(&mut h), first, "the prompt box is locked");
    // Ctrl+O does not open the model picker.
    h.key_press_modifiers(Modifiers::COMMAND, Key::O);
    h.run();
    assert!(!h.state().picker.open, "the model picker is locked");

    h.key_press(Key::PageDown);
    until_pass_done(&mut h);
    assert_eq!(h.state().workshop.as_ref().map(|w| w.index), Some(1));
    assert_eq!(prompt_of(&mut h), second);
    h.get_by_label("2 / 2: Attention");
    // At the end, PgDn stays; PgUp goes back.
    h.key_press(Key::PageDown);
    h.run();
    assert_eq!(h.state().workshop.as_ref().map(|w| w.index), Some(1));
    h.key_press(Key::PageUp);
    until_pass_done(&mut h);
    assert_eq!(prompt_of(&mut h), first);
    let _: ViewId = h.state().view;
}

#[test]
fn a_workshop_with_a_path_outside_its_folder_is_refused() {
    let dir = temp_dir("workshop-bad");
    let mut h = harness(app_on(fixture_model(), "1 2 3"));
    until_pass_done(&mut h);
    let ctx = h.ctx.clone();
    for (text, needle) in [
        (json!({"workshop": "x", "sessions": ["../a.glassbox.json"]}).to_string(), "leaves"),
        (json!({"workshop": "x", "sessions": []}).to_string(), "1 to"),
        ("{\"workshop\": ".to_string(), "line 1"),
    ] {
        let p = write(&dir, "w.json", &text);
        let err = h.state_mut().open_workshop(&p, &ctx).expect_err(&text);
        assert!(err.contains(needle), "{err}");
        assert!(h.state().workshop.is_none());
    }
}

/// The real SmolLM2 (tokenizer, chat template, the cache's recorded hashes as its identity):
/// a session saved on it reopens bit for bit.
#[test]
fn a_smollm2_session_reopens_bit_for_bit() {
    let Some(model) = super::smollm2() else { return };
    let dir = temp_dir("smollm2");
    let path = dir.join("capital.glassbox.json");
    let mut a = harness(app_on(model.clone(), ""));
    {
        let r = ready(&mut a);
        r.s.prompt = "The capital of France is".into();
        r.s.chat = true;
        r.s.ablate = vec![(3, 2)];
        r.s.run();
        r.s.goto("blocks.9.softmax".parse::<Step>().expect("step"));
    }
    until_pass_done(&mut a);
    save(&mut a, &path);
    let text = std::fs::read_to_string(&path).expect("saved");
    assert!(text.contains("smollm2-135m-instruct") && text.contains("\"chat\": true"), "{text}");
    let mut b = harness(app_on(model, "Hello"));
    until_pass_done(&mut b);
    open(&mut b, &path).expect("opens");
    until_pass_done(&mut b);
    assert!(ready(&mut b).s.chat);
    assert_eq!(ready(&mut b).s.cursor_step().to_string(), "blocks.9.softmax");
    assert!(trace_bits(&mut a) == trace_bits(&mut b), "the SmolLM2 trace differs after reopening");
}

/// The way a teacher does it: Ctrl+S, a typed path, Save; File → Open session… and
/// Ctrl+Shift+O open the window without the model picker (Ctrl+O's).
#[test]
fn ctrl_s_saves_through_the_window_and_ctrl_shift_o_opens_it() {
    use crate::gui::saved_session::dialog::Purpose;
    let dir = temp_dir("keys");
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    until_pass_done(&mut h);
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run();
    assert_eq!(h.state().session_dialog.purpose, Some(Purpose::Save));
    let path = dir.join("typed");
    h.state_mut().session_dialog.path_text = path.display().to_string();
    h.run();
    h.get_by_label("Save").click();
    h.run();
    let saved = dir.join("typed.glassbox.json");
    assert!(saved.is_file(), "{:?}", h.state().notices);
    assert_eq!(h.state().session_dialog.purpose, None);

    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::O);
    h.run();
    assert_eq!(h.state().session_dialog.purpose, Some(Purpose::Open));
    assert!(!h.state().picker.open, "Ctrl+Shift+O is not Ctrl+O");
    h.state_mut().session_dialog.purpose = None;
    h.run();
    h.get_by_label("File").click();
    h.run();
    h.get_by_label_contains("Open session…").click();
    h.run();
    assert_eq!(h.state().session_dialog.purpose, Some(Purpose::Open));
}
