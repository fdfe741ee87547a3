//! The step timeline: the whole `Step::program` as one strip, colored by operation family,
//! dimmed where the worker has not computed yet, with the cursor. Click or drag to scrub.

use egui::{Align2, FontId, Sense, Stroke, Ui, pos2, vec2};
use glassbox_engine::Step;

use super::{Request, ViewCtx, family_of};

#[derive(Default)]
pub struct TimelineView;

impl TimelineView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let program = &cx.s.program;
        let n = program.len().max(1);
        let n_layers = cx.s.n_layers();
        let (rect, resp) =
            ui.allocate_exact_size(vec2(ui.available_width(), 34.0), Sense::click_and_drag());
        let painter = ui.painter_at(rect.expand(1.0));
        let bar = egui::Rect::from_min_max(pos2(rect.min.x, rect.min.y + 14.0), rect.max);
        let w = bar.width() / n as f32;
        for (i, &step) in program.iter().enumerate() {
            let mut color = cx.theme.op_color(family_of(step));
            if !cx.s.step_ready(i) {
                color = color.gamma_multiply(0.3);
            }
            let x = bar.min.x + i as f32 * w;
            painter.rect_filled(
                egui::Rect::from_min_max(pos2(x, bar.min.y), pos2(x + w.max(1.0), bar.max.y)),
                0.0,
                color,
            );
        }
        // Layer ticks: every layer a thin line, every fifth labelled.
        let font = FontId::proportional(crate::gui::theme::font_px(ui, 10.0));
        for l in 0..n_layers {
            let i = cx.s.index_of(Step::Layer(l, cx.s.block_ops()[0]));
            let x = bar.min.x + i as f32 * w;
            painter.line_segment(
                [pos2(x, bar.min.y), pos2(x, bar.max.y)],
                Stroke::new(1.0, cx.theme.panel_fill()),
            );
            if l % 5 == 0 || n_layers <= 12 {
                painter.text(
                    pos2(x + 1.0, rect.min.y),
                    Align2::LEFT_TOP,
                    format!("L{l}"),
                    font.clone(),
                    cx.theme.muted(),
                );
            }
        }
        let cx_x = bar.min.x + (cx.s.cursor as f32 + 0.5) * w;
        painter.line_segment(
            [pos2(cx_x, rect.min.y + 10.0), pos2(cx_x, bar.max.y)],
            Stroke::new(3.0, cx.theme.highlight()),
        );
        let index_at = |x: f32| (((x - bar.min.x) / w).floor().max(0.0) as usize).min(n - 1);
        if let Some(p) = resp.hover_pos() {
            let step = program[index_at(p.x)];
            resp.clone().on_hover_text(step.to_string());
        }
        if (resp.clicked() || resp.dragged())
            && let Some(p) = resp.interact_pointer_pos()
        {
            let i = index_at(p.x);
            if i != cx.s.cursor {
                cx.requests.push(Request::Goto(program[i]));
            }
        }
    }
}
