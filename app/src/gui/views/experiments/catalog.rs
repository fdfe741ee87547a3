//! The head catalog: previous-token, first-token (attention sink), induction and
//! duplicate-token scores of every head (engine `head_catalog`), as four layer × head grids
//! on the built-in probe (seeded random tokens, twice) or the prompt. A click opens that head
//! in the attention view, on the same tokens.

use egui::{RichText, Ui, vec2};
use glassbox_engine::experiments::head_catalog::{self, HeadScores};

use super::grid::{self, ScoreGrid};
use super::{Runner, ids_text, open_head, show_ids};
use crate::gui::heatmap::{CachedTexture, ColorScale, key_of};
use crate::gui::session::Session;
use crate::gui::theme::Colormap;
use crate::gui::views::{Request, ViewCtx, fmt_val, visible};
use crate::gui::worker::experiments::{Event, HeadsOutput, Job, Tokens};

pub struct CatalogState {
    /// The built-in probe (else the prompt).
    pub probe: bool,
    /// Length of each half of the probe, and its seed.
    pub probe_len: usize,
    pub seed: u64,
    pub runner: Runner,
    pub result: Option<HeadsOutput>,
    /// Where each grid's cells were drawn last frame (tests point at a head).
    pub cells: [Option<egui::Rect>; 4],
    serial: u64,
    textures: [CachedTexture; 4],
}

impl Default for CatalogState {
    fn default() -> Self {
        Self { probe: true, probe_len: 20, seed: 1, runner: Runner::default(), result: None, cells: [None; 4], serial: 0, textures: Default::default() }
    }
}

/// The four scores with their names.
pub fn kinds(s: &HeadScores) -> [(&'static str, &'static str, &Vec<Vec<f32>>); 4] {
    [
        ("previous-token", "前一个词元", &s.previous_token),
        ("first-token (attention sink)", "第一个词元（注意力汇聚点）", &s.first_token),
        ("induction", "归纳", &s.induction),
        ("duplicate-token", "重复词元", &s.duplicate),
    ]
}

impl CatalogState {
    pub fn run(&mut self, s: &mut Session) {
        let ids = if self.probe {
            head_catalog::probe_sequence(s.model.config.vocab_size, self.probe_len.max(2), self.seed)
        } else {
            match s.prompt_ids() {
                Ok(ids) => ids,
                Err(e) => return self.runner.fail(e),
            }
        };
        self.runner.start(s, Job::Heads { input: Tokens::Ids(ids) });
    }

    pub fn on_event(&mut self, event: Event, _s: &Session) {
        if let Some(Event::Heads(out)) = self.runner.on_event(event) {
            self.serial += 1;
            self.result = Some(*out);
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if !cx.presenting {
            ui.horizontal_wrapped(|ui| {
                ui.label(cx.tr("tokens:", "词元："));
                ui.radio_value(&mut self.probe, true, cx.tr("the built-in probe: random tokens, then the same again", "内置探针：随机词元，再重复一遍"));
                ui.add(egui::DragValue::new(&mut self.probe_len).range(4..=200).prefix(cx.tr("length ", "长度 ")));
                ui.add(egui::DragValue::new(&mut self.seed).prefix(cx.tr("seed ", "种子 ")));
                ui.radio_value(&mut self.probe, false, cx.tr("the prompt", "提示词"));
                if ui.add_enabled(!self.runner.busy(), egui::Button::new(RichText::new(cx.tr("Score every head", "给每个头打分")).strong())).clicked() {
                    self.run(cx.s);
                }
            });
            self.runner.ui(ui, cx);
        }
        let Some(out) = &self.result else {
            if !self.runner.busy() && !cx.presenting {
                ui.label(RichText::new(cx.tr(
                    "Four scores per head, read off its attention pattern: how much it looks at the previous token, at the first token, at the token after an earlier copy of the current one (induction), and at that earlier copy itself.",
                    "每个头四个分数，都从它的注意力模式读出：它看前一个词元多少，看第一个词元多少，看当前词元早先出现处的下一个词元多少（归纳），以及看那个早先出现处本身多少。",
                )).color(cx.theme.muted()));
            }
            return;
        };
        let shown: Vec<String> = out.ids.iter().take(24).map(|&id| visible(&cx.s.token_text(id))).collect();
        let more = if out.ids.len() > 24 { " …" } else { "" };
        ui.label(RichText::new(cx.lang.tf(
            format!("{} tokens: {}{more}", out.ids.len(), shown.join(" ")),
            format!("{} 个词元：{}{more}", out.ids.len(), shown.join(" ")),
        )).color(cx.theme.muted()));
        let (n_layers, n_heads) = (out.scores.induction.len(), out.scores.induction.first().map_or(0, Vec::len));
        let rows = grid::layer_labels(n_layers);
        let cols = grid::head_labels(n_heads);
        let scale = ColorScale::fixed(0.0, 1.0);
        let gap = ui.spacing().item_spacing.x * 2.0;
        let w = ((ui.available_width() - 3.0 * gap) / 4.0).max(140.0);
        let h = (ui.available_height() - 90.0).clamp(260.0, 620.0);
        let mut clicked = None;
        let mut hovered = None;
        ui.horizontal_top(|ui| {
            for (i, (en, zh, scores)) in kinds(&out.scores).into_iter().enumerate() {
                let values: Vec<f32> = scores.iter().flatten().copied().collect();
                let name = cx.tr(en, zh);
                let best = HeadScores::best(scores).map_or(String::new(), |(l, h, v)| cx.lang.tf(format!("\nbest: L{l}.H{h} ({v:.3})"), format!("\n最高：L{l}.H{h}（{v:.3}）")));
                let sg = ScoreGrid {
                    rows: n_layers,
                    cols: n_heads,
                    values: &values,
                    row_labels: &rows,
                    col_labels: &cols,
                    row_title: cx.tr("layer", "层"),
                    col_title: cx.tr("head", "头"),
                    map: Colormap::Viridis,
                    scale: &scale,
                    unit: cx.tr("score", "分数"),
                    marked: &[],
                };
                ui.vertical(|ui| {
                    ui.set_max_width(w);
                    ui.label(RichText::new(format!("{name}{best}")).strong());
                    let hm = grid::grid_ui(ui, &mut self.textures[i], "head-catalog", &sg, key_of((self.serial, i)), vec2(w, h), &cx.theme, cx.lang);
                    self.cells[i] = Some(hm.cells);
                    if let Some((l, hd)) = hm.clicked {
                        clicked = Some((l, hd));
                    }
                    if let Some((l, hd)) = hm.hovered {
                        hovered = Some(format!("{name} L{l}.H{hd} = {}", fmt_val(sg.get(l, hd))));
                    }
                    if cx.export {
                        cx.requests.push(Request::Export(sg.figure(format!("{name}{best}").replace('\n', " · "))));
                    }
                });
            }
        });
        let text = hovered.unwrap_or_else(|| cx.tr("Click a head to open its pattern on these tokens.", "点击一个头，在这些词元上打开它的注意力模式。").into());
        ui.label(RichText::new(text).monospace());
        if let Some((layer, head)) = clicked {
            let ids = out.ids.clone();
            let text = ids_text(cx.s, &ids);
            show_ids(cx, &ids, &text);
            open_head(cx, layer, head);
        }
    }
}
