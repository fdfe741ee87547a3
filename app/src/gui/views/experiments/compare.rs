//! Compare mode: run B beside run A, where B differs by its prompt, the precision of its
//! activations, the format of its weights, or an intervention (heads or MLPs ablated, RoPE
//! off, causal mask off); or the whole precision ladder at once. Shows the divergence of the
//! residual stream per layer, the KL of the next-token distribution, the first op where the
//! runs part, both top-k lists, and A | B | B − A for a heatmap the user picks. Every number
//! comes from the engine's `compare`.

use egui::{RichText, Ui, vec2};
use egui_plot::{Line, Plot, Points};
use glassbox_engine::experiments::compare::{self, Comparison};
use glassbox_engine::WeightsMode;
use glassbox_engine::experiments::quantize::WeightQuant;
use glassbox_engine::{ActivationPrecision, BlockHook, HookKey, Tensor, Trace};

use super::Runner;
use crate::gui::export::Figure;
use crate::gui::heatmap::{self, Axes, CachedTexture, ColorScale, ScaleMode, heatmap_ui, key_of};
use crate::gui::i18n::Lang;
use crate::gui::session::Session;
use crate::gui::theme::Colormap;
use crate::gui::views::{Request, ViewCtx, fmt_val, visible};
use crate::gui::worker::experiments::{Event, Job, Tokens, Variant};

/// What B changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Diff {
    /// f32 against f16, bf16 (activations), int8 and 4-bit (weights), all at once.
    #[default]
    Ladder,
    Prompt,
    Activations,
    Weights,
    Interventions,
}

/// The heatmap shown as A | B | B − A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum MapKind {
    #[default]
    Pattern,
    MlpPost,
    Residual,
}

impl MapKind {
    fn key(self, layer: usize) -> HookKey {
        HookKey::Block(
            layer,
            match self {
                MapKind::Pattern => BlockHook::Pattern,
                MapKind::MlpPost => BlockHook::MlpPost,
                MapKind::Residual => BlockHook::ResidPost,
            },
        )
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "pattern" => Some(MapKind::Pattern),
            "mlp" => Some(MapKind::MlpPost),
            "residual" => Some(MapKind::Residual),
            _ => None,
        }
    }
}

pub struct CompareResult {
    pub a: Trace,
    pub b: Vec<(Variant, Trace, Comparison)>,
    pub tokens_a: Vec<String>,
    pub tokens_b: Vec<String>,
    /// Changes with every result (texture keys).
    pub serial: u64,
}

pub struct CompareState {
    pub diff: Diff,
    pub prompt_b: String,
    pub activations: ActivationPrecision,
    pub weights: WeightQuant,
    pub no_rope: bool,
    pub no_causal_mask: bool,
    /// Heads to ablate in B: "L17H3 L18H6" (or "17.3, 18.6").
    pub heads_text: String,
    /// MLP layers to ablate in B: "3 5".
    pub mlps_text: String,
    pub runner: Runner,
    pub result: Option<CompareResult>,
    /// Which B the heatmaps show, and what.
    pub shown: usize,
    pub map: MapKind,
    pub layer: usize,
    pub head: usize,
    textures: [CachedTexture; 3],
    serial: u64,
}

impl Default for CompareState {
    fn default() -> Self {
        Self {
            diff: Diff::Ladder,
            prompt_b: String::new(),
            activations: ActivationPrecision::F16,
            weights: WeightQuant::Int8,
            no_rope: false,
            no_causal_mask: false,
            heads_text: String::new(),
            mlps_text: String::new(),
            runner: Runner::default(),
            result: None,
            shown: 0,
            map: MapKind::Pattern,
            layer: 0,
            head: 0,
            textures: Default::default(),
            serial: 0,
        }
    }
}

/// "L17H3 L18H6", "17.3, 18.6" → [(17, 3), (18, 6)].
pub fn parse_heads(text: &str) -> Result<Vec<(usize, usize)>, String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let t = s.trim_start_matches(['L', 'l']);
            let (l, h) = t.split_once(['H', 'h', '.']).ok_or_else(|| format!("`{s}` is not a head (write L17H3 or 17.3)"))?;
            match (l.parse(), h.parse()) {
                (Ok(l), Ok(h)) => Ok((l, h)),
                _ => Err(format!("`{s}` is not a head (write L17H3 or 17.3)")),
            }
        })
        .collect()
}

/// "3 5" → [3, 5].
pub fn parse_layers(text: &str) -> Result<Vec<usize>, String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_start_matches(['L', 'l']).parse().map_err(|_| format!("`{s}` is not a layer number")))
        .collect()
}

fn weights_label(q: WeightQuant, lang: Lang) -> String {
    match q {
        WeightQuant::F32 => lang.tr("f32 weights", "f32 权重").into(),
        WeightQuant::Bf16 => lang.tr("bf16 weights", "bf16 权重").into(),
        WeightQuant::Int8 => lang.tr("int8 weights (per row)", "int8 权重（按行）").into(),
        WeightQuant::Q4 => lang.tr("4-bit weights (Q4_0 blocks)", "4 位权重（Q4_0 块）").into(),
        WeightQuant::F32Reference => lang.tr("f32 reference (the downloaded blocks dequantized)", "f32 参照（下载的量化块反量化）").into(),
    }
}

/// A run B in words: "f16 activations", "RoPE off + 2 heads ablated".
pub fn variant_label(v: &Variant, other_prompt: bool, lang: Lang) -> String {
    let mut parts: Vec<String> = Vec::new();
    if other_prompt {
        parts.push(lang.tr("prompt B", "提示词 B").into());
    }
    if v.activations != ActivationPrecision::F32 {
        parts.push(lang.tf(format!("{} activations", v.activations.name()), format!("{} 激活值", v.activations.name())));
    }
    if v.weights != WeightQuant::F32 {
        parts.push(weights_label(v.weights, lang));
    }
    if v.switches.no_rope {
        parts.push(lang.tr("RoPE off", "关闭 RoPE").into());
    }
    if v.switches.no_causal_mask {
        parts.push(lang.tr("causal mask off (bidirectional)", "关闭因果掩码（双向）").into());
    }
    if !v.ablate_heads.is_empty() {
        let list: Vec<String> = v.ablate_heads.iter().map(|(l, h)| format!("L{l}H{h}")).collect();
        parts.push(lang.tf(format!("heads {} ablated", list.join(" ")), format!("消融头 {}", list.join(" "))));
    }
    if !v.ablate_mlps.is_empty() {
        let list: Vec<String> = v.ablate_mlps.iter().map(|l| format!("L{l}")).collect();
        parts.push(lang.tf(format!("MLP {} ablated", list.join(" ")), format!("消融 MLP {}", list.join(" "))));
    }
    if parts.is_empty() {
        return lang.tr("same as A", "与 A 相同").into();
    }
    parts.join(" + ")
}

/// A column heading for run B: "f16 act.", "int8 W"; "B" for a prompt or interventions.
fn variant_short(v: &Variant, other_prompt: bool, lang: Lang) -> String {
    if other_prompt || v.switches.no_rope || v.switches.no_causal_mask || !v.ablate_heads.is_empty() || !v.ablate_mlps.is_empty() {
        return "B".into();
    }
    if v.activations != ActivationPrecision::F32 {
        let n = v.activations.name();
        return lang.tf(format!("{n} act."), format!("{n} 激活"));
    }
    match v.weights {
        WeightQuant::Q4 => lang.tr("4-bit W", "4 位权重").into(),
        WeightQuant::F32Reference => lang.tr("f32 ref.", "f32 参照").into(),
        q => lang.tf(format!("{} W", q.name()), format!("{} 权重", q.name())),
    }
}

impl CompareState {
    /// Starts the comparison the controls describe, A being the session's prompt.
    pub fn run(&mut self, s: &mut Session) {
        let a = match s.prompt_ids() {
            Ok(ids) => ids,
            Err(e) => return self.runner.fail(e),
        };
        let mut b = None;
        let variants = match self.diff {
            Diff::Ladder => {
                // A model kept as downloaded first meets its own f32 reference.
                let reference = (s.model.weights_mode() == WeightsMode::Native).then(|| Variant { weights: WeightQuant::F32Reference, ..Variant::default() });
                reference.into_iter().chain(Variant::ladder()).collect()
            }
            Diff::Prompt => {
                b = Some(Tokens::Text(self.prompt_b.clone()));
                vec![Variant::default()]
            }
            Diff::Activations => vec![Variant { activations: self.activations, ..Variant::default() }],
            Diff::Weights => vec![Variant { weights: self.weights, ..Variant::default() }],
            Diff::Interventions => {
                let parsed = parse_heads(&self.heads_text).and_then(|h| Ok((h, parse_layers(&self.mlps_text)?)));
                let (ablate_heads, ablate_mlps) = match parsed {
                    Ok(p) => p,
                    Err(e) => return self.runner.fail(e),
                };
                let mut v = Variant { ablate_heads, ablate_mlps, ..Variant::default() };
                v.switches.no_rope = self.no_rope;
                v.switches.no_causal_mask = self.no_causal_mask;
                if v == Variant::default() {
                    return self.runner.fail("B is the same as A: tick RoPE off or causal mask off, or list heads or MLPs to ablate".into());
                }
                vec![v]
            }
        };
        self.runner.start(s, Job::Compare { a: Tokens::Ids(a), b, variants });
    }

    pub fn on_event(&mut self, event: Event, s: &Session) {
        let Some(Event::Compared(out)) = self.runner.on_event(event) else { return };
        let out = *out;
        self.serial += 1;
        let texts = |t: &Trace| t.token_ids.iter().map(|&id| s.token_text(id)).collect::<Vec<_>>();
        let tokens_a = texts(&out.a);
        let tokens_b = out.b.first().map_or_else(|| tokens_a.clone(), |(_, t, _)| texts(t));
        self.shown = self.shown.min(out.b.len().saturating_sub(1));
        self.layer = self.layer.min(s.n_layers().saturating_sub(1));
        self.result = Some(CompareResult { a: out.a, b: out.b, tokens_a, tokens_b, serial: self.serial });
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if !cx.presenting {
            self.controls_ui(ui, cx);
            self.runner.ui(ui, cx);
            ui.separator();
        }
        let Some(r) = &self.result else {
            if !self.runner.busy() {
                ui.label(RichText::new(cx.tr(
                    "Run A (the prompt above, f32) and B beside it. The precision ladder runs four B's at once: f16 and bf16 activations, int8 and 4-bit weights.",
                    "运行 A（上面的提示词，f32）并在旁边运行 B。精度阶梯一次运行四个 B：f16 和 bf16 激活值，int8 和 4 位权重。",
                )).color(cx.theme.muted()));
            }
            return;
        };
        summary_ui(ui, cx, r);
        let plot_h = if cx.presenting { (ui.available_height() * 0.45).max(200.0) } else { 230.0 };
        // The curve takes what the top-10 table leaves (about 130 points per run).
        // At presenter size the columns widen with the text, and the table may take more.
        let em = crate::gui::theme::font_px(ui, 14.0) / 14.0;
        let share = if cx.presenting { 0.72 } else { 0.6 };
        let table_w = (130.0 * em * (r.b.len() + 1) as f32 + 30.0).min(ui.available_width() * share);
        let plot_w = (ui.available_width() - table_w - 16.0).max(240.0);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_max_width(plot_w);
                divergence_ui(ui, cx, r, plot_w, plot_h);
            });
            ui.vertical(|ui| top_k_ui(ui, cx, r));
        });
        ui.separator();
        self.maps_ui(ui, cx);
        if cx.export
            && let Some(r) = &self.result
        {
            cx.requests.push(Request::Export(divergence_figure(cx, r)));
        }
    }

    fn controls_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        ui.horizontal_wrapped(|ui| {
            ui.label(cx.tr("B differs from A by:", "B 与 A 的区别："));
            for (d, en, zh) in [
                (Diff::Ladder, "the precision ladder", "精度阶梯"),
                (Diff::Prompt, "its prompt", "提示词"),
                (Diff::Activations, "activation precision", "激活值精度"),
                (Diff::Weights, "weight format", "权重格式"),
                (Diff::Interventions, "interventions", "干预"),
            ] {
                ui.selectable_value(&mut self.diff, d, cx.tr(en, zh));
            }
        });
        ui.horizontal_wrapped(|ui| match self.diff {
            Diff::Ladder if cx.s.model.weights_mode() == WeightsMode::Native => {
                ui.label(RichText::new(cx.tr(
                    "A with its weights as downloaded; B with the same blocks dequantized to f32 (the reference), then f16 and bf16 activations, then int8 and 4-bit weights.",
                    "A 使用下载时的量化权重；B 先用同样的块反量化成 f32（参照），再用 f16、bf16 激活值，再用 int8 和 4 位权重。",
                )).color(cx.theme.muted()));
            }
            Diff::Ladder => {
                ui.label(RichText::new(cx.tr(
                    "A in f32; B in f16 and bf16 (every activation rounded), then with int8 and 4-bit weights.",
                    "A 用 f32；B 依次用 f16、bf16（每个激活值都舍入），再用 int8 和 4 位权重。",
                )).color(cx.theme.muted()));
            }
            Diff::Prompt => {
                let l = ui.label(cx.tr("B's prompt (as many tokens as A's):", "B 的提示词（词元数与 A 相同）："));
                ui.add(egui::TextEdit::singleline(&mut self.prompt_b).desired_width(320.0).hint_text("The capital of Italy is")).labelled_by(l.id);
            }
            Diff::Activations => {
                for a in [ActivationPrecision::F16, ActivationPrecision::Bf16] {
                    ui.selectable_value(&mut self.activations, a, a.name());
                }
            }
            Diff::Weights => {
                // A model kept as downloaded can also run beside its own f32 reference.
                let reference = (cx.s.model.weights_mode() == WeightsMode::Native).then_some(WeightQuant::F32Reference);
                for q in reference.into_iter().chain([WeightQuant::Bf16, WeightQuant::Int8, WeightQuant::Q4]) {
                    ui.selectable_value(&mut self.weights, q, weights_label(q, cx.lang));
                }
            }
            Diff::Interventions => {
                ui.checkbox(&mut self.no_rope, cx.tr("RoPE off", "关闭 RoPE"));
                ui.checkbox(&mut self.no_causal_mask, cx.tr("causal mask off (bidirectional)", "关闭因果掩码（双向）"));
                let l = ui.label(cx.tr("ablate heads:", "消融头："));
                ui.add(egui::TextEdit::singleline(&mut self.heads_text).desired_width(140.0).hint_text("L17H3 L18H6")).labelled_by(l.id);
                let l = ui.label(cx.tr("ablate MLPs of layers:", "消融这些层的 MLP："));
                ui.add(egui::TextEdit::singleline(&mut self.mlps_text).desired_width(70.0).hint_text("3 5")).labelled_by(l.id);
            }
        });
        ui.horizontal_wrapped(|ui| {
            let prompt = if cx.s.prompt.is_empty() { "—".to_string() } else { cx.s.prompt.replace('\n', "⏎") };
            ui.label(RichText::new(cx.lang.tf(format!("A: {prompt}"), format!("A：{prompt}"))).color(cx.theme.muted()));
            let label = if self.diff == Diff::Ladder { cx.tr("Run the ladder", "运行精度阶梯") } else { cx.tr("Run A and B", "运行 A 和 B") };
            if ui.add_enabled(!self.runner.busy(), egui::Button::new(RichText::new(label).strong())).clicked() {
                self.run(cx.s);
            }
        });
    }

    fn maps_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        let Self { result, shown, map: kind, layer, head, textures, .. } = self;
        let Some(r) = result.as_ref() else { return };
        let n_layers = cx.s.n_layers();
        let n_heads = cx.s.model.config.n_heads();
        ui.horizontal_wrapped(|ui| {
            if !cx.presenting {
                ui.label(cx.tr("Heatmap:", "热图："));
                for (m, en, zh) in [
                    (MapKind::Pattern, "attention pattern", "注意力模式"),
                    (MapKind::MlpPost, "MLP activations (mlp.hook_post)", "MLP 激活值（mlp.hook_post）"),
                    (MapKind::Residual, "residual stream after the layer", "该层之后的残差流"),
                ] {
                    ui.selectable_value(kind, m, cx.tr(en, zh));
                }
                ui.separator();
                ui.add(egui::Slider::new(layer, 0..=n_layers.saturating_sub(1)).text(cx.tr("layer", "层")));
                if *kind == MapKind::Pattern {
                    ui.add(egui::Slider::new(head, 0..=n_heads.saturating_sub(1)).text(cx.tr("head", "头")));
                }
                if r.b.len() > 1 {
                    ui.separator();
                    ui.label(cx.tr("B:", "B："));
                    for (i, (v, _, _)) in r.b.iter().enumerate() {
                        ui.selectable_value(shown, i, variant_label(v, false, cx.lang));
                    }
                }
            }
        });
        let (layer, head) = ((*layer).min(n_layers.saturating_sub(1)), (*head).min(n_heads.saturating_sub(1)));
        let Some((_, trace_b, _)) = r.b.get(*shown) else { return };
        let key = kind.key(layer);
        let (Some(ta), Some(tb)) = (r.a.get(key), trace_b.get(key)) else {
            ui.label(cx.lang.tf(format!("`{key}` was not recorded."), format!("没有记录 `{key}`。")));
            return;
        };
        let diff = match compare::difference(&r.a, trace_b, key) {
            Ok(d) => d,
            Err(e) => {
                ui.colored_label(cx.theme.error(), e.to_string());
                return;
            }
        };
        let (Some(ma), Some(mb), Some(md)) = (matrix(ta, *kind, head), matrix(tb, *kind, head), matrix(&diff, *kind, head)) else { return };
        let (rows, cols) = (ma.0, ma.1);
        let shared = match *kind {
            MapKind::Pattern => ColorScale::fixed(0.0, 1.0),
            _ => ColorScale::fit(rows, cols, 0, true, ScaleMode::Robust, |i, j| ma.2[i * cols + j]),
        };
        let map_ab = if *kind == MapKind::Pattern { Colormap::Viridis } else { Colormap::Diverging };
        let diff_scale = ColorScale::fit(rows, cols, 0, true, ScaleMode::Robust, |i, j| md.2[i * cols + j]);
        let gap = ui.spacing().item_spacing.x * 2.0;
        let w = ((ui.available_width() - 2.0 * gap) / 3.0).max(120.0);
        let h = if *kind == MapKind::Pattern { w.min(ui.available_height() - 50.0 - crate::gui::heatmap::colorbar_height(ui)).max(120.0) } else { (rows as f32 * 16.0).clamp(80.0, 300.0) };
        let labels_a: Vec<String> = r.tokens_a.iter().enumerate().map(|(i, t)| format!("{i} {}", visible(t))).collect();
        let labels_b: Vec<String> = r.tokens_b.iter().enumerate().map(|(i, t)| format!("{i} {}", visible(t))).collect();
        let b_label = variant_label(&r.b[*shown].0, r.tokens_a != r.tokens_b, cx.lang);
        let what = match *kind {
            MapKind::Pattern => format!("L{layer} H{head}"),
            _ => format!("L{layer}"),
        };
        #[allow(clippy::type_complexity)] // one row per panel: title, map, scale, colours, labels
        let panels: [(&str, &(usize, usize, Vec<f32>), &ColorScale, Colormap, &Vec<String>); 3] = [
            (&a_label(cx), &ma, &shared, map_ab, &labels_a),
            (&b_label, &mb, &shared, map_ab, &labels_b),
            ("B − A", &md, &diff_scale, Colormap::Diverging, &labels_a),
        ];
        let theme = cx.theme;
        let mut readout = None;
        ui.label(RichText::new(format!("{key} · {what}")).monospace().color(theme.muted()));
        ui.horizontal_top(|ui| {
            for (i, (title, m, scale, map, labels)) in panels.into_iter().enumerate() {
                ui.vertical(|ui| {
                    ui.set_max_width(w);
                    ui.label(RichText::new(title).strong());
                    let tex = textures[i].get(ui.ctx(), "compare-map", key_of((r.serial, *shown, *kind, layer, head, i, theme.dark)), || {
                        heatmap::image(rows, cols, |y, x| scale.color(map, y, m.2[y * cols + x]))
                    });
                    let col_labels = (*kind == MapKind::Pattern).then_some(labels.as_slice());
                    let axes = Axes { row_labels: Some(labels), col_labels, square: *kind == MapKind::Pattern, ..Axes::default() };
                    let hm = heatmap_ui(ui, tex, rows, cols, vec2(w, h), &axes, &theme);
                    if let Some((y, x)) = hm.hovered {
                        readout = Some((y, x));
                    }
                    let unit = match (i, *kind) {
                        (2, _) => cx.tr("difference", "差值"),
                        (_, MapKind::Pattern) => cx.tr("p (attention pattern)", "p（注意力模式）"),
                        _ => cx.tr("value", "数值"),
                    };
                    heatmap::colorbar_ui(ui, map, scale, unit, "", cx.lang, &theme);
                });
            }
        });
        let text = match readout {
            Some((y, x)) => format!("[{y}, {x}]  A = {}  B = {}  B − A = {}", fmt_val(ma.2[y * cols + x]), fmt_val(mb.2[y * cols + x]), fmt_val(md.2[y * cols + x])),
            None => cx.tr("Hover a cell to read A, B and their difference.", "把鼠标移到格子上，读取 A、B 和它们的差值。").into(),
        };
        ui.label(RichText::new(text).monospace());
        if cx.export {
            cx.requests.push(Request::Export(Figure::Heatmap {
                title: format!("B − A · {key} · {what} · {b_label}"),
                rows,
                cols,
                values: md.2.clone(),
                row_labels: labels_a.clone(),
                col_labels: if *kind == MapKind::Pattern { labels_a.clone() } else { Vec::new() },
                row_title: cx.tr("position", "位置").into(),
                col_title: String::new(),
                map: Colormap::Diverging,
                scale: diff_scale.clone(),
                unit: cx.tr("difference", "差值").into(),
            }));
        }
    }
}

/// The `[rows, cols]` a heatmap shows of a hook: one head of a pattern, or `[pos, width]`.
fn matrix(t: &Tensor, map: MapKind, head: usize) -> Option<(usize, usize, Vec<f32>)> {
    match map {
        MapKind::Pattern => {
            let p = t.as_3d()?;
            let (n_heads, q, k) = p.dim();
            (head < n_heads).then(|| (q, k, p.slice(ndarray::s![head, .., ..]).iter().copied().collect()))
        }
        _ => {
            let m = t.as_2d()?;
            Some((m.nrows(), m.ncols(), m.iter().copied().collect()))
        }
    }
}

/// One line per B: where it parts from A, how far apart the residual stream ends, the KL of
/// the next token, and its top-1.
fn summary_ui(ui: &mut Ui, cx: &ViewCtx<'_>, r: &CompareResult) {
    let other_prompt = r.tokens_a != r.tokens_b;
    egui::Grid::new("compare-summary").striped(true).spacing(vec2(18.0, 4.0)).show(ui, |ui| {
        for h in [
            cx.tr("run B", "运行 B"),
            cx.tr("first op where B parts from A", "B 与 A 开始不同的第一个操作"),
            cx.tr("residual ‖B − A‖ / ‖A‖ at the end", "最后的残差 ‖B − A‖ / ‖A‖"),
            cx.tr("KL(A ‖ B), last position", "KL(A ‖ B)，最后位置"),
            cx.tr("top-1 of A → of B", "A 的第一名 → B 的第一名"),
        ] {
            ui.label(RichText::new(h).strong());
        }
        ui.end_row();
        for (i, (v, _, c)) in r.b.iter().enumerate() {
            ui.label(RichText::new(variant_label(v, other_prompt, cx.lang)).color(cx.theme.series(i)).strong());
            match c.first_apart {
                Some(k) => ui.label(RichText::new(k.to_string()).monospace()),
                None => ui.label(cx.tr("none: identical at every hook", "没有：每个钩子都相同")),
            };
            ui.label(c.residual.last().map_or("—".into(), |d| format!("{d:.2e}")));
            ui.label(c.kl.last().map_or("—".into(), |k| format!("{k:.2e}")));
            let top = |x: &[glassbox_engine::experiments::analysis::Ranked]| x.first().map_or("—".into(), |e| visible(&cx.s.token_text(e.id)));
            ui.label(format!("{} → {}", top(&c.top_a), top(&c.top_b)));
            ui.end_row();
        }
    });
}

/// Relative L2 of the residual stream after the embedding and after each layer, on a log
/// axis (f16 parts from f32 by ~1e-3, 4-bit weights by ~1e-1).
fn divergence_ui(ui: &mut Ui, cx: &ViewCtx<'_>, r: &CompareResult, width: f32, height: f32) {
    ui.label(RichText::new(cx.tr("Divergence of the residual stream, ‖B − A‖ / ‖A‖ (colours as in the table)", "残差流的偏离程度 ‖B − A‖ / ‖A‖（颜色同上表）")).strong());
    let other_prompt = r.tokens_a != r.tokens_b;
    let theme = cx.theme;
    Plot::new("compare-divergence")
        .width(width)
        .height(height)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .x_axis_label(cx.tr("after layer (0 = embedding)", "第几层之后（0 = 嵌入）"))
        .y_axis_label("log10")
        .x_axis_formatter(|m, _| if m.value < 0.5 { "emb".into() } else { format!("{}", m.value as i64 - 1) })
        .y_axis_formatter(|m, _| {
            let v = m.value;
            if (v - v.round()).abs() < 1e-6 { format!("1e{}", v.round() as i64) } else { crate::gui::scale::short(10f32.powf(v as f32)) }
        })
        .show(ui, |p| {
            for (i, (v, _, c)) in r.b.iter().enumerate() {
                let pts: Vec<[f64; 2]> = log_points(&c.residual);
                let name = variant_label(v, other_prompt, cx.lang);
                p.line(Line::new(name.clone(), pts.clone()).color(theme.series(i)).width(2.0));
                p.points(Points::new(name, pts).color(theme.series(i)).radius(2.0));
            }
        });
}

/// `(index, log10 d)` for the finite, positive distances (0 = identical has no logarithm).
fn log_points(d: &[f32]) -> Vec<[f64; 2]> {
    d.iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite() && **v > 0.0)
        .map(|(i, v)| [i as f64, f64::from(v.log10())])
        .collect()
}

/// Run A's name: its weights as the session's model holds them.
fn a_label(cx: &ViewCtx<'_>) -> String {
    if cx.s.model.weights_mode() == WeightsMode::Native { cx.tr("A (as downloaded)", "A（下载时的权重）").into() } else { "A (f32)".into() }
}

/// A's top 10 next to each B's.
fn top_k_ui(ui: &mut Ui, cx: &ViewCtx<'_>, r: &CompareResult) {
    ui.label(RichText::new(cx.tr("Next token at the last position: top 10", "最后位置的下一个词元：前 10 名")).strong());
    let other_prompt = r.tokens_a != r.tokens_b;
    egui::ScrollArea::horizontal().id_salt("compare-topk").show(ui, |ui| {
        egui::Grid::new("compare-topk-grid").striped(true).spacing(vec2(14.0, 2.0)).show(ui, |ui| {
            ui.label("#");
            ui.label(RichText::new(a_label(cx)).strong());
            for (i, (v, _, _)) in r.b.iter().enumerate() {
                ui.label(RichText::new(variant_short(v, other_prompt, cx.lang)).color(cx.theme.series(i)).strong())
                    .on_hover_text(variant_label(v, other_prompt, cx.lang));
            }
            ui.end_row();
            let a_top = r.b.first().map(|(_, _, c)| c.top_a.clone()).unwrap_or_default();
            for (k, a) in a_top.iter().enumerate() {
                ui.label(format!("{}", k + 1));
                let cell = |e: &glassbox_engine::experiments::analysis::Ranked| format!("{} {:.3}", visible(&cx.s.token_text(e.id)), e.prob);
                ui.label(RichText::new(cell(a)).monospace());
                for (_, _, c) in &r.b {
                    let text = c.top_b.get(k).map(cell).unwrap_or_default();
                    // A token that is not in A's list at this rank stands out.
                    let moved = c.top_b.get(k).is_some_and(|e| e.id != a.id);
                    let t = RichText::new(text).monospace();
                    ui.label(if moved { t.color(cx.theme.accent()) } else { t });
                }
                ui.end_row();
            }
        });
    });
}

fn divergence_figure(cx: &ViewCtx<'_>, r: &CompareResult) -> Figure {
    let other_prompt = r.tokens_a != r.tokens_b;
    let n = r.b.first().map_or(0, |(_, _, c)| c.residual.len());
    let x_labels = (0..n).map(|i| if i == 0 { "emb".to_string() } else { format!("L{}", i - 1) }).collect();
    Figure::Lines {
        title: cx.tr("Divergence of the residual stream ‖B − A‖ / ‖A‖", "残差流的偏离程度 ‖B − A‖ / ‖A‖").into(),
        x_labels,
        x_title: cx.tr("after layer", "第几层之后").into(),
        y_title: "‖B − A‖ / ‖A‖".into(),
        series: r.b.iter().map(|(v, _, c)| (variant_label(v, other_prompt, cx.lang), c.residual.clone())).collect(),
        log_y: true,
    }
}
