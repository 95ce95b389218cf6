//! A pipeline feeding one in-memory sink, for the crate's unit tests.

use std::sync::Arc;

use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use parking_lot::Mutex;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

use crate::finished_span::FinishedSpans;
use crate::sinks::{SinkError, SpanSink, SpanSinks};
use crate::span_layer::{SpanLayer, SpanPipeline};

/// A sink keeping what it is sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kept(pub(crate) Arc<Mutex<Vec<SpanData>>>);

impl SpanSink for Kept {
    fn on_end(&self, spans: &dyn FinishedSpans) {
        let mut kept = self.0.lock();
        spans.for_each(&mut |span| kept.push(span.to_span_data()));
    }

    fn force_flush(&self, _timeout: std::time::Duration) -> Result<(), SinkError> {
        Ok(())
    }

    fn shutdown(&self, _timeout: std::time::Duration) -> Result<(), SinkError> {
        Ok(())
    }
}

impl Kept {
    /// A pipeline feeding this sink.
    pub(crate) fn pipeline(&self) -> Arc<SpanPipeline> {
        Arc::new(SpanPipeline::new(SpanSinks::new(vec![Box::new(
            self.clone(),
        )])))
    }

    /// A dispatch whose Corral layer (unfiltered) feeds this sink.
    pub(crate) fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(tracing_subscriber::registry().with(SpanLayer::new(self.pipeline())))
    }

    /// A dispatch whose Corral layer, behind [`crate::span_filter`] as in
    /// [`crate::Telemetry::layer`], feeds this sink.
    pub(crate) fn filtered_dispatch(&self) -> tracing::Dispatch {
        let layer = SpanLayer::new(self.pipeline()).with_filter(crate::span_filter());
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
    }

    /// The spans finished so far, taken.
    pub(crate) fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// The spans' names, in the order they were exported.
pub(crate) fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_ref()).collect()
}

/// The span named `name`.
pub(crate) fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

/// `span`'s attribute `key`.
pub(crate) fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}
