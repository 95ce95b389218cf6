//! Where finished spans go: each sink (OTLP, local store) gets every span,
//! encoded once.

use std::cell::RefCell;
use std::time::Duration;

use crate::finished_span::FinishedSpan;
use crate::otlp_proto::encode_span;

/// A destination of finished spans.
pub(crate) trait SpanSink: Send + Sync + std::fmt::Debug {
    /// Takes a finished span and its OTLP encoding (one `ScopeSpans.spans`
    /// entry); called on the thread that ended it, so it must not block.
    fn on_end(&self, span: &FinishedSpan<'_>, encoded: &[u8]);
    /// Delivers everything taken so far, waiting up to `timeout`.
    fn force_flush(&self, timeout: Duration) -> Result<(), SinkError>;
    /// Delivers everything taken so far and stops, waiting up to `timeout`.
    fn shutdown(&self, timeout: Duration) -> Result<(), SinkError>;
}

/// Why a flush or shutdown did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkError {
    /// The sink's worker did not finish in time (a slow collector).
    #[error("span sink {sink} did not finish within {waited:?}")]
    TimedOut {
        /// The sink.
        sink: &'static str,
        /// How long it was given.
        waited: Duration,
    },
}

/// Most of a thread's encoding scratch buffer kept between spans.
const SCRATCH_KEEP: usize = 64 << 10;

thread_local! {
    /// Where a span is encoded before the sinks copy it into their batches,
    /// so the encoding runs outside their locks without allocating.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The span sinks of one pipeline.
#[derive(Debug, Default)]
pub(crate) struct SpanSinks {
    sinks: Vec<Box<dyn SpanSink>>,
}

impl SpanSinks {
    /// Fan-out to `sinks`.
    pub(crate) fn new(sinks: Vec<Box<dyn SpanSink>>) -> Self {
        Self { sinks }
    }

    /// Whether there is no sink: finished spans go nowhere.
    pub(crate) fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Encodes a finished span once and hands it to every sink.
    pub(crate) fn on_end(&self, span: &FinishedSpan<'_>) {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                scratch.clear();
                encode_span(span, &mut scratch);
                for sink in &self.sinks {
                    sink.on_end(span, &scratch);
                }
                // One huge span (captured content) must not pin its size on
                // every thread that ever ended one.
                if scratch.capacity() > SCRATCH_KEEP {
                    scratch.clear();
                    scratch.shrink_to(SCRATCH_KEEP);
                }
            }
            // Only if a sink ended a span on this thread (none does).
            Err(_) => {
                let mut encoded = Vec::new();
                encode_span(span, &mut encoded);
                for sink in &self.sinks {
                    sink.on_end(span, &encoded);
                }
            }
        });
    }

    /// Delivers what every sink holds; every sink is flushed even after one
    /// fails.
    pub(crate) fn force_flush(&self, timeout: Duration) -> Result<(), SinkError> {
        let results: Vec<_> = self.sinks.iter().map(|s| s.force_flush(timeout)).collect();
        results.into_iter().collect()
    }

    /// Flushes and stops every sink.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), SinkError> {
        let results: Vec<_> = self.sinks.iter().map(|s| s.shutdown(timeout)).collect();
        results.into_iter().collect()
    }
}
