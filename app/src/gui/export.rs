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
        map: Colormap,
        /// The value at the low and high end of the colormap.
        lo: f32,
        hi: f32,
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
            map,
            lo,
            hi,
        } => {
            let (rows, cols) = (*rows, *cols);
            // Integer cell size so the PNG is crisp; big matrices get 1-pixel cells.
            let cell = (900 / rows.max(cols).max(1)).clamp(1, 40) as u32;
            let (left, top, right, bottom) = (150u32, 170u32, 120u32, 30u32);
            let (gw, gh) = (cell * cols as u32, cell * rows as u32);
            let (w, h) = (left + gw + right, top + gh + bottom);
            let mut cells = vec![0u8; (gw * gh * 3) as usize];
            for r in 0..rows {
                for c in 0..cols {
                    let v = values.get(r * cols + c).copied().unwrap_or(f32::NAN);
                    let color = if !v.is_finite() {
                        egui::Color32::from_gray(200)
                    } else if *map == Colormap::Diverging {
                        map.signed(v, lo.abs().max(hi.abs()))
                    } else {
                        map.at(if hi > lo { (v - lo) / (hi - lo) } else { 0.0 })
                    };
                    for dy in 0..cell {
                        for dx in 0..cell {
                            let i =
                                (((r as u32 * cell + dy) * gw + c as u32 * cell + dx) * 3) as usize;
                            cells[i..i + 3].copy_from_slice(&[color.r(), color.g(), color.b()]);
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
            let font = |size: u32| (FONT, size).into_font().color(&BLACK);
            root.draw(&Text::new(title.clone(), (10, 10), font(22)))
                .map_err(draw_err)?;
            let step = ((14 / cell.max(1)) as usize).max(1);
            for (r, l) in row_labels.iter().enumerate().take(rows).step_by(step) {
                let y = (top + r as u32 * cell + cell / 2) as i32;
                let style = font(13).pos(Pos::new(HPos::Right, VPos::Center));
                root.draw(&Text::new(
                    super::heatmap::short_label(l, 14),
                    (left as i32 - 6, y),
                    style,
                ))
                .map_err(draw_err)?;
            }
            for (c, l) in col_labels.iter().enumerate().take(cols).step_by(step) {
                let x = (left + c as u32 * cell + cell / 2) as i32;
                let style = font(13)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Left, VPos::Center));
                root.draw(&Text::new(
                    super::heatmap::short_label(l, 14),
                    (x, top as i32 - 6),
                    style,
                ))
                .map_err(draw_err)?;
            }
            // Color bar with its end values.
            let (bx, by, bh) = (
                (left + gw + 30) as i32,
                top as i32,
                gh.clamp(60, 400) as i32,
            );
            for i in 0..bh {
                let t = 1.0 - i as f32 / (bh - 1).max(1) as f32;
                root.draw(&Rectangle::new(
                    [(bx, by + i), (bx + 16, by + i + 1)],
                    rgb(map.at(t)).filled(),
                ))
                .map_err(draw_err)?;
            }
            let (top_v, low_v) = if *map == Colormap::Diverging {
                (lo.abs().max(hi.abs()), -lo.abs().max(hi.abs()))
            } else {
                (*hi, *lo)
            };
            root.draw(&Text::new(format!("{top_v:.3}"), (bx + 20, by), font(12)))
                .map_err(draw_err)?;
            root.draw(&Text::new(
                format!("{low_v:.3}"),
                (bx + 20, by + bh - 12),
                font(12),
            ))
            .map_err(draw_err)?;
            root.present().map_err(draw_err)?;
        }
        Figure::Bars {
            title,
            labels,
            values,
        } => {
            let n = labels.len().max(1) as u32;
            let (left, bar_h, top) = (220u32, 26u32, 60u32);
            let (w, h) = (900u32, top + n * bar_h + 30);
            let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            let font = |size: u32| (FONT, size).into_font().color(&BLACK);
            root.draw(&Text::new(title.clone(), (10, 10), font(22)))
                .map_err(draw_err)?;
            let max = values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f32, f32::max)
                .max(1e-12);
            let span = (w - left - 120) as f32;
            for (i, (l, v)) in labels.iter().zip(values).enumerate() {
                let y = (top + i as u32 * bar_h) as i32;
                let len = (span * (v / max).clamp(0.0, 1.0)) as i32;
                root.draw(&Rectangle::new(
                    [
                        (left as i32, y + 3),
                        (left as i32 + len.max(1), y + bar_h as i32 - 3),
                    ],
                    RGBColor(60, 130, 200).filled(),
                ))
                .map_err(draw_err)?;
                let style = font(14).pos(Pos::new(HPos::Right, VPos::Center));
                root.draw(&Text::new(
                    super::heatmap::short_label(l, 22),
                    (left as i32 - 8, y + bar_h as i32 / 2),
                    style,
                ))
                .map_err(draw_err)?;
                let style = font(13).pos(Pos::new(HPos::Left, VPos::Center));
                root.draw(&Text::new(
                    format!("{v:.4}"),
                    (left as i32 + len + 6, y + bar_h as i32 / 2),
                    style,
                ))
                .map_err(draw_err)?;
            }
            root.present().map_err(draw_err)?;
        }
    }
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
