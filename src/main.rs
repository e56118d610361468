//! `sediment`: the broker (`serve`) and the operators' commands.
//!
//! One file per command group under `src/cli/`. A runtime error is one line on
//! stderr saying what went wrong and what to do, with a non-zero exit; usage
//! mistakes get clap's standard message.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            // Not eprintln!: it panics when stderr cannot be written (full disk).
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
