//! The training curves (egui_plot): loss (bf16 over f32), learning rate, gradient norm per
//! layer, induction score, and each data-parallel worker's gradient norm.

use egui::{RichText, Ui};
use egui_plot::{Bar, BarChart, Corner, Legend, Line, Plot, Points};
use glassbox_engine::train::Preset;

use super::History;
use crate::gui::views::ViewCtx;

const HEIGHT: f32 = 190.0;

pub(super) fn plot<'a>(cx: &ViewCtx<'_>, id: &str, y_label: &str) -> Plot<'a> {
    Plot::new(id.to_string())
        .height(HEIGHT)
        .legend(Legend::default())
        .x_axis_label(cx.tr("step", "步"))
        .y_axis_label(y_label.to_string())
        .allow_scroll(false)
        .include_x(0.0)
}

/// All curves, two per row.
pub fn curves_ui(ui: &mut Ui, cx: &ViewCtx<'_>, h: &History, preset: Preset, workers: usize) {
    let theme = cx.theme;
    ui.columns(2, |cols| {
        cols[0].label(RichText::new(cx.tr("Loss", "损失")).strong());
        let held_out = match preset {
            Preset::Induction => cx.tr("held-out loss, repeated half", "留出损失（重复的后半段）"),
            Preset::Text => cx.tr("held-out loss", "留出损失"),
        };
        // The losses fall from the top left to the bottom right: the legend sits where no curve runs.
        let legend = Legend::default().position(Corner::LeftBottom);
        plot(cx, "train-loss", cx.tr("loss", "损失")).legend(legend).include_y(0.0).show(&mut cols[0], |p| {
            let train: Vec<[f64; 2]> = h.steps.iter().map(|r| [r.step as f64, f64::from(r.loss)]).collect();
            p.line(Line::new(cx.tr("training loss (f32)", "训练损失（f32）"), train).color(theme.series(0)).width(2.0));
            if !h.bf16_steps.is_empty() {
                let bf: Vec<[f64; 2]> = h.bf16_steps.iter().map(|r| [r.step as f64, f64::from(r.loss)]).collect();
                p.line(Line::new(cx.tr("training loss (bf16)", "训练损失（bf16）"), bf).color(theme.series(1)).width(1.5));
            }
            let eval: Vec<[f64; 2]> = h.evals.iter().map(|e| [e.step as f64, f64::from(e.loss)]).collect();
            p.line(Line::new(held_out, eval.clone()).color(theme.series(2)).width(1.5));
            p.points(Points::new(held_out, eval).color(theme.series(2)).radius(2.5));
            if preset == Preset::Induction {
                let first: Vec<[f64; 2]> = h.evals.iter().map(|e| [e.step as f64, f64::from(e.other_loss)]).collect();
                p.line(Line::new(cx.tr("held-out loss, random first half", "留出损失（随机的前半段）"), first).color(theme.series(3)));
            }
        });
        cols[1].label(RichText::new(cx.tr("Learning rate (warm-up, then cosine)", "学习率（预热，然后余弦衰减）")).strong());
        plot(cx, "train-lr", cx.tr("lr", "学习率")).include_y(0.0).show(&mut cols[1], |p| {
            let lr: Vec<[f64; 2]> = h.steps.iter().map(|r| [r.step as f64, f64::from(r.lr)]).collect();
            p.line(Line::new(cx.tr("lr", "学习率"), lr).color(theme.series(0)).width(2.0));
        });
    });
    ui.columns(2, |cols| {
        cols[0].label(RichText::new(cx.tr("Gradient norm per layer", "每层的梯度范数")).strong());
        plot(cx, "train-layer-norms", "|grad|").include_y(0.0).show(&mut cols[0], |p| {
            let n_layers = h.steps.last().map_or(0, |r| r.layer_grad_norms.len());
            for l in 0..n_layers {
                let pts: Vec<[f64; 2]> = h
                    .steps
                    .iter()
                    .filter_map(|r| Some([r.step as f64, f64::from(*r.layer_grad_norms.get(l)?)]))
                    .collect();
                p.line(Line::new(cx.lang.tf(format!("layer {l}"), format!("第 {l} 层")), pts).color(theme.series(l)));
            }
            let total: Vec<[f64; 2]> = h.steps.iter().map(|r| [r.step as f64, f64::from(r.grad_norm)]).collect();
            p.line(Line::new(cx.tr("all parameters", "全部参数"), total).color(theme.muted()));
        });
        cols[1].label(RichText::new(cx.tr("Induction score of the best head", "最佳注意力头的归纳分数")).strong());
        plot(cx, "train-induction", cx.tr("score", "分数")).include_y(0.0).include_y(1.0).show(&mut cols[1], |p| {
            let pts: Vec<[f64; 2]> = h.evals.iter().map(|e| [e.step as f64, f64::from(e.induction_score)]).collect();
            p.line(Line::new("f32", pts.clone()).color(theme.series(0)).width(2.0));
            p.points(Points::new("f32", pts).color(theme.series(0)).radius(2.5));
            if !h.bf16_evals.is_empty() {
                let bf: Vec<[f64; 2]> = h.bf16_evals.iter().map(|e| [e.step as f64, f64::from(e.induction_score)]).collect();
                p.line(Line::new("bf16", bf).color(theme.series(1)));
            }
        });
    });
    if let Some(e) = h.evals.last() {
        ui.label(RichText::new(cx.lang.tf(
            format!("Best induction head at step {}: layer {} head {} (score {:.2}). Held-out loss {:.3}.", e.step, e.best_head[0], e.best_head[1], e.induction_score, e.loss),
            format!("第 {} 步的最佳归纳头：第 {} 层第 {} 个头（分数 {:.2}）。留出损失 {:.3}。", e.step, e.best_head[0], e.best_head[1], e.induction_score, e.loss),
        )).color(cx.theme.muted()));
    }
    if workers > 1 || h.steps.last().is_some_and(|r| r.worker_grad_norms.len() > 1) {
        workers_ui(ui, cx, h);
    }
}

/// Each worker's shard gradient before the all-reduce: the shards differ, their mean is the
/// step everyone takes.
fn workers_ui(ui: &mut Ui, cx: &ViewCtx<'_>, h: &History) {
    let theme = cx.theme;
    ui.label(RichText::new(cx.tr("Gradient norm of each data-parallel worker (before the all-reduce)", "每个数据并行工作者的梯度范数（全归约之前）")).strong());
    ui.columns(2, |cols| {
        plot(cx, "train-workers", "|grad|").include_y(0.0).show(&mut cols[0], |p| {
            let n = h.steps.last().map_or(0, |r| r.worker_grad_norms.len());
            for w in 0..n {
                let pts: Vec<[f64; 2]> = h
                    .steps
                    .iter()
                    .filter_map(|r| Some([r.step as f64, f64::from(*r.worker_grad_norms.get(w)?)]))
                    .collect();
                p.line(Line::new(cx.lang.tf(format!("worker {w}"), format!("工作者 {w}")), pts).color(theme.series(w)));
            }
            let mean: Vec<[f64; 2]> = h.steps.iter().map(|r| [r.step as f64, f64::from(r.grad_norm)]).collect();
            p.line(Line::new(cx.tr("averaged gradient", "平均后的梯度"), mean).color(theme.muted()).width(2.0));
        });
        Plot::new("train-workers-now")
            .height(HEIGHT)
            .x_axis_label(cx.tr("worker", "工作者").to_string())
            .y_axis_label("|grad|")
            .allow_scroll(false)
            .show(&mut cols[1], |p| {
                if let Some(r) = h.steps.last() {
                    let bars = r
                        .worker_grad_norms
                        .iter()
                        .enumerate()
                        .map(|(w, &g)| Bar::new(w as f64, f64::from(g)).fill(theme.series(w)))
                        .collect();
                    p.add(BarChart::new(cx.tr("this step", "这一步"), bars));
                }
            });
    });
}
