//! The view registry is the one list of views: the tab row, modes, the step → view map,
//! lessons' `view`/`mode` names and saved sessions all read it.

use std::collections::BTreeSet;

use egui::Ui;
use egui_kittest::kittest::Queryable;
use glassbox_engine::program::op_table::OpView;

use super::{app_on, fixture_model, harness, repo_root};
use crate::gui::i18n::Lang;
use crate::gui::lessons::Library;
use crate::gui::state::PersistedState;
use crate::gui::views::{View, ViewCtx, ViewId, registry};

#[test]
fn every_registered_view_has_a_tab_that_opens_it() {
    let mut app = app_on(fixture_model(), "");
    // Only the tab row and the view: the diagram and lessons name views too.
    (app.show_diagram, app.show_lesson) = (false, false);
    let mut h = harness(app);
    h.run();
    let views = registry::catalog();
    assert_eq!(views.len(), registry::registry().len());
    for v in views {
        h.get_by_label(v.id.title(Lang::En)).click();
        h.run();
        assert_eq!(h.state().view, v.id, "the `{}` tab opens its view", v.id.0);
    }
    // Chinese titles too.
    h.state_mut().lang = Lang::Zh;
    h.run();
    for v in views {
        h.get_by_label(v.id.title(Lang::Zh));
    }
}

#[test]
fn every_mode_opens_its_view_and_names_one_view() {
    let mut h = harness(app_on(fixture_model(), ""));
    h.run();
    let mut seen = BTreeSet::new();
    for v in registry::catalog() {
        for &m in v.modes {
            assert!(seen.insert(m), "mode `{m}` belongs to two views");
            assert_eq!(ViewId::for_mode(m), Some(v.id));
            let app = h.state_mut();
            app.view = ViewId("tokens");
            let opened = app.ready().expect("ready").views.set_mode(m);
            assert_eq!(opened, Some(v.id), "mode `{m}` opens `{}`", v.id.0);
            app.view = v.id;
            h.run();
        }
    }
    assert!(seen.len() >= 20, "only {} modes", seen.len());
    assert_eq!(h.state_mut().ready().expect("ready").views.set_mode("no-such-mode"), None);
}

#[test]
fn lesson_views_and_modes_resolve_through_the_registry() {
    let lib = Library::load(Some(repo_root().join("lessons")));
    let mut views = BTreeSet::new();
    for l in lib.en.iter().chain(&lib.zh) {
        let v = l.view().unwrap_or_else(|| panic!("{}: view `{}` is not registered", l.id(), l.front.view));
        assert_eq!(v.0, l.front.view);
        views.insert(v.0);
        for m in l.front.actions.iter().filter_map(|a| a.mode.as_deref()) {
            assert!(ViewId::for_mode(m).is_some(), "{}: mode `{m}` is not registered", l.id());
        }
    }
    assert!(views.len() >= 8, "lessons open only {views:?}");
}

#[test]
fn every_op_is_explained_by_exactly_one_view() {
    use OpView::*;
    for op in [Embedding, RmsNorm, Qkv, Attention, Residual, Mlp, Output] {
        let n = registry::catalog().iter().filter(|v| v.explains.contains(&op)).count();
        assert_eq!(n, 1, "{op:?} is explained by {n} views");
    }
    let ids: BTreeSet<_> = registry::catalog().iter().map(|v| v.id.0).collect();
    assert_eq!(ids.len(), registry::catalog().len(), "view ids are unique");
}

#[test]
fn saved_views_reopen_in_the_old_and_the_new_form() {
    let parse = |json: &str| serde_json::from_str::<ViewId>(json).expect("parses");
    // The old `ViewKind` enum was saved by its variant name.
    assert_eq!(parse("\"Attention\""), crate::gui::views::attention::ID);
    assert_eq!(parse("\"RmsNorm\""), crate::gui::views::embedding_norm::RMSNORM_ID);
    assert_eq!(parse("\"Overview\""), crate::gui::views::diagram::ID);
    assert_eq!(parse("\"qkv\""), crate::gui::views::qkv_rope::ID);
    // A view this build lacks opens the default view instead of failing the whole file.
    assert_eq!(parse("\"SideBySide\""), crate::gui::views::tokens::ID);
    assert_eq!(serde_json::to_string(&crate::gui::views::mlp::ID).expect("writes"), "\"mlp\"");
    let old = r#"{"prompt": "hi", "view": "Experiments"}"#;
    let st: PersistedState = serde_json::from_str(old).expect("an old state file parses");
    assert_eq!(st.view, crate::gui::views::experiments::ID);
    let text = serde_json::to_string(&st).expect("writes");
    assert_eq!(serde_json::from_str::<PersistedState>(&text).expect("round trip"), st);
}

/// A view that is in no enum or table: registering it is all it takes to get a tab, a mode
/// and the central panel.
#[derive(Default)]
struct ProbeView {
    wide: bool,
}

impl View for ProbeView {
    fn id(&self) -> &'static str {
        "probe"
    }

    fn title(&self, lang: Lang) -> &'static str {
        lang.tr("Probe", "探针")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["probe-wide"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        self.wide = mode == "probe-wide";
        self.wide
    }

    fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.label(if self.wide { "probe body (wide)" } else { "probe body" });
        ui.label(format!("{} tokens", cx.s.n_tokens()));
    }
}

#[test]
fn a_registered_view_gets_a_tab_a_mode_and_the_panel() {
    let mut h = harness(app_on(fixture_model(), ""));
    h.run();
    assert!(h.query_by_label("Probe").is_none());
    h.state_mut().ready().expect("ready").views.push(Box::new(ProbeView::default()));
    h.run();
    h.get_by_label("Probe").click();
    h.run();
    assert_eq!(h.state().view, ViewId("probe"));
    h.get_by_label("probe body");
    let opened = h.state_mut().ready().expect("ready").views.set_mode("probe-wide");
    assert_eq!(opened, Some(ViewId("probe")));
    h.run();
    h.get_by_label("probe body (wide)");
}
