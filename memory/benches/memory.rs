//! Memory performance: durable `CreateEvent` latency and throughput (one
//! writer, and 32 concurrent writers sharing flushes) on sled and, when
//! `CORRAL_TEST_DATABASE_URL` names one (`eval "$(.ci/postgres start)"`),
//! on PostgreSQL in a fresh database; and
//! `RetrieveMemoryRecords` over 100,000 records (whole memory and one
//! namespace). Prints a table.
//!
//! `cargo bench -p corral-memory --bench memory`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use corral_memory::control::CreateMemoryInput;
use corral_memory::embed::LocalEmbedder;
use corral_memory::embed::normalize;
use corral_memory::types::{
    Content, Conversational, CreateEventInput, MemoryContent, MemoryRecordCreateInput, PayloadItem,
    RetrieveMemoryRecordsInput, Role, SearchCriteria,
};
use corral_memory::{
    MemoryConfig, MemoryService, NamespaceScope, SledStorage, Timestamp, VectorIndex,
};
use hdrhistogram::Histogram;

const RECORDS: usize = 100_000;
const NAMESPACES: usize = 100;
const WORDS: &[&str] = &[
    "tea",
    "coffee",
    "flight",
    "window",
    "aisle",
    "invoice",
    "refund",
    "billing",
    "paris",
    "berlin",
    "lisbon",
    "vegetarian",
    "allergy",
    "peanut",
    "meeting",
    "monday",
    "report",
    "deadline",
    "budget",
    "hiking",
    "music",
    "jazz",
    "piano",
    "running",
    "garden",
    "python",
    "rust",
    "kubernetes",
    "database",
    "backup",
    "printer",
    "laptop",
    "password",
    "holiday",
];

fn sentence(i: usize) -> String {
    let mut x = i as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut words = Vec::new();
    for _ in 0..8 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        words.push(WORDS[(x >> 33) as usize % WORDS.len()]);
    }
    format!("Record {i}: the user mentioned {}", words.join(" "))
}

fn micros(h: &Histogram<u64>, q: f64) -> String {
    format!("{:.1} µs", h.value_at_quantile(q) as f64 / 1000.0)
}

fn event(actor: &str, i: usize) -> CreateEventInput {
    CreateEventInput {
        actor_id: actor.into(),
        session_id: Some("bench".into()),
        event_timestamp: Timestamp::now(),
        payload: vec![PayloadItem::Conversational(Conversational {
            content: Content::Text(format!("message number {i} with a little text")),
            role: Role::User,
        })],
        branch: None,
        client_token: None,
        metadata: Default::default(),
    }
}

async fn service(dir: &std::path::Path) -> (MemoryService, String) {
    service_on(Arc::new(SledStorage::open(dir).unwrap())).await
}

async fn service_on(storage: Arc<dyn corral_memory::store::Storage>) -> (MemoryService, String) {
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
            name: "bench".into(),
            description: None,
            event_expiry_duration: 30,
            memory_strategies: vec![],
            encryption_key_arn: None,
            memory_execution_role_arn: None,
            tags: None,
        })
        .await
        .unwrap();
    (service, memory.id)
}

async fn create_events(
    service: &MemoryService,
    memory: &str,
    writers: usize,
    per_writer: usize,
) -> (Histogram<u64>, f64) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let service = service.clone();
        let memory = memory.to_string();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).unwrap();
            let actor = format!("writer-{w}");
            for i in 0..per_writer {
                let t = Instant::now();
                service
                    .create_event(&memory, event(&actor, i))
                    .await
                    .unwrap();
                h.record(t.elapsed().as_nanos() as u64).unwrap();
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        all.add(t.await.unwrap()).unwrap();
    }
    let rate = (writers * per_writer) as f64 / started.elapsed().as_secs_f64();
    (all, rate)
}

async fn retrieve(
    service: &MemoryService,
    memory: &str,
    scope_path: Option<String>,
    samples: usize,
) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for i in 0..samples {
        let input = RetrieveMemoryRecordsInput {
            namespace: None,
            namespace_path: scope_path.clone(),
            search_criteria: SearchCriteria {
                search_query: format!("which {} does the user like", WORDS[i % WORDS.len()]),
                memory_strategy_id: None,
                top_k: Some(10),
                metadata_filters: None,
            },
            next_token: None,
            max_results: None,
        };
        let t = Instant::now();
        let out = service
            .retrieve_memory_records(memory, input)
            .await
            .unwrap();
        h.record(t.elapsed().as_nanos() as u64).unwrap();
        assert_eq!(out.memory_record_summaries.len(), 10);
    }
    h
}

/// `VectorIndex::search` alone: 100k pseudo-random 256-d unit vectors.
fn raw_index_search() {
    let d = 256;
    let mut index = VectorIndex::new(d);
    let mut x: u64 = 42;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    for i in 0..RECORDS {
        let mut v: Vec<f32> = (0..d).map(|_| next()).collect();
        normalize(&mut v);
        index.upsert(
            &format!("r{i}"),
            &format!("/users/u{}", i % NAMESPACES),
            "s",
            &v,
        );
    }
    let mut q: Vec<f32> = (0..d).map(|_| next()).collect();
    normalize(&mut q);
    let mut h = Histogram::<u64>::new(3).unwrap();
    for _ in 0..200 {
        let t = Instant::now();
        let hits = index.search(&q, NamespaceScope::All, None, 10);
        h.record(t.elapsed().as_nanos() as u64).unwrap();
        assert_eq!(hits.len(), 10);
    }
    println!(
        "| VectorIndex::search top 10 of {RECORDS} × {d}-d (index only) | {} | {} | |",
        micros(&h, 0.5),
        micros(&h, 0.99)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (service, memory) = service(dir.path()).await;
    println!("| measurement | p50 | p99 | rate |");
    println!("|---|---|---|---|");

    for (writers, per_writer) in [(1, 2_000), (32, 200)] {
        let (h, rate) = create_events(&service, &memory, writers, per_writer).await;
        println!(
            "| CreateEvent, durable, {writers} writer(s), sled | {} | {} | {:.0} events/s |",
            micros(&h, 0.5),
            micros(&h, 0.99),
            rate
        );
    }
    if std::env::var_os("CORRAL_TEST_DATABASE_URL").is_some() {
        let url = corral_test_support::fresh_database("memory_bench");
        let storage = tokio::task::spawn_blocking(move || {
            corral_memory::store::PgStorage::connect(&url, "memory").unwrap()
        })
        .await
        .unwrap();
        let (pg, pg_memory) = service_on(Arc::new(storage)).await;
        for (writers, per_writer) in [(1, 2_000), (32, 200)] {
            let (h, rate) = create_events(&pg, &pg_memory, writers, per_writer).await;
            println!(
                "| CreateEvent, durable, {writers} writer(s), PostgreSQL | {} | {} | {:.0} events/s |",
                micros(&h, 0.5),
                micros(&h, 0.99),
                rate
            );
        }
    } else {
        println!("| CreateEvent on PostgreSQL | not measured: set CORRAL_TEST_DATABASE_URL | | |");
    }

    raw_index_search();

    let load = Instant::now();
    for chunk in 0..RECORDS / 100 {
        let records = (0..100)
            .map(|j| {
                let i = chunk * 100 + j;
                MemoryRecordCreateInput {
                    request_identifier: format!("r{i}"),
                    namespaces: vec![format!("/users/u{}", i % NAMESPACES)],
                    content: MemoryContent::Text(sentence(i)),
                    timestamp: Timestamp::now(),
                    memory_strategy_id: None,
                    metadata: Default::default(),
                }
            })
            .collect();
        service
            .batch_create_memory_records(&memory, records)
            .await
            .unwrap();
    }
    let load = load.elapsed();
    println!(
        "| BatchCreateMemoryRecords, {RECORDS} records (embed + store + index) | | | {:.0} records/s |",
        RECORDS as f64 / load.as_secs_f64()
    );
    let whole = retrieve(&service, &memory, None, 300).await;
    println!(
        "| RetrieveMemoryRecords top 10 of {RECORDS} (whole memory) | {} | {} | |",
        micros(&whole, 0.5),
        micros(&whole, 0.99)
    );
    let one = retrieve(&service, &memory, Some("/users/u7".into()), 2_000).await;
    println!(
        "| RetrieveMemoryRecords top 10, namespacePath of one namespace ({} records) | {} | {} | |",
        RECORDS / NAMESPACES,
        micros(&one, 0.5),
        micros(&one, 0.99)
    );
    drop(service);
    let reopen = Instant::now();
    let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
    let _service = MemoryService::open(
        storage,
        Arc::new(LocalEmbedder::default()),
        MemoryConfig::default(),
    )
    .await
    .unwrap();
    println!(
        "| reopen with {RECORDS} records (index rebuilt from stored vectors) | {:.0} ms | | |",
        reopen.elapsed().as_secs_f64() * 1000.0
    );
}
