//! One head's matrix (raw scores, masked scores or the pattern, following the cursor) with
//! what this layer's mask does to it: the causal triangle, a sliding window's band (its edge
//! drawn on the map and said in words), or BERT's two-way pattern with nothing masked. (A
//! child module of `attention`: same type, same private helpers.)

use egui::{RichText, Ui, Vec2, pos2, vec2};
use glassbox_engine::load::arch::AttnMask;
use glassbox_engine::{BlockHook, HookKey};
use ndarray::ArrayView3;

use super::{AttentionView, Readout, cell_color, pattern_scale, pattern_t, provenance, row_maxima, shown_hook, window_note_ui};
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, Axes, ColorScale, ScaleMode, heatmap_ui, key_of};
use crate::gui::theme::Colormap;
use crate::gui::views::diagram::mask_text;
use crate::gui::views::{Request, ViewCtx, max_abs, missing_ui, title_ui};

/// One head's matrix and how it is drawn.
struct HeadMap<'a> {
    key: HookKey,
    hook: BlockHook,
    head: usize,
    t: ArrayView3<'a, f32>,
    nq: usize,
    nk_all: usize,
    /// Key columns left out at the left (the attention sink, when hidden).
    k0: usize,
    /// Absolute position of query row 0.
    offset: usize,
    scale: f32,
    mode: ScaleMode,
    maxima: Vec<f32>,
    grads: bool,
    mask: AttnMask,
}

impl HeadMap<'_> {
    fn nk(&self) -> usize {
        self.nk_all - self.k0
    }

    /// Whether the mask hides key `k` from query row `q`.
    fn masked(&self, q: usize, k: usize) -> bool {
        !self.mask.visible(q + self.offset, k)
    }

    fn probabilities(&self) -> bool {
        self.hook == BlockHook::Pattern && !self.grads
    }
}

impl AttentionView {
    pub(super) fn head_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize) {
        let hook = shown_hook(cx.s.cursor_step());
        let key = HookKey::Block(layer, hook);
        let head = cx.s.sel.head.min(cx.s.model.config.n_heads().saturating_sub(1));
        let mask = cx.s.model.arch.mask(layer);
        let title = head_title(cx, hook, mask);
        // An ablated head still computes its pattern; only its output z is zeroed.
        let ablated = if cx.s.ablate.contains(&(layer, head)) { cx.tr(" · ablated: its z is set to 0", " · 已消融：它的 z 被置零") } else { "" };
        title_ui(ui, cx, &format!("{}{title} · L{layer} H{head}{ablated}", cx.d()), &[key]);
        if missing_ui(ui, cx, key) {
            return;
        }
        window_note_ui(ui, cx, layer, head);
        let Some(tensor) = cx.s.trace.get_shared(key).cloned() else { return };
        let Some(t) = tensor.as_3d() else { return };
        let (nq, nk_all) = (t.shape()[1], t.shape()[2]);
        let k0 = usize::from(self.hide_sink && nk_all > 1);
        let scale = max_abs((0..nq).flat_map(|q| (k0..nk_all).map(move |k| (q, k))).map(|(q, k)| t[[head, q, k]]));
        let maxima = row_maxima(&t, k0);
        let (offset, grads, mode) = (cx.s.trace.pos_offset, cx.grads(), self.pattern_scale);
        let m = HeadMap { key, hook, head, t, nq, nk_all, k0, offset, scale, mode, maxima, grads, mask };
        mask_note_ui(ui, cx, &m);
        let clicked = self.head_layout_ui(ui, cx, &m, layer);
        if let Some((q, k)) = clicked {
            cx.s.sel.position = q;
            cx.s.sel.key_position = Some(k);
        }
        if cx.export {
            export_head(cx, &m, title);
        }
        self.step_extra_ui(ui, cx, layer, head);
    }

    /// The map, and the provenance beside it when there is room (it needs ~330 px), else
    /// below; in presenter mode the figure gets the room. Returns the clicked cell.
    fn head_layout_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, m: &HeadMap<'_>, layer: usize) -> Option<(usize, usize)> {
        let avail = ui.available_size();
        if cx.presenting {
            // The whole figure area (cells need not be square), room below for the colour
            // bar and the read-out while hovering.
            let size = vec2(avail.x, avail.y - 2.0 * crate::gui::theme::PRESENTER_PX - 56.0).max(Vec2::splat(180.0));
            return self.head_map_ui(ui, cx, m, size);
        }
        let side_by_side = avail.x >= 640.0;
        let side = if side_by_side { (avail.x - 340.0).min(avail.y - 70.0) } else { avail.x.min(avail.y * 0.7) }.max(180.0);
        let side = Vec2::splat(side);
        if m.grads {
            // Provenance explains an activation from the ones before it: not a gradient.
            return self.head_map_ui(ui, cx, m, side);
        }
        if side_by_side {
            let mut clicked = None;
            ui.horizontal_top(|ui| {
                ui.vertical(|ui| clicked = self.head_map_ui(ui, cx, m, side));
                ui.separator();
                ui.vertical(|ui| {
                    egui::ScrollArea::vertical().id_salt("provenance").show(ui, |ui| provenance::provenance_ui(ui, cx, layer, m.head));
                });
            });
            return clicked;
        }
        let clicked = self.head_map_ui(ui, cx, m, side);
        ui.separator();
        provenance::provenance_ui(ui, cx, layer, m.head);
        clicked
    }

    /// The heatmap with its band edge, read-out and colour bar; returns the clicked cell.
    fn head_map_ui(&mut self, ui: &mut Ui, cx: &ViewCtx<'_>, m: &HeadMap<'_>, size: Vec2) -> Option<(usize, usize)> {
        // The read-out wraps under the map instead of widening the column.
        ui.set_max_width(size.x);
        let theme = cx.theme;
        let tex_key = key_of((cx.s.trace_pass, m.key, m.head, m.mode, m.k0, theme.dark));
        let tex = self.head_tex.get(ui.ctx(), "attention-head", tex_key, || {
            heatmap::image(m.nq, m.nk(), |q, k| {
                let k = k + m.k0;
                let rm = m.maxima[m.head * m.nq + q];
                cell_color(m.hook, m.t[[m.head, q, k]], m.masked(q, k), m.scale, m.mode, rm, m.grads, &theme)
            })
        });
        let labels = cx.axis_labels();
        let col_labels: Vec<String> = labels.iter().skip(m.k0).cloned().collect();
        let marked: Vec<(usize, usize)> = cx.s.sel.key_position.and_then(|k| k.checked_sub(m.k0)).map(|k| (cx.s.sel.position, k)).into_iter().collect();
        let axes = Axes {
            row_labels: Some(&labels),
            col_labels: Some(&col_labels),
            row_title: cx.tr("query position", "查询位置"),
            col_title: cx.tr("key position", "键位置"),
            marked: &marked,
            marked_row: Some(cx.s.sel.position),
            square: !cx.presenting,
        };
        let hm = heatmap_ui(ui, tex, m.nq, m.nk(), size, &axes, &theme);
        self.head_cells = Some((hm.cells, m.nq, m.nk()));
        band_edge_ui(ui, cx, m, hm.cells);
        if let Some((q, k)) = hm.hovered {
            let k = k + m.k0;
            self.readout = Some(Readout { key: m.key, head: m.head, q, k, value: m.t[[m.head, q, k]], base: cx.s.pos_base() });
        }
        let readout = self.readout.as_ref().map_or_else(
            || cx.tr("Hover a cell to read its value; click it to see where it comes from.", "把鼠标移到格子上读取数值；点击格子查看它的来源。").to_string(),
            |r| format!("{}{}", cx.d(), r.text()),
        );
        if !cx.presenting || self.readout.is_some() {
            ui.label(RichText::new(readout).monospace());
        }
        head_colorbar_ui(ui, cx, m);
        hm.clicked.map(|(q, k)| (q, k + m.k0))
    }
}

/// "Attention pattern softmax(scores)", or the scores before / after this layer's mask.
fn head_title(cx: &ViewCtx<'_>, hook: BlockHook, mask: AttnMask) -> &'static str {
    match (hook, mask) {
        (BlockHook::RawScores, _) => cx.tr("Scores q·k/√d (before the mask)", "分数 q·k/√d（掩码之前）"),
        (BlockHook::AttnScores, AttnMask::Causal) => cx.tr("Scores after the causal mask", "加上因果掩码之后的分数"),
        (BlockHook::AttnScores, AttnMask::Sliding { .. }) => cx.tr("Scores after the sliding-window mask", "加上滑动窗口掩码之后的分数"),
        (BlockHook::AttnScores, AttnMask::Bidirectional) => cx.tr("Scores after the mask (two-way: nothing masked)", "掩码之后的分数（双向：没有被遮住的）"),
        _ => cx.tr("Attention pattern softmax(scores)", "注意力模式 softmax(分数)"),
    }
}

/// What this layer's mask does, in words: the triangle, the band and where its edge falls
/// for the selected query (and whether this prompt reaches it), or no triangle at all.
fn mask_note_ui(ui: &mut Ui, cx: &ViewCtx<'_>, m: &HeadMap<'_>) {
    let windowed = cx.s.model.arch.layers.iter().any(|l| matches!(l.mask, AttnMask::Sliding { .. }));
    let note = match m.mask {
        // Among sliding-window layers (Gemma 3), a causal one is a global layer.
        AttnMask::Causal if windowed => cx.tr(
            "Global layer: no window. A query sees itself and every earlier key; the upper triangle is masked.",
            "全局层：没有窗口。每个查询看到自己和之前所有的键；右上三角被遮住。",
        ).to_string(),
        AttnMask::Causal => cx.tr(
            "Causal: a query sees itself and earlier keys; the upper triangle is masked.",
            "因果：每个查询只看到自己和之前的键；右上三角被遮住。",
        ).to_string(),
        AttnMask::Bidirectional => cx.tr(
            "Two-way attention (BERT): no causal mask, no triangle: every query sees every key, before and after it.",
            "双向注意力（BERT）：没有因果掩码，没有三角形：每个查询都能看到前后所有的键。",
        ).to_string(),
        AttnMask::Sliding { window } => band_note(cx, m, window),
    };
    // The band's note starts from the window's size; the others say it all themselves.
    let text = if matches!(m.mask, AttnMask::Sliding { .. }) { format!("{} · {note}", mask_text(m.mask, cx.lang)) } else { note };
    ui.label(RichText::new(text).color(cx.theme.muted()));
}

fn band_note(cx: &ViewCtx<'_>, m: &HeadMap<'_>, window: usize) -> String {
    let q = cx.s.sel.position.min(m.nq.saturating_sub(1)) + m.offset;
    let first = (q + 1).saturating_sub(window);
    let last_q = m.offset + m.nq.saturating_sub(1);
    if last_q < window {
        return cx.lang.tf(
            format!("Query {q} sees keys {first}–{q}. This prompt ({} tokens) is shorter than the window ({window}): no key is past the band edge yet, so the pattern looks causal; from position {window} on, a query no longer sees key 0.", last_q + 1),
            format!("查询 {q} 看到键 {first}–{q}。这个提示词（{} 个词元）比窗口（{window}）短：还没有键落在带状区域之外，所以模式看起来和因果掩码一样；从位置 {window} 起，查询就看不到键 0 了。", last_q + 1),
        );
    }
    cx.lang.tf(
        format!("Query {q} sees keys {first}–{q} (the band; keys left of its edge, marked on the map, are masked)."),
        format!("查询 {q} 看到键 {first}–{q}（带状区域；地图上标出的边线左侧的键被遮住）。"),
    )
}

/// The sliding window's left edge on the map: key `q − window + 1` of each query row.
fn band_edge_ui(ui: &Ui, cx: &ViewCtx<'_>, m: &HeadMap<'_>, cells: egui::Rect) {
    let AttnMask::Sliding { window } = m.mask else { return };
    let (cw, ch) = (cells.width() / m.nk().max(1) as f32, cells.height() / m.nq.max(1) as f32);
    let stroke = egui::Stroke::new(2.0, cx.theme.highlight());
    let painter = ui.painter_at(cells);
    for q in 0..m.nq {
        let edge = (q + m.offset + 1).checked_sub(window).and_then(|e| e.checked_sub(m.k0));
        let Some(e) = edge.filter(|&e| e > 0 && e < m.nk()) else { continue };
        let x = cells.min.x + e as f32 * cw;
        let (y0, y1) = (cells.min.y + q as f32 * ch, cells.min.y + (q + 1) as f32 * ch);
        painter.line_segment([pos2(x, y0), pos2(x, y1)], stroke);
        painter.line_segment([pos2(x, y1), pos2(x + cw, y1)], stroke);
    }
}

fn head_colorbar_ui(ui: &mut Ui, cx: &ViewCtx<'_>, m: &HeadMap<'_>) {
    let hidden = if m.k0 > 0 { cx.tr("key position 0 hidden", "隐藏了键位置 0") } else { "" };
    let (map, scale, unit) = match m.hook {
        _ if m.grads => (Colormap::Diverging, ColorScale::symmetric(m.scale), if m.hook == BlockHook::Pattern { "∂loss/∂p" } else { "∂loss/∂(q·k/√d)" }),
        BlockHook::Pattern => (Colormap::Viridis, pattern_scale(m.mode), cx.tr("p (attention pattern)", "p（注意力模式）")),
        _ => (Colormap::Diverging, ColorScale::symmetric(m.scale), cx.tr("score q·k/√d", "分数 q·k/√d")),
    };
    heatmap::colorbar_ui(ui, map, &scale, unit, hidden, cx.lang, &cx.theme);
}

/// File → Export: the head's matrix as drawn (masked cells blank).
fn export_head(cx: &mut ViewCtx<'_>, m: &HeadMap<'_>, title: &str) {
    let per_row = m.probabilities() && m.mode == ScaleMode::PerRow;
    let values = (0..m.nq).flat_map(|q| (m.k0..m.nk_all).map(move |k| (q, k))).map(|(q, k)| {
        let v = m.t[[m.head, q, k]];
        if (m.hook == BlockHook::Pattern || m.grads) && m.masked(q, k) {
            f32::NAN
        } else if per_row {
            // The export draws a fixed 0..1 scale: hand it the per-row values.
            pattern_t(m.mode, v, m.maxima[m.head * m.nq + q])
        } else {
            v
        }
    });
    let (map, scale, unit) = if m.grads {
        (Colormap::Diverging, ColorScale::symmetric(m.scale), "∂loss/∂")
    } else if m.probabilities() {
        let s = if per_row { ColorScale::fixed(0.0, 1.0) } else { pattern_scale(m.mode) };
        (Colormap::Viridis, s, if per_row { cx.tr("p ÷ row max", "p ÷ 本行最大值") } else { cx.tr("p (attention pattern)", "p（注意力模式）") })
    } else {
        (Colormap::Diverging, ColorScale::symmetric(m.scale), cx.tr("score q·k/√d", "分数 q·k/√d"))
    };
    let labels = cx.axis_labels();
    let col_labels = labels.iter().skip(m.k0).cloned().collect();
    cx.requests.push(Request::Export(Figure::Heatmap {
        title: format!("{title} · {}{} · H{}", cx.d(), m.key, m.head),
        rows: m.nq,
        cols: m.nk(),
        values: values.collect(),
        row_labels: labels,
        col_labels,
        row_title: cx.tr("query position", "查询位置").into(),
        col_title: cx.tr("key position", "键位置").into(),
        map,
        scale,
        unit: unit.into(),
    }));
}
