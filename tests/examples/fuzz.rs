//! Long fuzz runs: `cargo run --release -p glassbox-tests --example fuzz -- <target|all>
//! <seconds> [seed]`. Targets: gguf, native (a GGUF loaded natively and run), safetensors, config, tokenizer. Crashing inputs are
//! saved under `tests/fuzz/crashes/`; copy them to `tests/fuzz/<target>/` to keep them as
//! regression inputs of the quick run. An input slower than a second is saved there too
//! (`slowest-<target>.bin`), to replay it.

use std::time::Duration;

use glassbox_tests::fuzz::{Budget, TARGETS, Target, fuzz};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let targets: Vec<Target> = match args.first().map(String::as_str) {
        None | Some("all") => TARGETS.to_vec(),
        Some(name) => match Target::from_name(name) {
            Some(t) => vec![t],
            None => {
                eprintln!("unknown target `{name}` (gguf, native, safetensors, config, tokenizer, all)");
                std::process::exit(2);
            }
        },
    };
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let crash_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/crashes");
    let mut failed = false;
    for target in targets {
        let budget = Budget {
            iterations: u64::MAX,
            duration: Duration::from_secs(seconds),
        };
        let r = fuzz(target, seed, &budget, Some(&crash_dir));
        println!(
            "{:<12} {:>8.1} s  {:>9} inputs ({} accepted)  {:>4} panics  {:>5} tokenizers-crate panics caught  slowest input {:.1} ms",
            r.target,
            r.elapsed.as_secs_f64(),
            r.inputs,
            r.accepted,
            r.panics,
            r.guarded_panics,
            r.slowest.as_secs_f64() * 1e3
        );
        for f in &r.crash_files {
            println!("  crash input: {}", f.display());
        }
        if r.slowest > Duration::from_secs(1) {
            let path = crash_dir.join(format!("slowest-{}.bin", r.target));
            if std::fs::create_dir_all(&crash_dir).and_then(|()| std::fs::write(&path, &r.slowest_input)).is_ok() {
                println!("  slowest input: {}", path.display());
            }
        }
        failed |= r.panics > 0;
    }
    if failed {
        std::process::exit(1);
    }
}
