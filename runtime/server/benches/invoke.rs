//! `InvokeAgentRuntime` over loopback HTTP: invocations/s and p50/p99 of the
//! trivial echo agent in Rust, Python and JavaScript at 1 and 100 concurrent
//! sessions, and the end-to-end latency of a request that starts a new
//! session (the HTTP client runs in this process, sharing the cores with
//! the server). Prints a table.
//!
//! `cargo bench -p corral-server --bench invoke` (the Python and JS echo
//! agents are built with `.ci/test`'s toolchains)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use corral_host::{EngineConfig, SessionConfig};
use corral_server::SESSION_HEADER;
use hdrhistogram::Histogram;

const DURATION: Duration = Duration::from_secs(5);

async fn run(url: &str, agent: &str, sessions: usize) -> (Histogram<u64>, f64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(sessions)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let client = client.clone();
        let url = format!("{url}/runtimes/{agent}/invocations");
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

/// End-to-end latency of requests that each start a new session.
async fn new_sessions(url: &str, agent: &str, count: usize) -> Histogram<u64> {
    let client = reqwest::Client::new();
    let url = format!("{url}/runtimes/{agent}/invocations");
    let mut h = Histogram::<u64>::new(3).unwrap();
    for i in 0..count + 50 {
        let t = Instant::now();
        let response = client
            .post(&url)
            .header(SESSION_HEADER, format!("new-session-{i:032}"))
            .header("content-type", "application/json")
            .body(r#"{"prompt":"ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        if i >= 50 {
            h.record(t.elapsed().as_nanos() as u64).unwrap();
        }
    }
    h
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let python =
        std::fs::read(corral_test_support::built_agent("examples/agents/echo-py")).unwrap();
    let js = std::fs::read(corral_test_support::built_agent("examples/agents/echo-js")).unwrap();
    let (url, _stop) = common::serve(
        EngineConfig::default(),
        SessionConfig::default(),
        dir.path(),
        &[
            ("echo", corral_examples::ECHO_AGENT),
            ("echo_py", &python),
            ("echo_js", &js),
        ],
    )
    .await;
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!("| agent | requests | invocations/s | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (agent, label) in [
        ("echo", "Rust"),
        ("echo_py", "Python"),
        ("echo_js", "JavaScript"),
    ] {
        let h = new_sessions(&url, agent, 300).await;
        println!(
            "| {label} echo | each starts a new session (n=300) | – | {:.1} µs | {:.1} µs |",
            us(&h, 0.5),
            us(&h, 0.99)
        );
        for sessions in [1, 100] {
            let (h, rate) = run(&url, agent, sessions).await;
            println!(
                "| {label} echo | {sessions} concurrent session(s) | {rate:.0} | {:.1} µs | {:.1} µs |",
                us(&h, 0.5),
                us(&h, 0.99)
            );
        }
    }
}
