//! Tokens: the pieces the model actually sees, their ids and bytes, colored by each token's
//! next-token loss (the training objective, computed by the engine on this very pass).

use egui::{Button, RichText, Stroke, Ui};

use super::{Request, ViewCtx, visible};
use crate::gui::export::Figure;
use crate::gui::heatmap::ColorScale;
use crate::gui::theme::Colormap;

pub mod augment;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokensMode {
    #[default]
    Tokens,
    /// §2.2: augment the prompt and compare tokens and loss.
    Augment,
}

pub struct TokensView {
    pub mode: TokensMode,
    /// Position under the pointer this frame.
    pub hovered: Option<usize>,
    /// Loss colours on a fixed 0 … ln(vocab) scale, comparable across prompts; off = this
    /// prompt's own maximum.
    pub fixed_loss_scale: bool,
    pub augment: augment::AugmentPanel,
}

impl Default for TokensView {
    fn default() -> Self {
        Self {
            mode: TokensMode::default(),
            hovered: None,
            fixed_loss_scale: true,
            augment: augment::AugmentPanel::default(),
        }
    }
}

impl TokensView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            for (m, en, zh) in [
                (TokensMode::Tokens, "Tokens and their loss", "词元及其损失"),
                (TokensMode::Augment, "Data augmentation", "数据增强"),
            ] {
                ui.selectable_value(&mut self.mode, m, cx.tr(en, zh));
            }
            ui.separator();
            ui.checkbox(
                &mut self.fixed_loss_scale,
                cx.tr(
                    "fixed loss scale 0 … ln(vocab) (compare prompts)",
                    "固定损失刻度 0 … ln(词表大小)（便于比较不同提示词）",
                ),
            );
        });
        match self.mode {
            TokensMode::Tokens => self.tokens_ui(ui, cx),
            TokensMode::Augment => {
                let max = self.loss_max(cx);
                self.augment.ui(ui, cx, max);
            }
        }
    }

    /// The loss at the top of the colour scale.
    fn loss_max(&self, cx: &ViewCtx<'_>) -> f32 {
        if self.fixed_loss_scale {
            // A uniform guess over the vocabulary: the loss of knowing nothing.
            (cx.s.model.config.vocab_size.max(2) as f32).ln()
        } else {
            cx.s.analysis
                .as_ref()
                .and_then(|a| a.losses.as_ref())
                .map_or(1.0, |l| super::max_abs(l.iter().copied()).max(1e-6))
        }
    }

    fn tokens_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let n = cx.s.n_tokens();
        ui.horizontal_wrapped(|ui| {
            ui.heading(cx.tr("Tokens", "词元（token）"));
            ui.label(cx.lang.tf(
                format!(
                    "{n} tokens · vocabulary of {}",
                    cx.s.model.config.vocab_size
                ),
                format!("{n} 个词元 · 词表大小 {}", cx.s.model.config.vocab_size),
            ));
            if let Some(l) = &cx.s.long {
                let (a, b, total) = (l.start, l.start + n.saturating_sub(1), l.n_tokens());
                ui.label(cx.lang.tf(
                    format!("(positions {a}–{b} of {total}: move the window above)"),
                    format!("（共 {total} 个中的位置 {a}–{b}：可在上方移动窗口）"),
                ));
            }
        });
        if n == 0 {
            super::missing_ui(ui, cx, glassbox_engine::HookKey::Embed);
            return;
        }
        let losses = cx.s.analysis.as_ref().and_then(|a| a.losses.clone());
        let max_loss = self.loss_max(cx);
        match &losses {
            Some(_) => crate::gui::heatmap::colorbar_ui(
                ui,
                Colormap::Magma,
                &ColorScale::fixed(0.0, max_loss),
                cx.tr(
                    "next-token loss −log p (nats), the training objective:",
                    "下一个词元的损失 −log p（单位：nat），也就是训练目标：",
                ),
                if self.fixed_loss_scale {
                    cx.tr("fixed scale: same colours for every prompt", "固定刻度：每个提示词颜色含义相同")
                } else {
                    cx.tr("scaled to this prompt's largest loss", "按本提示词的最大损失缩放")
                },
                cx.lang,
                &cx.theme,
            ),
            None => {
                ui.label(
                    RichText::new(cx.tr(
                        "The loss colors appear when the pass reaches the logits (press End).",
                        "前向传播算到 logits 之后（按 End），这里会按损失上色。",
                    ))
                    .color(cx.theme.muted()),
                );
            }
        }
        ui.add_space(6.0);
        self.hovered = None;
        let selected = cx.s.sel.position;
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing = egui::vec2(4.0, 6.0);
            for i in 0..n {
                let id = cx.s.trace.token_ids[i];
                let text = cx.s.token_texts.get(i).cloned().unwrap_or_default();
                // Token i is predicted from tokens < i: its loss is losses[i − 1].
                let loss = if i == 0 {
                    None
                } else {
                    losses.as_ref().and_then(|l| l.get(i - 1).copied())
                };
                let fill = loss.map_or(cx.theme.faint(), |l| Colormap::Magma.seq(l, max_loss));
                let label = RichText::new(format!("{}\n{id}", visible(&text)))
                    .size(crate::gui::theme::font_px(ui, 15.0))
                    .color(cx.theme.text_on(fill));
                let stroke = if i == selected {
                    Stroke::new(3.0, cx.theme.highlight())
                } else {
                    Stroke::new(1.0, cx.theme.muted())
                };
                let resp = ui.add(Button::new(label).fill(fill).stroke(stroke));
                if resp.hovered() {
                    self.hovered = Some(i);
                }
                let bytes =
                    cx.s.model
                        .tokenizer
                        .as_ref()
                        .map(|t| {
                            t.token_bytes(id)
                                .iter()
                                .map(|b| format!("{b:02X}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                let piece =
                    cx.s.model
                        .tokenizer
                        .as_ref()
                        .and_then(|t| t.piece(id))
                        .unwrap_or_default();
                let loss_line = match loss {
                    Some(l) => cx.lang.tf(
                        format!("loss −log p = {l:.3}   (p = {:.4})", (-l).exp()),
                        format!("损失 −log p = {l:.3}   （p = {:.4}）", (-l).exp()),
                    ),
                    None if i == 0 && cx.pos(0) > 0 => cx
                        .tr(
                            "its loss is shown in the previous window",
                            "它的损失显示在前一个窗口中",
                        )
                        .to_string(),
                    None if i == 0 => cx
                        .tr(
                            "first token: nothing before it predicts it",
                            "第一个词元：前面没有东西来预测它",
                        )
                        .to_string(),
                    None => String::new(),
                };
                let at = cx.pos(i);
                let resp = resp.on_hover_text(cx.lang.tf(
                    format!(
                        "position {at} · id {id}\npiece {piece:?} · bytes [{bytes}]\n{loss_line}"
                    ),
                    format!("位置 {at} · id {id}\n词表条目 {piece:?} · 字节 [{bytes}]\n{loss_line}"),
                ));
                if resp.clicked() {
                    cx.s.sel.position = i;
                }
            }
        });
        ui.add_space(10.0);
        if let Some(l) = &losses {
            let mean = l.iter().sum::<f32>() / l.len().max(1) as f32;
            ui.label(cx.lang.tf(
                format!("Mean next-token loss over this text: {mean:.3} (what training lowers, averaged over trillions of tokens)"),
                format!("这段文本的平均下一个词元损失：{mean:.3}（训练就是在海量文本上把它降低）"),
            ));
        }
        let sel = cx.s.sel.position.min(n - 1);
        let id = cx.s.trace.token_ids[sel];
        ui.label(
            RichText::new(cx.lang.tf(
                format!(
                    "Selected position {}: id {id} {:?}",
                    cx.pos(sel),
                    cx.s.token_texts.get(sel).cloned().unwrap_or_default()
                ),
                format!(
                    "选中位置 {}：id {id} {:?}",
                    cx.pos(sel),
                    cx.s.token_texts.get(sel).cloned().unwrap_or_default()
                ),
            ))
            .strong(),
        );
        if cx.export
            && let Some(l) = &losses
        {
            {
                let labels: Vec<String> = (1..n)
                    .map(|i| format!("{i} {}", visible(&cx.s.token_texts[i])))
                    .collect();
                cx.requests.push(Request::Export(Figure::Bars {
                    title: cx
                        .tr("Next-token loss per token", "每个词元的下一个词元损失")
                        .to_string(),
                    labels,
                    values: l.clone(),
                }));
            }
        }
    }
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("tokens");

impl super::View for TokensView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Tokens", "词元")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["tokens", "augment"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "tokens" => self.mode = TokensMode::Tokens,
            "augment" => self.mode = TokensMode::Augment,
            _ => return false,
        }
        true
    }

    fn mode(&self) -> Option<&'static str> {
        Some(match self.mode {
            TokensMode::Tokens => "tokens",
            TokensMode::Augment => "augment",
        })
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        TokensView::ui(self, ui, cx);
    }
}
