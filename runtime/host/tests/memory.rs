//! Sandboxed agents' `memory` interface backed by a real memory resource:
//! what the guest appends is durable in the store and visible through the
//! AgentCore Memory API, per actor and session; agents read only their
//! actor's namespaces, in the memory resource their settings name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{fixture, manager, probe_json, test_config};
use corral_host::{
    AgentSettings, CompiledAgent, HostServices, InvocationRequest, ResourceMemory, SessionManager,
};
use corral_memory::control::{CreateMemoryInput, Memory, StrategyInput, StrategyInputFields};
use corral_memory::embed::LocalEmbedder;
use corral_memory::types::{
    ListEventsInput, MemoryContent, MemoryRecordCreateInput, RetrieveMemoryRecordsInput,
    SearchCriteria,
};
use corral_memory::{MemoryConfig, MemoryService, SledStorage, Timestamp};
use serde_json::{Value, json};

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
    // ListEvents lists newest first.
    assert_eq!(texts, vec!["second", "first"]);
}

async fn open_service(dir: &std::path::Path) -> MemoryService {
    let storage = Arc::new(SledStorage::open(dir).unwrap());
    MemoryService::open(
        storage,
        Arc::new(LocalEmbedder::default()),
        MemoryConfig::default(),
    )
    .await
    .unwrap()
}

async fn create_memory(
    service: &MemoryService,
    name: &str,
    strategies: Vec<StrategyInput>,
) -> Memory {
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
        .unwrap()
}

/// Invokes `agent` as `actor` and parses its JSON answer.
async fn probe_as(
    manager: &SessionManager,
    agent: &Arc<CompiledAgent>,
    actor: &str,
    session: &str,
    payload: Value,
) -> Value {
    let request = InvocationRequest::new(session, payload.to_string()).actor(actor);
    let response = manager
        .invoke(agent, request)
        .await
        .unwrap_or_else(|e| panic!("probe {payload} as {actor} failed: {e}"));
    serde_json::from_slice(&response.payload).expect("probe answers JSON")
}

fn retrieve(namespace: &str, query: &str) -> Value {
    json!({"action": "retrieve", "namespace": namespace, "query": query, "top_k": 10})
}

fn contents(answer: &Value) -> Vec<String> {
    answer["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records in {answer}"))
        .iter()
        .map(|r| r["content"].as_str().unwrap().to_string())
        .collect()
}

/// Semantic facts per actor, summaries per actor and session.
fn fact_and_summary_strategies() -> Vec<StrategyInput> {
    vec![
        StrategyInput::SemanticMemoryStrategy(StrategyInputFields {
            name: "facts".into(),
            ..Default::default()
        }),
        StrategyInput::SummaryMemoryStrategy(StrategyInputFields {
            name: "summaries".into(),
            ..Default::default()
        }),
    ]
}

#[tokio::test]
async fn agents_read_only_their_actors_records() {
    let dir = tempfile::tempdir().unwrap();
    let service = open_service(dir.path()).await;
    let memory = create_memory(&service, "actor_memory", fact_and_summary_strategies()).await;
    let facts = memory.strategies[0].strategy_id.clone();
    let summaries = memory.strategies[1].strategy_id.clone();
    let record =
        |i: usize, namespace: String, text: &str, strategy: Option<&str>| MemoryRecordCreateInput {
            request_identifier: format!("r{i}"),
            namespaces: vec![namespace],
            content: MemoryContent::Text(text.into()),
            timestamp: Timestamp::now(),
            memory_strategy_id: strategy.map(str::to_string),
            metadata: Default::default(),
        };
    let actor_ns = |actor: &str| format!("/strategies/{facts}/actors/{actor}");
    let created = service
        .batch_create_memory_records(
            &memory.id,
            vec![
                record(
                    0,
                    actor_ns("victim"),
                    "account password is hunter2",
                    Some(&facts),
                ),
                record(
                    1,
                    format!("/strategies/{summaries}/actors/victim/sessions/s1"),
                    "victim summary: password hunter2 was shared",
                    Some(&summaries),
                ),
                record(2, actor_ns("victim"), "victim manual note hunter2", None),
                record(3, actor_ns("mallory"), "mallory likes chess", Some(&facts)),
                record(4, actor_ns("alice"), "alice likes tea", Some(&facts)),
                record(5, actor_ns("alicex"), "alicex likes coffee", Some(&facts)),
                record(6, actor_ns("alice/x"), "alice/x likes cocoa", Some(&facts)),
            ],
        )
        .await
        .unwrap();
    assert!(created.failed_records.is_empty(), "{created:?}");

    let services = HostServices::default()
        .with_memory(Arc::new(ResourceMemory::new(service.clone(), &memory.id)));
    let manager = manager(services, test_config());
    let probe = &fixture().probe;

    let attacks = [
        "".to_string(),
        "/".into(),
        "//".into(),
        "..".into(),
        "/..".into(),
        "%2F".into(),
        "/strategies".into(),
        "/strategies/".into(),
        format!("/strategies/{facts}"),
        format!("/strategies/{facts}/actors"),
        format!("/strategies/{facts}/actors/"),
        format!("/strategies/{facts}/actors/vic"),
        actor_ns("victim"),
        format!("{}/", actor_ns("victim")),
        format!("/strategies/{summaries}/actors/victim"),
        format!("/strategies/{summaries}/actors/victim/sessions/s1"),
        format!("/strategies/{facts}/actors/mallory/../victim"),
        format!("/strategies/{facts}/actors/{{actorId}}/../victim"),
        format!("/strategies/{facts}/actors/mallory//../../victim"),
        format!("/strategies/{facts}/actors/%76ictim"),
        format!("/strategies%2F{facts}%2Factors%2Fvictim"),
        "/strategies/%2E%2E".into(),
        "/strategies/other-0123456789/actors/victim".into(),
        "/strategies/*/actors/victim".into(),
        "/strategies/{memoryStrategyId}/actors/victim".into(),
        "/strategies/{memoryStrategyId}/actors/{actorId}".into(),
        format!("strategies/{facts}/actors/victim"),
        format!("/strategies/{facts}/actors/victim\u{0}"),
        format!("/strategies/{facts}/actors/mallory\n/../victim"),
    ];
    for namespace in &attacks {
        let answer = probe_as(
            &manager,
            probe,
            "mallory",
            "m1",
            retrieve(namespace, "password"),
        )
        .await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("MemoryError::Denied("),
            "{namespace:?}: {answer}"
        );
        assert!(
            !answer.to_string().contains("hunter2"),
            "{namespace:?}: {answer}"
        );
    }

    // Own namespaces work, by template or spelled out, and hold only own records.
    for namespace in [
        format!("/strategies/{facts}/actors/{{actorId}}"),
        actor_ns("mallory"),
        format!("/strategies/{summaries}/actors/{{actorId}}/sessions/{{sessionId}}"),
    ] {
        let answer = probe_as(
            &manager,
            probe,
            "mallory",
            "m1",
            retrieve(&namespace, "password"),
        )
        .await;
        let found = contents(&answer);
        assert!(
            found.iter().all(|c| c == "mallory likes chess"),
            "{namespace}: {answer}"
        );
    }
    let own = probe_as(
        &manager,
        probe,
        "mallory",
        "m1",
        retrieve(&format!("/strategies/{facts}/actors/{{actorId}}"), "chess"),
    )
    .await;
    assert_eq!(contents(&own), ["mallory likes chess"]);

    // Actors sharing a prefix see only their own records.
    for (actor, expected) in [
        ("alice", "alice likes tea"),
        ("alicex", "alicex likes coffee"),
        ("alice/x", "alice/x likes cocoa"),
    ] {
        let answer = probe_as(
            &manager,
            probe,
            actor,
            "a1",
            retrieve(&format!("/strategies/{facts}/actors/{{actorId}}"), "likes"),
        )
        .await;
        assert_eq!(contents(&answer), [expected], "{actor}");
    }

    // The victim reads its own records, the operator reads everything.
    let victim = probe_as(
        &manager,
        probe,
        "victim",
        "v1",
        retrieve(&actor_ns("victim"), "password"),
    )
    .await;
    let mut found = contents(&victim);
    found.sort();
    assert_eq!(
        found,
        ["account password is hunter2", "victim manual note hunter2"]
    );
    let operator = service
        .retrieve_memory_records(
            &memory.id,
            RetrieveMemoryRecordsInput {
                namespace: Some("/".into()),
                namespace_path: None,
                search_criteria: SearchCriteria {
                    search_query: "password".into(),
                    memory_strategy_id: None,
                    top_k: Some(100),
                    metadata_filters: None,
                },
                next_token: None,
                max_results: Some(100),
            },
        )
        .await
        .unwrap();
    let all: Vec<&str> = operator
        .memory_record_summaries
        .iter()
        .map(|r| r.content.text())
        .collect();
    assert!(all.contains(&"account password is hunter2"), "{all:?}");
    assert_eq!(all.len(), 7, "{all:?}");
}

#[tokio::test]
async fn events_stay_with_the_invoking_actor() {
    let dir = tempfile::tempdir().unwrap();
    let service = open_service(dir.path()).await;
    let memory = create_memory(&service, "event_memory", fact_and_summary_strategies()).await;
    let services = HostServices::default()
        .with_memory(Arc::new(ResourceMemory::new(service.clone(), &memory.id)));
    let manager = manager(services, test_config());
    let probe = &fixture().probe;
    let remember = |text: &str| json!({"action": "memory", "text": text});
    let list = json!({"action": "list_events", "max": 100});

    probe_as(
        &manager,
        probe,
        "victim",
        "victim-session",
        remember("victim secret hunter2"),
    )
    .await;
    probe_as(
        &manager,
        probe,
        "mallory",
        "mallory-session",
        remember("mallory note"),
    )
    .await;
    let own = probe_as(&manager, probe, "mallory", "mallory-session", list.clone()).await;
    let events = own["events"].as_array().unwrap_or_else(|| panic!("{own}"));
    assert_eq!(events.len(), 1, "{own}");
    assert_eq!(events[0]["actor"], "mallory");
    assert!(!own.to_string().contains("hunter2"), "{own}");

    // Even in the victim's runtime session, events are the invoking actor's.
    let request = InvocationRequest::new("victim-session", list.to_string()).actor("mallory");
    if let Ok(response) = manager.invoke(probe, request).await {
        let answer: Value = serde_json::from_slice(&response.payload).unwrap();
        assert!(!answer.to_string().contains("hunter2"), "{answer}");
        let events = answer["events"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        assert!(events.iter().all(|e| e["actor"] == "mallory"), "{answer}");
    }
    // The victim still sees its event.
    let victim = probe_as(&manager, probe, "victim", "victim-session", list).await;
    assert!(victim.to_string().contains("hunter2"), "{victim}");
}

#[tokio::test]
async fn each_agent_uses_the_memory_its_settings_name() {
    let dir = tempfile::tempdir().unwrap();
    let service = open_service(dir.path()).await;
    let default = create_memory(&service, "default_memory", vec![]).await;
    let first = create_memory(&service, "first_memory", vec![]).await;
    let second = create_memory(&service, "second_memory", vec![]).await;
    let services = HostServices::default()
        .with_memory(Arc::new(ResourceMemory::new(service.clone(), &default.id)));
    let manager = manager(services, test_config());
    let agent = |name: &str, memory_id: Option<&str>| {
        let compiled = fixture()
            .host
            .compile(name, corral_test_guests::SANDBOX_PROBE)
            .unwrap()
            .with_settings(AgentSettings {
                memory_id: memory_id.map(str::to_string),
                ..AgentSettings::default()
            });
        Arc::new(compiled)
    };
    let one = agent("agent_one", Some(&first.id));
    let two = agent("agent_two", Some(&second.id));
    let plain = agent("agent_plain", None);
    let remember = |text: &str| json!({"action": "memory", "text": text});

    // Same actor and session id; different agents, so different memories.
    let a = probe_as(&manager, &one, "user", "shared", remember("one's note")).await;
    assert_eq!(a["events"], json!({"Ok": 1}), "{a}");
    let b = probe_as(&manager, &two, "user", "shared", remember("two's note")).await;
    assert_eq!(b["events"], json!({"Ok": 1}), "{b}");
    let c = probe_as(&manager, &plain, "user", "shared", remember("plain note")).await;
    assert_eq!(c["events"], json!({"Ok": 1}), "{c}");

    let texts = |events: Vec<corral_memory::types::Event>| -> Vec<String> {
        events
            .iter()
            .map(|e| {
                serde_json::to_value(&e.payload).unwrap()[0]["conversational"]["content"]["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    for (memory, expected) in [
        (&first, "one's note"),
        (&second, "two's note"),
        (&default, "plain note"),
    ] {
        let listed = service
            .list_events(&memory.id, "user", "shared", ListEventsInput::default())
            .await
            .unwrap();
        assert_eq!(texts(listed.events), [expected], "{}", memory.name);
    }

    // A memory id that names no resource is `not-found`, not another memory.
    let missing = agent("agent_missing", Some("missing-0123456789"));
    let answer = probe_as(&manager, &missing, "user", "shared", remember("lost")).await;
    assert!(
        answer["append"]
            .as_str()
            .unwrap()
            .contains("Err(MemoryError::NotFound("),
        "{answer}"
    );
}

/// Writes records `(namespace, text, strategy)` through the batch API.
async fn write_records(
    service: &MemoryService,
    memory: &Memory,
    records: &[(String, String, Option<&str>)],
) {
    for (batch, chunk) in records.chunks(100).enumerate() {
        let created = service
            .batch_create_memory_records(
                &memory.id,
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, (namespace, text, strategy))| MemoryRecordCreateInput {
                        request_identifier: format!("b{batch}r{i}"),
                        namespaces: vec![namespace.clone()],
                        content: MemoryContent::Text(text.clone()),
                        timestamp: Timestamp::now(),
                        memory_strategy_id: strategy.map(str::to_string),
                        metadata: Default::default(),
                    })
                    .collect(),
            )
            .await
            .unwrap();
        assert!(created.failed_records.is_empty(), "{created:?}");
    }
}

#[tokio::test]
async fn other_actors_cannot_crowd_out_an_actors_records() {
    let dir = tempfile::tempdir().unwrap();
    let service = open_service(dir.path()).await;
    let memory = create_memory(&service, "crowded_memory", fact_and_summary_strategies()).await;
    let facts = memory.strategies[0].strategy_id.clone();
    let actor_ns = |actor: &str| format!("/strategies/{facts}/actors/{actor}");
    // Actor `alice/x` (an id any caller may choose) lies under alice's root
    // with 300 records that match the query better than alice's 3.
    let mut records: Vec<(String, String, Option<&str>)> = (0..3)
        .map(|i| {
            (
                actor_ns("alice"),
                format!("alice remembers tea number {i}"),
                Some(facts.as_str()),
            )
        })
        .collect();
    records.extend((0..300).map(|i| {
        (
            actor_ns("alice/x"),
            format!("my favourite tea is {i}"),
            Some(facts.as_str()),
        )
    }));
    write_records(&service, &memory, &records).await;

    // The store's own top 100 under alice's root holds none of alice's.
    let operator = service
        .retrieve_memory_records(
            &memory.id,
            RetrieveMemoryRecordsInput {
                namespace: None,
                namespace_path: Some(actor_ns("alice")),
                search_criteria: SearchCriteria {
                    search_query: "my favourite tea".into(),
                    memory_strategy_id: None,
                    top_k: Some(100),
                    metadata_filters: None,
                },
                next_token: None,
                max_results: Some(100),
            },
        )
        .await
        .unwrap();
    assert_eq!(operator.memory_record_summaries.len(), 100);
    assert!(
        operator
            .memory_record_summaries
            .iter()
            .all(|r| r.content.text().starts_with("my favourite tea")),
        "{operator:?}"
    );

    let services = HostServices::default()
        .with_memory(Arc::new(ResourceMemory::new(service.clone(), &memory.id)));
    let manager = manager(services, test_config());
    let probe = &fixture().probe;
    for top_k in [3, 50, 100] {
        let answer = probe_as(
            &manager,
            probe,
            "alice",
            "a1",
            json!({
                "action": "retrieve",
                "namespace": format!("/strategies/{facts}/actors/{{actorId}}"),
                "query": "my favourite tea",
                "top_k": top_k,
            }),
        )
        .await;
        let mut found = contents(&answer);
        found.sort();
        assert_eq!(
            found,
            [
                "alice remembers tea number 0",
                "alice remembers tea number 1",
                "alice remembers tea number 2"
            ],
            "top_k {top_k}: {answer}"
        );
    }
    // Alice's best record first, and only as many as asked for.
    let answer = probe_as(
        &manager,
        probe,
        "alice",
        "a1",
        json!({
            "action": "retrieve",
            "namespace": actor_ns("alice"),
            "query": "tea number 1",
            "top_k": 2,
        }),
    )
    .await;
    let found = contents(&answer);
    assert_eq!(found.len(), 2, "{answer}");
    assert_eq!(found[0], "alice remembers tea number 1", "{answer}");
    // Alice/x still reads its own.
    let answer = probe_as(
        &manager,
        probe,
        "alice/x",
        "x1",
        json!({
            "action": "retrieve",
            "namespace": actor_ns("alice/x"),
            "query": "alice remembers tea",
            "top_k": 100,
        }),
    )
    .await;
    let found = contents(&answer);
    assert_eq!(found.len(), 100, "{answer}");
    assert!(
        found.iter().all(|c| c.starts_with("my favourite tea")),
        "{answer}"
    );
}

#[tokio::test]
async fn records_without_a_strategy_in_ambiguous_namespaces_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let service = open_service(dir.path()).await;
    // No strategy ids in the templates: `/users/bob/s1` is actor `bob/s1`'s
    // facts or bob's session `s1` summaries.
    let memory = create_memory(
        &service,
        "shared_templates",
        vec![
            StrategyInput::SemanticMemoryStrategy(StrategyInputFields {
                name: "facts".into(),
                namespace_templates: Some(vec!["/users/{actorId}".into()]),
                ..Default::default()
            }),
            StrategyInput::SummaryMemoryStrategy(StrategyInputFields {
                name: "summaries".into(),
                namespace_templates: Some(vec!["/users/{actorId}/{sessionId}".into()]),
                ..Default::default()
            }),
        ],
    )
    .await;
    let facts = memory.strategies[0].strategy_id.clone();
    let summaries = memory.strategies[1].strategy_id.clone();
    write_records(
        &service,
        &memory,
        &[
            (
                "/users/bob/s1".into(),
                "bob/s1 manual secret hunter2".into(),
                None,
            ),
            (
                "/users/bob/s1".into(),
                "bob/s1 fact hunter2".into(),
                Some(facts.as_str()),
            ),
            (
                "/users/bob/s1".into(),
                "bob session s1 summary hunter2".into(),
                Some(summaries.as_str()),
            ),
            ("/users/bob".into(), "bob manual note hunter2".into(), None),
        ],
    )
    .await;

    let services = HostServices::default()
        .with_memory(Arc::new(ResourceMemory::new(service.clone(), &memory.id)));
    let manager = manager(services, test_config());
    let probe = &fixture().probe;
    let mut read = Vec::new();
    for actor in ["bob", "bob/s1"] {
        let answer = probe_as(
            &manager,
            probe,
            actor,
            "s9",
            retrieve("/users/{actorId}", "hunter2"),
        )
        .await;
        let mut found = contents(&answer);
        found.sort();
        read.push(found);
    }
    // Bob: his manual note and his session summary, not bob/s1's manual record.
    assert_eq!(
        read[0],
        ["bob manual note hunter2", "bob session s1 summary hunter2"]
    );
    // Bob/s1: its fact; the manual record is bob's session's as much as its own.
    assert_eq!(read[1], ["bob/s1 fact hunter2"]);
}
