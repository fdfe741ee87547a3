//! `glassbox`: the GUI by default; CLI subcommands for tracing, generation, fetching,
//! conversion and benchmarks. `cli` and `gui` never import each other: this is where they meet.

mod cli;
mod gui;
mod weights_choice;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Freed activations stay in the heap for the next pass instead of going back to the system:
/// glibc maps every array over its mmap threshold (at most 32 MiB, and a 1,024-token layer's
/// scores are 36 MiB) with fresh pages and unmaps it when freed, so a long prompt spent much
/// of each pass faulting pages in. With mmap off and one arena, every array comes from the
/// one heap, which keeps up to 2 GiB of freed memory for reuse (the largest trim threshold
/// glibc takes); the peak is the same, later passes reuse it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator tunables; called once, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    let args = cli::Cli::parse();
    weights_choice::set(args.weights);
    let result = match args.command {
        None => {
            let startup = match (args.session, args.workshop) {
                (Some(s), _) => Some(gui::Startup::Session(s)),
                (None, Some(w)) => Some(gui::Startup::Workshop(w)),
                (None, None) => None,
            };
            cli::resolve_named_model(args.model).and_then(|model| gui::run(model, startup))
        }
        Some(command) => {
            let hooks = cli::GuiHooks {
                frame_bench: gui::frame_bench::attention_overview_frame_bench,
                trace_memory: |model, tokens| {
                    gui::frame_bench::trace_memory(model, tokens).map(|m| (m.captured_bytes, m.held_bytes))
                },
                patching: gui::frame_bench::patching_bench,
                side_by_side_frames: gui::frame_bench_side::side_by_side_frame_bench,
            };
            cli::run(args.model, command, &hooks)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of a pipe (`| head`) has what it wanted: not an error.
        Err(e) if cli::output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line (the whole cause chain), never a panic trace; text quoted from
            // a file cannot send escape sequences to the terminal.
            let text: Vec<String> = format!("{e:#}")
                .lines()
                .map(glassbox_engine::error::printable)
                .collect();
            // stderr may be closed too: nothing more to do then.
            let _ = writeln!(std::io::stderr(), "error: {}", text.join("\n"));
            ExitCode::FAILURE
        }
    }
}
