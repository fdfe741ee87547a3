//! Direct logit attribution at the last position of the prompt: the target's logit (or a
//! logit difference) split into the embedding, every head and every MLP (engine
//! `attribution`). The largest components as bars, all of them as a layer × (heads + MLP)
//! grid; a click opens that head or MLP.

use egui::{Align2, FontId, Rect, RichText, Sense, Ui, pos2, vec2};
use glassbox_engine::experiments::attribution::Contribution;

use super::grid::{self, ScoreGrid};
use super::{Runner, ids_text, open_head, open_mlp, show_ids};
use crate::gui::export::{Figure, bar_span};
use crate::gui::heatmap::CachedTexture;
use crate::gui::session::Session;
use crate::gui::theme::Colormap;
use crate::gui::views::{Request, ViewCtx, fmt_val, visible};
use crate::gui::worker::experiments::{DlaOutput, Event, Job, Tokens};

/// Bars shown: the components with the largest |value|.
const BARS: usize = 16;

#[derive(Default)]
pub struct DlaState {
    /// Empty: the model's own top-1 token.
    pub target: String,
    /// Empty: the plain logit; else logit[target] − logit[minus].
    pub minus: String,
    pub runner: Runner,
    pub result: Option<DlaOutput>,
    serial: u64,
    tex: CachedTexture,
}

impl DlaState {
    pub fn run(&mut self, s: &mut Session) {
        let ids = match s.prompt_ids() {
            Ok(ids) => ids,
            Err(e) => return self.runner.fail(e),
        };
        let some = |t: &str| (!t.is_empty()).then(|| t.to_string());
        self.runner.start(s, Job::Attribute { prompt: Tokens::Ids(ids), target: some(&self.target), minus: some(&self.minus) });
    }

    pub fn on_event(&mut self, event: Event) {
        if let Some(Event::Attributed(out)) = self.runner.on_event(event) {
            self.serial += 1;
            self.result = Some(*out);
        }
    }

    /// The components by |value|, largest first.
    pub fn ranked(&self) -> Vec<&Contribution> {
        let mut r: Vec<&Contribution> = self.result.iter().flat_map(|o| &o.attribution.components).collect();
        r.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
        r
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if !cx.presenting {
            ui.horizontal_wrapped(|ui| {
                let l = ui.label(cx.tr("target token", "目标词元"));
                ui.add(egui::TextEdit::singleline(&mut self.target).desired_width(110.0).hint_text(cx.tr("top-1", "第一名"))).labelled_by(l.id);
                let l = ui.label(cx.tr("minus token (optional)", "减去的词元（可选）"));
                ui.add(egui::TextEdit::singleline(&mut self.minus).desired_width(110.0)).labelled_by(l.id);
                let prompt = cx.s.prompt.replace('\n', "⏎");
                ui.label(RichText::new(cx.lang.tf(format!("on: {prompt}"), format!("提示词：{prompt}"))).color(cx.theme.muted()));
                if ui.add_enabled(!self.runner.busy(), egui::Button::new(RichText::new(cx.tr("Attribute", "归因")).strong())).clicked() {
                    self.run(cx.s);
                }
            });
            self.runner.ui(ui, cx);
        }
        let Some(out) = &self.result else {
            if !self.runner.busy() && !cx.presenting {
                ui.label(RichText::new(cx.tr(
                    "The last position's residual stream is the sum of the embedding and of everything each head and each MLP wrote. With the norms' scales held fixed (the final norm's, and Gemma's norms after each sublayer), the logit splits into one share per part.",
                    "最后位置的残差流等于嵌入加上每个头和每个 MLP 写入的内容之和。把各个归一化的缩放固定住（最后的归一化，以及 Gemma 每个子层之后的归一化），logit 就可以拆成每个部件的一份。",
                )).color(cx.theme.muted()));
            }
            return;
        };
        let a = &out.attribution;
        let tok = |id: u32| visible(&cx.s.token_text(id));
        let what = match a.minus {
            Some(m) => format!("logit[{}] − logit[{}]", tok(a.target), tok(m)),
            None => format!("logit[{}]", tok(a.target)),
        };
        let embed = a.components.first().map_or(0.0, |c| c.value);
        ui.label(RichText::new(cx.lang.tf(
            format!("{what} = {:.4} · the components sum to {:.4} (embedding {:+.4})", a.logit, a.sum(), embed),
            format!("{what} = {:.4} · 各部件之和 = {:.4}（嵌入 {:+.4}）", a.logit, a.sum(), embed),
        )).strong());
        let top: Vec<String> = out.top.iter().map(|r| format!("{} {:.3}", tok(r.id), r.prob)).collect();
        ui.label(RichText::new(cx.lang.tf(format!("the model's top 5: {}", top.join(" · ")), format!("模型的前 5 名：{}", top.join(" · ")))).color(cx.theme.muted()));
        ui.separator();
        let ranked: Vec<Contribution> = self.ranked().into_iter().take(BARS).cloned().collect();
        let wide = ui.available_width() > 900.0;
        let mut open = None;
        if wide {
            ui.horizontal_top(|ui| {
                let w = ui.available_width() * 0.42;
                ui.vertical(|ui| {
                    ui.set_max_width(w);
                    open = open.or(bars_ui(ui, cx, &ranked, w));
                });
                ui.separator();
                ui.vertical(|ui| open = open.or(self.grid_ui(ui, cx)));
            });
        } else {
            open = bars_ui(ui, cx, &ranked, ui.available_width());
            open = open.or(self.grid_ui(ui, cx));
        }
        if open.is_some()
            && let Some(out) = &self.result
        {
            let ids = out.ids.clone();
            show_ids(cx, &ids, &ids_text(cx.s, &ids));
        }
        match open {
            Some((layer, Some(head))) => open_head(cx, layer, head),
            Some((layer, None)) => open_mlp(cx, layer),
            None => {}
        }
        if cx.export {
            cx.requests.push(Request::Export(Figure::Bars {
                title: format!("{what} · DLA"),
                labels: ranked.iter().map(|c| c.name.clone()).collect(),
                values: ranked.iter().map(|c| c.value).collect(),
            }));
        }
    }

    /// Layers × (heads, then the MLP). Returns a clicked (layer, head or MLP).
    fn grid_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) -> Option<(usize, Option<usize>)> {
        let out = self.result.as_ref()?;
        let (n_layers, n_heads) = (cx.s.n_layers(), cx.s.model.config.n_heads());
        let cols = n_heads + 1;
        let mut values = vec![f32::NAN; n_layers * cols];
        for c in &out.attribution.components {
            if let Some(l) = c.layer.filter(|&l| l < n_layers) {
                values[l * cols + c.head.unwrap_or(n_heads)] = c.value;
            }
        }
        let rows = grid::layer_labels(n_layers);
        let mut col_labels = grid::head_labels(n_heads);
        col_labels.push("MLP".into());
        let scale = grid::symmetric_scale(&values, 1e-6);
        let sg = ScoreGrid {
            rows: n_layers,
            cols,
            values: &values,
            row_labels: &rows,
            col_labels: &col_labels,
            row_title: cx.tr("layer", "层"),
            col_title: cx.tr("head · MLP", "头 · MLP"),
            map: Colormap::Diverging,
            scale: &scale,
            unit: cx.tr("share of the logit", "对 logit 的贡献"),
            marked: &[],
        };
        let w = ui.available_width().min(520.0);
        let h = (ui.available_height() - 70.0).clamp(260.0, 640.0);
        let hm = grid::grid_ui(ui, &mut self.tex, "dla-grid", &sg, self.serial, vec2(w, h), &cx.theme, cx.lang);
        let text = match hm.hovered {
            Some((r, c)) => format!("{}{} = {}", rows[r], if c == n_heads { ".mlp".to_string() } else { format!(".H{c}") }, fmt_val(sg.get(r, c))),
            None => cx.tr("Click a cell to open that head or MLP.", "点击格子，打开那个头或 MLP。").into(),
        };
        ui.label(RichText::new(text).monospace());
        if cx.export {
            cx.requests.push(Request::Export(sg.figure(cx.tr("Direct logit attribution per head and MLP", "每个头和 MLP 的直接 logit 归因").into())));
        }
        hm.clicked.map(|(r, c)| (r, (c < n_heads).then_some(c)))
    }
}

/// Horizontal bars from a zero line (negative values point left), largest |value| first;
/// each row is a button named "L23.H4 +3.0076". Returns a clicked (layer, head or MLP).
fn bars_ui(ui: &mut Ui, cx: &ViewCtx<'_>, ranked: &[Contribution], width: f32) -> Option<(usize, Option<usize>)> {
    ui.label(RichText::new(cx.lang.tf(format!("The {} largest components", ranked.len()), format!("最大的 {} 个部件", ranked.len()))).strong());
    let finite = || ranked.iter().map(|c| c.value).filter(|v| v.is_finite());
    let (min, max) = (finite().fold(0.0f32, f32::min), finite().fold(0.0f32, f32::max));
    let px = ui.style().text_styles.get(&egui::TextStyle::Body).map_or(14.0, |f| f.size);
    // Room for "L29.H8" and "+3.0076" at whatever size the text is.
    let (row_h, label_w, value_w) = (px + 8.0, px * 4.7, px * 4.7);
    let span = (width - label_w - value_w).max(60.0);
    let mut clicked = None;
    for c in ranked {
        let (rect, resp) = ui.allocate_exact_size(vec2(width, row_h), Sense::click());
        let name = format!("{} {:+.4}", c.name, c.value);
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
        let p = ui.painter_at(rect);
        let font = FontId::proportional(px);
        p.text(pos2(rect.min.x + label_w - 6.0, rect.center().y), Align2::RIGHT_CENTER, &c.name, font.clone(), cx.theme.text());
        let (a, b) = bar_span(c.value, min, max, span);
        let x0 = rect.min.x + label_w;
        let bar = Rect::from_min_max(pos2(x0 + a as f32, rect.min.y + 3.0), pos2(x0 + (b as f32).max(a as f32 + 1.0), rect.max.y - 3.0));
        let color = if c.value < 0.0 { Colormap::Diverging.at(0.15) } else { Colormap::Diverging.at(0.85) };
        p.rect_filled(bar, 2.0, color);
        let zero = x0 + bar_span(0.0, min, max, span).0 as f32;
        p.line_segment([pos2(zero, rect.min.y), pos2(zero, rect.max.y)], egui::Stroke::new(1.0, cx.theme.muted()));
        p.text(pos2(x0 + span + 6.0, rect.center().y), Align2::LEFT_CENTER, format!("{:+.3}", c.value), font, cx.theme.text());
        if resp.hovered() {
            p.rect_stroke(rect, 0.0, egui::Stroke::new(1.0, cx.theme.highlight()), egui::StrokeKind::Inside);
        }
        if resp.clicked()
            && let Some(l) = c.layer
        {
            clicked = Some((l, c.head));
        }
    }
    clicked
}
