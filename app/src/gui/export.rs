//! Figures for slides and handouts: the current heatmap, bar chart or line chart as a PNG
//! and an SVG (the same drawing code on plotters' bitmap and SVG backends), into a folder the
//! user can find, with the bundled font so Chinese labels render (the SVG keeps its text as
//! text); hooks as `.npy` / `.npz` for notebooks; and window screenshots (scripted
//! screenshots use the same writer).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow};
use plotters::backend::{BitMapBackend, DrawingBackend, SVGBackend};
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
    /// One line per series over labelled x positions (divergence per layer).
    Lines {
        title: String,
        x_labels: Vec<String>,
        x_title: String,
        y_title: String,
        /// `(name, values)`; non-finite or (on a log axis) non-positive values are gaps.
        series: Vec<(String, Vec<f32>)>,
        log_y: bool,
    },
}

impl Figure {
    pub fn title(&self) -> &str {
        match self {
            Figure::Heatmap { title, .. } | Figure::Bars { title, .. } | Figure::Lines { title, .. } => title,
        }
    }
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

/// Tests export into their own folder (set once; the environment is not theirs to change).
#[cfg(test)]
static TEST_DIR: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

#[cfg(test)]
pub fn set_test_dir(dir: PathBuf) {
    if let Ok(mut d) = TEST_DIR.lock() {
        *d = Some(dir);
    }
}

/// Where figures go: `$GLASSBOX_EXPORT_DIR`, else `~/Pictures/Glassbox`, else `./glassbox-figures`.
pub fn export_dir() -> PathBuf {
    #[cfg(test)]
    if let Some(dir) = TEST_DIR.lock().ok().and_then(|d| d.clone()) {
        return dir;
    }
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

fn stamped(dir: &Path, name: &str, ext: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    dir.join(format!("glassbox-{}-{stamp}.{ext}", slug(name)))
}

/// Saves `fig` into [`export_dir`] as a PNG and, beside it, an SVG; returns the PNG.
pub fn save_figure(fig: &Figure) -> Result<PathBuf> {
    let dir = export_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = stamped(&dir, fig.title(), "png");
    write_figure(fig, &path)?;
    write_figure(fig, &path.with_extension("svg"))?;
    Ok(path)
}

/// Saves hooks into [`export_dir`] for numpy: one tensor as `.npy`, several as `.npz`
/// (entries named by hook). Returns the file.
pub fn save_hooks(name: &str, entries: &[(String, &glassbox_engine::Tensor)]) -> Result<PathBuf> {
    use glassbox_engine::experiments::npy;
    let dir = export_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match entries {
        [] => Err(anyhow!("nothing recorded to export yet: run the prompt first")),
        [(_, t)] => {
            let path = stamped(&dir, name, "npy");
            npy::write_npy(&path, t)?;
            Ok(path)
        }
        _ => {
            let path = stamped(&dir, name, "npz");
            npy::write_npz(&path, entries)?;
            Ok(path)
        }
    }
}

fn rgb(c: egui::Color32) -> RGBColor {
    RGBColor(c.r(), c.g(), c.b())
}

fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the figure: {e:?}")
}

/// Draws `fig` into `path`: an SVG for `.svg`, else a PNG; the same drawing code for both.
pub fn write_figure(fig: &Figure, path: &Path) -> Result<()> {
    register_font()?;
    let svg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let (w, h) = figure_size(fig);
    if svg {
        draw_figure(SVGBackend::new(path, (w, h)), fig, false)
    } else {
        draw_figure(BitMapBackend::new(path, (w, h)), fig, true)
    }
}

/// Pixel size of a figure.
fn figure_size(fig: &Figure) -> (u32, u32) {
    match fig {
        Figure::Heatmap { rows, cols, row_labels, col_labels, .. } => heatmap_layout(*rows, *cols, row_labels, col_labels).size,
        Figure::Bars { labels, .. } => (1000, 80 + labels.len().max(1) as u32 * 32 + 40),
        Figure::Lines { .. } => (1100, 620),
    }
}

/// `raster`: heatmap cells go out as one bitmap (PNG); else as rectangles (SVG).
fn draw_figure<DB: DrawingBackend>(backend: DB, fig: &Figure, raster: bool) -> Result<()> {
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
        } => draw_heatmap(
            backend,
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
            raster,
        ),
        Figure::Bars { title, labels, values } => draw_bars(backend, title, labels, values),
        Figure::Lines { title, x_labels, x_title, y_title, series, log_y } => {
            draw_lines(backend, &LinesFig { title, x_labels, x_title, y_title, series, log_y: *log_y })
        }
    }
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

/// Where a heatmap figure's parts go: the cells' top-left corner, cell size, the grid.
struct HeatmapLayout {
    left: u32,
    top: u32,
    cw: u32,
    ch: u32,
    size: (u32, u32),
}

fn heatmap_layout(rows: usize, cols: usize, row_labels: &[String], col_labels: &[String]) -> HeatmapLayout {
    let (rows, cols) = (rows.max(1), cols.max(1));
    let (cw, ch) = heatmap_cells(rows, cols, !col_labels.is_empty());
    let longest = |ls: &[String]| {
        ls.iter()
            .map(|l| super::heatmap::short_label(l, 14).chars().count())
            .max()
            .unwrap_or(0) as u32
    };
    let left = 44 + longest(row_labels) * 11;
    let top = 80 + longest(col_labels) * 11;
    let (gw, gh) = (cw * cols as u32, ch * rows as u32);
    let (right, bottom) = (240u32, 60u32);
    HeatmapLayout { left, top, cw, ch, size: (left + gw + right, (top + gh + bottom).max(top + 300)) }
}

/// A heatmap for a slide: cells from [`heatmap_cells`], row and column labels and titles, and
/// a colour bar with ticks and unit from the same scale as the screen. `raster`: the cells
/// as one bitmap; else one rectangle per run of equal colour in a row (SVG).
fn draw_heatmap<DB: DrawingBackend>(mut backend: DB, f: &HeatmapFig<'_>, raster: bool) -> Result<()> {
    let (rows, cols) = (f.rows.max(1), f.cols.max(1));
    let HeatmapLayout { left, top, cw, ch, size: (w, h) } = heatmap_layout(rows, cols, f.row_labels, f.col_labels);
    let label_px = 19u32;
    let (gw, gh) = (cw * cols as u32, ch * rows as u32);
    let color_at = |r: usize, c: usize| {
        let v = f.values.get(r * cols + c).copied().unwrap_or(f32::NAN);
        if v.is_finite() {
            f.scale.color(f.map, r, v)
        } else {
            egui::Color32::from_gray(200)
        }
    };
    backend
        .draw_rect((0, 0), (w as i32, h as i32), &WHITE, true)
        .map_err(draw_err)?;
    if raster {
        let mut cells = vec![0u8; (gw * gh * 3) as usize];
        for r in 0..rows {
            for c in 0..cols {
                let color = color_at(r, c);
                for dy in 0..ch {
                    let row0 = ((r as u32 * ch + dy) * gw + c as u32 * cw) as usize * 3;
                    for dx in 0..cw as usize {
                        cells[row0 + dx * 3..row0 + dx * 3 + 3]
                            .copy_from_slice(&[color.r(), color.g(), color.b()]);
                    }
                }
            }
        }
        backend
            .blit_bitmap((left as i32, top as i32), (gw, gh), &cells)
            .map_err(draw_err)?;
    } else {
        for r in 0..rows {
            let y = (top + r as u32 * ch) as i32;
            let mut c0 = 0;
            while c0 < cols {
                let color = color_at(r, c0);
                let mut c1 = c0 + 1;
                while c1 < cols && color_at(r, c1) == color {
                    c1 += 1;
                }
                let x = |c: usize| (left + c as u32 * cw) as i32;
                backend
                    .draw_rect((x(c0), y), (x(c1), y + ch as i32), &rgb(color), true)
                    .map_err(draw_err)?;
                c0 = c1;
            }
        }
    }
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
fn draw_bars<DB: DrawingBackend>(backend: DB, title: &str, labels: &[String], values: &[f32]) -> Result<()> {
    let n = labels.len().max(1) as u32;
    let (left, bar_h, top) = (260u32, 32u32, 80u32);
    let w = 1000u32;
    let root = backend.into_drawing_area();
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

struct LinesFig<'a> {
    title: &'a str,
    x_labels: &'a [String],
    x_title: &'a str,
    y_title: &'a str,
    series: &'a [(String, Vec<f32>)],
    log_y: bool,
}

/// Colours of the series, as on screen (the theme's light group palette).
fn series_color(i: usize) -> RGBColor {
    rgb(super::theme::Theme::new(false).series(i))
}

/// Lines over labelled x positions with a legend; on a log axis, gridlines at each decade.
fn draw_lines<DB: DrawingBackend>(backend: DB, f: &LinesFig<'_>) -> Result<()> {
    let (w, h) = (1100i32, 620i32);
    let (left, right, top, bottom) = (120i32, 300i32, 70i32, 100i32);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    root.draw(&Text::new(f.title.to_string(), (10, 10), font(30))).map_err(draw_err)?;
    let y_of = |v: f32| -> Option<f64> {
        if !v.is_finite() || (f.log_y && v <= 0.0) {
            None
        } else if f.log_y {
            Some(f64::from(v).log10())
        } else {
            Some(f64::from(v))
        }
    };
    let all: Vec<f64> = f.series.iter().flat_map(|(_, v)| v.iter().filter_map(|&x| y_of(x))).collect();
    let (mut lo, mut hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if f.log_y {
        (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
    } else {
        lo = lo.min(0.0);
        if hi <= lo {
            hi = lo + 1.0;
        }
    }
    let n = f.x_labels.len().max(2);
    let px = |i: usize| left + (pw as f64 * i as f64 / (n - 1) as f64).round() as i32;
    let py = |y: f64| top + ph - (ph as f64 * (y - lo) / (hi - lo)).round() as i32;
    // Axes and gridlines.
    let ticks: Vec<f64> = if f.log_y {
        (lo as i32..=hi as i32).map(f64::from).collect()
    } else {
        (0..=4).map(|k| lo + (hi - lo) * f64::from(k) / 4.0).collect()
    };
    for &t in &ticks {
        let y = py(t);
        root.draw(&PathElement::new(vec![(left, y), (left + pw, y)], RGBColor(220, 220, 220))).map_err(draw_err)?;
        let label = if f.log_y { format!("1e{}", t as i32) } else { super::scale::short(t as f32) };
        root.draw(&Text::new(label, (left - 8, y), font(17).pos(Pos::new(HPos::Right, VPos::Center)))).map_err(draw_err)?;
    }
    root.draw(&PathElement::new(vec![(left, top), (left, top + ph), (left + pw, top + ph)], BLACK)).map_err(draw_err)?;
    let every = n.div_ceil(16).max(1);
    for (i, l) in f.x_labels.iter().enumerate().step_by(every) {
        let x = px(i);
        root.draw(&PathElement::new(vec![(x, top + ph), (x, top + ph + 5)], BLACK)).map_err(draw_err)?;
        root.draw(&Text::new(l.clone(), (x, top + ph + 8), font(16).pos(Pos::new(HPos::Center, VPos::Top)))).map_err(draw_err)?;
    }
    root.draw(&Text::new(f.x_title.to_string(), (left + pw / 2, h - 40), font(20).pos(Pos::new(HPos::Center, VPos::Top)))).map_err(draw_err)?;
    let y_style = font(20).transform(FontTransform::Rotate270).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(f.y_title.to_string(), (8, top + ph / 2), y_style)).map_err(draw_err)?;
    // The series, with gaps where a value has no place on the axis.
    for (k, (name, values)) in f.series.iter().enumerate() {
        let color = series_color(k);
        let mut run: Vec<(i32, i32)> = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            match y_of(v) {
                Some(y) => {
                    let p = (px(i), py(y));
                    root.draw(&Circle::new(p, 3, color.filled())).map_err(draw_err)?;
                    run.push(p);
                }
                None => {
                    if run.len() > 1 {
                        root.draw(&PathElement::new(std::mem::take(&mut run), color.stroke_width(2))).map_err(draw_err)?;
                    }
                    run.clear();
                }
            }
        }
        if run.len() > 1 {
            root.draw(&PathElement::new(run, color.stroke_width(2))).map_err(draw_err)?;
        }
        let ly = top + 10 + k as i32 * 28;
        let lx = left + pw + 20;
        root.draw(&Rectangle::new([(lx, ly - 2), (lx + 24, ly + 2)], color.filled())).map_err(draw_err)?;
        root.draw(&Text::new(name.clone(), (lx + 32, ly), font(17).pos(Pos::new(HPos::Left, VPos::Center)))).map_err(draw_err)?;
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
