//! "Step through one training step": the forward pass of the batch's first sequence (opened
//! in the existing views), its loss per position, the backward pass op by op with the
//! gradient tensors under their hook names, and the AdamW update of a chosen matrix as a
//! Δw heatmap. Every number is the engine's (`StepInspection`); this only draws them.

use egui::{RichText, Ui};
use egui_plot::{Bar, BarChart, Plot};
use glassbox_engine::train::backward::formula;
use glassbox_engine::{Dim, HookKey, LayerOp, Step, Tensor};
use ndarray::{Array2, Axis};

use crate::gui::heatmap::{self, Axes, CachedTexture, heatmap_ui, key_of};
use crate::gui::theme::Colormap;
use crate::gui::train_worker::Inspection;
use crate::gui::session::Gradients;
use crate::gui::views::{Request, ViewCtx, ViewId, fmt_val, max_abs};

#[derive(Default)]
pub struct StepThrough {
    insp: Option<Inspection>,
    serial: u64,
    /// Which backward step is shown (index into the backward program).
    pub backward_index: usize,
    /// The head shown for per-head gradients.
    pub head: usize,
    /// The matrix whose update is shown.
    pub matrix: String,
    textures: Vec<CachedTexture>,
    dw_texture: CachedTexture,
}

/// A gradient tensor as a 2-D grid: `[pos, x]` as is; per-head tensors sliced at `head`.
fn as_grid(t: &Tensor, head: usize) -> Option<(Array2<f32>, bool)> {
    match t.dims.as_slice() {
        [_, _] => Some((t.as_2d()?.to_owned(), t.dims[0] == Dim::Pos)),
        [Dim::Pos, _, _] => {
            let a = t.as_3d()?;
            let h = head.min(a.dim().1.saturating_sub(1));
            Some((a.index_axis(Axis(1), h).to_owned(), true))
        }
        [_, _, _] => {
            let a = t.as_3d()?;
            let h = head.min(a.dim().0.saturating_sub(1));
            Some((a.index_axis(Axis(0), h).to_owned(), true))
        }
        _ => None,
    }
}

impl StepThrough {
    pub fn set(&mut self, insp: Inspection) {
        if self.matrix.is_empty() || insp.step.before.get(&self.matrix).is_none() {
            self.matrix = insp
                .step
                .matrices()
                .into_iter()
                .find(|m| m.contains("q_proj"))
                .unwrap_or_default();
        }
        self.backward_index = 0;
        self.serial += 1;
        self.insp = Some(insp);
    }

    pub fn inspection(&self) -> Option<&Inspection> {
        self.insp.as_ref()
    }

    /// Returns true when the user asks for the next step to be laid open.
    /// `head`: the (layer, head) the views should show first.
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>, can_inspect: bool, head: Option<(usize, usize)>) -> bool {
        let asked = ui
            .add_enabled(can_inspect, egui::Button::new(cx.tr("Lay open the next training step", "展开下一个训练步")))
            .on_hover_text(cx.tr("Runs one step on the training thread and keeps everything it computed.", "在训练线程上运行一步，并保留它算出的一切。"))
            .clicked();
        let Some(insp) = &self.insp else {
            ui.label(RichText::new(cx.tr(
                "Start a run, then lay a step open: its forward pass, its loss, the backward pass op by op, and the AdamW update.",
                "先开始训练，再展开一步：它的前向传播、损失、逐个算子的反向传播，以及 AdamW 更新。",
            )).color(cx.theme.muted()));
            return asked;
        };
        let step = &insp.step;
        let labels: Vec<String> = step.tokens.iter().enumerate().map(|(i, t)| format!("{i} {}", super::displayable(ui, t))).collect();

        ui.label(RichText::new(cx.lang.tf(
            format!("1 · Forward: the first sequence of the batch of step {}", step.report.step),
            format!("1 · 前向传播：第 {} 步那一批数据中的第一条序列", step.report.step),
        )).strong());
        ui.label(RichText::new(labels.join("  ")).monospace());
        if ui.button(cx.tr("Show this forward pass in the views", "在各视图中显示这次前向传播")).clicked() {
            cx.requests.push(Request::OpenModel {
                dir: insp.dir.clone(),
                prompt: insp.prompt.clone(),
                note: cx.lang.tf(format!("weights before step {}", step.report.step), format!("第 {} 步之前的权重", step.report.step)),
                head,
                grads: None,
            });
        }

        let loss = &step.grads.loss;
        ui.label(RichText::new(cx.lang.tf(
            format!("2 · Loss: mean next-token cross-entropy {:.4} (each bar: −log p(next token))", loss.loss),
            format!("2 · 损失：下一个词元的 cross-entropy 平均值 {:.4}（每根柱子是 −log p(下一个词元)）", loss.loss),
        )).strong());
        Plot::new("step-loss").height(120.0).allow_scroll(false).allow_drag(false).x_axis_label(cx.tr("position", "位置")).show(ui, |p| {
            let bars = loss.per_position.iter().enumerate().map(|(i, &l)| Bar::new(i as f64, f64::from(l)).fill(cx.theme.series(0))).collect();
            p.add(BarChart::new(cx.tr("loss", "损失"), bars));
        });

        let recorded = &step.grads.recorded;
        ui.label(RichText::new(cx.tr("3 · Backward, op by op (the forward program in reverse)", "3 · 反向传播，一个算子一个算子（前向程序倒过来）")).strong());
        ui.horizontal(|ui| {
            if ui.button(cx.tr("Previous op", "上一个算子")).clicked() {
                self.backward_index = self.backward_index.saturating_sub(1);
            }
            if ui.button(cx.tr("Next op", "下一个算子")).clicked() {
                self.backward_index = (self.backward_index + 1).min(recorded.len().saturating_sub(1));
            }
            ui.add(egui::Slider::new(&mut self.backward_index, 0..=recorded.len().saturating_sub(1)).show_value(false));
            let n_heads = step.forward.get(HookKey::Block(0, glassbox_engine::BlockHook::Pattern)).map_or(1, |t| t.shape()[0]);
            ui.label(cx.tr("head", "头"));
            ui.add(egui::DragValue::new(&mut self.head).range(0..=n_heads.saturating_sub(1)));
        });
        if ui
            .button(RichText::new(cx.tr("Show the gradients in the views", "在各视图中显示梯度")).strong())
            .on_hover_text(cx.tr(
                "Opens this step's forward pass in the views, with ∂loss/∂… shown in place of each tensor; step backward op by op there.",
                "在各视图中打开这一步的前向传播，并用 ∂loss/∂… 代替每个张量显示；在那里可以逐个算子地反向前进。",
            ))
            .clicked()
        {
            // Where to open: this backward op, if its view draws tensors; else the
            // attention pattern of the layer the views show first.
            let layer = head.map_or(step.report.layer_grad_norms.len().saturating_sub(1), |(l, _)| l);
            let at = recorded
                .get(self.backward_index)
                .map(|(s, _)| *s)
                .filter(|s| ViewId::for_step(*s).is_some_and(ViewId::shows_gradients))
                .unwrap_or(Step::Layer(layer, LayerOp::Softmax));
            let grads = Gradients {
                trace: step.grads.hooks.clone(),
                analysis: Some(insp.grad_analysis.clone()),
                recorded: recorded.clone(),
                loss: step.grads.loss.loss,
                train_step: step.report.step,
                on: true,
            };
            cx.requests.push(Request::OpenModel {
                dir: insp.dir.clone(),
                prompt: insp.prompt.clone(),
                note: cx.lang.tf(
                    format!("weights before step {} with its gradients", step.report.step),
                    format!("第 {} 步之前的权重及其梯度", step.report.step),
                ),
                head,
                grads: Some((Box::new(grads), at)),
            });
        }
        if let Some((fwd_step, keys)) = recorded.get(self.backward_index) {
            ui.label(RichText::new(cx.lang.tf(
                format!("backward of `{fwd_step}` ({} of {})", self.backward_index + 1, recorded.len()),
                format!("`{fwd_step}` 的反向（第 {} 个，共 {} 个）", self.backward_index + 1, recorded.len()),
            )).monospace());
            ui.label(RichText::new(formula(*fwd_step)).monospace().color(cx.theme.accent()));
            if keys.is_empty() {
                ui.label(RichText::new(cx.tr("(this op records no new gradient tensor; it updates the running one)", "（这个算子不产生新的梯度张量，只更新正在传递的梯度）")).color(cx.theme.muted()));
            }
            self.textures.resize_with(keys.len().max(self.textures.len()), CachedTexture::default);
            for (slot, key) in keys.iter().enumerate() {
                let Some(t) = step.grads.hooks.get(*key) else { continue };
                let Some((grid, pos_rows)) = as_grid(t, self.head) else { continue };
                let scale = max_abs(grid.iter().copied());
                ui.label(RichText::new(format!("∂loss/∂ {key} {}  ·  max |g| = {}", t.dims_string(), fmt_val(scale))).monospace());
                let tex = self.textures[slot].get(ui.ctx(), &format!("grad-{slot}"), key_of((self.serial, self.backward_index, slot, self.head)), || {
                    heatmap::image(grid.nrows(), grid.ncols(), |r, c| Colormap::Diverging.signed(grid[[r, c]], scale))
                });
                let axes = Axes { row_labels: pos_rows.then_some(labels.as_slice()), square: false, ..Axes::default() };
                let size = egui::vec2(ui.available_width().min(900.0), (grid.nrows() as f32 * 14.0).clamp(80.0, 320.0));
                let hm = heatmap_ui(ui, tex, grid.nrows(), grid.ncols(), size, &axes, &cx.theme);
                if let Some((r, c)) = hm.hovered {
                    hm.response.on_hover_text(format!("[{r}, {c}] = {}", fmt_val(grid[[r, c]])));
                }
            }
        }

        ui.label(RichText::new(cx.tr("4 · AdamW update of one matrix: Δw = w after − w before", "4 · 一个矩阵的 AdamW 更新：Δw = 更新后的 w − 更新前的 w")).strong());
        ui.horizontal(|ui| {
            let label = ui.label(cx.tr("matrix:", "矩阵："));
            egui::ComboBox::from_id_salt("step-matrix")
                .selected_text(self.matrix.clone())
                .show_ui(ui, |ui| {
                    for m in step.matrices() {
                        ui.selectable_value(&mut self.matrix, m.clone(), m);
                    }
                })
                .response
                .labelled_by(label.id);
        });
        if let Some(dw) = step.delta(&self.matrix).and_then(|d| d.into_dimensionality::<ndarray::Ix2>().ok()) {
            let scale = max_abs(dw.iter().copied());
            ui.label(RichText::new(cx.lang.tf(
                format!("learning rate {:.2e} · max |Δw| = {} · {} × {}", step.report.lr, fmt_val(scale), dw.nrows(), dw.ncols()),
                format!("学习率 {:.2e} · 最大 |Δw| = {} · {} × {}", step.report.lr, fmt_val(scale), dw.nrows(), dw.ncols()),
            )).monospace());
            let tex = self.dw_texture.get(ui.ctx(), "delta-w", key_of((self.serial, &self.matrix)), || {
                heatmap::image(dw.nrows(), dw.ncols(), |r, c| Colormap::Diverging.signed(dw[[r, c]], scale))
            });
            let size = egui::vec2(ui.available_width().min(600.0), 260.0);
            let hm = heatmap_ui(ui, tex, dw.nrows(), dw.ncols(), size, &Axes { square: false, ..Axes::default() }, &cx.theme);
            if let Some((r, c)) = hm.hovered {
                hm.response.on_hover_text(format!("Δw[{r}, {c}] = {}", fmt_val(dw[[r, c]])));
            }
        }
        asked
    }
}
