//! `corral:agent/memory`: the session's events and long-term records.

use std::sync::Arc;

use corral_telemetry::{DirectSpan, KeyValue, span_attributes};

use crate::bindings::memory::{Event, Host, MemoryError, MemoryRecord, PayloadItem};
use crate::memory::{MemoryProvider, resolve_namespace};
use crate::state::SessionState;

/// Most payload items one event may carry (AgentCore's limit).
const MAX_PAYLOAD_ITEMS: usize = 100;

impl SessionState {
    async fn append_event_live(
        &mut self,
        payload: Vec<PayloadItem>,
    ) -> Result<String, MemoryError> {
        let memory = self.attached_memory()?;
        let span = self.memory_span("memory.create_event", "");
        span.set_attribute("memory.operation.count", count(payload.len()));
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_ITEMS {
            let error = MemoryError::Validation(format!(
                "an event needs 1 to {MAX_PAYLOAD_ITEMS} payload items, got {}",
                payload.len()
            ));
            record_memory_error(&span, &error);
            return Err(error);
        }
        let bytes = payload
            .iter()
            .map(|item| match item {
                PayloadItem::Conversational(c) => c.text.len(),
                PayloadItem::Blob(json) => json.len(),
            })
            .sum();
        let charged = self
            .memory_quota
            .lock()
            .charge(bytes, self.sandbox.limits());
        if let Err(limit) = charged {
            let error = MemoryError::LimitExceeded(limit.to_string());
            record_memory_error(&span, &error);
            return Err(error);
        }
        let result = span
            .in_scope(memory.append_event(&self.memory_scope(), payload))
            .await;
        if let Err(error) = &result {
            record_memory_error(&span, error);
        }
        result
    }

    async fn list_events_live(&mut self, max_results: u32) -> Result<Vec<Event>, MemoryError> {
        let memory = self.attached_memory()?;
        let span = self.memory_span("memory.list_events", "");
        let result = span
            .in_scope(memory.list_events(&self.memory_scope(), max_results.clamp(1, 100)))
            .await;
        record_listing(&span, &result);
        result
    }

    async fn retrieve_records_live(
        &mut self,
        namespace: String,
        query: String,
        top_k: u32,
    ) -> Result<Vec<MemoryRecord>, MemoryError> {
        let memory = self.attached_memory()?;
        let scope = self.memory_scope();
        // The provider resolves and confines the namespace as the guest wrote
        // it (one place decides what an actor may read); the span shows it
        // resolved.
        let span = self.memory_span(
            "memory.retrieve_records",
            &resolve_namespace(&namespace, &scope),
        );
        let result = span
            .in_scope(memory.retrieve_records(&scope, &namespace, &query, top_k.clamp(1, 100)))
            .await;
        record_listing(&span, &result);
        result
    }
}

impl SessionState {
    /// The session's memory store, or `not-configured` when none is
    /// attached: answered before any span, validation or quota, since the
    /// call stores and reads nothing. The SDK takes `not-configured` as "no
    /// memory" (`remember_turn` returns `None`), so an agent that records
    /// its turns when it can would otherwise leave an error span on every
    /// turn's trace and use up the session's memory quota with writes that
    /// never happened.
    fn attached_memory(&self) -> Result<Arc<dyn MemoryProvider>, MemoryError> {
        self.services
            .memory
            .clone()
            .ok_or(MemoryError::NotConfigured)
    }

    /// A memory operation's span under the current step.
    fn memory_span(&self, operation: &'static str, namespace: &str) -> DirectSpan {
        self.scope.open_span(|| {
            (
                operation.into(),
                // Room for the count.
                span_attributes(
                    [
                        KeyValue::new("corral.memory.operation", operation),
                        KeyValue::new("corral.memory.namespace", namespace.to_string()),
                        KeyValue::new("corral.actor.id", self.scope.actor_id.clone()),
                    ],
                    1,
                ),
            )
        })
    }
}

/// Records how many items a listing returned, or its error.
fn record_listing<T>(span: &DirectSpan, result: &Result<Vec<T>, MemoryError>) {
    match result {
        Ok(items) => {
            span.set_attribute("memory.operation.count", count(items.len()));
        }
        Err(error) => record_memory_error(span, error),
    }
}

/// `len` as an attribute value.
fn count(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

fn record_memory_error(span: &DirectSpan, error: &MemoryError) {
    let kind = match error {
        MemoryError::Validation(_) => "validation",
        MemoryError::NotFound(_) => "not_found",
        MemoryError::NotConfigured => "not_configured",
        MemoryError::Throttled(_) => "throttled",
        MemoryError::Denied(_) => "denied",
        MemoryError::LimitExceeded(_) => "limit_exceeded",
        MemoryError::Internal(_) => "internal",
    };
    span.record_error(kind, format!("{error:?}"));
}

/// Every call crosses the host-call seam ([`crate::host_calls`]): recorded
/// for the journal, or answered from it on replay.
impl Host for SessionState {
    async fn append_event(
        &mut self,
        payload: Vec<PayloadItem>,
    ) -> wasmtime::Result<Result<String, MemoryError>> {
        crate::host_calls::journaled!(
            self,
            "memory",
            "append-event",
            &payload,
            self.append_event_live(payload).await
        )
    }

    async fn list_events(
        &mut self,
        max_results: u32,
    ) -> wasmtime::Result<Result<Vec<Event>, MemoryError>> {
        crate::host_calls::journaled!(
            self,
            "memory",
            "list-events",
            &max_results,
            self.list_events_live(max_results).await
        )
    }

    async fn retrieve_records(
        &mut self,
        namespace: String,
        query: String,
        top_k: u32,
    ) -> wasmtime::Result<Result<Vec<MemoryRecord>, MemoryError>> {
        crate::host_calls::journaled!(
            self,
            "memory",
            "retrieve-records",
            &(&namespace, &query, top_k),
            self.retrieve_records_live(namespace, query, top_k).await
        )
    }
}
