//! Heatmaps as GPU textures: one `ColorImage` per matrix, uploaded once and rebuilt only
//! when its data or coloring changes, then drawn as a single textured rectangle with labelled
//! axes. This is what keeps 30 layers × 9 heads × 128 tokens fluid.

use egui::{
    Align2, Color32, ColorImage, FontId, Pos2, Rect, Response, Sense, Stroke, StrokeKind,
    TextureHandle, TextureOptions, Ui, Vec2, pos2, vec2,
};

pub use super::scale::{ColorScale, ScaleMode, ScaleOpts};
use super::theme::{NON_FINITE, Theme};

/// A texture that knows what it shows: `key` hashes the data source and the coloring.
#[derive(Default)]
pub struct CachedTexture {
    key: Option<u64>,
    tex: Option<TextureHandle>,
}

impl CachedTexture {
    /// The texture for `key`, built by `build` only when the key changed.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        key: u64,
        build: impl FnOnce() -> ColorImage,
    ) -> &TextureHandle {
        if self.key != Some(key) {
            let image = build();
            // Cells the colormaps drew as NaN / ±∞, for the legend `heatmap_ui` adds.
            let non_finite = image.pixels.iter().filter(|&&p| p == NON_FINITE).count();
            #[cfg(test)]
            built::record(name, &image);
            match &mut self.tex {
                Some(tex) => tex.set(image, TextureOptions::NEAREST),
                None => self.tex = Some(ctx.load_texture(name, image, TextureOptions::NEAREST)),
            }
            if let Some(tex) = &self.tex {
                ctx.data_mut(|d| d.insert_temp(non_finite_id(tex.id()), non_finite));
            }
            self.key = Some(key);
        }
        // Always `Some` here once a key was set; the fallback keeps this total without unwrap.
        self.tex.get_or_insert_with(|| {
            ctx.load_texture(
                name,
                ColorImage::filled([1, 1], Color32::TRANSPARENT),
                TextureOptions::NEAREST,
            )
        })
    }
}

/// The heatmap images built on this thread (tests read what the views drew: no figure opens
/// black).
#[cfg(test)]
pub mod built {
    use std::cell::RefCell;

    thread_local! {
        static IMAGES: RefCell<Vec<(String, egui::ColorImage)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn record(name: &str, image: &egui::ColorImage) {
        IMAGES.with(|v| v.borrow_mut().push((name.to_string(), image.clone())));
    }

    /// The images built since the last call, by texture name.
    pub fn take() -> Vec<(String, egui::ColorImage)> {
        IMAGES.with(|v| std::mem::take(&mut *v.borrow_mut()))
    }
}

/// Where a texture's count of NaN / ±∞ cells is kept.
fn non_finite_id(tex: egui::TextureId) -> egui::Id {
    egui::Id::unique(("non-finite cells", tex))
}

/// Hash of anything hashable, for texture keys.
pub fn key_of(parts: impl std::hash::Hash) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Builds a `rows × cols` image with `color(r, c)`.
pub fn image(rows: usize, cols: usize, color: impl Fn(usize, usize) -> Color32) -> ColorImage {
    let mut pixels = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            pixels.push(color(r, c));
        }
    }
    ColorImage::new(
        [cols.max(1), rows.max(1)],
        if pixels.is_empty() {
            vec![Color32::TRANSPARENT]
        } else {
            pixels
        },
    )
}

/// What a heatmap reported this frame.
pub struct HeatmapResponse {
    pub response: Response,
    /// Cell under the pointer `(row, col)`.
    pub hovered: Option<(usize, usize)>,
    pub clicked: Option<(usize, usize)>,
    /// The rectangle the cells occupy.
    pub cells: Rect,
}

/// Labels and decorations around the cells.
pub struct Axes<'a> {
    pub row_labels: Option<&'a [String]>,
    pub col_labels: Option<&'a [String]>,
    pub row_title: &'a str,
    pub col_title: &'a str,
    /// Cells to outline (selection).
    pub marked: &'a [(usize, usize)],
    /// A row to outline (the selected query).
    pub marked_row: Option<usize>,
    /// Square cells (attention: q × k); false stretches cells to fill the area (wide
    /// matrices such as positions × 1536 neurons).
    pub square: bool,
}

impl Default for Axes<'_> {
    fn default() -> Self {
        Self {
            row_labels: None,
            col_labels: None,
            row_title: "",
            col_title: "",
            marked: &[],
            marked_row: None,
            square: true,
        }
    }
}

/// Short form of a token for an axis label.
pub fn short_label(s: &str, max_chars: usize) -> String {
    let clean: String = s.chars().map(|c| if c == '\n' { '⏎' } else { c }).collect();
    if clean.chars().count() <= max_chars {
        clean
    } else {
        let mut t: String = clean.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Draws `tex` (rows × cols cells) in `max_size`, with token labels where they fit.
pub fn heatmap_ui(
    ui: &mut Ui,
    tex: &TextureHandle,
    rows: usize,
    cols: usize,
    max_size: Vec2,
    axes: &Axes<'_>,
    theme: &Theme,
) -> HeatmapResponse {
    let font = small_font(ui);
    // As wide as the longest label shown (tokens are short; a fixed width wasted a third of
    // a small heatmap).
    let label_w = |labels: Option<&[String]>| {
        labels.map_or(0.0, |ls| {
            ui.fonts_mut(|f| {
                ls.iter()
                    .map(|l| {
                        f.layout_no_wrap(short_label(l, 12), font.clone(), egui::Color32::WHITE)
                            .size()
                            .x
                    })
                    .fold(0.0f32, f32::max)
            }) + 8.0
        })
    };
    // An axis title takes a line of its font (presenter mode's is taller).
    let title_h = ui.fonts_mut(|f| f.row_height(&font)) + 4.0;
    let left = label_w(axes.row_labels) + if axes.row_title.is_empty() { 0.0 } else { title_h };
    let top = label_w(axes.col_labels) + if axes.col_title.is_empty() { 0.0 } else { title_h };
    let avail = (max_size - vec2(left, top)).max(vec2(16.0, 16.0));
    let (mut cw, mut ch) = (avail.x / cols.max(1) as f32, avail.y / rows.max(1) as f32);
    // Cells may be thinner than a pixel (a long prompt's thousands of keys): the texture is
    // drawn scaled down rather than the grid running past the room it was given.
    if axes.square {
        let c = cw.min(ch).clamp(0.01, 48.0);
        (cw, ch) = (c, c);
    } else {
        (cw, ch) = (cw.clamp(0.01, 48.0), ch.clamp(0.01, 48.0));
    }
    let grid = vec2(cw * cols as f32, ch * rows as f32);
    let (outer, response) = ui.allocate_exact_size(vec2(left, top) + grid, Sense::click());
    let cells = Rect::from_min_size(outer.min + vec2(left, top), grid);
    let painter = ui.painter_at(outer.expand(2.0));
    painter.image(
        tex.id(),
        cells,
        Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
        Color32::WHITE,
    );

    let cell_at = |p: Pos2| -> Option<(usize, usize)> {
        if !cells.contains(p) {
            return None;
        }
        let c = ((p.x - cells.min.x) / cw).floor() as usize;
        let r = ((p.y - cells.min.y) / ch).floor() as usize;
        (r < rows && c < cols).then_some((r, c))
    };
    let hovered = response.hover_pos().and_then(cell_at);
    let clicked = if response.clicked() {
        response.interact_pointer_pos().and_then(cell_at)
    } else {
        None
    };

    let text = theme.text();
    // Labels never overlap: every k-th, k from the measured height of a line of this font
    // (rotated column labels are as thick as a line is high), with a gap between labels.
    let line = painter.layout_no_wrap("Ag0".into(), font.clone(), text).size().y;
    let (every_r, every_c) = (label_stride(line, ch), label_stride(line, cw));
    if let Some(labels) = axes.row_labels {
        for (r, l) in labels.iter().enumerate().take(rows).step_by(every_r) {
            // Rows thinner than a line: the first and last labels stay inside the figure.
            let y = (cells.min.y + (r as f32 + 0.5) * ch).clamp(outer.min.y + line / 2.0, (outer.max.y - line / 2.0).max(outer.min.y + line / 2.0));
            painter.text(
                pos2(cells.min.x - 4.0, y),
                Align2::RIGHT_CENTER,
                short_label(l, 12),
                font.clone(),
                text,
            );
        }
    }
    if let Some(labels) = axes.col_labels {
        for (c, l) in labels.iter().enumerate().take(cols).step_by(every_c) {
            let x = (cells.min.x + (c as f32 + 0.5) * cw).clamp(outer.min.x + line / 2.0, (outer.max.x - line / 2.0).max(outer.min.x + line / 2.0));
            let galley = painter.layout_no_wrap(short_label(l, 12), font.clone(), text);
            // Rotated to read bottom-up, ending just above the cells.
            let shape = egui::epaint::TextShape::new(
                pos2(x - galley.size().y / 2.0, cells.min.y - 4.0),
                galley,
                text,
            )
            .with_angle(-std::f32::consts::FRAC_PI_2);
            painter.add(shape);
        }
    }
    if !axes.row_title.is_empty() {
        let g = painter.layout_no_wrap(axes.row_title.to_string(), font.clone(), theme.muted());
        let pos = pos2(outer.min.x, cells.center().y + g.size().x / 2.0);
        painter.add(
            egui::epaint::TextShape::new(pos, g, theme.muted())
                .with_angle(-std::f32::consts::FRAC_PI_2),
        );
    }
    if !axes.col_title.is_empty() {
        painter.text(
            pos2(cells.center().x, outer.min.y),
            Align2::CENTER_TOP,
            axes.col_title,
            font.clone(),
            theme.muted(),
        );
    }

    let hl = Stroke::new(2.0, theme.highlight());
    let cell_rect = |r: usize, c: usize| {
        Rect::from_min_size(cells.min + vec2(c as f32 * cw, r as f32 * ch), vec2(cw, ch))
    };
    if let Some(r) = axes.marked_row.filter(|&r| r < rows) {
        let y = cells.min.y + r as f32 * ch;
        painter.rect_stroke(
            Rect::from_min_size(pos2(cells.min.x, y), vec2(grid.x, ch)),
            0.0,
            Stroke::new(1.0, theme.highlight()),
            StrokeKind::Outside,
        );
    }
    for &(r, c) in axes.marked {
        if r < rows && c < cols {
            painter.rect_stroke(cell_rect(r, c), 0.0, hl, StrokeKind::Outside);
        }
    }
    if let Some((r, c)) = hovered {
        painter.rect_stroke(
            cell_rect(r, c),
            0.0,
            Stroke::new(1.0, theme.text()),
            StrokeKind::Outside,
        );
    }
    let non_finite = ui.data(|d| d.get_temp::<usize>(non_finite_id(tex.id()))).unwrap_or(0);
    if non_finite > 0 {
        non_finite_legend_ui(ui, non_finite, &font, theme);
    }
    HeatmapResponse {
        response,
        hovered,
        clicked,
        cells,
    }
}

/// Every how many cells of `cell` points a label of `line` points high fits without
/// touching its neighbour.
pub fn label_stride(line: f32, cell: f32) -> usize {
    let gap = 2.0;
    (((line + gap) / cell.max(0.01)).ceil() as usize).max(1)
}

/// The legend entry of the NaN / ±∞ colour, under a heatmap that has such cells: the
/// swatch, the name and how many cells (no words, so it reads the same in both languages).
fn non_finite_legend_ui(ui: &mut Ui, cells: usize, font: &FontId, theme: &Theme) {
    ui.horizontal(|ui| {
        let (swatch, _) = ui.allocate_exact_size(vec2(font.size * 1.6, font.size), Sense::hover());
        ui.painter().rect_filled(swatch, 0.0, NON_FINITE);
        ui.label(egui::RichText::new(format!("NaN / ±∞ × {cells}")).font(font.clone()).color(theme.error()));
    });
}

/// A horizontal color bar with its end values, so every heatmap says what its colors mean.
pub fn legend_ui(
    ui: &mut Ui,
    map: super::theme::Colormap,
    lo: f32,
    hi: f32,
    caption: &str,
    theme: &Theme,
) {
    let scale = if map == super::theme::Colormap::Diverging {
        ColorScale::symmetric(lo.abs().max(hi.abs()))
    } else {
        ColorScale::fixed(lo, hi)
    };
    colorbar_ui(ui, map, &scale, caption, "", super::i18n::Lang::En, theme);
}

/// The colour bar of a fitted scale: the map, tick values, the unit, and a note saying how
/// the scale was made (log, per row, clipped cells, position 0 hidden).
pub fn colorbar_ui(
    ui: &mut Ui,
    map: super::theme::Colormap,
    scale: &ColorScale,
    unit: &str,
    note: &str,
    lang: super::i18n::Lang,
    theme: &Theme,
) {
    let zh = lang == super::i18n::Lang::Zh;
    ui.horizontal(|ui| {
        if !unit.is_empty() {
            ui.label(egui::RichText::new(unit).color(theme.text()));
        }
        let w = (ui.available_width() * 0.5).clamp(160.0, 440.0);
        // Tall enough for the tick labels under the bar, at whatever size they are.
        let line = ui.painter().layout_no_wrap("0".into(), small_font(ui), theme.text()).size().y;
        let (rect, _) = ui.allocate_exact_size(vec2(w, 16.0 + line), Sense::hover());
        let bar = Rect::from_min_size(rect.min, vec2(w, 12.0));
        let n = 80;
        for i in 0..n {
            let t = i as f32 / (n - 1) as f32;
            let x0 = bar.min.x + bar.width() * i as f32 / n as f32;
            let r = Rect::from_min_max(
                pos2(x0, bar.min.y),
                pos2(x0 + bar.width() / n as f32 + 0.5, bar.max.y),
            );
            ui.painter().rect_filled(r, 0.0, map.at(t));
        }
        let font = small_font(ui);
        // The end labels first, then interior ones that do not collide with a drawn label.
        let mut ticks = scale.ticks(zh);
        ticks.sort_by(|a, b| {
            let end = |t: f32| t <= 0.0 || t >= 1.0;
            end(b.0).cmp(&end(a.0)).then(a.0.total_cmp(&b.0))
        });
        let mut taken: Vec<Rect> = Vec::new();
        for (t, label) in ticks {
            let x = bar.min.x + t * bar.width();
            let galley = ui.painter().layout_no_wrap(label, font.clone(), theme.text());
            let size = galley.size();
            let left = if t <= 0.0 {
                x
            } else if t >= 1.0 {
                x - size.x
            } else {
                x - size.x / 2.0
            };
            let r = Rect::from_min_size(pos2(left, bar.max.y + 4.0), size).expand2(vec2(4.0, 0.0));
            if taken.iter().any(|o| o.intersects(r)) {
                continue;
            }
            taken.push(r);
            ui.painter().line_segment(
                [pos2(x, bar.max.y), pos2(x, bar.max.y + 3.0)],
                Stroke::new(1.0, theme.text()),
            );
            ui.painter().galley(pos2(left, bar.max.y + 4.0), galley, theme.text());
        }
        if !note.is_empty() {
            // Wraps in what is left of the row rather than running over a neighbour.
            ui.add(egui::Label::new(egui::RichText::new(note).small().color(theme.muted())).wrap());
        }
    });
}

/// The height a colour bar takes under a figure, tick labels included, at the text size in
/// force (presenter mode's is larger): figures sized to the room left subtract it.
pub fn colorbar_height(ui: &Ui) -> f32 {
    let tick = ui.text_style_height(&egui::TextStyle::Small);
    (16.0 + tick).max(ui.text_style_height(&egui::TextStyle::Body)) + ui.spacing().item_spacing.y
}

/// The scale picker next to a heatmap: linear / √ / log / per row / robust, and hiding
/// position 0. `signed` data offers only the modes that keep zero in the middle.
pub fn scale_controls_ui(ui: &mut Ui, opts: &mut ScaleOpts, signed: bool, lang: super::i18n::Lang) {
    let zh = lang == super::i18n::Lang::Zh;
    ui.horizontal_wrapped(|ui| {
        ui.label(lang.tr("colour scale:", "颜色刻度："));
        let modes: &[ScaleMode] = if signed {
            &ScaleMode::SIGNED
        } else {
            &ScaleMode::SEQUENTIAL
        };
        for &m in modes {
            ui.selectable_value(&mut opts.mode, m, m.label(zh));
        }
        ui.separator();
        ui.checkbox(
            &mut opts.hide_first,
            lang.tr("hide position 0", "隐藏位置 0"),
        );
    });
}

/// A vector drawn as a grid of `cols` columns of small colored cells (painted directly:
/// a few hundred rectangles). Returns the index under the pointer.
pub fn vector_grid_ui(
    ui: &mut Ui,
    values: &[f32],
    cols: usize,
    cell: f32,
    color: impl Fn(f32) -> Color32,
    marked: Option<usize>,
    theme: &Theme,
) -> (Response, Option<usize>) {
    let cols = cols.max(1);
    let rows = values.len().div_ceil(cols).max(1);
    let (rect, response) =
        ui.allocate_exact_size(vec2(cols as f32 * cell, rows as f32 * cell), Sense::click());
    let painter = ui.painter_at(rect.expand(2.0));
    for (i, &v) in values.iter().enumerate() {
        let min = rect.min + vec2((i % cols) as f32 * cell, (i / cols) as f32 * cell);
        painter.rect_filled(Rect::from_min_size(min, Vec2::splat(cell)), 0.0, color(v));
    }
    let hovered = response.hover_pos().and_then(|p| {
        let c = ((p.x - rect.min.x) / cell).floor();
        let r = ((p.y - rect.min.y) / cell).floor();
        if c < 0.0 || r < 0.0 {
            return None;
        }
        let i = r as usize * cols + c as usize;
        (c < cols as f32 && i < values.len()).then_some(i)
    });
    for i in marked.into_iter().chain(hovered) {
        let min = rect.min + vec2((i % cols) as f32 * cell, (i / cols) as f32 * cell);
        painter.rect_stroke(
            Rect::from_min_size(min, Vec2::splat(cell)),
            0.0,
            Stroke::new(1.5, theme.highlight()),
            StrokeKind::Outside,
        );
    }
    (response, hovered)
}

/// The font of axis labels and ticks: the `Small` text style, which presenter mode enlarges.
fn small_font(ui: &Ui) -> FontId {
    let px = ui.style().text_styles.get(&egui::TextStyle::Small).map_or(11.0, |f| f.size);
    FontId::proportional(px)
}
