//! Attention: one head's pattern (or its scores before/after the layer's mask — causal,
//! sliding window or two-way — following the cursor; `head`), all heads of a layer, all
//! layers × heads, and a head view of lines from the selected token (`all_heads`). Clicking a cell opens its provenance (see `provenance`).
//!
//! Every matrix is one cached texture; hovering reads the real value out of the trace.

use egui::{Color32, RichText, Ui, vec2};
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use super::{ViewCtx, fmt_val, max_abs, provenance, title_ui};

pub mod ablation;
mod all_heads;
mod head;
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
    /// The scale was picked by hand; until then [`auto_pattern_scale`] picks it for each
    /// head shown.
    pub scale_picked: bool,
    /// What the automatic scale was last chosen for (pass, layer, head, hidden sink).
    auto_for: Option<u64>,
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

/// Below this share of the map a cell reads as black.
pub const DARK_T: f32 = 0.1;

/// The most of a figure's cells that may sit in its darkest tenth before the automatic
/// scale moves on.
pub const DARK_SHARE: f32 = 0.9;

/// The scale a pattern opens with, by a rule on its values `(p, row max)` (visible cells
/// only): linear, unless more than [`DARK_SHARE`] of the cells would sit below [`DARK_T`]
/// of the map (a head spread over thousands of keys has every p near 1/n); then √, then
/// log (four decades), the first that shows the spread (else the least dark).
pub fn auto_pattern_scale(cells: &[(f32, f32)]) -> ScaleMode {
    let dark = |mode: ScaleMode| {
        let n = cells.iter().filter(|&&(p, rm)| pattern_t(mode, p, rm) < DARK_T).count();
        n as f32 / cells.len().max(1) as f32
    };
    let modes = [ScaleMode::Linear, ScaleMode::Sqrt, ScaleMode::Log];
    modes.into_iter().find(|&m| dark(m) <= DARK_SHARE).unwrap_or_else(|| {
        // None does: the least dark of them.
        modes.into_iter().min_by(|a, b| dark(*a).total_cmp(&dark(*b))).unwrap_or(ScaleMode::Log)
    })
}

/// The pattern scales offered (a probability has fixed ends, so no robust clipping).
const PATTERN_MODES: [ScaleMode; 4] = [
    ScaleMode::Linear,
    ScaleMode::Sqrt,
    ScaleMode::Log,
    ScaleMode::PerRow,
];

/// Colors one attention-matrix value. `hidden`: the layer's mask hides k from q (the
/// future, or outside a sliding window; never in a two-way layer). `grads`:
/// `v` is a gradient (signed whatever the hook; no gradient flows through a masked cell).
/// A NaN or an infinity that is not the mask's −∞ gets the non-finite colour.
#[allow(clippy::too_many_arguments)]
fn cell_color(
    hook: BlockHook,
    v: f32,
    hidden: bool,
    scale: f32,
    mode: ScaleMode,
    row_max: f32,
    grads: bool,
    theme: &Theme,
) -> Color32 {
    let masked = hidden
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
                self.scale_picked |= ui.selectable_value(&mut self.pattern_scale, m, m.label(zh)).clicked();
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
        self.auto_scale(cx, layer);
        match self.mode {
            AttnMode::Head => self.head_ui(ui, cx, layer),
            AttnMode::Layer => self.layer_ui(ui, cx, layer),
            AttnMode::Overview => self.overview_ui(ui, cx),
            AttnMode::Lines => self.lines_ui(ui, cx, layer),
        }
    }

    /// Unless a scale was picked by hand, the one [`auto_pattern_scale`] picks for the
    /// selected head's pattern in `layer` (the same scale then colours every mode).
    fn auto_scale(&mut self, cx: &ViewCtx<'_>, layer: usize) {
        let key = HookKey::Block(layer, BlockHook::Pattern);
        if self.scale_picked || cx.grads() {
            return;
        }
        let Some(tensor) = cx.s.trace.get_shared(key).cloned() else { return };
        let Some(t) = tensor.as_3d() else { return };
        let (nh, nq, nk) = t.dim();
        let head = cx.s.sel.head.min(nh.saturating_sub(1));
        let k0 = usize::from(self.hide_sink && nk > 1);
        let at = key_of((cx.s.trace_pass, layer, head, k0));
        if self.auto_for == Some(at) || nh == 0 {
            return;
        }
        let (mask, offset) = (cx.s.model.arch.mask(layer), cx.s.trace.pos_offset);
        // Every k-th cell of a long prompt's head: the rule reads a share.
        let stride = (nq * nk / 200_000).max(1);
        let maxima = row_maxima(&t, k0);
        let cells: Vec<(f32, f32)> = (0..nq)
            .flat_map(|q| (k0..nk).map(move |k| (q, k)))
            .step_by(stride)
            .filter(|&(q, k)| mask.visible(q + offset, k) && t[[head, q, k]].is_finite())
            .map(|(q, k)| (t[[head, q, k]], maxima[head * nq + q]))
            .collect();
        self.pattern_scale = auto_pattern_scale(&cells);
        self.auto_for = Some(at);
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
            if group == 1 {
                // Multi-head attention: no sharing to point at.
                ui.label(cx.lang.tf(format!("→ its own K/V head {g} (multi-head)"), format!("→ 它自己的 K/V 头 {g}（多头）")));
                return;
            }
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

    fn mode(&self) -> Option<&'static str> {
        Some(match self.mode {
            AttnMode::Head => "head",
            AttnMode::Layer => "layer",
            AttnMode::Overview => "all-layers",
            AttnMode::Lines => "lines",
        })
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
