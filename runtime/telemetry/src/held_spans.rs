//! Ended direct spans held until the top span of their tree ends, then
//! exported together.
//!
//! The agent loop opens and ends a span around each host call, between two
//! runs of the guest, which evict the caches: exported as it ends, every
//! span fetched the encoder, the sinks' queues and the allocator's free
//! paths again. Held until their tree's top span (`invoke_agent`) ends, an
//! invocation's spans are encoded and freed in one pass, on code the first
//! of them brought in. On the tracing bench (`cargo bench -p corral-host
//! --bench tracing`) the OTLP row fell by about 0.6 points of a step.
//!
//! Bounded: a tree holds at most [`HOLD_SPANS`] spans, and a span that ends
//! [`HOLD_FOR`] or more after the first held one exports them all, so a
//! long invocation's spans still reach a collector while it runs. A span
//! that ends after its tree's top span is exported at once; one that is
//! not exported (unsampled, or no sink) is dropped as it ends.

use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::span_layer::{SpanPipeline, SpanState};

/// Most ended spans a tree holds before exporting them.
pub(crate) const HOLD_SPANS: usize = 64;

/// Room a tree's list starts with.
const HOLD_FIRST: usize = 8;

/// How long after the first held span's end a later span's end exports
/// what is held.
pub(crate) const HOLD_FOR: Duration = Duration::from_secs(1);

/// The ended, exportable spans of one tree of direct spans, in end order.
#[derive(Default)]
pub(crate) struct HeldSpans(Mutex<Held>);

#[derive(Default)]
struct Held {
    /// The tree's top span has ended: spans that end later go at once.
    closed: bool,
    spans: Vec<(SpanState, SystemTime)>,
}

impl HeldSpans {
    /// Ends a span below the tree's top: held, or exported with what is
    /// held when the top has ended or a bound is reached.
    pub(crate) fn end(&self, pipeline: &SpanPipeline, state: SpanState, end: SystemTime) {
        if !pipeline.exports(&state) {
            return;
        }
        let mut held = self.0.lock();
        if held.closed {
            drop(held);
            pipeline.finish_at(state, end);
            return;
        }
        let overdue = held
            .spans
            .first()
            .is_some_and(|(_, first)| end.duration_since(*first).is_ok_and(|d| d >= HOLD_FOR));
        if held.spans.capacity() == 0 {
            // A two-step agent loop's invocation holds about seven: grown
            // once, not from four (a realloc moving every held record).
            held.spans.reserve_exact(HOLD_FIRST);
        }
        held.spans.push((state, end));
        if overdue || held.spans.len() >= HOLD_SPANS {
            export(pipeline, &mut held.spans);
        }
    }

    /// Ends the tree's top span: exports what is held and the top span.
    pub(crate) fn close(&self, pipeline: &SpanPipeline, state: SpanState, end: SystemTime) {
        let mut held = self.0.lock();
        held.closed = true;
        if pipeline.exports(&state) {
            held.spans.push((state, end));
        }
        export(pipeline, &mut held.spans);
    }
}

/// Exports `spans` in the order they ended, in one pass, leaving the list
/// empty.
fn export(pipeline: &SpanPipeline, spans: &mut Vec<(SpanState, SystemTime)>) {
    if !spans.is_empty() {
        pipeline.finish_all(spans);
        spans.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use opentelemetry::Context;
    use opentelemetry::trace::{SpanKind, Status};

    use super::*;
    use crate::sinks::SpanSinks;
    use crate::span_layer::{Parent, Recording};
    use crate::test_pipeline::{Kept, names};

    fn state(pipeline: &SpanPipeline, name: &'static str) -> SpanState {
        let recording = Recording::new(
            Cow::Borrowed(name),
            SpanKind::Internal,
            Vec::new(),
            Status::Unset,
        );
        pipeline.start(Parent::Context(Context::new()), recording)
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    #[test]
    fn spans_wait_for_the_top_and_leave_in_end_order_with_their_own_end_times() {
        let kept = Kept::default();
        let pipeline = kept.pipeline();
        let tree = HeldSpans::default();
        tree.end(&pipeline, state(&pipeline, "b"), at(0));
        tree.end(&pipeline, state(&pipeline, "a"), at(0));
        assert!(kept.take().is_empty(), "held while the top is open");
        tree.close(&pipeline, state(&pipeline, "top"), at(0));
        let spans = kept.take();
        assert_eq!(names(&spans), ["b", "a", "top"]);
        assert!(spans.iter().all(|s| s.end_time == at(0)));
        // Ended after the top: exported at once.
        tree.end(&pipeline, state(&pipeline, "late"), at(5));
        let late = kept.take();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].end_time, at(5));
    }

    #[test]
    fn a_full_tree_or_an_overdue_span_exports_what_is_held() {
        let kept = Kept::default();
        let pipeline = kept.pipeline();
        let tree = HeldSpans::default();
        for _ in 0..HOLD_SPANS - 1 {
            tree.end(&pipeline, state(&pipeline, "step"), at(0));
        }
        assert!(kept.take().is_empty());
        tree.end(&pipeline, state(&pipeline, "step"), at(0));
        assert_eq!(kept.take().len(), HOLD_SPANS, "the limit exports them");
        tree.end(&pipeline, state(&pipeline, "first"), at(10));
        tree.end(&pipeline, state(&pipeline, "soon"), at(10));
        assert!(kept.take().is_empty(), "within HOLD_FOR of the first");
        let overdue = at(10) + HOLD_FOR;
        tree.end(&pipeline, state(&pipeline, "overdue"), overdue);
        assert_eq!(names(&kept.take()), ["first", "soon", "overdue"]);
        tree.close(&pipeline, state(&pipeline, "top"), overdue);
        assert_eq!(names(&kept.take()), ["top"]);
    }

    #[test]
    fn spans_nobody_exports_are_not_held() {
        let pipeline = SpanPipeline::new(SpanSinks::new(Vec::new()));
        let tree = HeldSpans::default();
        tree.end(&pipeline, state(&pipeline, "a"), at(0));
        assert!(
            tree.0.lock().spans.is_empty(),
            "no sink: dropped as it ends"
        );
    }
}
