//! The tracer provider: span sinks (OTLP, local store), their queues and
//! counters, and the `tracing` layer that feeds them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, TelemetryResourceDetector};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

use crate::queue::{BoundedBatch, SinkCounters};
use crate::runtime_exporter::OnRuntime;
use crate::sinks::SpanSinks;
use crate::span_layer::{SpanLayer, SpanPipeline};
use crate::store::SpanStoreWriter;
use crate::{OtlpConfig, OtlpProtocol, TelemetryConfig, TelemetryError};

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
    runtime: Option<tokio::runtime::Runtime>,
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
        let mut sinks = Vec::new();
        let mut runtime = None;
        if let Some(otlp) = &config.otlp {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("corral-otlp")
                .enable_all()
                .build()
                .map_err(TelemetryError::Runtime)?;
            let exporter = {
                let _entered = rt.enter();
                otlp_exporter(otlp)?
            };
            let exporter = OnRuntime::new(exporter, rt.handle().clone());
            sinks.push(BoundedBatch::new(
                exporter,
                &config.queue,
                OTLP_COUNTERS.clone(),
            ));
            runtime = Some(rt);
        }
        if let Some(dir) = &config.local_store {
            sinks.push(BoundedBatch::new(
                SpanStoreWriter::open(dir)?,
                &config.queue,
                STORE_COUNTERS.clone(),
            ));
        }
        let sinks = SpanSinks::new(sinks, &resource(config));
        Ok(Self {
            pipeline: Arc::new(SpanPipeline::new(sinks)),
            runtime,
        })
    }

    /// The `tracing` layer turning Corral's spans (info and above) into
    /// OpenTelemetry spans; other crates' spans (HTTP clients, the exporter
    /// itself) are left out.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        SpanLayer::new(self.pipeline.clone())
            .with_filter(Targets::new().with_target("corral", LevelFilter::INFO))
    }

    /// Sends everything finished so far.
    pub fn flush(&self) {
        let _ = self.pipeline.sinks().force_flush();
    }

    /// Flushes, stops the sinks and returns the final counters.
    pub fn shutdown(mut self) -> ExportStats {
        let _ = self.pipeline.sinks().force_flush();
        let _ = self.pipeline.sinks().shutdown(Duration::from_secs(5));
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        export_stats()
    }
}

fn otlp_exporter(config: &OtlpConfig) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let built = match config.protocol {
        OtlpProtocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(&config.endpoint)
                .with_timeout(config.timeout);
            if !config.headers.is_empty() {
                builder = builder.with_headers(config.headers.clone().into_iter().collect());
            }
            builder.build()
        }
        OtlpProtocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&config.endpoint)
                .with_timeout(config.timeout);
            if !config.headers.is_empty() {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (key, value) in &config.headers {
                    let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()).map_err(
                        |error| TelemetryError::InvalidSetting {
                            name: format!("telemetry.headers.{key}"),
                            message: error.to_string(),
                        },
                    )?;
                    let value = value.parse().map_err(|_| TelemetryError::InvalidSetting {
                        name: format!("telemetry.headers.{key}"),
                        message: "not a valid header value".into(),
                    })?;
                    metadata.insert(key, value);
                }
                builder = builder.with_metadata(metadata);
            }
            builder.build()
        }
    };
    built.map_err(|error| TelemetryError::Exporter(error.to_string()))
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
