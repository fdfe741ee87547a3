//! Models already on this computer, where people keep them: the Hugging Face hub cache,
//! Ollama's blobs, LM Studio's folders and Glassbox's own cache. Only `config.json` or a
//! GGUF's metadata is read (never the weights), so a scan is cheap; the family says whether
//! Glassbox runs it, and an unsupported model is listed with the reason rather than hidden.
//! Odd files (broken symlinks, unreadable or malformed manifests) are skipped or listed as
//! unsupported: a scan never fails.

use std::path::{Path, PathBuf};

use crate::load::arch::{Arch, SUPPORTED_MODEL_TYPES, runs_model_type};
use crate::load::config::LlamaConfig;
use crate::load::gguf::{GgufFile, build_config_json};

/// Ollama's media type of the layer that holds the GGUF weights.
const OLLAMA_MODEL_LAYER: &str = "application/vnd.ollama.image.model";
/// A `config.json` larger than this is not a model config (and is not read).
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Entries read per folder: a stray huge folder must not stall the picker.
const MAX_DIR_ENTRIES: usize = 4096;

/// What is at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A Hugging Face folder: `config.json` + `*.safetensors`.
    HfFolder,
    /// One `.gguf` file (converted on first open).
    Gguf,
    /// A folder in Glassbox's own cache.
    Glassbox,
}

/// Where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    HuggingFace,
    Ollama,
    LmStudio,
    Glassbox,
}

impl ModelSource {
    pub fn name(self) -> &'static str {
        match self {
            Self::HuggingFace => "Hugging Face cache",
            Self::Ollama => "Ollama",
            Self::LmStudio => "LM Studio",
            Self::Glassbox => "Glassbox cache",
        }
    }
}

/// One openable (or listed-but-unsupported) model.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundModel {
    pub name: String,
    /// The folder or `.gguf` (an Ollama blob has no extension) to open.
    pub path: PathBuf,
    pub kind: ModelKind,
    pub source: ModelSource,
    /// Bytes on disk (symlinks followed).
    pub size: u64,
    /// `model_type` or `general.architecture`, when it could be read.
    pub family: Option<String>,
    /// Why Glassbox cannot open it; `None` when it can.
    pub unsupported: Option<String>,
}

impl FoundModel {
    pub fn supported(&self) -> bool {
        self.unsupported.is_none()
    }
}

/// The folders a scan looks in; each may be absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanRoots {
    pub hf_hub: Option<PathBuf>,
    pub ollama: Option<PathBuf>,
    pub lmstudio: Vec<PathBuf>,
    pub glassbox: Option<PathBuf>,
}

impl ScanRoots {
    /// The usual places under `home`.
    pub fn under_home(home: &Path) -> Self {
        Self {
            hf_hub: Some(home.join(".cache/huggingface/hub")),
            ollama: Some(home.join(".ollama/models")),
            lmstudio: vec![home.join(".lmstudio/models"), home.join(".cache/lm-studio/models")],
            glassbox: Some(home.join(".cache/glassbox/models")),
        }
    }

    /// The places for this user: `$HOME`, with the tools' own overrides (`HF_HUB_CACHE`,
    /// `HF_HOME`, `OLLAMA_MODELS`) and Glassbox's cache root (`XDG_CACHE_HOME`).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut roots = var("HOME").map(|h| Self::under_home(&h)).unwrap_or_default();
        if let Some(hub) = var("HF_HUB_CACHE").or_else(|| var("HF_HOME").map(|h| h.join("hub"))) {
            roots.hf_hub = Some(hub);
        }
        if let Some(o) = var("OLLAMA_MODELS") {
            roots.ollama = Some(o);
        }
        if let Ok(g) = crate::load::fetch::models_cache_root() {
            roots.glassbox = Some(g);
        }
        roots
    }
}

/// Every model under `roots`: Glassbox's cache first, then Hugging Face, LM Studio, Ollama;
/// by name within each.
pub fn scan(roots: &ScanRoots) -> Vec<FoundModel> {
    let mut found = Vec::new();
    if let Some(g) = &roots.glassbox {
        found.extend(sorted(scan_glassbox(g)));
    }
    if let Some(h) = &roots.hf_hub {
        found.extend(sorted(scan_hf_hub(h)));
    }
    for l in &roots.lmstudio {
        found.extend(sorted(scan_lmstudio(l)));
    }
    if let Some(o) = &roots.ollama {
        found.extend(sorted(scan_ollama(o)));
    }
    found
}

fn sorted(mut v: Vec<FoundModel>) -> Vec<FoundModel> {
    v.sort_by(|a, b| a.name.cmp(&b.name).then(a.path.cmp(&b.path)));
    v
}

/// True for a `.gguf` file, or any file that starts with GGUF's magic (Ollama's blobs).
pub fn is_gguf_file(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| &magic == b"GGUF")
}

/// The family of a model folder or GGUF file (`None` unreadable) and why it cannot be
/// opened (`None` when it can): what the picker shows beside an entry.
pub fn describe(path: &Path) -> (Option<String>, Option<String>) {
    let (family, reason) = if path.is_dir() { folder_family(path) } else { gguf_family(path) };
    (family, reason.map(|r| without_path(r, path)))
}

/// An error names its file first; beside an entry that already shows it, the reason alone.
fn without_path(reason: String, path: &Path) -> String {
    let prefixes = [path.join("config.json"), path.to_path_buf()];
    prefixes
        .iter()
        .find_map(|p| reason.strip_prefix(&format!("{}: ", p.display())).map(str::to_string))
        .unwrap_or(reason)
}

/// Bytes on disk of a model folder (its files, symlinks followed) or file.
pub fn size_on_disk(path: &Path) -> u64 {
    if path.is_dir() { folder_size(path) } else { file_size(path) }
}

/// Subfolders (symlinks followed), by name, at most [`MAX_DIR_ENTRIES`].
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    entries(dir).into_iter().filter(|p| p.is_dir()).collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    entries(dir).into_iter().filter(|p| p.is_file()).collect()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok()).take(MAX_DIR_ENTRIES).map(|e| e.path()).collect();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Sum of the sizes of the regular files in `dir` (symlinks followed; broken ones count 0).
fn folder_size(dir: &Path) -> u64 {
    files(dir).iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn has_safetensors(dir: &Path) -> bool {
    files(dir).iter().any(|f| f.extension().is_some_and(|e| e == "safetensors"))
}

fn folder_family(dir: &Path) -> (Option<String>, Option<String>) {
    let config = dir.join("config.json");
    let text = match std::fs::metadata(&config) {
        Ok(m) if m.len() > MAX_CONFIG_BYTES => return (None, Some("config.json is too large to be a model config".into())),
        Ok(_) => std::fs::read_to_string(&config),
        Err(e) => Err(e),
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => return (None, Some(format!("config.json cannot be read: {e}"))),
    };
    let model_type = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("model_type").and_then(|t| t.as_str()).map(str::to_string));
    let reason = match (model_type.as_deref(), LlamaConfig::from_json(&text, &config)) {
        (Some(t), _) if !runs_model_type(t) => {
            Some(format!("`model_type` = `{t}` is not supported (supported: {SUPPORTED_MODEL_TYPES})"))
        }
        (_, Ok(c)) => Arch::from_config(&c).err(),
        (_, Err(e)) => Some(e.to_string()),
    };
    let reason = reason.or_else(|| (!has_safetensors(dir)).then(|| "no .safetensors weights in the folder".to_string()));
    (model_type, reason)
}

fn gguf_family(path: &Path) -> (Option<String>, Option<String>) {
    let gguf = match GgufFile::open(path) {
        Ok(g) => g,
        Err(e) => return (None, Some(e.to_string())),
    };
    let family = gguf.get_str("general.architecture").ok().map(str::to_string);
    let reason = match build_config_json(&gguf) {
        Ok(json) => match LlamaConfig::from_json(&json.to_string(), path) {
            Ok(c) => Arch::from_config(&c).err(),
            Err(e) => Some(e.to_string()),
        },
        Err(e) => Some(e.to_string()),
    };
    (family, reason)
}

fn folder_entry(name: String, dir: &Path, kind: ModelKind, source: ModelSource) -> FoundModel {
    let (family, unsupported) = describe(dir);
    FoundModel { name, path: dir.to_path_buf(), kind, source, size: folder_size(dir), family, unsupported }
}

fn gguf_entry(name: String, path: &Path, source: ModelSource) -> FoundModel {
    let (family, unsupported) = describe(path);
    FoundModel { name, path: path.to_path_buf(), kind: ModelKind::Gguf, source, size: file_size(path), family, unsupported }
}

fn is_gguf_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// Glassbox's cache: each folder with a `config.json` (the fetched models and converted GGUFs).
fn scan_glassbox(root: &Path) -> Vec<FoundModel> {
    subdirs(root)
        .into_iter()
        .filter(|d| d.join("config.json").exists() && !file_name(d).starts_with('.'))
        .map(|d| folder_entry(file_name(&d), &d, ModelKind::Glassbox, ModelSource::Glassbox))
        .collect()
}

/// `models--ORG--NAME/snapshots/<hash>/`: a folder with `config.json`, or `.gguf` files.
fn scan_hf_hub(hub: &Path) -> Vec<FoundModel> {
    let mut found = Vec::new();
    for repo in subdirs(hub) {
        let Some(id) = file_name(&repo).strip_prefix("models--").map(|s| s.replace("--", "/")) else {
            continue;
        };
        let snapshots = subdirs(&repo.join("snapshots"));
        let several = snapshots.len() > 1;
        for snap in snapshots {
            let name = if several { format!("{id} @ {:.8}", file_name(&snap)) } else { id.clone() };
            if snap.join("config.json").exists() || std::fs::symlink_metadata(snap.join("config.json")).is_ok() {
                found.push(folder_entry(name, &snap, ModelKind::HfFolder, ModelSource::HuggingFace));
                continue;
            }
            for f in files(&snap).into_iter().filter(|f| is_gguf_name(f)) {
                found.push(gguf_entry(format!("{id}/{}", file_name(&f)), &f, ModelSource::HuggingFace));
            }
        }
    }
    found
}

/// `PUBLISHER/REPO/*.gguf`.
fn scan_lmstudio(root: &Path) -> Vec<FoundModel> {
    let mut found = Vec::new();
    for publisher in subdirs(root) {
        for repo in subdirs(&publisher) {
            for f in files(&repo).into_iter().filter(|f| is_gguf_name(f)) {
                let name = format!("{}/{}", file_name(&publisher), file_name(&f));
                found.push(gguf_entry(name, &f, ModelSource::LmStudio));
            }
        }
    }
    found
}

/// `manifests/HOST/NAMESPACE/NAME/TAG` (JSON) → the model layer's `blobs/sha256-…` GGUF.
fn scan_ollama(root: &Path) -> Vec<FoundModel> {
    let mut found = Vec::new();
    for host in subdirs(&root.join("manifests")) {
        for namespace in subdirs(&host) {
            for model in subdirs(&namespace) {
                for tag in files(&model) {
                    let Some(blob) = ollama_blob(root, &tag) else { continue };
                    let ns = file_name(&namespace);
                    let prefix = if ns == "library" { String::new() } else { format!("{ns}/") };
                    let name = format!("{prefix}{}:{}", file_name(&model), file_name(&tag));
                    found.push(gguf_entry(name, &blob, ModelSource::Ollama));
                }
            }
        }
    }
    found
}

/// The blob a manifest's model layer names, if the manifest parses and the blob exists.
fn ollama_blob(root: &Path, manifest: &Path) -> Option<PathBuf> {
    if std::fs::metadata(manifest).ok()?.len() > MAX_CONFIG_BYTES {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
    let layer = json
        .get("layers")?
        .as_array()?
        .iter()
        .find(|l| l.get("mediaType").and_then(|m| m.as_str()) == Some(OLLAMA_MODEL_LAYER))?;
    let digest = layer.get("digest")?.as_str()?;
    // `sha256:…` is stored as `sha256-…`; anything else (a path) is refused.
    let file = digest.replacen(':', "-", 1);
    if !file.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let blob = root.join("blobs").join(file);
    blob.is_file().then_some(blob)
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
