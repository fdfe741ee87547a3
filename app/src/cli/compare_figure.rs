//! The curves of `glassbox train --compare` as `compare.png` (plotters, the bundled font)
//! and `compare.svg` (written by hand: one `<path>` per curve, text kept as text): each
//! recipe's training loss (solid) and held-out loss (dashed, dots), one colour per recipe.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, anyhow};
use glassbox_engine::train::compare::CompareReport;
use plotters::prelude::*;

use crate::gui::fonts;
use crate::gui::theme::Theme;

const FONT: &str = "glassbox-compare";
const SIZE: (u32, u32) = (1000, 600);

/// A curve: its legend name, recipe index (colour), whether it is the held-out one, points.
struct Curve {
    name: String,
    k: usize,
    held_out: bool,
    points: Vec<(f32, f32)>,
}

fn curves(r: &CompareReport) -> Vec<Curve> {
    let mut out = Vec::new();
    for (k, run) in r.runs.iter().enumerate() {
        let points = run.loss.iter().enumerate().map(|(i, &l)| ((i + 1) as f32, l)).filter(|p| p.1.is_finite()).collect();
        out.push(Curve { name: format!("{} loss", run.recipe), k, held_out: false, points });
        let points = run.eval.iter().map(|e| (e.step as f32, e.loss)).filter(|p| p.1.is_finite()).collect();
        out.push(Curve { name: format!("{} held-out", run.recipe), k, held_out: true, points });
    }
    out
}

/// The axes' ranges: steps 0..N, losses from 0 to the largest.
fn ranges(r: &CompareReport, cs: &[Curve]) -> (f32, f32) {
    let hi = cs.iter().flat_map(|c| c.points.iter().map(|p| p.1)).fold(0.0f32, f32::max);
    ((r.steps.max(1)) as f32, if hi > 0.0 { hi * 1.05 } else { 1.0 })
}

fn color(k: usize) -> RGBColor {
    let c = Theme::new(false).series(k);
    RGBColor(c.r(), c.g(), c.b())
}

fn title(r: &CompareReport) -> String {
    format!("{} preset, {} steps, seed {}, ~{} parameters", r.preset, r.steps, r.seed, r.budget_params)
}

/// Writes `DIR/compare.png` and `DIR/compare.svg`.
pub fn write_figures(r: &CompareReport, dir: &Path) -> Result<()> {
    write_png(r, &dir.join("compare.png"))?;
    std::fs::write(dir.join("compare.svg"), svg(r))?;
    Ok(())
}

fn write_png(r: &CompareReport, path: &Path) -> Result<()> {
    plotters::style::register_font(FONT, FontStyle::Normal, fonts::CJK_FONT).map_err(|_| anyhow!("the bundled font could not be loaded"))?;
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    let cs = curves(r);
    let (x_max, y_max) = ranges(r, &cs);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title(r), (FONT, 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f32..x_max, 0f32..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (nats)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(|e| err(&e))?;
    for c in &cs {
        let col = color(c.k);
        let style = if c.held_out { col.mix(0.6).stroke_width(2) } else { col.stroke_width(2) };
        if c.held_out {
            chart.draw_series(c.points.iter().map(|&p| Circle::new(p, 4, style.filled()))).map_err(|e| err(&e))?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(c.points.clone(), style)))
            .map_err(|e| err(&e))?
            .label(c.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The same figure as SVG text: axes as `<line>`s, each curve one `<path>`, a legend.
pub fn svg(r: &CompareReport) -> String {
    let (w, h) = (SIZE.0 as f32, SIZE.1 as f32);
    let (left, right, top, bottom) = (80.0f32, 220.0f32, 50.0f32, 60.0f32);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let cs = curves(r);
    let (x_max, y_max) = ranges(r, &cs);
    let px = |x: f32| left + pw * x / x_max;
    let py = |y: f32| top + ph - ph * y / y_max;
    let mut s = String::new();
    let _ = writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#);
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="28" font-size="20" text-anchor="middle">{}</text>"#, w / 2.0, esc(&title(r)));
    let _ = writeln!(s, r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#, top + ph, left + pw, top + ph);
    let _ = writeln!(s, r#"<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>"#, top + ph);
    for k in 0..=4 {
        let (xv, yv) = (x_max * k as f32 / 4.0, y_max * k as f32 / 4.0);
        let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="13" text-anchor="middle">{:.0}</text>"#, px(xv), top + ph + 18.0, xv);
        let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="13" text-anchor="end">{:.2}</text>"#, left - 6.0, py(yv) + 4.0, yv);
    }
    let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="15" text-anchor="middle">step</text>"#, left + pw / 2.0, h - 15.0);
    let _ = writeln!(s, r#"<text x="20" y="{}" font-size="15" text-anchor="middle" transform="rotate(-90 20 {})">loss (nats)</text>"#, top + ph / 2.0, top + ph / 2.0);
    for (i, c) in cs.iter().enumerate() {
        let col = Theme::new(false).series(c.k);
        let stroke = format!("#{:02x}{:02x}{:02x}", col.r(), col.g(), col.b());
        let dash = if c.held_out { r#" stroke-dasharray="6 4""# } else { "" };
        let d: Vec<String> = c.points.iter().enumerate().map(|(j, &(x, y))| format!("{}{:.1} {:.1}", if j == 0 { "M" } else { "L" }, px(x), py(y))).collect();
        let _ = writeln!(s, r#"<path d="{}" fill="none" stroke="{stroke}" stroke-width="2"{dash}><title>{}</title></path>"#, d.join(" "), esc(&c.name));
        let ly = top + 10.0 + i as f32 * 22.0;
        let lx = left + pw + 20.0;
        let _ = writeln!(s, r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{stroke}" stroke-width="2"{dash}/>"#, lx + 24.0);
        let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="13">{}</text>"#, lx + 30.0, ly + 4.0, esc(&c.name));
    }
    s.push_str("</svg>\n");
    s
}
