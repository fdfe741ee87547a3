//! The bar above a view when a training step's gradients are loaded (the Training view's
//! "Show the gradients in the views"): the switch between activations and ∂loss/∂…, what
//! the colours mean, and the backward pass op by op. Stepping backward moves the cursor
//! through the reverse program, so the view that explains each op follows, showing the
//! gradient tensors that op recorded. The numbers are the engine's (`train::backward`).

use egui::{RichText, Ui};
use glassbox_engine::train::backward::formula;

use super::{Request, ViewCtx};

/// Draws the bar; true when the view below is to show the gradients.
pub fn bar_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>) -> bool {
    let matches = cx.s.gradients_match();
    let cursor = cx.s.cursor_step();
    let Some(g) = &mut cx.s.grads else { return false };
    let (lang, theme, n) = (cx.lang, cx.theme, g.train_step);
    if !matches && cx.s.running {
        // The sequence is still being run: it may well be theirs.
        return false;
    }
    if !matches {
        let mut forget = false;
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(lang.tf(
                format!("The gradients of training step {n} belong to another sequence than the one shown."),
                format!("第 {n} 个训练步的梯度属于另一条序列，不是当前显示的这条。"),
            )).color(theme.muted()));
            forget = ui.small_button(lang.tr("Forget them", "丢弃梯度")).clicked();
        });
        if forget {
            cx.s.grads = None;
        }
        return false;
    }
    egui::Frame::group(ui.style()).stroke(egui::Stroke::new(if g.on { 2.0 } else { 1.0 }, theme.accent())).show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut g.on, RichText::new(lang.tr("Show gradients ∂loss/∂… instead of activations", "显示梯度 ∂loss/∂…（而不是激活值）")).strong());
            ui.label(RichText::new(lang.tf(
                format!("training step {n} · loss {:.4}", g.loss),
                format!("第 {n} 个训练步 · 损失 {:.4}", g.loss),
            )).color(theme.muted()));
        });
        if !g.on {
            return;
        }
        ui.label(RichText::new(lang.tr(
            "Every heatmap below is ∂loss/∂(that tensor), not the tensor: red = raising the value raises the loss, blue = lowers it, white = no effect.",
            "下面每张热图都是 ∂loss/∂(该张量)，不是张量本身：红色 = 增大这个值会增大损失，蓝色 = 会减小损失，白色 = 没有影响。",
        )).color(theme.accent()));
        let k = g.recorded.iter().position(|(step, _)| *step == cursor);
        let total = g.recorded.len();
        ui.horizontal_wrapped(|ui| {
            let back = k.and_then(|k| k.checked_sub(1)).map(|i| g.recorded[i].0);
            let next = match k {
                Some(k) => g.recorded.get(k + 1).map(|(s, _)| *s),
                None => g.recorded.first().map(|(s, _)| *s),
            };
            if ui.add_enabled(back.is_some(), egui::Button::new(lang.tr("◀ Backward: previous op", "◀ 反向：上一个算子"))).clicked()
                && let Some(step) = back
            {
                cx.requests.push(Request::Goto(step));
            }
            if ui.add_enabled(next.is_some(), egui::Button::new(lang.tr("Backward: next op ▶", "反向：下一个算子 ▶"))).clicked()
                && let Some(step) = next
            {
                cx.requests.push(Request::Goto(step));
            }
            match k {
                Some(k) => ui.label(RichText::new(lang.tf(
                    format!("backward of `{cursor}` ({} of {total})", k + 1),
                    format!("`{cursor}` 的反向（第 {} 个，共 {total} 个）", k + 1),
                )).monospace()),
                None => ui.label(RichText::new(lang.tf(
                    format!("`{cursor}` has no backward step"),
                    format!("`{cursor}` 没有反向步骤"),
                )).color(theme.muted())),
            };
        });
        if let Some(k) = k {
            ui.label(RichText::new(formula(cursor)).monospace().color(theme.accent()));
            let keys: Vec<String> = g.recorded[k].1.iter().map(|key| format!("∂loss/∂{key}")).collect();
            if !keys.is_empty() {
                ui.label(RichText::new(lang.tf(format!("records {}", keys.join(", ")), format!("记录 {}", keys.join("、")))).monospace().color(theme.muted()));
            }
        }
    });
    g.on
}
