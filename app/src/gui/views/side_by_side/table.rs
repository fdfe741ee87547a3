//! Each component's parameters, FLOPs per token and KV cache for A and B, at a context length
//! the user sets: every number from the engine's `ArchStats` (the config alone).

use egui::{RichText, Ui};
use glassbox_engine::load::arch_stats::{ArchStats, ComponentFlops, ParamCounts};

use super::Candidate;
use crate::gui::views::ViewCtx;

/// Bytes per cached value in the table (bf16/f16, as the models are served).
const KV_BYTES: u64 = 2;

/// One model's numbers for the table.
struct Column {
    params: ParamCounts,
    flops: ComponentFlops,
    kv_per_token: u64,
    kv_at_context: u64,
}

impl Column {
    fn of(c: &Candidate, context: usize) -> Self {
        let s = ArchStats::new(&c.config);
        Self {
            params: s.params(),
            flops: s.flops_by_component(context),
            kv_per_token: s.kv_values_per_token(),
            kv_at_context: s.kv_values_at_context(context),
        }
    }
}

pub fn components_ui(ui: &mut Ui, cx: &ViewCtx<'_>, a: &Candidate, b: &Candidate, context: &mut usize) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(cx.tr("Components", "各组成部分")).size(crate::gui::theme::font_px(ui, 17.0)).strong());
        ui.add_space(16.0);
        let label = ui.label(cx.tr("Context length (tokens):", "上下文长度（词元）："));
        ui.add(egui::DragValue::new(context).range(1..=1_048_576).speed(32.0)).labelled_by(label.id);
    });
    let (ca, cb) = (Column::of(a, *context), Column::of(b, *context));
    egui::Grid::new("side-by-side-table").striped(true).spacing([18.0, 4.0]).show(ui, |ui| {
        header_ui(ui, cx, a, b);
        for (name, pick) in component_rows(cx) {
            ui.label(name);
            for col in [&ca, &cb] {
                let (params, flops) = pick(col);
                ui.label(RichText::new(params.map_or("—".to_string(), count)).monospace());
                ui.label(RichText::new(count(flops)).monospace());
            }
            ui.end_row();
        }
        kv_rows_ui(ui, cx, &ca, &cb, *context);
    });
    ui.label(RichText::new(cx.tr(
        "FLOPs: the last token of a sequence of the context length, forward. Matmuls count 2 per weight (biases and activations not counted); norms 4 per value (RMSNorm) or 7 (LayerNorm). KV bytes at 2 bytes a value (bf16).",
        "FLOPs：序列中最后一个词元（位于上述上下文长度处）的一次前向传播。矩阵乘法每个权重计 2 次（不计偏置和激活函数）；归一化每个值计 4 次（RMSNorm）或 7 次（LayerNorm）。KV 字节按每个值 2 字节（bf16）计。",
    )).small().color(cx.theme.muted()));
}

fn header_ui(ui: &mut Ui, cx: &ViewCtx<'_>, a: &Candidate, b: &Candidate) {
    ui.label("");
    for c in [a, b] {
        ui.label(RichText::new(c.label(cx.lang)).strong());
        ui.label("");
    }
    ui.end_row();
    ui.label(RichText::new(cx.tr("Component", "组成部分")).strong());
    for _ in 0..2 {
        ui.label(RichText::new(cx.tr("Parameters", "参数量")).strong());
        ui.label(RichText::new(cx.tr("FLOPs / token", "FLOPs / 词元")).strong());
    }
    ui.end_row();
}

type Pick = fn(&Column) -> (Option<u64>, u64);

fn component_rows(cx: &ViewCtx<'_>) -> Vec<(&'static str, Pick)> {
    vec![
        (cx.tr("Token embedding", "词元嵌入"), |c| (Some(c.params.embedding + c.params.positions + c.params.token_types), c.flops.embedding)),
        (cx.tr("Attention projections", "注意力投影"), |c| (Some(c.params.attention), c.flops.attention)),
        (cx.tr("Attention over the context", "对上下文的注意力"), |c| (None, c.flops.attention_at_context)),
        (cx.tr("MLP projections", "MLP 投影"), |c| (Some(c.params.mlp), c.flops.mlp)),
        (cx.tr("Norms", "归一化"), |c| (Some(c.params.norms), c.flops.norms)),
        (cx.tr("Output head", "输出层"), |c| (Some(c.params.head), c.flops.head)),
        (cx.tr("Total", "合计"), |c| (Some(c.params.total()), c.flops.total())),
    ]
}

fn kv_rows_ui(ui: &mut Ui, cx: &ViewCtx<'_>, a: &Column, b: &Column, context: usize) {
    let rows: [(String, fn(&Column) -> u64); 2] = [
        (cx.tr("KV cache per token", "每个词元的 KV 缓存").to_string(), |c| c.kv_per_token),
        (cx.lang.tf(format!("KV cache at {context} tokens"), format!("{context} 个词元时的 KV 缓存")), |c| c.kv_at_context),
    ];
    for (name, pick) in rows {
        ui.label(name);
        for col in [a, b] {
            let values = pick(col);
            ui.label(RichText::new(cx.lang.tf(format!("{} values", count(values)), format!("{} 个值", count(values)))).monospace());
            ui.label(RichText::new(bytes(values * KV_BYTES)).monospace());
        }
        ui.end_row();
    }
}

/// 1.23 M, 4.56 G, …: sizes to compare at a glance, exact below a thousand.
pub fn count(n: u64) -> String {
    let x = n as f64;
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.2} K", x / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} M", x / 1e6),
        1_000_000_000..1_000_000_000_000 => format!("{:.2} G", x / 1e9),
        _ => format!("{:.2} T", x / 1e12),
    }
}

fn bytes(n: u64) -> String {
    let x = n as f64;
    match n {
        0..1_024 => format!("{n} B"),
        1_024..1_048_576 => format!("{:.1} KiB", x / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", x / 1_048_576.0),
        _ => format!("{:.2} GiB", x / 1_073_741_824.0),
    }
}
