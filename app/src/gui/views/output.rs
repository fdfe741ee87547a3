//! Output: the final norm, the logits and the softmax for the token after the selected
//! position; temperature, top-k and top-p recompute the distribution live (the engine's
//! `sampling::distribution`, the one sampling draws from); sample or generate and watch the
//! KV cache grow.

use egui::{RichText, Sense, Slider, Ui, pos2, vec2};
use glassbox_engine::experiments::analysis::{self, Ranked};
use glassbox_engine::exec::sampling::{self, SamplingParams};
use glassbox_engine::{HookKey, Step};

use super::{Request, ViewCtx, fmt_val, missing_ui, title_ui, visible};
use crate::gui::export::Figure;
use crate::gui::heatmap::key_of;

mod fill_in;

const SHOWN: usize = 15;

/// The two distributions on screen, cached by what they depend on.
#[derive(Default)]
pub struct OutputView {
    cache_key: Option<u64>,
    /// softmax(logits / T), top entries.
    pub softmax: Vec<Ranked>,
    /// What sampling draws from after top-k / top-p, renormalized (top entries).
    pub sampling: Vec<(u32, f32)>,
    /// How many tokens survive top-k / top-p.
    pub kept: usize,
    pub generate_n: usize,
}

fn params_key(p: &SamplingParams) -> (u32, usize, u32) {
    (p.temperature.to_bits(), p.top_k, p.top_p.to_bits())
}

impl OutputView {
    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if self.generate_n == 0 {
            self.generate_n = 20;
        }
        title_ui(ui, cx, &output_title(cx), &[HookKey::Logits, HookKey::Probs]);
        if !cx.s.model.arch.generates() {
            // A masked LM fills blanks: no sampling, no generation.
            if !missing_ui(ui, cx, HookKey::Logits) {
                fill_in::fill_in_ui(ui, cx);
            }
            return;
        }
        self.controls_ui(ui, cx);
        ui.separator();
        if missing_ui(ui, cx, HookKey::Logits) {
            self.generate_ui(ui, cx);
            return;
        }
        let Some(tensor) = cx.s.trace.get_shared(HookKey::Logits).cloned() else { return };
        let Some(logits) = tensor.as_2d() else { return };
        let n = logits.nrows();
        let pos = cx.s.sel.position.min(n.saturating_sub(1));
        self.refresh(cx, &logits.row(pos).to_vec(), pos);
        position_line_ui(ui, cx, pos, n);
        self.distributions_ui(ui, cx);
        sampled_ui(ui, cx);
        ui.separator();
        self.generate_ui(ui, cx);
        if cx.export {
            self.export(cx, pos);
        }
    }

    /// The two distributions of `row` (the logits at `pos`), recomputed only when the pass,
    /// the position or the sampling settings change.
    fn refresh(&mut self, cx: &ViewCtx<'_>, row: &[f32], pos: usize) {
        let key = key_of((cx.s.trace_pass, pos, params_key(&cx.s.sampling)));
        if self.cache_key == Some(key) {
            return;
        }
        let t = if cx.s.sampling.temperature > 0.0 { cx.s.sampling.temperature } else { 1.0 };
        self.softmax = analysis::top_k(row, SHOWN, t);
        let dist = sampling::distribution(row, &cx.s.sampling);
        self.kept = dist.len();
        self.sampling = dist.into_iter().take(SHOWN).collect();
        self.cache_key = Some(key);
    }

    /// softmax(logits / T) beside what sampling draws from after top-k / top-p.
    fn distributions_ui(&self, ui: &mut Ui, cx: &ViewCtx<'_>) {
        let t = cx.s.sampling.temperature;
        let greedy = t <= 0.0;
        ui.columns(2, |cols| {
            let title = if greedy {
                cx.tr("softmax(logits) at T = 1 (greedy ignores T)", "softmax(logits)，T = 1（贪心解码不看 T）").to_string()
            } else {
                format!("softmax(logits / {t:.2})")
            };
            let entries: Vec<(u32, f32, Option<f32>)> = self.softmax.iter().map(|r| (r.id, r.prob, Some(r.logit))).collect();
            bars_ui(&mut cols[0], cx, &title, &entries);
            let title = if greedy {
                cx.tr("Greedy: always the top token", "贪心：总是选概率最高的词元").to_string()
            } else {
                cx.lang.tf(
                    format!("Sampled from: {} tokens kept by top-k / top-p, renormalized", self.kept),
                    format!("实际采样分布：top-k / top-p 保留 {} 个词元，重新归一化", self.kept),
                )
            };
            let entries: Vec<(u32, f32, Option<f32>)> = self.sampling.iter().map(|&(id, p)| (id, p, None)).collect();
            bars_ui(&mut cols[1], cx, &title, &entries);
        });
    }

    /// File → Export: the softmax bars.
    fn export(&self, cx: &mut ViewCtx<'_>, pos: usize) {
        let t = cx.s.sampling.temperature;
        let t = if t <= 0.0 { 1.0 } else { t };
        cx.requests.push(Request::Export(Figure::Bars {
            title: cx.lang.tf(format!("softmax at T={t:.2}, position {pos}"), format!("softmax，T={t:.2}，位置 {pos}")),
            labels: self.softmax.iter().map(|r| visible(&cx.s.token_text(r.id))).collect(),
            values: self.softmax.iter().map(|r| r.prob).collect(),
        }));
    }

    fn controls_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let s = &mut cx.s.sampling;
        ui.horizontal_wrapped(|ui| {
            ui.add(
                Slider::new(&mut s.temperature, 0.0..=2.0)
                    .step_by(0.01)
                    .text(cx.lang.tr("temperature", "温度")),
            );
            ui.add(
                Slider::new(&mut s.top_k, 0..=100)
                    .text(cx.lang.tr("top-k (0 = off)", "top-k（0 = 关闭）")),
            );
            ui.add(
                Slider::new(&mut s.top_p, 0.01..=1.0)
                    .step_by(0.01)
                    .text(cx.lang.tr("top-p (1 = off)", "top-p（1 = 关闭）")),
            );
        });
    }

    fn generate_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let c = &cx.s.model.config;
        let (n_layers, n_kv, d_head) = (c.n_layers(), c.n_kv_heads(), c.d_head());
        let per_token = n_layers * 2 * n_kv * d_head;
        ui.horizontal_wrapped(|ui| {
            let busy = cx.s.running;
            if ui.add_enabled(!busy, egui::Button::new(cx.tr("Sample one token", "采样一个词元"))).clicked() {
                cx.requests.push(Request::Generate(1));
            }
            let n_label = ui.label("N =");
            ui.add(egui::DragValue::new(&mut self.generate_n).range(1..=256)).labelled_by(n_label.id);
            if ui.add_enabled(!busy, egui::Button::new(cx.tr("Generate N", "生成 N 个"))).clicked() {
                cx.requests.push(Request::Generate(self.generate_n));
            }
            ui.label(cx.lang.tf(
                format!("KV cache: {} positions × {per_token} numbers ({n_layers} layers × K,V × {n_kv} heads × {d_head})", cx.s.cache_len),
                format!("KV 缓存：{} 个位置 × 每个位置 {per_token} 个数（{n_layers} 层 × K、V × {n_kv} 个头 × {d_head}）", cx.s.cache_len),
            ));
        });
        let generated: Vec<u32> =
            cx.s.generated
                .iter()
                .chain(&cx.s.streaming)
                .copied()
                .collect();
        if !generated.is_empty() {
            let text: String = generated.iter().map(|&id| cx.s.token_text(id)).collect();
            ui.label(RichText::new(cx.tr("Generated so far:", "已生成：")).strong());
            ui.label(RichText::new(text).size(crate::gui::theme::font_px(ui, 16.0)));
        }
        if cx.s.is_generating() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(cx.lang.tf(
                    format!("generating… {} new tokens", cx.s.streaming.len()),
                    format!("生成中……已生成 {} 个", cx.s.streaming.len()),
                ));
            });
        }
    }
}

/// "Next token after position p “tok”", and a button back to the last position.
fn position_line_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, pos: usize, n: usize) {
    let tok = cx.s.token_texts.get(pos).cloned().unwrap_or_default();
    let p_abs = cx.pos(pos);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(cx.lang.tf(
            format!("Next token after position {p_abs} “{}”", visible(&tok)),
            format!("位置 {p_abs}“{}” 之后的下一个词元", visible(&tok)),
        )).strong());
        if pos + 1 != n && ui.button(cx.tr("Last position", "最后一个位置")).clicked() {
            cx.s.sel.position = n - 1;
        }
    });
}

/// The token this pass sampled, once the sample step has run.
fn sampled_ui(ui: &mut Ui, cx: &ViewCtx<'_>) {
    let Some(id) = cx.s.trace.sampled.filter(|_| cx.s.step_ready(cx.s.index_of(Step::Sample))) else { return };
    let tok = visible(&cx.s.token_text(id));
    ui.label(RichText::new(cx.lang.tf(format!("This pass sampled: “{tok}” (id {id})"), format!("这次前向传播抽到：“{tok}”（id {id}）"))).strong().size(crate::gui::theme::font_px(ui, 16.0)));
}

/// "Output: final RMSNorm → logits → softmax → next token", with this family's parts.
fn output_title(cx: &ViewCtx<'_>) -> String {
    let norm = super::diagram::norm_name(&cx.s.model.arch);
    if !cx.s.model.arch.generates() {
        return cx.tr("Output: MLM transform → logits → softmax → fill in each [MASK]", "输出：MLM 变换 → logits → softmax → 填入每个 [MASK]").into();
    }
    cx.lang.tf(format!("Output: final {norm} → logits → softmax → next token"), format!("输出：最终 {norm} → logits → softmax → 下一个词元"))
}

/// Horizontal probability bars with the token, its probability (and logit).
fn bars_ui(ui: &mut Ui, cx: &ViewCtx<'_>, title: &str, entries: &[(u32, f32, Option<f32>)]) {
    ui.label(
        RichText::new(title)
            .strong()
            .text_style(egui::TextStyle::Body),
    );
    let w = ui.available_width();
    for &(id, p, logit) in entries {
        ui.horizontal(|ui| {
            let tok = super::super::heatmap::short_label(&visible(&cx.s.token_text(id)), 14);
            ui.add_sized(
                [110.0, 18.0],
                egui::Label::new(RichText::new(tok).monospace()).truncate(),
            );
            let (rect, resp) =
                ui.allocate_exact_size(vec2((w - 260.0).max(60.0), 16.0), Sense::hover());
            ui.painter().rect_filled(rect, 2.0, cx.theme.faint());
            let filled = egui::Rect::from_min_max(
                rect.min,
                pos2(rect.min.x + rect.width() * p.clamp(0.0, 1.0), rect.max.y),
            );
            ui.painter().rect_filled(filled, 2.0, cx.theme.accent());
            ui.label(RichText::new(format!("{p:.4}")).monospace());
            if let Some(l) = logit {
                resp.on_hover_text(format!("id {id} · logit {} · p {}", fmt_val(l), fmt_val(p)));
            }
        });
    }
}

/// The view's name in lessons, scripts and saved sessions.
pub const ID: super::ViewId = super::ViewId("output");

impl super::View for OutputView {
    fn id(&self) -> &'static str {
        ID.0
    }

    fn title(&self, lang: crate::gui::i18n::Lang) -> &'static str {
        lang.tr("Output", "输出")
    }

    fn explains(&self) -> &'static [glassbox_engine::program::op_table::OpView] {
        &[glassbox_engine::program::op_table::OpView::Output]
    }

    fn detail_needed(&self, s: &crate::gui::session::Session) -> Option<glassbox_engine::long::recompute::Detail> {
        Some(s.detail_for_view(true))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut super::ViewCtx<'_>) {
        OutputView::ui(self, ui, cx);
    }
}
