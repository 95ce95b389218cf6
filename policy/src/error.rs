//! Errors of loading, validating and evaluating policies.

use thiserror::Error;

/// Why a policy engine could not be built or updated.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// A policy file or directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The engine manifest (`engine.json`) is malformed.
    #[error("invalid policy engine manifest {path}: {message}")]
    Manifest {
        /// The manifest path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Policies failed to parse; one Cedar diagnostic per line (`file:line:col: message`).
    #[error("policy syntax error:\n{}", .diagnostics.join("\n"))]
    Parse {
        /// Cedar's diagnostics, each naming the file, line and column.
        diagnostics: Vec<String>,
    },
    /// Policies do not validate against the schema generated from the tool catalogue.
    #[error("policy validation failed:\n{}", .diagnostics.join("\n"))]
    Invalid {
        /// Cedar's validation diagnostics, each naming the file, line and column.
        diagnostics: Vec<String>,
    },
    /// A policy exceeds the size quota.
    #[error("policy {id} is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Policy id.
        id: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The engine holds more policies than allowed.
    #[error("{count} policies exceed the engine's limit of {limit}")]
    TooMany {
        /// Number of policies.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Two policies share an id.
    #[error("duplicate policy id '{0}'")]
    DuplicateId(String),
    /// The Cedar schema could not be generated from the tool catalogue.
    #[error("cannot generate the Cedar schema: {0}")]
    Schema(String),
    /// An authorization request is malformed (CLI `policy test`).
    #[error("invalid authorization request: {0}")]
    Request(String),
}
