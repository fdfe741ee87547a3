//! The bounded CI run of the five fuzz targets (see `glassbox_tests::fuzz`): a fixed,
//! seeded number of mutated inputs each (about ten seconds per target at most), plus every
//! saved crash input in `tests/fuzz/<target>/`. No input may panic. Set
//! `GLASSBOX_FUZZ_SECONDS` to run each target longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use glassbox_tests::fuzz::{Budget, Target, fuzz, regression_inputs, run_one};

/// `min_accepted_per_mille`: how many inputs must get past the first parse, so the run
/// tests more than the first check (safetensors' strict header makes that rare).
fn quick(target: Target, iterations: u64, min_accepted_per_mille: u64) {
    let seconds = std::env::var("GLASSBOX_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok());
    let budget = match seconds {
        Some(s) => Budget { iterations: u64::MAX, duration: Duration::from_secs(s) },
        None => Budget { iterations, duration: Duration::from_secs(10) },
    };
    let crash_dir = std::env::temp_dir().join("glassbox-fuzz-crashes");
    let r = fuzz(target, 20_261_127, &budget, Some(&crash_dir));
    eprintln!("{}: {} inputs ({} accepted) in {:?}, {} panics", r.target, r.inputs, r.accepted, r.elapsed, r.panics);
    assert!(r.inputs >= 50, "too few inputs ran: {r:?}");
    // Mutations that never get past the first parse test nothing but the first check.
    assert!(
        r.accepted * 1000 >= r.inputs * min_accepted_per_mille,
        "only {} of {} inputs parsed",
        r.accepted,
        r.inputs
    );
    assert_eq!(r.panics, 0, "crashing inputs saved: {:?}", r.crash_files);
    let scratch = tempfile::tempdir().unwrap();
    for (path, input) in regression_inputs(target) {
        let outcome = std::panic::catch_unwind(|| run_one(target, &input, scratch.path()));
        assert!(outcome.is_ok(), "regression input {} panics again", path.display());
    }
}

#[test]
fn fuzz_gguf_reader() {
    quick(Target::Gguf, 1500, 100);
}

#[test]
fn fuzz_native_gguf_loading() {
    quick(Target::Native, 1000, 100);
}

#[test]
fn fuzz_safetensors_loading() {
    quick(Target::Safetensors, 800, 3);
}

#[test]
fn fuzz_config_parsing() {
    quick(Target::Config, 3000, 50);
}

#[test]
fn fuzz_tokenizer_loading() {
    quick(Target::Tokenizer, 1500, 20);
}
