//! What code handed a span may record on it, whichever kind of span it is.

use opentelemetry::KeyValue;

use crate::{DirectSpan, OpenTelemetrySpanExt};

/// A span code records on without knowing its kind: a `tracing` span (the
/// MCP server's `tools/call`) or a [`DirectSpan`] (the agent's
/// `execute_tool`). Every method is a no-op on a span that does not record.
pub trait SpanHandle {
    /// Whether the span records (tracing is on and it is sampled or may be).
    fn is_recording(&self) -> bool;
    /// Adds attributes.
    fn add_attributes(&self, attributes: Vec<KeyValue>);
    /// Adds an event with `attributes`, timestamped now.
    fn add_event_now(&self, name: &'static str, attributes: Vec<KeyValue>);
}

impl SpanHandle for tracing::Span {
    fn is_recording(&self) -> bool {
        !self.is_disabled()
    }

    fn add_attributes(&self, attributes: Vec<KeyValue>) {
        self.set_attributes(attributes);
    }

    fn add_event_now(&self, name: &'static str, attributes: Vec<KeyValue>) {
        self.add_event(name, attributes);
    }
}

impl SpanHandle for DirectSpan {
    fn is_recording(&self) -> bool {
        DirectSpan::is_recording(self)
    }

    fn add_attributes(&self, attributes: Vec<KeyValue>) {
        self.set_attributes(attributes);
    }

    fn add_event_now(&self, name: &'static str, attributes: Vec<KeyValue>) {
        self.add_event(name, attributes);
    }
}
