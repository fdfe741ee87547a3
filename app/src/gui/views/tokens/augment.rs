//! §2.2 of the article, live: data augmentation. The engine's `augment` replaces, deletes or
//! inserts a word of the prompt; the model runs on the new text, and the two token rows are
//! shown one above the other, coloured by next-token loss on the same scale, with the mean
//! loss of each. The loss is the engine's (`analysis.losses` of each pass).

use egui::{RichText, Ui};
use glassbox_engine::article::augment::{self, AugmentOp};

use crate::gui::session::Session;
use crate::gui::views::{ViewCtx, visible};

/// One text as the model saw it: its tokens and each token's loss (`None` for the first).
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub text: String,
    pub tokens: Vec<String>,
    pub losses: Vec<f32>,
}

impl Seen {
    pub fn mean(&self) -> f32 {
        self.losses.iter().sum::<f32>() / self.losses.len().max(1) as f32
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AugmentPanel {
    pub op: AugmentOp,
    pub seed: u64,
    /// The text before augmenting, kept when the augmented one is run.
    pub original: Option<Seen>,
    /// The augmented text that was run.
    pub augmented_text: Option<String>,
}

impl Default for AugmentPanel {
    fn default() -> Self {
        Self {
            op: AugmentOp::Replace,
            seed: 1,
            original: None,
            augmented_text: None,
        }
    }
}

fn op_label(op: AugmentOp, cx: &ViewCtx<'_>) -> &'static str {
    match op {
        AugmentOp::Replace => cx.tr("Replace a word (synonym)", "替换一个词（同义词）"),
        AugmentOp::Delete => cx.tr("Delete a word", "删除一个词"),
        AugmentOp::Insert => cx.tr("Insert a word", "插入一个词"),
    }
}

/// What the session shows now, if its pass is complete.
fn current(s: &Session) -> Option<Seen> {
    let losses = s.analysis.as_ref()?.losses.clone()?;
    Some(Seen {
        text: s.prompt.clone(),
        tokens: s.token_texts.clone(),
        losses,
    })
}

impl AugmentPanel {
    /// The text the next augmentation starts from: the original while its augmented version
    /// is shown, else the current prompt.
    fn base(&self, prompt: &str) -> String {
        match (&self.original, &self.augmented_text) {
            (Some(o), Some(a)) if a == prompt => o.text.clone(),
            _ => prompt.to_string(),
        }
    }

    /// Applies `self.op` to the prompt, keeps what the model made of the original, and runs
    /// the new text. `false` if the prompt is too short for the edit.
    pub fn run_new_text(&mut self, s: &mut Session) -> bool {
        let Some(aug) = augment::augment(&self.base(&s.prompt), self.op, self.seed) else {
            return false;
        };
        if self.augmented_text.as_deref() != Some(s.prompt.as_str()) {
            self.original = current(s);
        }
        self.augmented_text = Some(aug.text.clone());
        s.prompt = aug.text;
        s.chat = false;
        s.run();
        true
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, max_loss: f32) {
        if !cx.presenting {
            ui.label(RichText::new(cx.tr(
                "Data augmentation makes new training examples from old ones. Change one word of the prompt, run the model on the new text, and compare the tokens and the loss: a training example is its tokens, and what training lowers is this loss.",
                "数据增强（data augmentation）用已有的例子造出新的训练例子。改动提示词里的一个词，让模型在新文本上运行，再比较词元和损失：训练例子就是这些词元，训练要降低的就是这个损失。",
            )).color(cx.theme.muted()));
        }
        ui.horizontal_wrapped(|ui| {
            for op in AugmentOp::ALL {
                ui.selectable_value(&mut self.op, op, op_label(op, cx));
            }
            if ui.button(cx.tr("Another one", "换一个")).clicked() {
                self.seed = self.seed.wrapping_add(1);
            }
        });
        let Some(aug) = augment::augment(&self.base(&cx.s.prompt), self.op, self.seed) else {
            ui.label(cx.tr(
                "The prompt needs at least two words for this.",
                "提示词至少要有两个词才能这样做。",
            ));
            return;
        };
        let what = match (&aug.before, &aug.after) {
            (Some(b), Some(a)) => format!("“{b}” → “{a}”"),
            (Some(b), None) => cx.lang.tf(format!("“{b}” removed"), format!("删去“{b}”")),
            (None, Some(a)) => cx.lang.tf(format!("“{a}” inserted"), format!("插入“{a}”")),
            (None, None) => String::new(),
        };
        ui.label(RichText::new(format!("{}  {what}", cx.tr("New text:", "新文本："))).strong());
        ui.label(RichText::new(&aug.text).size(crate::gui::theme::font_px(ui, 17.0)));
        ui.horizontal(|ui| {
            let busy = cx.s.running;
            if ui
                .add_enabled(
                    !busy,
                    egui::Button::new(
                        RichText::new(cx.tr("Run the new text", "运行新文本")).strong(),
                    ),
                )
                .clicked()
            {
                self.run_new_text(cx.s);
            }
            if let Some(o) = &self.original
                && ui
                    .add_enabled(!busy, egui::Button::new(cx.tr("Back to the original", "回到原文")))
                    .clicked()
            {
                cx.s.prompt = o.text.clone();
                cx.s.run();
                self.augmented_text = None;
            }
        });
        ui.separator();
        crate::gui::heatmap::colorbar_ui(
            ui,
            crate::gui::theme::Colormap::Magma,
            &crate::gui::heatmap::ColorScale::fixed(0.0, max_loss),
            cx.tr("next-token loss −log p (nats)", "下一个词元的损失 −log p（单位：nat）"),
            "",
            cx.lang,
            &cx.theme,
        );
        let now = current(cx.s);
        let showing_aug = self.augmented_text.as_deref() == Some(cx.s.prompt.as_str());
        match (&self.original, now, showing_aug) {
            (Some(o), Some(a), true) => {
                row_ui(ui, cx, cx.tr("Original", "原文"), o, max_loss);
                row_ui(ui, cx, cx.tr("Augmented", "增强后"), &a, max_loss);
                let d = a.mean() - o.mean();
                ui.label(
                    RichText::new(cx.lang.tf(
                        format!(
                            "Mean loss {:.3} → {:.3} ({}{d:.3}); tokens {} → {}",
                            o.mean(),
                            a.mean(),
                            if d >= 0.0 { "+" } else { "" },
                            o.tokens.len(),
                            a.tokens.len()
                        ),
                        format!(
                            "平均损失 {:.3} → {:.3}（{}{d:.3}）；词元数 {} → {}",
                            o.mean(),
                            a.mean(),
                            if d >= 0.0 { "+" } else { "" },
                            o.tokens.len(),
                            a.tokens.len()
                        ),
                    ))
                    .strong()
                    .size(crate::gui::theme::font_px(ui, 16.0)),
                );
            }
            (_, Some(a), _) => {
                row_ui(ui, cx, cx.tr("Now", "当前"), &a, max_loss);
                ui.label(cx.tr(
                    "Press “Run the new text” to compare.",
                    "点击“运行新文本”进行比较。",
                ));
            }
            _ => {
                ui.spinner();
            }
        }
    }
}

/// One text's tokens as coloured chips (loss on the shared scale), with its mean loss.
fn row_ui(ui: &mut Ui, cx: &ViewCtx<'_>, title: &str, seen: &Seen, max_loss: f32) {
    ui.label(
        RichText::new(cx.lang.tf(
            format!("{title}: mean loss {:.3}", seen.mean()),
            format!("{title}：平均损失 {:.3}", seen.mean()),
        ))
        .strong(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = egui::vec2(3.0, 4.0);
        for (i, t) in seen.tokens.iter().enumerate() {
            let loss = i.checked_sub(1).and_then(|j| seen.losses.get(j).copied());
            let fill = loss.map_or(cx.theme.faint(), |l| {
                crate::gui::theme::Colormap::Magma.seq(l, max_loss)
            });
            let text = RichText::new(visible(t)).size(crate::gui::theme::font_px(ui, 15.0)).color(cx.theme.text_on(fill));
            let resp = ui.add(egui::Button::new(text).fill(fill).sense(egui::Sense::hover()));
            if let Some(l) = loss {
                resp.on_hover_text(format!("−log p = {l:.3}"));
            }
        }
    });
}
