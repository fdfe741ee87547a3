//! §1.4 of the article, live: LayerNorm (the article's, γ = 1, β = 0) and RMSNorm (Llama's)
//! applied to the same residual vector, side by side, one colour scale for both outputs.
//! The numbers come from the engine (`norms::compare`); this file arranges them.

use egui::{RichText, Ui};
use glassbox_engine::HookKey;
use glassbox_engine::article::norms;

use super::{grid_cols, max_abs};
use crate::gui::heatmap::{self, vector_grid_ui};
use crate::gui::theme::Colormap;
use crate::gui::views::{ViewCtx, fmt_val};

pub fn compare_ui(
    ui: &mut Ui,
    cx: &mut ViewCtx<'_>,
    site: &str,
    input: HookKey,
    x: &[f32],
    weight: &[f32],
    pos: usize,
) {
    let eps = cx.s.model.config.eps();
    let c = norms::compare(x, ndarray::ArrayView1::from(weight), eps);
    let tok = cx.s.token_texts.get(pos).cloned().unwrap_or_default();
    let p_abs = cx.pos(pos);
    ui.label(
        RichText::new(cx.lang.tf(
            format!("{site}: the same vector ({input}, position {p_abs} “{tok}”) through both norms"),
            format!("{site}：同一个向量（{input}，位置 {p_abs}“{tok}”）分别经过两种归一化"),
        ))
        .strong(),
    );
    ui.label(
        RichText::new(
            "LayerNorm(x) = (x − mean(x)) / √(var(x) + eps)      RMSNorm(x) = x / √(mean(x·x) + eps)",
        )
        .monospace(),
    );
    ui.label(cx.lang.tf(
        format!(
            "mean(x) = {}   ·   LayerNorm divides by {}   ·   RMSNorm divides by {}   (rms² = mean² + var)",
            fmt_val(c.mean),
            fmt_val(c.std),
            fmt_val(c.rms)
        ),
        format!(
            "mean(x) = {}   ·   LayerNorm 除以 {}   ·   RMSNorm 除以 {}   （rms² = mean² + var）",
            fmt_val(c.mean),
            fmt_val(c.std),
            fmt_val(c.rms)
        ),
    ));
    let diff: Vec<f32> = c
        .layer_norm
        .iter()
        .zip(&c.rms_norm)
        .map(|(a, b)| a - b)
        .collect();
    let cols = grid_cols(x.len());
    let cell = ((ui.available_width() - 80.0) / 4.0 / cols as f32).clamp(3.0, 11.0);
    let sx = max_abs(x.iter().copied());
    let sn = max_abs(c.layer_norm.iter().chain(&c.rms_norm).copied());
    let sd = max_abs(diff.iter().copied()).max(1e-6);
    let mut hovered = None;
    ui.horizontal_top(|ui| {
        let mut grid = |ui: &mut Ui, title: String, v: &[f32], scale: f32| {
            ui.vertical(|ui| {
                ui.label(RichText::new(title).strong());
                let (_, hov) = vector_grid_ui(
                    ui,
                    v,
                    cols,
                    cell,
                    |x| Colormap::Diverging.signed(x, scale),
                    None,
                    &cx.theme,
                );
                hovered = hovered.or(hov);
                ui.label(RichText::new(format!("max |·| = {}", fmt_val(scale))).small());
            });
        };
        grid(ui, cx.tr("x (the residual stream)", "x（残差流）").into(), x, sx);
        grid(ui, "LayerNorm(x)".into(), &c.layer_norm, sn);
        grid(ui, "RMSNorm(x)".into(), &c.rms_norm, sn);
        grid(ui, cx.tr("difference", "两者之差").into(), &diff, sd);
    });
    heatmap::legend_ui(
        ui,
        Colormap::Diverging,
        -sn,
        sn,
        cx.tr("normalized value (both middle grids)", "归一化后的数值（中间两幅共用）"),
        &cx.theme,
    );
    // Each grid's colours are read off a bar: x and the difference have scales of their own.
    heatmap::legend_ui(
        ui,
        Colormap::Diverging,
        -sd,
        sd,
        cx.tr("LayerNorm(x) − RMSNorm(x) (the right grid)", "LayerNorm(x) − RMSNorm(x)（最右一幅）"),
        &cx.theme,
    );
    heatmap::legend_ui(ui, Colormap::Diverging, -sx, sx, cx.tr("x (the left grid)", "x（最左一幅）"), &cx.theme);
    let line = match hovered {
        Some(i) => format!(
            "dim {i}:  x = {}   LayerNorm = {}   RMSNorm = {}   ⊙ g → {}",
            fmt_val(x[i]),
            fmt_val(c.layer_norm[i]),
            fmt_val(c.rms_norm[i]),
            fmt_val(c.rms_norm_scaled[i])
        ),
        None => cx
            .tr(
                "When mean(x) is near 0 the two agree; the further the mean is from 0, the more they differ. Llama keeps RMSNorm: one statistic fewer, no bias, the same results in practice.",
                "当 mean(x) 接近 0 时两者几乎一样；均值离 0 越远，差别越大。Llama 用 RMSNorm：少算一个统计量，没有偏置，实际效果相当。",
            )
            .to_string(),
    };
    ui.label(RichText::new(line).monospace());
}
