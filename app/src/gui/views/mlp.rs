//! The SwiGLU MLP of one layer: gate, up and silu(gate)·up activations over positions ×
//! neurons, and the neurons that fire hardest for the selected token.

use egui::{RichText, Ui};
use glassbox_engine::{BlockHook, HookKey};

use super::{Request, ViewCtx, fmt_val, missing_ui, title_ui};
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, CachedTexture};
use crate::gui::theme::Colormap;

#[derive(Default)]
pub struct MlpView {
    tex: [CachedTexture; 3],
}

const HOOKS: [BlockHook; 3] = [
    BlockHook::MlpPre,
    BlockHook::MlpPreLinear,
    BlockHook::MlpPost,
];

impl MlpView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let layer = cx.s.view_layer();
        let keys: Vec<HookKey> = HOOKS
            .iter()
            .chain([&BlockHook::MlpOut])
            .map(|&h| HookKey::Block(layer, h))
            .collect();
        title_ui(
            ui,
            cx,
            &cx.lang.tf(
                format!("SwiGLU MLP · layer {layer}"),
                format!("SwiGLU 前馈网络（MLP）· 第 {layer} 层"),
            ),
            &keys,
        );
        ui.label(
            RichText::new("post = silu(gate) ⊙ up,   silu(x) = x · σ(x),   out = post · W_down^T")
                .monospace(),
        );
        ui.label(RichText::new(cx.tr(
            "Not ReLU: silu is smooth and lets small negative values through, and the up branch multiplies (gates) it.",
            "不是 ReLU：silu 是平滑的，允许小的负值通过，再与 up 分支逐元素相乘（门控）。",
        )).color(cx.theme.muted()));
        if missing_ui(ui, cx, keys[0]) {
            return;
        }
        let pos = cx.s.sel.position.min(cx.s.n_tokens().saturating_sub(1));
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical()
                .id_salt("mlp-maps")
                .show(&mut cols[0], |ui| {
                    for (i, (&hook, name)) in HOOKS
                        .iter()
                        .zip([
                            "gate  (mlp.hook_pre)",
                            "up  (mlp.hook_pre_linear)",
                            "silu(gate) ⊙ up  (mlp.hook_post)",
                        ])
                        .enumerate()
                    {
                        self.map_ui(ui, cx, i, HookKey::Block(layer, hook), name);
                    }
                });
            top_neurons_ui(&mut cols[1], cx, layer, pos);
        });
    }

    fn map_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, slot: usize, key: HookKey, name: &str) {
        ui.label(RichText::new(name).strong());
        let Some(t) = cx.s.trace.get(key).and_then(|t| t.as_2d()) else {
            ui.label(cx.tr("(not computed yet)", "（还没算到）"));
            return;
        };
        let (rows, cols) = (t.nrows(), t.ncols());
        // Not square: 1536 neurons × a few positions would be a hairline.
        let width = ui.available_width();
        let (hm, scale, labels) = super::positions_heatmap_ui(ui, cx, &mut self.tex[slot], key, t, width, 10.0, (50.0, 220.0));
        if let Some((r, c)) = hm.hovered {
            hm.response
                .clone()
                .on_hover_text(format!("{key}[{r}, neuron {c}] = {}", fmt_val(t[[r, c]])));
        }
        if let Some((r, c)) = hm.clicked {
            cx.s.sel.position = r;
            cx.s.sel.neuron = Some(c);
        }
        heatmap::legend_ui(ui, Colormap::Diverging, -scale, scale, "", &cx.theme);
        if cx.export && slot == 2 {
            cx.requests.push(Request::Export(Figure::Heatmap {
                title: key.to_string(),
                rows,
                cols,
                values: t.iter().copied().collect(),
                row_labels: labels.clone(),
                col_labels: Vec::new(),
                map: Colormap::Diverging,
                lo: -scale,
                hi: scale,
            }));
        }
    }
}

/// The neurons with the largest |silu(gate)·up| at `pos`: what this token's MLP mostly does.
fn top_neurons_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize, pos: usize) {
    let tok = cx.s.token_texts.get(pos).cloned().unwrap_or_default();
    ui.label(
        RichText::new(cx.lang.tf(
            format!("Strongest neurons at position {pos} “{tok}”"),
            format!("位置 {pos}“{tok}” 上最强的神经元"),
        ))
        .strong(),
    );
    let get = |h: BlockHook| {
        cx.s.trace
            .get(HookKey::Block(layer, h))
            .and_then(|t| t.as_2d())
            .filter(|t| pos < t.nrows())
            .map(|t| t.row(pos).to_vec())
    };
    let (Some(gate), Some(up), Some(post)) = (
        get(BlockHook::MlpPre),
        get(BlockHook::MlpPreLinear),
        get(BlockHook::MlpPost),
    ) else {
        ui.label(cx.tr(
            "(step to `silu_mul` to see them)",
            "（前进到 `silu_mul` 才能看到）",
        ));
        return;
    };
    let mut order: Vec<usize> = (0..post.len()).collect();
    order.sort_by(|&a, &b| post[b].abs().total_cmp(&post[a].abs()));
    let mut picked = None;
    egui::Grid::new("top-neurons")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for h in [cx.tr("neuron", "神经元"), "gate", "up", "post"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for &n in order.iter().take(15) {
                if ui
                    .selectable_label(cx.s.sel.neuron == Some(n), format!("#{n}"))
                    .clicked()
                {
                    picked = Some(n);
                }
                for v in [gate[n], up[n], post[n]] {
                    ui.label(RichText::new(fmt_val(v)).monospace());
                }
                ui.end_row();
            }
        });
    if picked.is_some() {
        cx.s.sel.neuron = picked;
    }
    if let Some(n) = cx.s.sel.neuron.filter(|&n| n < post.len()) {
        ui.separator();
        ui.label(
            RichText::new(cx.lang.tf(
                format!("Neuron #{n} over all positions (post)"),
                format!("神经元 #{n} 在所有位置上的激活（post）"),
            ))
            .strong(),
        );
        if let Some(t) =
            cx.s.trace
                .get(HookKey::Block(layer, BlockHook::MlpPost))
                .and_then(|t| t.as_2d())
        {
            for (i, v) in t.column(n).iter().enumerate() {
                let tok =
                    cx.s.token_texts
                        .get(i)
                        .map(|t| super::visible(t))
                        .unwrap_or_default();
                ui.label(RichText::new(format!("{i:>3} {tok:<12} {}", fmt_val(*v))).monospace());
            }
        }
    }
}
