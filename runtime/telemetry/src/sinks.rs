//! Where finished spans go: each sink (OTLP, local store) gets every span.

use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};

use crate::queue::BoundedBatch;

/// The span sinks of one pipeline.
#[derive(Debug)]
pub(crate) struct SpanSinks {
    sinks: Vec<BoundedBatch>,
}

impl SpanSinks {
    /// Sinks describing spans as coming from `resource`.
    pub(crate) fn new(mut sinks: Vec<BoundedBatch>, resource: &Resource) -> Self {
        for sink in &mut sinks {
            sink.set_resource(resource);
        }
        Self { sinks }
    }

    /// Hands a finished span to every sink.
    pub(crate) fn on_end(&self, span: SpanData) {
        let Some((last, rest)) = self.sinks.split_last() else {
            return;
        };
        for sink in rest {
            sink.on_end(span.clone());
        }
        last.on_end(span);
    }

    /// Exports what every sink holds; every sink is flushed even after one
    /// fails.
    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        let results: Vec<OTelSdkResult> = self.sinks.iter().map(|s| s.force_flush()).collect();
        results.into_iter().collect()
    }

    /// Flushes and stops every sink.
    pub(crate) fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        let results: Vec<OTelSdkResult> = self
            .sinks
            .iter()
            .map(|s| s.shutdown_with_timeout(timeout))
            .collect();
        results.into_iter().collect()
    }
}
