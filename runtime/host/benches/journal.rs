//! Journaling overhead: the assistant's two-step invocation (scripted model
//! and the calculator WASM tool through the in-process gateway) without a
//! journal, with one kept in memory (what recording costs in CPU), and with
//! one on disk (sled, each invocation durable before it returns), in
//! alternating rounds of sessions of 10 invocations; then 16 sessions at
//! once, where group commit shares each flush. Prints tables.
//!
//! `cargo bench -p corral-host --bench journal` (`CORRAL_BENCH_SESSIONS`
//! rounds per configuration, default 200).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use corral_storage::{ScanStart, ScanVisitor, Storage, StorageError, WriteBatch};

use corral_host::{
    AgentHost, CompiledAgent, EngineConfig, InvocationRequest, SessionConfig, SessionManager,
};
use corral_journal::{JournalConfig, JournalStore};
use hdrhistogram::Histogram;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TURNS: usize = 10;

/// A store in memory that never touches the disk: what journaling costs
/// before durability.
#[derive(Default)]
struct InMemory {
    map: parking_lot::Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    ids: AtomicU64,
}

/// Applies `batch` to `map`.
fn apply(map: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>, batch: WriteBatch) {
    for write in batch.writes {
        match write {
            corral_storage::Write::Put(k, v) => {
                map.insert(k, v);
            }
            corral_storage::Write::Delete(k) => {
                map.remove(&k);
            }
        }
    }
}

impl Storage for InMemory {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map.lock().get(key).cloned())
    }

    fn scan(
        &self,
        prefix: &[u8],
        start: ScanStart<'_>,
        reverse: bool,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), StorageError> {
        let map = self.map.lock();
        let keys = map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix));
        let mut entries: Vec<_> = keys
            .filter(|(k, _)| match start {
                ScanStart::Beginning => true,
                ScanStart::After(after) => k.as_slice() > after,
            })
            .collect();
        if reverse {
            entries.reverse();
        }
        for (k, v) in entries {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        apply(&mut self.map.lock(), batch);
        Ok(())
    }

    fn write_if(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        batch: WriteBatch,
    ) -> Result<Option<corral_storage::SyncTicket>, StorageError> {
        let mut map = self.map.lock();
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(None);
        }
        apply(&mut map, batch);
        Ok(Some(corral_storage::SyncTicket::DURABLE))
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StorageError> {
        let mut map = self.map.lock();
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        match new {
            Some(value) => map.insert(key.to_vec(), value),
            None => map.remove(key),
        };
        Ok(true)
    }

    fn next_id(&self) -> Result<u64, StorageError> {
        Ok(self.ids.fetch_add(1, Ordering::Relaxed))
    }
}

fn main() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

async fn bench() {
    let rounds: usize = std::env::var("CORRAL_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let unbounded = JournalConfig {
        max_bytes_per_session: u64::MAX,
        ..JournalConfig::default()
    };
    let on_disk: Arc<dyn Storage> =
        Arc::new(corral_storage::SledStorage::open(dir.path()).unwrap());
    let journal = JournalStore::new(on_disk, unbounded.clone());
    let in_memory = JournalStore::new(Arc::new(InMemory::default()), unbounded);
    let host = Arc::new(AgentHost::new(EngineConfig::default()).unwrap());
    let agent = Arc::new(
        host.compile("assistant", corral_examples::ASSISTANT_AGENT)
            .unwrap(),
    );
    let journaled = |journal: &JournalStore| SessionConfig {
        journal: Some(journal.clone()),
        ..SessionConfig::default()
    };
    let plain = manager(&host, SessionConfig::default()).await;
    let memory = manager(&host, journaled(&in_memory)).await;
    let durable = manager(&host, journaled(&journal)).await;

    let mut off = Histogram::<u64>::new(3).unwrap();
    let mut cpu = Histogram::<u64>::new(3).unwrap();
    let mut on = Histogram::<u64>::new(3).unwrap();
    let mut steps = 0u64;
    for round in 0..rounds + 5 {
        let record = round >= 5;
        steps += run(
            &plain,
            &agent,
            &format!("plain-{round}"),
            record.then_some(&mut off),
        )
        .await;
        let session = format!("memory-{round}");
        run(&memory, &agent, &session, record.then_some(&mut cpu)).await;
        let session = format!("journaled-{round}");
        run(&durable, &agent, &session, record.then_some(&mut on)).await;
    }
    let steps_per_invocation = steps as f64 / ((rounds + 5) * TURNS) as f64;
    let sessions = journal.sessions().unwrap();
    let bytes: u64 = sessions.iter().map(|s| s.bytes).sum();
    let entries: u64 = sessions.iter().map(|s| s.entries).sum();
    let invocations = (sessions.len() * TURNS) as f64;
    let p = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    let step = |h: &Histogram<u64>| p(h, 0.5) / steps_per_invocation;
    let added = |h: &Histogram<u64>| {
        format!(
            "{:+.1} µs ({:+.1}%)",
            step(h) - step(&off),
            (step(h) / step(&off) - 1.0) * 100.0
        )
    };
    println!(
        "\n| one session at a time | invocation p50 | p99 | step p50 | added per step |\n|---|---|---|---|---|"
    );
    println!(
        "| not journaled | {:.1} µs | {:.1} µs | {:.1} µs | — |",
        p(&off, 0.5),
        p(&off, 0.99),
        step(&off)
    );
    println!(
        "| journaled in memory (recording only) | {:.1} µs | {:.1} µs | {:.1} µs | {} |",
        p(&cpu, 0.5),
        p(&cpu, 0.99),
        step(&cpu),
        added(&cpu)
    );
    println!(
        "| journaled on disk (sled, durable per invocation) | {:.1} µs | {:.1} µs | {:.1} µs | {} |",
        p(&on, 0.5),
        p(&on, 0.99),
        step(&on),
        added(&on)
    );
    println!(
        "\njournal: {:.0} bytes and {:.1} entries per invocation ({:.0} bytes per step), {} sessions of {TURNS} turns",
        bytes as f64 / invocations,
        entries as f64 / invocations,
        bytes as f64 / invocations / steps_per_invocation,
        sessions.len()
    );

    // Many sessions at once: invocations that finish together share a flush.
    println!("\n| {CONCURRENT} sessions at once | steps/s | added per step |\n|---|---|---|");
    let rounds = (rounds / 20).max(3);
    let mut rates = [0.0f64; 2];
    for round in 0..rounds {
        for (i, manager) in [&plain, &durable].into_iter().enumerate() {
            let started = Instant::now();
            let steps = concurrently(manager, &agent, &format!("c{round}-{i}")).await;
            rates[i] += steps as f64 / started.elapsed().as_secs_f64();
        }
    }
    let [off_rate, on_rate] = rates.map(|r| r / rounds as f64);
    println!("| not journaled | {off_rate:.0} | — |");
    println!(
        "| journaled on disk (group commit) | {on_rate:.0} | {:+.1}% |",
        (off_rate / on_rate - 1.0) * 100.0
    );
}

/// Sessions run at once in the concurrent rounds.
const CONCURRENT: usize = 16;

/// `CONCURRENT` sessions of `TURNS` invocations at once; returns the model
/// calls made.
async fn concurrently(manager: &SessionManager, agent: &Arc<CompiledAgent>, prefix: &str) -> u64 {
    let mut tasks = Vec::new();
    for i in 0..CONCURRENT {
        let session = format!("{prefix}-{i}");
        tasks.push(async move { run(manager, agent, &session, None).await });
    }
    futures::future::join_all(tasks).await.into_iter().sum()
}

async fn manager(host: &Arc<AgentHost>, config: SessionConfig) -> SessionManager {
    SessionManager::new(host.clone(), common::assistant_services(host).await, config)
}

/// One session of `TURNS` invocations; returns the model calls made.
async fn run(
    manager: &SessionManager,
    agent: &Arc<CompiledAgent>,
    session: &str,
    mut latencies: Option<&mut Histogram<u64>>,
) -> u64 {
    let mut steps = 0;
    for _ in 0..TURNS {
        let request =
            InvocationRequest::new(session, br#"{"prompt": "What is (17 * 23) + 4?"}"#.to_vec());
        let started = Instant::now();
        let response = manager.invoke(agent, request).await.unwrap();
        if let Some(h) = latencies.as_deref_mut() {
            h.record(started.elapsed().as_nanos() as u64).unwrap();
        }
        steps += u64::from(response.stats.model_calls);
    }
    manager.stop("assistant", session);
    steps
}
