//! A hostile agent deployed to a real `corral serve` (local span store on,
//! memory attached) floods every host-side resource it can reach — log
//! lines, huge log fields, the response stream, memory writes — while a
//! benign session is invoked every 100 ms beside it. Each attack ends with a
//! typed limit error, the server's peak RSS stays within a stated bound, and
//! the benign session never fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corral_test_support::{ChildServer, free_port, spawn_server};
use serde_json::{Value, json};

/// How much the server's peak RSS may grow over its warmed-up RSS across all
/// attacks. Before the limits, the log flood alone grew it by 5.8 GB.
const RSS_GROWTH_BOUND: u64 = 512 << 20;

/// `corral serve` on a free port with the probe and echo agents deployed.
async fn serve(dir: &Path) -> ChildServer {
    serve_agents(
        dir,
        &[],
        &[
            ("probe", corral_test_guests::SANDBOX_PROBE.to_vec()),
            ("echo", corral_examples::ECHO_AGENT.to_vec()),
        ],
    )
    .await
}

/// `corral serve` on a free port with `extra` flags and `agents` deployed.
async fn serve_agents(dir: &Path, extra: &[&str], agents: &[(&str, Vec<u8>)]) -> ChildServer {
    let port = free_port();
    let served = spawn_server(
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("RUST_LOG", "warn")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        port,
    );
    let client = reqwest::Client::new();
    for (name, bytes) in agents {
        let deployed = client
            .post(format!("{}/corral/runtimes/{name}", served.url))
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert!(
            deployed.status().is_success(),
            "{:?}",
            deployed.text().await
        );
    }
    served
}

/// A `/proc/<pid>/status` value in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// What an attack's response was: status, body head and tail, body size.
struct Outcome {
    status: u16,
    head: String,
    tail: String,
    bytes: usize,
}

/// Invokes `agent` in its own session every 100 ms until `stop`; every call
/// must succeed. Returns the number of calls and the worst latency.
fn benign_session(
    url: &str,
    agent: &str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u32, Duration)> {
    let url = format!("{url}/runtimes/{agent}/invocations");
    let session = session(&format!("benign-{agent}"));
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut worst = Duration::ZERO;
        let mut calls = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let response = client
                .post(&url)
                .header("x-amzn-bedrock-agentcore-runtime-session-id", &session)
                .body(r#"{"prompt":"still here?"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{:?}", response.text().await);
            response.bytes().await.unwrap();
            worst = worst.max(started.elapsed());
            calls += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (calls, worst)
    })
}

async fn attack(url: &str, session: &str, request: Value) -> Outcome {
    attack_agent(url, "probe", session, request).await
}

async fn attack_agent(url: &str, agent: &str, session: &str, request: Value) -> Outcome {
    let response = reqwest::Client::new()
        .post(format!("{url}/runtimes/{agent}/invocations"))
        .header("x-amzn-bedrock-agentcore-runtime-session-id", session)
        .header("x-amzn-bedrock-agentcore-runtime-user-id", "mallory")
        .body(request.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    // Read the body in pieces without keeping it: a stream flood is large.
    let (mut head, mut tail, mut bytes) = (Vec::new(), Vec::new(), 0);
    let mut response = response;
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        if head.len() < 4096 {
            head.extend_from_slice(&chunk[..chunk.len().min(4096 - head.len())]);
        }
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(4096)..]);
        let excess = tail.len().saturating_sub(4096);
        tail.drain(..excess);
    }
    Outcome {
        status,
        head: String::from_utf8_lossy(&head).into_owned(),
        tail: String::from_utf8_lossy(&tail).into_owned(),
        bytes,
    }
}

fn session(name: &str) -> String {
    format!("{name}-{}", "0".repeat(40))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_floods_end_in_typed_limit_errors_with_bounded_rss() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path()).await;
    let pid = served.child.id();
    let url = served.url.clone();

    // The benign session, every 100 ms, for as long as the attacks last.
    let stop = Arc::new(AtomicBool::new(false));
    let benign = benign_session(&url, "echo", stop.clone());
    // Warm up (sandboxes, allocator, span store) before the baseline.
    let warm = attack(&url, &session("warm"), json!({"action": "noop"})).await;
    assert_eq!(warm.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = proc_status_bytes(pid, "VmRSS:");

    // 1. A log flood that ignores refusals: 200,000 lines of 8 KiB. The host
    //    keeps the 128 lines that fit the 1 MiB budget and drops (and
    //    counts) the rest.
    let flood = attack(
        &url,
        &session("log-flood"),
        json!({"action": "log_flood", "lines": 200_000, "bytes": 8192}),
    )
    .await;
    assert_eq!(flood.status, 200, "{}", flood.head);
    let refused: Value = serde_json::from_str(&flood.head).unwrap();
    assert_eq!(refused["refused"], 200_000 - 128, "{}", flood.head);
    // The same flood from a guest that stops at the first refusal ends with
    // the host's typed limit error.
    let stopped = attack(
        &url,
        &session("log-flood-stop"),
        json!({"action": "log_flood", "lines": 200_000, "bytes": 100, "stop": true}),
    )
    .await;
    assert_eq!(stopped.status, 424, "{}", stopped.head);
    assert!(
        stopped.head.contains("LimitExceeded") && stopped.head.contains("log_lines_per_invocation"),
        "{}",
        stopped.head
    );

    // 2. Huge fields: 32 fields of 1 MiB per line. Keys and values are cut
    //    to 1 KiB, so the byte budget (not the host's memory) runs out.
    let fields = attack(
        &url,
        &session("log-fields"),
        json!({"action": "log_flood", "lines": 100, "bytes": 8192, "fields": 32, "field_bytes": 1 << 20, "stop": true}),
    )
    .await;
    assert_eq!(fields.status, 424, "{}", fields.head);
    assert!(
        fields.head.contains("log_bytes_per_invocation"),
        "{}",
        fields.head
    );

    // 3. A stream flood: 1 MiB chunks past the 100 MiB response limit.
    let stream = attack(
        &url,
        &session("stream-flood"),
        json!({"action": "stream_flood", "chunks": 150, "bytes": 1 << 20}),
    )
    .await;
    assert_eq!(stream.status, 200, "the stream had started");
    assert!(
        stream.tail.contains("event: error") && stream.tail.contains("response_bytes"),
        "{}",
        stream.tail
    );
    // 100 chunks of 1 MiB and their SSE framing, not one chunk more.
    assert!(
        stream.bytes <= (100 << 20) + 100 * 64 + 4096,
        "{} bytes delivered",
        stream.bytes
    );
    //    Chunks within the limit and a final payload that crosses it: the
    //    final payload now counts, so the response fails instead of being
    //    delivered whole.
    let last = attack(
        &url,
        &session("stream-final"),
        json!({"action": "stream_flood", "chunks": 0, "bytes": 0, "final_bytes": 101 << 20}),
    )
    .await;
    assert_eq!(last.status, 424, "{}", last.head);
    assert!(last.head.contains("response exceeds"), "{}", last.head);

    // 4. A memory-write flood: 64 KiB events as fast as the store takes them.
    let memory = attack(
        &url,
        &session("memory-flood"),
        json!({"action": "memory_flood", "events": 10_000, "bytes": 64 << 10}),
    )
    .await;
    assert_eq!(memory.status, 424, "{}", memory.head);
    assert!(
        memory.head.contains("memory_bytes_per_minute"),
        "{}",
        memory.head
    );

    stop.store(true, Ordering::Relaxed);
    let (calls, worst) = benign.await.unwrap();
    let peak = proc_status_bytes(pid, "VmHWM:");
    eprintln!(
        "baseline RSS {} MiB, peak {} MiB; benign: {calls} calls, worst {worst:?}",
        baseline >> 20,
        peak >> 20
    );
    assert!(
        peak.saturating_sub(baseline) <= RSS_GROWTH_BOUND,
        "peak RSS {} MiB grew more than {} MiB over the baseline {} MiB",
        peak >> 20,
        RSS_GROWTH_BOUND >> 20,
        baseline >> 20
    );
    assert!(
        calls >= 5,
        "the benign session kept being served ({calls} calls)"
    );
    assert!(
        worst < Duration::from_secs(5),
        "benign worst latency {worst:?}"
    );

    // The dropped lines and span events are counted on the flooding
    // invocations' spans (the store receives them after the export delay).
    let flood_trace = stored_trace(
        dir.path(),
        &session("log-flood"),
        "corral.log.lines_dropped",
    )
    .await;
    assert!(
        flood_trace.contains("\"corral.log.lines_dropped\":199872"),
        "{flood_trace:.2000}"
    );
    // 1,000 small lines were kept; 128 of them are events on the span.
    let stop_trace = stored_trace(
        dir.path(),
        &session("log-flood-stop"),
        "corral.events.dropped",
    )
    .await;
    assert!(
        stop_trace.contains("\"corral.events.dropped\":872"),
        "{stop_trace:.2000}"
    );
}

/// The sandbox attacks of the Rust probe, from a Python agent
/// (componentize-py, CPython in the sandbox): files, directory listing,
/// environment and sockets are refused inside the guest; a busy loop ends
/// at the CPU limit and a memory bomb at the memory cap, each with a typed
/// error; a benign Python session beside them never fails, and the attacked
/// agent serves new sessions afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_python_agent_is_contained() {
    let dir = tempfile::tempdir().unwrap();
    let probe = corral_test_support::built_agent("runtime/test-guests/probe-py");
    let echo = corral_test_support::built_agent("examples/agents/echo-py");
    let served = serve_agents(
        dir.path(),
        &["--session-cpu-ms", "2000", "--session-memory-mib", "64"],
        &[
            ("probe_py", std::fs::read(probe).unwrap()),
            ("echo_py", std::fs::read(echo).unwrap()),
        ],
    )
    .await;
    let url = served.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let benign = benign_session(&url, "echo_py", stop.clone());
    let attack = |name: &'static str, request: Value| {
        let url = url.clone();
        async move { attack_agent(&url, "probe_py", &session(name), request).await }
    };

    for action in ["file", "listdir", "socket"] {
        let outcome = attack(action, json!({"action": action, "port": 22})).await;
        assert_eq!(outcome.status, 200, "{action}: {}", outcome.head);
        let body: Value = serde_json::from_str(&outcome.head).unwrap();
        assert!(body.get("leaked").is_none(), "{action} escaped: {body}");
        assert!(body["refused"].is_string(), "{action}: {body}");
    }
    let env = attack("env", json!({"action": "env"})).await;
    assert_eq!(env.head, r#"{"env": {}}"#, "no host environment leaks in");

    let spin = attack("loop", json!({"action": "loop"})).await;
    assert_ne!(spin.status, 200);
    assert!(spin.head.contains("CPU time limit of 2s"), "{}", spin.head);

    let bomb = attack("memory", json!({"action": "memory"})).await;
    assert_ne!(bomb.status, 200);
    assert!(bomb.head.contains("MemoryError"), "{}", bomb.head);

    // The attacked agent still serves a new session.
    let after = attack("after", json!({"action": "hello"})).await;
    assert_eq!(after.status, 200, "{}", after.head);
    assert!(
        after.head.contains(r#""echo": {"action": "hello"}"#),
        "{}",
        after.head
    );

    stop.store(true, Ordering::Relaxed);
    let (calls, worst) = benign.await.unwrap();
    assert!(
        calls >= 5,
        "the benign session kept being served ({calls} calls)"
    );
    assert!(
        worst < Duration::from_secs(5),
        "benign worst latency {worst:?}"
    );
}

/// `corral trace SESSION --json` once its output mentions `needle`.
async fn stored_trace(dir: &Path, session: &str, needle: &str) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        let output = Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["trace", session, "--json", "--data-dir"])
            .arg(dir.join("data"))
            .output()
            .unwrap();
        text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.contains(needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text
}
