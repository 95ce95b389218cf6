//! Errors of setting up telemetry and of exporting spans.

use std::time::Duration;

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
    #[error("OTLP exporter for {endpoint}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// Why (an endpoint the transport cannot use, a client that failed to build).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The local span store could not be opened.
    #[error("span store {path}")]
    Store {
        /// The store directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An export thread or its runtime could not be started.
    #[error("starting the span export thread")]
    Runtime(#[source] std::io::Error),
}

/// Why a batch of spans was not delivered (counted as a failed export).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExportError {
    /// The gRPC connection to the collector could not be made.
    #[error("OTLP/gRPC connection")]
    GrpcConnect(#[source] tonic::transport::Error),
    /// The collector answered the gRPC call with an error status.
    #[error("OTLP/gRPC export")]
    Grpc(#[source] tonic::Status),
    /// The HTTP request failed (connection, TLS, timeout).
    #[error("OTLP/HTTP export")]
    Http(#[source] reqwest::Error),
    /// The collector answered the HTTP request with an error status.
    #[error("OTLP/HTTP export answered {status}: {body}")]
    HttpStatus {
        /// The HTTP status.
        status: http::StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// The export took longer than its time limit.
    #[error("export took longer than {0:?}")]
    Timeout(Duration),
    /// Appending to the local span store failed.
    #[error("span store {path}")]
    Store {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
