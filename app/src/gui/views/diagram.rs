//! The architecture diagram, drawn from the loaded config (not a picture): embedding →
//! N × [RMSNorm → attention (query heads in GQA groups) → + → RMSNorm → SwiGLU → +] →
//! RMSNorm → logits → softmax. The current step is highlighted; every part is a button that
//! moves the cursor there.

use egui::{Color32, Frame, Margin, RichText, Sense, Stroke, Ui, pos2, vec2};
use glassbox_engine::program::op_table::Family;
use glassbox_engine::{LayerOp, Step};

use super::{Request, ViewCtx, family_of};
use crate::gui::theme::OpFamily;

mod graph;
mod sizes;
pub mod training;

/// What the Model view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverviewMode {
    /// The architecture diagram and the configuration it is drawn from.
    #[default]
    Diagram,
    /// §3.2: the step program built for this input, and the KV cache in bytes.
    Graph,
    /// §7.3: the training loop as a clickable flowchart.
    Training,
    /// SmolLM2 next to Llama 3.1 8B / 70B / 405B, from the bundled configs.
    Sizes,
}

#[derive(Default)]
pub struct DiagramView {
    pub mode: OverviewMode,
    pub training: training::TrainingChart,
}

impl DiagramView {
    /// The compact diagram of the left panel.
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        self.diagram_ui(ui, cx, 1.0);
    }

    /// The "Model" view: the diagram, larger, with the configuration it was drawn from; or
    /// the graph built for this input, the training loop, the size comparison.
    pub fn overview_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            ui.heading(cx.tr(
                "The model: a Llama-family decoder",
                "模型：Llama 系列解码器",
            ));
            for (m, en, zh) in [
                (OverviewMode::Diagram, "Diagram", "结构图"),
                (OverviewMode::Graph, "Graph & KV cache", "计算图与 KV 缓存"),
                (OverviewMode::Training, "Training loop", "训练流程"),
                (OverviewMode::Sizes, "vs Llama 3.1", "与 Llama 3.1 对比"),
            ] {
                ui.selectable_value(&mut self.mode, m, cx.tr(en, zh));
            }
        });
        match self.mode {
            OverviewMode::Diagram => {
                ui.columns(2, |cols| {
                    self.diagram_ui(&mut cols[0], cx, 1.25);
                    facts_ui(&mut cols[1], cx);
                });
            }
            OverviewMode::Graph => graph::graph_ui(ui, cx),
            OverviewMode::Training => self.training.ui(ui, cx),
            OverviewMode::Sizes => sizes::sizes_ui(ui, cx),
        }
    }

    fn diagram_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, scale: f32) {
        let c = cx.s.model.config.clone();
        let cursor = cx.s.cursor_step();
        let layer = cx.s.view_layer();
        let size = 13.0 * scale;
        let goto = std::cell::Cell::new(None);
        let block = |ui: &mut Ui,
                     cx: &ViewCtx<'_>,
                     title: String,
                     detail: String,
                     steps: &[(&str, Step)]| {
            let active = steps.iter().any(|&(_, s)| s == cursor);
            let fam = steps
                .first()
                .map_or(OpFamily::Embed, |&(_, s)| family_of(s));
            let color = cx.theme.op_color(fam);
            let fill = if active {
                color
            } else {
                color.gamma_multiply(0.25)
            };
            let stroke = if active {
                Stroke::new(3.0, cx.theme.highlight())
            } else {
                Stroke::new(1.0, color)
            };
            Frame::new()
                .fill(fill)
                .stroke(stroke)
                .corner_radius(6.0)
                .inner_margin(Margin::same(6))
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    let text_color = if active {
                        cx.theme.text_on(fill)
                    } else {
                        cx.theme.text()
                    };
                    let title_resp = ui.add(
                        egui::Label::new(
                            RichText::new(title)
                                .size(size + 1.0)
                                .strong()
                                .color(text_color),
                        )
                        .sense(Sense::click()),
                    );
                    if title_resp.clicked()
                        && let Some(&(_, s)) = steps.first()
                    {
                        goto.set(Some(s));
                    }
                    if !detail.is_empty() {
                        ui.label(RichText::new(detail).size(size - 2.0).color(text_color));
                    }
                    if steps.len() > 1 {
                        ui.horizontal_wrapped(|ui| {
                            ui.spacing_mut().item_spacing = vec2(3.0, 3.0);
                            for &(name, s) in steps {
                                let here = s == cursor;
                                let b = egui::Button::new(
                                    RichText::new(name).size(size - 1.0).monospace(),
                                )
                                .selected(here)
                                .small();
                                if ui.add(b).clicked() {
                                    goto.set(Some(s));
                                }
                            }
                        });
                    }
                });
        };
        let arrow = |ui: &mut Ui, cx: &ViewCtx<'_>| {
            ui.vertical_centered(|ui| {
                ui.label(RichText::new("↓").size(size).color(cx.theme.muted()))
            });
        };
        let l = |op: LayerOp| Step::Layer(layer, op);
        // Named as this model computes them (the full per-family figure is the app issue's).
        let arch = &cx.s.model.arch;
        let norm_name = match arch.norm {
            glassbox_engine::load::arch::NormKind::Rms => "RMSNorm",
            glassbox_engine::load::arch::NormKind::Layer => "LayerNorm",
        };
        let mlp_name = match arch.mlp {
            glassbox_engine::load::arch::MlpKind::SwiGlu => "SwiGLU",
            glassbox_engine::load::arch::MlpKind::GeGlu => "GeGLU",
            glassbox_engine::load::arch::MlpKind::Plain(act) => act.name(),
        };

        block(
            ui,
            cx,
            cx.tr("Embedding", "嵌入").into(),
            format!("E: {} × {}", c.vocab_size, c.d_model()),
            &[("embed", Step::Embed)],
        );
        arrow(ui, cx);
        Frame::new()
            .stroke(Stroke::new(1.5, cx.theme.muted()))
            .corner_radius(8.0)
            .inner_margin(Margin::same(6))
            .show(ui, |ui| {
                ui.label(
                    RichText::new(cx.lang.tf(
                        format!("× {} decoder layers (showing layer {layer})", c.n_layers()),
                        format!("× {} 个解码器层（当前显示第 {layer} 层）", c.n_layers()),
                    ))
                    .size(size)
                    .strong(),
                );
                layer_strip_ui(ui, cx, c.n_layers(), layer, &goto);
                block(
                    ui,
                    cx,
                    norm_name.into(),
                    String::new(),
                    &[("ln1", l(LayerOp::Ln1))],
                );
                arrow(ui, cx);
                let attn_ops = LayerOp::of_family_in(&cx.s.block_ops(), Family::Attention);
                let steps: Vec<(&str, Step)> =
                    attn_ops.iter().map(|&op| (op.name(), l(op))).collect();
                block(
                    ui,
                    cx,
                    cx.lang.tf(
                        format!(
                            "Attention: {} query heads in {} GQA groups",
                            c.n_heads(),
                            c.n_kv_heads()
                        ),
                        format!(
                            "注意力：{} 个查询头，分成 {} 个 GQA 组",
                            c.n_heads(),
                            c.n_kv_heads()
                        ),
                    ),
                    format!("d_head = {}", c.d_head()),
                    &steps,
                );
                heads_ui(ui, cx, c.n_heads(), c.group_size().max(1), scale);
                block(
                    ui,
                    cx,
                    cx.tr("⊕ add to the residual stream", "⊕ 加回残差流").into(),
                    String::new(),
                    &[("attn_add", l(LayerOp::AttnAdd))],
                );
                arrow(ui, cx);
                block(
                    ui,
                    cx,
                    norm_name.into(),
                    String::new(),
                    &[("ln2", l(LayerOp::Ln2))],
                );
                arrow(ui, cx);
                let mlp_ops = LayerOp::of_family_in(&cx.s.block_ops(), Family::Mlp);
                let steps: Vec<(&str, Step)> =
                    mlp_ops.iter().map(|&op| (op.name(), l(op))).collect();
                block(
                    ui,
                    cx,
                    cx.lang.tf(format!("{mlp_name} MLP"), format!("{mlp_name} MLP")),
                    format!("{} → {} → {}", c.d_model(), c.d_mlp(), c.d_model()),
                    &steps,
                );
                block(
                    ui,
                    cx,
                    cx.tr("⊕ add to the residual stream", "⊕ 加回残差流").into(),
                    String::new(),
                    &[("mlp_add", l(LayerOp::MlpAdd))],
                );
            });
        arrow(ui, cx);
        block(
            ui,
            cx,
            cx.lang.tf(format!("Final {norm_name}"), format!("最终 {norm_name}")),
            String::new(),
            &[("ln_final", Step::LnFinal)],
        );
        arrow(ui, cx);
        let tied = if c.tie_word_embeddings {
            cx.tr(" (tied to E)", "（与 E 共享）")
        } else {
            ""
        };
        block(
            ui,
            cx,
            cx.tr("Logits", "Logits").into(),
            format!("{} → {}{tied}", c.d_model(), c.vocab_size),
            &[("logits", Step::Logits)],
        );
        arrow(ui, cx);
        block(
            ui,
            cx,
            cx.tr("Softmax → next token", "Softmax → 下一个词元").into(),
            String::new(),
            &[("probs", Step::Probs), ("sample", Step::Sample)],
        );
        if let Some(s) = goto.get() {
            cx.requests.push(Request::Goto(s));
        }
    }
}

/// One small button per layer; the current one highlighted.
fn layer_strip_ui(
    ui: &mut Ui,
    cx: &ViewCtx<'_>,
    n: usize,
    layer: usize,
    goto: &std::cell::Cell<Option<Step>>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = vec2(2.0, 2.0);
        for l in 0..n {
            let b = egui::Button::new(RichText::new(format!("L{l}")).size(10.0))
                .selected(l == layer)
                .small();
            if ui.add(b).clicked() {
                let op = match cx.s.cursor_step() {
                    Step::Layer(_, op) => op,
                    _ => LayerOp::Ln1,
                };
                goto.set(Some(Step::Layer(l, op)));
            }
        }
    });
}

/// The query heads as squares colored by their K/V group, with the K/V heads below.
fn heads_ui(ui: &mut Ui, cx: &ViewCtx<'_>, n_heads: usize, group: usize, scale: f32) {
    let n_kv = n_heads.div_ceil(group);
    let w = ui.available_width();
    let (rect, _) = ui.allocate_exact_size(vec2(w, 44.0 * scale), Sense::hover());
    let painter = ui.painter_at(rect);
    let q_side = ((w - 20.0) / n_heads as f32 - 3.0).clamp(4.0, 18.0 * scale);
    let qx =
        |h: usize| rect.center().x + (h as f32 - (n_heads as f32 - 1.0) / 2.0) * (q_side + 3.0);
    let kx = |g: usize| {
        let first = g * group;
        let last = (first + group - 1).min(n_heads - 1);
        (qx(first) + qx(last)) / 2.0
    };
    for h in 0..n_heads {
        let color = cx.theme.group_color(h / group);
        let sel = h == cx.s.sel.head;
        let r = egui::Rect::from_center_size(
            pos2(qx(h), rect.min.y + q_side / 2.0 + 2.0),
            vec2(q_side, q_side),
        );
        painter.rect_filled(r, 2.0, color);
        if sel {
            painter.rect_stroke(
                r,
                2.0,
                Stroke::new(2.0, cx.theme.highlight()),
                egui::StrokeKind::Outside,
            );
        }
        painter.line_segment(
            [pos2(qx(h), r.max.y), pos2(kx(h / group), rect.max.y - 10.0)],
            Stroke::new(1.0, color),
        );
    }
    for g in 0..n_kv {
        let r =
            egui::Rect::from_center_size(pos2(kx(g), rect.max.y - 6.0), vec2(q_side * 1.6, 10.0));
        painter.rect_filled(r, 2.0, cx.theme.group_color(g));
        painter.text(
            r.center(),
            egui::Align2::CENTER_CENTER,
            "KV",
            egui::FontId::proportional(8.0),
            Color32::WHITE,
        );
    }
}

/// The configuration numbers the diagram is drawn from.
fn facts_ui(ui: &mut Ui, cx: &ViewCtx<'_>) {
    let c = &cx.s.model.config;
    ui.label(
        RichText::new(cx.tr(
            "Configuration (read from the model files)",
            "配置（从模型文件读取）",
        ))
        .strong(),
    );
    let rows: Vec<(&str, String)> = vec![
        ("n_layers", c.n_layers().to_string()),
        ("d_model", c.d_model().to_string()),
        ("n_heads", c.n_heads().to_string()),
        ("n_kv_heads", c.n_kv_heads().to_string()),
        ("d_head", c.d_head().to_string()),
        ("d_mlp", c.d_mlp().to_string()),
        ("vocab_size", c.vocab_size.to_string()),
        ("rope_theta", c.rope_theta().to_string()),
        ("rms_norm_eps", format!("{:e}", c.eps())),
        (
            "max_position_embeddings",
            c.max_position_embeddings.to_string(),
        ),
        ("tied_embeddings", c.tie_word_embeddings.to_string()),
    ];
    egui::Grid::new("facts").striped(true).show(ui, |ui| {
        for (k, v) in rows {
            ui.label(RichText::new(k).monospace());
            ui.label(RichText::new(v).monospace().strong());
            ui.end_row();
        }
    });
    ui.add_space(8.0);
    ui.label(
        RichText::new(cx.lang.tf(
            format!("Weights: {}", cx.s.model.source.weights_note),
            format!("权重：{}", cx.lang.engine_text(&cx.s.model.source.weights_note)),
        ))
        .color(cx.theme.muted()),
    );
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("overview");

impl super::View for DiagramView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Model", "模型结构")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["diagram", "graph", "training", "sizes"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "diagram" => self.mode = OverviewMode::Diagram,
            "graph" => self.mode = OverviewMode::Graph,
            "training" => self.mode = OverviewMode::Training,
            "sizes" => self.mode = OverviewMode::Sizes,
            _ => return false,
        }
        true
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        // The left panel's compact diagram is `DiagramView::ui`; the tab is the larger one.
        self.overview_ui(ui, cx);
    }
}
