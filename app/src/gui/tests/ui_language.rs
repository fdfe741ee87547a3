//! Every view (and every sub-panel) rendered in Chinese shows no English UI words: the text
//! egui actually painted this frame is collected (labels, buttons, heatmap axes, colour bars,
//! the status bar) and checked against a list of English words the UI uses. Hook names,
//! step names and formulas (with `.`, `_`, digits or symbols) are exempt: they are the same
//! in both languages.

use egui::epaint::Shape;

use super::{app_on, fixture_ids, fixture_model, harness};
use crate::gui::i18n::Lang;
use crate::gui::views::{ViewId, registry};

/// English words of the UI's own strings (lowercase). A word here, painted in Chinese mode,
/// is an untranslated string.
const ENGLISH: &[&str] = &[
    "the", "and", "of", "to", "with", "for", "from", "this", "that", "each", "every", "after",
    "before", "position", "positions", "layer", "layers", "head", "heads", "token", "tokens",
    "value", "values", "scale", "colour", "color", "linear", "log", "per", "row", "robust",
    "hide", "norm", "writes", "write", "lens", "probability", "loss", "neuron", "neurons", "step",
    "steps", "run", "prompt", "generate", "sample", "temperature", "model", "query", "key",
    "show", "click", "hover", "mean", "view", "next", "previous", "first", "last", "cache",
    "bytes", "attention", "residual", "stream", "output", "tasks", "task", "embedding",
    "diagram", "training", "graph", "sizes", "activation", "activations", "gate", "gates",
    "curves", "negative", "positive", "neutral", "replace", "delete", "insert", "original",
    "augmented", "answer", "input", "seed", "greedy", "sampled", "fixed", "compare", "export",
    "figure", "saved", "computing", "weights", "computed", "reference", "precision", "trace",
    "pattern", "scores", "score", "mask", "causal", "sink", "hidden", "play", "pause", "home",
    "end", "language", "theme", "light", "dark", "zoom", "lesson", "follow", "open", "quit",
    "file", "present", "presenter", "leave", "parameters", "vocabulary", "context", "tied",
    "yes", "none", "width", "difference", "now", "prefill", "records", "top", "row max",
];

/// Every string painted in the last frame.
pub(super) fn painted_text(out: &egui::FullOutput) -> Vec<String> {
    fn walk(shape: &Shape, acc: &mut Vec<String>) {
        match shape {
            Shape::Text(t) => acc.push(t.galley.text().to_string()),
            Shape::Vec(v) => v.iter().for_each(|s| walk(s, acc)),
            _ => {}
        }
    }
    let mut acc = Vec::new();
    for clipped in &out.shapes {
        walk(&clipped.shape, &mut acc);
    }
    acc
}

/// `text` without what is in brackets: a Chinese term's English original, "残差流（residual
/// stream）", is given on purpose. A bracket right after a letter is a formula's, "mean(x)",
/// and stays (the chunk is then skipped as an identifier).
fn without_brackets(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    let mut prev = ' ';
    let mut formula = 0usize;
    for c in text.chars() {
        match c {
            '(' if prev.is_ascii_alphanumeric() && depth == 0 => {
                formula += 1;
                out.push(c);
            }
            ')' if formula > 0 && depth == 0 => {
                formula -= 1;
                out.push(c);
            }
            '(' | '（' => depth += 1,
            ')' | '）' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
        prev = c;
    }
    out
}

/// Painted text that is content, not UI: the task examples (the article's English ones) and
/// code. Step names (`scores`, `gate`) are identifiers, the same in both languages.
pub(super) fn exempt(text: &str) -> bool {
    use crate::gui::views::tasks::{API_SNIPPET, CLI_SNIPPET};
    let examples = glassbox_engine::article::tasks::PRESETS.iter().map(|p| p.text);
    text.starts_with("from llama3")
        || API_SNIPPET.contains(text.trim())
        || CLI_SNIPPET == text
        || examples
            .chain(crate::gui::views::tasks::LESSON_EXAMPLES.iter().map(|e| e.1))
            .any(|e| text.contains(&crate::gui::heatmap::short_label(e, 60)) || e == text)
        || glassbox_engine::LayerOp::ALL.iter().any(|op| op.name() == text)
        || ["embed", "ln_final", "logits", "probs", "sample"].contains(&text)
}

/// The English UI words in `text`, skipping identifiers, formulas and bracketed originals.
pub(super) fn english_words(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let text = without_brackets(text);
    for chunk in text.split(|c: char| c.is_whitespace() || "，。：；（）“”、·|".contains(c)) {
        let identifier = chunk.chars().any(|c| "._/=#[]()+−-<>{}@^*".contains(c) || c.is_ascii_digit());
        if identifier || chunk.is_empty() {
            continue;
        }
        let word: String = chunk
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_lowercase();
        // Mixed Chinese + ASCII in one chunk ("第0层") is split by the filter above; only a
        // chunk that is all ASCII letters is a word.
        if chunk.chars().all(|c| c.is_ascii_alphabetic() || ",!?'’:".contains(c))
            && ENGLISH.contains(&word.as_str())
        {
            found.push(word);
        }
    }
    found
}

#[test]
fn the_word_finder_finds_english_and_skips_identifiers() {
    assert_eq!(english_words("Hide position 0"), vec!["hide", "position"]);
    assert!(english_words("blocks.1.attn.hook_pattern 9 × 17 (head × q_pos)").is_empty());
    assert!(english_words("隐藏位置 0 · 对数 · RMSNorm · top-k").is_empty());
    assert!(english_words("残差流（residual stream）").is_empty());
    assert!(english_words("mean(x) = 0.1 · LayerNorm 除以 2").is_empty());
    assert!(exempt("scores") && !exempt("the scores"));
}

#[test]
fn every_view_and_panel_is_chinese_in_chinese() {
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    // Results in every experiment panel, so their tables, grids and notes are painted too.
    super::experiments::run_every_experiment(&mut h);
    h.state_mut().lang = Lang::Zh;
    // The lessons are checked on their own (they give English originals in the text).
    h.state_mut().show_lesson = false;
    // The side-by-side runs (its `compare-gemma` mode) inside the frame, so frames settle.
    if let Some(v) = h.state_mut().ready().and_then(|r| r.views.get_mut::<crate::gui::views::side_by_side::SideBySideView>()) {
        v.inline = true;
    }
    let views = registry::catalog();
    let mut screens: Vec<(ViewId, Option<&str>)> = views.iter().map(|v| (v.id, None)).collect();
    screens.extend(views.iter().flat_map(|v| v.modes.iter().map(|&m| (v.id, Some(m)))));
    let mut problems = Vec::new();
    for presenting in [false, true] {
        for &(view, mode) in &screens {
            {
                let app = h.state_mut();
                app.presenting = presenting;
                let r = app.ready().expect("ready");
                // Steps inside a layer, so the layer views have their data.
                r.s.goto(glassbox_engine::Step::Layer(1, glassbox_engine::LayerOp::SiluMul));
                if let Some(m) = mode {
                    r.views.set_mode(m);
                }
                app.view = view;
            }
            h.run();
            h.run();
            let mut words: Vec<String> = painted_text(h.output())
                .iter()
                .filter(|t| !exempt(t))
                .flat_map(|t| english_words(t))
                .collect();
            words.sort();
            words.dedup();
            if !words.is_empty() {
                problems.push(format!("{view:?} {mode:?} presenting={presenting}: {words:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "English in the Chinese UI:\n{}", problems.join("\n"));
}
