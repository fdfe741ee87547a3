//! Figures for slides and handouts: the current heatmap or bar chart as a PNG (plotters'
//! bitmap backend), into a folder the user can find, with the bundled font so Chinese labels
//! render; and window screenshots (scripted screenshots use the same writer).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow};
use plotters::backend::{BitMapBackend, DrawingBackend};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::fonts;
use super::scale::ColorScale;
use super::theme::Colormap;

/// What a view can export: the numbers it shows, already arranged.
#[derive(Debug, Clone)]
pub enum Figure {
    Heatmap {
        title: String,
        rows: usize,
        cols: usize,
        /// Row-major; NaN or −∞ = masked (drawn gray).
        values: Vec<f32>,
        row_labels: Vec<String>,
        col_labels: Vec<String>,
        /// What the rows and the columns are ("layer", "position", "neuron").
        row_title: String,
        col_title: String,
        map: Colormap,
        /// How values become colours, as on screen (log, per row, clipped, …).
        scale: ColorScale,
        /// The colour bar's caption: what the values are, with their unit.
        unit: String,
    },
    Bars {
        title: String,
        labels: Vec<String>,
        values: Vec<f32>,
    },
}

const FONT: &str = "glassbox-sans";

/// plotters has no per-glyph fallback: one font must cover Latin and CJK, which the
/// bundled subset does.
fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, fonts::CJK_FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the bundled font could not be loaded for export"))
    }
}

/// Where figures go: `$GLASSBOX_EXPORT_DIR`, else `~/Pictures/Glassbox`, else `./glassbox-figures`.
pub fn export_dir() -> PathBuf {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = nonempty("GLASSBOX_EXPORT_DIR") {
        return dir;
    }
    if let Some(dir) = nonempty("XDG_PICTURES_DIR") {
        return dir.join("Glassbox");
    }
    match nonempty("HOME") {
        Some(home) => home.join("Pictures").join("Glassbox"),
        None => PathBuf::from("glassbox-figures"),
    }
}

fn slug(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() {
        "figure".into()
    } else {
        s.chars().take(60).collect()
    }
}

/// Saves `fig` into [`export_dir`] and returns the file.
pub fn save_figure(fig: &Figure) -> Result<PathBuf> {
    let dir = export_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let title = match fig {
        Figure::Heatmap { title, .. } | Figure::Bars { title, .. } => title,
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let path = dir.join(format!("glassbox-{}-{stamp}.png", slug(title)));
    write_figure(fig, &path)?;
    Ok(path)
}

fn rgb(c: egui::Color32) -> RGBColor {
    RGBColor(c.r(), c.g(), c.b())
}

fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the figure: {e:?}")
}

pub fn write_figure(fig: &Figure, path: &Path) -> Result<()> {
    register_font()?;
    match fig {
        Figure::Heatmap {
            title,
            rows,
            cols,
            values,
            row_labels,
            col_labels,
            row_title,
            col_title,
            map,
            scale,
            unit,
        } => write_heatmap(
            path,
            &HeatmapFig {
                title,
                rows: *rows,
                cols: *cols,
                values,
                row_labels,
                col_labels,
                row_title,
                col_title,
                map: *map,
                scale,
                unit,
            },
        )?,
        Figure::Bars {
            title,
            labels,
            values,
        } => write_bars(path, title, labels, values)?,
    }
    Ok(())
}

struct HeatmapFig<'a> {
    title: &'a str,
    rows: usize,
    cols: usize,
    values: &'a [f32],
    row_labels: &'a [String],
    col_labels: &'a [String],
    row_title: &'a str,
    col_title: &'a str,
    map: Colormap,
    scale: &'a ColorScale,
    unit: &'a str,
}

fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// Pixel size `(width, height)` of one cell: rows at least 18 px when there are few enough
/// for a label each (labels at 15 px), columns as wide as 1100 px allows, and at least 18 px
/// when each column has a label.
pub fn heatmap_cells(rows: usize, cols: usize, col_labels: bool) -> (u32, u32) {
    let (rows, cols) = (rows.max(1), cols.max(1));
    let ch = (900 / rows).clamp(2, 40).max(if rows <= 60 { 20 } else { 2 });
    let cw = if col_labels {
        (1100 / cols).clamp(2, 40).max(18)
    } else {
        (1100 / cols).clamp(1, 40)
    };
    (cw as u32, ch as u32)
}

/// A heatmap for a slide: cells from [`heatmap_cells`], row and column labels and titles, and
/// a colour bar with ticks and unit from the same scale as the screen.
fn write_heatmap(path: &Path, f: &HeatmapFig<'_>) -> Result<()> {
    let (rows, cols) = (f.rows.max(1), f.cols.max(1));
    let (cw, ch) = heatmap_cells(rows, cols, !f.col_labels.is_empty());
    let label_px = 19u32;
    let longest = |ls: &[String]| {
        ls.iter()
            .map(|l| super::heatmap::short_label(l, 14).chars().count())
            .max()
            .unwrap_or(0) as u32
    };
    let left = 44 + longest(f.row_labels) * 11;
    let top = 80 + longest(f.col_labels) * 11;
    let (gw, gh) = (cw * cols as u32, ch * rows as u32);
    let (right, bottom) = (240u32, 60u32);
    let (w, h) = (left + gw + right, (top + gh + bottom).max(top + 300));
    let mut cells = vec![0u8; (gw * gh * 3) as usize];
    for r in 0..rows {
        for c in 0..cols {
            let v = f.values.get(r * cols + c).copied().unwrap_or(f32::NAN);
            let color = if v.is_finite() {
                f.scale.color(f.map, r, v)
            } else {
                egui::Color32::from_gray(200)
            };
            for dy in 0..ch {
                let row0 = ((r as u32 * ch + dy) * gw + c as u32 * cw) as usize * 3;
                for dx in 0..cw as usize {
                    cells[row0 + dx * 3..row0 + dx * 3 + 3]
                        .copy_from_slice(&[color.r(), color.g(), color.b()]);
                }
            }
        }
    }
    let mut backend = BitMapBackend::new(path, (w, h));
    backend
        .draw_rect((0, 0), (w as i32, h as i32), &WHITE, true)
        .map_err(draw_err)?;
    backend
        .blit_bitmap((left as i32, top as i32), (gw, gh), &cells)
        .map_err(draw_err)?;
    let root = backend.into_drawing_area();
    root.draw(&Text::new(f.title.to_string(), (10, 10), font(30)))
        .map_err(draw_err)?;
    let every = |cell: u32| ((label_px + 3).div_ceil(cell.max(1)) as usize).max(1);
    for (r, l) in f.row_labels.iter().enumerate().take(rows).step_by(every(ch)) {
        let y = (top + r as u32 * ch + ch / 2) as i32;
        let style = font(label_px).pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(
            super::heatmap::short_label(l, 14),
            (left as i32 - 6, y),
            style,
        ))
        .map_err(draw_err)?;
    }
    for (c, l) in f.col_labels.iter().enumerate().take(cols).step_by(every(cw)) {
        let x = (left + c as u32 * cw + cw / 2) as i32;
        let style = font(label_px)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(
            super::heatmap::short_label(l, 14),
            (x, top as i32 - 6),
            style,
        ))
        .map_err(draw_err)?;
    }
    if !f.col_title.is_empty() {
        let style = font(20).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            f.col_title.to_string(),
            ((left + gw / 2) as i32, 48),
            style,
        ))
        .map_err(draw_err)?;
    }
    if !f.row_title.is_empty() {
        let style = font(20)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            f.row_title.to_string(),
            (8, (top + gh / 2) as i32),
            style,
        ))
        .map_err(draw_err)?;
    }
    // Vertical colour bar: high values at the top, ticks from the same scale as the screen.
    let (bx, by, bh) = ((left + gw + 40) as i32, top as i32, gh.clamp(200, 500) as i32);
    root.draw(&Text::new(f.unit.to_string(), (bx - 10, by - 30), font(18)))
        .map_err(draw_err)?;
    for i in 0..bh {
        let t = 1.0 - i as f32 / (bh - 1).max(1) as f32;
        root.draw(&Rectangle::new(
            [(bx, by + i), (bx + 20, by + i + 1)],
            rgb(f.map.at(t)).filled(),
        ))
        .map_err(draw_err)?;
    }
    let zh = f.unit.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    for (t, label) in f.scale.ticks(zh) {
        let y = by + ((1.0 - t) * (bh - 1) as f32) as i32;
        root.draw(&PathElement::new(vec![(bx + 20, y), (bx + 26, y)], BLACK))
            .map_err(draw_err)?;
        let style = font(17).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(label, (bx + 30, y), style))
            .map_err(draw_err)?;
    }
    let note = f.scale.note(zh, false);
    root.draw(&Text::new(note, (bx - 10, by + bh + 12), font(15)))
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

/// The pixel range `(from, to)` of a bar for `v` on an axis `min..=max` (which includes 0)
/// drawn `span` pixels wide: it starts at the zero line and ends at `v`, so a negative value
/// extends to the left.
pub fn bar_span(v: f32, min: f32, max: f32, span: f32) -> (i32, i32) {
    let (min, max) = (min.min(0.0), max.max(0.0));
    let range = (max - min).max(1e-12);
    let x = |v: f32| (span * (v - min) / range).round() as i32;
    let (zero, end) = (x(0.0), x(v.clamp(min, max)));
    (zero.min(end), zero.max(end))
}

/// Horizontal bars from a zero line, so negative values (logits, attributions) point left.
fn write_bars(path: &Path, title: &str, labels: &[String], values: &[f32]) -> Result<()> {
    let n = labels.len().max(1) as u32;
    let (left, bar_h, top) = (260u32, 32u32, 80u32);
    let (w, h) = (1000u32, top + n * bar_h + 40);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    root.draw(&Text::new(title.to_string(), (10, 10), font(30)))
        .map_err(draw_err)?;
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let max = finite().fold(0.0f32, f32::max);
    let min = finite().fold(0.0f32, f32::min);
    let span = (w - left - 110) as f32;
    let zero = left as i32 + bar_span(0.0, min, max, span).0;
    root.draw(&PathElement::new(
        vec![(zero, top as i32 - 6), (zero, (top + n * bar_h) as i32 + 2)],
        BLACK,
    ))
    .map_err(draw_err)?;
    for (i, (l, &v)) in labels.iter().zip(values).enumerate() {
        let y = (top + i as u32 * bar_h) as i32;
        let (a, b) = bar_span(if v.is_finite() { v } else { 0.0 }, min, max, span);
        let (x0, x1) = (left as i32 + a, (left as i32 + b).max(left as i32 + a + 1));
        let color = if v < 0.0 {
            RGBColor(200, 70, 60)
        } else {
            RGBColor(60, 130, 200)
        };
        root.draw(&Rectangle::new(
            [(x0, y + 4), (x1, y + bar_h as i32 - 4)],
            color.filled(),
        ))
        .map_err(draw_err)?;
        let style = font(20).pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(
            super::heatmap::short_label(l, 22),
            (left as i32 - 10, y + bar_h as i32 / 2),
            style,
        ))
        .map_err(draw_err)?;
        let style = font(17).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(
            format!("{v:.4}"),
            (x1.max(zero) + 6, y + bar_h as i32 / 2),
            style,
        ))
        .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)?;
    Ok(())
}

/// Writes a window screenshot as PNG.
pub fn save_color_image(image: &egui::ColorImage, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let [w, h] = image.size;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for p in &image.pixels {
        rgb.extend_from_slice(&[p.r(), p.g(), p.b()]);
    }
    let mut backend = BitMapBackend::new(path, (w as u32, h as u32));
    backend
        .blit_bitmap((0, 0), (w as u32, h as u32), &rgb)
        .map_err(draw_err)?;
    backend.present().map_err(draw_err)?;
    Ok(())
}
