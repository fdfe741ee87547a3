//! §1.3 of the article, live: the ReLU it describes and the SiLU that Llama's SwiGLU uses,
//! with the real gate values of the current layer and position plotted on the curves, and a
//! second plot of what SwiGLU makes of them after multiplying by `up`. The curves and the
//! values come from the engine (`activations`); this file only draws.

use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Stroke, Ui, pos2, vec2};
use glassbox_engine::article::activations;
use glassbox_engine::load::arch::MlpKind;
use glassbox_engine::{BlockHook, HookKey};

use crate::gui::scale::short;
use crate::gui::views::{ViewCtx, fmt_val};

/// A plot's value range and where it is drawn.
struct Frame {
    rect: Rect,
    x: (f32, f32),
    y: (f32, f32),
}

impl Frame {
    fn at(&self, x: f32, y: f32) -> Pos2 {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        pos2(
            self.rect.min.x + fx * self.rect.width(),
            self.rect.max.y - fy * self.rect.height(),
        )
    }
}

/// Axes with zero lines and tick labels at "nice" steps.
fn axes_ui(ui: &Ui, f: &Frame, cx: &ViewCtx<'_>, x_title: &str, y_title: &str) {
    let p = ui.painter();
    let font = FontId::proportional(ui.style().text_styles[&egui::TextStyle::Small].size.max(11.0));
    p.rect_stroke(f.rect, 0.0, Stroke::new(1.0, cx.theme.faint()), egui::StrokeKind::Inside);
    let zero = Stroke::new(1.0, cx.theme.muted());
    if f.y.0 < 0.0 && f.y.1 > 0.0 {
        p.line_segment([f.at(f.x.0, 0.0), f.at(f.x.1, 0.0)], zero);
    }
    if f.x.0 < 0.0 && f.x.1 > 0.0 {
        p.line_segment([f.at(0.0, f.y.0), f.at(0.0, f.y.1)], zero);
    }
    let step = |span: f32| {
        let raw = span / 5.0;
        let mag = 10f32.powf(raw.log10().floor());
        [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(mag * 10.0)
    };
    let sx = step(f.x.1 - f.x.0);
    let mut x = (f.x.0 / sx).ceil() * sx;
    while x <= f.x.1 + 1e-6 {
        p.text(f.at(x, f.y.0) + vec2(0.0, 3.0), Align2::CENTER_TOP, short(x), font.clone(), cx.theme.text());
        x += sx;
    }
    let sy = step(f.y.1 - f.y.0);
    let mut y = (f.y.0 / sy).ceil() * sy;
    while y <= f.y.1 + 1e-6 {
        p.text(f.at(f.x.0, y) - vec2(4.0, 0.0), Align2::RIGHT_CENTER, short(y), font.clone(), cx.theme.text());
        y += sy;
    }
    p.text(
        pos2(f.rect.center().x, f.rect.max.y + 20.0),
        Align2::CENTER_TOP,
        x_title,
        font.clone(),
        cx.theme.muted(),
    );
    p.text(f.rect.min + vec2(6.0, 4.0), Align2::LEFT_TOP, y_title, font, cx.theme.muted());
}

fn polyline(ui: &Ui, f: &Frame, xs: &[f32], ys: &[f32], stroke: Stroke) {
    let pts: Vec<Pos2> = xs
        .iter()
        .zip(ys)
        .filter(|(_, y)| **y >= f.y.0 && **y <= f.y.1)
        .map(|(&x, &y)| f.at(x, y))
        .collect();
    ui.painter().add(egui::Shape::line(pts, stroke));
}

/// Dots `(x, y)`, red where the gate is negative (what ReLU would zero), blue elsewhere;
/// returns the neuron nearest the pointer.
fn dots_ui(ui: &Ui, f: &Frame, xs: &[f32], ys: &[f32], hover: Option<Pos2>, cx: &ViewCtx<'_>) -> Option<usize> {
    let (neg, pos) = (cx.theme.group_color(1), cx.theme.group_color(0));
    let mut best: Option<(f32, usize)> = None;
    for (i, (&x, &y)) in xs.iter().zip(ys).enumerate() {
        if x < f.x.0 || x > f.x.1 || y < f.y.0 || y > f.y.1 {
            continue;
        }
        let p = f.at(x, y);
        let color = if x < 0.0 { neg } else { pos };
        ui.painter().circle_filled(p, 2.2, color.gamma_multiply(0.8));
        if let Some(h) = hover {
            let d = p.distance(h);
            if d < 8.0 && best.is_none_or(|(b, _)| d < b) {
                best = Some((d, i));
            }
        }
    }
    best.map(|(_, i)| i)
}

/// The mode button's label: the article's comparison for Llama's SwiGLU, else this
/// family's activation as computed.
pub fn mode_label(mlp: MlpKind) -> (&'static str, &'static str) {
    match mlp {
        MlpKind::SwiGlu => ("ReLU vs SiLU (the real gate values)", "ReLU 与 SiLU（真实的门控值）"),
        MlpKind::GeGlu => ("GeGLU as computed (the real gate values)", "GeGLU 的实际计算（真实的门控值）"),
        MlpKind::Plain(_) => ("The activation as computed (pre → post)", "激活函数的实际计算（pre → post）"),
    }
}

pub fn activations_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, layer: usize, pos: usize) {
    if cx.s.model.arch.mlp != MlpKind::SwiGlu {
        computed_ui(ui, cx, layer, pos);
        return;
    }
    let g = match activations::gate_values(&cx.s.trace, layer, pos) {
        Ok(g) => g,
        Err(_) => {
            ui.label(cx.tr("(step to `up` to see the gate values)", "（前进到 `up` 才能看到门控值）"));
            return;
        }
    };
    gate_header_ui(ui, cx, &g, layer, pos);
    let lim = g
        .gate
        .iter()
        .map(|v| v.abs())
        .fold(1.0f32, f32::max)
        .min(8.0)
        .ceil();
    let curves = activations::curves(-lim, lim, 241);
    let avail = ui.available_size();
    let w = ((avail.x - 150.0) / 2.0).max(200.0);
    let h = (avail.y - 90.0).clamp(160.0, 460.0);
    let mut hovered = None;
    ui.horizontal_top(|ui| {
        // Left: the activation curves with (gate, silu(gate)) and (gate, relu(gate)).
        let (rect, resp) = ui.allocate_exact_size(vec2(w + 50.0, h + 40.0), Sense::hover());
        let f = Frame {
            rect: Rect::from_min_max(rect.min + vec2(50.0, 4.0), rect.max - vec2(6.0, 40.0)),
            x: (-lim, lim),
            y: (-1.0, lim),
        };
        axes_ui(ui, &f, cx, cx.tr("gate value x", "门控值 x"), cx.tr("activation", "激活值"));
        polyline(ui, &f, &curves.x, &curves.relu, Stroke::new(2.5, cx.theme.muted()));
        polyline(ui, &f, &curves.x, &curves.silu, Stroke::new(2.5, cx.theme.accent()));
        hovered = hovered.or(dots_ui(ui, &f, &g.gate, &g.silu, resp.hover_pos(), cx));
        let legend = |ui: &Ui, y: f32, color: Color32, text: &str| {
            let p = f.rect.min + vec2(10.0, y);
            ui.painter().line_segment([p, p + vec2(22.0, 0.0)], Stroke::new(2.5, color));
            ui.painter().text(p + vec2(28.0, 0.0), Align2::LEFT_CENTER, text, FontId::proportional(crate::gui::theme::font_px(ui, 13.0)), cx.theme.text());
        };
        legend(ui, 28.0, cx.theme.muted(), cx.tr("ReLU(x) = max(0, x)  (the article)", "ReLU(x) = max(0, x)（文章）"));
        legend(ui, 46.0, cx.theme.accent(), cx.tr("SiLU(x) = x · σ(x)  (Llama)", "SiLU(x) = x · σ(x)（Llama）"));
        // Right: SwiGLU's output silu(gate) ⊙ up against the same gates: no longer a curve.
        let ymax = g.swiglu.iter().map(|v| v.abs()).fold(0.5f32, f32::max);
        let ylim = crate::gui::scale::ColorScale::fit(1, g.swiglu.len(), 0, true, crate::gui::scale::ScaleMode::Robust, |_, c| g.swiglu[c]).hi.min(ymax) * 1.1;
        let (rect, resp) = ui.allocate_exact_size(vec2(w + 50.0, h + 40.0), Sense::hover());
        let f2 = Frame {
            rect: Rect::from_min_max(rect.min + vec2(50.0, 4.0), rect.max - vec2(6.0, 40.0)),
            x: (-lim, lim),
            y: (-ylim, ylim),
        };
        axes_ui(ui, &f2, cx, cx.tr("gate value x", "门控值 x"), cx.tr("SwiGLU: silu(gate) ⊙ up (mlp.hook_post)", "SwiGLU：silu(gate) ⊙ up（mlp.hook_post）"));
        hovered = hovered.or(dots_ui(ui, &f2, &g.gate, &g.swiglu, resp.hover_pos(), cx));
    });
    ui.label(RichText::new(gate_line(cx, &g, hovered)).monospace());
}

/// Another family's MLP from its own hooks: `mlp.hook_post` against `mlp.hook_pre` at one
/// position, every neuron a dot. Ungated, the dots trace the activation itself (GELU, ReLU);
/// gated (GeGLU), `up` scatters them off the curve. ReLU is drawn for reference.
fn computed_ui(ui: &mut Ui, cx: &ViewCtx<'_>, layer: usize, pos: usize) {
    let row = |h: BlockHook| cx.s.trace.get(HookKey::Block(layer, h)).and_then(|t| t.as_2d()).filter(|t| pos < t.nrows()).map(|t| t.row(pos).to_vec());
    let (Some(pre), Some(post)) = (row(BlockHook::MlpPre), row(BlockHook::MlpPost)) else {
        ui.label(cx.tr("(step to the activation to see it)", "（前进到激活函数这一步才能看到）"));
        return;
    };
    let mlp = cx.s.model.arch.mlp;
    let tok = cx.s.token_texts.get(pos).map(|t| super::super::visible(t)).unwrap_or_default();
    let p_abs = cx.pos(pos);
    ui.label(RichText::new(cx.lang.tf(
        format!("Layer {layer}, position {p_abs} “{tok}”: {} (mlp.hook_post) against mlp.hook_pre, all {} neurons", mlp.post(), pre.len()),
        format!("第 {layer} 层，位置 {p_abs}“{tok}”：{}（mlp.hook_post）对 mlp.hook_pre，全部 {} 个神经元", mlp.post(), pre.len()),
    )).strong());
    let lim = pre.iter().map(|v| v.abs()).fold(1.0f32, f32::max).min(8.0).ceil();
    let ylim = post.iter().filter(|v| v.is_finite()).map(|v| v.abs()).fold(1.0f32, f32::max).min(4.0 * lim);
    let avail = ui.available_size();
    let (w, h) = ((avail.x - 100.0).clamp(240.0, 900.0), (avail.y - 90.0).clamp(160.0, 460.0));
    let (rect, resp) = ui.allocate_exact_size(vec2(w, h + 40.0), Sense::hover());
    let f = Frame { rect: Rect::from_min_max(rect.min + vec2(50.0, 4.0), rect.max - vec2(6.0, 40.0)), x: (-lim, lim), y: (-ylim, ylim) };
    axes_ui(ui, &f, cx, cx.tr("mlp.hook_pre (the gate, or W_in·x + b)", "mlp.hook_pre（门控，或 W_in·x + b）"), "mlp.hook_post");
    let curves = activations::curves(-lim, lim, 241);
    polyline(ui, &f, &curves.x, &curves.relu, Stroke::new(1.5, cx.theme.muted()));
    let hovered = dots_ui(ui, &f, &pre, &post, resp.hover_pos(), cx);
    let line = match hovered {
        Some(i) => format!("#{i}: mlp.hook_pre {}  →  mlp.hook_post {}", fmt_val(pre[i]), fmt_val(post[i])),
        None => cx.tr("Grey: ReLU, for reference. Dots: this model's numbers. Hover a dot for its neuron.", "灰线：ReLU，作参照。点：这个模型的实际数值。把鼠标移到点上查看是哪个神经元。").to_string(),
    };
    ui.label(RichText::new(line).monospace());
}

/// One neuron's numbers under the pointer, or how to read the dots.
fn gate_line(cx: &ViewCtx<'_>, g: &activations::GateValues, hovered: Option<usize>) -> String {
    match hovered {
        Some(i) => cx.lang.tf(
            format!(
                "neuron #{i}: gate {}  relu {}  silu {}  up {}  →  silu·up {}",
                fmt_val(g.gate[i]), fmt_val(g.relu[i]), fmt_val(g.silu[i]), fmt_val(g.up[i]), fmt_val(g.swiglu[i])
            ),
            format!(
                "神经元 #{i}：gate {}  relu {}  silu {}  up {}  →  silu·up {}",
                fmt_val(g.gate[i]), fmt_val(g.relu[i]), fmt_val(g.silu[i]), fmt_val(g.up[i]), fmt_val(g.swiglu[i])
            ),
        ),
        None => cx
            .tr(
                "Red dots: negative gates (ReLU would silence them). Blue: positive. Hover a dot for its neuron.",
                "红点：负的门控值（ReLU 会把它们变成 0）。蓝点：正的。把鼠标移到点上查看是哪个神经元。",
            )
            .to_string(),
    }
}

/// Which gates these are, and how many of them ReLU would silence.
fn gate_header_ui(ui: &mut Ui, cx: &ViewCtx<'_>, g: &activations::GateValues, layer: usize, pos: usize) {
    let tok = cx.s.token_texts.get(pos).map(|t| super::super::visible(t)).unwrap_or_default();
    let p_abs = cx.pos(pos);
    ui.label(
        RichText::new(cx.lang.tf(
            format!("Layer {layer}, position {p_abs} “{tok}”: all {} gate values (mlp.hook_pre) on the curves", g.gate.len()),
            format!("第 {layer} 层，位置 {p_abs}“{tok}”：全部 {} 个门控值（mlp.hook_pre）画在曲线上", g.gate.len()),
        ))
        .strong(),
    );
    ui.label(cx.lang.tf(
        format!(
            "{:.0}% of the gates are negative: ReLU would output exactly 0 for all of them. SiLU keeps a small negative output; those neurons carry {:.1}% of SiLU's total output here.",
            100.0 * g.negative_share,
            100.0 * g.negative_mass
        ),
        format!(
            "{:.0}% 的门控值是负的：ReLU 对它们的输出全都是 0。SiLU 保留一个小的负输出；在这里，这些神经元占 SiLU 总输出的 {:.1}%。",
            100.0 * g.negative_share,
            100.0 * g.negative_mass
        ),
    ));
}
