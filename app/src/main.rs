//! `glassbox`: the GUI by default; CLI subcommands for tracing, generation, fetching,
//! conversion and benchmarks.

mod cli;
mod gui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line (the whole cause chain), never a panic trace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
