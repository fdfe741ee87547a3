//! The residual stream: its size per layer and position, how much each attention and MLP
//! sublayer writes into it, and the logit lens (the model's best guess if it stopped after
//! each sublayer). Norms and the lens come from the engine's analysis functions.

use egui::{Align2, FontId, RichText, ScrollArea, Sense, Stroke, StrokeKind, Ui, pos2, vec2};
use glassbox_engine::{LayerOp, Step};

use super::{Request, ViewCtx, fmt_val, visible};
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, Axes, CachedTexture, heatmap_ui, key_of, short_label};
use crate::gui::theme::Colormap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResidualMode {
    #[default]
    Norms,
    Writes,
    Lens,
}

#[derive(Default)]
pub struct ResidualView {
    pub mode: ResidualMode,
    norm_tex: CachedTexture,
    write_tex: CachedTexture,
}

impl ResidualView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            ui.heading(cx.tr("Residual stream", "残差流（residual stream）"));
            for (m, en, zh) in [
                (ResidualMode::Norms, "Norm per layer", "每层的范数"),
                (
                    ResidualMode::Writes,
                    "Attention / MLP writes",
                    "注意力 / MLP 写入量",
                ),
                (ResidualMode::Lens, "Logit lens", "logit lens"),
            ] {
                ui.selectable_value(&mut self.mode, m, cx.tr(en, zh));
            }
        });
        ui.label(RichText::new(cx.tr(
            "x ← x + attention(norm(x)), then x ← x + MLP(norm(x)): each sublayer adds to the stream; nothing overwrites it.",
            "x ← x + 注意力(norm(x))，然后 x ← x + MLP(norm(x))：每个子层都是往残差流里“加”，不会覆盖它。",
        )).color(cx.theme.muted()));
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
            ResidualMode::Lens => lens_ui(ui, cx),
        }
    }

    /// Row the cursor is about (if it is at a residual add).
    fn cursor_row(cx: &ViewCtx<'_>, writes: bool) -> Option<usize> {
        match cx.s.cursor_step() {
            Step::Layer(l, LayerOp::AttnAdd) if writes => Some(2 * l),
            Step::Layer(l, LayerOp::MlpAdd) if writes => Some(2 * l + 1),
            Step::Layer(l, LayerOp::MlpAdd) => Some(l + 1),
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
        let row_labels: Vec<String> = std::iter::once("embed".to_string())
            .chain((0..norms.len().saturating_sub(1)).map(|l| format!("after L{l}")))
            .collect();
        self.matrix_ui(
            ui,
            cx,
            false,
            &norms,
            &row_labels,
            cx.tr(
                "‖x‖ (L2 norm) of the stream entering each layer and after the last",
                "残差流的 ‖x‖（L2 范数）：embed 与每一层之后",
            ),
        );
    }

    fn writes_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let Some(w) = cx.s.analysis.as_ref().and_then(|a| a.write_norms.clone()) else {
            return;
        };
        let rows: Vec<Vec<f32>> = w.iter().flat_map(|[a, m]| [a.clone(), m.clone()]).collect();
        let labels: Vec<String> = (0..w.len())
            .flat_map(|l| [format!("L{l} attn"), format!("L{l} mlp")])
            .collect();
        self.matrix_ui(
            ui,
            cx,
            true,
            &rows,
            &labels,
            cx.tr(
                "‖what each sublayer adds‖ (hook_attn_out, hook_mlp_out)",
                "每个子层加进去的量的范数（hook_attn_out、hook_mlp_out）",
            ),
        );
    }

    fn matrix_ui(
        &mut self,
        ui: &mut Ui,
        cx: &mut ViewCtx<'_>,
        writes: bool,
        rows: &[Vec<f32>],
        row_labels: &[String],
        caption: &str,
    ) {
        ui.label(RichText::new(caption).strong());
        let (nr, nc) = (rows.len(), rows.first().map_or(0, Vec::len));
        if nr == 0 || nc == 0 {
            return;
        }
        let max = rows.iter().flatten().copied().fold(0.0f32, f32::max);
        let tex = if writes {
            &mut self.write_tex
        } else {
            &mut self.norm_tex
        };
        let tex = tex.get(ui.ctx(), "residual", key_of((cx.s.pass, writes)), || {
            heatmap::image(nr, nc, |r, c| Colormap::Magma.seq(rows[r][c], max))
        });
        let cols = cx.axis_labels();
        let cur = Self::cursor_row(cx, writes);
        let axes = Axes {
            row_labels: Some(row_labels),
            col_labels: Some(&cols),
            row_title: "",
            col_title: cx.tr("position", "位置"),
            marked: &[],
            marked_row: cur,
            square: false,
        };
        let avail = ui.available_size() - vec2(0.0, 40.0);
        let hm = heatmap_ui(ui, tex, nr, nc, avail, &axes, &cx.theme);
        if let Some((r, c)) = hm.hovered {
            hm.response.clone().on_hover_text(format!(
                "{} · {} “{}”: {}",
                row_labels[r],
                c,
                cols.get(c).cloned().unwrap_or_default(),
                fmt_val(rows[r][c])
            ));
        }
        if let Some((_, c)) = hm.clicked {
            cx.s.sel.position = c;
        }
        heatmap::legend_ui(ui, Colormap::Magma, 0.0, max, "‖·‖", &cx.theme);
        if cx.export {
            cx.requests.push(Request::Export(Figure::Heatmap {
                title: caption.to_string(),
                rows: nr,
                cols: nc,
                values: rows.iter().flatten().copied().collect(),
                row_labels: row_labels.to_vec(),
                col_labels: cols,
                map: Colormap::Magma,
                lo: 0.0,
                hi: max,
            }));
        }
    }
}

/// Top-1 token of `lm_head(final_norm(x))` after each sublayer, colored by its probability.
fn lens_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>) {
    cx.s.want_lens();
    ui.label(RichText::new(cx.tr(
        "Logit lens: apply the final RMSNorm and the output head to the stream after every sublayer; each cell is the top token (color = its probability).",
        "logit lens：在每个子层之后，直接对残差流做最终 RMSNorm 和输出层；每个格子是概率最高的词元（颜色 = 它的概率）。",
    )).strong());
    let grid = match &cx.s.lens {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(cx.tr(
                    "computing the logit lens on the worker…",
                    "正在后台计算 logit lens……",
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
    let n_pos = cx.s.n_tokens();
    let labels = cx.axis_labels();
    let (cell_w, cell_h, left) = (78.0, 20.0, 80.0);
    ScrollArea::both().id_salt("lens").show(ui, |ui| {
        let rows = grid.len() * 2;
        let (rect, resp) = ui.allocate_exact_size(
            vec2(left + cell_w * n_pos as f32, 110.0 + cell_h * rows as f32),
            Sense::click(),
        );
        let painter = ui.painter_at(rect);
        let font = FontId::proportional(12.0);
        let top = rect.min.y + 100.0;
        for (p, l) in labels.iter().enumerate() {
            let x = rect.min.x + left + (p as f32 + 0.5) * cell_w;
            let g = painter.layout_no_wrap(short_label(l, 14), font.clone(), cx.theme.text());
            painter.add(
                egui::epaint::TextShape::new(
                    pos2(x - g.size().y / 2.0, top - 4.0),
                    g,
                    cx.theme.text(),
                )
                .with_angle(-std::f32::consts::FRAC_PI_2),
            );
        }
        let mut hovered = None;
        for (l, pair) in grid.iter().enumerate() {
            for (s, row) in pair.iter().enumerate() {
                let r = 2 * l + s;
                let y = top + r as f32 * cell_h;
                painter.text(
                    pos2(rect.min.x + left - 6.0, y + cell_h / 2.0),
                    Align2::RIGHT_CENTER,
                    format!("L{l} {}", if s == 0 { "attn" } else { "mlp" }),
                    font.clone(),
                    cx.theme.muted(),
                );
                for (p, &(id, prob)) in row.iter().enumerate() {
                    let cell = egui::Rect::from_min_size(
                        pos2(rect.min.x + left + p as f32 * cell_w, y),
                        vec2(cell_w - 1.0, cell_h - 1.0),
                    );
                    let bg = Colormap::Viridis.at(prob);
                    painter.rect_filled(cell, 0.0, bg);
                    painter.text(
                        cell.center(),
                        Align2::CENTER_CENTER,
                        short_label(&visible(&cx.s.token_text(id)), 9),
                        font.clone(),
                        cx.theme.text_on(bg),
                    );
                    if resp.hover_pos().is_some_and(|h| cell.contains(h)) {
                        hovered = Some((l, s, p, id, prob, cell));
                    }
                }
            }
        }
        if let Some((l, s, p, id, prob, cell)) = hovered {
            painter.rect_stroke(
                cell,
                0.0,
                Stroke::new(2.0, cx.theme.highlight()),
                StrokeKind::Inside,
            );
            resp.on_hover_text(format!(
                "L{l} {} · position {p}: top-1 “{}” (id {id}), p = {}",
                if s == 0 {
                    "after attention"
                } else {
                    "after MLP"
                },
                cx.s.token_text(id),
                fmt_val(prob)
            ));
        }
    });
}
