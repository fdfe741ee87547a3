//! The norm a step is about, as this family computes it: RMSNorm with a learned scale g (or
//! Gemma's `1 + w`: the checkpoint stores w, the loader folds the 1 in), or LayerNorm with its
//! mean, its standard deviation and its bias. Every norm of the program is here: pre-norms,
//! Gemma's post-sublayer (sandwich) norms, BERT's embedding LayerNorm, the final norm.

use egui::{RichText, Sense, Ui, pos2, vec2};
use glassbox_engine::article::norms;
use glassbox_engine::load::arch::NormKind;
use glassbox_engine::{BlockHook, HookKey, LayerOp, Step};

use super::{EmbeddingNormView, grid_cols, layernorm, max_abs, nice_ceiling, row2};
use crate::gui::heatmap::{self, vector_grid_ui};
use crate::gui::theme::Colormap;
use crate::gui::views::{ViewCtx, fmt_val, missing_ui, title_ui};

/// The norm a step is about.
pub(super) struct NormSite {
    pub name: String,
    /// The vector normed; `None` where no one hook holds it (BERT's summed embeddings).
    pub input: Option<HookKey>,
    pub scale: HookKey,
    pub output: HookKey,
    /// The scale as applied (Gemma: `1 + w`).
    pub weight: Vec<f32>,
    /// LayerNorm's bias.
    pub bias: Option<Vec<f32>>,
}

pub(super) fn norm_site(cx: &ViewCtx<'_>, step: Step) -> NormSite {
    let m = &cx.s.model;
    let w = &m.weights;
    let layer = |l: usize| w.layers.get(l);
    let vec = |a: Option<&ndarray::Array1<f32>>| a.map(|a| a.to_vec()).unwrap_or_default();
    let site = |name: String, input, scale, output, weight, bias: Option<Vec<f32>>| NormSite { name, input, scale, output, weight, bias };
    let blk = |l: usize, h: BlockHook| HookKey::Block(l, h);
    match step {
        Step::LnFinal => {
            let last = m.config.n_layers().saturating_sub(1);
            site("ln_final".into(), Some(blk(last, BlockHook::ResidPost)), HookKey::LnFinalScale, HookKey::LnFinalNormalized, vec(w.norm.as_ref()), w.norm_bias.as_ref().map(|b| b.to_vec()))
        }
        Step::EmbedNorm => {
            let ln = w.positions.as_ref().and_then(|p| p.layer_norm.as_ref());
            site("embed_ln".into(), None, HookKey::EmbedLnScale, HookKey::EmbedLnNormalized, vec(ln.map(|[g, _]| g)), ln.map(|[_, b]| b.to_vec()))
        }
        Step::Layer(l, LayerOp::AttnPostNorm) => {
            let g = layer(l).and_then(|x| x.sublayer_out_norm.as_ref()).map(|[a, _]| a);
            site(format!("blocks.{l}.ln1_post"), Some(blk(l, BlockHook::AttnOut)), blk(l, BlockHook::Ln1PostScale), blk(l, BlockHook::Ln1PostNormalized), vec(g), None)
        }
        Step::Layer(l, LayerOp::MlpPostNorm) => {
            let g = layer(l).and_then(|x| x.sublayer_out_norm.as_ref()).map(|[_, b]| b);
            site(format!("blocks.{l}.ln2_post"), Some(blk(l, BlockHook::MlpOut)), blk(l, BlockHook::Ln2PostScale), blk(l, BlockHook::Ln2PostNormalized), vec(g), None)
        }
        Step::Layer(l, LayerOp::Ln2) => {
            let bias = layer(l).and_then(|x| x.norm_bias.as_ref()).map(|[_, b]| b.to_vec());
            site(format!("blocks.{l}.ln2"), Some(blk(l, BlockHook::ResidMid)), blk(l, BlockHook::Ln2Scale), blk(l, BlockHook::Ln2Normalized), vec(layer(l).and_then(|x| x.post_attention_layernorm.as_ref())), bias)
        }
        _ => {
            let l = cx.s.view_layer();
            let bias = layer(l).and_then(|x| x.norm_bias.as_ref()).map(|[b, _]| b.to_vec());
            site(format!("blocks.{l}.ln1"), Some(blk(l, BlockHook::ResidPre)), blk(l, BlockHook::Ln1Scale), blk(l, BlockHook::Ln1Normalized), vec(layer(l).and_then(|x| x.input_layernorm.as_ref())), bias)
        }
    }
}

/// The formula the engine runs, and what sets it apart.
fn formula_ui(ui: &mut Ui, cx: &ViewCtx<'_>) -> (String, &'static str) {
    let arch = &cx.s.model.arch;
    let eps = cx.s.model.config.eps();
    let (name, formula, note) = match arch.norm {
        NormKind::Layer => (
            "LayerNorm",
            format!("LayerNorm(x) = (x − mean(x)) / √(var(x) + eps) ⊙ g + b     eps = {eps:e}"),
            cx.tr("LayerNorm subtracts the mean and divides by the standard deviation, then scales by g and adds a bias b, per dimension.", "LayerNorm 先减去均值、除以标准差，再逐维乘以 g、加上偏置 b。"),
        ),
        NormKind::Rms if arch.norm_weight_plus_one() => (
            "RMSNorm",
            format!("RMSNorm(x) = x / √(mean(x·x) + eps) ⊙ (1 + w)     eps = {eps:e}"),
            cx.tr("Gemma's RMSNorm: the checkpoint stores w, and the scale applied is 1 + w (so w = 0 means \"leave it\"). No mean, no bias.", "Gemma 的 RMSNorm：检查点里存的是 w，实际乘的是 1 + w（w = 0 表示不缩放）。不减均值，没有偏置。"),
        ),
        NormKind::Rms => (
            "RMSNorm",
            format!("RMSNorm(x) = x / √(mean(x·x) + eps) ⊙ g     eps = {eps:e}"),
            cx.tr("Unlike LayerNorm: no mean is subtracted and there is no bias, only a learned scale g per dimension.", "与 LayerNorm 不同：不减去均值，也没有偏置，只有每个维度一个可学习的缩放 g。"),
        ),
    };
    ui.label(RichText::new(formula).monospace());
    (name.to_string(), note)
}

impl EmbeddingNormView {
    pub(super) fn norm_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let site = norm_site(cx, cx.s.cursor_step());
        let hooks: Vec<HookKey> = site.input.into_iter().chain([site.scale, site.output]).collect();
        let kind = if cx.s.model.arch.norm == NormKind::Layer { "LayerNorm" } else { "RMSNorm" };
        title_ui(ui, cx, &format!("{kind} · {}", site.name), &hooks);
        let (_, note) = formula_ui(ui, cx);
        let rms = cx.s.model.arch.norm == NormKind::Rms;
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(note).color(cx.theme.muted()));
            if rms {
                ui.checkbox(&mut self.compare_layernorm, cx.tr("Compare with LayerNorm on the same vector", "在同一个向量上与 LayerNorm 对比"));
            }
        });
        if missing_ui(ui, cx, site.output) {
            return;
        }
        if cx.grads() {
            // x, g and h side by side explain the forward division; for gradients, the
            // two maps the backward op connects: ∂loss/∂output in, ∂loss/∂input out.
            for (slot, key) in [Some(site.output), site.input].into_iter().flatten().enumerate() {
                ui.label(RichText::new(format!("∂loss/∂{key}")).strong());
                self.all_positions_ui(ui, cx, key, slot);
            }
            return;
        }
        let pos = cx.s.sel.position.min(cx.s.n_tokens().saturating_sub(1));
        let x = site.input.and_then(|k| row2(cx, k, pos));
        if self.compare_layernorm && rms {
            if let (Some(x), Some(input)) = (&x, site.input) {
                layernorm::compare_ui(ui, cx, &site.name, input, x, &site.weight, pos);
            }
            return;
        }
        let Some(h) = row2(cx, site.output, pos) else { return };
        self.norm_grids_ui(ui, cx, &site, x.as_deref(), &h, pos);
        ui.separator();
        rms_bars_ui(ui, cx, site.scale);
    }

    /// x, the scale (and LayerNorm's bias), h side by side, one dimension read out under the
    /// pointer.
    fn norm_grids_ui(&mut self, ui: &mut Ui, cx: &ViewCtx<'_>, site: &NormSite, x: Option<&[f32]>, h: &[f32], pos: usize) {
        let arch = &cx.s.model.arch;
        let plus_one = arch.norm_weight_plus_one();
        let scale = cx.s.trace.get(site.scale).and_then(|t| t.data.get(ndarray::IxDyn(&[pos])).copied());
        let cols = grid_cols(h.len());
        let n = 3 + usize::from(site.bias.is_some());
        let cell = ((ui.available_width() - 60.0) / n as f32 / cols as f32).clamp(4.0, 12.0);
        let mut hovered = None;
        ui.horizontal_top(|ui| {
            let mut grid = |ui: &mut Ui, title: String, v: &[f32], map: Colormap| {
                let s = max_abs(v.iter().copied());
                ui.vertical(|ui| {
                    ui.label(RichText::new(title).strong());
                    let color = |x: f32| if map == Colormap::Diverging { map.signed(x, s) } else { map.seq(x, s) };
                    let (_, hov) = vector_grid_ui(ui, v, cols, cell, color, self.hovered_dim, &cx.theme);
                    hovered = hovered.or(hov);
                    ui.label(RichText::new(format!("max |·| = {}", fmt_val(s))).small());
                });
            };
            match x {
                Some(x) => grid(ui, cx.lang.tf(format!("x (before), position {pos}"), format!("x（归一化前），位置 {pos}")), x, Colormap::Diverging),
                None => {
                    ui.vertical(|ui| {
                        ui.set_max_width(240.0);
                        ui.label(RichText::new(cx.tr("x = hook_embed + hook_pos_embed + hook_token_type_embed (the sum is not one recorded hook)", "x = hook_embed + hook_pos_embed + hook_token_type_embed（这个和没有单独记录）")).small());
                    });
                }
            }
            let g_title = match (arch.norm, plus_one) {
                (NormKind::Layer, _) => cx.tr("− mean, ÷ std, then ⊙ g", "− 均值，÷ 标准差，再 ⊙ g"),
                (NormKind::Rms, true) => cx.tr("÷ RMS, then ⊙ (1 + w)", "÷ RMS，再 ⊙ (1 + w)"),
                (NormKind::Rms, false) => cx.tr("÷ RMS, then ⊙ g (learned scale)", "÷ RMS，再 ⊙ g（可学习缩放）"),
            };
            grid(ui, g_title.into(), &site.weight, Colormap::Viridis);
            if let Some(b) = &site.bias {
                grid(ui, cx.tr("+ b (bias)", "+ b（偏置）").into(), b, Colormap::Diverging);
            }
            grid(ui, cx.tr("= h (after)", "= h（归一化后）").into(), h, Colormap::Diverging);
        });
        self.hovered_dim = hovered;
        let unit = cx.tr("x, b and h: value ÷ the grid's max |·|; the scale: viridis from 0 to its max", "x、b 与 h：数值 ÷ 该格图的最大 |·|；缩放：从 0 到最大值（viridis）");
        heatmap::colorbar_ui(ui, Colormap::Diverging, &crate::gui::heatmap::ColorScale::symmetric(1.0), unit, "", cx.lang, &cx.theme);
        let line = readout_line(cx, site, x, h, scale, hovered);
        ui.label(RichText::new(line).monospace().size(crate::gui::theme::font_px(ui, 15.0)));
    }
}

/// One dimension's arithmetic under the pointer, or this position's statistics.
fn readout_line(cx: &ViewCtx<'_>, site: &NormSite, x: Option<&[f32]>, h: &[f32], scale: Option<f32>, hovered: Option<usize>) -> String {
    let arch = &cx.s.model.arch;
    let layer = arch.norm == NormKind::Layer;
    let g = |i: usize| site.weight.get(i).copied().unwrap_or(f32::NAN);
    let xi = |i: usize| x.and_then(|x| x.get(i)).map_or("?".into(), |v| fmt_val(*v));
    let stats = x.filter(|_| layer).map(|x| norms::compare(x, ndarray::ArrayView1::from(&site.weight[..]), cx.s.model.config.eps()));
    match (scale, hovered) {
        (Some(r), Some(i)) if layer => {
            let mean = stats.as_ref().map_or("?".into(), |s| fmt_val(s.mean));
            let b = site.bias.as_ref().and_then(|b| b.get(i)).copied().unwrap_or(0.0);
            format!("dim {i}:  (x {} − mean {mean}) / std {}   × g {}   + b {}   →   h = {}", xi(i), fmt_val(r), fmt_val(g(i)), fmt_val(b), fmt_val(h[i]))
        }
        // The stored w is the applied scale less the 1 the loader folded in.
        (Some(r), Some(i)) if arch.norm_weight_plus_one() => format!("dim {i}:  x = {}   / RMS {}   × (1 + w) = {} (w = {})   →   h = {}", xi(i), fmt_val(r), fmt_val(g(i)), fmt_val(g(i) - 1.0), fmt_val(h[i])),
        (Some(r), Some(i)) => format!("dim {i}:  x = {}   / RMS {}   × g = {}   →   h = {}", xi(i), fmt_val(r), fmt_val(g(i)), fmt_val(h[i])),
        (Some(r), None) if layer && stats.is_none() => cx.lang.tf(
            format!("This position: std √(var + eps) ({}) = {}", site.scale, fmt_val(r)),
            format!("该位置：标准差 √(var + eps)（{}）= {}", site.scale, fmt_val(r)),
        ),
        (Some(r), None) if layer => {
            let mean = stats.as_ref().map_or("?".into(), |s| fmt_val(s.mean));
            cx.lang.tf(
                format!("This position: mean(x) = {mean}, std √(var + eps) ({}) = {}", site.scale, fmt_val(r)),
                format!("该位置：mean(x) = {mean}，标准差 √(var + eps)（{}）= {}", site.scale, fmt_val(r)),
            )
        }
        (Some(r), None) => cx.lang.tf(format!("RMS of this position ({}) = {}", site.scale, fmt_val(r)), format!("该位置的 RMS（{}）= {}", site.scale, fmt_val(r))),
        _ => String::new(),
    }
}

/// The RMS (or LayerNorm's standard deviation) of every position; click one to select it.
fn rms_bars_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, key: HookKey) {
    let Some(t) = cx.s.trace.get(key) else { return };
    let values: Vec<f32> = t.data.iter().copied().collect();
    let (stat, title) = if cx.s.model.arch.norm == NormKind::Layer {
        ("std", cx.lang.tf(format!("√(var + eps) per position ({key})"), format!("每个位置的 √(var + eps)（{key}）")))
    } else {
        ("RMS", cx.lang.tf(format!("RMS per position ({key})"), format!("每个位置的 RMS（{key}）")))
    };
    ui.label(RichText::new(title).strong());
    let n = values.len().max(1);
    let w = ui.available_width().min(900.0);
    let (outer, resp) = ui.allocate_exact_size(vec2(w, 110.0), Sense::click());
    // A y axis with ticks: the bar heights are values, not just "taller".
    let rect = egui::Rect::from_min_max(outer.min + vec2(48.0, 6.0), outer.max - vec2(0.0, 4.0));
    let painter = ui.painter_at(outer.expand(2.0));
    let top = nice_ceiling(max_abs(values.iter().copied()).max(1e-9));
    let font = egui::FontId::proportional(crate::gui::theme::font_px(ui, 11.0));
    for k in 0..=4 {
        let v = top * k as f32 / 4.0;
        let y = rect.max.y - v / top * rect.height();
        painter.line_segment([pos2(rect.min.x - 4.0, y), pos2(rect.max.x, y)], egui::Stroke::new(if k == 0 { 1.0 } else { 0.5 }, cx.theme.faint()));
        painter.text(pos2(rect.min.x - 6.0, y), egui::Align2::RIGHT_CENTER, crate::gui::scale::short(v), font.clone(), cx.theme.text());
    }
    // Right of the axis, clear of its top tick label.
    painter.text(pos2(rect.min.x + 6.0, outer.min.y), egui::Align2::LEFT_TOP, stat, font, cx.theme.muted());
    let bw = rect.width() / n as f32;
    for (i, v) in values.iter().enumerate() {
        let color = if i == cx.s.sel.position { cx.theme.highlight() } else { cx.theme.op_color(crate::gui::theme::OpFamily::Norm) };
        let x = rect.min.x + i as f32 * bw;
        let bar = egui::Rect::from_min_max(pos2(x, rect.max.y - v / top * rect.height()), pos2(x + (bw - 1.0).max(1.0), rect.max.y));
        painter.rect_filled(bar, 0.0, color);
    }
    let idx = |p: egui::Pos2| (((p.x - rect.min.x) / bw).floor().max(0.0) as usize).min(n - 1);
    if let Some(p) = resp.hover_pos() {
        let i = idx(p);
        let tok = cx.s.token_texts.get(i).cloned().unwrap_or_default();
        resp.clone().on_hover_text(format!("{key}[{i}] “{tok}” = {}", fmt_val(values[i])));
    }
    if resp.clicked()
        && let Some(p) = resp.interact_pointer_pos()
    {
        cx.s.sel.position = idx(p);
    }
}
