//! Terminal output: session logs, responses, errors.

use std::io::IsTerminal;

use corral_host::{LogEntry, LogLevel, LogSource};

fn styled(code: &str, text: &str) -> String {
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Dim text.
pub fn dim(text: &str) -> String {
    styled("2", text)
}

/// Bold text.
pub fn bold(text: &str) -> String {
    styled("1", text)
}

/// One session log entry as an indented line on stderr.
pub fn log_entry(entry: &LogEntry) {
    let source = match entry.source {
        LogSource::Guest => "agent ",
        LogSource::Stdout => "stdout",
        LogSource::Stderr => "stderr",
        LogSource::Host => "host  ",
    };
    let message = match entry.level {
        LogLevel::Error => styled("31", &entry.message),
        LogLevel::Warn => styled("33", &entry.message),
        _ => entry.message.clone(),
    };
    eprintln!("    {} {message}", dim(source));
}

/// An error and its causes.
pub fn error(error: &anyhow::Error) {
    eprintln!("{} {error}", styled("1;31", "error:"));
    for cause in error.chain().skip(1) {
        eprintln!("  {} {cause}", dim("caused by:"));
    }
}
