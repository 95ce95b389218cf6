//! Durable-session benchmark: how long a session takes to resume (its
//! journal read from sled, a sandbox instantiated and every recorded
//! invocation replayed into it, no model or tool call made) at 10 and 100
//! steps, and what a hibernated session costs the host. Prints a table.
//!
//! `cargo bench -p corral-host --bench resume` (`CORRAL_BENCH_RESUMES`
//! resumes per size, default 300; `CORRAL_BENCH_SESSIONS` hibernated
//! sessions, default 5,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use corral_host::{
    AgentHost, EngineConfig, HostServices, InvocationRequest, ReplayOptions, SessionConfig,
    SessionManager, SessionReplayer,
};
use corral_journal::{JournalConfig, JournalStore};
use hdrhistogram::Histogram;

/// mimalloc, counting the bytes live on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc, which upholds the
// `GlobalAlloc` contract; the wrapper only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let resumes = env("CORRAL_BENCH_RESUMES", 300);
    let hibernated = env("CORRAL_BENCH_SESSIONS", 5_000);
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn corral_storage::Storage> =
        Arc::new(corral_storage::SledStorage::open(dir.path()).unwrap());
    let journal = JournalStore::new(storage, JournalConfig::default());
    let host = Arc::new(
        AgentHost::new(EngineConfig {
            max_instances: hibernated as u32 + 64,
            max_memory_bytes: 32 << 20,
            ..EngineConfig::default()
        })
        .unwrap(),
    );
    let assistant = Arc::new(
        host.compile("assistant", corral_examples::ASSISTANT_AGENT)
            .unwrap(),
    );
    let config = SessionConfig {
        journal: Some(journal.clone()),
        max_sessions: hibernated + 64,
        limits: corral_host::SandboxLimits {
            memory_bytes: 32 << 20,
            ..SessionConfig::default().limits
        },
        ..SessionConfig::default()
    };
    let services = common::assistant_services(&host).await;
    let recorder = SessionManager::new(host.clone(), services.clone(), config.clone());

    println!("\n| session | journal | resume p50 | p99 |\n|---|---|---|---|");
    // The assistant makes two model calls (steps) per turn.
    for steps in [10usize, 100] {
        let session = format!("resume-{steps}");
        for _ in 0..steps / 2 {
            let request = InvocationRequest::new(
                session.as_str(),
                br#"{"prompt": "What is (17 * 23) + 4?"}"#.to_vec(),
            );
            recorder.invoke(&assistant, request).await.unwrap();
        }
        let summary = journal.summary(&session).unwrap().unwrap();
        // Resume = read the journal, instantiate, replay: what a session
        // restarted, crashed or hibernated pays on its next invocation.
        let replayer = SessionReplayer::new(host.clone(), services.clone(), config.clone());
        let mut latencies = Histogram::<u64>::new(3).unwrap();
        let mut reads = Histogram::<u64>::new(3).unwrap();
        for i in 0..resumes + 20 {
            let started = Instant::now();
            let segment = journal.last_segment(&session).unwrap().unwrap();
            if i >= 20 {
                reads.record(started.elapsed().as_nanos() as u64).unwrap();
            }
            let report = replayer
                .replay(&assistant, &session, segment, &ReplayOptions::default())
                .await
                .unwrap();
            let elapsed = started.elapsed();
            assert!(report.identical());
            if i >= 20 {
                latencies.record(elapsed.as_nanos() as u64).unwrap();
            }
        }
        println!(
            "| {steps} steps ({} invocations) | {} entries, {:.0} KiB, read in {:.2} ms | {:.2} ms | {:.2} ms |",
            steps / 2,
            summary.entries,
            summary.bytes as f64 / 1024.0,
            reads.value_at_quantile(0.5) as f64 / 1e6,
            latencies.value_at_quantile(0.5) as f64 / 1e6,
            latencies.value_at_quantile(0.99) as f64 / 1e6,
        );
    }
    recorder.stop_all();

    // Host memory of hibernated sessions: the heap a manager holds with
    // `hibernated` of them, against the same manager emptied.
    let echo = Arc::new(host.compile("echo", corral_examples::ECHO_AGENT).unwrap());
    let hibernating = SessionConfig {
        hibernate_after: Some(Duration::from_millis(1)),
        ..config.clone()
    };
    // Made outside the runtime: no expiry task; this bench hibernates with `reap`.
    let manager = std::thread::spawn({
        let host = host.clone();
        move || SessionManager::new(host, HostServices::default(), hibernating)
    })
    .join()
    .unwrap();
    for i in 0..hibernated {
        let request = InvocationRequest::new(format!("idle-{i:06}"), b"{}".to_vec());
        manager.invoke(&echo, request).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    manager.reap();
    assert_eq!(manager.hibernated_sessions(), hibernated);
    assert_eq!(manager.live_sessions(), 0);
    let with = LIVE.load(Ordering::Relaxed);
    drop(manager);
    let without = LIVE.load(Ordering::Relaxed);
    println!(
        "\nhibernated session: {:.0} bytes of host memory each ({hibernated} sessions; their state is in the journal on disk)",
        (with - without) as f64 / hibernated as f64
    );
}
