//! Corral's tracing pipeline: every step of an agent session as an
//! OpenTelemetry span, exported over OTLP (gRPC or HTTP/protobuf) and kept in
//! a local span store that `corral trace` reads.
//!
//! Spans are ordinary `tracing` spans; [`Telemetry`] turns the ones from
//! Corral's crates into OpenTelemetry spans. The agent loop's hot spans are
//! [`DirectSpan`]s, recorded into the same pipeline without `tracing`. Export runs on its own threads
//! behind bounded queues: a slow or absent collector costs dropped spans
//! (counted in [`export_stats`]), never a slower agent.

mod batch_sink;
mod config;
mod content;
mod direct_span;
mod error;
mod finished_span;
mod held_spans;
mod in_span;
mod otlp_export;
mod otlp_proto;
mod pipeline;
mod propagation;
mod session;
mod sinks;
mod span_ext;
mod span_fields;
mod span_handle;
mod span_layer;
pub mod store;
mod store_writer;
#[cfg(test)]
mod test_pipeline;
pub mod tree;

pub use config::{OtlpConfig, OtlpProtocol, QueueConfig, TelemetryConfig, TelemetryFile};
pub use content::{capture_content, set_capture_content};
pub use direct_span::{DirectSpan, InScope, SpanStart, span_attributes, span_name};
pub use error::TelemetryError;
pub use in_span::{InSpan, in_span};
pub use opentelemetry::{Context, KeyValue};
pub use pipeline::{
    ExportStats, LOG_CONTEXT_TARGET, SinkStats, Telemetry, export_stats, span_filter,
};
pub use propagation::{
    baggage_session_id, current_trace_headers, extract_context, inject_current, inject_headers,
    record_error, session_context, span_context_from_traceparent, span_traceparent,
};
pub use session::SESSION_ID_KEY;
pub use span_ext::OpenTelemetrySpanExt;
pub use span_handle::SpanHandle;

#[cfg(feature = "receiver")]
pub mod receiver;
