//! A masked language model's output (BERT): no next token, but a guess for each blank. The
//! sentence with its `[MASK]` positions as blanks, and under each the model's top words with
//! their probabilities (the engine's softmax of that position's logits). A prompt without a
//! `[MASK]` shows the selected position as the blank: BERT predicts every position, and was
//! trained on the masked ones.

use egui::{RichText, Ui};
use glassbox_engine::HookKey;
use glassbox_engine::experiments::analysis;

use super::bars_ui;
use crate::gui::views::{ViewCtx, visible};

const TOP: usize = 8;

/// The positions to fill: those holding the tokenizer's `[MASK]`, else the selected one.
fn blanks(cx: &ViewCtx<'_>, n: usize) -> (Vec<usize>, bool) {
    let mask = cx.s.model.tokenizer.as_ref().and_then(|t| t.token_id("[MASK]"));
    let at: Vec<usize> = cx.s.trace.token_ids.iter().enumerate().filter(|&(_, id)| Some(*id) == mask).map(|(i, _)| i).take(n).collect();
    if at.is_empty() {
        return (vec![cx.s.sel.position.min(n.saturating_sub(1))], false);
    }
    (at, true)
}

pub fn fill_in_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>) {
    let Some(tensor) = cx.s.trace.get_shared(HookKey::Logits).cloned() else { return };
    let Some(logits) = tensor.as_2d() else { return };
    let (blank, found) = blanks(cx, logits.nrows());
    if !found {
        ui.label(RichText::new(cx.tr(
            "No [MASK] token in this prompt: the blank below is the selected position (click a token to move it). Put [MASK] in the prompt to ask the model to fill it.",
            "这个提示词里没有 [MASK]：下面的空格是当前选中的位置（点击词元可以换）。在提示词里写上 [MASK]，模型就会填这个空。",
        )).color(cx.theme.muted()));
    }
    sentence_ui(ui, cx, &blank);
    ui.separator();
    ui.columns(blank.len().clamp(1, 3), |cols| {
        for (i, &p) in blank.iter().enumerate().take(cols.len() * 2) {
            let ui = &mut cols[i % cols.len()];
            let top = analysis::top_k(&logits.row(p).to_vec(), TOP, 1.0);
            let entries: Vec<(u32, f32, Option<f32>)> = top.iter().map(|r| (r.id, r.prob, Some(r.logit))).collect();
            let title = cx.lang.tf(format!("[MASK] at position {}: softmax(logits)", cx.pos(p)), format!("位置 {} 的 [MASK]：softmax(logits)", cx.pos(p)));
            bars_ui(ui, cx, &title, &entries);
        }
    });
}

/// The prompt as tokens, each blank shown as "[MASK] → best guess".
fn sentence_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, blank: &[usize]) {
    let logits = cx.s.trace.get(HookKey::Logits).and_then(|t| t.as_2d());
    let guess: Vec<Option<String>> = blank
        .iter()
        .map(|&p| logits.as_ref().and_then(|l| analysis::top_k(&l.row(p).to_vec(), 1, 1.0).first().map(|r| visible(&cx.s.token_text(r.id)))))
        .collect();
    let mut picked = None;
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        for (i, t) in cx.s.token_texts.iter().enumerate() {
            let text = match blank.iter().position(|&b| b == i) {
                Some(j) => RichText::new(format!("[MASK] → {}", guess[j].clone().unwrap_or_default())).strong().size(crate::gui::theme::font_px(ui, 17.0)).color(cx.theme.accent()),
                None => RichText::new(visible(t)).size(crate::gui::theme::font_px(ui, 17.0)),
            };
            if ui.add(egui::Button::new(text).frame(blank.contains(&i))).clicked() {
                picked = Some(i);
            }
        }
    });
    if let Some(i) = picked {
        cx.s.sel.position = i;
    }
}
