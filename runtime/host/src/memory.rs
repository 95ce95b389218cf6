//! The seam between sandboxed agents and their memory store.

use std::sync::Arc;

use async_trait::async_trait;

pub use crate::bindings::memory::{
    Conversational, Event, MemoryError, MemoryRecord, PayloadItem, Role as MemoryRole,
};

/// Whose memory an operation touches.
#[derive(Debug, Clone)]
pub struct MemoryScope {
    /// Agent (runtime) name.
    pub agent: Arc<str>,
    /// Runtime session id.
    pub session_id: Arc<str>,
    /// Actor of the current invocation.
    pub actor_id: String,
    /// The agent's memory resource (deploy-time setting), if it names one.
    pub memory_id: Option<Arc<str>>,
}

/// Memory reachable through the `memory` interface.
#[async_trait]
pub trait MemoryProvider: Send + Sync {
    /// Appends an event to the session and returns its id.
    async fn append_event(
        &self,
        scope: &MemoryScope,
        payload: Vec<PayloadItem>,
    ) -> Result<String, MemoryError>;

    /// The session's most recent events, oldest first.
    async fn list_events(
        &self,
        scope: &MemoryScope,
        max_results: u32,
    ) -> Result<Vec<Event>, MemoryError>;

    /// Long-term records at or below `namespace`, most relevant to `query`
    /// first. `namespace` arrives as the guest wrote it (placeholders
    /// unresolved): the provider resolves it and must confine it to the
    /// scope's actor, answering `denied` for anything else.
    async fn retrieve_records(
        &self,
        scope: &MemoryScope,
        namespace: &str,
        query: &str,
        top_k: u32,
    ) -> Result<Vec<MemoryRecord>, MemoryError>;
}

/// Replaces `{actorId}` and `{sessionId}` in a namespace with the scope's ids.
pub fn resolve_namespace(namespace: &str, scope: &MemoryScope) -> String {
    namespace
        .replace("{actorId}", &scope.actor_id)
        .replace("{sessionId}", &scope.session_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_placeholders_resolve_to_scope() {
        let scope = MemoryScope {
            agent: "a".into(),
            session_id: "sess".into(),
            actor_id: "alice".into(),
            memory_id: None,
        };
        assert_eq!(
            resolve_namespace("/users/{actorId}/sessions/{sessionId}", &scope),
            "/users/alice/sessions/sess"
        );
    }
}
