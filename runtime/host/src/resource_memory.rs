//! [`MemoryProvider`] over a Corral memory resource: what sandboxed agents
//! append and retrieve lands in the same store the AgentCore Memory API serves.

use async_trait::async_trait;
use corral_memory::MemoryService;
use corral_memory::types::{
    Content, Conversational as StoredConversational, CreateEventInput, PayloadItem as StoredItem,
    RetrieveMemoryRecordsInput, Role as StoredRole, SearchCriteria,
};

use crate::memory::{
    Conversational, Event, MemoryError, MemoryProvider, MemoryRecord, MemoryRole, MemoryScope,
    PayloadItem, resolve_namespace,
};

/// Agents' memory in one memory resource of a [`MemoryService`].
#[derive(Clone)]
pub struct ResourceMemory {
    service: MemoryService,
    memory_id: String,
}

impl ResourceMemory {
    /// Memory backed by resource `memory_id` of `service`.
    pub fn new(service: MemoryService, memory_id: impl Into<String>) -> Self {
        ResourceMemory {
            service,
            memory_id: memory_id.into(),
        }
    }
}

fn guest_error(error: corral_memory::MemoryError) -> MemoryError {
    use corral_memory::MemoryError as E;
    match error {
        E::Validation { message, .. } => MemoryError::Validation(message),
        E::NotFound(m) => MemoryError::NotFound(m),
        E::Throttled(m) => MemoryError::Throttled(m),
        other => MemoryError::Internal(other.to_string()),
    }
}

fn to_stored(item: PayloadItem) -> Result<StoredItem, MemoryError> {
    Ok(match item {
        PayloadItem::Conversational(c) => StoredItem::Conversational(StoredConversational {
            content: Content::Text(c.text),
            role: match c.role {
                MemoryRole::User => StoredRole::User,
                MemoryRole::Assistant => StoredRole::Assistant,
                MemoryRole::Tool => StoredRole::Tool,
                MemoryRole::Other => StoredRole::Other,
            },
        }),
        PayloadItem::Blob(json) => StoredItem::Blob(
            serde_json::from_str(&json)
                .map_err(|e| MemoryError::Validation(format!("blob is not JSON: {e}")))?,
        ),
    })
}

fn to_guest(item: StoredItem) -> PayloadItem {
    match item {
        StoredItem::Conversational(c) => {
            let Content::Text(text) = c.content;
            PayloadItem::Conversational(Conversational {
                role: match c.role {
                    StoredRole::User => MemoryRole::User,
                    StoredRole::Assistant => MemoryRole::Assistant,
                    StoredRole::Tool => MemoryRole::Tool,
                    StoredRole::Other => MemoryRole::Other,
                },
                text,
            })
        }
        StoredItem::Blob(value) => PayloadItem::Blob(value.to_string()),
    }
}

#[async_trait]
impl MemoryProvider for ResourceMemory {
    async fn append_event(
        &self,
        scope: &MemoryScope,
        payload: Vec<PayloadItem>,
    ) -> Result<String, MemoryError> {
        let payload = payload
            .into_iter()
            .map(to_stored)
            .collect::<Result<Vec<_>, _>>()?;
        let event = self
            .service
            .create_event(
                &self.memory_id,
                CreateEventInput {
                    actor_id: scope.actor_id.clone(),
                    session_id: Some(scope.session_id.to_string()),
                    event_timestamp: corral_memory::Timestamp::now(),
                    payload,
                    branch: None,
                    client_token: None,
                    metadata: Default::default(),
                },
            )
            .await
            .map_err(guest_error)?;
        Ok(event.event_id)
    }

    async fn list_events(
        &self,
        scope: &MemoryScope,
        max_results: u32,
    ) -> Result<Vec<Event>, MemoryError> {
        let events = self
            .service
            .recent_events(
                &self.memory_id,
                &scope.actor_id,
                &scope.session_id,
                max_results as usize,
            )
            .await
            .map_err(guest_error)?;
        Ok(events
            .into_iter()
            .map(|e| Event {
                event_id: e.event_id,
                session_id: e.session_id,
                actor_id: e.actor_id,
                timestamp_ms: e.event_timestamp.millis(),
                payload: e.payload.into_iter().map(to_guest).collect(),
            })
            .collect())
    }

    async fn retrieve_records(
        &self,
        scope: &MemoryScope,
        namespace: &str,
        query: &str,
        top_k: u32,
    ) -> Result<Vec<MemoryRecord>, MemoryError> {
        let namespace = resolve_namespace(namespace, scope);
        let output = self
            .service
            .retrieve_memory_records(
                &self.memory_id,
                RetrieveMemoryRecordsInput {
                    namespace: Some(namespace),
                    namespace_path: None,
                    search_criteria: SearchCriteria {
                        search_query: query.to_string(),
                        memory_strategy_id: None,
                        top_k: Some(top_k.clamp(1, 100)),
                        metadata_filters: None,
                    },
                    next_token: None,
                    max_results: Some(top_k.clamp(1, 100)),
                },
            )
            .await
            .map_err(guest_error)?;
        Ok(output
            .memory_record_summaries
            .into_iter()
            .map(|r| MemoryRecord {
                record_id: r.memory_record_id,
                content: r.content.text().to_string(),
                namespaces: r.namespaces,
                strategy_id: Some(r.memory_strategy_id),
                score: r.score.unwrap_or(0.0) as f32,
            })
            .collect())
    }
}
