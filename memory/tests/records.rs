//! Long-term memory through the Rust API: batch record operations,
//! namespaces, retrieval, extraction with the offline model, consolidation,
//! a queue that survives restart, retries, and re-embedding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use common::{fields, memory, open, said, user_event};
use corral_memory::control::StrategyInput;
use corral_memory::embed::LocalEmbedder;
use corral_memory::types::{
    LeftExpression, ListMemoryRecordsInput, MemoryContent, MemoryRecordCreateInput,
    MemoryRecordDeleteInput, MemoryRecordUpdateInput, RecordFilterOperator, RecordMetadataFilter,
    RecordMetadataValue, RecordRightExpression, RetrieveMemoryRecordsInput, Role, SearchCriteria,
};
use corral_memory::{
    MemoryConfig, MemoryService, SledStorage, Timestamp, offline_extraction_model,
};
use corral_model::{ConverseRequest, ConverseResponse, ModelError, ModelProvider};

fn record(request: &str, namespace: &str, text: &str) -> MemoryRecordCreateInput {
    MemoryRecordCreateInput {
        request_identifier: request.into(),
        namespaces: vec![namespace.into()],
        content: MemoryContent::Text(text.into()),
        timestamp: Timestamp::now(),
        memory_strategy_id: None,
        metadata: BTreeMap::new(),
    }
}

fn query(text: &str, namespace: Option<&str>, top_k: Option<u32>) -> RetrieveMemoryRecordsInput {
    RetrieveMemoryRecordsInput {
        namespace: namespace.map(str::to_string),
        namespace_path: None,
        search_criteria: SearchCriteria {
            search_query: text.into(),
            memory_strategy_id: None,
            top_k,
            metadata_filters: None,
        },
        next_token: None,
        max_results: None,
    }
}

async fn retrieve(
    service: &MemoryService,
    memory: &str,
    input: RetrieveMemoryRecordsInput,
) -> Vec<String> {
    service
        .retrieve_memory_records(memory, input)
        .await
        .unwrap()
        .memory_record_summaries
        .into_iter()
        .map(|r| r.content.text().to_string())
        .collect()
}

#[tokio::test]
async fn batch_operations_and_retrieval_within_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "facts", vec![]).await;
    let created = service
        .batch_create_memory_records(
            &m.id,
            vec![
                record("r1", "/users/alice", "Alice drinks green tea every morning"),
                record("r2", "/users/alice", "Alice's favourite city is Lisbon"),
                record(
                    "r3",
                    "/users/alice/work",
                    "Alice works on the payments team",
                ),
                record("r4", "/users/bob", "Bob drinks green tea too"),
                record("bad id!", "/users/bob", "rejected"),
                record("r6", "/users/{actorId}", "rejected namespace"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(created.successful_records.len(), 4);
    assert_eq!(created.failed_records.len(), 2);
    assert!(
        created
            .failed_records
            .iter()
            .all(|f| f.error_code == Some(400))
    );
    assert!(
        created
            .successful_records
            .iter()
            .all(|r| r.memory_record_id.starts_with("mem-"))
    );

    // Relevance order, scores, scope by namespace prefix.
    let hits = service
        .retrieve_memory_records(
            &m.id,
            query("what tea does she drink", Some("/users/alice"), Some(2)),
        )
        .await
        .unwrap()
        .memory_record_summaries;
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0].content.text(),
        "Alice drinks green tea every morning"
    );
    assert!(hits[0].score.unwrap() >= hits[1].score.unwrap());
    assert!(
        hits.iter()
            .all(|h| h.namespaces[0].starts_with("/users/alice"))
    );
    let everywhere = retrieve(&service, &m.id, query("green tea", None, Some(2))).await;
    assert!(everywhere.contains(&"Bob drinks green tea too".to_string()));
    // A path scope excludes sibling prefixes ("/users/alice" vs "/users/alicia").
    let mut path = query("payments", None, None);
    path.namespace_path = Some("/users/alice/work".into());
    assert_eq!(
        retrieve(&service, &m.id, path).await,
        vec!["Alice works on the payments team"]
    );

    // List by namespace, paged.
    let first = service
        .list_memory_records(
            &m.id,
            ListMemoryRecordsInput {
                namespace: Some("/users/alice".into()),
                max_results: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.memory_record_summaries.len(), 2);
    let second = service
        .list_memory_records(
            &m.id,
            ListMemoryRecordsInput {
                namespace: Some("/users/alice".into()),
                max_results: Some(2),
                next_token: first.next_token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.memory_record_summaries.len(), 1);
    assert!(second.next_token.is_none());

    // Update changes what retrieval finds; delete removes.
    let tea_id = hits[0].memory_record_id.clone();
    let updated = service
        .batch_update_memory_records(
            &m.id,
            vec![
                MemoryRecordUpdateInput {
                    memory_record_id: tea_id.clone(),
                    timestamp: Timestamp::now(),
                    content: Some(MemoryContent::Text("Alice switched to black coffee".into())),
                    namespaces: None,
                    memory_strategy_id: None,
                    metadata: None,
                },
                MemoryRecordUpdateInput {
                    memory_record_id: "mem-00000000-0000-0000-0000-000000000000".into(),
                    timestamp: Timestamp::now(),
                    content: None,
                    namespaces: None,
                    memory_strategy_id: None,
                    metadata: None,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(updated.successful_records.len(), 1);
    assert_eq!(updated.failed_records[0].error_code, Some(404));
    let top = retrieve(
        &service,
        &m.id,
        query("black coffee", Some("/users/alice"), Some(1)),
    )
    .await;
    assert_eq!(top, vec!["Alice switched to black coffee"]);
    assert_eq!(
        service
            .get_memory_record(&m.id, &tea_id)
            .await
            .unwrap()
            .content
            .text(),
        "Alice switched to black coffee"
    );
    service.delete_memory_record(&m.id, &tea_id).await.unwrap();
    let err = service.get_memory_record(&m.id, &tea_id).await.unwrap_err();
    assert_eq!(err.error_name(), "ResourceNotFoundException");
    let deleted = service
        .batch_delete_memory_records(
            &m.id,
            vec![MemoryRecordDeleteInput {
                memory_record_id: tea_id,
            }],
        )
        .await
        .unwrap();
    assert_eq!(deleted.failed_records[0].error_code, Some(404));
    assert!(
        !retrieve(&service, &m.id, query("coffee", Some("/users/alice"), None))
            .await
            .iter()
            .any(|t| t.contains("coffee"))
    );
}

#[tokio::test]
async fn metadata_filters_and_bad_retrieval_input() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "filtered", vec![]).await;
    let mut high = record("a", "/t", "Ticket about a billing error");
    high.metadata
        .insert("priority".into(), RecordMetadataValue::NumberValue(5.0));
    let mut low = record("b", "/t", "Ticket about a billing question");
    low.metadata
        .insert("priority".into(), RecordMetadataValue::NumberValue(1.0));
    service
        .batch_create_memory_records(&m.id, vec![high, low])
        .await
        .unwrap();
    let mut input = query("billing", Some("/t"), Some(5));
    input.search_criteria.metadata_filters = Some(vec![RecordMetadataFilter {
        left: LeftExpression::MetadataKey("priority".into()),
        operator: RecordFilterOperator::GreaterThanOrEquals,
        right: Some(RecordRightExpression::MetadataValue(
            RecordMetadataValue::NumberValue(3.0),
        )),
    }]);
    assert_eq!(
        retrieve(&service, &m.id, input).await,
        vec!["Ticket about a billing error"]
    );

    for bad in [
        query("x", Some("/t"), Some(101)),
        query("x", Some("bad namespace!"), None),
        query("", Some("/t"), None),
    ] {
        let err = service
            .retrieve_memory_records(&m.id, bad)
            .await
            .unwrap_err();
        assert_eq!(err.error_name(), "ValidationException");
    }
    let err = service
        .retrieve_memory_records("nope-0123456789", query("x", None, None))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "ResourceNotFoundException");
}

fn strategies() -> Vec<StrategyInput> {
    vec![
        StrategyInput::SemanticMemoryStrategy(fields("facts")),
        StrategyInput::UserPreferenceMemoryStrategy(fields("prefs")),
        StrategyInput::SummaryMemoryStrategy(fields("summary")),
    ]
}

#[tokio::test]
async fn extraction_writes_consolidated_records_into_strategy_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(&service, "longterm", strategies()).await;
    let model = offline_extraction_model().unwrap();
    for text in [
        "Hi, my name is Ada.",
        "I live in Paris these days.",
        "I like green tea",
        "Honestly I like green tea",
    ] {
        service
            .create_event(&m.id, user_event("alice", "s1", text))
            .await
            .unwrap();
    }
    assert_eq!(service.pending_jobs().await.unwrap(), 4);
    let report = service.run_extraction(&model).await.unwrap();
    assert_eq!(report.jobs_done, 4);
    assert_eq!(service.pending_jobs().await.unwrap(), 0);

    let facts = &m.strategies[0];
    let facts_ns = format!("/strategies/{}/actors/alice", facts.strategy_id);
    let mut in_facts = retrieve(
        &service,
        &m.id,
        query("where does the user live", Some(&facts_ns), Some(10)),
    )
    .await;
    assert_eq!(in_facts[0], "The user lives in Paris.");
    in_facts.sort();
    assert_eq!(
        in_facts,
        vec!["The user lives in Paris.", "The user's name is Ada."]
    );

    // A contradiction updates the record with the same topic.
    service
        .create_event(&m.id, user_event("alice", "s2", "I moved to Berlin"))
        .await
        .unwrap();
    let report = service.run_extraction(&model).await.unwrap();
    assert!(report.records_updated >= 1, "{report:?}");
    let mut in_facts = retrieve(
        &service,
        &m.id,
        query("where does the user live", Some(&facts_ns), Some(10)),
    )
    .await;
    in_facts.sort();
    assert_eq!(
        in_facts,
        vec!["The user lives in Berlin.", "The user's name is Ada."]
    );

    // Restated preferences do not pile up.
    let prefs_ns = format!("/strategies/{}/actors/alice", m.strategies[1].strategy_id);
    let prefs = retrieve(&service, &m.id, query("tea", Some(&prefs_ns), Some(10))).await;
    assert_eq!(prefs, vec!["The user likes green tea."]);

    // Summaries live per session.
    let summary_ns = format!(
        "/strategies/{}/actors/alice/sessions/s1",
        m.strategies[2].strategy_id
    );
    let summaries = service
        .list_memory_records(
            &m.id,
            ListMemoryRecordsInput {
                namespace: Some(summary_ns),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .memory_record_summaries;
    assert_eq!(summaries.len(), 1);
    assert!(
        summaries[0]
            .content
            .text()
            .contains("Honestly I like green tea")
    );
    assert_eq!(summaries[0].memory_strategy_id, m.strategies[2].strategy_id);
}

#[tokio::test]
async fn queued_extraction_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let memory_id = {
        let service = open(dir.path()).await;
        let m = memory(&service, "queued", strategies()).await;
        let mut input = user_event("alice", "s", "my name is Grace");
        input
            .payload
            .push(said(Role::Assistant, "Nice to meet you, Grace."));
        service.create_event(&m.id, input).await.unwrap();
        m.id
    };
    let service = open(dir.path()).await;
    assert_eq!(service.pending_jobs().await.unwrap(), 1);
    let handle = service.spawn_worker(Arc::new(offline_extraction_model().unwrap()));
    let mut found = Vec::new();
    for _ in 0..200 {
        found = retrieve(&service, &memory_id, query("name", None, Some(10))).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    handle.abort();
    assert!(
        found.contains(&"The user's name is Grace.".to_string()),
        "{found:?}"
    );
}

/// Throttles the first `failures` calls, then answers like the offline model.
struct Flaky {
    failures: usize,
    calls: AtomicUsize,
    inner: corral_model::ScriptedModel,
}

#[async_trait]
impl ModelProvider for Flaky {
    fn provider_name(&self) -> &'static str {
        "test.flaky"
    }
    fn default_model_id(&self) -> &str {
        "flaky"
    }
    async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, ModelError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(ModelError::Throttled("slow down".into()));
        }
        self.inner.reply(&request)
    }
}

#[tokio::test]
async fn throttled_extraction_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path()).await;
    let m = memory(
        &service,
        "retry",
        vec![StrategyInput::SemanticMemoryStrategy(fields("facts"))],
    )
    .await;
    service
        .create_event(&m.id, user_event("alice", "s", "my name is Linus"))
        .await
        .unwrap();
    let model = Flaky {
        failures: 2,
        calls: AtomicUsize::new(0),
        inner: offline_extraction_model().unwrap(),
    };
    for expected_retrying in [1, 1] {
        let report = service.run_extraction(&model).await.unwrap();
        assert_eq!(report.jobs_retrying, expected_retrying);
        assert_eq!(service.pending_jobs().await.unwrap(), 1);
    }
    let report = service.run_extraction(&model).await.unwrap();
    assert_eq!((report.jobs_done, report.records_created), (1, 1));
}

#[tokio::test]
async fn records_are_reembedded_when_the_embedder_changes() {
    let dir = tempfile::tempdir().unwrap();
    let memory_id = {
        let service = open(dir.path()).await;
        let m = memory(&service, "reembed", vec![]).await;
        service
            .batch_create_memory_records(
                &m.id,
                vec![
                    record("a", "/n", "sailing on the lake"),
                    record("b", "/n", "tax forms"),
                ],
            )
            .await
            .unwrap();
        m.id
    };
    let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
    let service = MemoryService::open(
        storage,
        Arc::new(LocalEmbedder::new(64)),
        MemoryConfig::default(),
    )
    .await
    .unwrap();
    let top = retrieve(&service, &memory_id, query("sailing", Some("/n"), Some(1))).await;
    assert_eq!(top, vec!["sailing on the lake"]);
}

#[tokio::test]
async fn update_memory_adds_modifies_and_deletes_strategies_durably() {
    use corral_memory::control::{
        DeleteMemoryStrategyInput, ModifyMemoryStrategies, ModifyMemoryStrategyInput,
        UpdateMemoryInput,
    };
    let dir = tempfile::tempdir().unwrap();
    let service = common::open(dir.path()).await;
    let created = common::memory(
        &service,
        "updatable",
        vec![StrategyInput::SemanticMemoryStrategy(common::fields(
            "facts",
        ))],
    )
    .await;
    let facts = created.strategies[0].strategy_id.clone();
    let change = |strategies: ModifyMemoryStrategies| UpdateMemoryInput {
        memory_strategies: Some(strategies),
        ..Default::default()
    };

    let updated = service
        .update_memory(
            &created.id,
            UpdateMemoryInput {
                description: Some("now with summaries".into()),
                event_expiry_duration: Some(90),
                memory_strategies: Some(ModifyMemoryStrategies {
                    add_memory_strategies: vec![StrategyInput::SummaryMemoryStrategy(
                        common::fields("summaries"),
                    )],
                    modify_memory_strategies: vec![ModifyMemoryStrategyInput {
                        memory_strategy_id: facts.clone(),
                        namespaces: Some(vec!["/facts/{actorId}".into()]),
                        ..Default::default()
                    }],
                    delete_memory_strategies: vec![],
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("now with summaries"));
    assert_eq!(updated.event_expiry_duration, 90);
    let names: Vec<&str> = updated.strategies.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["facts", "summaries"]);
    assert_eq!(updated.strategies[0].namespaces, ["/facts/{actorId}"]);
    assert!(updated.updated_at >= created.updated_at);

    // Invalid changes are refused whole: nothing of them is applied.
    for bad in [
        change(ModifyMemoryStrategies {
            delete_memory_strategies: vec![DeleteMemoryStrategyInput {
                memory_strategy_id: "missing-0123456789".into(),
            }],
            ..Default::default()
        }),
        change(ModifyMemoryStrategies {
            add_memory_strategies: vec![StrategyInput::SemanticMemoryStrategy(common::fields(
                "facts",
            ))],
            delete_memory_strategies: vec![],
            ..Default::default()
        }),
        UpdateMemoryInput {
            event_expiry_duration: Some(2),
            ..Default::default()
        },
    ] {
        let error = service.update_memory(&created.id, bad).await.unwrap_err();
        assert!(
            matches!(error, corral_memory::MemoryError::Validation { .. }),
            "{error}"
        );
    }
    assert_eq!(service.get_memory(&created.id).unwrap(), updated);

    service
        .update_memory(
            &created.id,
            change(ModifyMemoryStrategies {
                delete_memory_strategies: vec![DeleteMemoryStrategyInput {
                    memory_strategy_id: facts,
                }],
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    drop(service);
    let reopened = common::open(dir.path()).await;
    let stored = reopened.get_memory(&created.id).unwrap();
    let names: Vec<&str> = stored.strategies.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["summaries"]);
    assert_eq!(stored.event_expiry_duration, 90);
}

#[tokio::test]
async fn the_local_model_retrieves_by_meaning_and_rejects_a_broken_directory() {
    use corral_memory::embed::{BertEmbedder, Embedder, ModelError};

    let embedder = BertEmbedder::load(&corral_test_support::embedding_model()).unwrap();
    assert_eq!(embedder.dimensions(), 384);
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
    let service = MemoryService::open(storage, Arc::new(embedder), MemoryConfig::default())
        .await
        .unwrap();
    let m = memory(&service, "semantic", vec![]).await;
    service
        .batch_create_memory_records(
            &m.id,
            vec![
                record("s1", "/u", "The user always books an aisle seat on flights"),
                record("s2", "/u", "The user's dog is called Biscuit"),
                record("s3", "/u", "The user is allergic to peanuts"),
                record("s4", "/u", "The user works night shifts at a hospital"),
            ],
        )
        .await
        .unwrap();
    // No query word appears in the record it should find.
    let cases = [
        ("where does she like to sit on a plane", "aisle seat"),
        ("what pet do they have", "Biscuit"),
        ("food she cannot eat", "peanuts"),
        ("what is their job", "hospital"),
    ];
    for (question, expected) in cases {
        let hits = retrieve(&service, &m.id, query(question, Some("/u"), Some(1))).await;
        assert!(hits[0].contains(expected), "{question}: {hits:?}");
    }

    // Corral's own encoder (`embed/bert_model.rs`) computes what
    // candle-transformers' `BertModel` did before it replaced it: the first
    // dimensions of two embeddings, recorded from that implementation.
    let reference: [(&str, [f32; 4]); 2] = [
        (
            "The user always books an aisle seat on flights",
            [0.091_464_07, 0.028_945_142, -0.053_849_973, 0.006_158_639],
        ),
        (
            "hello",
            [-0.062_771_78, 0.054_958_82, 0.052_164_827, 0.085_789_97],
        ),
    ];
    let encoder = BertEmbedder::load(&corral_test_support::embedding_model()).unwrap();
    for (text, expected) in reference {
        let vector = encoder.embed_one(text).unwrap();
        for (got, want) in vector.iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{text}: {:?}", &vector[..4]);
        }
    }

    // A directory without a model is a typed error naming the file.
    let empty = tempfile::tempdir().unwrap();
    let error = BertEmbedder::load(empty.path()).unwrap_err();
    assert!(matches!(error, ModelError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("config.json"), "{error}");
    std::fs::write(empty.path().join("config.json"), b"{\"not\": \"bert\"}").unwrap();
    let error = BertEmbedder::load(empty.path()).unwrap_err();
    assert!(matches!(error, ModelError::Config { .. }), "{error:?}");
}

/// A memory service on the PostgreSQL database at `url`, as one replica
/// opens it.
async fn pg_replica(url: &str) -> MemoryService {
    let url = url.to_string();
    let storage = tokio::task::spawn_blocking(move || {
        corral_memory::store::PgStorage::connect(&url, "memory").unwrap()
    })
    .await
    .unwrap();
    MemoryService::open(
        Arc::new(storage),
        Arc::new(LocalEmbedder::default()),
        MemoryConfig::default(),
    )
    .await
    .unwrap()
}

/// Waits (up to 5 s) until `check` holds; returns how long it took.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) -> std::time::Duration {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_see_each_others_memory_changes() {
    use corral_memory::control::{ModifyMemoryStrategies, UpdateMemoryInput};
    let url = corral_test_support::fresh_database("memory_replica_changes");
    let one = pg_replica(&url).await;
    let two = pg_replica(&url).await;
    let _following = (one.follow_changes().unwrap(), two.follow_changes().unwrap());

    // Both create the same name at once: one resource, one conflict.
    let (a, b) = tokio::join!(
        common::create(&one, "shared", vec![]),
        common::create(&two, "shared", vec![])
    );
    let created = match (a, b) {
        (Ok(m), Err(e)) | (Err(e), Ok(m)) => {
            assert!(matches!(e, corral_memory::MemoryError::Conflict(_)), "{e}");
            m
        }
        other => panic!("one create must win: {other:?}"),
    };
    let id = created.id.clone();
    let listed = eventually("the other replica lists it", async || {
        two.list_memories(Some(100), None)
            .unwrap()
            .memories
            .iter()
            .any(|m| m.id == id)
            && one
                .list_memories(Some(100), None)
                .unwrap()
                .memories
                .iter()
                .any(|m| m.id == id)
    })
    .await;
    eprintln!("a new memory reached the other replica in {listed:?}");

    // Updates through both replicas at once: neither is lost.
    let add = |name: &str| UpdateMemoryInput {
        memory_strategies: Some(ModifyMemoryStrategies {
            add_memory_strategies: vec![StrategyInput::SemanticMemoryStrategy(fields(name))],
            ..Default::default()
        }),
        ..Default::default()
    };
    let (x, y) = tokio::join!(
        one.update_memory(&id, add("facts")),
        two.update_memory(&id, add("more_facts"))
    );
    x.unwrap();
    y.unwrap();
    let names = |service: &MemoryService| {
        let mut names: Vec<String> = service
            .get_memory(&id)
            .unwrap()
            .strategies
            .into_iter()
            .map(|s| s.name)
            .collect();
        names.sort();
        names
    };
    let updated = eventually("both replicas see both strategies", async || {
        names(&one) == ["facts", "more_facts"] && names(&two) == ["facts", "more_facts"]
    })
    .await;
    eprintln!("an update reached the other replica in {updated:?}");

    // Records written through one are retrieved through the other.
    let batch = one
        .batch_create_memory_records(&id, vec![record("r1", "/facts", "Ada drinks green tea")])
        .await
        .unwrap();
    assert_eq!(batch.successful_records.len(), 1, "{batch:?}");
    let found = eventually("the other replica retrieves the record", async || {
        retrieve(&two, &id, query("green tea", Some("/facts"), Some(5)))
            .await
            .contains(&"Ada drinks green tea".to_string())
    })
    .await;
    eprintln!("a record reached the other replica's index in {found:?}");
    let record_id = batch.successful_records[0].memory_record_id.clone();
    one.batch_delete_memory_records(
        &id,
        vec![MemoryRecordDeleteInput {
            memory_record_id: record_id,
        }],
    )
    .await
    .unwrap();
    eventually("the other replica forgets the deleted record", async || {
        retrieve(&two, &id, query("green tea", Some("/facts"), Some(5)))
            .await
            .is_empty()
    })
    .await;

    // Deleted through one: gone from the other.
    one.delete_memory(&id).await.unwrap();
    eventually("the other replica drops it", async || {
        two.get_memory(&id).is_err()
            && two
                .list_memories(Some(100), None)
                .unwrap()
                .memories
                .iter()
                .all(|m| m.id != id)
    })
    .await;
    // Its name is free again.
    common::create(&two, "shared", vec![]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_database_run_each_extraction_job_once() {
    let texts = [
        "Hi, my name is Ada.",
        "I live in Paris these days.",
        "I like green tea",
        "My dog is called Rex",
        "I work as a nurse",
        "I prefer window seats",
    ];
    let counting = || Flaky {
        failures: 0,
        calls: AtomicUsize::new(0),
        inner: offline_extraction_model().unwrap(),
    };
    // What one service alone does with these events.
    let dir = tempfile::tempdir().unwrap();
    let alone = open(dir.path()).await;
    let m = memory(
        &alone,
        "facts",
        vec![StrategyInput::SemanticMemoryStrategy(fields("facts"))],
    )
    .await;
    for text in texts {
        alone
            .create_event(&m.id, user_event("ada", "s1", text))
            .await
            .unwrap();
    }
    let model = counting();
    let expected = alone.run_extraction(&model).await.unwrap();
    let expected_calls = model.calls.load(Ordering::SeqCst);
    assert_eq!(expected.jobs_done, texts.len());

    // Two replicas on one PostgreSQL drain the same queue together.
    let url = corral_test_support::fresh_database("memory_replica_jobs");
    let one = pg_replica(&url).await;
    let two = pg_replica(&url).await;
    let shared = memory(
        &one,
        "facts",
        vec![StrategyInput::SemanticMemoryStrategy(fields("facts"))],
    )
    .await;
    for text in texts {
        one.create_event(&shared.id, user_event("ada", "s1", text))
            .await
            .unwrap();
    }
    let (model_one, model_two) = (counting(), counting());
    let (a, b) = tokio::join!(
        one.run_extraction(&model_one),
        two.run_extraction(&model_two)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.jobs_done + b.jobs_done, texts.len(), "{a:?} {b:?}");
    assert_eq!(
        model_one.calls.load(Ordering::SeqCst) + model_two.calls.load(Ordering::SeqCst),
        expected_calls,
        "no job ran twice"
    );
    assert_eq!(
        a.records_created + b.records_created,
        expected.records_created
    );
    assert_eq!(two.pending_jobs().await.unwrap(), 0);
}
