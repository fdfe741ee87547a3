use std::path::Path;

use super::*;
use crate::load::gguf::builder::{GgufBuilder, tiny_gemma3, tiny_llama};

fn fixture_config(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name).join("config.json");
    std::fs::read_to_string(p).unwrap()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn roots(home: &Path) -> ScanRoots {
    ScanRoots::under_home(home)
}

fn by_name<'a>(found: &'a [FoundModel], name: &str) -> &'a FoundModel {
    found.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name} not in {found:#?}"))
}

/// The hub's layout: snapshot files are symlinks into `blobs/`.
fn hf_repo(hub: &Path, id: &str, config: &str) -> PathBuf {
    let repo = hub.join(format!("models--{}", id.replace('/', "--")));
    let snap = repo.join("snapshots/0123456789abcdef");
    write(&repo.join("blobs/aaa"), config);
    write(&repo.join("blobs/bbb"), vec![0u8; 1000]);
    std::fs::create_dir_all(&snap).unwrap();
    std::os::unix::fs::symlink("../../blobs/aaa", snap.join("config.json")).unwrap();
    std::os::unix::fs::symlink("../../blobs/bbb", snap.join("model.safetensors")).unwrap();
    snap
}

#[test]
fn an_empty_home_finds_nothing_and_does_not_fail() {
    let home = tempfile::tempdir().unwrap();
    assert!(scan(&roots(home.path())).is_empty());
    assert!(scan(&ScanRoots::default()).is_empty());
}

#[test]
fn hugging_face_cache_folders_through_symlinks() {
    let home = tempfile::tempdir().unwrap();
    let hub = home.path().join(".cache/huggingface/hub");
    let snap = hf_repo(&hub, "HuggingFaceTB/SmolLM2-135M", &fixture_config("tiny-smollm2-shape"));
    hf_repo(&hub, "google/t5-small", r#"{"model_type": "t5", "vocab_size": 9, "d_model": 8}"#);
    let found = scan(&roots(home.path()));
    let smol = by_name(&found, "HuggingFaceTB/SmolLM2-135M");
    assert_eq!(smol.path, snap);
    assert_eq!((smol.kind, smol.source), (ModelKind::HfFolder, ModelSource::HuggingFace));
    assert_eq!(smol.family.as_deref(), Some("llama"));
    assert!(smol.supported(), "{smol:?}");
    assert!(smol.size >= 1000, "sizes follow the symlinks: {}", smol.size);
    let t5 = by_name(&found, "google/t5-small");
    assert_eq!(t5.family.as_deref(), Some("t5"));
    assert!(t5.unsupported.as_deref().unwrap_or_default().contains("`t5` is not supported"), "{t5:?}");
}

#[test]
fn a_folder_without_safetensors_is_unsupported_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("config.json"), fixture_config("tiny-smollm2-shape"));
    write(&dir.path().join("pytorch_model.bin"), [0u8; 8]);
    let (family, reason) = describe(dir.path());
    assert_eq!(family.as_deref(), Some("llama"));
    assert!(reason.unwrap_or_default().contains(".safetensors"));
}

#[test]
fn ollama_manifests_point_at_gguf_blobs() {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join(".ollama/models");
    let digest = "sha256:4b8f0c1d";
    write(&models.join("blobs/sha256-4b8f0c1d"), tiny_llama(true).build());
    let manifest = format!(
        r#"{{"schemaVersion": 2, "layers": [
            {{"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:0000", "size": 1}},
            {{"mediaType": "application/vnd.ollama.image.model", "digest": "{digest}", "size": 2}}]}}"#
    );
    write(&models.join("manifests/registry.ollama.ai/library/tiny/latest"), &manifest);
    write(&models.join("manifests/registry.ollama.ai/someone/other/q4"), &manifest);
    // A manifest that is not JSON, one whose blob is missing, one naming a path: skipped.
    write(&models.join("manifests/registry.ollama.ai/library/broken/latest"), "{ not json");
    write(
        &models.join("manifests/registry.ollama.ai/library/gone/latest"),
        manifest.replace("4b8f0c1d", "ffffffff"),
    );
    write(
        &models.join("manifests/registry.ollama.ai/library/escape/latest"),
        manifest.replace("sha256:4b8f0c1d", "../../../etc/passwd"),
    );
    let found = scan(&roots(home.path()));
    assert_eq!(found.len(), 2, "{found:#?}");
    let tiny = by_name(&found, "tiny:latest");
    assert_eq!((tiny.kind, tiny.source), (ModelKind::Gguf, ModelSource::Ollama));
    assert_eq!(tiny.family.as_deref(), Some("llama"));
    assert!(tiny.supported(), "{tiny:?}");
    assert!(is_gguf_file(&tiny.path), "a blob without .gguf is recognised by its magic");
    by_name(&found, "someone/other:q4");
}

#[test]
fn lm_studio_folders_old_and_new() {
    let home = tempfile::tempdir().unwrap();
    write(&home.path().join(".lmstudio/models/lmstudio-community/gemma/gemma.gguf"), tiny_gemma3().build());
    write(
        &home.path().join(".cache/lm-studio/models/someone/qwen/qwen.gguf"),
        GgufBuilder::new().kv_str("general.architecture", "qwen2").build(),
    );
    write(&home.path().join(".lmstudio/models/x/y/readme.md"), "not a model");
    let found = scan(&roots(home.path()));
    assert_eq!(found.len(), 2, "{found:#?}");
    let gemma = by_name(&found, "lmstudio-community/gemma.gguf");
    assert_eq!(gemma.family.as_deref(), Some("gemma3"));
    assert!(gemma.supported(), "{gemma:?}");
    let qwen = by_name(&found, "someone/qwen.gguf");
    assert_eq!(qwen.family.as_deref(), Some("qwen2"));
    assert!(qwen.unsupported.as_deref().unwrap_or_default().contains("qwen2"), "{qwen:?}");
    let why = qwen.unsupported.as_deref().unwrap_or_default();
    assert!(!why.contains(&*qwen.path.to_string_lossy()), "the reason, not the path again: {why}");
}

#[test]
fn glassbox_cache_folders() {
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join(".cache/glassbox/models");
    write(&cache.join("gemma-3-270m/config.json"), fixture_config("tiny-gemma3"));
    write(&cache.join("gemma-3-270m/model.safetensors"), [0u8; 16]);
    write(&cache.join(".fetch-123/config.json"), "{}");
    let found = scan(&roots(home.path()));
    assert_eq!(found.len(), 1, "scratch folders are not models: {found:#?}");
    let g = by_name(&found, "gemma-3-270m");
    assert_eq!((g.kind, g.source), (ModelKind::Glassbox, ModelSource::Glassbox));
    assert_eq!(g.family.as_deref(), Some("gemma3_text"));
    assert!(g.supported(), "{g:?}");
}

#[test]
fn broken_entries_never_panic() {
    let home = tempfile::tempdir().unwrap();
    let hub = home.path().join(".cache/huggingface/hub");
    // A snapshot whose config.json is a dangling symlink: listed, unsupported, with why.
    let snap = hub.join("models--org--dangling/snapshots/abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::os::unix::fs::symlink("../../blobs/missing", snap.join("config.json")).unwrap();
    // A `.gguf` that is not one, a truncated one, and a file where a folder should be.
    write(&home.path().join(".lmstudio/models/p/r/garbage.gguf"), b"hello world");
    let mut truncated = tiny_llama(true).build();
    truncated.truncate(40);
    write(&home.path().join(".lmstudio/models/p/r/truncated.gguf"), truncated);
    write(&home.path().join(".ollama/models/manifests"), b"a file, not a folder");
    write(&hub.join("models--org--nosnapshots/refs/main"), b"abc");
    let found = scan(&roots(home.path()));
    let dangling = by_name(&found, "org/dangling");
    assert!(dangling.unsupported.as_deref().unwrap_or_default().contains("config.json"), "{dangling:?}");
    assert!(!by_name(&found, "p/garbage.gguf").supported());
    assert!(!by_name(&found, "p/truncated.gguf").supported());
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn several_snapshots_are_told_apart() {
    let home = tempfile::tempdir().unwrap();
    let hub = home.path().join(".cache/huggingface/hub");
    let first = hf_repo(&hub, "org/m", &fixture_config("tiny-smollm2-shape"));
    let second = first.with_file_name("fedcba9876543210");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::copy(first.join("config.json"), second.join("config.json")).unwrap();
    let found = scan(&roots(home.path()));
    let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["org/m @ 01234567", "org/m @ fedcba98"]);
}
