//! §7.3 of the article, live: the training loop as a flowchart you can click through. Each
//! box says what happens there and opens the place in Glassbox that shows it (the forward
//! pass, the loss on the Tokens view, …). The backward pass and the optimizer step are shown
//! in the Training view when this build has one (view id `training`); otherwise that link is
//! inert and says so.

use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Stroke, StrokeKind, Ui, vec2};

use crate::gui::theme::OpFamily;
use crate::gui::views::{Request, ViewCtx, ViewId};

/// One box of the loop.
struct Node {
    en: &'static str,
    zh: &'static str,
    what_en: &'static str,
    what_zh: &'static str,
    family: OpFamily,
    /// The view id that shows it (`training` may not exist in this build).
    view: &'static str,
}

const NODES: [Node; 8] = [
    Node {
        en: "Text corpus",
        zh: "文本语料",
        what_en: "Trillions of tokens of text, filtered and deduplicated (data preprocessing). Augmentation can add variants of examples.",
        what_zh: "数以万亿计词元的文本，经过过滤和去重（数据预处理）。数据增强可以再加入例子的变体。",
        family: OpFamily::Embed,
        view: "tokens",
    },
    Node {
        en: "Tokenize → batch",
        zh: "分词 → 组成批次",
        what_en: "The frozen tokenizer turns text into ids; sequences are packed into batches of fixed length.",
        what_zh: "固定不变的分词器把文本变成 id；序列被打包成固定长度的批次。",
        family: OpFamily::Embed,
        view: "tokens",
    },
    Node {
        en: "Forward pass",
        zh: "前向传播",
        what_en: "Exactly the pass you step through in Glassbox: embedding, 30 decoder layers, logits at every position.",
        what_zh: "就是你在 Glassbox 里逐步查看的那次计算：嵌入、30 个解码器层、每个位置的 logits。",
        family: OpFamily::Attention,
        view: "overview",
    },
    Node {
        en: "Loss",
        zh: "损失",
        what_en: "Next-token cross-entropy −log p(actual next token), averaged over every position of the batch.",
        what_zh: "下一个词元的损失 −log p（真实的下一个词元），对批次里每个位置取平均。",
        family: OpFamily::Output,
        view: "tokens",
    },
    Node {
        en: "Backward pass",
        zh: "反向传播",
        what_en: "Gradients of the loss with respect to every weight, layer by layer from the output back to the embedding.",
        what_zh: "求损失对每个权重的梯度，从输出一层层往回算到嵌入。",
        family: OpFamily::Mlp,
        view: "training",
    },
    Node {
        en: "Optimizer step (AdamW)",
        zh: "优化器更新（AdamW）",
        what_en: "Each weight moves a little against its gradient, scaled by running averages, with weight decay.",
        what_zh: "每个权重沿梯度的反方向移动一小步，步长由滑动平均调整，并带权重衰减。",
        family: OpFamily::Mlp,
        view: "training",
    },
    Node {
        en: "Repeat (millions of steps)",
        zh: "重复（数百万步）",
        what_en: "Next batch. Across many GPUs the work is split four ways in Llama 3: tensor, context, pipeline and data (FSDP) parallelism.",
        what_zh: "下一个批次。在 Llama 3 中，多块 GPU 之间的工作按四种方式切分：张量并行、上下文并行、流水线并行和数据并行（FSDP）。",
        family: OpFamily::Residual,
        view: "training",
    },
    Node {
        en: "Evaluate, then fine-tune",
        zh: "评估，然后微调",
        what_en: "Held-out loss and benchmarks; after pre-training, supervised fine-tuning and preference optimization make the Instruct model.",
        what_zh: "在留出数据上看损失和基准测试；预训练之后，再做监督微调和偏好优化，得到 Instruct 模型。",
        family: OpFamily::Norm,
        view: "tasks",
    },
];

#[derive(Default)]
pub struct TrainingChart {
    pub selected: usize,
}

impl TrainingChart {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.horizontal(|ui| {
            if ui.button(cx.tr("◀ Previous", "◀ 上一步")).clicked() {
                self.selected = (self.selected + NODES.len() - 1) % NODES.len();
            }
            if ui.button(cx.tr("Next ▶", "下一步 ▶")).clicked() {
                self.selected = (self.selected + 1) % NODES.len();
            }
            ui.label(
                RichText::new(cx.tr(
                    "Click a box; the loop runs clockwise.",
                    "点击方框；循环按顺时针进行。",
                ))
                .color(cx.theme.muted()),
            );
        });
        // Two rows of four boxes: 0-3 left to right, 4-7 right to left, closing the loop.
        let avail = ui.available_size();
        let w = avail.x.min(980.0);
        let h = (avail.y * 0.55).clamp(200.0, 340.0);
        let (rect, _) = ui.allocate_exact_size(vec2(w, h), Sense::hover());
        let (bw, bh) = ((w - 5.0 * 24.0) / 4.0, (h - 3.0 * 30.0) / 2.0);
        let box_rect = |i: usize| {
            let (row, col) = if i < 4 { (0, i) } else { (1, 7 - i) };
            Rect::from_min_size(
                rect.min + vec2(24.0 + col as f32 * (bw + 24.0), 30.0 + row as f32 * (bh + 30.0)),
                vec2(bw, bh),
            )
        };
        let painter = ui.painter_at(rect.expand(4.0));
        let arrow = Stroke::new(2.0, cx.theme.muted());
        for i in 0..NODES.len() {
            let (a, b) = (box_rect(i), box_rect((i + 1) % NODES.len()));
            let (p, q) = match i {
                0..=2 => (a.right_center(), b.left_center()),
                3 => (a.center_bottom(), b.center_top()),
                4..=6 => (a.left_center(), b.right_center()),
                _ => (a.center_top(), b.center_bottom()),
            };
            painter.arrow(p, q - p, arrow);
        }
        let zh = cx.lang == crate::gui::i18n::Lang::Zh;
        let font_px = ui.style().text_styles[&egui::TextStyle::Body].size;
        for (i, n) in NODES.iter().enumerate() {
            let r = box_rect(i);
            let resp = ui.interact(r, ui.scope_id().with(("training-node", i)), Sense::click());
            if resp.clicked() {
                self.selected = i;
            }
            let color = cx.theme.op_color(n.family);
            let active = i == self.selected;
            let fill = if active { color } else { color.gamma_multiply(0.25) };
            painter.rect_filled(r, 8.0, fill);
            painter.rect_stroke(
                r,
                8.0,
                if active {
                    Stroke::new(3.0, cx.theme.highlight())
                } else {
                    Stroke::new(1.0, color)
                },
                StrokeKind::Inside,
            );
            let text_color = if active { cx.theme.text_on(fill) } else { cx.theme.text() };
            let galley = painter.layout(
                if zh { n.zh } else { n.en }.to_string(),
                FontId::proportional(font_px),
                text_color,
                r.width() - 12.0,
            );
            let pos = r.center() - galley.size() / 2.0;
            painter.galley(pos, galley, text_color);
            if resp.hovered() {
                painter.rect_stroke(r, 8.0, Stroke::new(1.5, cx.theme.text()), StrokeKind::Outside);
            }
        }
        painter.text(
            rect.min + vec2(4.0, 4.0),
            Align2::LEFT_TOP,
            cx.tr("one training step", "一个训练步"),
            FontId::proportional(crate::gui::theme::font_px(ui, 12.0)),
            Color32::from_gray(140),
        );
        let n = &NODES[self.selected];
        ui.add_space(6.0);
        ui.label(RichText::new(if zh { n.zh } else { n.en }).strong().size(font_px + 3.0));
        ui.label(if zh { n.what_zh } else { n.what_en });
        match ViewId::from_id(n.view) {
            Some(v) => {
                let label = cx.lang.tf(
                    format!("Show it: the {} view", v.title(cx.lang)),
                    format!("去看看：“{}”视图", v.title(cx.lang)),
                );
                if ui.button(label).clicked() {
                    cx.requests.push(Request::Open(v));
                }
            }
            None => {
                ui.add_enabled(
                    false,
                    egui::Button::new(cx.tr("Open the Training view", "打开“训练”视图")),
                );
                ui.label(
                    RichText::new(cx.tr(
                        "This build has no Training view yet: gradients and optimizer steps are not shown here.",
                        "这个版本还没有“训练”视图：这里看不到梯度和优化器更新。",
                    ))
                    .small()
                    .color(cx.theme.muted()),
                );
            }
        }
    }
}
