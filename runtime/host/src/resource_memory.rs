//! [`MemoryProvider`] over Corral memory resources: what sandboxed agents
//! append and retrieve lands in the same store the AgentCore Memory API serves.
//! Each agent uses the resource its settings name (else the default one) and
//! reads only its actor's namespaces ([`ActorNamespaces`]).

mod actor_namespaces;

use async_trait::async_trait;
use corral_memory::MemoryService;
use corral_memory::control::Memory;
use corral_memory::types::{
    Content, Conversational as StoredConversational, CreateEventInput, PayloadItem as StoredItem,
    RetrieveMemoryRecordsInput, Role as StoredRole, SearchCriteria,
};

use crate::memory::{
    Conversational, Event, MemoryError, MemoryProvider, MemoryRecord, MemoryRole, MemoryScope,
    PayloadItem,
};
use actor_namespaces::ActorNamespaces;

/// Agents' memory in the memory resources of a [`MemoryService`].
#[derive(Clone)]
pub struct ResourceMemory {
    service: MemoryService,
    default_memory_id: String,
}

impl ResourceMemory {
    /// Memory backed by `service`; agents whose settings name no memory
    /// resource use `default_memory_id`.
    pub fn new(service: MemoryService, default_memory_id: impl Into<String>) -> Self {
        ResourceMemory {
            service,
            default_memory_id: default_memory_id.into(),
        }
    }

    /// The resource the scope's agent uses; `not-found` when it does not exist.
    fn resource(&self, scope: &MemoryScope) -> Result<Memory, MemoryError> {
        let id = scope
            .memory_id
            .as_deref()
            .unwrap_or(&self.default_memory_id);
        self.service.get_memory(id).map_err(|e| match e {
            corral_memory::MemoryError::NotFound(_)
            | corral_memory::MemoryError::Validation { .. } => {
                MemoryError::NotFound(format!("memory {id} not found"))
            }
            other => guest_error(other),
        })
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
        let memory = self.resource(scope)?;
        let event = self
            .service
            .create_event(
                &memory.id,
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
        let memory = self.resource(scope)?;
        let events = self
            .service
            .recent_events(
                &memory.id,
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

    /// `namespace` is as the agent wrote it: placeholders are resolved here
    /// and the request confined to the actor's namespaces.
    ///
    /// The store is searched by path under the requested namespace, which
    /// also covers other actors' namespaces (actor ids may contain `/`, so
    /// actor `alice/x`'s records lie under alice's root). Filtering the
    /// store's top results afterwards would let such actors, whose ids any
    /// caller may choose, fill every place with better matches and push the
    /// actor's own records out — and no page token helps, as the store ranks
    /// at most 100 records per search. So ownership is checked inside the
    /// ranking ([`MemoryService::retrieve_memory_records_where`]): only the
    /// actor's records compete for the `top_k` places, and the actor gets
    /// its `top_k` best whatever else lies under its root, at the cost of
    /// one search. Records are checked again on the way out, in case one
    /// was moved between ranking and loading.
    async fn retrieve_records(
        &self,
        scope: &MemoryScope,
        namespace: &str,
        query: &str,
        top_k: u32,
    ) -> Result<Vec<MemoryRecord>, MemoryError> {
        let memory = self.resource(scope)?;
        let owned = ActorNamespaces::new(&memory.strategies, scope);
        let namespace = owned
            .resolve_request(namespace)
            .map_err(|denied| MemoryError::Denied(denied.to_string()))?;
        let top_k = top_k.clamp(1, 100);
        let output = self
            .service
            .retrieve_memory_records_where(
                &memory.id,
                RetrieveMemoryRecordsInput {
                    namespace: None,
                    namespace_path: Some(namespace),
                    search_criteria: SearchCriteria {
                        search_query: query.to_string(),
                        memory_strategy_id: None,
                        top_k: Some(top_k),
                        metadata_filters: None,
                    },
                    next_token: None,
                    max_results: Some(top_k),
                },
                &|namespace, strategy| owned.owns(strategy, namespace),
            )
            .await
            .map_err(guest_error)?;
        Ok(output
            .memory_record_summaries
            .into_iter()
            .filter(|r| owned.owns_record(&r.memory_strategy_id, &r.namespaces))
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
