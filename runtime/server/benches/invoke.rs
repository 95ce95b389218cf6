//! `InvokeAgentRuntime` over loopback HTTP: invocations/s and p50/p99 of the
//! trivial `echo` agent at 1 and 100 concurrent sessions (the HTTP client
//! runs in this process, sharing the cores with the server). Prints a table.
//!
//! `cargo bench -p corral-server --bench invoke`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_host::{AgentHost, EngineConfig, SessionConfig};
use corral_server::SESSION_HEADER;
use hdrhistogram::Histogram;

const DURATION: Duration = Duration::from_secs(5);

async fn run(url: &str, sessions: usize) -> (Histogram<u64>, f64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(sessions)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let client = client.clone();
        let url = format!("{url}/runtimes/echo/invocations");
        let session = format!("bench-session-{s:032}");
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).unwrap();
            let mut n = 0u64;
            while started.elapsed() < DURATION {
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header(SESSION_HEADER, &session)
                    .header("content-type", "application/json")
                    .body(r#"{"prompt":"ping"}"#)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                h.record(t.elapsed().as_nanos() as u64).unwrap();
                n += 1;
            }
            (h, n)
        }));
    }
    let mut all = Histogram::<u64>::new(3).unwrap();
    let mut total = 0;
    for t in tasks {
        let (h, n) = t.await.unwrap();
        all.add(h).unwrap();
        total += n;
    }
    (all, total as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(AgentHost::new(EngineConfig::default()).unwrap());
    let (url, _stop) = common::serve(
        host,
        SessionConfig::default(),
        dir.path(),
        &[("echo", corral_examples::ECHO_AGENT)],
    )
    .await;
    println!("| concurrent sessions | invocations/s | p50 | p99 |");
    println!("|---|---|---|---|");
    for sessions in [1, 100] {
        let (h, rate) = run(&url, sessions).await;
        println!(
            "| {sessions} | {rate:.0} | {:.1} µs | {:.1} µs |",
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0
        );
    }
}
