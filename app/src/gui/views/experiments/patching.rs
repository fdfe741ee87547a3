//! Activation patching, clean → corrupt: one grid per hook (layers × positions, or layers ×
//! heads for `z`), filling in cell by cell as the model thread patches, with progress and
//! Cancel. A click on a cell opens that layer, position or head of the clean run.

use egui::{RichText, Ui, vec2};
use glassbox_engine::experiments::patching::PatchHook;

use super::grid::{self, ScoreGrid};
use super::{Runner, ids_text, open_position, show_ids};
use crate::gui::heatmap::CachedTexture;
use crate::gui::session::Session;
use crate::gui::theme::Colormap;
use crate::gui::views::{Request, ViewCtx, fmt_val, visible};
use crate::gui::worker::experiments::{Event, Job, PatchBegun, Tokens};

/// One grid as it fills in.
pub struct GridResult {
    pub begun: PatchBegun,
    /// `rows × cols`, row-major; NaN = not patched yet.
    pub scores: Vec<f32>,
    pub done: usize,
    /// Passes and seconds from the job's start when this grid completed.
    pub finished: Option<(usize, f64)>,
}

pub struct PatchState {
    pub clean: String,
    pub corrupt: String,
    pub answer: String,
    pub wrong: String,
    pub hooks: Vec<PatchHook>,
    pub runner: Runner,
    pub grids: Vec<GridResult>,
    /// Where each grid's cells were drawn last frame (tests point at a cell).
    pub cells: Vec<egui::Rect>,
    serial: u64,
    textures: [CachedTexture; 4],
}

impl Default for PatchState {
    fn default() -> Self {
        Self {
            clean: "The capital of France is".into(),
            corrupt: "The capital of Italy is".into(),
            answer: " Paris".into(),
            wrong: " Rome".into(),
            hooks: vec![PatchHook::ResidPre],
            runner: Runner::default(),
            grids: Vec::new(),
            cells: Vec::new(),
            serial: 0,
            textures: Default::default(),
        }
    }
}

impl PatchState {
    pub fn run(&mut self, s: &mut Session) {
        self.grids.clear();
        self.serial += 1;
        let hooks: Vec<PatchHook> = PatchHook::ALL.into_iter().filter(|h| self.hooks.contains(h)).collect();
        self.runner.start(
            s,
            Job::Patch {
                clean: Tokens::Text(self.clean.clone()),
                corrupt: Tokens::Text(self.corrupt.clone()),
                answer: self.answer.clone(),
                wrong: self.wrong.clone(),
                hooks,
            },
        );
    }

    pub fn on_event(&mut self, event: Event) {
        match self.runner.on_event(event) {
            Some(Event::PatchBegun(begun)) => {
                let n = begun.rows * begun.cols;
                self.grids.push(GridResult { begun, scores: vec![f32::NAN; n], done: 0, finished: None });
            }
            Some(Event::PatchCell { hook, layer, column, score }) => {
                if let Some(g) = self.grids.iter_mut().find(|g| g.begun.hook == hook) {
                    let i = layer * g.begun.cols + column;
                    if let Some(cell) = g.scores.get_mut(i) {
                        *cell = score;
                        g.done += 1;
                    }
                }
            }
            Some(Event::PatchGridDone { hook, passes, seconds }) => {
                if let Some(g) = self.grids.iter_mut().find(|g| g.begun.hook == hook) {
                    g.finished = Some((passes, seconds));
                }
            }
            _ => {}
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if !cx.presenting {
            self.controls_ui(ui, cx);
            self.runner.ui(ui, cx);
        }
        let Some(first) = self.grids.first() else {
            if !self.runner.busy() && !cx.presenting {
                ui.label(RichText::new(cx.tr(
                    "Runs the corrupt prompt again and again, each time with one activation copied from the clean run, and measures how much of the clean answer comes back.",
                    "一次又一次地运行损坏的提示词，每次从干净运行中复制一个激活值，测量干净答案恢复了多少。",
                )).color(cx.theme.muted()));
            }
            return;
        };
        let b = &first.begun;
        ui.label(RichText::new(cx.lang.tf(
            format!(
                "score = (LD_patched − LD_corrupt) / (LD_clean − LD_corrupt), LD = logit[{a}] − logit[{w}] at the last position · clean LD {:.3} · corrupt LD {:.3} · 1 = the clean answer comes back, 0 = no effect",
                b.clean_ld,
                b.corrupt_ld,
                a = visible(&cx.s.token_text(b.answer)),
                w = visible(&cx.s.token_text(b.wrong)),
            ),
            format!(
                "分数 = (LD_修补 − LD_损坏) / (LD_干净 − LD_损坏)，LD = 最后位置的 logit[{a}] − logit[{w}] · 干净 LD {:.3} · 损坏 LD {:.3} · 1 = 干净答案完全恢复，0 = 没有作用",
                b.clean_ld,
                b.corrupt_ld,
                a = visible(&cx.s.token_text(b.answer)),
                w = visible(&cx.s.token_text(b.wrong)),
            ),
        )).color(cx.theme.muted()));
        for g in &self.grids {
            if let Some((passes, seconds)) = g.finished {
                let cells = g.scores.len();
                ui.label(cx.lang.tf(
                    format!("{}: {cells} cells, {passes} passes so far, {seconds:.2} s since the start", g.begun.hook.name()),
                    format!("{}：{cells} 个格子，累计 {passes} 次前向传播，自开始起 {seconds:.2} 秒", g.begun.hook.name()),
                ));
            }
        }
        self.grids_ui(ui, cx);
    }

    fn controls_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        egui::Grid::new("patch-inputs").num_columns(2).spacing(vec2(10.0, 4.0)).show(ui, |ui| {
            let l = ui.label(cx.tr("clean prompt", "干净的提示词"));
            ui.add(egui::TextEdit::singleline(&mut self.clean).desired_width(360.0)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label(cx.tr("corrupt prompt (same number of tokens)", "损坏的提示词（词元数相同）"));
            ui.add(egui::TextEdit::singleline(&mut self.corrupt).desired_width(360.0)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label(cx.tr("answer token (clean)", "答案词元（干净）"));
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(&mut self.answer).desired_width(100.0)).labelled_by(l.id);
                let l = ui.label(cx.tr("wrong token (corrupt)", "错误词元（损坏）"));
                ui.add(egui::TextEdit::singleline(&mut self.wrong).desired_width(100.0)).labelled_by(l.id);
            });
            ui.end_row();
        });
        ui.horizontal_wrapped(|ui| {
            ui.label(cx.tr("patch:", "修补："));
            for h in PatchHook::ALL {
                let mut on = self.hooks.contains(&h);
                if ui.checkbox(&mut on, h.name()).changed() {
                    self.hooks.retain(|&x| x != h);
                    if on {
                        self.hooks.push(h);
                    }
                }
            }
            ui.label(RichText::new(cx.tr("(z: per head, every position)", "（z：按头修补，所有位置）")).color(cx.theme.muted()));
            let run = ui.add_enabled(!self.runner.busy() && !self.hooks.is_empty(), egui::Button::new(RichText::new(cx.tr("Run the patching grid", "运行修补网格")).strong()));
            if run.clicked() {
                self.run(cx.s);
            }
        });
    }

    fn grids_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let n = self.grids.len();
        let gap = ui.spacing().item_spacing.x * 2.0;
        let w = ((ui.available_width() - gap * (n as f32 - 1.0)) / n as f32).clamp(160.0, 700.0);
        let h = (ui.available_height() - 80.0).clamp(260.0, 620.0);
        let mut clicked = None;
        let mut hovered = None;
        self.cells.clear();
        ui.horizontal_top(|ui| {
            for (i, g) in self.grids.iter().enumerate() {
                let b = &g.begun;
                let rows = grid::layer_labels(b.rows);
                let cols: Vec<String> = if b.hook == PatchHook::Z {
                    grid::head_labels(b.cols)
                } else {
                    (0..b.cols)
                        .map(|p| {
                            let (c, x) = (cx.s.token_text(b.clean[p]), cx.s.token_text(b.corrupt[p]));
                            if c == x { format!("{p} {}", visible(&c)) } else { format!("{p} {}→{}", visible(&c), visible(&x)) }
                        })
                        .collect()
                };
                let scale = grid::symmetric_scale(&g.scores, 1.0);
                let sg = ScoreGrid {
                    rows: b.rows,
                    cols: b.cols,
                    values: &g.scores,
                    row_labels: &rows,
                    col_labels: &cols,
                    row_title: cx.tr("layer", "层"),
                    col_title: if b.hook == PatchHook::Z { cx.tr("head", "头") } else { cx.tr("position", "位置") },
                    map: Colormap::Diverging,
                    scale: &scale,
                    unit: cx.tr("score", "分数"),
                    marked: &[],
                };
                ui.vertical(|ui| {
                    ui.set_max_width(w);
                    ui.label(RichText::new(format!("blocks.L.{}", b.hook.block_hook().name())).strong().monospace());
                    let Some(tex) = self.textures.get_mut(i) else { return };
                    let hm = grid::grid_ui(ui, tex, "patch-grid", &sg, crate::gui::heatmap::key_of((self.serial, i, g.done)), vec2(w, h), &cx.theme, cx.lang);
                    self.cells.push(hm.cells);
                    if let Some((r, c)) = hm.clicked {
                        clicked = Some((i, r, c));
                    }
                    if let Some((r, c)) = hm.hovered {
                        hovered = Some(format!("{} · L{r} · {} = {}", b.hook.name(), cols[c], fmt_val(sg.get(r, c))));
                    }
                    if cx.export {
                        cx.requests.push(Request::Export(sg.figure(format!("{} · patching {} → {}", b.hook.name(), self.clean, self.corrupt))));
                    }
                });
            }
        });
        let text = hovered.unwrap_or_else(|| cx.tr("Click a cell to open that layer and position (or head) in the clean run.", "点击一个格子，在干净运行中打开那一层和位置（或头）。").into());
        ui.label(RichText::new(text).monospace());
        if let Some((i, layer, column)) = clicked
            && let Some(g) = self.grids.get(i)
        {
            let (ids, hook) = (g.begun.clean.clone(), g.begun.hook);
            let text = ids_text(cx.s, &ids);
            show_ids(cx, &ids, &text);
            open_position(cx, hook, layer, column);
        }
    }
}
