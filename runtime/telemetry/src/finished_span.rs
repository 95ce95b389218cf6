//! A closed span as the sinks read it: borrowed from the span's record, so
//! closing a span builds no `SpanData` (a move of its whole record, a scope
//! clone and a second drop of everything in it).

use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};

/// One closed, sampled span, within the span limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinishedSpan<'a> {
    /// The span's trace, id, flags and trace state.
    pub(crate) span_context: &'a SpanContext,
    /// `SpanId::INVALID` for a root.
    pub(crate) parent_span_id: SpanId,
    /// Whether the parent came from another process.
    pub(crate) parent_span_is_remote: bool,
    pub(crate) span_kind: &'a SpanKind,
    pub(crate) name: &'a str,
    pub(crate) start_time: SystemTime,
    pub(crate) end_time: SystemTime,
    /// The first attributes up to the limit.
    pub(crate) attributes: &'a [KeyValue],
    /// Attributes past the limit.
    pub(crate) dropped_attributes_count: u32,
    /// The first events up to the limit.
    pub(crate) events: &'a [Event],
    /// Events past the limit.
    pub(crate) dropped_events_count: u32,
    /// The first links up to the limit.
    pub(crate) links: &'a [Link],
    /// Links past the limit.
    pub(crate) dropped_links_count: u32,
    pub(crate) status: &'a Status,
}

/// Finished spans handed to the sinks in one call: one span, or the held
/// spans of a tree ([`crate::held_spans`]).
pub(crate) trait FinishedSpans {
    /// Calls `each` with every span, in the order they ended.
    fn for_each(&self, each: &mut dyn FnMut(&FinishedSpan<'_>));
}

impl FinishedSpans for FinishedSpan<'_> {
    fn for_each(&self, each: &mut dyn FnMut(&FinishedSpan<'_>)) {
        each(self);
    }
}

/// The first `limit` of `items`, and how many are past it.
pub(crate) fn within<T>(items: &[T], limit: u32) -> (&[T], u32) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match items.split_at_checked(limit) {
        Some((kept, past)) => (kept, u32::try_from(past.len()).unwrap_or(u32::MAX)),
        None => (items, 0),
    }
}

#[cfg(test)]
impl<'a> FinishedSpan<'a> {
    /// The view of an SDK span (tests build spans that way).
    pub(crate) fn of(span: &'a opentelemetry_sdk::trace::SpanData) -> Self {
        Self {
            span_context: &span.span_context,
            parent_span_id: span.parent_span_id,
            parent_span_is_remote: span.parent_span_is_remote,
            span_kind: &span.span_kind,
            name: &span.name,
            start_time: span.start_time,
            end_time: span.end_time,
            attributes: &span.attributes,
            dropped_attributes_count: span.dropped_attributes_count,
            events: &span.events.events,
            dropped_events_count: span.events.dropped_count,
            links: &span.links.links,
            dropped_links_count: span.links.dropped_count,
            status: &span.status,
        }
    }

    /// An SDK span with this span's content (the test sink keeps those).
    pub(crate) fn to_span_data(self) -> opentelemetry_sdk::trace::SpanData {
        let mut events = opentelemetry_sdk::trace::SpanEvents::default();
        events.events = self.events.to_vec();
        events.dropped_count = self.dropped_events_count;
        let mut links = opentelemetry_sdk::trace::SpanLinks::default();
        links.links = self.links.to_vec();
        links.dropped_count = self.dropped_links_count;
        opentelemetry_sdk::trace::SpanData {
            span_context: self.span_context.clone(),
            parent_span_id: self.parent_span_id,
            parent_span_is_remote: self.parent_span_is_remote,
            span_kind: self.span_kind.clone(),
            name: self.name.to_string().into(),
            start_time: self.start_time,
            end_time: self.end_time,
            attributes: self.attributes.to_vec(),
            dropped_attributes_count: self.dropped_attributes_count,
            events,
            links,
            status: self.status.clone(),
            instrumentation_scope: crate::pipeline::scope(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_keeps_the_first_up_to_the_limit_and_counts_the_rest() {
        assert_eq!(within(&[1, 2, 3], 2), (&[1, 2][..], 1));
        assert_eq!(within(&[1, 2, 3], 3), (&[1, 2, 3][..], 0));
        assert_eq!(within(&[1, 2, 3], 128), (&[1, 2, 3][..], 0));
        assert_eq!(within(&[1, 2, 3], 0), (&[][..], 3));
        assert_eq!(within::<u8>(&[], 0), (&[][..], 0));
    }
}
