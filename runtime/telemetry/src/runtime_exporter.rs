//! Runs an async exporter's requests on a dedicated tokio runtime.
//!
//! The SDK's batch processor exports from a plain thread through a minimal
//! executor, but tonic and async reqwest need a tokio reactor; this adapter
//! spawns each export onto a one-thread runtime owned by the pipeline.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::runtime::Handle;

/// An exporter whose `export` runs on `handle`'s runtime.
#[derive(Debug)]
pub(crate) struct OnRuntime<E> {
    inner: Arc<E>,
    handle: Handle,
}

impl<E> OnRuntime<E> {
    /// Wraps `inner`; its futures are spawned on `handle`.
    pub(crate) fn new(inner: E, handle: Handle) -> Self {
        Self {
            inner: Arc::new(inner),
            handle,
        }
    }
}

impl<E: SpanExporter + 'static> SpanExporter for OnRuntime<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let task = self.handle.spawn(async move { inner.export(batch).await });
        async move {
            task.await
                .unwrap_or_else(|error| Err(OTelSdkError::InternalFailure(error.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _runtime = self.handle.enter();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        let _runtime = self.handle.enter();
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}
