//! The MLP of one layer as this family computes it (SwiGLU, GeGLU, or an ungated GELU/ReLU):
//! its recorded activations over positions × neurons, and the neurons that fire hardest for
//! the selected token; or (§1.3 of the article) the activation curves with this layer's real
//! values plotted on them (`activations`).

use egui::{RichText, Ui};
use glassbox_engine::load::arch::MlpKind;
use glassbox_engine::{BlockHook, HookKey};

use super::{Request, ViewCtx, fmt_val, missing_ui, title_ui};
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, CachedTexture, ScaleMode, ScaleOpts};
use crate::gui::theme::Colormap;

mod activations;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MlpMode {
    #[default]
    Heatmaps,
    /// ReLU vs SiLU / SwiGLU with the gate values of the current layer.
    Activations,
}

pub struct MlpView {
    pub mode: MlpMode,
    pub scale: ScaleOpts,
    tex: [CachedTexture; 3],
}

impl Default for MlpView {
    fn default() -> Self {
        Self {
            mode: MlpMode::default(),
            // A few neurons fire ~50× harder than the rest: robust keeps the others visible.
            scale: ScaleOpts::new(ScaleMode::Robust, false),
            tex: Default::default(),
        }
    }
}

/// The maps this family's MLP records, with their names: gate, up and post for a gated MLP
/// (SwiGLU, GeGLU); the first projection and its activation for an ungated one (GPT-2, BERT).
fn map_names(cx: &ViewCtx<'_>) -> Vec<(BlockHook, String)> {
    let mlp = cx.s.model.arch.mlp;
    let post = (BlockHook::MlpPost, format!("{}  (mlp.hook_post)", mlp.post()));
    if mlp.gated() {
        vec![
            (BlockHook::MlpPre, cx.tr("gate  (mlp.hook_pre)", "门控（mlp.hook_pre）").into()),
            (BlockHook::MlpPreLinear, cx.tr("up  (mlp.hook_pre_linear)", "上投影（mlp.hook_pre_linear）").into()),
            post,
        ]
    } else {
        vec![(BlockHook::MlpPre, cx.tr("W_in·x + b  (mlp.hook_pre)", "W_in·x + b（mlp.hook_pre）").into()), post]
    }
}

/// What this family's MLP computes, as the formula the engine runs.
fn formula_ui(ui: &mut Ui, cx: &ViewCtx<'_>) {
    let mlp = cx.s.model.arch.mlp;
    let (formula, note) = match mlp {
        MlpKind::SwiGlu => (
            "post = silu(gate) ⊙ up,   silu(x) = x · σ(x),   out = post · W_down^T".to_string(),
            cx.tr("Not ReLU: silu is smooth and lets small negative values through, and the up branch multiplies (gates) it.", "不是 ReLU：silu 是平滑的，允许小的负值通过，再与 up 分支逐元素相乘（门控）。"),
        ),
        MlpKind::GeGlu => (
            "post = gelu_tanh(gate) ⊙ up,   gelu_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))),   out = post · W_down^T".to_string(),
            cx.tr("GeGLU (Gemma): SwiGLU's shape with GELU (tanh approximation) in place of SiLU on the gate.", "GeGLU（Gemma）：结构与 SwiGLU 相同，只是门控上的 SiLU 换成了 GELU（tanh 近似）。"),
        ),
        MlpKind::Plain(act) => (
            format!("pre = W_in·x + b,   post = {}(pre),   out = post · W_out^T + b", act.name()),
            cx.tr("No gate: one projection up, the activation, one projection down, each with a bias (the original Transformer's MLP).", "没有门控：一次上投影、激活函数、一次下投影，每次都带偏置（原始 Transformer 的 MLP）。"),
        ),
    };
    ui.label(RichText::new(formula).monospace());
    if !cx.presenting {
        ui.label(RichText::new(note).color(cx.theme.muted()));
    }
}

impl MlpView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let layer = cx.s.view_layer();
        let keys: Vec<HookKey> = map_names(cx)
            .into_iter()
            .map(|(h, _)| h)
            .chain([BlockHook::MlpOut])
            .map(|h| HookKey::Block(layer, h))
            .collect();
        title_ui(
            ui,
            cx,
            &cx.lang.tf(
                format!("{} MLP · layer {layer}", cx.s.model.arch.mlp.name()),
                format!("{} MLP · 第 {layer} 层", cx.s.model.arch.mlp.name()),
            ),
            &keys,
        );
        ui.horizontal_wrapped(|ui| {
            for (m, en, zh) in [
                (MlpMode::Heatmaps, "Activations per neuron", "每个神经元的激活"),
                (
                    MlpMode::Activations,
                    activations::mode_label(cx.s.model.arch.mlp).0,
                    activations::mode_label(cx.s.model.arch.mlp).1,
                ),
            ] {
                ui.selectable_value(&mut self.mode, m, cx.tr(en, zh));
            }
        });
        formula_ui(ui, cx);
        if missing_ui(ui, cx, keys[0]) {
            return;
        }
        let pos = cx.s.sel.position.min(cx.s.n_tokens().saturating_sub(1));
        if self.mode == MlpMode::Activations {
            if !cx.activations_only_ui(ui) {
                activations::activations_ui(ui, cx, layer, pos);
            }
            return;
        }
        heatmap::scale_controls_ui(ui, &mut self.scale, true, cx.lang);
        // Three maps share the column's height, so the third is never cut off.
        let avail = ui.available_height();
        let n_maps = map_names(cx).len() as f32;
        // Each map has its name above and its colour bar below.
        let chrome = ui.text_style_height(&egui::TextStyle::Body) + heatmap::colorbar_height(ui) + 14.0;
        let each = ((avail - n_maps * chrome) / n_maps).clamp(36.0, 220.0);
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical()
                .id_salt("mlp-maps")
                .show(&mut cols[0], |ui| {
                    // The column's width, taken once: a wide colour-bar note would otherwise widen
                    // the scroll area, and each later map would spill over the neuron table.
                    let width = ui.available_width();
                    ui.set_max_width(width);
                    for (i, (hook, name)) in map_names(cx).into_iter().enumerate() {
                        self.map_ui(ui, cx, i, HookKey::Block(layer, hook), &name, [width, each]);
                    }
                });
            if !cx.activations_only_ui(&mut cols[1]) {
                top_neurons_ui(&mut cols[1], cx, layer, pos);
            }
        });
    }

    fn map_ui(
        &mut self,
        ui: &mut Ui,
        cx: &mut ViewCtx<'_>,
        slot: usize,
        key: HookKey,
        name: &str,
        [width, height]: [f32; 2],
    ) {
        ui.label(RichText::new(format!("{}{name}", cx.d())).strong());
        let Some(t) = cx.s.trace.get(key).and_then(|t| t.as_2d()) else {
            ui.label(cx.tr("(not computed yet)", "（还没算到）"));
            return;
        };
        let cols = t.ncols();
        // Not square: 1536 neurons × a few positions would be a hairline.
        let opts = self.scale;
        let (hm, scale, labels, first) = super::positions_heatmap_ui(
            ui,
            cx,
            &mut self.tex[slot],
            key,
            t,
            opts,
            width,
            10.0,
            (height.min(50.0), height),
        );
        if let Some((r, c)) = hm.hovered {
            let cx_lang = cx.lang;
            let d = cx.d();
            hm.response.clone().on_hover_text(cx_lang.tf(
                format!("{d}{key}[{}, neuron {c}] = {}", r + first, fmt_val(t[[r + first, c]])),
                format!("{d}{key}[{}，神经元 {c}] = {}", r + first, fmt_val(t[[r + first, c]])),
            ));
        }
        if let Some((r, c)) = hm.clicked {
            cx.s.sel.position = r + first;
            cx.s.sel.neuron = Some(c);
        }
        let note = scale.note(cx.lang == crate::gui::i18n::Lang::Zh, first > 0);
        let unit = if cx.grads() { "∂loss/∂" } else { cx.tr("activation", "激活值") };
        heatmap::colorbar_ui(ui, Colormap::Diverging, &scale, unit, &note, cx.lang, &cx.theme);
        if cx.export && key.kind() == glassbox_engine::HookKind::Block(BlockHook::MlpPost) {
            let rows = t.nrows() - first;
            cx.requests.push(Request::Export(Figure::Heatmap {
                title: key.to_string(),
                rows,
                cols,
                values: t.rows().into_iter().skip(first).flatten().copied().collect(),
                row_labels: labels.clone(),
                col_labels: Vec::new(),
                row_title: cx.tr("position", "位置").into(),
                col_title: cx.lang.tf(
                    format!("neuron (0 … {})", cols.saturating_sub(1)),
                    format!("神经元（0 … {}）", cols.saturating_sub(1)),
                ),
                map: Colormap::Diverging,
                scale,
                unit: cx.tr("activation", "激活值").into(),
            }));
        }
    }
}

/// A map's column head in the neuron table.
fn short_name(hook: BlockHook, gated: bool) -> &'static str {
    match hook {
        BlockHook::MlpPre if gated => "gate",
        BlockHook::MlpPre => "pre",
        BlockHook::MlpPreLinear => "up",
        _ => "post",
    }
}

/// The neurons with the largest |post| at `pos`: what this token's MLP mostly does.
fn top_neurons_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize, pos: usize) {
    let tok = cx.s.token_texts.get(pos).cloned().unwrap_or_default();
    let p_abs = cx.pos(pos);
    ui.label(
        RichText::new(cx.lang.tf(
            format!("Strongest neurons at position {p_abs} “{tok}”"),
            format!("位置 {p_abs}“{tok}” 上最强的神经元"),
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
    // Every map this family records at `pos` (gate, up, post; or pre, post).
    let maps: Vec<(&str, Option<Vec<f32>>)> = map_names(cx).into_iter().map(|(h, _)| (short_name(h, cx.s.model.arch.mlp.gated()), get(h))).collect();
    let Some(post) = maps.last().and_then(|(_, v)| v.clone()).filter(|_| maps.iter().all(|(_, v)| v.is_some())) else {
        let op = cx.s.block_ops().into_iter().find(|op| op.hooks().any(|h| h == BlockHook::MlpPost)).map_or("act", |op| op.name());
        ui.label(cx.lang.tf(format!("(step to `{op}` to see them)"), format!("（前进到 `{op}` 才能看到）")));
        return;
    };
    let mut order: Vec<usize> = (0..post.len()).collect();
    order.sort_by(|&a, &b| post[b].abs().total_cmp(&post[a].abs()));
    let mut picked = None;
    egui::Grid::new("top-neurons").striped(true).num_columns(maps.len() + 1).show(ui, |ui| {
        ui.label(RichText::new(cx.tr("neuron", "神经元")).strong());
        for (name, _) in &maps {
            ui.label(RichText::new(*name).strong());
        }
        ui.end_row();
        for &n in order.iter().take(15) {
            if ui.selectable_label(cx.s.sel.neuron == Some(n), format!("#{n}")).clicked() {
                picked = Some(n);
            }
            for v in maps.iter().filter_map(|(_, v)| v.as_ref()) {
                ui.label(RichText::new(fmt_val(v[n])).monospace());
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

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("mlp");

impl super::View for MlpView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("MLP", "MLP")
    }

    fn modes(&self) -> &'static [&'static str] {
        &["heatmaps", "activations"]
    }

    fn set_mode(&mut self, mode: &str) -> bool {
        match mode {
            "heatmaps" => self.mode = MlpMode::Heatmaps,
            "activations" => self.mode = MlpMode::Activations,
            _ => return false,
        }
        true
    }

    fn mode(&self) -> Option<&'static str> {
        Some(match self.mode {
            MlpMode::Heatmaps => "heatmaps",
            MlpMode::Activations => "activations",
        })
    }

    fn explains(&self) -> &'static [glassbox_engine::program::op_table::OpView] {
        &[glassbox_engine::program::op_table::OpView::Mlp]
    }

    fn shows_gradients(&self) -> bool {
        true
    }

    fn detail_needed(&self, s: &crate::gui::session::Session) -> Option<glassbox_engine::long::recompute::Detail> {
        Some(s.detail_for_view(false))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        MlpView::ui(self, ui, cx);
    }
}
