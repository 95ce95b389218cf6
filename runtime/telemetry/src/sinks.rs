//! Where finished spans go: each sink (OTLP, local store) gets every span.

use std::time::Duration;

use crate::finished_span::FinishedSpans;

/// A destination of finished spans.
pub(crate) trait SpanSink: Send + Sync + std::fmt::Debug {
    /// Takes finished spans, borrowed from their records; called on the
    /// thread that ended them, so it must not block.
    fn on_end(&self, spans: &dyn FinishedSpans);
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

    /// Hands finished spans to every sink.
    pub(crate) fn on_end(&self, spans: &dyn FinishedSpans) {
        for sink in &self.sinks {
            sink.on_end(spans);
        }
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
