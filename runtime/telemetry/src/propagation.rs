//! W3C trace context and baggage across process boundaries, and span helpers.

use crate::OpenTelemetrySpanExt;
use opentelemetry::baggage::{Baggage, BaggageExt, BaggageMetadata, KeyValueMetadata};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

use crate::SESSION_ID_KEY;
use crate::direct_span::current_context;

/// The caller's context from `traceparent`, `tracestate` and `baggage` headers.
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    let extractor = HeaderExtractor(headers);
    let cx = TraceContextPropagator::new().extract(&extractor);
    BaggagePropagator::new().extract_with_context(&cx, &extractor)
}

/// Writes `cx` as `traceparent`/`tracestate`/`baggage` headers.
pub fn inject_headers(cx: &Context, headers: &mut http::HeaderMap) {
    let mut injector = HeaderInjector(headers);
    TraceContextPropagator::new().inject_context(cx, &mut injector);
    BaggagePropagator::new().inject_context(cx, &mut injector);
}

/// `span`'s W3C `traceparent`, when it is part of a trace.
pub fn span_traceparent(span: &tracing::Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    // The span's own ids only: its baggage is not needed for a traceparent.
    traceparent(span.span_context())
}

/// The W3C `traceparent` naming `span_context`, if it is valid.
pub(crate) fn traceparent(span_context: SpanContext) -> Option<String> {
    let cx = Context::new().with_remote_span_context(span_context);
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The span context a W3C `traceparent` names (for span links), if valid.
pub fn span_context_from_traceparent(traceparent: &str) -> Option<SpanContext> {
    let carrier =
        std::collections::HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Writes the current span's context (a [`crate::DirectSpan`]'s inside its
/// scope) as W3C headers (nothing when tracing is off).
pub fn inject_current(headers: &mut http::HeaderMap) {
    inject_headers(&current_context(), headers);
}

/// The current span's context as W3C header name/value pairs (`traceparent`,
/// `tracestate`, `baggage`); empty when tracing is off. For carriers that are
/// not HTTP header maps: MCP `_meta` (SEP-414), SDK request hooks.
pub fn current_trace_headers() -> Vec<(String, String)> {
    let cx = current_context();
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    BaggagePropagator::new().inject_context(&cx, &mut carrier);
    let mut pairs: Vec<(String, String)> = carrier.into_iter().collect();
    pairs.sort();
    pairs
}

/// The `session.id` entry of `cx`'s baggage.
pub fn baggage_session_id(cx: &Context) -> Option<String> {
    cx.baggage()
        .get(SESSION_ID_KEY)
        .map(|v| v.as_str().to_string())
}

/// `parent` with the session id added to its baggage, so every span below
/// it is tagged with `session.id` and outbound calls carry it with the rest
/// of the caller's baggage.
pub fn session_context(parent: &Context, session_id: &str) -> Context {
    // Shared, so tagging each span of the session copies a pointer, not the id.
    let id = opentelemetry::StringValue::from(std::sync::Arc::<str>::from(session_id));
    // `with_baggage` replaces the context's baggage: start from the caller's.
    let entries = parent
        .baggage()
        .iter()
        .filter(|(key, _)| key.as_str() != SESSION_ID_KEY)
        .map(|(key, (value, metadata))| {
            KeyValueMetadata::new(key.clone(), value.clone(), metadata.clone())
        })
        .chain([KeyValueMetadata::new(
            SESSION_ID_KEY,
            id,
            BaggageMetadata::default(),
        )]);
    parent.with_baggage(Baggage::from_iter(entries))
}

/// Marks `span` failed: error status plus an `exception` event.
pub fn record_error(span: &tracing::Span, error_type: &str, message: &str) {
    span.set_status(Status::error(message.to_string()));
    span.add_event("exception", exception_attributes(error_type, message));
}

/// An `exception` event's attributes.
pub(crate) fn exception_attributes(error_type: &str, message: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("exception.type", error_type.to_string()),
        KeyValue::new("exception.message", message.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn traceparent_and_baggage_round_trip() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        headers.insert(
            "baggage",
            http::HeaderValue::from_static("session.id=abc,team=x"),
        );
        let cx = extract_context(&headers);
        let span = cx.span();
        let remote = span.span_context();
        assert!(remote.is_valid() && remote.is_remote());
        assert_eq!(
            remote.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            cx.baggage().get("session.id").map(|v| v.as_str()),
            Some("abc")
        );

        let mut out = http::HeaderMap::new();
        inject_headers(&session_context(&cx, "s-2"), &mut out);
        let traceparent = out
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"));
        let baggage = out
            .get("baggage")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(baggage.contains("session.id=s-2"), "{baggage}");
        assert!(!baggage.contains("session.id=abc"), "{baggage}");
        assert!(
            baggage.contains("team=x"),
            "the caller's baggage goes on: {baggage}"
        );
    }

    #[test]
    fn malformed_traceparent_is_ignored() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static("garbage"));
        let cx = extract_context(&headers);
        assert!(!cx.span().span_context().is_valid());
    }
}
