//! The Model view: the architecture diagram drawn from the loaded model's recipe (not a
//! picture; `figure`) beside the configuration it is drawn from, or the graph built for this
//! input, the training loop, the size comparison.

use egui::{RichText, Ui};
use glassbox_engine::load::arch::{AttnMask, Family, NormKind, Positions};

use super::ViewCtx;

mod figure;
mod graph;
pub use figure::{mask_text, norm_name};
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
        figure::diagram_ui(ui, cx, 1.0);
    }

    /// The "Model" view: the diagram, larger, with the configuration it was drawn from; or
    /// the graph built for this input, the training loop, the size comparison.
    pub fn overview_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            ui.heading(family_heading(cx));
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
                    figure::diagram_ui(&mut cols[0], cx, 1.25);
                    facts_ui(&mut cols[1], cx);
                });
            }
            OverviewMode::Graph => graph::graph_ui(ui, cx),
            OverviewMode::Training => self.training.ui(ui, cx),
            OverviewMode::Sizes => sizes::sizes_ui(ui, cx),
        }
    }
}

/// "The model: a Llama-family decoder", or the loaded family's.
fn family_heading(cx: &ViewCtx<'_>) -> &'static str {
    match cx.s.model.arch.family {
        Family::Llama => cx.tr("The model: a Llama-family decoder", "模型：Llama 系列解码器"),
        Family::Gemma3 => cx.tr("The model: a Gemma 3 decoder", "模型：Gemma 3 解码器"),
        Family::Gpt2 => cx.tr("The model: a GPT-2 decoder", "模型：GPT-2 解码器"),
        Family::Bert => cx.tr("The model: a BERT encoder (masked language model)", "模型：BERT 编码器（掩码语言模型）"),
        Family::Qwen2 => cx.tr("The model: a Qwen 2 decoder (q, k, v biases)", "模型：Qwen 2 解码器（q、k、v 带偏置）"),
        Family::Qwen3 => cx.tr("The model: a Qwen 3 decoder (QK-norm per head)", "模型：Qwen 3 解码器（逐头 QK 归一化）"),
        Family::Olmo2 => cx.tr("The model: an OLMo 2 decoder (norms after each sublayer)", "模型：OLMo 2 解码器（子层之后归一化）"),
        Family::Phi3 => cx.tr("The model: a Phi-3 decoder (fused qkv and gate_up)", "模型：Phi-3 解码器（融合的 qkv 与 gate_up）"),
    }
}

/// The config values the figure reads, named as config.json names them.
fn fact_rows(cx: &ViewCtx<'_>) -> Vec<(&'static str, String)> {
    let (c, arch) = (&cx.s.model.config, &cx.s.model.arch);
    let mut rows: Vec<(&str, String)> = vec![
        ("model_type", c.model_type.clone().unwrap_or_else(|| "llama".into())),
        ("n_layers", c.n_layers().to_string()),
        ("d_model", c.d_model().to_string()),
        ("n_heads", c.n_heads().to_string()),
        ("n_kv_heads", c.n_kv_heads().to_string()),
        ("d_head", c.d_head().to_string()),
        ("d_mlp", c.d_mlp().to_string()),
        ("vocab_size", c.vocab_size.to_string()),
    ];
    if arch.positions == Positions::Rope {
        rows.push(("rope_theta", c.rope_theta().to_string()));
    }
    if let Some(t) = c.rope_theta_local() {
        rows.push(("rope_local_base_freq", t.to_string()));
    }
    let eps = if arch.norm == NormKind::Layer { "layer_norm_eps" } else { "rms_norm_eps" };
    rows.push((eps, format!("{:e}", c.eps())));
    if let Some(w) = arch.layers.iter().find_map(|l| match l.mask {
        AttnMask::Sliding { window } => Some(window),
        _ => None,
    }) {
        rows.push(("sliding_window", w.to_string()));
    }
    if let Some(s) = arch.embed_scale {
        rows.push(("embed_scale (√d_model)", format!("{s:.4}")));
    }
    rows.push(("max_position_embeddings", c.max_position_embeddings.to_string()));
    rows.push(("tied_embeddings", c.tie_word_embeddings.to_string()));
    rows
}

/// The configuration numbers the diagram is drawn from.
fn facts_ui(ui: &mut Ui, cx: &ViewCtx<'_>) {
    ui.label(
        RichText::new(cx.tr(
            "Configuration (read from the model files)",
            "配置（从模型文件读取）",
        ))
        .strong(),
    );
    let rows = fact_rows(cx);
    // Two columns where they fit; on a projector's narrow column one "name = value" line
    // each, wrapped, instead of values past the edge.
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let width = |t: &str| ui.fonts_mut(|f| f.layout_no_wrap(t.to_string(), font.clone(), egui::Color32::WHITE).size().x);
    let key_w = rows.iter().map(|(k, _)| width(k)).fold(0.0f32, f32::max);
    let val_w = rows.iter().map(|(_, v)| width(v)).fold(0.0f32, f32::max);
    if key_w + val_w + 3.0 * ui.spacing().item_spacing.x <= ui.available_width() {
        egui::Grid::new("facts").striped(true).show(ui, |ui| {
            for (k, v) in rows {
                ui.label(RichText::new(k).monospace());
                ui.label(RichText::new(v).monospace().strong());
                ui.end_row();
            }
        });
    } else {
        for (k, v) in rows {
            ui.add(egui::Label::new(RichText::new(format!("{k} = {v}")).monospace()).wrap());
        }
    }
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

    fn mode(&self) -> Option<&'static str> {
        Some(match self.mode {
            OverviewMode::Diagram => "diagram",
            OverviewMode::Graph => "graph",
            OverviewMode::Training => "training",
            OverviewMode::Sizes => "sizes",
        })
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        // The left panel's compact diagram is `DiagramView::ui`; the tab is the larger one.
        self.overview_ui(ui, cx);
    }
}
