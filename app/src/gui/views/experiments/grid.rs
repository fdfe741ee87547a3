//! A layers × columns grid of scores (patching, attribution, head catalog) drawn as a cached
//! heatmap with labelled axes and its colour bar, and the same grid as an export figure.
//! Cells not computed yet (NaN) are gray.

use egui::{Ui, Vec2};

use crate::gui::export::Figure;
use crate::gui::heatmap::{self, Axes, CachedTexture, ColorScale, HeatmapResponse, heatmap_ui, key_of};
use crate::gui::theme::{Colormap, Theme};

/// One grid and how to colour it.
pub struct ScoreGrid<'a> {
    pub rows: usize,
    pub cols: usize,
    /// Row-major; NaN = not computed (yet).
    pub values: &'a [f32],
    pub row_labels: &'a [String],
    pub col_labels: &'a [String],
    pub row_title: &'a str,
    pub col_title: &'a str,
    pub map: Colormap,
    pub scale: &'a ColorScale,
    /// What the values are (colour bar caption).
    pub unit: &'a str,
    pub marked: &'a [(usize, usize)],
}

impl ScoreGrid<'_> {
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.values.get(r * self.cols + c).copied().unwrap_or(f32::NAN)
    }

    /// The grid for a slide (PNG and SVG).
    pub fn figure(&self, title: String) -> Figure {
        Figure::Heatmap {
            title,
            rows: self.rows,
            cols: self.cols,
            values: self.values.to_vec(),
            row_labels: self.row_labels.to_vec(),
            col_labels: self.col_labels.to_vec(),
            row_title: self.row_title.into(),
            col_title: self.col_title.into(),
            map: self.map,
            scale: self.scale.clone(),
            unit: self.unit.into(),
        }
    }
}

/// `±max(|v|)` (at least `floor`), for signed scores.
pub fn symmetric_scale(values: &[f32], floor: f32) -> ColorScale {
    let m = values.iter().filter(|v| v.is_finite()).fold(floor, |m, v| m.max(v.abs()));
    ColorScale::symmetric(m)
}

/// Draws the grid in `size` (cells stretched to fill it) with its colour bar underneath.
/// `key` says what the texture shows (rebuilt when it changes).
#[allow(clippy::too_many_arguments)] // the grid's data, its texture cache and where it goes
pub fn grid_ui(ui: &mut Ui, tex: &mut CachedTexture, name: &str, g: &ScoreGrid<'_>, key: u64, size: Vec2, theme: &Theme, lang: crate::gui::i18n::Lang) -> HeatmapResponse {
    let masked = theme.masked();
    let texture = tex.get(ui.ctx(), name, key_of((key, theme.dark)), || {
        heatmap::image(g.rows, g.cols, |r, c| {
            let v = g.get(r, c);
            if v.is_finite() { g.scale.color(g.map, r, v) } else { masked }
        })
    });
    let axes = Axes {
        row_labels: Some(g.row_labels),
        col_labels: Some(g.col_labels),
        row_title: g.row_title,
        col_title: g.col_title,
        marked: g.marked,
        marked_row: None,
        square: false,
    };
    let hm = heatmap_ui(ui, texture, g.rows, g.cols, size, &axes, theme);
    heatmap::colorbar_ui(ui, g.map, g.scale, g.unit, "", lang, theme);
    hm
}

/// Layer labels "L0", "L1", …
pub fn layer_labels(n: usize) -> Vec<String> {
    (0..n).map(|l| format!("L{l}")).collect()
}

/// Head labels "H0", "H1", …
pub fn head_labels(n: usize) -> Vec<String> {
    (0..n).map(|h| format!("H{h}")).collect()
}
