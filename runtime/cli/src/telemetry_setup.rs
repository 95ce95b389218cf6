//! Diagnostics on stderr plus the span pipeline (OTLP export, local store).

use std::path::PathBuf;

use anyhow::Context;
use corral_telemetry::{Telemetry, TelemetryConfig, TelemetryFile};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::LogFormat;

/// The default local span store: `$CORRAL_TRACE_DIR`, else
/// `$XDG_STATE_HOME/corral/traces`, else `~/.local/state/corral/traces`.
pub fn default_trace_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CORRAL_TRACE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    state.join("corral").join("traces")
}

/// Installs the global subscriber: stderr logs filtered by `log_filter`, and
/// (when `spans` is given) Corral's spans into the pipeline it describes.
pub fn install(
    log_filter: &str,
    format: LogFormat,
    spans: Option<(TelemetryFile, PathBuf)>,
) -> anyhow::Result<Option<Telemetry>> {
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    }
    .with_filter(tracing_subscriber::EnvFilter::new(log_filter));
    let telemetry = match spans {
        Some((file, default_store)) => {
            let mut config = TelemetryConfig::from_env(&file)?;
            if config.local_store.is_none() && file.local_store != Some(false) {
                // The default store is a convenience: where it cannot be
                // created (read-only home), run without it rather than fail.
                match std::fs::create_dir_all(&default_store) {
                    Ok(()) => config.local_store = Some(default_store),
                    Err(error) => eprintln!(
                        "corral: no local span store ({}: {error}); set CORRAL_TRACE_DIR to keep traces",
                        default_store.display()
                    ),
                }
            }
            Some(Telemetry::start(&config)?)
        }
        None => None,
    };
    let span_layer = telemetry.as_ref().map(|t| t.layer());
    tracing_subscriber::registry()
        .with(logs)
        .with(span_layer)
        .try_init()
        .context("installing the log subscriber")?;
    Ok(telemetry)
}

/// Flushes spans and says if any were lost.
pub fn finish(telemetry: Option<Telemetry>) {
    let Some(telemetry) = telemetry else {
        return;
    };
    let stats = tokio::task::block_in_place(move || telemetry.shutdown());
    if stats.otlp.dropped > 0 || stats.otlp.failed_exports > 0 {
        eprintln!(
            "corral: traces: {} spans exported over OTLP, {} dropped (queue full), {} export requests failed",
            stats.otlp.exported, stats.otlp.dropped, stats.otlp.failed_exports
        );
    }
}
