//! Output formats shared by the commands.

/// `--output`: human-readable table or machine-readable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Writes one line to stdout. A closed pipe (`sediment log dump F | head`)
/// ends the process quietly, as Unix tools do, instead of panicking.
pub fn emit(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}
