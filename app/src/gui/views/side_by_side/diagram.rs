//! The two blocks aligned op by op (engine `program::align`): one row per op, each side's op
//! in its family's colour, and every difference marked by colour AND by words in the middle
//! column, so it reads in greyscale and on a projector.

use egui::{RichText, Ui};
use glassbox_engine::load::arch_stats::ArchStats;
use glassbox_engine::program::align::{Aligned, Variant, align_blocks, variant_difference};
use glassbox_engine::{LayerOp, Step};

use super::Candidate;
use crate::gui::i18n::Lang;
use crate::gui::views::{ViewCtx, family_of};

pub fn aligned_blocks_ui(ui: &mut Ui, cx: &ViewCtx<'_>, a: &Candidate, b: &Candidate) {
    ui.label(RichText::new(cx.tr("One block of each, aligned op by op", "各取一个块，逐个算子对齐")).size(crate::gui::theme::font_px(ui, 17.0)).strong());
    let (arch_a, arch_b) = (a.config.arch(), b.config.arch());
    let rows = align_blocks(&arch_a, &arch_b);
    let differs = |r: &Aligned| r.is_difference() || variant_difference(&arch_a, &arch_b, *r) != (vec![], vec![]);
    let differences = rows.iter().filter(|r| differs(r)).count();
    ui.label(RichText::new(cx.lang.tf(
        format!("{differences} differences in one block; each model repeats its block (layers below)."),
        format!("一个块内有 {differences} 处不同；每个模型把自己的块重复多次（层数见下）。"),
    )).color(cx.theme.muted()));
    egui::Grid::new("side-by-side-ops").striped(true).spacing([14.0, 3.0]).show(ui, |ui| {
        ui.label(RichText::new(a.label(cx.lang)).strong());
        ui.label("");
        ui.label(RichText::new(b.label(cx.lang)).strong());
        ui.end_row();
        for row in &rows {
            op_cell_ui(ui, cx, row.a());
            marker_ui(ui, cx, *row, variant_difference(&arch_a, &arch_b, *row));
            op_cell_ui(ui, cx, row.b());
            ui.end_row();
        }
        layers_ui(ui, cx, a);
        ui.label("");
        layers_ui(ui, cx, b);
        ui.end_row();
    });
}

fn op_cell_ui(ui: &mut Ui, cx: &ViewCtx<'_>, op: Option<LayerOp>) {
    match op {
        Some(op) => {
            let bg = cx.theme.op_color(family_of(Step::Layer(0, op)));
            egui::Frame::new().fill(bg).inner_margin(egui::Margin::symmetric(5, 1)).corner_radius(3.0).show(ui, |ui| {
                ui.label(RichText::new(op.name()).monospace().size(crate::gui::theme::font_px(ui, 15.0)).color(cx.theme.text_on(bg)));
            });
        }
        None => {
            ui.label(RichText::new("·").monospace().color(cx.theme.faint()));
        }
    }
}

/// The middle column: nothing for a shared op computed the same way, words (and the
/// highlight colour) for a difference, naming the variant (bias, fused weight, QK-norm's
/// width, norm placement) where the op's name does not show it.
fn marker_ui(ui: &mut Ui, cx: &ViewCtx<'_>, row: Aligned, (in_a, in_b): (Vec<Variant>, Vec<Variant>)) {
    let mark = match row {
        Aligned::Same(_) if in_a.is_empty() && in_b.is_empty() => {
            ui.label(RichText::new("=").color(cx.theme.faint()));
            return;
        }
        Aligned::Same(_) => "≠",
        Aligned::OnlyA(_) => cx.tr("◀ only in A", "◀ 仅 A 有"),
        Aligned::OnlyB(_) => cx.tr("only in B ▶", "仅 B 有 ▶"),
        Aligned::Changed(..) => cx.tr("≠ changed", "≠ 不同"),
    };
    let mut words: Vec<String> = in_a.iter().map(|&v| format!("A: {}", variant_words(v, cx.lang))).collect();
    words.extend(in_b.iter().map(|&v| format!("B: {}", variant_words(v, cx.lang))));
    let text = if words.is_empty() { mark.to_string() } else { format!("{mark} {}", words.join("; ")) };
    ui.label(RichText::new(text).strong().color(cx.theme.highlight()));
}

pub fn variant_words(v: Variant, lang: Lang) -> &'static str {
    match v {
        Variant::Bias => lang.tr("with bias", "带偏置"),
        Variant::Fused => lang.tr("one fused weight", "融合成一个权重"),
        Variant::QkNormPerHead => lang.tr("QK-norm per head", "逐头 QK-norm"),
        Variant::QkNormWhole => lang.tr("QK-norm over the whole width", "整宽 QK-norm"),
        Variant::NormAfterOnly => lang.tr("norm after the sublayer, none before", "子层之后归一化，之前没有"),
        Variant::NormSandwich => lang.tr("norm after the sublayer, one before too", "子层之后归一化，之前也有"),
    }
}

/// How many times the block runs, and each layer's attention (sliding window or full).
fn layers_ui(ui: &mut Ui, cx: &ViewCtx<'_>, c: &Candidate) {
    let types = ArchStats::new(&c.config).layer_types();
    let sliding: Vec<usize> = types.iter().filter_map(|t| t.window).collect();
    let n = types.len();
    let text = match sliding.first() {
        Some(w) => cx.lang.tf(
            format!("× {n} layers: {} with a {w}-token window, {} full", sliding.len(), n - sliding.len()),
            format!("× {n} 层：{} 层只看最近 {w} 个词元，{} 层看全部", sliding.len(), n - sliding.len()),
        ),
        None => cx.lang.tf(format!("× {n} layers, every one full attention"), format!("× {n} 层，每层都看全部")),
    };
    ui.label(RichText::new(text).color(cx.theme.muted()));
}
