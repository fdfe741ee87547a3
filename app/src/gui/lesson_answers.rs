//! The answers to a lesson's questions (`[[questions]]`, format in lessons/README.md): a
//! template of `{{names}}`, each a number of the model's config (`lesson_numbers`) or a
//! reading of the pass the app holds (below). Nothing here computes model math: it reads
//! the engine's tensors (`hook_probs`, `attn.hook_pattern`), the analysis the worker made
//! (residual norms, losses) and the KV cache length the engine reports.

use glassbox_engine::program::graph;
use glassbox_engine::{BlockHook, HookKey, LlamaConfig};

use super::lesson_numbers;
use super::lessons::Question;
use super::session::Session;
use super::views::visible;

/// The names read off the current pass; each needs a pass the app has run.
pub const TRACE_NAMES: [&str; 20] = [
    "n_tokens",
    "first_token",
    "top1_token",
    "top1_prob",
    "top2_token",
    "top2_prob",
    "sampled_token",
    "sel_layer",
    "sel_head",
    "attn_query",
    "attn_top_key",
    "attn_top_key_token",
    "attn_top_weight",
    "first_token_weight",
    "resid_norm_first",
    "resid_norm_last",
    "resid_norm_growth",
    "mean_loss",
    "kv_cache_bytes",
    "kv_cache_positions",
];

/// A question's answer as the panel and the handout show it.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ready(String),
    /// It reads the pass, and there is none yet (or it lacks the tensor).
    NeedsRun,
    /// Names with no value (a broken lesson: shown, never hidden).
    Unknown(Vec<String>),
}

impl Answer {
    /// The text for a reader in `lang`.
    pub fn text(&self, lang: super::i18n::Lang) -> String {
        match self {
            Answer::Ready(t) => t.clone(),
            Answer::NeedsRun => lang
                .tr("Run the prompt first: this answer reads the forward pass.", "请先运行提示词：这个答案要读前向传播的结果。")
                .to_string(),
            Answer::Unknown(names) => format!("{{{{{}}}}}: ?", names.join("}}, {{")),
        }
    }
}

/// The question with its config numbers filled in.
pub fn question_text(q: &Question, config: &LlamaConfig) -> String {
    lesson_numbers::fill(&q.text, config).0
}

/// Fills `template` from `config` and the session's pass (`None`: no model running).
pub fn answer(template: &str, config: &LlamaConfig, s: Option<&Session>) -> Answer {
    let mut needs_run = false;
    let (text, unknown) = lesson_numbers::fill_names(template, |name| {
        if !TRACE_NAMES.contains(&name) {
            return lesson_numbers::config_value(config, name);
        }
        let v = s.and_then(|s| trace_value(s, name));
        needs_run |= v.is_none();
        Some(v.unwrap_or_default())
    });
    if !unknown.is_empty() {
        Answer::Unknown(unknown)
    } else if needs_run {
        Answer::NeedsRun
    } else {
        Answer::Ready(text)
    }
}

/// The value of trace name `name` for the session's current pass; `None` without one.
pub fn trace_value(s: &Session, name: &str) -> Option<String> {
    let n = s.n_tokens();
    if n == 0 {
        return None;
    }
    let last = n - 1;
    Some(match name {
        "n_tokens" => n.to_string(),
        "first_token" => quoted(s, *s.trace.token_ids.first()?),
        "top1_token" => quoted(s, ranked(s, 0)?.0),
        "top1_prob" => percent(ranked(s, 0)?.1),
        "top2_token" => quoted(s, ranked(s, 1)?.0),
        "top2_prob" => percent(ranked(s, 1)?.1),
        "sampled_token" => quoted(s, s.trace.sampled?),
        "sel_layer" => s.sel.layer.to_string(),
        "sel_head" => s.sel.head.to_string(),
        "attn_query" => (s.trace.pos_offset + query(s)).to_string(),
        "attn_top_key" => (s.trace.pos_offset + top_key(s)?.0).to_string(),
        "attn_top_key_token" => quoted(s, *s.trace.token_ids.get(top_key(s)?.0)?),
        "attn_top_weight" => percent(top_key(s)?.1),
        "first_token_weight" => percent(pattern_row(s)?.first().copied()?),
        "resid_norm_first" => format!("{:.1}", residual_norm(s, 0, last)?),
        "resid_norm_last" => format!("{:.1}", residual_norm(s, s.n_layers(), last)?),
        "resid_norm_growth" => {
            format!("×{:.1}", residual_norm(s, s.n_layers(), last)? / residual_norm(s, 0, last)?.max(f32::MIN_POSITIVE))
        }
        "mean_loss" => {
            let losses = s.analysis.as_ref()?.losses.as_ref().filter(|l| !l.is_empty())?;
            format!("{:.2}", losses.iter().sum::<f32>() / losses.len() as f32)
        }
        "kv_cache_bytes" => {
            let bytes = graph::kv_cache_sizes(&s.model.config, s.cache_len).gqa_f32;
            format!("{} B", lesson_numbers::grouped(bytes))
        }
        "kv_cache_positions" => s.cache_len.to_string(),
        _ => return None,
    })
}

fn quoted(s: &Session, id: u32) -> String {
    format!("“{}”", visible(&s.token_text(id)))
}

fn percent(p: f32) -> String {
    format!("{:.1}%", 100.0 * p)
}

/// The `rank`-th most likely next token after the last position, from `hook_probs` (ties:
/// the lower id first, as the engine's top-k orders them).
fn ranked(s: &Session, rank: usize) -> Option<(u32, f32)> {
    let probs = s.trace.get(HookKey::Probs)?.as_2d()?;
    let row = probs.row(probs.nrows().checked_sub(1)?);
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(rank + 2);
    for (id, &p) in row.iter().enumerate() {
        let at = best.iter().position(|&(_, q)| p > q).unwrap_or(best.len());
        if at <= rank {
            best.insert(at, (id as u32, p));
            best.truncate(rank + 1);
        }
    }
    best.get(rank).copied()
}

/// The query the attention readings use: the last position, the one whose next token the
/// model predicts (position 0 attends only to itself, so the selection's default says little).
fn query(s: &Session) -> usize {
    s.n_tokens().saturating_sub(1)
}

/// The selected head's pattern row at the last query (`attn.hook_pattern`).
fn pattern_row(s: &Session) -> Option<Vec<f32>> {
    let t = s.trace.get(HookKey::Block(s.sel.layer, BlockHook::Pattern))?.as_3d()?;
    let (heads, rows, _) = t.dim();
    let (head, q) = (s.sel.head, query(s));
    (head < heads && q < rows).then(|| t.slice(ndarray::s![head, q, ..]).to_vec())
}

/// The key position the selected head weights most at the last query, and its weight.
fn top_key(s: &Session) -> Option<(usize, f32)> {
    let row = pattern_row(s)?;
    row.iter()
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (k, &p)| match best {
            Some((_, b)) if b >= p => best,
            _ => Some((k, p)),
        })
}

/// The residual stream's norm after block `layer` (0 = the embedding) at `pos`, as the
/// worker's analysis read it.
fn residual_norm(s: &Session, layer: usize, pos: usize) -> Option<f32> {
    s.analysis.as_ref()?.residual_norms.as_ref()?.get(layer)?.get(pos).copied()
}
