//! Embedding and the norms: the token's row of E, Gemma's √d_model scale and learned
//! positions (`positions`); a norm's vector before and after, the statistic the model
//! divided by (`hook_scale`) and the scale (and bias) it applied (`norm`).

use egui::{RichText, Ui};
use glassbox_engine::HookKey;

use super::{Request, ViewCtx, fmt_val, max_abs, missing_ui, title_ui};
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, CachedTexture, ScaleOpts, vector_grid_ui};

mod layernorm;
mod norm;
mod positions;
use crate::gui::theme::Colormap;

#[derive(Default)]
pub struct EmbeddingNormView {
    /// The all-positions map (two while gradients are shown: ∂input and ∂output).
    all_tex: [CachedTexture; 2],
    pub all_scale: ScaleOpts,
    /// Dimension under the pointer (shared by the three grids).
    pub hovered_dim: Option<usize>,
    /// Show LayerNorm (the article) beside RMSNorm on the same vector (§1.4).
    pub compare_layernorm: bool,
}

/// The smallest 1, 2 or 5 × 10^k at or above `v`: the top of a y axis.
pub fn nice_ceiling(v: f32) -> f32 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f32.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|c| *c >= v * 0.999)
        .unwrap_or(10.0 * mag)
}

/// Grid width for a d_model vector: square when d_model is a square (576 = 24²).
fn grid_cols(d: usize) -> usize {
    let r = (d as f64).sqrt().round() as usize;
    if r * r == d { r } else { 32 }
}

fn row2(cx: &ViewCtx<'_>, key: HookKey, pos: usize) -> Option<Vec<f32>> {
    let t = cx.s.trace.get(key)?.as_2d()?;
    (pos < t.nrows()).then(|| t.row(pos).to_vec())
}

impl EmbeddingNormView {
    fn embedding_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let key = HookKey::Embed;
        embedding_header_ui(ui, cx, key);
        if missing_ui(ui, cx, key) {
            return;
        }
        let pos = cx.s.sel.position.min(cx.s.n_tokens().saturating_sub(1));
        let Some(x) = row2(cx, key, pos) else { return };
        let id = cx.s.trace.token_ids.get(pos).copied().unwrap_or(0);
        let p_abs = cx.pos(pos);
        ui.label(
            RichText::new(cx.lang.tf(
                format!(
                    "Position {p_abs} “{}” → row {id} of E",
                    cx.s.token_texts.get(pos).cloned().unwrap_or_default()
                ),
                format!(
                    "位置 {p_abs}“{}” → E 的第 {id} 行",
                    cx.s.token_texts.get(pos).cloned().unwrap_or_default()
                ),
            ))
            .strong(),
        );
        let scale = max_abs(x.iter().copied());
        let cols = grid_cols(x.len());
        let (resp, hovered) = vector_grid_ui(
            ui,
            &x,
            cols,
            14.0,
            |v| Colormap::Diverging.signed(v, scale),
            None,
            &cx.theme,
        );
        if let Some(i) = hovered {
            resp.on_hover_text(format!("{}hook_embed[{pos}, {i}] = {}", cx.d(), fmt_val(x[i])));
        }
        let unit = if cx.grads() { "∂loss/∂" } else { cx.tr("value", "数值") };
        heatmap::legend_ui(ui, Colormap::Diverging, -scale, scale, unit, &cx.theme);
        positions::after_embedding_ui(ui, cx, pos);
        ui.separator();
        ui.label(
            RichText::new(cx.tr(
                "All positions (rows) × d_model (columns); click a row to select it",
                "所有位置（行）× d_model（列）；点击一行选中该位置",
            ))
            .strong(),
        );
        self.all_positions_ui(ui, cx, key, 0);
        if cx.export {
            export_row(cx, &x, cols, pos, scale);
        }
    }

    fn all_positions_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, key: HookKey, slot: usize) {
        let Some(t) = cx.s.trace.get(key).and_then(|t| t.as_2d()) else {
            return;
        };
        heatmap::scale_controls_ui(ui, &mut self.all_scale, true, cx.lang);
        let width = ui.available_width().min(1000.0);
        let (hm, scale, _, first) = super::positions_heatmap_ui(
            ui,
            cx,
            &mut self.all_tex[slot],
            key,
            t,
            self.all_scale,
            width,
            16.0,
            (40.0, 360.0f32.min(ui.available_height() - heatmap::colorbar_height(ui) - 8.0).max(40.0)),
        );
        if let Some((r, c)) = hm.hovered {
            let r = r + first;
            hm.response
                .clone()
                .on_hover_text(format!("{}{key}[{r}, {c}] = {}", cx.d(), fmt_val(t[[r, c]])));
        }
        if let Some((r, _)) = hm.clicked {
            cx.s.sel.position = r + first;
        }
        let note = scale.note(cx.lang == crate::gui::i18n::Lang::Zh, first > 0);
        let unit = if cx.grads() { "∂loss/∂" } else { cx.tr("value", "数值") };
        heatmap::colorbar_ui(ui, Colormap::Diverging, &scale, unit, &note, cx.lang, &cx.theme);
    }
}

/// The title, and E's size (and whether the output head shares it).
fn embedding_header_ui(ui: &mut Ui, cx: &ViewCtx<'_>, key: HookKey) {
    let c = &cx.s.model.config;
    title_ui(ui, cx, cx.tr("Token embedding: one row of the embedding matrix per token", "嵌入：每个词元取嵌入矩阵的一行"), &[key]);
    let (tied_en, tied_zh) = if c.tie_word_embeddings {
        (" Tied: the same matrix turns the last vector back into logits.", "共享（tied）：输出 logits 时用的也是同一个矩阵。")
    } else {
        ("", "")
    };
    ui.label(cx.lang.tf(
        format!("E has {} rows (the vocabulary) × {} columns (d_model).{tied_en}", c.vocab_size, c.d_model()),
        format!("E 有 {} 行（词表）× {} 列（d_model）。{tied_zh}", c.vocab_size, c.d_model()),
    ));
}

/// File → Export: this position's row of E as a grid.
fn export_row(cx: &mut ViewCtx<'_>, x: &[f32], cols: usize, pos: usize, scale: f32) {
    cx.requests.push(Request::Export(Figure::Heatmap {
        title: format!("hook_embed position {pos}"),
        rows: x.len().div_ceil(cols),
        cols,
        values: x.to_vec(),
        row_labels: Vec::new(),
        col_labels: Vec::new(),
        row_title: cx.lang.tf(format!("dimensions, {cols} per row"), format!("维度，每行 {cols} 个")),
        col_title: String::new(),
        map: Colormap::Diverging,
        scale: crate::gui::heatmap::ColorScale::symmetric(scale),
        unit: cx.tr("value", "数值").into(),
    }));
}

/// The Embedding tab: [`EmbeddingNormView`]'s embedding page.
#[derive(Default)]
pub struct EmbeddingView(pub EmbeddingNormView);

/// The RMSNorm tab: [`EmbeddingNormView`]'s norm page (and LayerNorm beside it).
#[derive(Default)]
pub struct RmsNormView(pub EmbeddingNormView);

/// The view's name in lessons, scripts and saved sessions.
pub const EMBEDDING_ID: super::ViewId = super::ViewId("embedding");

impl super::View for EmbeddingView {
    fn id(&self) -> &'static str {
        EMBEDDING_ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Embedding", "嵌入")
    }

    fn short_title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Embed", "嵌入")
    }

    fn explains(&self) -> &'static [glassbox_engine::program::op_table::OpView] {
        &[glassbox_engine::program::op_table::OpView::Embedding]
    }

    fn shows_gradients(&self) -> bool {
        true
    }

    /// At the embedding nothing is recomputed: its row is kept.
    fn detail_needed(&self, s: &crate::gui::session::Session) -> Option<glassbox_engine::long::recompute::Detail> {
        (s.cursor_step() != glassbox_engine::Step::Embed).then(|| s.detail_for_view(false))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        self.0.embedding_ui(ui, cx);
    }
}

/// The view's name in lessons, scripts and saved sessions.
pub const RMSNORM_ID: super::ViewId = super::ViewId("rmsnorm");

impl super::View for RmsNormView {
    fn id(&self) -> &'static str {
        RMSNORM_ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("RMSNorm", "RMSNorm")
    }

    fn title_for(&self, lang: crate::gui::i18n::Lang, s: &crate::gui::session::Session) -> &'static str {
        match s.model.arch.norm {
            glassbox_engine::load::arch::NormKind::Layer => "LayerNorm",
            glassbox_engine::load::arch::NormKind::Rms => self.title(lang),
        }
    }

    fn short_title_for(&self, lang: crate::gui::i18n::Lang, s: &crate::gui::session::Session) -> &'static str {
        self.title_for(lang, s)
    }

    fn modes(&self) -> &'static [&'static str] {
        &["rmsnorm", "layernorm"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "rmsnorm" => self.0.compare_layernorm = false,
            "layernorm" => self.0.compare_layernorm = true,
            _ => return false,
        }
        true
    }

    fn mode(&self) -> Option<&'static str> {
        Some(if self.0.compare_layernorm { "layernorm" } else { "rmsnorm" })
    }

    fn explains(&self) -> &'static [glassbox_engine::program::op_table::OpView] {
        &[glassbox_engine::program::op_table::OpView::RmsNorm]
    }

    fn shows_gradients(&self) -> bool {
        true
    }

    /// At the embedding nothing is recomputed: its row is kept.
    fn detail_needed(&self, s: &crate::gui::session::Session) -> Option<glassbox_engine::long::recompute::Detail> {
        (s.cursor_step() != glassbox_engine::Step::Embed).then(|| s.detail_for_view(false))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        self.0.norm_ui(ui, cx);
    }
}
