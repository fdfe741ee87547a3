//! The `tokenizers` crate on a model's `tokenizer.json`, plus what a person needs to see a
//! token: its display text and raw bytes (a token holding part of a UTF-8 character shows its
//! bytes, not "�"), and the chat template rendered with minijinja in a sandbox.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{EngineError, Result};

/// Fuel and output caps keep a hostile template from looping or growing without bound.
const TEMPLATE_FUEL: u64 = 200_000;
const TEMPLATE_MAX_OUTPUT: usize = 1 << 20;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    chat_template: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    /// GPT-2 byte-level alphabet: the char a piece uses for each byte, inverted.
    byte_of_char: HashMap<char, u8>,
    byte_level: bool,
}

/// One chat message for the template.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system".into(),
            content: content.into(),
        }
    }
}

impl Tokenizer {
    /// `Ok(None)` when the folder has no `tokenizer.json` (the model then runs on ids alone).
    pub fn load_dir(dir: &Path, model_vocab: usize) -> Result<Option<Self>> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Ok(None);
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| EngineError::Tokenizer(format!("{}: {e}", path.display())))?;
        let n = inner.get_vocab_size(true);
        if n > model_vocab {
            return Err(EngineError::Tokenizer(format!(
                "{}: {n} tokens, but config.json says vocab_size = {model_vocab}; the tokenizer does not belong to this model",
                path.display()
            )));
        }
        let config = read_tokenizer_config(&dir.join("tokenizer_config.json"))?;
        let text_of = |key: &str| -> Option<String> {
            let v = config.get(key)?;
            v.as_str()
                .map(String::from)
                .or_else(|| v.get("content").and_then(|c| c.as_str()).map(String::from))
        };
        let byte_level = std::fs::read_to_string(&path)
            .map(|t| t.contains("\"ByteLevel\""))
            .unwrap_or(false);
        Ok(Some(Self {
            chat_template: text_of("chat_template"),
            bos_token: text_of("bos_token"),
            eos_token: text_of("eos_token"),
            inner,
            byte_of_char: gpt2_byte_decoder(),
            byte_level,
        }))
    }

    /// Ids of `text` with no special tokens added (special tokens in the text are recognized).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    /// The vocabulary piece, e.g. "Ġcapital".
    pub fn piece(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.inner
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }

    /// The raw bytes a token stands for.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(piece) = self.piece(id) else {
            return Vec::new();
        };
        if !self.byte_level || self.is_special(id) {
            return piece.into_bytes();
        }
        let bytes: Option<Vec<u8>> = piece.chars().map(|c| self.byte_of_char.get(&c).copied()).collect();
        bytes.unwrap_or_else(|| piece.into_bytes())
    }

    /// Text for a person: the token's characters, or `<E4 BD>` for a partial character.
    pub fn display(&self, id: u32) -> String {
        let bytes = self.token_bytes(id);
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                let hex: Vec<String> = e.as_bytes().iter().map(|b| format!("{b:02X}")).collect();
                format!("<{}>", hex.join(" "))
            }
        }
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// Renders the chat template for `messages`, optionally adding the assistant prompt.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            EngineError::ChatTemplate(
                "this model's tokenizer_config.json has no chat_template; run without --chat".into(),
            )
        })?;
        render_chat_template(
            template,
            messages,
            add_generation_prompt,
            self.bos_token.as_deref().unwrap_or(""),
            self.eos_token.as_deref().unwrap_or(""),
        )
    }
}

/// Renders a Jinja chat template with fuel and output limits and no access to anything but
/// the values passed in.
pub fn render_chat_template(
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(64);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
    });
    env.add_template("chat", template)
        .map_err(|e| EngineError::ChatTemplate(format!("does not parse: {e}")))?;
    let tmpl = env
        .get_template("chat")
        .map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
    let out = tmpl
        .render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos_token,
            eos_token => eos_token,
        })
        .map_err(|e| EngineError::ChatTemplate(format!("failed to render: {e}")))?;
    if out.len() > TEMPLATE_MAX_OUTPUT {
        return Err(EngineError::ChatTemplate(format!(
            "rendered {} bytes, more than the {TEMPLATE_MAX_OUTPUT}-byte limit",
            out.len()
        )));
    }
    Ok(out)
}

fn read_tokenizer_config(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    if !path.exists() {
        return Ok(serde_json::Map::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| EngineError::Tokenizer(format!("{}: {e}", path.display())))?;
    Ok(value.as_object().cloned().unwrap_or_default())
}

/// GPT-2's reversible byte → printable-char table, inverted.
fn gpt2_byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~')).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = HashMap::new();
    let mut extra = 0u32;
    for b in 0u32..256 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        if let (Some(ch), Ok(byte)) = (char::from_u32(c), u8::try_from(b)) {
            map.insert(ch, byte);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_decoder_maps_space_and_newline() {
        let m = gpt2_byte_decoder();
        assert_eq!(m[&'Ġ'], b' ');
        assert_eq!(m[&'Ċ'], b'\n');
        assert_eq!(m[&'A'], b'A');
        assert_eq!(m.len(), 256);
    }

    #[test]
    fn template_renders_and_loops_are_bounded() {
        let t = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
        let out = render_chat_template(t, &[ChatMessage::user("hi")], true, "", "").unwrap();
        assert_eq!(out, "<user>hi<assistant>");
        let evil = "{% for i in range(100000000) %}x{% endfor %}";
        let err = render_chat_template(evil, &[], false, "", "").unwrap_err();
        assert!(err.to_string().contains("chat template"), "{err}");
    }
}
