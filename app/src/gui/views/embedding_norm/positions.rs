//! What happens to a token's row of E before the first block, by family: Gemma multiplies it
//! by √d_model; GPT-2 adds a learned position row; BERT adds a position row and a token-type
//! row, then LayerNorms the sum; Llama adds nothing (RoPE acts inside attention). Every
//! vector is read from the trace.

use egui::{RichText, Ui};
use glassbox_engine::load::arch::Positions;
use glassbox_engine::{BlockHook, HookKey};

use super::{grid_cols, max_abs, row2};
use crate::gui::heatmap::vector_grid_ui;
use crate::gui::theme::Colormap;
use crate::gui::views::{ViewCtx, fmt_val};

pub(super) fn after_embedding_ui(ui: &mut Ui, cx: &ViewCtx<'_>, pos: usize) {
    let arch = &cx.s.model.arch;
    if let Some(s) = arch.embed_scale {
        scale_ui(ui, cx, pos, s);
    }
    if let Positions::Learned { token_types } = arch.positions {
        learned_ui(ui, cx, pos, token_types);
    } else if arch.embed_scale.is_none() {
        ui.label(RichText::new(cx.tr(
            "Nothing is added for the position here: RoPE rotates q and k inside attention instead.",
            "这里不加任何位置信息：位置由注意力里的 RoPE 旋转 q 和 k 来表示。",
        )).color(cx.theme.muted()));
    }
}

/// Gemma: × √d_model, and the scaled vector the first block receives.
fn scale_ui(ui: &mut Ui, cx: &ViewCtx<'_>, pos: usize, s: f32) {
    let d = cx.s.model.config.d_model();
    ui.separator();
    ui.label(RichText::new(cx.lang.tf(
        format!("× √{d} = {s:.4}: Gemma scales the embedding up, so it is not small next to what the blocks add"),
        format!("× √{d} = {s:.4}：Gemma 把嵌入放大，使它相对于各层加上的内容不至于太小"),
    )).strong());
    let key = HookKey::Block(0, BlockHook::ResidPre);
    vector_ui(ui, cx, key, pos, cx.tr("the scaled vector, blocks.0.hook_resid_pre", "放大后的向量，blocks.0.hook_resid_pre"));
}

/// GPT-2 and BERT: the position row (and token-type row) added, and where the sum goes.
fn learned_ui(ui: &mut Ui, cx: &ViewCtx<'_>, pos: usize, token_types: bool) {
    ui.separator();
    let p_abs = cx.pos(pos);
    ui.label(RichText::new(cx.lang.tf(
        format!("+ learned position embedding: row {p_abs} of P (one learned vector per position, up to {})", cx.s.model.config.max_position_embeddings),
        format!("+ 可学习的位置嵌入：P 的第 {p_abs} 行（每个位置一个学到的向量，最多 {} 个）", cx.s.model.config.max_position_embeddings),
    )).strong());
    vector_ui(ui, cx, HookKey::PosEmbed, pos, "hook_pos_embed");
    if token_types {
        ui.label(RichText::new(cx.tr("+ token-type embedding (segment A: type 0)", "+ 词元类型嵌入（句段 A：类型 0）")).strong());
        vector_ui(ui, cx, HookKey::TokenTypeEmbed, pos, "hook_token_type_embed");
        ui.label(RichText::new(cx.tr(
            "The sum goes through a LayerNorm (embed_ln) before the first block.",
            "三者之和先经过一个 LayerNorm（embed_ln），再进入第一层。",
        )).color(cx.theme.muted()));
    } else {
        let key = HookKey::Block(0, BlockHook::ResidPre);
        vector_ui(ui, cx, key, pos, cx.tr("= token + position, blocks.0.hook_resid_pre", "= 词元 + 位置，blocks.0.hook_resid_pre"));
    }
}

/// One position's row of `key` as a grid, with the value under the pointer.
fn vector_ui(ui: &mut Ui, cx: &ViewCtx<'_>, key: HookKey, pos: usize, title: &str) {
    let Some(v) = row2(cx, key, pos) else {
        ui.label(cx.lang.tf(format!("({key}: not computed yet)"), format!("（{key}：还没算到）")));
        return;
    };
    let scale = max_abs(v.iter().copied());
    ui.label(format!("{title}   max |·| = {}", fmt_val(scale)));
    let (resp, hovered) = vector_grid_ui(ui, &v, grid_cols(v.len()), 14.0, |x| Colormap::Diverging.signed(x, scale), None, &cx.theme);
    if let Some(i) = hovered {
        resp.on_hover_text(format!("{}{key}[{pos}, {i}] = {}", cx.d(), fmt_val(v[i])));
    }
}
