//! The attention views that show many heads at once: all heads of a layer, all layers ×
//! heads, and the head view of lines. (A child module of `attention`: same type, same
//! private state.)

use egui::{Color32, RichText, Sense, Stroke, Ui, pos2, vec2};
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use glassbox_engine::load::arch::AttnMask;

use super::{AttentionView, AttnMode, Readout, cell_color, pattern_t, row_maxima, shown_hook};
use crate::gui::theme::Theme;
use crate::gui::views::diagram::mask_text;
use crate::gui::heatmap::ScaleMode;
use crate::gui::theme::Colormap;
use crate::gui::heatmap::{self, Axes, CachedTexture, heatmap_ui, key_of};
use crate::gui::views::{Request, ViewCtx, max_abs, missing_ui, title_ui, visible};

/// One layer's heads tiled on one texture: a block per head, the heads that share a K/V
/// head side by side.
struct Tiles {
    n_heads: usize,
    group: usize,
    cols: usize,
    rows: usize,
    /// Block width and height in cells (the head's matrix plus a gap).
    bw: usize,
    bh: usize,
    nq: usize,
    nk: usize,
}

impl Tiles {
    fn new(n_heads: usize, group: usize, nq: usize, nk: usize) -> Self {
        let cols = if group > 1 { group } else { (n_heads as f32).sqrt().ceil() as usize };
        let gap = 2;
        Tiles { n_heads, group, cols, rows: n_heads.div_ceil(cols), bw: nk + gap, bh: nq + gap, nq, nk }
    }

    /// The (head, query, key) of a texture cell, if it is inside a head's block.
    fn at(&self, (y, x): (usize, usize)) -> Option<(usize, usize, usize)> {
        let (h, q, k) = ((y / self.bh) * self.cols + x / self.bw, y % self.bh, x % self.bw);
        (h < self.n_heads && q < self.nq && k < self.nk).then_some((h, q, k))
    }
}

impl AttentionView {
    pub(super) fn layer_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize) {
        let hook = shown_hook(cx.s.cursor_step());
        let key = HookKey::Block(layer, hook);
        let title = cx.lang.tf(format!("Layer {layer}: every head"), format!("第 {layer} 层：所有头"));
        title_ui(ui, cx, &title, &[key]);
        if missing_ui(ui, cx, key) {
            return;
        }
        let mask = cx.s.model.arch.mask(layer);
        ui.label(RichText::new(mask_text(mask, cx.lang)).color(cx.theme.muted()));
        let Some(tensor) = cx.s.trace.get_shared(key).cloned() else { return };
        let Some(t) = tensor.as_3d() else { return };
        let c = &cx.s.model.config;
        let tiles = Tiles::new(c.n_heads(), c.group_size().max(1), t.shape()[1], t.shape()[2]);
        let offset = cx.s.trace.pos_offset;
        let scale = max_abs(t.iter().copied());
        let (mode, theme, grads) = (self.pattern_scale, cx.theme, cx.grads());
        let tex = self.layer_tex.get(ui.ctx(), "attention-layer", key_of((cx.s.trace_pass, key, mode, theme.dark)), || {
            let maxima = row_maxima(&t, 0);
            heatmap::image(tiles.rows * tiles.bh, tiles.cols * tiles.bw, |y, x| {
                let Some((h, q, k)) = tiles.at((y, x)) else { return theme.panel_fill() };
                let hidden = !mask.visible(q + offset, k);
                cell_color(hook, t[[h, q, k]], hidden, scale, mode, maxima[h * tiles.nq + q], grads, &theme)
            })
        });
        let avail = ui.available_size() - vec2(0.0, 80.0);
        let hm = heatmap_ui(ui, tex, tiles.rows * tiles.bh, tiles.cols * tiles.bw, avail, &Axes::default(), &theme);
        head_badges_ui(ui, cx, &tiles, hm.cells);
        if let Some((h, q, k)) = hm.hovered.and_then(|c| tiles.at(c)) {
            self.readout = Some(Readout { key, head: h, q, k, value: t[[h, q, k]], base: cx.s.pos_base() });
        }
        if let Some((h, q, k)) = hm.clicked.and_then(|c| tiles.at(c)) {
            cx.s.sel.head = h;
            cx.s.sel.position = q;
            cx.s.sel.key_position = Some(k);
            self.mode = AttnMode::Head;
        }
        self.readout_line_ui(ui, cx);
        layer_colorbar_ui(ui, cx, hook, scale, mode);
    }

    /// Every layer (rows) × every head (columns), as blocks of up to 128 px (longer
    /// sequences are max-pooled for the picture; read-outs stay exact). The layers are
    /// split into side-by-side column groups when that makes the blocks larger (30 layers
    /// in one column would waste a wide screen); one cached texture per group.
    pub fn overview_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if cx.activations_only_ui(ui) {
            return;
        }
        title_ui(ui, cx, cx.tr("Attention patterns: all layers × heads", "注意力模式：所有层 × 所有头"), &[]);
        // A long pass: the engine's max-pooled patterns of every position (`cell` positions
        // per side of a cell); else the recorded patterns.
        let pooled = cx.s.long.as_ref().and_then(|l| l.overview.clone());
        let cell = pooled.as_ref().map_or(1, |o| o.cell);
        if pooled.is_none() && missing_ui(ui, cx, HookKey::Block(0, BlockHook::Pattern)) {
            return;
        }
        let n_layers = cx.s.model.config.n_layers();
        let shared: Vec<Option<std::sync::Arc<glassbox_engine::Tensor>>> = match &pooled {
            Some(o) => o.attention.iter().map(|t| Some(std::sync::Arc::new(t.clone()))).collect(),
            None => (0..n_layers).map(|l| cx.s.trace.get_shared(HookKey::Block(l, BlockHook::Pattern)).cloned()).collect(),
        };
        let layers: Vec<Option<ndarray::ArrayView3<'_, f32>>> = shared.iter().map(|t| t.as_ref().and_then(|t| t.as_3d())).collect();
        if pooled.is_some() {
            let n = cx.s.long.as_ref().map_or(0, |l| l.n_tokens());
            ui.label(RichText::new(cx.lang.tf(
                format!("All {n} positions: each cell is the largest weight among {cell} × {cell} (query, key) pairs."),
                format!("全部 {n} 个位置：每个格子是 {cell} × {cell} 个（查询，键）对中的最大权重。"),
            )).color(cx.theme.muted()));
        }
        let ready = self.overview_ready(ui, cx, layers.iter().filter(|l| l.is_some()).count(), n_layers);
        let Some(first) = layers[0].as_ref() else { return };
        let grid = OverviewGrid::new(first.shape()[1], first.shape()[2], cx.s.trace.pos_offset, cell);
        ui.label(RichText::new(cx.tr("Each block: one head's pattern (rows: queries, columns: keys). Color: p (yellow = 1). Click a block to open that head.", "每个小块是一个头的注意力模式（行：查询，列：键）。颜色：注意力模式的值 p（黄色 = 1）。点击小块打开该头。")).color(cx.theme.muted()));
        let (hovered, clicked) = self.overview_groups_ui(ui, cx, &layers, &grid, ready);
        if let Some((l, h, q, k)) = hovered
            && let Some(p) = layers[l].as_ref()
        {
            let key = HookKey::Block(l, BlockHook::Pattern);
            self.readout = Some(Readout { key, head: h, q: q * cell, k: k * cell, value: p[[h, q, k]], base: 0 });
        }
        if let Some((l, h, _, _)) = clicked {
            cx.s.sel.head = h;
            cx.requests.push(Request::Goto(Step::Layer(l, LayerOp::Softmax)));
            self.mode = AttnMode::Head;
        }
        self.readout_line_ui(ui, cx);
        let unit = cx.tr("p (attention pattern; the largest in each block pixel)", "p（注意力模式；每个像素取其中最大值）");
        heatmap::colorbar_ui(ui, Colormap::Viridis, &super::pattern_scale(self.pattern_scale), unit, "", cx.lang, &cx.theme);
    }

    /// How many layers the overview texture shows: while a pass streams in, the (large)
    /// texture is rebuilt at most twice a second, not once per arriving layer; the finished
    /// pass is always shown at once.
    fn overview_ready(&mut self, ui: &Ui, cx: &ViewCtx<'_>, ready: usize, n_layers: usize) -> usize {
        let now = ui.input(|i| i.time);
        let (built_pass, built_ready, built_at) = self.overview_built;
        let same_pass = built_pass == cx.s.trace_pass;
        if same_pass && ready != built_ready && ready < n_layers && now - built_at < 0.5 {
            ui.ctx().request_repaint_after(std::time::Duration::from_millis(500));
            return built_ready;
        }
        if !same_pass || ready != built_ready {
            self.overview_built = (cx.s.trace_pass, ready, now);
        }
        ready
    }

    /// The column groups side by side; returns the hovered and clicked
    /// (layer, head, query cell, key cell).
    #[allow(clippy::type_complexity)]
    fn overview_groups_ui(&mut self, ui: &mut Ui, cx: &ViewCtx<'_>, layers: &[Option<ndarray::ArrayView3<'_, f32>>], grid: &OverviewGrid, ready: usize) -> (Option<(usize, usize, usize, usize)>, Option<(usize, usize, usize, usize)>) {
        let (n_layers, n_heads) = (layers.len(), cx.s.model.config.n_heads());
        let label_w = 30.0;
        let avail = ui.available_size() - vec2(0.0, 84.0);
        let spacing = ui.spacing().item_spacing.x;
        let block_px = |g: usize| {
            let per = n_layers.div_ceil(g);
            let width = avail.x - g as f32 * (label_w + 2.0 * spacing) - 4.0;
            (width / (g * n_heads * grid.bw) as f32).min(avail.y / (per * grid.bh) as f32)
        };
        let groups = (1..=4usize).filter(|&g| g <= n_layers).max_by(|&a, &b| block_px(a).total_cmp(&block_px(b))).unwrap_or(1);
        let per = n_layers.div_ceil(groups);
        self.overview_tex.resize_with(groups, CachedTexture::default);
        let (mode, theme) = (self.pattern_scale, cx.theme);
        let masks: Vec<AttnMask> = (0..n_layers).map(|l| cx.s.model.arch.mask(l)).collect();
        let (mut hovered, mut clicked) = (None, None);
        ui.add_space(14.0); // head labels go here
        ui.horizontal_top(|ui| {
            for (gi, tex_cache) in self.overview_tex.iter_mut().enumerate() {
                let first_layer = gi * per;
                let rows = per.min(n_layers.saturating_sub(first_layer));
                if rows == 0 {
                    break;
                }
                let (label_rect, _) = ui.allocate_exact_size(vec2(label_w, 10.0), Sense::hover());
                let key = key_of((cx.s.trace_pass, ready, mode, theme.dark, gi, groups));
                let tex = tex_cache.get(ui.ctx(), "attention-overview", key, || grid.image(layers, &masks, first_layer..first_layer + rows, n_heads, mode, &theme));
                let size = vec2(block_px(groups) * (n_heads * grid.bw) as f32, avail.y);
                let hm = heatmap_ui(ui, tex, rows * grid.bh, n_heads * grid.bw, size, &Axes::default(), &theme);
                overview_labels_ui(ui, cx, grid, hm.cells, label_rect, first_layer..first_layer + rows, n_heads);
                let at = |(y, x): (usize, usize)| grid.at(first_layer, n_layers, n_heads, (y, x));
                hovered = hovered.or(hm.hovered.and_then(at));
                clicked = clicked.or(hm.clicked.and_then(at));
            }
        });
        (hovered, clicked)
    }

    /// Lines from the selected query token to every key it attends to, thickness and
    /// opacity by weight (BertViz-style).
    pub(super) fn lines_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize) {
        if cx.activations_only_ui(ui) {
            return;
        }
        let key = HookKey::Block(layer, BlockHook::Pattern);
        let head = cx.s.sel.head;
        title_ui(
            ui,
            cx,
            &cx.lang.tf(
                format!("Head view · L{layer} H{head}"),
                format!("连线视图 · 第 {layer} 层 头 {head}"),
            ),
            &[key],
        );
        if missing_ui(ui, cx, key) {
            return;
        }
        let Some(t) = cx.s.trace.get(key).and_then(|t| t.as_3d()) else {
            return;
        };
        let (nq, nk) = (t.shape()[1], t.shape()[2]);
        let row_h = ((ui.available_height() - 40.0) / nq.max(nk) as f32).clamp(6.0, 24.0);
        let width = ui.available_width().min(700.0);
        let (rect, resp) = ui.allocate_exact_size(vec2(width, row_h * nq.max(nk) as f32 + 10.0), Sense::click());
        let geo = Lines { rect, lx: rect.min.x + 150.0, rx: rect.max.x - 150.0, row_h };
        let q_sel = cx.s.sel.position.min(nq.saturating_sub(1));
        let weights: Vec<f32> = (0..nk).map(|k| t[[head, q_sel, k]]).collect();
        geo.lines_ui(ui, cx, head, q_sel, &weights);
        geo.tokens_ui(ui, cx, nq, nk, q_sel);
        let lx = geo.lx;
        let rx = geo.rx;
        let hover_row = resp.hover_pos().map(|p| ((p.y - rect.min.y - 5.0) / row_h).floor().max(0.0) as usize);
        if let Some(r) = hover_row.filter(|&r| r < nk)
            && resp.hover_pos().is_some_and(|p| p.x > rx - 20.0)
        {
            self.readout = Some(Readout {
                key,
                head,
                q: q_sel,
                k: r,
                value: t[[head, q_sel, r]],
                base: cx.s.pos_base(),
            });
        }
        if resp.clicked()
            && let Some(r) = hover_row.filter(|&r| r < nq)
            && resp.interact_pointer_pos().is_some_and(|p| p.x < lx + 20.0)
        {
            cx.s.sel.position = r;
        }
        ui.label(
            RichText::new(cx.tr(
                "Left: queries (click one). Right: keys. Lines: the attention pattern.",
                "左边：查询（可点击）。右边：键。连线粗细：注意力模式的值。",
            ))
            .color(cx.theme.muted()),
        );
        self.readout_line_ui(ui, cx);
    }
}

/// The head labels on a layer's tiles, coloured by K/V group.
fn head_badges_ui(ui: &Ui, cx: &ViewCtx<'_>, tiles: &Tiles, cells: egui::Rect) {
    let cell = cells.width() / (tiles.cols * tiles.bw) as f32;
    let painter = ui.painter();
    for h in 0..tiles.n_heads {
        let (r, c) = (h / tiles.cols, h % tiles.cols);
        let pos = cells.min + vec2((c * tiles.bw) as f32 * cell + 3.0, (r * tiles.bh) as f32 * cell + 2.0);
        let color = cx.theme.group_color(h / tiles.group);
        let rect = egui::Rect::from_min_size(pos, vec2(28.0, 16.0));
        painter.rect_filled(rect, 3.0, color);
        painter.text(rect.center(), egui::Align2::CENTER_CENTER, format!("H{h}"), egui::FontId::proportional(crate::gui::theme::font_px(ui, 11.0)), Color32::WHITE);
    }
}

fn layer_colorbar_ui(ui: &mut Ui, cx: &ViewCtx<'_>, hook: BlockHook, scale: f32, mode: ScaleMode) {
    let symmetric = crate::gui::heatmap::ColorScale::symmetric(scale);
    if cx.grads() {
        let unit = if hook == BlockHook::Pattern { "∂loss/∂p" } else { "∂loss/∂(q·k/√d)" };
        heatmap::colorbar_ui(ui, Colormap::Diverging, &symmetric, unit, "", cx.lang, &cx.theme);
    } else if hook == BlockHook::Pattern {
        let unit = cx.tr("p (attention pattern)", "p（注意力模式）");
        heatmap::colorbar_ui(ui, Colormap::Viridis, &super::pattern_scale(mode), unit, "", cx.lang, &cx.theme);
    } else {
        heatmap::colorbar_ui(ui, Colormap::Diverging, &symmetric, cx.tr("score q·k/√d", "分数 q·k/√d"), "", cx.lang, &cx.theme);
    }
}

/// The overview's blocks: one head's pattern max-pooled to at most 128 pixels a side.
struct OverviewGrid {
    nq: usize,
    nk: usize,
    /// Source cells per texture pixel, along queries and keys.
    sq: usize,
    sk: usize,
    /// Block size in pixels, and with the gap.
    bq: usize,
    bk: usize,
    bw: usize,
    bh: usize,
    offset: usize,
    /// Positions per source cell (a long pass's pooled patterns).
    cell: usize,
}

impl OverviewGrid {
    fn new(nq: usize, nk: usize, offset: usize, cell: usize) -> Self {
        let b = nq.max(nk).min(128);
        let (sq, sk) = (nq.div_ceil(b), nk.div_ceil(b));
        let (bq, bk) = (nq.div_ceil(sq), nk.div_ceil(sk));
        let gap = 2;
        OverviewGrid { nq, nk, sq, sk, bq, bk, bw: bk + gap, bh: bq + gap, offset, cell }
    }

    /// One column group's texture; cells the layer's mask hides are the masked colour.
    fn image(&self, layers: &[Option<ndarray::ArrayView3<'_, f32>>], masks: &[AttnMask], range: std::ops::Range<usize>, n_heads: usize, mode: ScaleMode, theme: &Theme) -> egui::ColorImage {
        let first_layer = range.start;
        // Per-row maxima only when asked for: the overview can be 270 heads.
        let maxima: Vec<Vec<f32>> = range.clone().map(|l| match (&layers[l], mode) {
            (Some(p), ScaleMode::PerRow) => row_maxima(p, 0),
            _ => Vec::new(),
        }).collect();
        heatmap::image(range.len() * self.bh, n_heads * self.bw, |y, x| {
            let (l, h, pq, pk) = (first_layer + y / self.bh, x / self.bw, y % self.bh, x % self.bw);
            let Some(p) = layers[l].as_ref() else { return theme.faint() };
            if pq >= self.bq || pk >= self.bk {
                return theme.panel_fill();
            }
            let mut best: Option<f32> = None;
            for q in pq * self.sq..((pq + 1) * self.sq).min(self.nq) {
                let rm = maxima[y / self.bh].get(h * self.nq + q).copied().unwrap_or(1.0);
                for k in pk * self.sk..((pk + 1) * self.sk).min(self.nk) {
                    if masks[l].visible((q + self.offset) * self.cell, k * self.cell) {
                        let t = pattern_t(mode, p[[h, q, k]], rm);
                        best = Some(best.map_or(t, |m: f32| m.max(t)));
                    }
                }
            }
            best.map_or(theme.masked(), |t| Colormap::Viridis.at(t))
        })
    }

    /// The (layer, head, query, key) a pixel of a group starting at `first_layer` shows.
    fn at(&self, first_layer: usize, n_layers: usize, n_heads: usize, (y, x): (usize, usize)) -> Option<(usize, usize, usize, usize)> {
        let (l, h, pq, pk) = (first_layer + y / self.bh, x / self.bw, y % self.bh, x % self.bw);
        (l < n_layers && h < n_heads && pq < self.bq && pk < self.bk).then_some((l, h, (pq * self.sq).min(self.nq - 1), (pk * self.sk).min(self.nk - 1)))
    }
}

/// Layer labels left of a group (every fifth when the blocks are small), head labels above.
fn overview_labels_ui(ui: &Ui, cx: &ViewCtx<'_>, grid: &OverviewGrid, cells: egui::Rect, label_rect: egui::Rect, layers: std::ops::Range<usize>, n_heads: usize) {
    let cell = cells.width() / (n_heads * grid.bw) as f32;
    let painter = ui.painter();
    let font = egui::FontId::proportional(crate::gui::theme::font_px(ui, 11.0));
    let group = cx.s.model.config.group_size().max(1);
    for (r, l) in layers.enumerate() {
        let y = cells.min.y + ((r * grid.bh) as f32 + grid.bq as f32 / 2.0) * cell;
        if grid.bh as f32 * cell >= 10.0 || l % 5 == 0 {
            painter.text(pos2(label_rect.max.x - 2.0, y), egui::Align2::RIGHT_CENTER, format!("L{l}"), font.clone(), cx.theme.text());
        }
    }
    for h in 0..n_heads {
        let x = cells.min.x + ((h * grid.bw) as f32 + grid.bk as f32 / 2.0) * cell;
        painter.text(pos2(x, cells.min.y - 2.0), egui::Align2::CENTER_BOTTOM, format!("H{h}"), font.clone(), cx.theme.group_color(h / group));
    }
}

/// Where the head view of lines is drawn: queries at `lx`, keys at `rx`, one row each.
struct Lines {
    rect: egui::Rect,
    lx: f32,
    rx: f32,
    row_h: f32,
}

impl Lines {
    fn y(&self, i: usize) -> f32 {
        self.rect.min.y + 5.0 + (i as f32 + 0.5) * self.row_h
    }

    /// One line from the selected query to each key it attends to, thickness and opacity by
    /// weight.
    fn lines_ui(&self, ui: &Ui, cx: &ViewCtx<'_>, head: usize, q_sel: usize, weights: &[f32]) {
        let painter = ui.painter_at(self.rect);
        let color = cx.theme.group_color(head / cx.s.model.config.group_size().max(1));
        for (k, &p) in weights.iter().enumerate().filter(|(_, p)| **p > 0.0) {
            let a = (p.sqrt() * 255.0) as u8;
            let stroke = Stroke::new(1.0 + 5.0 * p, Color32::from_rgba_unmultiplied(color.r(), color.g(), color.b(), a));
            painter.line_segment([pos2(self.lx + 4.0, self.y(q_sel)), pos2(self.rx - 4.0, self.y(k))], stroke);
        }
    }

    /// The tokens: queries on the left (the selected one highlighted), keys on the right.
    fn tokens_ui(&self, ui: &Ui, cx: &ViewCtx<'_>, nq: usize, nk: usize, q_sel: usize) {
        let painter = ui.painter_at(self.rect);
        let font = egui::FontId::proportional(crate::gui::theme::font_px(ui, (self.row_h * 0.7).clamp(8.0, 15.0)));
        // Every k-th token where rows are thinner than a line (the selected query always).
        let every = heatmap::label_stride(font.size * 1.15, self.row_h);
        for i in 0..nq.max(nk) {
            if i % every != 0 && i != q_sel {
                continue;
            }
            let text = cx.s.token_texts.get(i).map(|t| heatmap::short_label(&visible(t), 16)).unwrap_or_default();
            let qc = if i == q_sel { cx.theme.highlight() } else { cx.theme.text() };
            if i < nq {
                painter.text(pos2(self.lx - 6.0, self.y(i)), egui::Align2::RIGHT_CENTER, &text, font.clone(), qc);
            }
            if i < nk {
                painter.text(pos2(self.rx + 6.0, self.y(i)), egui::Align2::LEFT_CENTER, &text, font.clone(), cx.theme.text());
            }
        }
    }
}
