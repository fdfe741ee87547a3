//! Queries, keys, values and RoPE for one layer: which query heads share each K/V head
//! (GQA), the q/k/v vectors of the selected position and head, and every RoPE dimension
//! pair (i, i + d_head/2) before and after its rotation by position · θ^(−2i/d_head).

use egui::{Color32, RichText, Sense, Stroke, Ui, pos2, vec2};
use glassbox_engine::{BlockHook, HookKey};

use super::{Request, ViewCtx, fmt_val, max_abs, missing_ui, title_ui};
use crate::gui::export::Figure;
use crate::gui::heatmap::vector_grid_ui;
use crate::gui::theme::Colormap;

#[derive(Default)]
pub struct QkvRopeView {
    /// RoPE pair under the pointer.
    pub hovered_pair: Option<usize>,
}

fn vec3(cx: &ViewCtx<'_>, key: HookKey, pos: usize, head: usize) -> Option<Vec<f32>> {
    let t = cx.s.trace.get(key)?.as_3d()?;
    (pos < t.shape()[0] && head < t.shape()[1])
        .then(|| t.slice(ndarray::s![pos, head, ..]).to_vec())
}

impl QkvRopeView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let layer = cx.s.view_layer();
        let keys: Vec<HookKey> = [
            BlockHook::Q,
            BlockHook::K,
            BlockHook::V,
            BlockHook::RotQ,
            BlockHook::RotK,
        ]
        .into_iter()
        .map(|h| HookKey::Block(layer, h))
        .collect();
        title_ui(
            ui,
            cx,
            &cx.lang.tf(
                format!("Q, K, V and RoPE · layer {layer}"),
                format!("Q、K、V 与 RoPE · 第 {layer} 层"),
            ),
            &keys,
        );
        self.gqa_ui(ui, cx);
        if missing_ui(ui, cx, keys[0]) {
            return;
        }
        let c = &cx.s.model.config;
        let head = cx.s.sel.head.min(c.n_heads().saturating_sub(1));
        let g = c.kv_head_of(head);
        let pos = cx.s.sel.position.min(cx.s.n_tokens().saturating_sub(1));
        let tok = cx.s.token_texts.get(pos).cloned().unwrap_or_default();
        let p_abs = cx.pos(pos);
        ui.label(
            RichText::new(cx.lang.tf(
                format!("Position {p_abs} “{tok}” · query head {head} · K/V head {g}"),
                format!("位置 {p_abs}“{tok}” · 查询头 {head} · K/V 头 {g}"),
            ))
            .strong(),
        );
        egui::Grid::new("qkv-vectors")
            .num_columns(3)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                for (name, before, after, h) in [
                    ("q", BlockHook::Q, Some(BlockHook::RotQ), head),
                    ("k", BlockHook::K, Some(BlockHook::RotK), g),
                    ("v", BlockHook::V, None, g),
                ] {
                    ui.label(RichText::new(name).monospace().size(crate::gui::theme::font_px(ui, 16.0)));
                    for hook in std::iter::once(before).chain(after) {
                        let key = HookKey::Block(layer, hook);
                        match vec3(cx, key, pos, h) {
                            Some(v) => {
                                ui.vertical(|ui| {
                                    ui.label(
                                        RichText::new(if Some(hook) == after {
                                            cx.tr("after RoPE", "RoPE 之后")
                                        } else {
                                            cx.tr("before RoPE", "RoPE 之前")
                                        })
                                        .small(),
                                    );
                                    let scale = max_abs(v.iter().copied());
                                    let cols = v.len().div_ceil(2).max(1);
                                    let (resp, hov) = vector_grid_ui(
                                        ui,
                                        &v,
                                        cols,
                                        9.0,
                                        |x| Colormap::Diverging.signed(x, scale),
                                        self.hovered_pair,
                                        &cx.theme,
                                    );
                                    if let Some(i) = hov {
                                        resp.on_hover_text(format!(
                                            "{}{key}[{pos}, {h}, {i}] = {}",
                                            cx.d(),
                                            fmt_val(v[i])
                                        ));
                                    }
                                    ui.label(
                                        RichText::new(format!("±{}", fmt_val(scale))).small(),
                                    );
                                });
                            }
                            None => {
                                ui.label("–");
                            }
                        }
                    }
                    ui.end_row();
                }
            });
        crate::gui::heatmap::colorbar_ui(
            ui,
            Colormap::Diverging,
            &crate::gui::heatmap::ColorScale::symmetric(1.0),
            cx.tr("value ÷ its grid's max |·| (the ± under each grid)", "数值 ÷ 该格图的最大 |·|（见每幅图下方的 ±）"),
            "",
            cx.lang,
            &cx.theme,
        );
        ui.label(RichText::new(cx.tr(
            "Top row: dimensions 0…d/2−1; bottom row: their RoPE partners d/2…d−1. V is not rotated.",
            "上一行：维度 0…d/2−1；下一行：与之配对旋转的维度 d/2…d−1。V 不旋转。",
        )).color(cx.theme.muted()));
        ui.separator();
        if !cx.activations_only_ui(ui) {
            self.rope_ui(ui, cx, layer, pos, head);
        }
    }

    /// Query heads (top) and the K/V heads they read (bottom), drawn from the config.
    fn gqa_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let c = &cx.s.model.config;
        let (nh, nkv, group) = (c.n_heads(), c.n_kv_heads().max(1), c.group_size().max(1));
        let w = ui.available_width().min(760.0);
        let (rect, resp) = ui.allocate_exact_size(vec2(w, 92.0), Sense::click());
        let painter = ui.painter_at(rect);
        let font = egui::FontId::proportional(crate::gui::theme::font_px(ui, 12.0));
        let qx = |h: usize| rect.min.x + (h as f32 + 0.5) * w / nh as f32;
        let kx = |g: usize| rect.min.x + (g as f32 + 0.5) * w / nkv as f32;
        let (qy, ky) = (rect.min.y + 16.0, rect.max.y - 16.0);
        let mut clicked = None;
        for h in 0..nh {
            let g = h / group;
            let color = cx.theme.group_color(g);
            let sel = h == cx.s.sel.head;
            painter.line_segment(
                [pos2(qx(h), qy + 10.0), pos2(kx(g), ky - 10.0)],
                Stroke::new(if sel { 3.0 } else { 1.2 }, color),
            );
            let r = egui::Rect::from_center_size(pos2(qx(h), qy), vec2(34.0, 20.0));
            painter.rect_filled(r, 4.0, color);
            if sel {
                painter.rect_stroke(
                    r,
                    4.0,
                    Stroke::new(2.5, cx.theme.highlight()),
                    egui::StrokeKind::Outside,
                );
            }
            painter.text(
                r.center(),
                egui::Align2::CENTER_CENTER,
                format!("Q{h}"),
                font.clone(),
                Color32::WHITE,
            );
            if resp.clicked() && resp.interact_pointer_pos().is_some_and(|p| r.contains(p)) {
                clicked = Some(h);
            }
        }
        for g in 0..nkv {
            let r = egui::Rect::from_center_size(pos2(kx(g), ky), vec2(64.0, 20.0));
            painter.rect_filled(r, 4.0, cx.theme.group_color(g));
            painter.text(
                r.center(),
                egui::Align2::CENTER_CENTER,
                format!("K{g} V{g}"),
                font.clone(),
                Color32::WHITE,
            );
        }
        if let Some(h) = clicked {
            cx.s.sel.head = h;
        }
        ui.label(RichText::new(cx.lang.tf(
            format!("{nh} query heads share {nkv} K/V heads ({group} per group): the K/V cache is {group}× smaller. Click a query head."),
            format!("{nh} 个查询头共用 {nkv} 个 K/V 头（每组 {group} 个）：K/V 缓存因此小 {group} 倍。点击一个查询头。"),
        )).color(cx.theme.muted()));
    }

    /// One small dial per dimension pair: the (x_i, x_{i+d/2}) vector before (gray) and
    /// after (colored) the rotation, for q of the selected position and head.
    fn rope_ui(
        &mut self,
        ui: &mut Ui,
        cx: &mut ViewCtx<'_>,
        layer: usize,
        pos: usize,
        head: usize,
    ) {
        let (qk, rk) = (
            HookKey::Block(layer, BlockHook::Q),
            HookKey::Block(layer, BlockHook::RotQ),
        );
        ui.label(
            RichText::new(cx.tr(
                "RoPE: each pair (i, i + d/2) is rotated by angle = position × θ^(−2i/d)",
                "RoPE：每一对 (i, i + d/2) 旋转角度 = 位置 × θ^(−2i/d)",
            ))
            .strong(),
        );
        let (Some(q), Some(r)) = (vec3(cx, qk, pos, head), vec3(cx, rk, pos, head)) else {
            ui.label(cx.tr(
                "(step to `rope` to see the rotation)",
                "（前进到 `rope` 才能看到旋转）",
            ));
            return;
        };
        let half = q.len() / 2;
        let absolute = pos + cx.s.trace.pos_offset;
        // This block's table for this pass: Gemma's local θ, longrope's short or long factors.
        let end = cx.s.trace.pos_offset + cx.s.trace.token_ids.len();
        let inv_freq = cx.s.model.rope_of(layer, end).inv_freq;
        let radius = 20.0;
        let per_row =
            ((ui.available_width() / (2.0 * radius + 10.0)).floor() as usize).clamp(4, 32);
        let rows = half.div_ceil(per_row);
        let (rect, resp) = ui.allocate_exact_size(
            vec2(
                per_row as f32 * (2.0 * radius + 10.0),
                rows as f32 * (2.0 * radius + 22.0),
            ),
            Sense::hover(),
        );
        let painter = ui.painter_at(rect);
        let scale = (0..half)
            .map(|i| q[i].hypot(q[i + half]))
            .fold(1e-9f32, f32::max);
        let center = |i: usize| {
            rect.min
                + vec2(
                    (i % per_row) as f32 * (2.0 * radius + 10.0) + radius + 5.0,
                    (i / per_row) as f32 * (2.0 * radius + 22.0) + radius + 4.0,
                )
        };
        let mut hovered = None;
        for i in 0..half {
            let c = center(i);
            painter.circle_stroke(c, radius, Stroke::new(1.0, cx.theme.faint()));
            let to = |a: f32, b: f32| c + vec2(a, -b) * (radius / scale);
            painter.line_segment(
                [c, to(q[i], q[i + half])],
                Stroke::new(2.0, cx.theme.muted()),
            );
            painter.line_segment(
                [c, to(r[i], r[i + half])],
                Stroke::new(2.0, cx.theme.accent()),
            );
            painter.text(
                c + vec2(0.0, radius + 8.0),
                egui::Align2::CENTER_CENTER,
                format!("{i}"),
                egui::FontId::proportional(crate::gui::theme::font_px(ui, 10.0)),
                cx.theme.muted(),
            );
            if resp
                .hover_pos()
                .is_some_and(|p| p.distance(c) <= radius + 4.0)
            {
                hovered = Some(i);
            }
        }
        self.hovered_pair = hovered;
        let text = match hovered {
            Some(i) => {
                let angle = absolute as f32 * inv_freq.get(i).copied().unwrap_or(0.0);
                format!(
                    "pair ({i}, {}): ({}, {}) → ({}, {})   angle = {absolute} × {} = {} rad",
                    i + half, fmt_val(q[i]), fmt_val(q[i + half]), fmt_val(r[i]), fmt_val(r[i + half]),
                    fmt_val(inv_freq.get(i).copied().unwrap_or(0.0)), fmt_val(angle)
                )
            }
            None => cx.tr("Gray: before RoPE. Blue: after. Low pairs spin fast with position, high pairs slowly. Hover a dial.", "灰色：旋转前；蓝色：旋转后。低维度对随位置转得快，高维度对转得慢。把鼠标移到表盘上查看数值。").to_string(),
        };
        ui.label(RichText::new(text).monospace());
        if cx.export {
            cx.requests.push(Request::Export(Figure::Bars {
                title: format!("{rk} position {pos} head {head}"),
                labels: (0..r.len()).map(|i| format!("dim {i}")).collect(),
                values: r.clone(),
            }));
        }
    }
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("qkv");

impl super::View for QkvRopeView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Q K V · RoPE", "Q K V · RoPE")
    }

    fn short_title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("QKV·RoPE", "QKV·RoPE")
    }

    fn explains(&self) -> &'static [glassbox_engine::program::op_table::OpView] {
        &[glassbox_engine::program::op_table::OpView::Qkv]
    }

    fn shows_gradients(&self) -> bool {
        true
    }

    fn detail_needed(&self, s: &crate::gui::session::Session) -> Option<glassbox_engine::long::recompute::Detail> {
        Some(s.detail_for_view(false))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        QkvRopeView::ui(self, ui, cx);
    }
}
