//! The same prompt in both models: run on the side-by-side thread, then per model a chosen
//! head's attention pattern, the logit lens at the last position and the next-token
//! distribution, in two columns.

use egui::{RichText, Ui, vec2};

use super::{Candidate, HeadPick, SideBySideView};
use crate::gui::heatmap::{Axes, CachedTexture, heatmap_ui, image, key_of, short_label};
use crate::gui::theme::Colormap;
use crate::gui::views::{ViewCtx, visible};
use crate::gui::worker::side_by_side::SideRun;

pub fn runs_ui(ui: &mut Ui, cx: &ViewCtx<'_>, view: &mut SideBySideView, a: &Candidate, b: &Candidate) {
    let title = ui.label(RichText::new(cx.tr("The same prompt in both models", "同一个提示词，两个模型")).size(crate::gui::theme::font_px(ui, 17.0)).strong());
    if std::mem::take(&mut view.scroll_to_runs) {
        title.scroll_to_me(Some(egui::Align::Min));
    }
    let (Some(ma), Some(mb)) = (a.model.clone(), b.model.clone()) else {
        ui.label(RichText::new(cx.tr(
            "A config-only model has no weights to run: pick two models with weights (the loaded one, or one in the cache) to compare their passes.",
            "仅有配置的模型没有权重，无法运行：请选两个有权重的模型（已加载的，或缓存中的）来对比它们的前向传播。",
        )).color(cx.theme.muted()));
        return;
    };
    ui.horizontal(|ui| {
        let label = ui.label(cx.tr("Prompt:", "提示词："));
        ui.add(egui::TextEdit::singleline(&mut view.prompt).desired_width(420.0)).labelled_by(label.id);
        let run = ui.add_enabled(!view.running(), egui::Button::new(cx.tr("Run both models", "在两个模型中运行")));
        if run.clicked() {
            view.start(ui.ctx(), ma, mb);
        }
    });
    if let Some((en, zh)) = &view.stage {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(if cx.lang == crate::gui::i18n::Lang::Zh { zh } else { en });
        });
    }
    if let Some(e) = &view.error {
        ui.label(RichText::new(cx.lang.tf(format!("Could not run both models: {e}"), format!("无法在两个模型中运行：{e}"))).color(cx.theme.error()));
    }
    let Some(result) = &view.result else { return };
    ui.label(RichText::new(cx.lang.tf(format!("Ran: “{}”", result.prompt), format!("已运行：“{}”", result.prompt))).color(cx.theme.muted()));
    let [pa, pb] = &mut view.picks;
    let [ta, tb] = &mut view.textures;
    ui.columns(2, |cols| {
        run_column_ui(&mut cols[0], cx, "A", &result.a, pa, ta);
        run_column_ui(&mut cols[1], cx, "B", &result.b, pb, tb);
    });
}

fn run_column_ui(ui: &mut Ui, cx: &ViewCtx<'_>, side: &str, run: &SideRun, pick: &mut HeadPick, tex: &mut CachedTexture) {
    let width = ui.available_width();
    ui.label(RichText::new(format!("{side}: {}", run.name)).size(crate::gui::theme::font_px(ui, 16.0)).strong());
    ui.label(RichText::new(cx.lang.tf(
        format!("{} tokens, {:.2} s on the CPU", run.tokens.len(), run.seconds),
        format!("{} 个词元，CPU 用时 {:.2} 秒", run.tokens.len(), run.seconds),
    )).color(cx.theme.muted()));
    head_pickers_ui(ui, cx, run, pick);
    // Pattern and distribution side by side where the column is wide enough; every width
    // is set from the column's, so nothing spills into the other model's column.
    if width >= 400.0 {
        let side_len = (width * 0.45).min(230.0);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(side_len);
                pattern_ui(ui, cx, side, run, pick, tex, side_len);
            });
            ui.vertical(|ui| distribution_ui(ui, cx, side, run, width - side_len - 16.0));
        });
    } else {
        pattern_ui(ui, cx, side, run, pick, tex, width.min(230.0));
        distribution_ui(ui, cx, side, run, width);
    }
    ui.add_space(6.0);
    lens_ui(ui, cx, side, run);
}

fn head_pickers_ui(ui: &mut Ui, cx: &ViewCtx<'_>, run: &SideRun, pick: &mut HeadPick) {
    let layers = run.patterns.len();
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(cx.tr("Attention pattern", "注意力模式")).strong());
        let label = ui.label(cx.tr("layer", "层"));
        ui.add(egui::DragValue::new(&mut pick.layer).range(0..=layers.saturating_sub(1))).labelled_by(label.id);
        let heads = run.patterns.get(pick.layer).map_or(1, |t| t.shape()[0]);
        pick.head = pick.head.min(heads.saturating_sub(1));
        let label = ui.label(cx.tr("head", "头"));
        ui.add(egui::DragValue::new(&mut pick.head).range(0..=heads.saturating_sub(1))).labelled_by(label.id);
    });
}

fn pattern_ui(ui: &mut Ui, cx: &ViewCtx<'_>, side: &str, run: &SideRun, pick: &HeadPick, tex: &mut CachedTexture, side_len: f32) {
    let Some(p) = run.patterns.get(pick.layer).and_then(|t| t.as_3d()) else { return };
    let (rows, cols) = (p.shape()[1], p.shape()[2]);
    let (masked, head) = (cx.theme.masked(), pick.head);
    let key = key_of((side, &run.name, run.seconds.to_bits(), pick.layer, head));
    let t = tex.get(ui.ctx(), &format!("side-pattern-{side}"), key, || {
        image(rows, cols, |q, k| if k > q { masked } else { Colormap::Viridis.at(p[[head, q, k]]) })
    });
    let labels: Vec<String> = run.tokens.iter().map(|s| short_label(&visible(s), 8)).collect();
    let axes = Axes { row_labels: Some(&labels), col_labels: Some(&labels), row_title: "q", col_title: "k", ..Axes::default() };
    heatmap_ui(ui, t, rows, cols, vec2(side_len, side_len), &axes, &cx.theme);
}

/// Top-k next tokens as bars, token text and probability on each, in `width` points.
fn distribution_ui(ui: &mut Ui, cx: &ViewCtx<'_>, side: &str, run: &SideRun, width: f32) {
    ui.label(RichText::new(cx.lang.tf(format!("Next token ({side})"), format!("下一个词元（{side}）"))).strong());
    let bar_width = (width - 150.0).clamp(30.0, 160.0);
    egui::Grid::new(("side-top", side)).spacing([6.0, 2.0]).show(ui, |ui| {
        for (i, (text, p)) in run.top.iter().enumerate() {
            ui.label(RichText::new(short_label(&visible(text), 10)).monospace());
            let (rect, _) = ui.allocate_exact_size(vec2(bar_width, 14.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 2.0, cx.theme.faint());
            let bar = egui::Rect::from_min_size(rect.min, vec2(rect.width() * p.clamp(0.0, 1.0), rect.height()));
            ui.painter().rect_filled(bar, 2.0, if i == 0 { cx.theme.accent() } else { cx.theme.muted() });
            ui.label(RichText::new(format!("{:.1}%", 100.0 * p)).monospace());
            ui.end_row();
        }
    });
}

/// The logit lens at the last position: each residual's top-1 token through the final norm
/// and the head, in reading order (embedding, then after each layer).
fn lens_ui(ui: &mut Ui, cx: &ViewCtx<'_>, side: &str, run: &SideRun) {
    ui.label(RichText::new(cx.lang.tf(format!("Logit lens, last position ({side})"), format!("逻辑透镜，最后一个位置（{side}）"))).strong());
    ui.label(RichText::new(cx.tr("e = the embedding, n = after layer n: top-1 token and its probability", "e = 嵌入，n = 第 n 层之后：概率最高的词元及其概率")).small().color(cx.theme.muted()));
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = vec2(6.0, 3.0);
        for (i, (text, p)) in run.lens.iter().enumerate() {
            let at = if i == 0 { "e".to_string() } else { (i - 1).to_string() };
            // One label per entry, so a line never breaks inside one.
            let chip = format!("{at}:{} {:.0}%", short_label(&visible(text), 10), 100.0 * p);
            ui.label(RichText::new(chip).monospace().size(crate::gui::theme::font_px(ui, 12.0)).background_color(cx.theme.faint()));
        }
    });
}
