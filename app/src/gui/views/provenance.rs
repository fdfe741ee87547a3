//! Provenance of one attention weight: the rotated query and key vectors, their scaled dot
//! product as the model recorded it, the causal mask, the softmax row it sits in, and the
//! K/V head (with its value vector) that the query head reads. All values come from the trace.

use egui::{RichText, Sense, Stroke, Ui, pos2, vec2};
use glassbox_engine::{BlockHook, HookKey};

use super::{ViewCtx, fmt_val, max_abs, visible};
use crate::gui::heatmap::vector_grid_ui;
use crate::gui::theme::Colormap;

/// `t[a, b, :]` of a 3-D tensor.
fn row3(cx: &ViewCtx<'_>, key: HookKey, a: usize, b: usize) -> Option<Vec<f32>> {
    let t = cx.s.trace.get(key)?.as_3d()?;
    (a < t.shape()[0] && b < t.shape()[1]).then(|| t.slice(ndarray::s![a, b, ..]).to_vec())
}

fn vector_ui(ui: &mut Ui, cx: &ViewCtx<'_>, label: String, key: HookKey, values: &[f32]) {
    ui.label(RichText::new(label).strong());
    let scale = max_abs(values.iter().copied());
    // Two rows of d_head/2: dimension i sits above its RoPE partner i + d_head/2.
    let cols = values.len().div_ceil(2).max(1);
    let cell = ((ui.available_width() - 10.0) / cols as f32).clamp(4.0, 14.0);
    let (resp, hovered) = vector_grid_ui(
        ui,
        values,
        cols,
        cell,
        |v| Colormap::Diverging.signed(v, scale),
        None,
        &cx.theme,
    );
    if let Some(i) = hovered {
        resp.on_hover_text(format!("{key}[…, {i}] = {}", fmt_val(values[i])));
    }
}

pub fn provenance_ui(ui: &mut Ui, cx: &ViewCtx<'_>, layer: usize, head: usize) {
    ui.heading(cx.tr("Where this weight comes from", "这个权重从哪里来"));
    let Some(k) = cx.s.sel.key_position else {
        ui.label(cx.tr(
            "Click a cell of the heatmap to trace it back to q and k.",
            "点击热力图中的一个格子，追溯它的 q 和 k。",
        ));
        return;
    };
    let c = &cx.s.model.config;
    let q = cx.s.sel.position;
    let g = c.kv_head_of(head);
    let group = c.group_size().max(1);
    let d = c.d_head();
    let tok = |i: usize| {
        cx.s.token_texts
            .get(i)
            .map(|t| visible(t))
            .unwrap_or_default()
    };
    ui.label(cx.lang.tf(
        format!(
            "Layer {layer} · query head {head} · query position {} “{}” → key position {} “{}”",
            cx.pos(q),
            tok(q),
            cx.pos(k),
            tok(k)
        ),
        format!(
            "第 {layer} 层 · 查询头 {head} · 查询位置 {}“{}” → 键位置 {}“{}”",
            cx.pos(q),
            tok(q),
            cx.pos(k),
            tok(k)
        ),
    ));
    ui.label(
        RichText::new(cx.lang.tf(
            format!(
                "Grouped-query attention: head {head} reads K/V head {g}, which heads {}–{} share.",
                g * group,
                g * group + group - 1
            ),
            format!(
                "分组查询注意力（GQA）：头 {head} 读取 K/V 头 {g}，头 {}–{} 共用它。",
                g * group,
                g * group + group - 1
            ),
        ))
        .color(cx.theme.group_color(g)),
    );
    ui.add_space(4.0);

    let rot_q = HookKey::Block(layer, BlockHook::RotQ);
    let rot_k = HookKey::Block(layer, BlockHook::RotK);
    if let Some(qv) = row3(cx, rot_q, q, head) {
        vector_ui(
            ui,
            cx,
            cx.lang.tf(
                format!("① q (after RoPE), position {}, head {head}", cx.pos(q)),
                format!("① q（RoPE 之后），位置 {}，头 {head}", cx.pos(q)),
            ),
            rot_q,
            &qv,
        );
    }
    if let Some(kv) = row3(cx, rot_k, k, g) {
        vector_ui(
            ui,
            cx,
            cx.lang.tf(
                format!("② k (after RoPE), position {}, K/V head {g}", cx.pos(k)),
                format!("② k（RoPE 之后），位置 {}，K/V 头 {g}", cx.pos(k)),
            ),
            rot_k,
            &kv,
        );
    }

    let raw = row3(cx, HookKey::Block(layer, BlockHook::RawScores), head, q)
        .and_then(|r| r.get(k).copied());
    let sqrt_d = (d as f32).sqrt();
    ui.add_space(4.0);
    ui.label(RichText::new(cx.tr("③ dot product and scale", "③ 点积与缩放")).strong());
    match raw {
        Some(s) => {
            ui.label(
                RichText::new(format!(
                    "q·k / √{d} = {}   (attn.hook_raw_scores)",
                    fmt_val(s)
                ))
                .monospace(),
            );
            ui.label(
                RichText::new(format!(
                    "√{d} = {sqrt_d}  →  1/√{d} = {}   ⇒   q·k = {} × {sqrt_d} = {}",
                    fmt_val(1.0 / sqrt_d),
                    fmt_val(s),
                    fmt_val(s * sqrt_d)
                ))
                .monospace(),
            );
        }
        None => {
            ui.label(cx.tr(
                "(not computed yet: step to `scores`)",
                "（还没算到：请前进到 `scores`）",
            ));
        }
    }

    ui.label(RichText::new(cx.tr("④ causal mask", "④ 因果掩码")).strong());
    let masked = row3(cx, HookKey::Block(layer, BlockHook::AttnScores), head, q)
        .and_then(|r| r.get(k).copied());
    let future = k > q + cx.s.trace.pos_offset;
    ui.label(match (future, masked) {
        (true, _) => cx.lang.tf(
            format!(
                "key {k} is after query {q}: the score becomes −∞, so its weight is exactly 0."
            ),
            format!("键 {k} 在查询 {q} 之后：分数被设为 −∞，所以权重正好是 0。"),
        ),
        (false, Some(v)) => cx.lang.tf(
            format!("key {k} ≤ query {q}: visible, score stays {}", fmt_val(v)),
            format!("键 {k} ≤ 查询 {q}：可见，分数保持 {}", fmt_val(v)),
        ),
        (false, None) => cx
            .tr(
                "key is visible (mask not computed yet)",
                "键可见（掩码还没算到）",
            )
            .to_string(),
    });

    ui.label(
        RichText::new(cx.tr("⑤ softmax over this query's row", "⑤ 对这一行做 softmax")).strong(),
    );
    if let Some(row) = row3(cx, HookKey::Block(layer, BlockHook::Pattern), head, q) {
        softmax_row_ui(ui, cx, &row, k);
    } else {
        ui.label(cx.tr(
            "(not computed yet: step to `softmax`)",
            "（还没算到：请前进到 `softmax`）",
        ));
    }

    if let Some(v) = row3(cx, HookKey::Block(layer, BlockHook::V), k, g) {
        ui.add_space(4.0);
        vector_ui(
            ui,
            cx,
            cx.lang.tf(
                format!("⑥ v of key {k} (K/V head {g}): added to z with weight p"),
                format!("⑥ 键 {k} 的 v（K/V 头 {g}）：以权重 p 加入 z"),
            ),
            HookKey::Block(layer, BlockHook::V),
            &v,
        );
    }
}

/// Bars of one softmax row; the chosen key highlighted.
fn softmax_row_ui(ui: &mut Ui, cx: &ViewCtx<'_>, row: &[f32], k: usize) {
    let n = row.len().max(1);
    let w = ui.available_width().clamp(120.0, 420.0);
    let (rect, resp) = ui.allocate_exact_size(vec2(w, 70.0), Sense::hover());
    let painter = ui.painter_at(rect);
    let bw = w / n as f32;
    for (j, &p) in row.iter().enumerate() {
        let h = p.clamp(0.0, 1.0) * (rect.height() - 2.0);
        let x = rect.min.x + j as f32 * bw;
        let color = if j == k {
            cx.theme.highlight()
        } else {
            cx.theme.accent()
        };
        painter.rect_filled(
            egui::Rect::from_min_max(
                pos2(x, rect.max.y - h),
                pos2(x + (bw - 1.0).max(1.0), rect.max.y),
            ),
            0.0,
            color,
        );
    }
    painter.line_segment(
        [pos2(rect.min.x, rect.max.y), pos2(rect.max.x, rect.max.y)],
        Stroke::new(1.0, cx.theme.muted()),
    );
    if let Some(p) = resp.hover_pos() {
        let j = (((p.x - rect.min.x) / bw).floor() as usize).min(n - 1);
        resp.on_hover_text(format!("p[k = {j}] = {}", fmt_val(row[j])));
    }
    let sum: f32 = row.iter().sum();
    ui.label(
        RichText::new(format!(
            "p = {}    Σ p = {sum:.4}",
            row.get(k).map_or("–".into(), |v| fmt_val(*v))
        ))
        .monospace(),
    );
}
