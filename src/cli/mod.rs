//! The command line: global options and one module per command group.

/// `println!` that survives a closed stdout pipe (see [`output::emit`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::emit(format_args!($($arg)*))
    };
}

mod log;
mod output;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::OutputFormat;

/// Sediment: a durable, Kafka-compatible message broker on one machine.
#[derive(Debug, Parser)]
#[command(name = "sediment", version, about)]
pub struct Cli {
    /// Broker address for client commands.
    #[arg(
        long,
        global = true,
        env = "SEDIMENT_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    /// How commands print their results.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(Box<serve::ServeArgs>),
    /// Inspect segment files offline (read-only; the same checks as recovery).
    #[command(subcommand)]
    Log(log::LogCommand),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Log(command) => log::run(command, cli.output),
    }
}
