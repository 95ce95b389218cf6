//! Helpers shared by the memory integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use corral_memory::control::{CreateMemoryInput, Memory, StrategyInput, StrategyInputFields};
use corral_memory::embed::LocalEmbedder;
use corral_memory::types::{Content, Conversational, CreateEventInput, Event, PayloadItem, Role};
use corral_memory::{MemoryConfig, MemoryService, SledStorage, Timestamp};

/// A service over a sled store in `dir` with the local embedder.
pub async fn open(dir: &Path) -> MemoryService {
    let storage = Arc::new(SledStorage::open(dir).unwrap());
    MemoryService::open(
        storage,
        Arc::new(LocalEmbedder::default()),
        MemoryConfig::default(),
    )
    .await
    .unwrap()
}

/// A memory named `name` with the given strategies.
pub async fn memory(service: &MemoryService, name: &str, strategies: Vec<StrategyInput>) -> Memory {
    create(service, name, strategies).await.unwrap()
}

/// `CreateMemory` of `name` with the given strategies, as it answers.
pub async fn create(
    service: &MemoryService,
    name: &str,
    strategies: Vec<StrategyInput>,
) -> Result<Memory, corral_memory::MemoryError> {
    service
        .create_memory(CreateMemoryInput {
            client_token: None,
            name: name.into(),
            description: None,
            event_expiry_duration: 30,
            memory_strategies: strategies,
            encryption_key_arn: None,
            memory_execution_role_arn: None,
            tags: None,
        })
        .await
}

/// A strategy input with a name and default namespaces.
pub fn fields(name: &str) -> StrategyInputFields {
    StrategyInputFields {
        name: name.into(),
        ..Default::default()
    }
}

/// A conversational payload item.
pub fn said(role: Role, text: &str) -> PayloadItem {
    PayloadItem::Conversational(Conversational {
        content: Content::Text(text.into()),
        role,
    })
}

/// A CreateEvent input with one user message.
pub fn user_event(actor: &str, session: &str, text: &str) -> CreateEventInput {
    CreateEventInput {
        actor_id: actor.into(),
        session_id: Some(session.into()),
        event_timestamp: Timestamp::now(),
        payload: vec![said(Role::User, text)],
        branch: None,
        client_token: None,
        metadata: Default::default(),
    }
}

/// Texts of an event's conversational items.
pub fn texts(event: &Event) -> Vec<String> {
    event
        .payload
        .iter()
        .filter_map(|p| match p {
            PayloadItem::Conversational(c) => {
                let Content::Text(t) = &c.content;
                Some(t.clone())
            }
            PayloadItem::Blob(_) => None,
        })
        .collect()
}
