//! §3.2 of the article, live: the computation graph is built for each input. The `Step`
//! program is the same for every input, but the shape of every tensor follows the input's
//! length, and during generation each new token runs the program with one row of queries
//! against a KV cache that grows by one position per token. Shapes and cache sizes come from
//! the engine (`graph`); shapes are checked against the recorded trace.

use egui::{Align2, FontId, Rect, RichText, Sense, Stroke, Ui, pos2, vec2};
use glassbox_engine::program::graph::{self, KvCacheSizes};
use glassbox_engine::HookKey;

use crate::gui::model_table;
use crate::gui::views::{Request, ViewCtx};

/// Bytes in KiB / MiB / GiB.
pub fn bytes_text(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

fn shape_text(s: &[usize]) -> String {
    let parts: Vec<String> = s.iter().map(ToString::to_string).collect();
    parts.join(" × ")
}

pub fn graph_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>) {
    let c = cx.s.model.config.clone();
    let n_prompt = cx.s.n_tokens();
    let program = glassbox_engine::program::step::Program::of(&c).steps().to_vec();
    if !cx.presenting {
        ui.label(RichText::new(cx.tr(
            "A dynamic graph: the program below is the same for every input, but each tensor's shape is decided by this input. Prefill runs all tokens at once; each generated token then runs the whole program again with one query row, reading K and V of every earlier position from the cache.",
            "动态计算图：下面的步骤程序对每个输入都一样，但每个张量的形状由这次的输入决定。预填充（prefill）一次处理所有词元；之后每生成一个词元，都用一行查询把整个程序再跑一遍，并从缓存里读出之前所有位置的 K 和 V。",
        )).color(cx.theme.muted()));
    }
    ui.label(
        RichText::new(cx.lang.tf(
            format!(
                "{} steps · this input: {n_prompt} tokens · KV cache now: {} positions",
                program.len(),
                cx.s.cache_len
            ),
            format!(
                "共 {} 步 · 本次输入：{n_prompt} 个词元 · 当前 KV 缓存：{} 个位置",
                program.len(),
                cx.s.cache_len
            ),
        ))
        .strong(),
    );
    let avail = ui.available_size();
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.set_width((avail.x * 0.48).max(320.0));
            shapes_ui(ui, cx, n_prompt);
        });
        ui.separator();
        ui.vertical(|ui| kv_cache_ui(ui, cx));
    });
}

/// Layer 0's steps and the final ones (the other layers repeat layer 0), with the shape of
/// what each records for this prefill and for the next generated token.
fn shapes_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, n: usize) {
    let c = &cx.s.model.config;
    let prefill = graph::program_shapes(c, n.max(1), 0);
    let decode = graph::program_shapes(c, 1, n.max(1));
    let mut mismatches = 0;
    egui::ScrollArea::vertical()
        .id_salt("graph-shapes")
        .max_height(ui.available_height() - 30.0)
        .show(ui, |ui| {
            egui::Grid::new("graph-grid").striped(true).show(ui, |ui| {
                for h in [
                    cx.tr("step", "步骤"),
                    cx.tr("records", "记录"),
                    cx.lang.tr("prefill", "预填充"),
                    cx.tr("next token", "下一个词元"),
                ] {
                    ui.label(RichText::new(h).strong());
                }
                ui.end_row();
                for (p, d) in prefill.iter().zip(&decode) {
                    if p.step.layer().is_some_and(|l| l > 0) {
                        continue;
                    }
                    for ((key, sp), (_, sd)) in p.outputs.iter().zip(&d.outputs) {
                        let name = match key {
                            HookKey::Block(_, h) => h.name().to_string(),
                            other => other.to_string(),
                        };
                        let recorded = cx.s.trace.get(*key).map(|t| t.shape().to_vec());
                        let ok = recorded.as_deref().is_none_or(|r| r == sp.as_slice());
                        if !ok {
                            mismatches += 1;
                        }
                        if ui.link(RichText::new(p.step.to_string()).monospace()).clicked() {
                            cx.requests.push(Request::Goto(p.step));
                        }
                        ui.label(RichText::new(name).monospace().small());
                        // Orange: the shape also follows the cache (queries meet every cached key).
                        let color = if sd.contains(&(n.max(1) + 1)) {
                            cx.theme.highlight()
                        } else if sp != sd {
                            cx.theme.accent()
                        } else {
                            cx.theme.text()
                        };
                        ui.label(RichText::new(shape_text(sp)).monospace().color(color));
                        ui.label(RichText::new(shape_text(sd)).monospace().color(color));
                        ui.end_row();
                    }
                }
            });
        });
    let layers = cx.s.model.config.n_layers();
    ui.label(
        RichText::new(cx.lang.tf(
            format!(
                "Layers 1–{} repeat layer 0. Blue: follows the number of new tokens; orange: also the cached positions. {}",
                layers.saturating_sub(1),
                if mismatches == 0 {
                    "Every shape equals the recorded trace's."
                } else {
                    "Some shapes differ from the trace!"
                }
            ),
            format!(
                "第 1–{} 层与第 0 层相同。蓝色：随新词元的个数变化；橙色：还随缓存的位置数变化。{}",
                layers.saturating_sub(1),
                if mismatches == 0 {
                    "每个形状都与记录中的张量一致。"
                } else {
                    "有形状与记录不一致！"
                }
            ),
        ))
        .small(),
    );
}

/// One line of the cache plot: English and Chinese label, the size it reads, colour group.
type Line = (&'static str, &'static str, fn(&KvCacheSizes) -> u64, usize);

/// Bytes of the cache against positions: this model's grouped-query cache and a multi-head
/// one, in f32 and f16, with the current length marked; generate to watch it grow.
fn kv_cache_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>) {
    let c = cx.s.model.config.clone();
    let now = cx.s.cache_len;
    ui.label(RichText::new(cx.tr("KV cache size", "KV 缓存大小")).strong());
    ui.label(
        RichText::new(cx.lang.tf(
            format!(
                "{} layers × 2 (K, V) × kv_heads × {} × positions × bytes per number",
                c.n_layers(),
                c.d_head()
            ),
            format!(
                "{} 层 × 2（K、V）× kv_heads × {} × 位置数 × 每个数的字节数",
                c.n_layers(),
                c.d_head()
            ),
        ))
        .small(),
    );
    ui.horizontal(|ui| {
        let busy = cx.s.running;
        for n in [1usize, 20] {
            let label = cx
                .lang
                .tf(format!("Generate {n}"), format!("生成 {n} 个"));
            if ui.add_enabled(!busy, egui::Button::new(label)).clicked() {
                cx.requests.push(Request::Generate(n));
            }
        }
        if busy {
            ui.spinner();
        }
    });
    let sizes = graph::kv_cache_sizes(&c, now);
    let lines: [Line; 4] = [
        ("MHA f32", "MHA f32", |s| s.mha_f32, 1),
        ("MHA f16", "MHA f16", |s| s.mha_f16, 1),
        ("GQA f32 (this model)", "GQA f32（本模型）", |s| s.gqa_f32, 0),
        ("GQA f16", "GQA f16", |s| s.gqa_f16, 0),
    ];
    egui::Grid::new("kv-now").striped(true).show(ui, |ui| {
        ui.label("");
        ui.label(RichText::new(cx.lang.tf(format!("at {now}"), format!("{now} 个位置"))).strong());
        ui.label(RichText::new(cx.lang.tf(
            format!("at {}", c.max_position_embeddings),
            format!("{} 个位置", c.max_position_embeddings),
        )).strong());
        ui.label(RichText::new("kv_heads").strong());
        ui.end_row();
        let full = graph::kv_cache_sizes(&c, c.max_position_embeddings);
        for (en, zh, get, g) in lines {
            let color = cx.theme.group_color(g);
            ui.label(RichText::new(cx.tr(en, zh)).color(color).strong());
            ui.label(RichText::new(bytes_text(get(&sizes))).monospace());
            ui.label(RichText::new(bytes_text(get(&full))).monospace());
            let heads = if g == 1 { c.n_heads() } else { c.n_kv_heads() };
            ui.label(RichText::new(heads.to_string()).monospace());
            ui.end_row();
        }
    });
    window_note_ui(ui, cx, &c);
    // The plot: bytes against positions, up to a bit past the current length.
    let max_pos = (now.max(16) * 2).min(c.max_position_embeddings.max(1));
    let top = graph::kv_cache_sizes(&c, max_pos).mha_f32.max(1);
    let w = ui.available_width().clamp(240.0, 520.0);
    let font = FontId::proportional(crate::gui::theme::font_px(ui, 11.0));
    // Margins for the tick labels, in proportion to their size ("306.0 KiB" at the left).
    let em = font.size / 11.0;
    // Below the plot: a line of ticks, then the axis title.
    let below = 6.0 + 2.6 * font.size;
    let (rect, _) = ui.allocate_exact_size(vec2(w, 162.0 + below), Sense::hover());
    let plot = Rect::from_min_max(rect.min + vec2(62.0 * em, 8.0), rect.max - vec2(8.0, below));
    let painter = ui.painter_at(rect);
    painter.rect_stroke(plot, 0.0, Stroke::new(1.0, cx.theme.faint()), egui::StrokeKind::Inside);
    let at = |p: usize, b: u64| {
        pos2(
            plot.min.x + plot.width() * p as f32 / max_pos as f32,
            plot.max.y - plot.height() * b as f32 / top as f32,
        )
    };
    for k in 0..=4 {
        let b = top * k / 4;
        let y = at(0, b).y;
        painter.text(pos2(plot.min.x - 4.0, y), Align2::RIGHT_CENTER, bytes_text(b), font.clone(), cx.theme.text());
    }
    for k in 0..=4 {
        let p = max_pos * k / 4;
        // The last tick ends at the plot's edge rather than spilling past it.
        let align = if k == 4 { Align2::RIGHT_TOP } else { Align2::CENTER_TOP };
        painter.text(at(p, 0) + vec2(0.0, 3.0), align, p.to_string(), font.clone(), cx.theme.text());
    }
    painter.text(
        pos2(plot.center().x, rect.max.y - 1.3 * font.size),
        Align2::CENTER_TOP,
        cx.tr("cached positions", "缓存的位置数"),
        font.clone(),
        cx.theme.muted(),
    );
    for (_, _, get, g) in lines {
        let end = get(&graph::kv_cache_sizes(&c, max_pos));
        painter.line_segment([at(0, 0), at(max_pos, end)], Stroke::new(2.0, cx.theme.group_color(g)));
    }
    let x = at(now, 0).x;
    painter.line_segment([pos2(x, plot.min.y), pos2(x, plot.max.y)], Stroke::new(2.0, cx.theme.highlight()));
    painter.text(pos2(x + 3.0, plot.min.y + 2.0), Align2::LEFT_TOP, cx.tr("now", "当前"), font, cx.theme.highlight());
    // The same arithmetic for Llama 3.1 8B at its full context, from the bundled config.
    if let Some(l8) = model_table::bundled()
        .ok()
        .and_then(|cards| cards.into_iter().find(|m| m.name.contains("8B")))
    {
        let n = l8.config.max_position_embeddings;
        let s = graph::kv_cache_sizes(&l8.config, n);
        ui.label(
            RichText::new(cx.lang.tf(
                format!(
                    "Llama 3.1 8B at {n} tokens: GQA f16 {} vs MHA f16 {} ({} K/V heads instead of {}).",
                    bytes_text(s.gqa_f16),
                    bytes_text(s.mha_f16),
                    l8.config.n_kv_heads(),
                    l8.config.n_heads()
                ),
                format!(
                    "Llama 3.1 8B 在 {n} 个词元时：GQA f16 {}，MHA f16 则是 {}（{} 个 K/V 头，而不是 {} 个）。",
                    bytes_text(s.gqa_f16),
                    bytes_text(s.mha_f16),
                    l8.config.n_kv_heads(),
                    l8.config.n_heads()
                ),
            ))
            .small(),
        );
    }
}

/// Sliding-window layers (Gemma 3's local ones) keep only their window of keys and values:
/// the table above counts every layer at every position, the engine's `ArchStats` the cache
/// this model needs at its full context.
fn window_note_ui(ui: &mut Ui, cx: &ViewCtx<'_>, c: &glassbox_engine::LlamaConfig) {
    let Some(window) = cx.s.model.arch.layers.iter().find_map(|l| match l.mask {
        glassbox_engine::load::arch::AttnMask::Sliding { window } => Some(window),
        _ => None,
    }) else {
        return;
    };
    let stats = glassbox_engine::load::arch_stats::ArchStats::new(c);
    let ctx = c.max_position_embeddings;
    let (held, every) = (stats.kv_values_at_context(ctx), stats.kv_values_per_token() * ctx as u64);
    ui.label(RichText::new(cx.lang.tf(
        format!("Local layers hold only their sliding window ({window} positions): at {ctx} positions this model keeps {held} K/V numbers, not {every}."),
        format!("局部层只保留滑动窗口内的 {window} 个位置：在 {ctx} 个位置时，本模型保存 {held} 个 K/V 数值，而不是 {every} 个。"),
    )).color(cx.theme.muted()));
}
