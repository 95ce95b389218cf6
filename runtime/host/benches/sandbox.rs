//! Sandbox benchmark: new-session latency, host memory per idle session at
//! 10,000 live sessions, and trivial-agent throughput. Prints a table.
//!
//! `cargo bench -p corral-host --bench sandbox` (set `CORRAL_BENCH_SESSIONS`
//! to change the 10,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_host::{
    AgentHost, CompiledAgent, EngineConfig, HostServices, InvocationRequest, SessionConfig,
    SessionManager,
};
use hdrhistogram::Histogram;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let sessions: usize = std::env::var("CORRAL_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let host = Arc::new(
        AgentHost::new(EngineConfig {
            max_instances: sessions as u32 + 64,
            max_memory_bytes: 128 << 20,
            ..EngineConfig::default()
        })
        .expect("engine"),
    );
    let echo = Arc::new(
        host.compile("echo", corral_examples::ECHO_AGENT)
            .expect("compile echo"),
    );
    let config = SessionConfig {
        max_sessions: sessions + 64,
        ..SessionConfig::default()
    };
    let manager = Arc::new(SessionManager::new(host, HostServices::default(), config));
    let mut rows = Vec::new();

    // 1. New session: sandbox instantiate + first trivial call.
    let mut new_session = histogram();
    for i in 0..3_000 {
        let id = format!("cold-{i}");
        let started = Instant::now();
        let response = manager.invoke(&echo, request(&id)).await.expect("invoke");
        let elapsed = started.elapsed();
        assert!(response.new_session);
        if i >= 200 {
            record(&mut new_session, elapsed);
        }
        manager.stop("echo", &id);
    }
    rows.push(latency_row(
        "new session ready (instantiate + first call)",
        &new_session,
    ));

    // 2. Warm invocations of one session, sequential.
    let mut warm = histogram();
    let iterations = 20_000;
    let started = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        manager
            .invoke(&echo, request("warm"))
            .await
            .expect("invoke");
        record(&mut warm, t.elapsed());
    }
    let sequential_rate = iterations as f64 / started.elapsed().as_secs_f64();
    rows.push(latency_row("warm invocation, 1 session", &warm));
    rows.push((
        "trivial agent throughput, 1 session sequential".into(),
        format!("{sequential_rate:.0} invocations/s"),
    ));
    manager.stop("echo", "warm");

    // 3. Throughput across 100 concurrent sessions.
    let concurrent_rate = concurrent(&manager, &echo, 100, 200).await;
    rows.push((
        "trivial agent throughput, 100 concurrent sessions".into(),
        format!("{concurrent_rate:.0} invocations/s"),
    ));
    manager.stop_all();

    // 4. Host memory per idle session with `sessions` live sessions.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = memory_snapshot();
    for i in 0..sessions {
        manager
            .invoke(&echo, request(&format!("idle-{i}")))
            .await
            .expect("invoke");
    }
    let after = memory_snapshot();
    assert_eq!(manager.live_sessions(), sessions);
    let rss = (after.rss as f64 - before.rss as f64) / sessions as f64;
    let guest = (after.guest as f64 - before.guest as f64) / sessions as f64;
    let linear: usize = manager.list().iter().map(|s| s.memory_bytes).sum::<usize>() / sessions;
    rows.push(("live idle sessions".to_string(), format!("{sessions}")));
    rows.push((
        "RSS per idle session (total)".into(),
        format!("{:.1} KiB", rss / 1024.0),
    ));
    rows.push((
        "guest-resident memory per session".into(),
        format!(
            "{:.1} KiB (linear memory size {} KiB)",
            guest / 1024.0,
            linear / 1024
        ),
    ));
    rows.push((
        "host overhead per idle session".into(),
        format!("{:.1} KiB", (rss - guest) / 1024.0),
    ));
    let stopped = manager.stop_all();
    assert_eq!(stopped, sessions);

    println!("\n| measurement | result |\n|---|---|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}

fn request(session: &str) -> InvocationRequest {
    InvocationRequest::new(session, b"{\"ping\":1}".to_vec())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram")
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let _ = histogram.record(elapsed.as_nanos().max(1) as u64);
}

fn latency_row(name: &str, histogram: &Histogram<u64>) -> (String, String) {
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
    (
        name.to_string(),
        format!(
            "p50 {:.1} µs, p99 {:.1} µs (n={})",
            us(0.5),
            us(0.99),
            histogram.len()
        ),
    )
}

async fn concurrent(
    manager: &Arc<SessionManager>,
    agent: &Arc<CompiledAgent>,
    sessions: usize,
    per_session: usize,
) -> f64 {
    for s in 0..sessions {
        manager
            .invoke(agent, request(&format!("c-{s}")))
            .await
            .expect("warm up");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let manager = manager.clone();
        let agent = agent.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_session {
                manager
                    .invoke(&agent, request(&format!("c-{s}")))
                    .await
                    .expect("invoke");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    (sessions * per_session) as f64 / started.elapsed().as_secs_f64()
}

struct MemorySnapshot {
    rss: u64,
    guest: u64,
}

/// Process RSS, and the resident part of the linear-memory pool: the largest
/// run of adjacent mappings, which is the pooling allocator's reservation
/// for all guest memories.
fn memory_snapshot() -> MemorySnapshot {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let mut regions: Vec<(u64, u64, u64)> = Vec::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            regions.push((start, end, 0));
        } else if let Some(rest) = line.strip_prefix("Rss:")
            && let Some(region) = regions.last_mut()
        {
            region.2 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
                * 1024;
        }
    }
    let rss = regions.iter().map(|r| r.2).sum();
    let mut best = (0u64, 0u64);
    let mut run = (0u64, 0u64);
    let mut last_end = 0u64;
    for &(start, end, resident) in &regions {
        if start == last_end {
            run.0 += end - start;
            run.1 += resident;
        } else {
            run = (end - start, resident);
        }
        last_end = end;
        if run.0 > best.0 {
            best = run;
        }
    }
    MemorySnapshot { rss, guest: best.1 }
}
