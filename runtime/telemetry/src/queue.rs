//! A batch processor whose queue is bounded and whose drops are counted.
//!
//! The SDK's `BatchSpanProcessor` drops spans when its queue is full but
//! exposes no count; this wrapper admits a span only while fewer than the
//! queue's capacity are waiting (so the inner processor never drops) and
//! counts every span it turns away.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};

use crate::QueueConfig;

/// Counters of one span sink.
#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    /// Spans handed to the exporter in successful batches.
    pub(crate) exported: AtomicU64,
    /// Spans turned away because the queue was full.
    pub(crate) dropped: AtomicU64,
    /// Export requests that failed.
    pub(crate) failed_exports: AtomicU64,
}

/// A [`BatchSpanProcessor`] behind a counted, bounded admission gate.
#[derive(Debug)]
pub(crate) struct BoundedBatch {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    counters: Arc<SinkCounters>,
}

impl BoundedBatch {
    /// A processor exporting through `exporter` with `queue` limits.
    pub(crate) fn new<E: SpanExporter + 'static>(
        exporter: E,
        queue: &QueueConfig,
        counters: Arc<SinkCounters>,
    ) -> Self {
        let queued = Arc::new(AtomicUsize::new(0));
        let counted = Counted {
            inner: exporter,
            queued: queued.clone(),
            counters: counters.clone(),
        };
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(queue.max_queue_size)
            .with_max_export_batch_size(queue.max_export_batch_size)
            .with_scheduled_delay(queue.scheduled_delay)
            .build();
        let inner = BatchSpanProcessor::builder(counted)
            .with_batch_config(config)
            .build();
        Self {
            inner,
            queued,
            capacity: queue.max_queue_size,
            counters,
        }
    }
}

impl SpanProcessor for BoundedBatch {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter side of the gate: a batch leaving the queue frees its slots.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
    counters: Arc<SinkCounters>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let len = batch.len();
        self.queued.fetch_sub(len, Ordering::AcqRel);
        let export = self.inner.export(batch);
        let counters = self.counters.clone();
        async move {
            let result = export.await;
            match &result {
                Ok(()) => counters.exported.fetch_add(len as u64, Ordering::Relaxed),
                Err(_) => counters.failed_exports.fetch_add(1, Ordering::Relaxed),
            };
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
