//! The head-ablation picker beside the attention view: a layer × head grid where a click
//! switches a head off (its `attn.hook_z` set to 0 at every position, before `o_proj`) or
//! back on, and the pass runs again. The status bar lists the ablated heads; a lesson action
//! without `ablate_heads` clears them.

use egui::{RichText, Sense, Stroke, StrokeKind, Ui, vec2};

use crate::gui::views::ViewCtx;

/// Switches head `(layer, head)` on or off and runs the pass again.
pub fn toggle(cx: &mut ViewCtx<'_>, layer: usize, head: usize) {
    let s = &mut *cx.s;
    match s.ablate.iter().position(|&x| x == (layer, head)) {
        Some(i) => {
            s.ablate.remove(i);
        }
        None => s.ablate.push((layer, head)),
    }
    s.ablate.sort_unstable();
    rerun(cx);
}

fn rerun(cx: &mut ViewCtx<'_>) {
    if cx.s.n_tokens() > 0 || !cx.s.prompt.trim().is_empty() {
        cx.s.rerun();
    }
}

pub fn picker_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>) {
    let c = &cx.s.model.config;
    let (n_layers, n_heads) = (c.n_layers(), c.n_heads());
    let current = (cx.s.view_layer(), cx.s.sel.head);
    ui.label(RichText::new(cx.tr("Ablate heads", "消融注意力头")).strong());
    ui.label(
        RichText::new(cx.tr(
            "Click a head to zero its output (z) at every position and run again; click it again to bring it back.",
            "点击一个头，把它在所有位置的输出（z）置零并重新运行；再点一次恢复。",
        ))
        .small()
        .color(cx.theme.muted()),
    );
    ui.horizontal_wrapped(|ui| {
        if ui.add_enabled(!cx.s.ablate.is_empty(), egui::Button::new(cx.tr("Clear", "全部恢复"))).clicked() {
            cx.s.ablate.clear();
            rerun(cx);
        }
        let layer = current.0;
        let label = cx.lang.tf(format!("Whole layer {layer}"), format!("整个第 {layer} 层"));
        if ui.button(label).clicked() {
            let all_off = (0..n_heads).all(|h| cx.s.ablate.contains(&(layer, h)));
            cx.s.ablate.retain(|&(l, _)| l != layer);
            if !all_off {
                cx.s.ablate.extend((0..n_heads).map(|h| (layer, h)));
            }
            cx.s.ablate.sort_unstable();
            rerun(cx);
        }
    });
    ui.label(cx.lang.tf(format!("{} heads ablated", cx.s.ablate.len()), format!("已消融 {} 个头", cx.s.ablate.len())));
    let cell = ((ui.available_height() - 40.0) / n_layers.max(1) as f32).clamp(9.0, 18.0);
    let mut clicked = None;
    egui::ScrollArea::vertical().id_salt("ablation-grid").show(ui, |ui| {
        ui.spacing_mut().item_spacing = vec2(1.0, 1.0);
        ui.horizontal(|ui| {
            ui.add_sized(vec2(28.0, cell), egui::Label::new(""));
            for h in 0..n_heads {
                ui.add_sized(vec2(cell, cell), egui::Label::new(RichText::new(format!("{h}")).small()));
            }
        });
        for l in 0..n_layers {
            ui.horizontal(|ui| {
                ui.add_sized(vec2(28.0, cell), egui::Label::new(RichText::new(format!("L{l}")).small()));
                for h in 0..n_heads {
                    let on = cx.s.ablate.contains(&(l, h));
                    let (rect, resp) = ui.allocate_exact_size(vec2(cell, cell), Sense::click());
                    resp.widget_info(|| egui::WidgetInfo::selected(egui::Role::CheckBox, true, on, format!("L{l} H{h}")));
                    let fill = if on { cx.theme.error() } else { cx.theme.faint() };
                    ui.painter().rect_filled(rect, 2.0, fill);
                    if (l, h) == current {
                        ui.painter().rect_stroke(rect, 2.0, Stroke::new(1.5, cx.theme.highlight()), StrokeKind::Inside);
                    }
                    if resp.hovered() {
                        ui.painter().rect_stroke(rect, 2.0, Stroke::new(1.0, cx.theme.text()), StrokeKind::Inside);
                    }
                    if resp.clicked() {
                        clicked = Some((l, h));
                    }
                    resp.on_hover_text(cx.lang.tf(format!("layer {l}, head {h}"), format!("第 {l} 层，第 {h} 个头")));
                }
            });
        }
    });
    if let Some((l, h)) = clicked {
        toggle(cx, l, h);
    }
}
