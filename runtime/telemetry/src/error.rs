//! Errors of setting up telemetry.

/// Why telemetry could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting (environment variable or config file key) has a bad value.
    #[error("invalid telemetry setting {name}: {message}")]
    InvalidSetting {
        /// The variable or key.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// The local span store could not be opened.
    #[error("span store {path}: {source}")]
    Store {
        /// The store directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The export runtime could not be started.
    #[error("starting the export runtime: {0}")]
    Runtime(std::io::Error),
}
