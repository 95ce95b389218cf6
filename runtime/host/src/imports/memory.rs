//! `corral:agent/memory`: the session's events and long-term records.

use crate::bindings::memory::{Event, Host, MemoryError, MemoryRecord, PayloadItem};
use crate::memory::resolve_namespace;
use crate::state::SessionState;

/// Most payload items one event may carry (AgentCore's limit).
const MAX_PAYLOAD_ITEMS: usize = 100;

impl Host for SessionState {
    async fn append_event(&mut self, payload: Vec<PayloadItem>) -> Result<String, MemoryError> {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_ITEMS {
            return Err(MemoryError::Validation(format!(
                "an event needs 1 to {MAX_PAYLOAD_ITEMS} payload items, got {}",
                payload.len()
            )));
        }
        let memory = self.services.memory.clone();
        memory.append_event(&self.memory_scope(), payload).await
    }

    async fn list_events(&mut self, max_results: u32) -> Result<Vec<Event>, MemoryError> {
        let memory = self.services.memory.clone();
        memory
            .list_events(&self.memory_scope(), max_results.clamp(1, 100))
            .await
    }

    async fn retrieve_records(
        &mut self,
        namespace: String,
        query: String,
        top_k: u32,
    ) -> Result<Vec<MemoryRecord>, MemoryError> {
        let scope = self.memory_scope();
        let namespace = resolve_namespace(&namespace, &scope);
        let memory = self.services.memory.clone();
        memory
            .retrieve_records(&scope, &namespace, &query, top_k.clamp(1, 100))
            .await
    }
}
