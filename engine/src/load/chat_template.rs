//! Chat templates: the model's Jinja template (from tokenizer_config.json, as a string or
//! in the list form `[{"name": "default", "template": ...}]`) rendered with minijinja in a
//! sandbox with fuel, recursion and output limits. A template that loops, recurses or
//! fails is replaced by the built-in ChatML one with a warning, never an error.

use serde_json::Value;

use crate::error::{EngineError, Result};

/// Fuel and output caps keep a hostile template from looping or growing without bound.
const TEMPLATE_FUEL: u64 = 200_000;
const TEMPLATE_MAX_OUTPUT: usize = 1 << 20;
const RECURSION_LIMIT: usize = 64;

/// The fallback: ChatML, the format SmolLM2 and many small instruct models use.
pub const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n\
{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

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

/// The template text from tokenizer_config.json's `chat_template`: a string, or the list
/// form (the entry named "default", else the first). `Err` names what is wrong.
pub fn template_from_config(value: &Value) -> std::result::Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Array(items) => {
            let named = |want: Option<&str>| {
                items.iter().find_map(|item| {
                    let name = item.get("name").and_then(Value::as_str);
                    let template = item.get("template").and_then(Value::as_str)?;
                    (want.is_none() || name == want).then(|| template.to_string())
                })
            };
            named(Some("default"))
                .or_else(|| named(None))
                .map(Some)
                .ok_or_else(|| {
                    "`chat_template` is a list without a {\"name\", \"template\"} entry".to_string()
                })
        }
        other => Err(format!(
            "`chat_template` must be a string or a list of {{\"name\", \"template\"}}, found {}",
            match other {
                Value::Bool(_) => "a bool",
                Value::Number(_) => "a number",
                _ => "an object",
            }
        )),
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
    env.set_recursion_limit(RECURSION_LIMIT);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
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

/// A template checked once against a small conversation: `Err` says why it cannot be used
/// (it loops, recurses, does not parse, or produces nothing).
pub fn check_template(template: &str, bos: &str, eos: &str) -> std::result::Result<(), String> {
    // Some templates refuse a system message on purpose (raise_exception): a lone user
    // message is the conversation every template must take.
    let with_system = [
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("Hello"),
    ];
    let mut last = String::new();
    for probe in [&with_system[..], &with_system[1..]] {
        match render_chat_template(template, probe, true, bos, eos) {
            Ok(out) if out.contains("Hello") => return Ok(()),
            Ok(_) => last = "it leaves the user's message out".into(),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_and_loops_are_bounded() {
        let t = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
        let out = render_chat_template(t, &[ChatMessage::user("hi")], true, "", "").unwrap_or_default();
        assert_eq!(out, "<user>hi<assistant>");
        let evil = "{% for i in range(100000000) %}x{% endfor %}";
        let err = render_chat_template(evil, &[], false, "", "").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("chat template")));
    }

    #[test]
    fn recursion_is_bounded() {
        let evil = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        assert!(check_template(evil, "", "").is_err());
    }

    #[test]
    fn list_form_picks_default() {
        let v: Value = serde_json::json!([
            {"name": "tool_use", "template": "T"},
            {"name": "default", "template": "D"}
        ]);
        assert_eq!(template_from_config(&v), Ok(Some("D".into())));
        let first: Value = serde_json::json!([{"name": "rag", "template": "R"}]);
        assert_eq!(template_from_config(&first), Ok(Some("R".into())));
        assert!(template_from_config(&serde_json::json!(3)).is_err());
    }

    #[test]
    fn chatml_renders() {
        let out = render_chat_template(CHATML, &[ChatMessage::user("hi")], true, "", "")
            .unwrap_or_default();
        assert_eq!(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }
}
