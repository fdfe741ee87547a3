//! Standard output as a fallible writer. `println!` panics when stdout is a closed pipe
//! (`glassbox trace … | head`) or a full disk; `outln!` returns the error instead, and
//! `main` ends quietly on a closed pipe and with one error line on anything else.

use std::io::Write;

use anyhow::{Context as _, Result};

/// Writes `args` to stdout and flushes, so a failure shows up here and not at exit.
pub fn write_out(args: std::fmt::Arguments<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .context("writing to standard output")
}

/// True when `e` is (caused by) a closed pipe: the reader has all it wanted.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` that returns a `Result` instead of panicking.
macro_rules! outln {
    () => {
        $crate::cli::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns a `Result` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};
