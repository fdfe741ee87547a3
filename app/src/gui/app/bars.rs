//! The bars around the view: prompt, step controls, status.

use egui::{Key, RichText, Ui};

use glassbox_engine::long::budget::human;
use glassbox_engine::exec::executor::BackendKind;

use crate::gui::i18n::Lang;
use crate::gui::prompt_input::{CHAR_CAP, PromptInput};
use crate::gui::session::Session;
use crate::gui::theme::Theme;

pub(super) enum Nav {
    Step(isize),
    Layer(isize),
    To(usize),
}

/// Points: about four lines of a multi-line prompt; more scrolls.
const PROMPT_BOX_HEIGHT: f32 = 84.0;

/// `locked`: workshop mode (`workshop.rs`), the prompt is the session's and cannot be edited.
pub(super) fn prompt_bar_ui(ui: &mut Ui, s: &mut Session, input: &mut PromptInput, lang: Lang, locked: bool) {
    input.poll(s, lang);
    input.before_edit(s, lang);
    let chars_before = s.prompt.chars().count();
    ui.horizontal(|ui| {
        ui.label(RichText::new(lang.tr("Prompt", "提示词")).strong());
        let hint = if s.has_tokenizer() {
            lang.tr("type a prompt…", "输入提示词……")
        } else {
            lang.tr(
                "this model has no tokenizer: type token ids, e.g. 12 7 300",
                "这个模型没有分词器：请输入词元 id，例如 12 7 300",
            )
        };
        let width = (ui.available_width() - 330.0).max(200.0);
        // A chat-template prompt (a task's) has newlines: show them as lines, not boxes.
        // A long paste scrolls inside a box of a few lines instead of pushing the views off
        // the window.
        let edit = if s.prompt.contains('\n') {
            egui::ScrollArea::vertical()
                .id_salt("prompt box")
                .max_height(PROMPT_BOX_HEIGHT)
                .show(ui, |ui| {
                    ui.add(
                        egui::TextEdit::multiline(&mut s.prompt)
                            .desired_width(width)
                            .desired_rows(3)
                            .char_limit(CHAR_CAP)
                            .interactive(!locked)
                            .hint_text(hint),
                    )
                })
                .inner
        } else {
            ui.add(
                egui::TextEdit::singleline(&mut s.prompt)
                    .desired_width(width)
                    .char_limit(CHAR_CAP)
                    .interactive(!locked)
                    .hint_text(hint)
                    .font(egui::TextStyle::Body),
            )
        };
        let edit = if locked {
            let why = crate::gui::workshop::locked_text(lang);
            ui.label(RichText::new(lang.tr("locked", "已锁定")).weak().italics()).on_hover_text(why);
            edit.on_hover_text(why)
        } else {
            edit
        };
        if edit.changed() {
            input.after_edit(ui, chars_before, lang);
        }
        let enter = edit.lost_focus()
            && ui.input(|i| i.key_pressed(Key::Enter))
            && !s.prompt.contains('\n');
        let has_template = s
            .model
            .tokenizer
            .as_ref()
            .is_some_and(|t| t.has_chat_template());
        ui.add_enabled(
            has_template && !locked,
            egui::Checkbox::new(&mut s.chat, lang.tr("chat template", "对话模板")),
        );
        let run = ui
            .add_enabled(
                !input.tokenizing(),
                egui::Button::new(RichText::new(lang.tr("Run", "运行")).strong()),
            )
            .clicked();
        if (run || enter) && !input.tokenizing() {
            input.run(ui.ctx(), s, lang);
        }
        if input.tokenizing() {
            ui.spinner();
            ui.label(lang.tr("tokenizing…", "正在分词……"));
        } else if s.running && !s.long_running() {
            // A long pass shows a progress bar instead: a spinner repaints every frame, which
            // on a software renderer takes the CPU the pass needs.
            ui.spinner();
        }
    });
    for n in input.notices.iter().chain(&input.token_notice) {
        ui.colored_label(egui::Color32::from_rgb(190, 120, 0), n.as_str());
    }
    if let Some(e) = &s.error {
        ui.colored_label(egui::Color32::from_rgb(200, 60, 60), e.as_str());
    }
}

/// `view_title`: the tab title of the view that explains the step.
pub(super) fn controls_ui(ui: &mut Ui, s: &Session, lang: Lang, view_title: &str, playing: &mut bool) -> Option<Nav> {
    let mut nav = None;
    ui.horizontal_wrapped(|ui| {
        if ui
            .button(lang.tr("Home", "开头"))
            .on_hover_text("Home")
            .clicked()
        {
            nav = Some(Nav::To(0));
        }
        if ui
            .button(lang.tr("◀ Layer", "◀ 上一层"))
            .on_hover_text("Shift+←")
            .clicked()
        {
            nav = Some(Nav::Layer(-1));
        }
        if ui
            .button(lang.tr("◀ Step", "◀ 上一步"))
            .on_hover_text("←")
            .clicked()
        {
            nav = Some(Nav::Step(-1));
        }
        let play = if *playing {
            lang.tr("Pause", "暂停")
        } else {
            lang.tr("Play", "播放")
        };
        if ui.button(play).on_hover_text("Space").clicked() {
            *playing = !*playing;
        }
        if ui
            .button(lang.tr("Step ▶", "下一步 ▶"))
            .on_hover_text("→")
            .clicked()
        {
            nav = Some(Nav::Step(1));
        }
        if ui
            .button(lang.tr("Layer ▶", "下一层 ▶"))
            .on_hover_text("Shift+→")
            .clicked()
        {
            nav = Some(Nav::Layer(1));
        }
        if ui
            .button(lang.tr("End", "结尾"))
            .on_hover_text("End")
            .clicked()
        {
            nav = Some(Nav::To(usize::MAX));
        }
        ui.separator();
        let step = s.cursor_step();
        let ready = if s.step_ready(s.cursor) {
            ""
        } else {
            lang.tr("  (computing…)", "（计算中……）")
        };
        ui.label(
            RichText::new(format!("{step}"))
                .monospace()
                .strong()
                .size(crate::gui::theme::font_px(ui, 17.0)),
        );
        ui.label(lang.tf(
            format!(
                "step {} / {} · {}{ready}",
                s.cursor + 1,
                s.program.len(),
                view_title
            ),
            format!(
                "第 {} / {} 步 · {}{ready}",
                s.cursor + 1,
                s.program.len(),
                view_title
            ),
        ));
    });
    nav
}

/// In presenter mode, instead of the timeline: where the cursor is, and the keys.
pub(super) fn presenter_header_ui(ui: &mut Ui, s: &Session, lang: Lang, theme: &Theme) {
    ui.horizontal(|ui| {
        let step = s.cursor_step();
        ui.label(RichText::new(step.to_string()).monospace().strong());
        ui.label(
            RichText::new(lang.tf(
                format!(
                    "step {} / {} · ← → step · Shift+← → layer · Space play · Esc leave",
                    s.cursor + 1,
                    s.program.len()
                ),
                format!(
                    "第 {} / {} 步 · ← → 单步 · Shift+← → 换层 · 空格 播放 · Esc 退出",
                    s.cursor + 1,
                    s.program.len()
                ),
            ))
            .small()
            .color(theme.muted()),
        );
    });
}

/// On the GPU: a button that runs the pass again on the CPU reference, and what the check
/// of the pass on screen found (a divergence stays in red: the numbers are not to be trusted).
fn reference_check_ui(ui: &mut Ui, s: &mut Session, lang: Lang, theme: &Theme) {
    let ready = !s.running && s.computed.is_some();
    if ui
        .add_enabled(ready, egui::Button::new(lang.tr("Check against the CPU reference", "与 CPU 参考实现核对")))
        .on_hover_text(lang.tr(
            "Runs this pass again on the CPU f32 reference and compares every recorded tensor.",
            "在 CPU f32 参考实现上重新运行这次前向传播，并逐个比较记录下来的张量。",
        ))
        .clicked()
    {
        s.check_reference();
    }
    match s.reference_check() {
        Some(Ok(c)) if c.agrees() => {
            ui.colored_label(theme.accent(), lang.tr("matches the CPU reference", "与 CPU 参考实现一致"));
        }
        Some(Ok(c)) => {
            let at = c.first_divergence().map(|h| h.location()).unwrap_or_default();
            ui.colored_label(
                theme.error(),
                lang.tf(format!("DIFFERS from the CPU reference at {at}"), format!("与 CPU 参考实现不一致：{at}")),
            );
        }
        Some(Err(e)) => {
            ui.colored_label(theme.error(), e.as_str());
        }
        None => {}
    }
}

pub(super) fn status_ui(ui: &mut Ui, s: &mut Session, lang: Lang, theme: &Theme) {
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(format!(
                "{} · {} · {}",
                s.model_name(),
                lang.engine_text(&s.model.source.weights_note),
                lang.engine_text(&s.device)
            ))
            .strong(),
        );
        ui.separator();
        let precision = s.precision.name();
        ui.label(format!("{}: {precision}", lang.tr("precision", "精度")));
        weights_setting_ui(ui, lang);
        if s.backend == BackendKind::Gpu {
            reference_check_ui(ui, s, lang, theme);
        }
        if !s.ablate.is_empty() {
            let list: Vec<String> = s.ablate.iter().map(|(l, h)| format!("L{l}H{h}")).collect();
            ui.colored_label(
                theme.error(),
                lang.tf(
                    format!("ablated heads: {}", list.join(" ")),
                    format!("已消融的头：{}", list.join(" ")),
                ),
            );
        }
        ui.separator();
        let done = s.computed.map_or(0, |c| c + 1);
        let n = s.long.as_ref().map_or(s.n_tokens(), |l| l.n_tokens());
        let (held, budget) = (human(s.trace_bytes() as u64), human(s.budget));
        ui.label(lang.tf(
            format!(
                "{n} tokens · computed {done}/{} steps · trace {held} of {budget} · KV cache {}",
                s.program.len(),
                s.cache_len
            ),
            format!(
                "{n} 个词元 · 已计算 {done}/{} 步 · 记录 {held}（预算 {budget}）· KV 缓存 {}",
                s.program.len(),
                s.cache_len
            ),
        ));
    });
}

/// How the next model opened loads its weights (`--weights`, saved in state.json): by the
/// path (a .gguf natively, a folder in f32), native (a GGUF's blocks as downloaded) or f32.
fn weights_setting_ui(ui: &mut Ui, lang: Lang) {
    use glassbox_engine::WeightsMode;
    let mut choice = crate::weights_choice::get();
    let shown = choice.map_or(lang.tr("by file", "按文件"), |m| m.name());
    egui::ComboBox::from_id_salt("weights_setting")
        .selected_text(format!("{}: {shown}", lang.tr("weights", "权重")))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut choice, None, lang.tr("by file (.gguf native, folder f32)", "按文件（.gguf 原样，文件夹 f32）"));
            ui.selectable_value(&mut choice, Some(WeightsMode::Native), lang.tr("native: GGUF blocks as downloaded", "原样：GGUF 量化块"));
            ui.selectable_value(&mut choice, Some(WeightsMode::F32), "f32");
        })
        .response
        .on_hover_text(lang.tr("applies to the next model you open", "对下一个打开的模型生效"));
    if choice != crate::weights_choice::get() {
        crate::weights_choice::set(choice);
    }
}

/// Above the view during a long pass: its progress, then which positions the views show,
/// with controls to move that window, and the block being recomputed.
pub(super) fn long_bar_ui(ui: &mut Ui, s: &mut Session, lang: Lang, theme: &Theme) {
    let Some(l) = &s.long else { return };
    let n = l.n_tokens();
    let (start, rows, done, ready) = (l.start, l.rows, l.done, l.overview.is_some());
    let pending = s.detail_pending();
    let mut move_to = None;
    ui.horizontal_wrapped(|ui| {
        if !ready {
            let bar = egui::ProgressBar::new(done as f32 / n.max(1) as f32).desired_width(160.0).animate(false);
            ui.add(bar);
            ui.label(RichText::new(lang.tf(
                format!("Long prompt: {done} of {n} tokens run, in chunks; only the cheap tensors are kept, a layer's detail is recomputed when a view shows it."),
                format!("长提示词：已运行 {done} / {n} 个词元（分块运行）；只保存开销小的张量，某一层的细节在视图需要时重新计算。"),
            )).color(theme.accent()));
            return;
        }
        let label = ui.label(RichText::new(lang.tf(format!("Long prompt, {n} tokens: the views show positions"), format!("长提示词，{n} 个词元：视图显示位置"))).strong());
        let mut first = start;
        let last_start = n.saturating_sub(rows);
        if ui.add(egui::DragValue::new(&mut first).range(0..=last_start).speed(8.0)).labelled_by(label.id).changed() {
            move_to = Some(first);
        }
        ui.label(format!("– {}", start + rows - 1));
        if ui.button(lang.tr("◀ earlier", "◀ 往前")).clicked() {
            move_to = Some(start.saturating_sub(rows));
        }
        if ui.button(lang.tr("later ▶", "往后 ▶")).clicked() {
            move_to = Some((start + rows).min(last_start));
        }
        if ui.button(lang.tr("end", "末尾")).clicked() {
            move_to = Some(last_start);
        }
        match pending {
            Some(d) => {
                ui.spinner();
                let what = match d {
                    glassbox_engine::long::recompute::Detail::Layer(layer) => lang.tf(format!("computing layer {layer}…"), format!("正在计算第 {layer} 层……")),
                    glassbox_engine::long::recompute::Detail::Output => lang.tr("computing the output head…", "正在计算输出层……").to_string(),
                };
                ui.label(RichText::new(what).color(theme.accent()));
            }
            None => {
                ui.label(RichText::new(lang.tr(
                    "(each layer's detail is recomputed for these positions from the kept residual stream)",
                    "（每层的细节都根据保存的残差流，为这些位置重新计算）",
                )).small().color(theme.muted()));
            }
        }
    });
    if let Some(first) = move_to {
        s.set_window_start(first);
    }
}
