//! The block diagram itself, walked from the loaded model's op program: each norm where the
//! `Arch` puts it (pre, post-norm after the add, Gemma's sandwich around each sublayer, or
//! OLMo 2's after each sublayer only), QK-norm per head or whole-width, q/k/v biases, fused
//! projections, RoPE or learned positions (and BERT's token types), the layer's mask (causal,
//! sliding window, two-way), the MLP as computed. Every part is a button that moves the
//! cursor there.

use std::cell::Cell;

use egui::{Frame, Margin, RichText, Sense, Stroke, Ui, vec2};
use glassbox_engine::load::arch::{Arch, AttnMask, MlpKind, NormKind, NormPlacement, Positions};
use glassbox_engine::program::op_table::Family;
use glassbox_engine::{LayerOp, Step};

use crate::gui::i18n::Lang;
use crate::gui::theme::OpFamily;
use crate::gui::views::{Request, ViewCtx, family_of};

/// What every block of one frame's diagram shares.
struct Blocks {
    cursor: Step,
    size: f32,
    goto: Cell<Option<Step>>,
}

impl Blocks {
    /// One box: its title (a button to its first step), a detail line, and a button per step
    /// when it groups several.
    fn block(&self, ui: &mut Ui, cx: &ViewCtx<'_>, title: String, detail: String, steps: &[(&str, Step)]) {
        let active = steps.iter().any(|&(_, s)| s == self.cursor);
        let fam = steps.first().map_or(OpFamily::Embed, |&(_, s)| family_of(s));
        let color = cx.theme.op_color(fam);
        let fill = if active { color } else { color.gamma_multiply(0.25) };
        let stroke = if active { Stroke::new(3.0, cx.theme.highlight()) } else { Stroke::new(1.0, color) };
        Frame::new().fill(fill).stroke(stroke).corner_radius(6.0).inner_margin(Margin::same(6)).show(ui, |ui| {
            ui.set_width(ui.available_width());
            let text_color = if active { cx.theme.text_on(fill) } else { cx.theme.text() };
            let title = RichText::new(title).size(crate::gui::theme::font_px(ui, self.size + 1.0)).strong().color(text_color);
            if ui.add(egui::Label::new(title).sense(Sense::click())).clicked()
                && let Some(&(_, s)) = steps.first()
            {
                self.goto.set(Some(s));
            }
            if !detail.is_empty() {
                ui.label(RichText::new(detail).size(crate::gui::theme::font_px(ui, self.size - 2.0)).color(text_color));
            }
            if steps.len() > 1 {
                self.step_buttons_ui(ui, steps);
            }
        });
    }

    fn step_buttons_ui(&self, ui: &mut Ui, steps: &[(&str, Step)]) {
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing = vec2(3.0, 3.0);
            for &(name, s) in steps {
                let b = egui::Button::new(RichText::new(name).size(crate::gui::theme::font_px(ui, self.size - 1.0)).monospace())
                    .selected(s == self.cursor)
                    .small();
                if ui.add(b).clicked() {
                    self.goto.set(Some(s));
                }
            }
        });
    }

    fn arrow(&self, ui: &mut Ui, cx: &ViewCtx<'_>) {
        ui.vertical_centered(|ui| ui.label(RichText::new("↓").size(crate::gui::theme::font_px(ui, self.size)).color(cx.theme.muted())));
    }
}

/// The whole diagram at `scale` (1 in the side panel, larger in the Model view).
pub fn diagram_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, scale: f32) {
    let b = Blocks { cursor: cx.s.cursor_step(), size: 13.0 * scale, goto: Cell::new(None) };
    embedding_ui(ui, cx, &b);
    b.arrow(ui, cx);
    layers_ui(ui, cx, &b, scale);
    b.arrow(ui, cx);
    head_ui(ui, cx, &b);
    if let Some(s) = b.goto.get() {
        cx.requests.push(Request::Goto(s));
    }
}

/// "RMSNorm" or "LayerNorm", with Gemma's `(1 + w)`.
pub fn norm_name(arch: &Arch) -> &'static str {
    match arch.norm {
        NormKind::Rms if arch.norm_weight_plus_one() => "RMSNorm · (1 + w)",
        NormKind::Rms => "RMSNorm",
        NormKind::Layer => "LayerNorm",
    }
}

/// Token rows, Gemma's √d_model scale, learned positions and token types, BERT's LayerNorm.
fn embedding_ui(ui: &mut Ui, cx: &ViewCtx<'_>, b: &Blocks) {
    let (c, arch) = (&cx.s.model.config, &cx.s.model.arch);
    let mut detail = format!("E: {} × {}", c.vocab_size, c.d_model());
    if let Some(s) = arch.embed_scale {
        detail += &cx.lang.tf(
            format!("  ·  scaled by √{} = {s:.2}", c.d_model()),
            format!("  ·  乘以 √{} = {s:.2}", c.d_model()),
        );
    }
    b.block(ui, cx, cx.tr("Token embedding", "词元嵌入").into(), detail, &[("embed", Step::Embed)]);
    if let Positions::Learned { token_types } = arch.positions {
        let title = cx.tr("+ learned position embeddings", "+ 可学习的位置嵌入");
        let detail = format!("P: {} × {}", c.max_position_embeddings, c.d_model());
        b.block(ui, cx, title.into(), detail, &[("pos_embed", Step::PosEmbed)]);
        if token_types {
            let title = cx.tr("+ token-type embeddings (segment A/B)", "+ 词元类型嵌入（句段 A/B）");
            let detail = format!("T: {} × {}", c.type_vocab_size.unwrap_or(2), c.d_model());
            b.block(ui, cx, title.into(), detail, &[("token_type_embed", Step::TokenTypeEmbed)]);
        }
    }
    if arch.embed_norm {
        let title = cx.lang.tf(format!("{} of the summed embeddings", norm_name(arch)), format!("对嵌入之和做 {}", norm_name(arch)));
        b.block(ui, cx, title, String::new(), &[("embed_ln", Step::EmbedNorm)]);
    }
}

/// The repeated block: its title, the layer strip with local/global marks, this layer's
/// mask, and its ops in program order.
fn layers_ui(ui: &mut Ui, cx: &ViewCtx<'_>, b: &Blocks, scale: f32) {
    let layer = cx.s.view_layer();
    let n = cx.s.model.config.n_layers();
    Frame::new().stroke(Stroke::new(1.5, cx.theme.muted())).corner_radius(8.0).inner_margin(Margin::same(6)).show(ui, |ui| {
        let title = if cx.s.model.arch.generates() {
            cx.lang.tf(format!("× {n} decoder layers (showing layer {layer})"), format!("× {n} 个解码器层（当前显示第 {layer} 层）"))
        } else {
            cx.lang.tf(format!("× {n} encoder layers (showing layer {layer})"), format!("× {n} 个编码器层（当前显示第 {layer} 层）"))
        };
        ui.label(RichText::new(title).size(crate::gui::theme::font_px(ui, b.size)).strong());
        layer_strip_ui(ui, cx, n, layer, &b.goto);
        ui.label(RichText::new(layer_kinds(&cx.s.model.arch, cx.lang)).size(crate::gui::theme::font_px(ui, b.size - 2.0)).color(cx.theme.muted()));
        block_ops_ui(ui, cx, b, layer, scale);
    });
}

/// One small button per layer, the current one highlighted; a sliding-window layer is marked
/// "·" (local), a full-attention layer among them "G" (global).
fn layer_strip_ui(ui: &mut Ui, cx: &ViewCtx<'_>, n: usize, layer: usize, goto: &Cell<Option<Step>>) {
    let arch = &cx.s.model.arch;
    let mixed = arch.layers.iter().any(|l| matches!(l.mask, AttnMask::Sliding { .. }));
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = vec2(2.0, 2.0);
        for l in 0..n {
            let text = match arch.mask(l) {
                _ if !mixed => format!("L{l}"),
                AttnMask::Sliding { .. } => format!("L{l}·"),
                _ => format!("L{l} G"),
            };
            let b = egui::Button::new(RichText::new(text).size(crate::gui::theme::font_px(ui, 10.0))).selected(l == layer).small();
            if ui.add(b).clicked() {
                let op = match cx.s.cursor_step() {
                    Step::Layer(_, op) => op,
                    _ => cx.s.block_ops().first().copied().unwrap_or(LayerOp::Ln1),
                };
                goto.set(Some(Step::Layer(l, op)));
            }
        }
    });
}

/// Which layers see which keys: "local (sliding window 512): 15 layers (·) · global: L5, …".
fn layer_kinds(arch: &Arch, lang: Lang) -> String {
    let window = arch.layers.iter().find_map(|l| match l.mask {
        AttnMask::Sliding { window } => Some(window),
        _ => None,
    });
    let global: Vec<String> = (0..arch.layers.len()).filter(|&l| !matches!(arch.mask(l), AttnMask::Sliding { .. })).map(|l| format!("L{l}")).collect();
    let n_local = arch.layers.len() - global.len();
    match (window, arch.mask(0)) {
        (Some(w), _) => lang.tf(
            format!("local (·): {n_local} layers, sliding window {w} · global (G): {}", global.join(", ")),
            format!("局部（·）：{n_local} 层，滑动窗口 {w} · 全局（G）：{}", global.join("、")),
        ),
        (None, AttnMask::Bidirectional) => lang.tr("every layer: two-way attention (every token sees every token)", "每一层：双向注意力（每个词元都能看到所有词元）").into(),
        _ => lang.tr("every layer: causal attention (each token sees itself and earlier ones)", "每一层：因果注意力（每个词元只看到自己和之前的词元）").into(),
    }
}

/// The ops of one block in program order: the attention and MLP ops grouped into one box
/// each, every norm and residual add a box of its own where this family puts it.
fn block_ops_ui(ui: &mut Ui, cx: &ViewCtx<'_>, b: &Blocks, layer: usize, scale: f32) {
    let ops = cx.s.block_ops();
    let mut i = 0;
    while i < ops.len() {
        let fam = ops[i].family();
        if matches!(fam, Family::Attention | Family::Mlp) {
            let run: Vec<LayerOp> = ops[i..].iter().copied().take_while(|op| op.family() == fam).collect();
            i += run.len();
            let steps: Vec<(&str, Step)> = run.iter().map(|&op| (op.name(), Step::Layer(layer, op))).collect();
            if fam == Family::Attention {
                attention_block_ui(ui, cx, b, layer, &run, &steps, scale);
            } else {
                mlp_block_ui(ui, cx, b, &steps);
            }
        } else {
            single_op_ui(ui, cx, b, layer, ops[i]);
            i += 1;
        }
        if i < ops.len() && ops[i - 1] != LayerOp::BlockIn {
            b.arrow(ui, cx);
        }
    }
}

fn attention_block_ui(ui: &mut Ui, cx: &ViewCtx<'_>, b: &Blocks, layer: usize, ops: &[LayerOp], steps: &[(&str, Step)], scale: f32) {
    let (c, arch) = (&cx.s.model.config, &cx.s.model.arch);
    let (h, kv) = (c.n_heads(), c.n_kv_heads());
    let title = match kv {
        1 if h > 1 => cx.lang.tf(format!("Attention: {h} query heads, 1 shared K/V head (multi-query)"), format!("注意力：{h} 个查询头，共用 1 个 K/V 头（多查询 MQA）")),
        _ if kv == h => cx.lang.tf(format!("Attention: {h} heads (multi-head)"), format!("注意力：{h} 个头（多头 MHA）")),
        _ => cx.lang.tf(format!("Attention: {h} query heads in {kv} GQA groups"), format!("注意力：{h} 个查询头，分成 {kv} 个 GQA 组")),
    };
    let mut detail = vec![format!("d_head = {}", c.d_head())];
    detail.extend(variant_notes(cx, ops));
    if ops.contains(&LayerOp::Rope) {
        detail.push(cx.tr("RoPE rotates q and k by position", "RoPE 按位置旋转 q 和 k").into());
    }
    detail.push(mask_text(arch.mask(layer), cx.lang));
    if arch.biases {
        detail.push(cx.tr("with biases", "带偏置").into());
    }
    b.block(ui, cx, title, detail.join("  ·  "), steps);
    heads_ui(ui, cx, h, c.group_size().max(1), scale);
}

/// How this family computes q, k and v unlike Llama: fused weights (Phi-3), biases (Qwen 2),
/// QK-norm per head (Gemma 3, Qwen 3) or over the whole width (OLMo 2), and a head width
/// that does not multiply back to d_model (Qwen 3).
fn variant_notes(cx: &ViewCtx<'_>, ops: &[LayerOp]) -> Vec<String> {
    let (c, arch) = (&cx.s.model.config, &cx.s.model.arch);
    let mut notes = Vec::new();
    if arch.fused_projections {
        let rows = c.q_dim() + 2 * c.kv_dim();
        notes.push(cx.lang.tf(
            format!("fused qkv_proj: one {rows} × {} weight, hooks q, k, v apart", c.d_model()),
            format!("融合的 qkv_proj：一个 {rows} × {} 权重，q、k、v 的钩子分开记录", c.d_model()),
        ));
    }
    if arch.qkv_bias {
        notes.push(cx.tr("q, k, v projections with biases (+ b)", "q、k、v 投影带偏置（+ b）").into());
    }
    if c.q_dim() != c.d_model() {
        notes.push(cx.lang.tf(
            format!("{} heads × {} = {} ≠ d_model {}", c.n_heads(), c.d_head(), c.q_dim(), c.d_model()),
            format!("{} 个头 × {} = {} ≠ d_model {}", c.n_heads(), c.d_head(), c.q_dim(), c.d_model()),
        ));
    }
    if ops.contains(&LayerOp::QkNorm) {
        let note = match (arch.qk_norm_whole, ops.contains(&LayerOp::Rope)) {
            (true, _) => cx.tr("QK-norm over the whole width: one RMSNorm across all heads of q, one of k", "整宽 QK-norm：q 的所有头一起做一次 RMSNorm，k 也一样"),
            (false, true) => cx.tr("QK-norm: RMSNorm on each head of q and k, before RoPE", "QK-norm：对 q、k 的每个头做 RMSNorm，在 RoPE 之前"),
            (false, false) => cx.tr("QK-norm: RMSNorm on each head of q and k", "QK-norm：对 q、k 的每个头做 RMSNorm"),
        };
        notes.push(note.into());
    }
    notes
}

/// What one layer's mask lets a query see, in words.
pub fn mask_text(mask: AttnMask, lang: Lang) -> String {
    match mask {
        AttnMask::Causal => lang.tr("causal mask", "因果掩码").into(),
        AttnMask::Sliding { window } => lang.tf(format!("local: sliding window {window} (the last {window} keys)"), format!("局部：滑动窗口 {window}（最近 {window} 个键）")),
        AttnMask::Bidirectional => lang.tr("two-way: no causal mask", "双向：没有因果掩码").into(),
    }
}

fn mlp_block_ui(ui: &mut Ui, cx: &ViewCtx<'_>, b: &Blocks, steps: &[(&str, Step)]) {
    let (c, arch) = (&cx.s.model.config, &cx.s.model.arch);
    let name = arch.mlp.name();
    let title = cx.lang.tf(format!("{name} MLP"), format!("{name} MLP"));
    let shape = match arch.mlp {
        MlpKind::SwiGlu | MlpKind::GeGlu => format!("{} → 2 × {} → {}", c.d_model(), c.d_mlp(), c.d_model()),
        MlpKind::Plain(_) => format!("{} → {} → {}", c.d_model(), c.d_mlp(), c.d_model()),
    };
    let mut detail = format!("{shape}  ·  {}", arch.mlp.post());
    if arch.fused_projections && arch.mlp.gated() {
        detail += &cx.lang.tf(
            format!("  ·  fused gate_up_proj: one {} × {} weight, hooks gate and up apart", 2 * c.d_mlp(), c.d_model()),
            format!("  ·  融合的 gate_up_proj：一个 {} × {} 权重，门（gate）与上投影（up）的钩子分开记录", 2 * c.d_mlp(), c.d_model()),
        );
    }
    b.block(ui, cx, title, detail, steps);
}

/// A norm or a residual add, labelled by where it sits.
fn single_op_ui(ui: &mut Ui, cx: &ViewCtx<'_>, b: &Blocks, layer: usize, op: LayerOp) {
    let arch = &cx.s.model.arch;
    let norm = norm_name(arch);
    let sandwich = arch.placement == NormPlacement::Sandwich;
    let after_only = arch.placement == NormPlacement::PostSublayer;
    let (title, detail) = match op {
        LayerOp::BlockIn => return,
        LayerOp::AttnPostNorm if after_only => (
            cx.lang.tf(format!("{norm} after attention (no pre-norm)"), format!("{norm}（注意力之后，没有前置归一化）")),
            cx.tr("x + RMSNorm(attn(x)): attention reads the residual stream itself", "x + RMSNorm(attn(x))：注意力直接读残差流").into(),
        ),
        LayerOp::MlpPostNorm if after_only => (
            cx.lang.tf(format!("{norm} after the MLP (no pre-norm)"), format!("{norm}（MLP 之后，没有前置归一化）")),
            cx.tr("x + RMSNorm(mlp(x)): the MLP reads the residual stream itself", "x + RMSNorm(mlp(x))：MLP 直接读残差流").into(),
        ),
        LayerOp::Ln1 if sandwich => (cx.lang.tf(format!("{norm} (pre-attention)"), format!("{norm}（注意力之前）")), cx.tr("sandwich: normed before and after attention", "三明治：注意力前后各一次归一化").into()),
        LayerOp::Ln1 => (cx.lang.tf(format!("{norm} (pre-norm)"), format!("{norm}（前置归一化）")), String::new()),
        LayerOp::AttnPostNorm => (cx.lang.tf(format!("{norm} (post-attention)"), format!("{norm}（注意力之后）")), cx.tr("the attention output is normed before the add", "注意力输出先归一化再相加").into()),
        LayerOp::Ln2 if sandwich => (cx.lang.tf(format!("{norm} (pre-MLP)"), format!("{norm}（MLP 之前）")), String::new()),
        LayerOp::Ln2 => (cx.lang.tf(format!("{norm} (pre-norm)"), format!("{norm}（前置归一化）")), String::new()),
        LayerOp::MlpPostNorm => (cx.lang.tf(format!("{norm} (post-MLP)"), format!("{norm}（MLP 之后）")), cx.tr("the MLP output is normed before the add", "MLP 输出先归一化再相加").into()),
        LayerOp::AttnAddNorm | LayerOp::MlpAddNorm => (
            cx.lang.tf(format!("⊕ add, then {norm} (post-norm)"), format!("⊕ 相加，再做 {norm}（后置归一化）")),
            cx.tr("the norm sits on the residual stream itself", "归一化作用在残差流本身上").into(),
        ),
        _ => (cx.tr("⊕ add to the residual stream", "⊕ 加回残差流").into(), String::new()),
    };
    b.block(ui, cx, title, detail, &[(op.name(), Step::Layer(layer, op))]);
}

/// After the blocks: the final norm (not BERT), BERT's MLM transform, logits, softmax.
fn head_ui(ui: &mut Ui, cx: &ViewCtx<'_>, b: &Blocks) {
    let (c, arch) = (&cx.s.model.config, &cx.s.model.arch);
    let has = |s: Step| cx.s.program.contains(&s);
    if has(Step::LnFinal) {
        let norm = norm_name(arch);
        b.block(ui, cx, cx.lang.tf(format!("Final {norm}"), format!("最终 {norm}")), String::new(), &[("ln_final", Step::LnFinal)]);
        b.arrow(ui, cx);
    }
    if has(Step::MlmTransform) {
        let title = cx.tr("MLM transform: dense → GELU → LayerNorm", "MLM 变换：全连接 → GELU → LayerNorm");
        b.block(ui, cx, title.into(), String::new(), &[("mlm_transform", Step::MlmTransform)]);
        b.arrow(ui, cx);
    }
    let tied = if c.tie_word_embeddings { cx.tr(" (tied to E)", "（与 E 共享）") } else { "" };
    b.block(ui, cx, "Logits".into(), format!("{} → {}{tied}", c.d_model(), c.vocab_size), &[("logits", Step::Logits)]);
    b.arrow(ui, cx);
    let title = if arch.generates() {
        cx.tr("Softmax → next token", "Softmax → 下一个词元")
    } else {
        cx.tr("Softmax → the word in each [MASK]", "Softmax → 每个 [MASK] 处的词")
    };
    let steps: Vec<(&str, Step)> = [("probs", Step::Probs), ("sample", Step::Sample)].into_iter().filter(|&(_, s)| has(s)).collect();
    b.block(ui, cx, title.into(), String::new(), &steps);
}

/// The query heads as squares colored by their K/V group, with the K/V heads below.
fn heads_ui(ui: &mut Ui, cx: &ViewCtx<'_>, n_heads: usize, group: usize, scale: f32) {
    let n_kv = n_heads.div_ceil(group);
    let w = ui.available_width();
    let (rect, _) = ui.allocate_exact_size(vec2(w, 44.0 * scale), Sense::hover());
    let painter = ui.painter_at(rect);
    let q_side = ((w - 20.0) / n_heads as f32 - 3.0).clamp(4.0, 18.0 * scale);
    let qx = |h: usize| rect.center().x + (h as f32 - (n_heads as f32 - 1.0) / 2.0) * (q_side + 3.0);
    let kx = |g: usize| {
        let first = g * group;
        let last = (first + group - 1).min(n_heads - 1);
        (qx(first) + qx(last)) / 2.0
    };
    for h in 0..n_heads {
        let color = cx.theme.group_color(h / group);
        let r = egui::Rect::from_center_size(egui::pos2(qx(h), rect.min.y + q_side / 2.0 + 2.0), vec2(q_side, q_side));
        painter.rect_filled(r, 2.0, color);
        if h == cx.s.sel.head {
            painter.rect_stroke(r, 2.0, Stroke::new(2.0, cx.theme.highlight()), egui::StrokeKind::Outside);
        }
        painter.line_segment([egui::pos2(qx(h), r.max.y), egui::pos2(kx(h / group), rect.max.y - 10.0)], Stroke::new(1.0, color));
    }
    for g in 0..n_kv {
        let r = egui::Rect::from_center_size(egui::pos2(kx(g), rect.max.y - 6.0), vec2(q_side * 1.6, 10.0));
        let fill = cx.theme.group_color(g);
        painter.rect_filled(r, 2.0, fill);
        painter.text(r.center(), egui::Align2::CENTER_CENTER, "KV", egui::FontId::proportional(crate::gui::theme::font_px(ui, 8.0)), cx.theme.text_on(fill));
    }
}
