//! Attention: one head's pattern (or its scores before/after the causal mask, following the
//! cursor), all heads of a layer, all layers × heads, and a head view of lines from the
//! selected token. Clicking a cell opens its provenance (see `provenance`).
//!
//! Every matrix is one cached texture; hovering reads the real value out of the trace.

use egui::{Color32, RichText, Ui, Vec2, vec2};
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use super::{Request, ViewCtx, fmt_val, max_abs, missing_ui, provenance, title_ui};

mod all_heads;
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, Axes, CachedTexture, heatmap_ui, key_of};
use crate::gui::theme::{Colormap, Theme};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttnMode {
    #[default]
    Head,
    Layer,
    Overview,
    Lines,
}

/// The value under the pointer, read from the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Readout {
    pub key: HookKey,
    pub head: usize,
    pub q: usize,
    pub k: usize,
    pub value: f32,
}

impl Readout {
    pub fn text(&self) -> String {
        format!(
            "{}[head {}, q {}, k {}] = {}",
            self.key,
            self.head,
            self.q,
            self.k,
            fmt_val(self.value)
        )
    }
}

#[derive(Default)]
pub struct AttentionView {
    pub mode: AttnMode,
    /// Color by √p so small weights away from the attention sink stay visible.
    pub sqrt_scale: bool,
    head_tex: CachedTexture,
    layer_tex: CachedTexture,
    overview_tex: Vec<CachedTexture>,
    z_tex: CachedTexture,
    pub readout: Option<Readout>,
    /// Where the single-head heatmap's cells were drawn, with (rows, cols): lets tests
    /// point at a cell.
    pub head_cells: Option<(egui::Rect, usize, usize)>,
    /// Pass and layer count the overview texture was last built with, and when.
    overview_built: (u64, usize, f64),
}

/// Which matrix the cursor is about: raw scores, masked scores, or the pattern.
fn shown_hook(cursor: Step) -> BlockHook {
    match cursor {
        Step::Layer(_, LayerOp::Scores) => BlockHook::RawScores,
        Step::Layer(_, LayerOp::Mask) => BlockHook::AttnScores,
        _ => BlockHook::Pattern,
    }
}

/// Colors one attention-matrix value. `causal_masked`: k is in the future of q.
fn cell_color(
    hook: BlockHook,
    v: f32,
    causal_masked: bool,
    scale: f32,
    sqrt: bool,
    theme: &Theme,
) -> Color32 {
    match hook {
        BlockHook::Pattern if causal_masked => theme.masked(),
        BlockHook::Pattern => Colormap::Viridis.at(if sqrt { v.max(0.0).sqrt() } else { v }),
        _ if !v.is_finite() => theme.masked(),
        _ => Colormap::Diverging.signed(v, scale),
    }
}

impl AttentionView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        self.readout = None;
        let layer = cx.s.view_layer();
        ui.horizontal_wrapped(|ui| {
            for (mode, en, zh) in [
                (AttnMode::Head, "One head", "单个头"),
                (AttnMode::Layer, "All heads of the layer", "本层所有头"),
                (AttnMode::Overview, "All layers × heads", "所有层 × 头"),
                (AttnMode::Lines, "Head view (lines)", "连线视图"),
            ] {
                ui.selectable_value(&mut self.mode, mode, cx.tr(en, zh));
            }
            ui.separator();
            ui.checkbox(&mut self.sqrt_scale, cx.tr("√ color scale", "√ 颜色刻度"));
        });
        if self.mode != AttnMode::Overview {
            self.head_picker_ui(ui, cx);
        }
        ui.separator();
        match self.mode {
            AttnMode::Head => self.head_ui(ui, cx, layer),
            AttnMode::Layer => self.layer_ui(ui, cx, layer),
            AttnMode::Overview => self.overview_ui(ui, cx),
            AttnMode::Lines => self.lines_ui(ui, cx, layer),
        }
    }

    /// Query heads as buttons, colored by the K/V head they share (GQA).
    fn head_picker_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let c = &cx.s.model.config;
        let (n_heads, group) = (c.n_heads(), c.group_size().max(1));
        ui.horizontal_wrapped(|ui| {
            ui.label(cx.tr("Query head:", "查询头："));
            for h in 0..n_heads {
                let g = h / group;
                let selected = cx.s.sel.head == h;
                let text = RichText::new(format!("H{h}"))
                    .color(cx.theme.group_color(g))
                    .strong();
                let resp = ui.add(egui::Button::new(text).selected(selected));
                if resp.clicked() {
                    cx.s.sel.head = h;
                }
                if (h + 1) % group == 0 && h + 1 < n_heads {
                    ui.separator();
                }
            }
            let g = cx.s.sel.head / group;
            ui.label(cx.lang.tf(
                format!(
                    "→ K/V head {g} (shared by heads {}–{})",
                    g * group,
                    g * group + group - 1
                ),
                format!(
                    "→ K/V 头 {g}（头 {}–{} 共用）",
                    g * group,
                    g * group + group - 1
                ),
            ));
        });
    }

    fn head_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize) {
        let cursor = cx.s.cursor_step();
        let hook = shown_hook(cursor);
        let key = HookKey::Block(layer, hook);
        let head =
            cx.s.sel
                .head
                .min(cx.s.model.config.n_heads().saturating_sub(1));
        let title = match hook {
            BlockHook::RawScores => {
                cx.tr("Scores q·k/√d (before the mask)", "分数 q·k/√d（遮罩之前）")
            }
            BlockHook::AttnScores => {
                cx.tr("Scores after the causal mask", "加上因果遮罩之后的分数")
            }
            _ => cx.tr(
                "Attention pattern softmax(scores)",
                "注意力权重 softmax(分数)",
            ),
        };
        title_ui(ui, cx, &format!("{title} · L{layer} H{head}"), &[key]);
        if missing_ui(ui, cx, key) {
            return;
        }
        let Some(t) = cx.s.trace.get(key).and_then(|t| t.as_3d()) else {
            return;
        };
        let (nq, nk) = (t.shape()[1], t.shape()[2]);
        let offset = cx.s.trace.pos_offset;
        let scale = max_abs(
            (0..nq)
                .flat_map(|q| (0..nk).map(move |k| (q, k)))
                .map(|(q, k)| t[[head, q, k]]),
        );
        let (sqrt, theme) = (self.sqrt_scale, cx.theme);
        let tex_key = key_of((cx.s.pass, key, head, sqrt, theme.dark));
        let tex = self.head_tex.get(ui.ctx(), "attention-head", tex_key, || {
            heatmap::image(nq, nk, |q, k| {
                cell_color(hook, t[[head, q, k]], k > q + offset, scale, sqrt, &theme)
            })
        });
        let labels = cx.axis_labels();
        let marked: Vec<(usize, usize)> =
            cx.s.sel
                .key_position
                .map(|k| (cx.s.sel.position, k))
                .into_iter()
                .collect();
        // Heatmap and provenance side by side when there is room (provenance needs ~330
        // px), else stacked: a projector zoom leaves little width.
        let avail = ui.available_size();
        let side_by_side = avail.x >= 640.0;
        let side = if side_by_side {
            (avail.x - 340.0).min(avail.y - 70.0)
        } else {
            avail.x.min(avail.y * 0.7)
        }
        .max(180.0);
        let mut clicked = None;
        let mut heatmap_column = |ui: &mut Ui| {
            // The read-out wraps under the map instead of widening the column.
            ui.set_max_width(side);
            let axes = Axes {
                row_labels: Some(&labels),
                col_labels: Some(&labels),
                row_title: cx.tr("query position", "查询位置"),
                col_title: cx.tr("key position", "键位置"),
                marked: &marked,
                marked_row: Some(cx.s.sel.position),
                square: true,
            };
            let hm = heatmap_ui(ui, tex, nq, nk, Vec2::splat(side), &axes, &theme);
            self.head_cells = Some((hm.cells, nq, nk));
            if let Some((q, k)) = hm.hovered {
                self.readout = Some(Readout {
                    key,
                    head,
                    q,
                    k,
                    value: t[[head, q, k]],
                });
            }
            clicked = hm.clicked;
            let readout = self.readout.as_ref().map_or_else(
                || {
                    cx.tr(
                        "Hover a cell to read its value; click it to see where it comes from.",
                        "把鼠标移到格子上读取数值；点击格子查看它的来源。",
                    )
                    .to_string()
                },
                Readout::text,
            );
            ui.label(RichText::new(readout).monospace());
            match hook {
                BlockHook::Pattern => heatmap::legend_ui(
                    ui,
                    Colormap::Viridis,
                    0.0,
                    1.0,
                    if sqrt { "√p" } else { "p" },
                    &theme,
                ),
                _ => heatmap::legend_ui(
                    ui,
                    Colormap::Diverging,
                    -scale,
                    scale,
                    cx.tr("score", "分数"),
                    &theme,
                ),
            }
        };
        if side_by_side {
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| heatmap_column(ui));
                ui.separator();
                ui.vertical(|ui| {
                    egui::ScrollArea::vertical()
                        .id_salt("provenance")
                        .show(ui, |ui| provenance::provenance_ui(ui, cx, layer, head));
                });
            });
        } else {
            heatmap_column(ui);
            ui.separator();
            provenance::provenance_ui(ui, cx, layer, head);
        }
        if let Some((q, k)) = clicked {
            cx.s.sel.position = q;
            cx.s.sel.key_position = Some(k);
        }
        if cx.export {
            let values = (0..nq)
                .flat_map(|q| (0..nk).map(move |k| (q, k)))
                .map(|(q, k)| {
                    let v = t[[head, q, k]];
                    if hook == BlockHook::Pattern && k > q + offset {
                        f32::NAN
                    } else {
                        v
                    }
                });
            let (map, lo, hi) = if hook == BlockHook::Pattern {
                (Colormap::Viridis, 0.0, 1.0)
            } else {
                (Colormap::Diverging, -scale, scale)
            };
            cx.requests.push(Request::Export(Figure::Heatmap {
                title: format!("{title} · {key} · H{head}"),
                rows: nq,
                cols: nk,
                values: values.collect(),
                row_labels: labels.clone(),
                col_labels: labels,
                map,
                lo,
                hi,
            }));
        }
        self.step_extra_ui(ui, cx, layer, head);
    }

    /// At `z` and `o_proj`: what the pattern does with V, and what the layer writes.
    fn step_extra_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize, head: usize) {
        let (hook, title) = match cx.s.cursor_step() {
            Step::Layer(_, LayerOp::Z) => (
                BlockHook::Z,
                cx.tr(
                    "z = pattern · V for this head: [position × d_head]",
                    "z = 权重 · V（本头）：[位置 × d_head]",
                ),
            ),
            Step::Layer(_, LayerOp::OProj) => (
                BlockHook::AttnOut,
                cx.tr(
                    "What attention writes: z·W_O^T, [position × d_model]",
                    "注意力写回的内容：z·W_O^T，[位置 × d_model]",
                ),
            ),
            _ => return,
        };
        let key = HookKey::Block(layer, hook);
        ui.separator();
        title_ui(ui, cx, title, &[key]);
        let Some(t) = cx.s.trace.get(key) else { return };
        let values: Vec<f32>;
        let (rows, cols) = if hook == BlockHook::Z {
            let Some(z) = t.as_3d() else { return };
            values = (0..z.shape()[0])
                .flat_map(|p| (0..z.shape()[2]).map(move |d| (p, d)))
                .map(|(p, d)| z[[p, head, d]])
                .collect();
            (z.shape()[0], z.shape()[2])
        } else {
            let Some(o) = t.as_2d() else { return };
            values = o.iter().copied().collect();
            (o.nrows(), o.ncols())
        };
        let scale = max_abs(values.iter().copied());
        let tex = self.z_tex.get(
            ui.ctx(),
            "attention-z",
            key_of((cx.s.pass, key, head)),
            || {
                heatmap::image(rows, cols, |r, c| {
                    Colormap::Diverging.signed(values[r * cols + c], scale)
                })
            },
        );
        let labels = cx.axis_labels();
        let axes = Axes {
            row_labels: Some(&labels),
            row_title: cx.tr("position", "位置"),
            square: false,
            ..Axes::default()
        };
        let w = ui.available_width().min(900.0);
        let hm = heatmap_ui(
            ui,
            tex,
            rows,
            cols,
            vec2(w, (rows as f32 * 14.0).clamp(60.0, 400.0)),
            &axes,
            &cx.theme,
        );
        if let Some((r, c)) = hm.hovered {
            hm.response.on_hover_text(format!(
                "{key}[{r}, {}{c}] = {}",
                if hook == BlockHook::Z {
                    format!("head {head}, ")
                } else {
                    String::new()
                },
                fmt_val(values[r * cols + c])
            ));
        }
    }

    fn readout_line_ui(&self, ui: &mut Ui, cx: &ViewCtx<'_>) {
        let text = self.readout.as_ref().map_or_else(
            || {
                cx.tr(
                    "Hover to read a value from the trace; click a head to open it.",
                    "把鼠标移上去读取记录中的数值；点击一个头可以打开它。",
                )
                .to_string()
            },
            |r| {
                let tok = |i: usize| {
                    cx.s.token_texts
                        .get(i)
                        .map(|t| super::visible(t))
                        .unwrap_or_default()
                };
                format!("{}   q={} k={}", r.text(), tok(r.q), tok(r.k))
            },
        );
        ui.label(RichText::new(text).monospace());
    }
}
