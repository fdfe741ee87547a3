//! Embedding and RMSNorm: the vector of one position before and after, the RMS the model
//! divided by (`hook_scale`), and the learned scale g it multiplied with.

use egui::{RichText, Sense, Ui, pos2, vec2};
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use super::{Request, ViewCtx, fmt_val, max_abs, missing_ui, title_ui};
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, CachedTexture, ScaleOpts, vector_grid_ui};

mod layernorm;
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

/// The norm a step is about: (label, input hook, scale hook, output hook, learned scale).
struct NormSite {
    name: String,
    input: HookKey,
    scale: HookKey,
    output: HookKey,
    weight: Vec<f32>,
}

fn norm_site(cx: &ViewCtx<'_>, step: Step) -> NormSite {
    let m = &cx.s.model;
    let n = m.config.n_layers();
    let layer = cx.s.view_layer();
    match step {
        Step::LnFinal => NormSite {
            name: "ln_final".into(),
            input: HookKey::Block(n.saturating_sub(1), BlockHook::ResidPost),
            scale: HookKey::LnFinalScale,
            output: HookKey::LnFinalNormalized,
            weight: m.weights.norm.as_ref().map(|n| n.to_vec()).unwrap_or_default(),
        },
        Step::Layer(l, LayerOp::Ln2) => NormSite {
            name: format!("blocks.{l}.ln2"),
            input: HookKey::Block(l, BlockHook::ResidMid),
            scale: HookKey::Block(l, BlockHook::Ln2Scale),
            output: HookKey::Block(l, BlockHook::Ln2Normalized),
            weight: m
                .weights
                .layers
                .get(l)
                .map(|w| w.post_attention_layernorm.to_vec())
                .unwrap_or_default(),
        },
        _ => NormSite {
            name: format!("blocks.{layer}.ln1"),
            input: HookKey::Block(layer, BlockHook::ResidPre),
            scale: HookKey::Block(layer, BlockHook::Ln1Scale),
            output: HookKey::Block(layer, BlockHook::Ln1Normalized),
            weight: m
                .weights
                .layers
                .get(layer)
                .map(|w| w.input_layernorm.to_vec())
                .unwrap_or_default(),
        },
    }
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
        let c = &cx.s.model.config;
        title_ui(
            ui,
            cx,
            cx.tr(
                "Token embedding: one row of the embedding matrix per token",
                "嵌入：每个词元取嵌入矩阵的一行",
            ),
            &[key],
        );
        ui.label(cx.lang.tf(
            format!(
                "E has {} rows (the vocabulary) × {} columns (d_model).{}",
                c.vocab_size,
                c.d_model(),
                if c.tie_word_embeddings {
                    " Tied: the same matrix turns the last vector back into logits."
                } else {
                    ""
                }
            ),
            format!(
                "E 有 {} 行（词表）× {} 列（d_model）。{}",
                c.vocab_size,
                c.d_model(),
                if c.tie_word_embeddings {
                    "共享（tied）：输出 logits 时用的也是同一个矩阵。"
                } else {
                    ""
                }
            ),
        ));
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
            cx.requests.push(Request::Export(Figure::Heatmap {
                title: format!("hook_embed position {pos}"),
                rows: x.len().div_ceil(cols),
                cols,
                values: x.clone(),
                row_labels: Vec::new(),
                col_labels: Vec::new(),
                row_title: cx.lang.tf(
                    format!("dimensions, {cols} per row"),
                    format!("维度，每行 {cols} 个"),
                ),
                col_title: String::new(),
                map: Colormap::Diverging,
                scale: crate::gui::heatmap::ColorScale::symmetric(scale),
                unit: cx.tr("value", "数值").into(),
            }));
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
            (40.0, 360.0),
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

    fn norm_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let site = norm_site(cx, cx.s.cursor_step());
        let eps = cx.s.model.config.eps();
        title_ui(
            ui,
            cx,
            &format!("RMSNorm · {}", site.name),
            &[site.input, site.scale, site.output],
        );
        ui.label(
            RichText::new(format!(
                "RMSNorm(x) = x / √(mean(x·x) + eps) ⊙ g     eps = {eps:e}"
            ))
            .monospace(),
        );
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(cx.tr(
                "Unlike LayerNorm: no mean is subtracted and there is no bias, only a learned scale g per dimension.",
                "与 LayerNorm 不同：不减去均值，也没有偏置，只有每个维度一个可学习的缩放 g。",
            )).color(cx.theme.muted()));
            ui.checkbox(
                &mut self.compare_layernorm,
                cx.tr(
                    "Compare with LayerNorm on the same vector",
                    "在同一个向量上与 LayerNorm 对比",
                ),
            );
        });
        if missing_ui(ui, cx, site.output) {
            return;
        }
        if cx.grads() {
            // x, g and h side by side explain the forward division; for gradients, the
            // two maps the backward op connects: ∂loss/∂output in, ∂loss/∂input out.
            for (slot, key) in [site.output, site.input].into_iter().enumerate() {
                ui.label(RichText::new(format!("∂loss/∂{key}")).strong());
                self.all_positions_ui(ui, cx, key, slot);
            }
            return;
        }
        if self.compare_layernorm {
            let pos = cx.s.sel.position.min(cx.s.n_tokens().saturating_sub(1));
            if let Some(x) = row2(cx, site.input, pos) {
                layernorm::compare_ui(ui, cx, &site.name, site.input, &x, &site.weight, pos);
            }
            return;
        }
        let pos = cx.s.sel.position.min(cx.s.n_tokens().saturating_sub(1));
        let (Some(x), Some(h)) = (row2(cx, site.input, pos), row2(cx, site.output, pos)) else {
            return;
        };
        let rms =
            cx.s.trace
                .get(site.scale)
                .and_then(|t| t.data.get(ndarray::IxDyn(&[pos])).copied());
        let cols = grid_cols(x.len());
        let cell = ((ui.available_width() - 60.0) / 3.0 / cols as f32).clamp(4.0, 12.0);
        let (sx, sg, sh) = (
            max_abs(x.iter().copied()),
            max_abs(site.weight.iter().copied()),
            max_abs(h.iter().copied()),
        );
        let mut hovered = None;
        ui.horizontal_top(|ui| {
            let mut grid = |ui: &mut Ui, title: String, v: &[f32], scale: f32, map: Colormap| {
                ui.vertical(|ui| {
                    ui.label(RichText::new(title).strong());
                    let (_, hov) = vector_grid_ui(
                        ui,
                        v,
                        cols,
                        cell,
                        |x| {
                            if map == Colormap::Diverging {
                                map.signed(x, scale)
                            } else {
                                map.seq(x, scale)
                            }
                        },
                        self.hovered_dim,
                        &cx.theme,
                    );
                    hovered = hovered.or(hov);
                    ui.label(RichText::new(format!("max |·| = {}", fmt_val(scale))).small());
                });
            };
            grid(
                ui,
                cx.lang.tf(
                    format!("x (before), position {pos}"),
                    format!("x（归一化前），位置 {pos}"),
                ),
                &x,
                sx,
                Colormap::Diverging,
            );
            grid(
                ui,
                cx.tr(
                    "÷ RMS, then ⊙ g (learned scale)",
                    "÷ RMS，再 ⊙ g（可学习缩放）",
                )
                .to_string(),
                &site.weight,
                sg,
                Colormap::Viridis,
            );
            grid(
                ui,
                cx.tr("= h (after)", "= h（归一化后）").to_string(),
                &h,
                sh,
                Colormap::Diverging,
            );
        });
        self.hovered_dim = hovered;
        heatmap::colorbar_ui(
            ui,
            Colormap::Diverging,
            &crate::gui::heatmap::ColorScale::symmetric(1.0),
            cx.tr(
                "x and h: value ÷ the grid's max |·|; g: viridis from 0 to its max",
                "x 与 h：数值 ÷ 该格图的最大 |·|；g：从 0 到最大值（viridis）",
            ),
            "",
            cx.lang,
            &cx.theme,
        );
        let line = match (rms, hovered) {
            (Some(r), Some(i)) => format!(
                "dim {i}:  x = {}   / RMS {}   × g = {}   →   h = {}",
                fmt_val(x[i]),
                fmt_val(r),
                fmt_val(site.weight.get(i).copied().unwrap_or(f32::NAN)),
                fmt_val(h[i])
            ),
            (Some(r), None) => cx.lang.tf(
                format!("RMS of this position ({}) = {}", site.scale, fmt_val(r)),
                format!("该位置的 RMS（{}）= {}", site.scale, fmt_val(r)),
            ),
            _ => String::new(),
        };
        ui.label(RichText::new(line).monospace().size(15.0));
        ui.separator();
        self.rms_bars_ui(ui, cx, site.scale);
    }

    /// The RMS of every position; click one to select it.
    fn rms_bars_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, key: HookKey) {
        let Some(t) = cx.s.trace.get(key) else { return };
        let values: Vec<f32> = t.data.iter().copied().collect();
        ui.label(
            RichText::new(cx.lang.tf(
                format!("RMS per position ({key})"),
                format!("每个位置的 RMS（{key}）"),
            ))
            .strong(),
        );
        let n = values.len().max(1);
        let w = ui.available_width().min(900.0);
        let (outer, resp) = ui.allocate_exact_size(vec2(w, 110.0), Sense::click());
        // A y axis with ticks: the bar heights are RMS values, not just "taller".
        let axis_w = 48.0;
        let rect = egui::Rect::from_min_max(outer.min + vec2(axis_w, 6.0), outer.max - vec2(0.0, 4.0));
        let painter = ui.painter_at(outer.expand(2.0));
        let max = max_abs(values.iter().copied()).max(1e-9);
        let top = nice_ceiling(max);
        let font = egui::FontId::proportional(11.0);
        for k in 0..=4 {
            let v = top * k as f32 / 4.0;
            let y = rect.max.y - v / top * rect.height();
            painter.line_segment(
                [pos2(rect.min.x - 4.0, y), pos2(rect.max.x, y)],
                egui::Stroke::new(if k == 0 { 1.0 } else { 0.5 }, cx.theme.faint()),
            );
            painter.text(
                pos2(rect.min.x - 6.0, y),
                egui::Align2::RIGHT_CENTER,
                crate::gui::scale::short(v),
                font.clone(),
                cx.theme.text(),
            );
        }
        painter.text(
            pos2(outer.min.x, outer.min.y),
            egui::Align2::LEFT_TOP,
            "RMS",
            font.clone(),
            cx.theme.muted(),
        );
        let bw = rect.width() / n as f32;
        for (i, v) in values.iter().enumerate() {
            let hgt = v / top * rect.height();
            let color = if i == cx.s.sel.position {
                cx.theme.highlight()
            } else {
                cx.theme.op_color(crate::gui::theme::OpFamily::Norm)
            };
            let x = rect.min.x + i as f32 * bw;
            painter.rect_filled(
                egui::Rect::from_min_max(
                    pos2(x, rect.max.y - hgt),
                    pos2(x + (bw - 1.0).max(1.0), rect.max.y),
                ),
                0.0,
                color,
            );
        }
        let rect = egui::Rect::from_min_max(pos2(rect.min.x, outer.min.y), outer.max);
        let idx = |p: egui::Pos2| (((p.x - rect.min.x) / bw).floor() as usize).min(n - 1);
        if let Some(p) = resp.hover_pos() {
            let i = idx(p);
            let tok = cx.s.token_texts.get(i).cloned().unwrap_or_default();
            resp.clone()
                .on_hover_text(format!("{key}[{i}] “{tok}” = {}", fmt_val(values[i])));
        }
        if resp.clicked()
            && let Some(p) = resp.interact_pointer_pos()
        {
            cx.s.sel.position = idx(p);
        }
    }
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
