//! Keeping the prompt box safe from huge input: the text is capped at [`CHAR_CAP`]
//! characters (a 1 MB paste keeps its start, with a notice), a long prompt is tokenized on a
//! background thread (the UI keeps drawing), and the ids are cut to the model's context with
//! a notice. Long prompts fit in memory because the worker keeps only the cheap tensors of a
//! pass that would not fit the memory budget (`budget::plan`).

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};

use glassbox_engine::Model;
use glassbox_engine::load::tokenizer::ChatMessage;

use super::i18n::Lang;
use super::session::Session;

/// Characters the prompt box holds: room for a full 8,192-token context of ordinary text.
pub const CHAR_CAP: usize = 120_000;
/// Prompts up to this many characters are tokenized at once on the UI thread.
const INLINE_CHARS: usize = 2_000;

/// `text` cut to `cap` characters (at a character boundary); the original length in
/// characters when it was cut.
pub fn cap_chars(text: &mut String, cap: usize) -> Option<usize> {
    let (at, _) = text.char_indices().nth(cap)?;
    let total = cap + text[at..].chars().count();
    text.truncate(at);
    Some(total)
}

/// Tokens a pass may use on `model`: its context.
pub fn token_cap(model: &Model) -> usize {
    model.config.max_position_embeddings
}

/// What a tokenization job reports.
struct Tokenized {
    /// The (prompt, chat) the ids are for.
    key: (String, bool),
    result: Result<(Vec<u32>, usize), String>,
}

/// A gate tests close to hold a background tokenization, proving the UI draws meanwhile.
pub type Gate = Arc<(Mutex<bool>, Condvar)>;

#[derive(Default)]
pub struct PromptInput {
    /// Shown under the prompt bar: a paste cut to the character cap (until the next run).
    pub notices: Vec<String>,
    /// Shown under the prompt bar while the run's ids are the cut ones.
    pub token_notice: Option<String>,
    job: Option<Receiver<Tokenized>>,
    /// `Session::fixed_ids` was set by us, for this (prompt, chat).
    ids_for: Option<(String, bool)>,
    /// Held shut by tests; `None` in the app.
    pub gate: Option<Gate>,
}

impl PromptInput {
    pub fn tokenizing(&self) -> bool {
        self.job.is_some()
    }

    /// Every frame, before the prompt box: caps text that arrived by other routes
    /// (restored state, an action) and forgets ids tokenized for a prompt since edited.
    pub fn before_edit(&mut self, s: &mut Session, lang: Lang) {
        if s.prompt.len() > CHAR_CAP
            && let Some(total) = cap_chars(&mut s.prompt, CHAR_CAP)
        {
            self.notices.push(cut_notice(lang, total));
        }
        let key = (s.prompt.clone(), s.chat);
        if self.ids_for.as_ref().is_some_and(|k| *k != key) {
            self.ids_for = None;
            s.fixed_ids = None;
            self.token_notice = None;
        }
    }

    /// After the prompt box: a paste the cap shortened gets a notice.
    pub fn after_edit(&mut self, ui: &egui::Ui, chars_before: usize, lang: Lang) {
        let pasted = ui.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::Paste(t) => Some(t.chars().count()),
                    _ => None,
                })
                .max()
        });
        if let Some(n) = pasted
            && chars_before + n > CHAR_CAP
        {
            self.notices.push(cut_notice(lang, chars_before + n));
        }
    }

    /// Run pressed: short prompts run at once; long ones are tokenized in the background
    /// and run when their ids arrive. Ids beyond the token cap are cut with a notice.
    pub fn run(&mut self, ctx: &egui::Context, s: &mut Session, lang: Lang) {
        self.notices.clear();
        self.token_notice = None;
        if self.ids_for.take().is_some() {
            s.fixed_ids = None;
        }
        let Some(_) = s.model.tokenizer.as_ref() else {
            s.run();
            return;
        };
        if s.prompt.chars().count() <= INLINE_CHARS && self.gate.is_none() {
            let result = tokenize(&s.model, &s.prompt, s.chat);
            self.apply((s.prompt.clone(), s.chat), result, s, lang);
            return;
        }
        let (tx, rx) = mpsc::channel();
        let (model, prompt, chat) = (Arc::clone(&s.model), s.prompt.clone(), s.chat);
        let gate = self.gate.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("glassbox-tokenize".into())
            .spawn(move || {
                if let Some(gate) = gate {
                    let (open, cv) = &*gate;
                    let mut guard = open.lock().unwrap_or_else(|p| p.into_inner());
                    while !*guard {
                        guard = cv.wait(guard).unwrap_or_else(|p| p.into_inner());
                    }
                }
                let result = tokenize(&model, &prompt, chat);
                let _ = tx.send(Tokenized {
                    key: (prompt, chat),
                    result,
                });
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.job = Some(rx),
            Err(e) => s.error = Some(format!("could not start the tokenizer thread: {e}")),
        }
    }

    /// Every frame: a finished background tokenization starts its pass.
    pub fn poll(&mut self, s: &mut Session, lang: Lang) {
        let Some(rx) = &self.job else { return };
        match rx.try_recv() {
            Ok(done) => {
                self.job = None;
                // The user edited the prompt meanwhile: these ids are for old text.
                if done.key == (s.prompt.clone(), s.chat) {
                    self.apply(done.key, done.result, s, lang);
                }
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                self.job = None;
                s.error = Some("the tokenizer thread ended without a result".into());
            }
        }
    }

    fn apply(
        &mut self,
        key: (String, bool),
        result: Result<(Vec<u32>, usize), String>,
        s: &mut Session,
        lang: Lang,
    ) {
        match result {
            Ok((ids, total)) => {
                if ids.len() < total {
                    self.token_notice = Some(lang.tf(
                            format!(
                                "The prompt has {total} tokens; only the first {} are run (the \
                                 model's context).",
                                ids.len()
                            ),
                            format!(
                                "提示词有 {total} 个词元；只运行前 {} 个（模型的上下文长度）。",
                                ids.len()
                            ),
                    ));
                }
                s.fixed_ids = Some(ids);
                self.ids_for = Some(key);
                s.run();
            }
            Err(e) => s.error = Some(e),
        }
    }
}

fn cut_notice(lang: Lang, total: usize) -> String {
    lang.tf(
        format!(
            "The text was {total} characters; the prompt keeps the first {CHAR_CAP}."
        ),
        format!("文本有 {total} 个字符；提示词只保留前 {CHAR_CAP} 个。"),
    )
}

/// Ids of the prompt (chat-wrapped if asked) and how many there were before the cap.
fn tokenize(model: &Model, prompt: &str, chat: bool) -> Result<(Vec<u32>, usize), String> {
    let tok = model
        .tokenizer
        .as_ref()
        .ok_or("this model has no tokenizer")?;
    let text = if chat {
        tok.apply_chat_template(&[ChatMessage::user(prompt)], true)
            .map_err(|e| e.to_string())?
    } else {
        prompt.to_string()
    };
    let mut ids = tok.encode_prompt(&text).map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Err("the prompt has no tokens; type some text".into());
    }
    let total = ids.len();
    ids.truncate(token_cap(model));
    Ok((ids, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_chars_cuts_at_a_character_boundary() {
        let mut t = "深度学习".repeat(3);
        assert_eq!(cap_chars(&mut t, 5), Some(12));
        assert_eq!(t, "深度学习深");
        let mut short = "abc".to_string();
        assert_eq!(cap_chars(&mut short, 5), None);
        assert_eq!(short, "abc");
    }
}
