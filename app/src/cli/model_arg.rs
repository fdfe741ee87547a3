//! Finding, fetching and loading the model; choosing the executor; turning input into ids.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use glassbox_engine::exec::executor::Executor;
use glassbox_engine::load::fetch::{self, FetchProgress, KnownModel};
use glassbox_engine::load::tokenizer::ChatMessage;
use glassbox_engine::exec::backend;
use glassbox_engine::{Device, Model, Precision};

use super::InputArgs;

/// Prints fetch progress, one line per stage and per tenth of it (the engine reports every
/// chunk and every tensor).
fn progress_printer() -> impl FnMut(FetchProgress) {
    let mut last: Option<(String, i32)> = None;
    move |p: FetchProgress| {
        let kind = p.stage.split_whitespace().next().unwrap_or_default().to_string();
        let tenth = p.fraction.map_or(-1, |f| (f * 10.0) as i32);
        let key = (kind, tenth);
        if last.as_ref() != Some(&key) {
            eprintln!("glassbox: {p}");
            last = Some(key);
        }
    }
}

/// Fetches a model by name (the default when `None`), or checks the cached one's checksums and
/// repairs it.
pub fn fetch(name: Option<&str>) -> Result<PathBuf> {
    let model = match name {
        None => KnownModel::SmolLm2,
        Some(n) => known(n).with_context(|| {
            format!("`{n}` is not a model Glassbox can fetch; known: {}", known_names())
        })?,
    };
    let options = fetch::FetchOptions { verify: fetch::Verify::Hashes, cancel: None };
    fetch_known(model, options)
}

fn known(name: &str) -> Option<KnownModel> {
    KnownModel::from_name(name)
}

fn known_names() -> String {
    KnownModel::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

/// Fetch (or check) `model` and print its licence notice, if it has one.
fn fetch_known(model: KnownModel, options: fetch::FetchOptions<'_>) -> Result<PathBuf> {
    let dir = model.fetch_with(options, &mut progress_printer()).map_err(|e| {
        anyhow::anyhow!("{e} (to use a model you already have, pass --model DIR or a .gguf file)")
    })?;
    if let Some(notice) = model.license_notice(&dir) {
        eprintln!("glassbox: {notice}");
    }
    Ok(dir)
}

/// A `--model` value naming a known model (and not an existing path) as its cached folder,
/// fetched on first use.
pub fn resolve_named(model: Option<PathBuf>) -> Result<Option<PathBuf>> {
    let Some(path) = model else {
        return Ok(None);
    };
    let named = if path.exists() { None } else { path.to_str().and_then(known) };
    let Some(named) = named else {
        return Ok(Some(path));
    };
    let dir = named.dir()?;
    if fetch::is_complete(&dir) {
        return Ok(Some(dir));
    }
    eprintln!("glassbox: {} is not in the cache yet; fetching it", named.name());
    let options = fetch::FetchOptions { verify: fetch::Verify::Sizes, cancel: None };
    fetch_known(named, options)
        .with_context(|| format!("could not fetch {}; run `glassbox fetch {}` or pass --model DIR", named.name(), named.name()))
        .map(Some)
}

/// Converts into a scratch folder beside `out_dir`, renamed into place when complete.
pub fn convert(gguf: &Path, out_dir: &Path) -> Result<()> {
    fetch::convert_to_folder(gguf, out_dir, &mut progress_printer())?;
    super::output::outln!("{}", out_dir.display())
}

/// `--model`/`GLASSBOX_MODEL` (a path, or a model known by name: its cached folder, fetched
/// on first use), else the cached default model, fetched on first use.
pub fn resolve_model_path(model: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = resolve_named(model)? {
        if !path.exists() {
            bail!(
                "{}: no such model folder or .gguf file (models fetched by name: {})",
                path.display(),
                known_names()
            );
        }
        return Ok(path);
    }
    let dir = fetch::default_model_dir()?;
    if fetch::is_complete(&dir) {
        return Ok(dir);
    }
    eprintln!("glassbox: no model in the cache yet; fetching the default model (SmolLM2-135M-Instruct)");
    fetch(None).context("could not fetch the default model; run `glassbox fetch` or pass --model DIR")
}

pub fn load_model(model: Option<PathBuf>) -> Result<Arc<Model>> {
    let path = resolve_model_path(model)?;
    let model = crate::weights_choice::load(&path).with_context(|| format!("loading {}", path.display()))?;
    for w in model.warnings() {
        eprintln!("glassbox: warning: {}", glassbox_engine::error::printable(w));
    }
    Ok(Arc::new(model))
}

/// The executor the flags ask for (the engine decides fallbacks; its notice goes to stderr).
pub fn make_executor(model: Arc<Model>, device: Device, precision: Precision) -> Result<Box<dyn Executor>> {
    let opened = backend::open(model, device, precision, None).map_err(|e| anyhow::anyhow!("--device {device}: {e}"))?;
    if let Some(notice) = opened.notice {
        eprintln!("glassbox: {notice}");
    }
    Ok(opened.exec)
}

/// Token ids for the input: exact ids, or the prompt (chat-wrapped if asked) tokenized.
pub fn input_ids(model: &Model, input: &InputArgs) -> Result<Vec<u32>> {
    if let Some(ids) = &input.token_ids {
        if ids.is_empty() {
            bail!("--token-ids is empty");
        }
        return within_context(model, ids.clone());
    }
    let from_file = match &input.prompt_file {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("--prompt-file {}: could not read it", path.display()))?),
        None => None,
    };
    let prompt = from_file.as_deref().or(input.prompt.as_deref()).unwrap_or_default();
    let tok = model
        .tokenizer
        .as_ref()
        .context("this model folder has no tokenizer.json: pass --token-ids instead of --prompt")?;
    let text = if input.chat {
        tok.apply_chat_template(&[ChatMessage::user(prompt)], true)?
    } else {
        prompt.to_string()
    };
    let ids = tok.encode_prompt(&text)?;
    if ids.is_empty() {
        bail!("the prompt encodes to no tokens; type some text");
    }
    within_context(model, ids)
}

/// A prompt longer than the model's context fails before any computing, naming both lengths.
fn within_context(model: &Model, ids: Vec<u32>) -> Result<Vec<u32>> {
    let context = model.config.max_position_embeddings;
    if ids.len() > context {
        bail!("the prompt is {} tokens, more than the model's context of {context} tokens; shorten it", ids.len());
    }
    Ok(ids)
}

/// Display text of each id (the id itself when there is no tokenizer).
pub fn token_texts(model: &Model, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&id| match &model.tokenizer {
            Some(t) => t.display(id),
            None => id.to_string(),
        })
        .collect()
}

/// One token id from a flag: `#123` is id 123; any other text must encode to one token.
pub fn token_id(model: &Model, flag: &str, text: &str) -> Result<u32> {
    if let Some(id) = text.strip_prefix('#') {
        let id: u32 = id.parse().with_context(|| format!("{flag}: `{text}` is not #ID"))?;
        if id as usize >= model.config.vocab_size {
            bail!("{flag}: id {id} is outside the vocabulary ({})", model.config.vocab_size);
        }
        return Ok(id);
    }
    let tok = model.tokenizer.as_ref().with_context(|| format!("{flag}: this model has no tokenizer; give #ID"))?;
    let ids = tok.encode(text)?;
    match ids.as_slice() {
        [id] => Ok(*id),
        _ => {
            let pieces: Vec<String> = ids.iter().map(|&i| format!("{:?}", tok.display(i))).collect();
            bail!("{flag}: `{text}` is {} tokens ({}), not one; pick one of them (a leading space matters) or give #ID", ids.len(), pieces.join(" "))
        }
    }
}

/// Ids of `text` (no chat template) as the model expects a prompt (Gemma's BOS first, as for
/// `trace`), or the error naming `flag`.
pub fn text_ids(model: &Model, flag: &str, text: &str) -> Result<Vec<u32>> {
    let tok = model.tokenizer.as_ref().with_context(|| format!("{flag}: this model has no tokenizer.json"))?;
    let ids = tok.encode_prompt(text)?;
    if ids.is_empty() {
        bail!("{flag}: the text encodes to no tokens");
    }
    within_context(model, ids).with_context(|| flag.to_string())
}
