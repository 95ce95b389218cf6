//! Finished direct spans waiting for the top direct span of their trace.
//!
//! The agent loop ends its spans one at a time between guest calls, and
//! the guest evicts the caches in between: exporting each span as it ends
//! ran the encoder, the sinks and the record's drop cold every time
//! (callgrind's cache simulation of the tracing bench, `cargo bench -p
//! corral-host --bench tracing`: most of what encoding cost was instruction
//! cache misses, not instructions). So a direct span under another direct
//! span is held here when it ends, and the whole tree is exported together,
//! on warm code, when its top span (an invocation's `invoke_agent`) ends.
//! Tracers that send whole traces (Datadog's) buffer the same way.
//!
//! Trade-off: an ended span reaches the sinks later, when its top span
//! ends. Two bounds keep a long invocation's spans flowing: a tree's spans
//! are exported as soon as [`MAX_WAITING`] of them wait, and whenever a
//! span of the tree ends more than [`MAX_WAIT`] after the oldest waiting one.

use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::span_layer::SpanState;

/// Most ended spans of one tree held before they are exported anyway.
pub(crate) const MAX_WAITING: usize = 64;

/// How long after the oldest waiting span ended a tree's spans are
/// exported anyway, when another of its spans ends.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(1);

/// A span that has ended, and when.
pub(crate) type Ended = (SpanState, SystemTime);

/// The ended spans of one tree of direct spans, shared by its spans.
#[derive(Debug, Default)]
pub(crate) struct TraceBuffer {
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    /// Set when the top span ended: spans ending later are not held.
    closed: bool,
    spans: Vec<Ended>,
}

/// What to do with a span that just ended.
pub(crate) enum Hold {
    /// Held until its tree's top span ends.
    Held,
    /// Export these now: the span, and any that waited with it (or the
    /// span alone, when its top span has already ended).
    Export(Vec<Ended>),
}

impl TraceBuffer {
    /// Holds `span`, ended at `end`, unless its tree must be exported now.
    pub(crate) fn hold(&self, span: SpanState, end: SystemTime) -> Hold {
        let mut waiting = self.waiting.lock();
        if waiting.closed {
            // Rare: work spawned off an invocation, outliving it.
            return Hold::Export(vec![(span, end)]);
        }
        let stale = waiting.spans.first().is_some_and(|(_, oldest)| {
            end.duration_since(*oldest)
                .is_ok_and(|waited| waited >= MAX_WAIT)
        });
        if waiting.spans.capacity() == 0 {
            // An invocation's tree: a step's spans and a few more.
            waiting.spans.reserve(8);
        }
        waiting.spans.push((span, end));
        if stale || waiting.spans.len() >= MAX_WAITING {
            Hold::Export(std::mem::take(&mut waiting.spans))
        } else {
            Hold::Held
        }
    }

    /// Closes the buffer (its top span has ended) and returns what waited.
    pub(crate) fn close(&self) -> Vec<Ended> {
        let mut waiting = self.waiting.lock();
        waiting.closed = true;
        std::mem::take(&mut waiting.spans)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Context;
    use opentelemetry::trace::{SpanKind, Status};

    use super::*;
    use crate::sinks::SpanSinks;
    use crate::span_layer::{Parent, Recording, SpanPipeline};

    fn span() -> SpanState {
        let pipeline = SpanPipeline::new(SpanSinks::new(Vec::new()));
        let recording = Recording::new("s".into(), SpanKind::Internal, Vec::new(), Status::Unset);
        pipeline.start(Parent::Context(Context::new()), recording)
    }

    #[test]
    fn spans_wait_until_the_oldest_has_waited_max_wait_or_the_top_span_ends() {
        let buffer = TraceBuffer::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert!(matches!(buffer.hold(span(), t0), Hold::Held));
        let almost = t0 + MAX_WAIT - Duration::from_millis(1);
        assert!(matches!(buffer.hold(span(), almost), Hold::Held));
        match buffer.hold(span(), t0 + MAX_WAIT) {
            Hold::Export(spans) => {
                let ends: Vec<SystemTime> = spans.iter().map(|(_, end)| *end).collect();
                assert_eq!(ends, [t0, almost, t0 + MAX_WAIT]);
            }
            _ => panic!("the oldest waited long enough"),
        }
        // A clock stepped back is not a wait.
        assert!(matches!(buffer.hold(span(), t0), Hold::Held));
        assert!(matches!(
            buffer.hold(span(), t0 - Duration::from_secs(5)),
            Hold::Held
        ));
        assert_eq!(buffer.close().len(), 2);
        assert!(matches!(buffer.hold(span(), t0), Hold::Export(spans) if spans.len() == 1));
        assert!(buffer.close().is_empty());
    }
}
