//! SmolLM2 next to Llama 3.1 8B / 70B / 405B: the table lesson 01 holds, generated from the
//! bundled config files (`model_table`).

use egui::{RichText, Ui};

use crate::gui::model_table;
use crate::gui::views::ViewCtx;

pub fn sizes_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>) {
    let cards = match model_table::bundled() {
        Ok(c) => c,
        Err(e) => {
            ui.colored_label(cx.theme.error(), format!("{e:#}"));
            return;
        }
    };
    ui.label(RichText::new(cx.tr(
        "The same recipe at four sizes, read from each model's own config.json (bundled in assets/models/):",
        "同一个配方的四种规模，数字读自每个模型自己的 config.json（随程序附带，位于 assets/models/）：",
    )).strong());
    if ui
        .button(cx.tr("Copy the table (Markdown)", "复制表格（Markdown）"))
        .clicked()
    {
        ui.ctx().copy_text(model_table::markdown(&cards, cx.lang));
    }
    // Long values ("llama3, ×8 (trained at 8192)") wrap inside their column, so the table
    // keeps to the screen at presenter size.
    let col_w = ((ui.available_width() - 240.0) / cards.len().max(1) as f32).max(120.0);
    egui::ScrollArea::both().id_salt("sizes").show(ui, |ui| {
        egui::Grid::new("sizes-grid")
            .striped(true)
            .spacing(egui::vec2(18.0, 6.0))
            .show(ui, |ui| {
                ui.label("");
                for c in &cards {
                    ui.label(RichText::new(&c.name).strong());
                }
                ui.end_row();
                for (title, values) in model_table::rows(&cards, cx.lang) {
                    ui.label(RichText::new(title).color(cx.theme.muted()));
                    for v in values {
                        ui.vertical(|ui| {
                            ui.set_max_width(col_w);
                            ui.add(egui::Label::new(RichText::new(v).monospace()).wrap());
                        });
                    }
                    ui.end_row();
                }
            });
        ui.add_space(8.0);
        if !cx.presenting {
            ui.label(RichText::new(cx.tr("Sources:", "来源：")).strong());
            for c in &cards {
                let source = if cx.lang == crate::gui::i18n::Lang::Zh {
                    &c.source_zh
                } else {
                    &c.source
                };
                ui.label(RichText::new(format!("{}: {}", c.name, source)).small());
            }
            ui.label(RichText::new(cx.tr(
                "Parameters are counted from the config (embedding, every layer, output head); training tokens are not in a config and come from the model cards.",
                "参数量由配置算出（嵌入、每一层、输出层）；训练词元数不在配置里，取自模型说明（model card）。",
            )).small().color(cx.theme.muted()));
        }
    });
}
