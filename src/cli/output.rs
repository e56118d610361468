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
    if let Err(error) = try_emit(line) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprint_lossy(format_args!("error: cannot write to stdout: {error}"));
        std::process::exit(1);
    }
}

/// Writes one line to stdout and flushes it, returning the error instead of
/// acting on it (`serve` keeps running when stdout is unwritable).
pub fn try_emit(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush())
}

/// Writes one line to stderr, dropping it if stderr cannot be written (a full
/// disk, a closed pipe): `eprintln!` would panic there.
pub fn eprint_lossy(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
