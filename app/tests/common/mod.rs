//! What the CLI test files share: the fixture folders, running the real binary, reading its
//! JSON, its one-line errors, and whether SmolLM2 is there. Each test file uses a part.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

/// The `glassbox` binary, blind to the user's `GLASSBOX_MODEL`.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_glassbox"));
    c.env_remove("GLASSBOX_MODEL");
    c
}

pub fn glassbox(args: &[&str]) -> Output {
    command().args(args).output().expect("the glassbox binary runs")
}

pub fn json_of(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

pub fn assert_one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
}

/// SmolLM2 in the cache (fetched on first use), or `false` with a note; a failure when
/// `GLASSBOX_REQUIRE_MODEL` is set (CI).
pub fn smollm2_ready() -> bool {
    match glassbox_engine::load::fetch::fetch_default_model(&mut |_| {}) {
        Ok(_) => true,
        Err(e) => {
            assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "SmolLM2 could not be fetched: {e}");
            eprintln!("note: skipping the SmolLM2 check: {e}");
            false
        }
    }
}
