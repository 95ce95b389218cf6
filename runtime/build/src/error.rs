//! Why a build or scaffold failed.

use std::path::{Path, PathBuf};

/// A failed build or scaffold.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The agent path is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// Nothing in the directory says which language it is.
    #[error(
        "cannot tell the language of {0}: expected Cargo.toml (Rust), app.py or pyproject.toml (Python), or package.json or app.js (JavaScript); pass --lang"
    )]
    UnknownLanguage(PathBuf),
    /// The entry module is missing.
    #[error("{0} not found: the agent's entry module (set another with --entry)")]
    MissingEntry(PathBuf),
    /// The entry module name is not a dotted identifier.
    #[error("invalid entry module {0:?}: use a module name such as `app` or `agent.main`")]
    InvalidEntry(String),
    /// A toolchain is not installed.
    #[error("{tool} not found ({why}); install it with: {install}")]
    ToolchainMissing {
        /// The program or package.
        tool: &'static str,
        /// What was tried.
        why: String,
        /// The command that installs it.
        install: &'static str,
    },
    /// The toolchain ran and failed.
    #[error("{tool} failed ({status}):\n{output}")]
    ToolFailed {
        /// The program.
        tool: String,
        /// Its exit status.
        status: String,
        /// The tail of its output.
        output: String,
    },
    /// The toolchain succeeded but wrote no component.
    #[error("{tool} succeeded but {path} is missing")]
    NoOutput {
        /// The program.
        tool: String,
        /// Where the component should be.
        path: PathBuf,
    },
    /// The target of `corral new` exists.
    #[error("{0} already exists; pick another name or remove it")]
    Exists(PathBuf),
    /// An agent name that is not a valid identifier.
    #[error("invalid agent name {0:?}: use letters, digits, '-' and '_', starting with a letter")]
    InvalidName(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
