//! One type per view, each implementing [`View`] (its `ui(&mut self, ui, cx)` and what the
//! app asks of it) and listed once, in [`registry::registry`]. A view reads the session's
//! `Trace` (and engine analysis results), arranges, colors and labels the numbers, and
//! writes only the selection or a [`Request`].

pub mod attention;
pub mod diagram;
pub mod embedding_norm;
pub mod experiments;
pub mod gradients;
pub mod mlp;
pub mod output;
pub mod provenance;
pub mod qkv_rope;
pub mod registry;
pub mod residual;
pub mod side_by_side;
pub mod tasks;
pub mod timeline;
pub mod tokens;
pub mod training;

pub use registry::{View, ViewId, Views};

use egui::{RichText, Ui};
use glassbox_engine::program::op_table::Family;
use glassbox_engine::{HookKey, Step};

use super::export::Figure;
use super::i18n::Lang;
use super::heatmap::{
    self, Axes, CachedTexture, ColorScale, HeatmapResponse, ScaleOpts, heatmap_ui, key_of,
};
use super::session::Session;
use super::theme::Colormap;
use super::theme::{OpFamily, Theme};

/// The family a step belongs to (diagram and timeline colors), from the op table.
pub fn family_of(step: Step) -> OpFamily {
    match step.spec().family {
        Family::Embed => OpFamily::Embed,
        Family::Norm => OpFamily::Norm,
        Family::Attention => OpFamily::Attention,
        Family::Residual => OpFamily::Residual,
        Family::Mlp => OpFamily::Mlp,
        Family::Output => OpFamily::Output,
    }
}

/// The step kind as lessons name it (`softmax`, `ln_final`, ...).
pub fn step_kind(step: Step) -> &'static str {
    step.spec().name
}

/// What a view asks the app to do.
pub enum Request {
    Goto(Step),
    Generate(usize),
    Export(Figure),
    /// Run one of the four tasks on `text`, decoded with `options`.
    Task {
        kind: glassbox_engine::article::tasks::TaskKind,
        text: String,
        options: glassbox_engine::article::tasks::TaskOptions,
    },
    /// Show another view (e.g. a task's trace).
    Open(ViewId),
    /// Open a sub-panel and its view (`View::modes`).
    Mode(&'static str),
    /// Open a model folder (a training checkpoint) as the app's model and run `prompt` on it.
    OpenModel {
        dir: std::path::PathBuf,
        prompt: String,
        /// What it is, for the notice ("checkpoint at step 120").
        note: String,
        /// `(layer, head)` to show first (the best induction head).
        head: Option<(usize, usize)>,
        /// A training step's gradients for this sequence, and the step to open them at.
        grads: Option<(Box<super::session::Gradients>, Step)>,
    },
}

/// What every view gets for one frame.
pub struct ViewCtx<'a> {
    pub s: &'a mut Session,
    pub lang: Lang,
    pub theme: Theme,
    pub requests: &'a mut Vec<Request>,
    /// File → Export was chosen: the view answers with `Request::Export`.
    pub export: bool,
    /// Presenter mode: one figure, as large as it goes; explanations folded away.
    pub presenting: bool,
}

impl ViewCtx<'_> {
    pub fn tr(&self, en: &'static str, zh: &'static str) -> &'static str {
        self.lang.tr(en, zh)
    }

    /// Whether the trace holds gradients this frame (see `Session::show_gradients`).
    pub fn grads(&self) -> bool {
        self.s.showing_gradients()
    }

    /// "∂loss/∂" in front of a hook name while gradients are shown, else nothing.
    pub fn d(&self) -> &'static str {
        if self.grads() { "∂loss/∂" } else { "" }
    }

    /// A panel that reads activations only, while gradients are shown: says so and returns
    /// true (the caller draws nothing else).
    pub fn activations_only_ui(&self, ui: &mut Ui) -> bool {
        if self.grads() {
            ui.add_space(12.0);
            ui.label(RichText::new(self.tr(
                "This panel reads activations only. Switch the gradients off (above) to see it.",
                "这个面板只显示激活值。请在上方关闭梯度显示后再看。",
            )).color(self.theme.muted()));
        }
        self.grads()
    }

    /// Token labels with their position, for axes: "3 ␣cat" (a long pass's window counts
    /// from its first position).
    pub fn axis_labels(&self) -> Vec<String> {
        let base = self.s.pos_base();
        self.s
            .token_texts
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{} {}", base + i, visible(t)))
            .collect()
    }

    /// The position of row `i` of the trace (rows of a long pass's window are re-based).
    pub fn pos(&self, i: usize) -> usize {
        self.s.pos_base() + i
    }
}

/// Spaces and newlines made visible, so " the" and "the" look different. Byte pieces
/// ("<E5 AD>", a partial UTF-8 character) are left as they are.
pub fn visible(s: &str) -> String {
    let is_bytes = s.len() > 2
        && s.starts_with('<')
        && s.ends_with('>')
        && s[1..s.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ' ');
    if is_bytes {
        return s.to_string();
    }
    s.replace(' ', "␣").replace('\n', "⏎")
}

/// The line a view shows when its data is not there yet; true if it showed it.
pub fn missing_ui(ui: &mut Ui, cx: &ViewCtx<'_>, key: HookKey) -> bool {
    if cx.s.trace.get(key).is_some() {
        return false;
    }
    let pending = cx.s.detail_pending();
    let msg = if cx.grads() {
        cx.lang.tf(
            format!("The backward pass records no gradient for `{key}`: step to another op, or switch the gradients off."),
            format!("反向传播没有为 `{key}` 记录梯度：请换一个算子，或关闭梯度显示。"),
        )
    } else if let Some(detail) = pending {
        let window = cx.s.long.as_ref().map(|l| l.range()).unwrap_or_default();
        let (a, b) = (window.start, window.end.saturating_sub(1));
        match detail {
            glassbox_engine::long::recompute::Detail::Layer(l) => cx.lang.tf(
                format!("Computing layer {l}… (positions {a}–{b}, recomputed from the kept residual stream)"),
                format!("正在计算第 {l} 层……（位置 {a}–{b}，根据保存的残差流重新计算）"),
            ),
            glassbox_engine::long::recompute::Detail::Output => cx.lang.tf(
                format!("Computing the output head… (positions {a}–{b})"),
                format!("正在计算输出层……（位置 {a}–{b}）"),
            ),
        }
    } else if cx.s.n_tokens() == 0 && !cx.s.running {
        cx.lang.tf(
            "Type a prompt and press Run to see the model's numbers.".into(),
            "输入提示词并点击“运行”，即可看到模型的真实数值。".into(),
        )
    } else if cx.s.running {
        cx.lang
            .tf(format!("Computing `{key}`…"), format!("正在计算 `{key}`……"))
    } else {
        cx.lang.tf(
            format!("`{key}` was not recorded in this pass."),
            format!("这次前向传播没有记录 `{key}`。"),
        )
    };
    ui.add_space(20.0);
    ui.label(RichText::new(msg).size(crate::gui::theme::font_px(ui, 16.0)).color(cx.theme.muted()));
    if (cx.s.running && !cx.s.long_running()) || pending.is_some() {
        ui.spinner();
    }
    true
}

/// A tensor's shape as a shape, not an index: "9 × 12 × 12 (head × q_pos × k_pos)".
pub fn shape_text(t: &glassbox_engine::Tensor) -> String {
    let sizes: Vec<String> = t.shape().iter().map(ToString::to_string).collect();
    let names: Vec<&str> = t.dims.iter().map(|d| d.name()).collect();
    format!("{} ({})", sizes.join(" × "), names.join(" × "))
}

/// A heading with the hook names it shows, so teachers can point at the right tensor.
pub fn title_ui(ui: &mut Ui, cx: &ViewCtx<'_>, title: &str, hooks: &[HookKey]) {
    ui.horizontal_wrapped(|ui| {
        ui.heading(title);
        for key in hooks {
            let shape = if cx.presenting {
                String::new()
            } else {
                cx.s.trace.get(*key).map(shape_text).unwrap_or_default()
            };
            // Gradients are named as such, in the accent colour, wherever a hook is named.
            let color = if cx.grads() { cx.theme.accent() } else { cx.theme.muted() };
            ui.label(RichText::new(format!("{}{key} {shape}", cx.d())).monospace().color(color));
        }
    });
}

/// A signed `[pos, width]` tensor as a diverging heatmap: one labelled row per token, the
/// selected position marked, `row_height` points per row within `height` bounds, coloured by
/// `opts` (linear, per row or robust; position 0 may be hidden). Returns the heatmap's
/// response (rows counted from the first shown position), the fitted scale, the row labels
/// shown (for exports) and the first row shown.
#[allow(clippy::too_many_arguments)]
pub fn positions_heatmap_ui(
    ui: &mut Ui,
    cx: &ViewCtx<'_>,
    tex: &mut CachedTexture,
    key: HookKey,
    t: ndarray::ArrayView2<'_, f32>,
    opts: ScaleOpts,
    width: f32,
    row_height: f32,
    height: (f32, f32),
) -> (HeatmapResponse, ColorScale, Vec<String>, usize) {
    let (all_rows, cols) = (t.nrows(), t.ncols());
    // Rows are positions here: "hide position 0" drops the first row.
    let first = opts.first_col(all_rows);
    let rows = all_rows - first;
    let scale = ColorScale::fit(rows, cols, 0, true, opts.mode, |r, c| t[[r + first, c]]);
    let sc = scale.clone();
    let tex = tex.get(
        ui.ctx(),
        &key.to_string(),
        key_of((cx.s.trace_pass, key, opts)),
        || heatmap::image(rows, cols, |r, c| sc.color(Colormap::Diverging, r, t[[r + first, c]])),
    );
    let labels: Vec<String> = cx.axis_labels().into_iter().skip(first).collect();
    let axes = Axes {
        row_labels: Some(&labels),
        marked_row: cx.s.sel.position.checked_sub(first),
        square: false,
        ..Axes::default()
    };
    let size = egui::vec2(width, (rows as f32 * row_height).clamp(height.0, height.1));
    let hm = heatmap_ui(ui, tex, rows, cols, size, &axes, &cx.theme);
    (hm, scale, labels, first)
}

/// Max |v| of an iterator, ignoring non-finite values (masked −∞).
pub fn max_abs(values: impl Iterator<Item = f32>) -> f32 {
    values
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Formats a value for read-outs: fixed for ordinary sizes, scientific for tiny/huge; a
/// NaN or an infinity says so.
pub fn fmt_val(v: f32) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f32::NEG_INFINITY {
        "−∞".into()
    } else if v == f32::INFINITY {
        "+∞".into()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e4) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}
