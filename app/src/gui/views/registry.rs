//! The `View` trait (in the style of egui's demo `View`/`Demo`), the one list of views
//! ([`registry`]) and [`Views`], the app's instances of them.
//!
//! Everything that names views reads [`registry`]: the tab row, a lesson's `view = ".."`
//! and `mode = ".."`, the script's `view`/`mode` commands, which view explains a step, the
//! saved session's view. Adding a view takes one file (its state, `ui`, and an `impl View`
//! block at the end with its `ID`) and one line in [`registry`] (plus its `pub mod` line
//! in `views/mod.rs`).

use std::any::Any;
use std::sync::LazyLock;

use egui::Ui;
use glassbox_engine::Step;
use glassbox_engine::long::recompute::Detail;
use glassbox_engine::program::op_table::OpView;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    ViewCtx, attention, diagram, embedding_norm, experiments, gradients, mlp, output, qkv_rope,
    residual, side_by_side, tasks, timeline, tokens, training,
};
use crate::gui::i18n::Lang;
use crate::gui::session::Session;

/// The views, in tab order: the one place a view is listed.
pub fn registry() -> Vec<Box<dyn View>> {
    vec![
        Box::new(diagram::DiagramView::default()),
        Box::new(tokens::TokensView::default()),
        Box::new(embedding_norm::EmbeddingView::default()),
        Box::new(embedding_norm::RmsNormView::default()),
        Box::new(qkv_rope::QkvRopeView::default()),
        Box::new(attention::AttentionView::default()),
        Box::new(mlp::MlpView::default()),
        Box::new(residual::ResidualView::default()),
        Box::new(output::OutputView::default()),
        Box::new(tasks::TasksView::default()),
        Box::new(training::TrainingView::default()),
        Box::new(experiments::ExperimentsView::default()),
        Box::new(side_by_side::SideBySideView::default()),
    ]
}

/// A tab of the central panel. Only `id`, `title` and `ui` are required; the rest say what
/// the app asks of a view beyond drawing it.
pub trait View: Any {
    /// The name lessons, scripts and saved sessions use: lowercase, unique.
    fn id(&self) -> &'static str;

    fn title(&self, lang: Lang) -> &'static str;

    /// The tab's title for the loaded model (the norm view says LayerNorm for GPT-2 and
    /// BERT); lessons and scripts name views by [`View::title`].
    fn title_for(&self, lang: Lang, _s: &Session) -> &'static str {
        self.title(lang)
    }

    /// [`View::short_title`] for the loaded model.
    fn short_title_for(&self, lang: Lang, _s: &Session) -> &'static str {
        self.short_title(lang)
    }

    /// The title on a narrow tab row.
    fn short_title(&self, lang: Lang) -> &'static str {
        self.title(lang)
    }

    /// The sub-panels a lesson action can open (`mode = ".."`); unique across views, so a
    /// mode also names its view.
    fn modes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Opens one of [`View::modes`]; false if it is not one.
    fn set_mode(&mut self, _mode: &str) -> bool {
        false
    }

    /// Which of [`View::modes`] is open now, if it keeps one (saved in session files).
    fn mode(&self) -> Option<&'static str> {
        None
    }

    /// The ops it explains (the engine's op table names them): moving the cursor to one
    /// opens this view.
    fn explains(&self) -> &'static [OpView] {
        &[]
    }

    /// Whether it can show a training step's gradients in place of the activations: the
    /// views that draw hook tensors (the others draw tokens, probabilities or text).
    fn shows_gradients(&self) -> bool {
        false
    }

    /// What a long pass must recompute for this view at the cursor.
    fn detail_needed(&self, _s: &Session) -> Option<Detail> {
        None
    }

    /// Kept when the app opens another model (a training run must outlive its checkpoint).
    fn keeps_across_models(&self) -> bool {
        false
    }

    /// Every frame, shown or not: collect what a background job reported.
    fn tick(&mut self, _ctx: &egui::Context, _s: &mut Session) {}

    /// Still working (a script waits for it); `shown`: it is the current view.
    fn busy(&self, _s: &Session, _shown: bool) -> bool {
        false
    }

    fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>);
}

/// A view by its [`View::id`]. Saved as the id; reads the old saved form too (the variant
/// name of the former `ViewKind` enum: "Attention", "RmsNorm").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewId(pub &'static str);

/// What the app asks of views without their state (titles, the step → view map),
/// read once from [`registry`].
pub struct ViewInfo {
    pub id: ViewId,
    titles: Vec<(Lang, &'static str)>,
    pub modes: &'static [&'static str],
    pub explains: &'static [OpView],
    pub shows_gradients: bool,
}

static CATALOG: LazyLock<Vec<ViewInfo>> = LazyLock::new(|| {
    registry()
        .iter()
        .map(|v| ViewInfo {
            id: ViewId(v.id()),
            titles: Lang::ALL.iter().map(|&l| (l, v.title(l))).collect(),
            modes: v.modes(),
            explains: v.explains(),
            shows_gradients: v.shows_gradients(),
        })
        .collect()
});

/// Every registered view, in tab order.
pub fn catalog() -> &'static [ViewInfo] {
    &CATALOG
}

impl ViewId {
    /// The registered view named `id` exactly (a lesson's `view = ".."`).
    pub fn from_id(id: &str) -> Option<Self> {
        catalog().iter().map(|v| v.id).find(|v| v.0 == id)
    }

    /// The view that explains `step` (the engine's op table says which).
    pub fn for_step(step: Step) -> Option<Self> {
        let op = step.spec().view;
        catalog().iter().find(|v| v.explains.contains(&op)).map(|v| v.id)
    }

    /// The view a mode belongs to.
    pub fn for_mode(mode: &str) -> Option<Self> {
        catalog().iter().find(|v| v.modes.contains(&mode)).map(|v| v.id)
    }

    pub fn info(self) -> Option<&'static ViewInfo> {
        catalog().iter().find(|v| v.id == self)
    }

    /// The tab title; an unregistered id shows as itself.
    pub fn title(self, lang: Lang) -> &'static str {
        let title = self.info().and_then(|v| v.titles.iter().find(|t| t.0 == lang));
        title.map_or(self.0, |t| t.1)
    }

    pub fn shows_gradients(self) -> bool {
        self.info().is_some_and(|v| v.shows_gradients)
    }
}

impl Serialize for ViewId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ViewId {
    /// The id, or the old enum's variant name; a view this build does not have (a newer
    /// version's) opens the Tokens view rather than failing the whole saved state.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(catalog()
            .iter()
            .map(|v| v.id)
            .find(|v| v.0.eq_ignore_ascii_case(&name))
            .unwrap_or(tokens::ID))
    }
}

/// Every view's state, kept across frames (texture caches, modes), in [`registry`] order.
pub struct Views {
    list: Vec<Box<dyn View>>,
    /// The step strip under every view: not a tab.
    pub timeline: timeline::TimelineView,
}

impl Default for Views {
    fn default() -> Self {
        Self { list: registry(), timeline: timeline::TimelineView }
    }
}

impl Views {
    /// The views in tab order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn View> {
        self.list.iter().map(|v| &**v)
    }

    /// A view beyond the registry's (tests: the app reads its list, not a fixed set).
    #[cfg(test)]
    pub fn push(&mut self, view: Box<dyn View>) {
        self.list.push(view);
    }

    /// A view by its type, for what only that view does (the training run, the tasks).
    pub fn get<T: View>(&self) -> Option<&T> {
        self.list.iter().find_map(|v| {
            let any: &dyn Any = &**v;
            any.downcast_ref::<T>()
        })
    }

    pub fn get_mut<T: View>(&mut self) -> Option<&mut T> {
        self.list.iter_mut().find_map(|v| {
            let any: &mut dyn Any = &mut **v;
            any.downcast_mut::<T>()
        })
    }

    /// The title of view `id` for the loaded model (the status bar names the step's view as
    /// its tab does: LayerNorm for GPT-2).
    pub fn title_of(&self, id: ViewId, lang: Lang, s: &Session) -> &'static str {
        self.iter().find(|v| v.id() == id.0).map_or_else(|| id.title(lang), |v| v.title_for(lang, s))
    }

    fn by_id(&mut self, id: ViewId) -> Option<&mut Box<dyn View>> {
        self.list.iter_mut().find(|v| v.id() == id.0)
    }

    /// Opens sub-panel `mode` of its view; returns that view (`None`: no such mode).
    pub fn set_mode(&mut self, mode: &str) -> Option<ViewId> {
        let v = self.list.iter_mut().find(|v| v.modes().contains(&mode))?;
        v.set_mode(mode).then(|| ViewId(v.id()))
    }

    /// Takes over from `old` (the previous model's views) those that outlive a model.
    pub fn keep_from(&mut self, old: &mut Views) {
        for v in old.list.iter_mut().filter(|v| v.keeps_across_models()) {
            if let Some(new) = self.by_id(ViewId(v.id())) {
                std::mem::swap(new, v);
            }
        }
    }

    /// Once a frame, before anything is drawn.
    pub fn tick(&mut self, ctx: &egui::Context, s: &mut Session) {
        for v in &mut self.list {
            v.tick(ctx, s);
        }
    }

    /// Whether any view is still working; `shown` is the current view.
    pub fn busy(&self, s: &Session, shown: ViewId) -> bool {
        self.list.iter().any(|v| v.busy(s, v.id() == shown.0))
    }

    pub fn detail_needed(&mut self, id: ViewId, s: &Session) -> Option<Detail> {
        self.by_id(id)?.detail_needed(s)
    }

    /// The central view. A view that draws hook tensors shows a training step's gradients
    /// instead of the activations when they are switched on (see `gradients`).
    pub fn show(&mut self, id: ViewId, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let Some(view) = self.by_id(id) else { return };
        let grads = view.shows_gradients() && gradients::bar_ui(ui, cx) && cx.s.show_gradients();
        view.ui(ui, cx);
        if grads {
            cx.s.hide_gradients();
        }
    }
}
