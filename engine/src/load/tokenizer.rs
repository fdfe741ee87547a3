//! The `tokenizers` crate on a model's `tokenizer.json`, plus what a person needs to see a
//! token: its display text and raw bytes (a token holding part of a UTF-8 character shows its
//! bytes, not "�"), and the chat template rendered with minijinja in a sandbox.

use std::collections::HashMap;
use std::path::Path;

pub use crate::load::chat_template::{ChatMessage, render_chat_template};
use crate::load::chat_template::{CHATML, check_template, template_from_config};
use crate::error::{EngineError, Result};
use crate::load::guard::catch_panic;
use crate::load::tokenizer_check::{MAX_TOKENIZER_BYTES, check_tokenizer_json};

/// How the pieces of a vocabulary spell text, for showing a token's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Pieces {
    /// SentencePiece-style: `▁` is a space and `<0xNN>` one raw byte (BPE with byte fallback).
    pub metaspace: bool,
    /// GPT-2's byte-level alphabet.
    pub byte_level: bool,
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    chat_template: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    /// GPT-2 byte-level alphabet: the char a piece uses for each byte, inverted.
    byte_of_char: HashMap<char, u8>,
    byte_level: bool,
    /// SentencePiece-style pieces (BPE with byte fallback: Gemma, Llama 2): `▁` is a space and
    /// `<0xNN>` one raw byte.
    metaspace: bool,
    /// `add_bos_token` of tokenizer_config.json: prompts start with the BOS id (Gemma).
    add_bos: bool,
    /// Found while loading: a chat template replaced by ChatML, for instance.
    warnings: Vec<String>,
}

impl Tokenizer {
    /// `Ok(None)` when the folder has no `tokenizer.json` (the model then runs on ids alone).
    pub fn load_dir(dir: &Path, model_vocab: usize) -> Result<Option<Self>> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Ok(None);
        }
        let err = |msg: String| {
            EngineError::Tokenizer(crate::error::printable(&format!("{}: {msg}", path.display())))
        };
        let size = std::fs::metadata(&path).map_err(|e| EngineError::io(&path, e))?.len();
        if size > MAX_TOKENIZER_BYTES {
            return Err(err(format!(
                "{size} bytes is more than any real tokenizer ({MAX_TOKENIZER_BYTES} bytes at most)"
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
        let config_path = dir.join("tokenizer_config.json");
        let config = read_tokenizer_config(&config_path)?;
        Self::from_texts(&path, &text, &config_path, config, model_vocab).map(Some)
    }

    /// A tokenizer from tokenizer.json's text and tokenizer_config.json's object held in memory
    /// (a GGUF loaded natively builds both from its metadata); the paths only label errors.
    pub fn from_texts(
        path: &Path,
        text: &str,
        config_path: &Path,
        config: serde_json::Map<String, serde_json::Value>,
        model_vocab: usize,
    ) -> Result<Self> {
        let err = |msg: String| {
            EngineError::Tokenizer(crate::error::printable(&format!("{}: {msg}", path.display())))
        };
        let value = check_tokenizer_json(text).map_err(err)?;
        let metaspace = value["model"]["byte_fallback"].as_bool().unwrap_or(false);
        // The crate panics on some malformed files our checks do not foresee: that is a
        // broken file, reported like any other.
        let inner = catch_panic(|| serde_json::from_value::<tokenizers::Tokenizer>(value))
            .map_err(|panic| err(format!("the tokenizers library cannot read it ({panic}); the file is malformed")))?
            .map_err(|e| err(e.to_string()))?;
        let byte_level = text.contains("\"ByteLevel\"");
        Self::from_inner(path, inner, Pieces { metaspace, byte_level }, config_path, config, model_vocab)
    }

    /// A tokenizer the `tokenizers` crate already holds (a native GGUF's Gemma vocabulary,
    /// built without its JSON), with tokenizer_config.json's object; the paths label errors.
    pub fn from_inner(
        path: &Path,
        inner: tokenizers::Tokenizer,
        pieces: Pieces,
        config_path: &Path,
        config: serde_json::Map<String, serde_json::Value>,
        model_vocab: usize,
    ) -> Result<Self> {
        let Pieces { metaspace, byte_level } = pieces;
        let n = inner.get_vocab_size(true);
        if n > model_vocab {
            return Err(EngineError::Tokenizer(format!(
                "{}: {n} tokens, but config.json says vocab_size = {model_vocab}; the tokenizer does not belong to this model",
                path.display()
            )));
        }
        let text_of = |key: &str| -> Option<String> {
            let v = config.get(key)?;
            v.as_str()
                .map(String::from)
                .or_else(|| v.get("content").and_then(|c| c.as_str()).map(String::from))
        };
        let (bos_token, eos_token) = (text_of("bos_token"), text_of("eos_token"));
        let mut warnings = Vec::new();
        let chat_template = match config.get("chat_template").map(template_from_config) {
            None => None,
            Some(Ok(t)) => t,
            Some(Err(msg)) => {
                warnings.push(format!("{}: {msg}; using the built-in ChatML template", config_path.display()));
                Some(CHATML.to_string())
            }
        };
        let chat_template = chat_template.map(|t| {
            match check_template(&t, bos_token.as_deref().unwrap_or(""), eos_token.as_deref().unwrap_or("")) {
                Ok(()) => t,
                Err(why) => {
                    warnings.push(crate::error::printable(&format!(
                        "{}: the chat template cannot be used ({why}); using the built-in ChatML template instead",
                        config_path.display()
                    )));
                    CHATML.to_string()
                }
            }
        });
        let add_bos = config.get("add_bos_token").and_then(serde_json::Value::as_bool).unwrap_or(false);
        Ok(Self {
            chat_template,
            bos_token,
            eos_token,
            inner,
            byte_of_char: gpt2_byte_decoder(),
            byte_level,
            metaspace,
            add_bos,
            warnings,
        })
    }

    /// What loading found worth telling the user.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Ids of `text` with no special tokens added (special tokens in the text are recognized).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = catch_panic(|| self.inner.encode(text, false))
            .map_err(|p| EngineError::Tokenizer(format!("the tokenizers library crashed encoding the text: {p}")))?
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids of a prompt as the model expects it: [`Self::encode`], with the BOS id first when
    /// tokenizer_config.json says `add_bos_token: true` (as transformers' `tokenizer(text)`
    /// adds it) and the text did not already start with it (a rendered chat template does).
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if let Some(bos) = self.bos_id()
            && self.add_bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// The BOS token's id, when tokenizer_config.json names one the vocabulary has.
    pub fn bos_id(&self) -> Option<u32> {
        self.inner.token_to_id(self.bos_token.as_deref()?)
    }

    /// Whether prompts get a BOS id first (`add_bos_token` in tokenizer_config.json).
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Text of `ids`. The tokenizers crate silently drops ids it does not know (a model's
    /// padding rows, an edited trace): those are written as `[#id]` instead.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut out = String::new();
        let mut run: Vec<u32> = Vec::new();
        for &id in ids {
            if self.inner.id_to_token(id).is_some() {
                run.push(id);
            } else {
                out.push_str(&self.decode_known(&run)?);
                run.clear();
                out.push_str(&format!("[#{id}]"));
            }
        }
        out.push_str(&self.decode_known(&run)?);
        Ok(out)
    }

    fn decode_known(&self, ids: &[u32]) -> Result<String> {
        if ids.is_empty() {
            return Ok(String::new());
        }
        catch_panic(|| self.inner.decode(ids, false))
            .map_err(|p| EngineError::Tokenizer(format!("the tokenizers library crashed decoding: {p}")))?
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    /// The vocabulary piece, e.g. "Ġcapital".
    pub fn piece(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a token given as its text (`[MASK]`), if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
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
        if self.is_special(id) {
            return piece.into_bytes();
        }
        if self.metaspace {
            return metaspace_bytes(&piece);
        }
        if !self.byte_level {
            return piece.into_bytes();
        }
        let bytes: Option<Vec<u8>> = piece.chars().map(|c| self.byte_of_char.get(&c).copied()).collect();
        bytes.unwrap_or_else(|| piece.into_bytes())
    }

    /// Text for a person: the token's characters, or `<E4 BD>` for a partial character.
    pub fn display(&self, id: u32) -> String {
        if self.piece(id).is_none() {
            return format!("[#{id}]");
        }
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
        let (bos, eos) = (
            self.bos_token.as_deref().unwrap_or(""),
            self.eos_token.as_deref().unwrap_or(""),
        );
        match render_chat_template(template, messages, add_generation_prompt, bos, eos) {
            Ok(text) => Ok(text),
            // The template's own `raise_exception` is a deliberate refusal (e.g. roles out
            // of order): that stays an error. Running out of fuel or recursion does not.
            Err(e) if e.to_string().contains("invalid operation") => Err(e),
            Err(_) => render_chat_template(CHATML, messages, add_generation_prompt, bos, eos),
        }
    }
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

/// A SentencePiece-style piece's bytes: `<0xNN>` is the byte NN, `▁` a space.
fn metaspace_bytes(piece: &str) -> Vec<u8> {
    let byte = piece
        .strip_prefix("<0x")
        .and_then(|p| p.strip_suffix('>'))
        .filter(|h| h.len() == 2)
        .and_then(|h| u8::from_str_radix(h, 16).ok());
    match byte {
        Some(b) => vec![b],
        None => piece.replace('\u{2581}', " ").into_bytes(),
    }
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
    fn metaspace_pieces_are_spaces_and_bytes() {
        assert_eq!(metaspace_bytes("▁the"), b" the");
        assert_eq!(metaspace_bytes("<0xE4>"), [0xE4]);
        assert_eq!(metaspace_bytes("<0x0A>"), [0x0A]);
        assert_eq!(metaspace_bytes("<b>"), b"<b>");
        assert_eq!(metaspace_bytes("<0xZZ>"), b"<0xZZ>");
    }

    #[test]
    fn byte_decoder_maps_space_and_newline() {
        let m = gpt2_byte_decoder();
        assert_eq!(m[&'Ġ'], b' ');
        assert_eq!(m[&'Ċ'], b'\n');
        assert_eq!(m[&'A'], b'A');
        assert_eq!(m.len(), 256);
    }

}
