//! The span pipeline: its sinks (OTLP, local store), their counters, and the
//! `tracing` layer that feeds them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, TelemetryResourceDetector};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

use crate::batch_sink::{BatchSink, SinkCounters};
use crate::otlp_export::{OtlpDelivery, OtlpSpans};
use crate::otlp_proto::ExportHeader;
use crate::sinks::{SpanSink, SpanSinks};
use crate::span_layer::{SpanLayer, SpanPipeline};
use crate::store_writer::{StoreFile, StoreLines};
use crate::{TelemetryConfig, TelemetryError};

static OTLP_COUNTERS: LazyLock<Arc<SinkCounters>> = LazyLock::new(Arc::default);
static STORE_COUNTERS: LazyLock<Arc<SinkCounters>> = LazyLock::new(Arc::default);

/// Counters of one span sink since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Spans delivered.
    pub exported: u64,
    /// Spans dropped because the export queue was full.
    pub dropped: u64,
    /// Export requests that failed (collector down, store unwritable).
    pub failed_exports: u64,
}

/// Export counters of both sinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// The OTLP exporter.
    pub otlp: SinkStats,
    /// The local span store.
    pub store: SinkStats,
}

/// Current export counters of this process.
pub fn export_stats() -> ExportStats {
    let read = |c: &SinkCounters| SinkStats {
        exported: c.exported.load(Ordering::Relaxed),
        dropped: c.dropped.load(Ordering::Relaxed),
        failed_exports: c.failed_exports.load(Ordering::Relaxed),
    };
    ExportStats {
        otlp: read(&OTLP_COUNTERS),
        store: read(&STORE_COUNTERS),
    }
}

/// A running span pipeline; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    pipeline: Arc<SpanPipeline>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts the sinks `config` names (none: spans are sampled but go nowhere).
    pub fn start(config: &TelemetryConfig) -> Result<Self, TelemetryError> {
        crate::set_capture_content(config.capture_content);
        let mut sinks: Vec<Box<dyn SpanSink>> = Vec::new();
        if let Some(otlp) = &config.otlp {
            let header = ExportHeader::new(&resource(config), &scope());
            let delivery = OtlpDelivery::new(otlp, header)?;
            sinks.push(Box::new(
                BatchSink::start(
                    "otlp",
                    OtlpSpans,
                    delivery,
                    &config.queue,
                    OTLP_COUNTERS.clone(),
                )
                .map_err(TelemetryError::Runtime)?,
            ));
        }
        if let Some(dir) = &config.local_store {
            sinks.push(Box::new(
                BatchSink::start(
                    "store",
                    StoreLines,
                    StoreFile::open(dir)?,
                    &config.queue,
                    STORE_COUNTERS.clone(),
                )
                .map_err(TelemetryError::Runtime)?,
            ));
        }
        Ok(Self {
            pipeline: Arc::new(SpanPipeline::new(SpanSinks::new(sinks))),
        })
    }

    /// The `tracing` layer turning Corral's spans (info and above) into
    /// OpenTelemetry spans; other crates' spans (HTTP clients, the exporter
    /// itself) are left out.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        SpanLayer::new(self.pipeline.clone()).with_filter(span_filter())
    }

    /// Sends everything finished so far. A direct span held for its tree's
    /// top span (`invoke_agent`) leaves with that span, not here.
    pub fn flush(&self) {
        let _ = self.pipeline.sinks().force_flush(FLUSH_TIMEOUT);
    }

    /// Flushes, stops the sinks and returns the final counters.
    pub fn shutdown(self) -> ExportStats {
        let _ = self.pipeline.sinks().shutdown(FLUSH_TIMEOUT);
        export_stats()
    }
}

/// Which spans [`Telemetry::layer`] records: those of Corral's crates
/// (targets starting with `corral`) at info and above, except
/// [`LOG_CONTEXT_TARGET`]'s. A per-layer filter, so other layers (logs)
/// still see everything else.
pub fn span_filter() -> Targets {
    Targets::new()
        .with_target("corral", LevelFilter::INFO)
        .with_target(LOG_CONTEXT_TARGET, LevelFilter::OFF)
}

/// The target of spans that only give log lines their context (the
/// invocation's identity, whose traced span is a [`crate::DirectSpan`]):
/// [`span_filter`] leaves them out, and at the default log filter they are
/// not made at all.
pub const LOG_CONTEXT_TARGET: &str = "corral::log_context";

/// How long a flush or shutdown waits for the slowest sink (a collector
/// that does not answer); what is still queued after it is lost.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The instrumentation scope of Corral's spans.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("corral").build()
}

/// Resource attributes, lowest precedence first: SDK identity, the config
/// file, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`.
fn resource(config: &TelemetryConfig) -> Resource {
    let mut builder = Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_service_name("corral")
        .with_attributes(
            config
                .resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .with_detector(Box::new(EnvResourceDetector::new()));
    if let Ok(name) = std::env::var("OTEL_SERVICE_NAME")
        && !name.trim().is_empty()
    {
        builder = builder.with_service_name(name);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn the_span_filter_takes_corral_spans_at_info_but_not_log_context_ones() {
        let filter = span_filter();
        assert!(filter.would_enable("corral_host::manager", &Level::INFO));
        assert!(!filter.would_enable(LOG_CONTEXT_TARGET, &Level::INFO));
        assert!(!filter.would_enable("corral_host::manager", &Level::DEBUG));
        assert!(!filter.would_enable("hyper::client", &Level::INFO));
    }
}
