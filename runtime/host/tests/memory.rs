//! Sandboxed agents' `memory` interface backed by a real memory resource:
//! what the guest appends is durable in the store and visible through the
//! AgentCore Memory API, per actor and session.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{manager, probe_json, test_config};
use corral_host::{HostServices, ResourceMemory};
use corral_memory::control::CreateMemoryInput;
use corral_memory::embed::LocalEmbedder;
use corral_memory::types::ListEventsInput;
use corral_memory::{MemoryConfig, MemoryService, SledStorage};
use serde_json::json;

#[tokio::test]
async fn guest_memory_lands_in_the_memory_resource() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
    let service = MemoryService::open(
        storage,
        Arc::new(LocalEmbedder::default()),
        MemoryConfig::default(),
    )
    .await
    .unwrap();
    let memory = service
        .create_memory(CreateMemoryInput {
            client_token: None,
            name: "agent_memory".into(),
            description: None,
            event_expiry_duration: 30,
            memory_strategies: vec![],
            encryption_key_arn: None,
            memory_execution_role_arn: None,
            tags: None,
        })
        .await
        .unwrap();
    let services = HostServices::default()
        .with_memory(Arc::new(ResourceMemory::new(service.clone(), &memory.id)));
    let manager = manager(services, test_config());
    let first = probe_json(
        &manager,
        "session-a",
        json!({"action": "memory", "text": "first"}),
    )
    .await;
    assert!(
        first["append"].as_str().unwrap().starts_with("Ok("),
        "{first}"
    );
    assert_eq!(first["events"], json!({"Ok": 1}));
    let second = probe_json(
        &manager,
        "session-a",
        json!({"action": "memory", "text": "second"}),
    )
    .await;
    assert_eq!(second["events"], json!({"Ok": 2}));
    // Another session starts empty.
    let other = probe_json(
        &manager,
        "session-b",
        json!({"action": "memory", "text": "other"}),
    )
    .await;
    assert_eq!(other["events"], json!({"Ok": 1}));

    let listed = service
        .list_events(
            &memory.id,
            "default",
            "session-a",
            ListEventsInput::default(),
        )
        .await
        .unwrap();
    let texts: Vec<String> = listed
        .events
        .iter()
        .map(|e| {
            serde_json::to_value(&e.payload).unwrap()[0]["conversational"]["content"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, vec!["first", "second"]);
}
