//! Durability: a child process writing events from several tasks is killed
//! with SIGKILL at random moments; after reopening, every event it
//! acknowledged is present and the store opens cleanly.
//!
//! The child is this test binary re-run with `CORRAL_CRASH_CHILD` set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{memory, open, user_event};
use corral_memory::types::ListEventsInput;

const CHILD_ENV: &str = "CORRAL_CRASH_CHILD";
const WRITERS: usize = 4;

/// Child mode: writes events forever, printing `ACK <memory> <actor> <event>`
/// after each acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let service = open(Path::new(&dir)).await;
    let memory_id = match service
        .list_memories(Some(1), None)
        .unwrap()
        .memories
        .first()
    {
        Some(m) => m.id.clone(),
        None => memory(&service, "crash", vec![]).await.id,
    };
    println!("READY");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let service = service.clone();
        let memory_id = memory_id.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let actor = format!("writer-{w}");
                let event = service
                    .create_event(&memory_id, user_event(&actor, "s", &format!("event {i}")))
                    .await
                    .unwrap();
                println!("ACK {memory_id} {actor} {}", event.event_id);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Runs one child until it has acknowledged some events, kills it after a
/// pseudo-random delay and returns the acknowledged (memory, actor, event).
fn run_and_kill(dir: &Path, delay: Duration) -> Vec<(String, String, String)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut acked = Vec::new();
    let mut ready = false;
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(60) {
        match rx.recv_timeout(Duration::from_millis(5)) {
            // libtest prints "test crash_child ... " before the child's first line.
            Ok(line) if line.ends_with("READY") => ready = true,
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("ACK ") {
                    let parts: Vec<&str> = rest.split(' ').collect();
                    acked.push((
                        parts[0].to_string(),
                        parts[1].to_string(),
                        parts[2].to_string(),
                    ));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if !killed && ready && !acked.is_empty() && started.elapsed() >= delay {
            // SIGKILL: no destructors, no flush.
            child.kill().unwrap();
            killed = true;
        }
    }
    if !killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    reader.join().unwrap();
    // Lines read after the kill were written before it: still acknowledged.
    while let Ok(line) = rx.try_recv() {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            acked.push((
                parts[0].to_string(),
                parts[1].to_string(),
                parts[2].to_string(),
            ));
        }
    }
    assert!(killed, "child never acknowledged an event");
    acked
}

#[tokio::test]
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed-seed sequence of kill delays (deterministic, but spread over
    // startup, steady writing and flush boundaries).
    let mut seed: u64 = 0x5eed_cafe;
    let mut total = 0;
    for round in 0..5 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(50 + (seed >> 33) % 700);
        let acked = tokio::task::spawn_blocking({
            let path = dir.path().to_path_buf();
            move || run_and_kill(&path, delay)
        })
        .await
        .unwrap();
        total += acked.len();
        let service = open(dir.path()).await;
        for (memory_id, actor, event_id) in &acked {
            service
                .get_event(memory_id, actor, "s", event_id)
                .await
                .unwrap_or_else(|e| {
                    panic!("round {round}: acknowledged event {event_id} lost: {e}")
                });
        }
        // Listing works and holds at least everything acknowledged so far.
        let memory_id = &acked[0].0;
        let mut listed = 0;
        for w in 0..WRITERS {
            let page = service
                .list_events(
                    memory_id,
                    &format!("writer-{w}"),
                    "s",
                    ListEventsInput {
                        max_results: Some(100),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            listed += page.events.len();
        }
        assert!(listed > 0);
        drop(service);
    }
    assert!(total > 0);
}
