//! The residual stream: its size per layer and position, how much each attention and MLP
//! sublayer writes into it, and the logit lens (the model's best guess if it stopped after
//! each sublayer). Norms and the lens come from the engine's analysis functions.

use egui::{Align2, FontId, RichText, ScrollArea, Sense, Stroke, StrokeKind, Ui, pos2, vec2};
use glassbox_engine::{LayerOp, Step};

use super::{Request, ViewCtx, fmt_val, visible};
use crate::gui::export::Figure;
use crate::gui::heatmap::{
    self, Axes, CachedTexture, ColorScale, ScaleMode, ScaleOpts, heatmap_ui, key_of, short_label,
};
use crate::gui::theme::Colormap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResidualMode {
    #[default]
    Norms,
    Writes,
    Lens,
}

pub struct ResidualView {
    pub mode: ResidualMode,
    /// Log by default: the first position's stream grows far beyond the rest, and a linear
    /// scale would show one bright column and black elsewhere.
    pub norm_scale: ScaleOpts,
    pub write_scale: ScaleOpts,
    /// The logit lens after attention as well as after each layer (twice the rows).
    pub lens_after_attention: bool,
    norm_tex: CachedTexture,
    write_tex: [CachedTexture; 2],
}

impl Default for ResidualView {
    fn default() -> Self {
        Self {
            mode: ResidualMode::default(),
            norm_scale: ScaleOpts::new(ScaleMode::Log, false),
            write_scale: ScaleOpts::new(ScaleMode::Log, false),
            lens_after_attention: false,
            norm_tex: CachedTexture::default(),
            write_tex: Default::default(),
        }
    }
}

/// "L3" / "第 3 层": a layer's row label.
pub fn layer_label(lang: crate::gui::i18n::Lang, l: usize) -> String {
    lang.tf(format!("L{l}"), format!("第 {l} 层"))
}

impl ResidualView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            ui.heading(cx.tr("Residual stream", "残差流（residual stream）"));
            if cx.presenting {
                let name = match self.mode {
                    ResidualMode::Norms => cx.tr("norm per layer", "每层的范数"),
                    ResidualMode::Writes => cx.tr("attention / MLP writes", "注意力 / MLP 写入量"),
                    ResidualMode::Lens => cx.tr("logit lens", "logit 透镜"),
                };
                ui.heading(format!("· {name}"));
                return;
            }
            for (m, en, zh) in [
                (ResidualMode::Norms, "Norm per layer", "每层的范数"),
                (
                    ResidualMode::Writes,
                    "Attention / MLP writes",
                    "注意力 / MLP 写入量",
                ),
                (ResidualMode::Lens, "Logit lens", "logit 透镜"),
            ] {
                ui.selectable_value(&mut self.mode, m, cx.tr(en, zh));
            }
        });
        if !cx.presenting {
            ui.label(RichText::new(cx.tr(
                "x ← x + attention(norm(x)), then x ← x + MLP(norm(x)): each sublayer adds to the stream; nothing overwrites it.",
                "x ← x + 注意力(norm(x))，然后 x ← x + MLP(norm(x))：每个子层都是往残差流里“加”，不会覆盖它。",
            )).color(cx.theme.muted()));
        }
        if cx.s.analysis.is_none() {
            super::missing_ui(ui, cx, glassbox_engine::HookKey::Logits);
            if !cx.s.running && cx.s.n_tokens() > 0 {
                ui.label(cx.tr(
                    "These need the whole pass: press End.",
                    "这些需要完整的前向传播：请按 End。",
                ));
            }
            return;
        }
        match self.mode {
            ResidualMode::Norms => self.norms_ui(ui, cx),
            ResidualMode::Writes => self.writes_ui(ui, cx),
            ResidualMode::Lens => {
                if !cx.activations_only_ui(ui) {
                    lens_ui(ui, cx, &mut self.lens_after_attention);
                }
            }
        }
    }

    /// Layer row the cursor is about (if it is at a residual add).
    fn cursor_row(cx: &ViewCtx<'_>, writes: Option<usize>) -> Option<usize> {
        match (cx.s.cursor_step(), writes) {
            (Step::Layer(l, LayerOp::AttnAdd), Some(0)) => Some(l),
            (Step::Layer(l, LayerOp::MlpAdd), Some(1)) => Some(l),
            (Step::Layer(l, LayerOp::MlpAdd), None) => Some(l + 1),
            _ => None,
        }
    }

    fn norms_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let Some(norms) =
            cx.s.analysis
                .as_ref()
                .and_then(|a| a.residual_norms.clone())
        else {
            return;
        };
        let row_labels: Vec<String> = std::iter::once(cx.tr("embed", "嵌入").to_string())
            .chain((0..norms.len().saturating_sub(1)).map(|l| {
                cx.lang
                    .tf(format!("after L{l}"), format!("第 {l} 层后"))
            }))
            .collect();
        let grads = cx.grads();
        if !cx.presenting {
            let heading = if grads {
                cx.tr(
                    "‖∂loss/∂x‖ (L2 norm): how strongly the loss depends on the stream entering the first layer and after every layer",
                    "‖∂loss/∂x‖（L2 范数）：损失对残差流的依赖有多强（进入第一层时，以及每一层之后）",
                )
            } else {
                cx.tr(
                    "‖x‖ (L2 norm) of the stream entering the first layer and after every layer",
                    "残差流的 ‖x‖（L2 范数）：进入第一层时，以及每一层之后",
                )
            };
            ui.label(RichText::new(heading).strong());
        }
        if !cx.presenting {
            heatmap::scale_controls_ui(ui, &mut self.norm_scale, false, cx.lang);
        }
        let opts = self.norm_scale;
        let avail = ui.available_size() - vec2(0.0, 56.0);
        let cur = Self::cursor_row(cx, None);
        let (unit, title) = if grads {
            ("‖∂loss/∂x‖", cx.tr("Gradient norm at the residual stream", "残差流处的梯度范数"))
        } else {
            (cx.tr("‖x‖ (L2 norm)", "‖x‖（L2 范数）"), cx.tr("Residual stream norm", "残差流的范数"))
        };
        matrix_ui(
            ui,
            cx,
            &mut self.norm_tex,
            &Matrix {
                id: "norms",
                rows: &norms,
                row_labels: &row_labels,
                opts,
                marked_row: cur,
                unit,
                title,
                size: avail,
                colorbar: true,
            },
            None,
        );
    }

    fn writes_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let Some(w) = cx.s.analysis.as_ref().and_then(|a| a.write_norms.clone()) else {
            return;
        };
        let grads = cx.grads();
        if !cx.presenting {
            ui.label(RichText::new(writes_heading(cx)).strong());
            heatmap::scale_controls_ui(ui, &mut self.write_scale, false, cx.lang);
        }
        let opts = self.write_scale;
        let attn: Vec<Vec<f32>> = w.iter().map(|[a, _]| a.clone()).collect();
        let mlp: Vec<Vec<f32>> = w.iter().map(|[_, m]| m.clone()).collect();
        // One scale fitted to both, so an attention cell and an MLP cell compare.
        let both: Vec<Vec<f32>> = attn.iter().chain(&mlp).cloned().collect();
        let nc = both.first().map_or(0, Vec::len);
        let first = opts.first_col(nc);
        let shared = ColorScale::fit(both.len(), nc, first, false, opts.mode, |r, c| both[r][c]);
        let unit = if grads { "‖∂loss/∂write‖" } else { cx.tr("‖write‖ (L2 norm)", "‖写入量‖（L2 范数）") };
        self.writes_pair_ui(ui, cx, [&attn, &mlp], &shared, unit);
        if opts.mode != ScaleMode::PerRow {
            // One bar for both maps: they share the scale.
            let note = shared.note(cx.lang == crate::gui::i18n::Lang::Zh, first > 0);
            heatmap::colorbar_ui(ui, Colormap::Magma, &shared, unit, &note, cx.lang, &cx.theme);
        }
    }

    /// The attention and the MLP write maps side by side, on `shared` unless per row.
    fn writes_pair_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, pair: [&[Vec<f32>]; 2], shared: &ColorScale, unit: &str) {
        let opts = self.write_scale;
        let per_row = opts.mode == ScaleMode::PerRow;
        let labels: Vec<String> = (0..pair[0].len()).map(|l| layer_label(cx.lang, l)).collect();
        let avail = ui.available_size() - vec2(0.0, 56.0);
        let half = vec2((avail.x - 24.0) / 2.0, avail.y);
        let titles = [cx.tr("Attention writes", "注意力写入量"), cx.tr("MLP writes", "MLP 写入量")];
        ui.horizontal_top(|ui| {
            for (i, (rows, title)) in pair.into_iter().zip(titles).enumerate() {
                ui.vertical(|ui| {
                    ui.set_max_width(half.x);
                    ui.label(RichText::new(title).strong());
                    let cur = Self::cursor_row(cx, Some(i));
                    // Per row is a property of each sublayer's own rows.
                    let scale = if per_row { None } else { Some(shared.clone()) };
                    let m = Matrix {
                        id: if i == 0 { "writes-attn" } else { "writes-mlp" },
                        rows,
                        row_labels: &labels,
                        opts,
                        marked_row: cur,
                        unit,
                        title,
                        size: half - vec2(0.0, 20.0),
                        colorbar: per_row,
                    };
                    matrix_ui(ui, cx, &mut self.write_tex[i], &m, scale);
                });
            }
        });
    }
}

/// The Writes panel's heading: the sublayer outputs, or their gradients.
fn writes_heading(cx: &ViewCtx<'_>) -> &'static str {
    if cx.grads() {
        cx.tr(
            "‖∂loss/∂(what each sublayer adds)‖: attention (hook_attn_out) and MLP (hook_mlp_out), one colour scale for both",
            "‖∂loss/∂(每个子层加进去的量)‖：注意力（hook_attn_out）和 MLP（hook_mlp_out），两图共用一个颜色刻度",
        )
    } else {
        cx.tr(
            "‖what each sublayer adds‖: attention (hook_attn_out) and MLP (hook_mlp_out), one colour scale for both",
            "每个子层加进去的量的范数：注意力（hook_attn_out）和 MLP（hook_mlp_out），两图共用一个颜色刻度",
        )
    }
}

/// One `layers × positions` magnitude matrix for [`matrix_ui`].
struct Matrix<'a> {
    id: &'static str,
    rows: &'a [Vec<f32>],
    row_labels: &'a [String],
    opts: ScaleOpts,
    marked_row: Option<usize>,
    unit: &'a str,
    title: &'a str,
    size: egui::Vec2,
    /// Draw this matrix's own colour bar (off when a shared one is drawn below).
    colorbar: bool,
}

/// A magnitude matrix with token columns, its colour bar and scale note, hover read-outs,
/// click to select a position, and export. `scale`: a scale shared with another matrix.
fn matrix_ui(
    ui: &mut Ui,
    cx: &mut ViewCtx<'_>,
    tex: &mut CachedTexture,
    m: &Matrix<'_>,
    scale: Option<ColorScale>,
) {
    let (nr, nc_all) = (m.rows.len(), m.rows.first().map_or(0, Vec::len));
    if nr == 0 || nc_all == 0 {
        return;
    }
    let first = m.opts.first_col(nc_all);
    let nc = nc_all - first;
    let scale = scale.unwrap_or_else(|| {
        ColorScale::fit(nr, nc_all, first, false, m.opts.mode, |r, c| m.rows[r][c])
    });
    let map = Colormap::Magma;
    let sc = scale.clone();
    let tex = tex.get(
        ui.ctx(),
        m.id,
        key_of((cx.s.trace_pass, m.id, m.opts, scale.lo.to_bits(), scale.hi.to_bits())),
        || heatmap::image(nr, nc, |r, c| sc.color(map, r, m.rows[r][c + first])),
    );
    let all_cols = cx.axis_labels();
    let cols: Vec<String> = all_cols.iter().skip(first).cloned().collect();
    let axes = Axes {
        row_labels: Some(m.row_labels),
        col_labels: Some(&cols),
        row_title: "",
        col_title: cx.tr("position", "位置"),
        marked: &[],
        marked_row: m.marked_row,
        square: false,
    };
    let hm = heatmap_ui(ui, tex, nr, nc, m.size, &axes, &cx.theme);
    if let Some((r, c)) = hm.hovered {
        hm.response.clone().on_hover_text(format!(
            "{} · {} “{}”: {}",
            m.row_labels[r],
            c + first,
            cols.get(c).cloned().unwrap_or_default(),
            fmt_val(m.rows[r][c + first])
        ));
    }
    if let Some((_, c)) = hm.clicked {
        cx.s.sel.position = c + first;
    }
    if m.colorbar {
        let note = scale.note(cx.lang == crate::gui::i18n::Lang::Zh, first > 0);
        heatmap::colorbar_ui(ui, map, &scale, m.unit, &note, cx.lang, &cx.theme);
    }
    if cx.export {
        cx.requests.push(Request::Export(Figure::Heatmap {
            title: m.title.to_string(),
            rows: nr,
            cols: nc,
            values: m.rows.iter().flat_map(|r| r[first..].iter().copied()).collect(),
            row_labels: m.row_labels.to_vec(),
            col_labels: cols,
            row_title: cx.tr("layer", "层").into(),
            col_title: cx.tr("position", "位置").into(),
            map,
            scale,
            unit: m.unit.to_string(),
        }));
    }
}
/// Top-1 token of `lm_head(final_norm(x))` after every layer (and, if asked, after every
/// attention sublayer too), coloured by its probability. Rows shrink to fit the height, so
/// all layers show at once: the answer usually appears only in the last layers.
fn lens_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, toggle: &mut bool) {
    cx.s.want_lens();
    if !cx.presenting {
        ui.label(RichText::new(cx.tr(
            "Logit lens: apply the final RMSNorm and the output head to the stream after each layer; each cell is the top token (colour = its probability).",
            "logit 透镜：在每一层之后，直接对残差流做最终 RMSNorm 和输出层；每个格子是概率最高的词元（颜色 = 它的概率）。",
        )).strong());
        ui.checkbox(
            toggle,
            cx.tr(
                "also after each attention sublayer (twice the rows)",
                "也显示每个注意力子层之后（行数加倍）",
            ),
        );
    }
    let grid = match &cx.s.lens {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(cx.tr(
                    "computing the logit lens on the worker…",
                    "正在后台计算 logit 透镜……",
                ));
            });
            return;
        }
        Some(Err(e)) => {
            ui.colored_label(cx.theme.error(), e.as_str());
            return;
        }
        Some(Ok(g)) => g.clone(),
    };
    let rows = presenter_rows(ui, cx, lens_rows(cx, grid.len(), *toggle));
    let labels = cx.axis_labels();
    let fit = LensFit::new(ui, cx, &labels, rows.len(), *toggle);
    ScrollArea::both().id_salt("lens").max_height(fit.height).show(ui, |ui| {
        lens_grid_ui(ui, cx, &grid, &rows, &labels, &fit);
    });
    heatmap::colorbar_ui(
        ui,
        LENS_MAP,
        &ColorScale::fixed(0.0, 1.0),
        cx.tr("p (probability of the top token)", "p（第一名词元的概率）"),
        "",
        cx.lang,
        &cx.theme,
    );
}

/// The lens cells' colours: the top token's probability.
const LENS_MAP: Colormap = Colormap::Viridis;

/// (label, layer, sublayer) in top-to-bottom order: layer 0 first, the answer at the bottom.
/// Sublayer 0 is after attention (shown `with_attn` only), 1 after the MLP.
fn lens_rows(cx: &ViewCtx<'_>, n_layers: usize, with_attn: bool) -> Vec<(String, usize, usize)> {
    (0..n_layers)
        .flat_map(|l| {
            let attn = with_attn.then(|| (cx.lang.tf(format!("L{l} attn"), format!("第 {l} 层 注意力后")), l, 0));
            let label = if with_attn {
                cx.lang.tf(format!("L{l} mlp"), format!("第 {l} 层 MLP 后"))
            } else {
                layer_label(cx.lang, l)
            };
            attn.into_iter().chain([(label, l, 1)])
        })
        .collect()
}

/// The lens grid's geometry: every layer fits the height; cells wide enough for a token.
struct LensFit {
    /// Room for the row labels at the left, and for the rotated token labels above.
    left: f32,
    top: f32,
    cell_w: f32,
    cell_h: f32,
    font_px: f32,
    /// Characters of a token that fit a cell.
    chars: usize,
    height: f32,
}

impl LensFit {
    fn new(ui: &mut Ui, cx: &ViewCtx<'_>, labels: &[String], n_rows: usize, with_attn: bool) -> Self {
        let n_pos = cx.s.n_tokens();
        let avail = ui.available_size() - vec2(0.0, 44.0);
        let left = (if cx.lang == crate::gui::i18n::Lang::Zh && with_attn { 118.0 } else { 74.0 }) * crate::gui::theme::font_px(ui, 12.0) / 12.0;
        // Room above for the rotated token labels: as long as the longest one.
        let axis_font = lens_axis_font(ui);
        let top = ui.fonts_mut(|f| {
            labels
                .iter()
                .map(|l| f.layout_no_wrap(short_label(l, 12), axis_font.clone(), cx.theme.text()).size().x)
                .fold(0.0f32, f32::max)
        }) + 10.0;
        // Rows shrink (text needs 9 points; below that the colour still shows).
        let cell_h = ((avail.y - top) / n_rows.max(1) as f32).clamp(5.0, 24.0);
        let cell_w = ((avail.x - left - 8.0) / n_pos.max(1) as f32).clamp(34.0, 96.0);
        let font_px = crate::gui::theme::font_px(ui, (cell_h * 0.72).clamp(8.0, 13.0));
        let chars = ((cell_w / (font_px * 0.62)) as usize).clamp(3, 12);
        Self { left, top, cell_w, cell_h, font_px, chars, height: avail.y }
    }
}

/// The token labels above the lens (back-row size in presenter mode).
fn lens_axis_font(ui: &Ui) -> FontId {
    FontId::proportional(crate::gui::theme::font_px(ui, 12.0))
}

/// Lens rows for a projector: when every layer's row cannot be tall enough for back-row
/// text, every k-th layer (the last always kept: the answer forms there), so each row shown
/// carries its label and its tokens.
fn presenter_rows(ui: &Ui, cx: &ViewCtx<'_>, rows: Vec<(String, usize, usize)>) -> Vec<(String, usize, usize)> {
    if !cx.presenting {
        return rows;
    }
    let line = crate::gui::theme::PRESENTER_PX * 1.3;
    // The token labels above take about a long token's width; the colour bar below ~60.
    let room = ((ui.available_height() - 200.0) / line).floor().max(2.0) as usize;
    if rows.len() <= room {
        return rows;
    }
    let k = rows.len().div_ceil(room);
    let last = rows.len() - 1;
    rows.into_iter().enumerate().filter(|(i, _)| (last - i) % k == 0).map(|(_, r)| r).collect()
}

/// The grid itself: token labels above, layer labels at the left, one cell per (row,
/// position); the hovered cell outlined and read out.
fn lens_grid_ui(ui: &mut Ui, cx: &ViewCtx<'_>, grid: &crate::gui::worker::LensGrid, rows: &[(String, usize, usize)], labels: &[String], fit: &LensFit) {
    let n_pos = cx.s.n_tokens();
    let (rect, resp) = ui.allocate_exact_size(
        vec2(fit.left + fit.cell_w * n_pos as f32, fit.top + fit.cell_h * rows.len() as f32),
        Sense::click(),
    );
    let painter = ui.painter_at(rect);
    let font = FontId::proportional(fit.font_px);
    let y0 = rect.min.y + fit.top;
    let axis_font = lens_axis_font(ui);
    let line = painter.layout_no_wrap("Ag0".into(), axis_font.clone(), cx.theme.text()).size().y;
    let every_c = crate::gui::heatmap::label_stride(line, fit.cell_w);
    for (p, l) in labels.iter().enumerate().step_by(every_c) {
        let x = rect.min.x + fit.left + (p as f32 + 0.5) * fit.cell_w;
        let g = painter.layout_no_wrap(short_label(l, 12), axis_font.clone(), cx.theme.text());
        painter.add(
            egui::epaint::TextShape::new(pos2(x - g.size().y / 2.0, y0 - 4.0), g, cx.theme.text())
                .with_angle(-std::f32::consts::FRAC_PI_2),
        );
    }
    let row_font = FontId::proportional(fit.font_px.max(10.0));
    let row_line = painter.layout_no_wrap("L0".into(), row_font.clone(), cx.theme.muted()).size().y;
    let every_r = crate::gui::heatmap::label_stride(row_line, fit.cell_h);
    let last = rows.len().saturating_sub(1);
    let mut hovered = None;
    for (r, (label, l, s)) in rows.iter().enumerate() {
        let y = y0 + r as f32 * fit.cell_h;
        // Counted from the last row (always labelled), so L28 and L29 never share a line.
        if (last - r) % every_r == 0 {
            let at = pos2(rect.min.x + fit.left - 6.0, y + fit.cell_h / 2.0);
            painter.text(at, Align2::RIGHT_CENTER, label, row_font.clone(), cx.theme.muted());
        }
        for (p, &(id, prob)) in grid[*l][*s].iter().enumerate() {
            let cell = egui::Rect::from_min_size(
                pos2(rect.min.x + fit.left + p as f32 * fit.cell_w, y),
                vec2(fit.cell_w - 1.0, fit.cell_h - 1.0),
            );
            let bg = LENS_MAP.at(prob);
            painter.rect_filled(cell, 0.0, bg);
            if fit.cell_h >= fit.font_px * 1.15 {
                let text = short_label(&visible(&cx.s.token_text(id)), fit.chars);
                painter.text(cell.center(), Align2::CENTER_CENTER, text, font.clone(), cx.theme.text_on(bg));
            }
            if resp.hover_pos().is_some_and(|h| cell.contains(h)) {
                hovered = Some((*l, *s, p, id, prob, cell));
            }
        }
    }
    if let Some((l, s, p, id, prob, cell)) = hovered {
        painter.rect_stroke(cell, 0.0, Stroke::new(2.0, cx.theme.highlight()), StrokeKind::Inside);
        resp.on_hover_text(lens_readout(cx, l, s, p, id, prob));
    }
}

/// The hover text of one lens cell: where, which token, how likely.
fn lens_readout(cx: &ViewCtx<'_>, l: usize, sublayer: usize, p: usize, id: u32, prob: f32) -> String {
    let after = if sublayer == 0 {
        cx.tr("after attention", "注意力之后")
    } else {
        cx.tr("after the MLP", "MLP 之后")
    };
    let token = cx.s.token_text(id);
    cx.lang.tf(
        format!("L{l} {after} · position {p}: top-1 “{token}” (id {id}), p = {}", fmt_val(prob)),
        format!("第 {l} 层 {after} · 位置 {p}：第一名“{token}”（id {id}），p = {}", fmt_val(prob)),
    )
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("residual");

impl super::View for ResidualView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Residual stream", "残差流")
    }

    fn short_title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Residual", "残差流")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["norms", "writes", "lens"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "norms" => self.mode = ResidualMode::Norms,
            "writes" => self.mode = ResidualMode::Writes,
            "lens" => self.mode = ResidualMode::Lens,
            _ => return false,
        }
        true
    }

    fn mode(&self) -> Option<&'static str> {
        Some(match self.mode {
            ResidualMode::Norms => "norms",
            ResidualMode::Writes => "writes",
            ResidualMode::Lens => "lens",
        })
    }

    fn explains(&self) -> &'static [glassbox_engine::program::op_table::OpView] {
        &[glassbox_engine::program::op_table::OpView::Residual]
    }

    fn shows_gradients(&self) -> bool {
        true
    }

    /// The logit lens is computed on the model thread once shown.
    fn busy(&self, s: &crate::gui::session::Session, shown: bool) -> bool {
        shown && self.mode == ResidualMode::Lens && s.lens.is_none()
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        ResidualView::ui(self, ui, cx);
    }
}
