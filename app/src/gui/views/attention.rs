//! Attention: one head's pattern (or its scores before/after the causal mask, following the
//! cursor), all heads of a layer, all layers × heads, and a head view of lines from the
//! selected token. Clicking a cell opens its provenance (see `provenance`).
//!
//! Every matrix is one cached texture; hovering reads the real value out of the trace.

use egui::{Color32, RichText, Ui, Vec2, vec2};
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use super::{Request, ViewCtx, fmt_val, max_abs, missing_ui, provenance, title_ui};

pub mod ablation;
mod all_heads;
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, Axes, CachedTexture, ColorScale, ScaleMode, heatmap_ui, key_of};
use crate::gui::theme::{Colormap, NON_FINITE, Theme};

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
    /// Rows of the trace (of a long pass's window: add `base` for the position).
    pub q: usize,
    pub k: usize,
    pub value: f32,
    pub base: usize,
}

impl Readout {
    pub fn text(&self) -> String {
        format!(
            "{}[head {}, q {}, k {}] = {}",
            self.key,
            self.head,
            self.base + self.q,
            self.base + self.k,
            fmt_val(self.value)
        )
    }
}

#[derive(Default)]
pub struct AttentionView {
    pub mode: AttnMode,
    /// How p becomes a colour: linear, √p, log p, or per query row, so small weights away
    /// from the attention sink stay visible.
    pub pattern_scale: ScaleMode,
    /// Leave key position 0 (the attention sink) out of the one-head picture.
    pub hide_sink: bool,
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
    /// The head-ablation picker is open beside the figure.
    pub picker: bool,
}

/// Which matrix the cursor is about: raw scores, masked scores, or the pattern.
fn shown_hook(cursor: Step) -> BlockHook {
    match cursor {
        Step::Layer(_, LayerOp::Scores) => BlockHook::RawScores,
        Step::Layer(_, LayerOp::Mask) => BlockHook::AttnScores,
        _ => BlockHook::Pattern,
    }
}

/// Where a probability sits on the colormap: `row_max` is the largest p of its query row
/// (used by the per-row scale).
pub fn pattern_t(mode: ScaleMode, p: f32, row_max: f32) -> f32 {
    let p = p.max(0.0);
    match mode {
        ScaleMode::Sqrt => p.sqrt(),
        // Four decades: 1e-4 … 1.
        ScaleMode::Log => ((p.max(1e-4).log10() + 4.0) / 4.0).clamp(0.0, 1.0),
        ScaleMode::PerRow if row_max > 0.0 => p / row_max,
        _ => p,
    }
}

/// The colour bar of a pattern scale.
pub fn pattern_scale(mode: ScaleMode) -> ColorScale {
    let mut s = ColorScale::fixed(0.0, 1.0);
    s.mode = mode;
    if mode == ScaleMode::Log {
        s.lo = 1e-4;
    }
    s
}

/// The pattern scales offered (a probability has fixed ends, so no robust clipping).
const PATTERN_MODES: [ScaleMode; 4] = [
    ScaleMode::Linear,
    ScaleMode::Sqrt,
    ScaleMode::Log,
    ScaleMode::PerRow,
];

/// Colors one attention-matrix value. `causal_masked`: k is in the future of q. `grads`:
/// `v` is a gradient (signed whatever the hook; no gradient flows through a masked cell).
/// A NaN or an infinity that is not the mask's −∞ gets the non-finite colour.
#[allow(clippy::too_many_arguments)]
fn cell_color(
    hook: BlockHook,
    v: f32,
    causal_masked: bool,
    scale: f32,
    mode: ScaleMode,
    row_max: f32,
    grads: bool,
    theme: &Theme,
) -> Color32 {
    let masked = causal_masked
        && match hook {
            BlockHook::Pattern => true,
            // Before the mask the scores are real numbers everywhere.
            BlockHook::RawScores => grads,
            _ => grads || v == f32::NEG_INFINITY,
        };
    match hook {
        _ if masked => theme.masked(),
        _ if !v.is_finite() => NON_FINITE,
        BlockHook::Pattern if !grads => Colormap::Viridis.at(pattern_t(mode, v, row_max)),
        _ => Colormap::Diverging.signed(v, scale),
    }
}

/// Largest value of each `[head, q]` row over keys `first_k..`, for the per-row scale.
fn row_maxima(t: &ndarray::ArrayView3<'_, f32>, first_k: usize) -> Vec<f32> {
    let (h, q, k) = t.dim();
    (0..h * q)
        .map(|i| {
            (first_k..k)
                .map(|kk| t[[i / q, i % q, kk]])
                .filter(|v| v.is_finite())
                .fold(0.0f32, f32::max)
        })
        .collect()
}

/// A long pass's window shows the keys of its own positions: say how much weight the
/// selected query puts on the earlier ones, and where most of it goes.
fn window_note_ui(ui: &mut Ui, cx: &ViewCtx<'_>, layer: usize, head: usize) {
    let Some(l) = &cx.s.long else { return };
    let Some(cut) = l.key_cut(layer) else { return };
    let Some(w) = cut.weight_before.as_ref().and_then(|t| t.as_2d()) else { return };
    let q = cx.s.sel.position;
    let (Some(&before), Some(top)) = (w.get((head, q)), cut.top_before.get(head).and_then(|h| h.get(q))) else { return };
    let tops: Vec<String> = top
        .iter()
        .map(|&(k, p)| {
            let tok = l.texts.get(k).map(|t| super::visible(t)).unwrap_or_default();
            format!("{k} “{tok}” {}", fmt_val(p))
        })
        .collect();
    let (a, b) = (cut.first_key, cut.first_key + cx.s.n_tokens() - 1);
    ui.label(RichText::new(cx.lang.tf(
        format!("Keys shown: positions {a}–{b}. Query {} puts {} of its weight on earlier keys; the largest: {}.", cx.pos(q), fmt_val(before), tops.join(", ")),
        format!("显示的键：位置 {a}–{b}。查询 {} 放在更早的键上的权重为 {}；最大的几个：{}。", cx.pos(q), fmt_val(before), tops.join("，")),
    )).color(cx.theme.muted()));
}

impl AttentionView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        self.readout = None;
        let layer = cx.s.view_layer();
        // Presenter mode shows the figure only; its settings are chosen before.
        if !cx.presenting {
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
            ui.label(cx.tr("colour scale:", "颜色刻度："));
            let zh = cx.lang == crate::gui::i18n::Lang::Zh;
            for m in PATTERN_MODES {
                ui.selectable_value(&mut self.pattern_scale, m, m.label(zh));
            }
            if self.mode == AttnMode::Head {
                ui.checkbox(
                    &mut self.hide_sink,
                    cx.tr("hide key position 0", "隐藏键位置 0"),
                );
            }
            ui.separator();
            ui.toggle_value(&mut self.picker, cx.tr("Ablate heads…", "消融注意力头……"));
        });
        }
        if self.picker && !cx.presenting {
            egui::Panel::right("ablation-picker")
                .resizable(false)
                .show(ui, |ui| ablation::picker_ui(ui, cx));
        }
        if self.mode != AttnMode::Overview && !cx.presenting {
            self.head_picker_ui(ui, cx);
        }
        if !cx.presenting {
            ui.separator();
        }
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
            if !cx.presenting {
                ui.label(cx.tr("Query head:", "查询头："));
            }
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
            if cx.presenting {
                return;
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
                cx.tr("Scores q·k/√d (before the mask)", "分数 q·k/√d（掩码之前）")
            }
            BlockHook::AttnScores => {
                cx.tr("Scores after the causal mask", "加上因果掩码之后的分数")
            }
            _ => cx.tr(
                "Attention pattern softmax(scores)",
                "注意力模式 softmax(分数)",
            ),
        };
        // An ablated head still computes its pattern; only its output z is zeroed.
        let ablated = if cx.s.ablate.contains(&(layer, head)) {
            cx.tr(" · ablated: its z is set to 0", " · 已消融：它的 z 被置零")
        } else {
            ""
        };
        let grads = cx.grads();
        title_ui(ui, cx, &format!("{}{title} · L{layer} H{head}{ablated}", cx.d()), &[key]);
        if missing_ui(ui, cx, key) {
            return;
        }
        window_note_ui(ui, cx, layer, head);
        let Some(t) = cx.s.trace.get(key).and_then(|t| t.as_3d()) else {
            return;
        };
        let (nq, nk_all) = (t.shape()[1], t.shape()[2]);
        let k0 = usize::from(self.hide_sink && nk_all > 1);
        let nk = nk_all - k0;
        let offset = cx.s.trace.pos_offset;
        let scale = max_abs(
            (0..nq)
                .flat_map(|q| (k0..nk_all).map(move |k| (q, k)))
                .map(|(q, k)| t[[head, q, k]]),
        );
        let (mode, theme) = (self.pattern_scale, cx.theme);
        let maxima = row_maxima(&t, k0);
        let tex_key = key_of((cx.s.trace_pass, key, head, mode, k0, theme.dark));
        let tex = self.head_tex.get(ui.ctx(), "attention-head", tex_key, || {
            heatmap::image(nq, nk, |q, k| {
                let k = k + k0;
                let rm = maxima[head * nq + q];
                cell_color(hook, t[[head, q, k]], k > q + offset, scale, mode, rm, grads, &theme)
            })
        });
        // Probabilities on viridis; scores, and every gradient, on the diverging map.
        let probabilities = hook == BlockHook::Pattern && !grads;
        let all_labels = cx.axis_labels();
        let col_labels: Vec<String> = all_labels.iter().skip(k0).cloned().collect();
        let labels = all_labels.clone();
        let marked: Vec<(usize, usize)> =
            cx.s.sel
                .key_position
                .and_then(|k| k.checked_sub(k0))
                .map(|k| (cx.s.sel.position, k))
                .into_iter()
                .collect();
        // Heatmap and provenance side by side when there is room (provenance needs ~330
        // px), else stacked: a projector zoom leaves little width.
        // In presenter mode the figure gets the room; the provenance goes below it.
        let avail = ui.available_size();
        let side_by_side = avail.x >= if cx.presenting { 1000.0 } else { 640.0 };
        let side = if side_by_side {
            (avail.x - 340.0).min(avail.y - 70.0)
        } else if cx.presenting {
            // Room below for the colour bar (and the read-out while hovering).
            avail.x.min(avail.y - 64.0)
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
                col_labels: Some(&col_labels),
                row_title: cx.tr("query position", "查询位置"),
                col_title: cx.tr("key position", "键位置"),
                marked: &marked,
                marked_row: Some(cx.s.sel.position),
                square: true,
            };
            let hm = heatmap_ui(ui, tex, nq, nk, Vec2::splat(side), &axes, &theme);
            self.head_cells = Some((hm.cells, nq, nk));
            if let Some((q, k)) = hm.hovered {
                let k = k + k0;
                self.readout = Some(Readout {
                    key,
                    head,
                    q,
                    k,
                    value: t[[head, q, k]],
                    base: cx.s.pos_base(),
                });
            }
            clicked = hm.clicked.map(|(q, k)| (q, k + k0));
            let readout = self.readout.as_ref().map_or_else(
                || {
                    cx.tr(
                        "Hover a cell to read its value; click it to see where it comes from.",
                        "把鼠标移到格子上读取数值；点击格子查看它的来源。",
                    )
                    .to_string()
                },
                |r| format!("{}{}", cx.d(), r.text()),
            );
            if !cx.presenting || self.readout.is_some() {
                ui.label(RichText::new(readout).monospace());
            }
            let hidden = if k0 > 0 {
                cx.tr("key position 0 hidden", "隐藏了键位置 0")
            } else {
                ""
            };
            match hook {
                _ if grads => heatmap::colorbar_ui(
                    ui,
                    Colormap::Diverging,
                    &ColorScale::symmetric(scale),
                    if hook == BlockHook::Pattern { "∂loss/∂p" } else { "∂loss/∂(q·k/√d)" },
                    hidden,
                    cx.lang,
                    &theme,
                ),
                BlockHook::Pattern => heatmap::colorbar_ui(
                    ui,
                    Colormap::Viridis,
                    &pattern_scale(mode),
                    cx.tr("p (attention pattern)", "p（注意力模式）"),
                    hidden,
                    cx.lang,
                    &theme,
                ),
                _ => heatmap::colorbar_ui(
                    ui,
                    Colormap::Diverging,
                    &ColorScale::symmetric(scale),
                    cx.tr("score q·k/√d", "分数 q·k/√d"),
                    hidden,
                    cx.lang,
                    &theme,
                ),
            }
        };
        if grads {
            // Provenance explains an activation from the ones before it: not a gradient.
            heatmap_column(ui);
        } else if side_by_side {
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| heatmap_column(ui));
                ui.separator();
                ui.vertical(|ui| {
                    egui::ScrollArea::vertical()
                        .id_salt("provenance")
                        .show(ui, |ui| provenance::provenance_ui(ui, cx, layer, head));
                });
            });
        } else if cx.presenting {
            heatmap_column(ui);
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
                .flat_map(|q| (k0..nk_all).map(move |k| (q, k)))
                .map(|(q, k)| {
                    let v = t[[head, q, k]];
                    if (hook == BlockHook::Pattern || grads) && k > q + offset {
                        f32::NAN
                    } else if probabilities && mode == ScaleMode::PerRow {
                        // The export draws a fixed 0..1 scale: hand it the per-row values.
                        pattern_t(mode, v, maxima[head * nq + q])
                    } else {
                        v
                    }
                });
            let (map, scale, unit) = if grads {
                (Colormap::Diverging, ColorScale::symmetric(scale), "∂loss/∂")
            } else if probabilities {
                let s = if mode == ScaleMode::PerRow {
                    ColorScale::fixed(0.0, 1.0)
                } else {
                    pattern_scale(mode)
                };
                let unit = if mode == ScaleMode::PerRow {
                    cx.tr("p ÷ row max", "p ÷ 本行最大值")
                } else {
                    cx.tr("p (attention pattern)", "p（注意力模式）")
                };
                (Colormap::Viridis, s, unit)
            } else {
                (
                    Colormap::Diverging,
                    ColorScale::symmetric(scale),
                    cx.tr("score q·k/√d", "分数 q·k/√d"),
                )
            };
            cx.requests.push(Request::Export(Figure::Heatmap {
                title: format!("{title} · {}{key} · H{head}", cx.d()),
                rows: nq,
                cols: nk,
                values: values.collect(),
                row_labels: labels.clone(),
                col_labels,
                row_title: cx.tr("query position", "查询位置").into(),
                col_title: cx.tr("key position", "键位置").into(),
                map,
                scale,
                unit: unit.into(),
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
            key_of((cx.s.trace_pass, key, head)),
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
                "{}{key}[{r}, {}{c}] = {}",
                cx.d(),
                if hook == BlockHook::Z {
                    format!("head {head}, ")
                } else {
                    String::new()
                },
                fmt_val(values[r * cols + c])
            ));
        }
        let unit = if cx.grads() { "∂loss/∂" } else { cx.tr("value", "数值") };
        heatmap::colorbar_ui(ui, Colormap::Diverging, &ColorScale::symmetric(scale), unit, "", cx.lang, &cx.theme);
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
                format!("{}{}   q={} k={}", cx.d(), r.text(), tok(r.q), tok(r.k))
            },
        );
        ui.label(RichText::new(text).monospace());
    }
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("attention");

impl super::View for AttentionView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Attention", "注意力")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["head", "layer", "all-layers", "lines", "ablate"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "head" => self.mode = AttnMode::Head,
            "layer" => self.mode = AttnMode::Layer,
            "all-layers" => self.mode = AttnMode::Overview,
            "lines" => self.mode = AttnMode::Lines,
            "ablate" => self.picker = true,
            _ => return false,
        }
        true
    }

    fn explains(&self) -> &'static [glassbox_engine::program::op_table::OpView] {
        &[glassbox_engine::program::op_table::OpView::Attention]
    }

    fn shows_gradients(&self) -> bool {
        true
    }

    fn detail_needed(&self, s: &crate::gui::session::Session) -> Option<glassbox_engine::long::recompute::Detail> {
        Some(s.detail_for_view(false))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        AttentionView::ui(self, ui, cx);
    }
}
