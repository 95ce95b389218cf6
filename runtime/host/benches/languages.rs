//! Agents in Rust, Python and JavaScript side by side: new-session latency
//! (instantiate + first trivial call), memory per idle session with 1,000
//! live sessions, and warm invocations/s of one session. Prints a table.
//!
//! `cargo bench -p corral-host --bench languages` (the Python and JS echo
//! agents are built with `.ci/test`'s toolchains; `CORRAL_BENCH_SESSIONS`
//! changes the 1,000; `CORRAL_BENCH_CORE_INSTANCES_PER_SANDBOX=4` sizes the
//! pool as before per-sandbox core-instance sizing, where the Python row
//! fails).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_host::{
    AgentHost, EngineConfig, HostServices, InvocationRequest, SessionConfig, SessionManager,
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
        .unwrap_or(1_000);
    let agents = [
        ("Rust", corral_examples::ECHO_AGENT.to_vec()),
        (
            "Python",
            std::fs::read(corral_test_support::built_agent("examples/agents/echo-py")).unwrap(),
        ),
        (
            "JavaScript",
            std::fs::read(corral_test_support::built_agent("examples/agents/echo-js")).unwrap(),
        ),
    ];
    println!(
        "\n| agent | component | compile | load precompiled | new session p50 | p99 | private memory per idle session ({sessions} live) | system memory per idle session | RSS per idle session | warm invocations/s (1 session) |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut rows = Vec::new();
    for (language, bytes) in agents {
        rows.push(measure(language, &bytes, sessions).await);
    }
    for row in &rows {
        println!("{}", row.line);
    }

    // Real peers: the same echo as a fresh interpreter process per session
    // (what running each session in its own process costs).
    let python = corral_test_support::ci_python("the Python peer");
    let command = |program: &std::path::Path, args: &[&str]| {
        let mut command = Command::new(program);
        command.args(args);
        command
    };
    let peers = [
        (
            "Python",
            command(
                &python,
                &[
                    "-c",
                    "import sys, json; sys.stdout.write(json.dumps(json.loads(sys.stdin.readline())))",
                ],
            ),
        ),
        (
            "JavaScript",
            command(
                std::path::Path::new("node"),
                &[
                    "-e",
                    "process.stdin.once('data', d => { process.stdout.write(JSON.stringify(JSON.parse(d))); process.exit(0); })",
                ],
            ),
        ),
    ];
    println!(
        "\n| peer: a fresh process per session | start + first echo p50 | p99 | private memory of an idle process | RSS | Corral session start, ratio | Corral private memory, ratio |\n|---|---|---|---|---|---|---|"
    );
    for (language, mut command) in peers {
        let (p50, p99) = process_start(&mut command);
        let (private, rss) = idle_process_memory(&mut command);
        let ours = rows.iter().find(|r| r.language == language).expect("row");
        println!(
            "| {language} ({}) | {:.1} ms | {:.1} ms | {:.1} MiB | {:.1} MiB | {:.2} ms, **{:.0}× faster** | {:.2} MiB, **{:.0}× less** |",
            command
                .get_program()
                .to_string_lossy()
                .rsplit('/')
                .next()
                .unwrap_or_default(),
            p50 * 1e3,
            p99 * 1e3,
            private / MIB,
            rss / MIB,
            ours.start_p50 * 1e3,
            p50 / ours.start_p50,
            ours.private / MIB,
            private / ours.private,
        );
    }
}

const MIB: f64 = (1 << 20) as f64;

/// p50 and p99 seconds of spawning `command`, sending one JSON line and
/// reading the echo until it exits.
fn process_start(command: &mut Command) -> (f64, f64) {
    let mut times = Vec::new();
    for i in 0..105 {
        let t = Instant::now();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn peer");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"{\"prompt\":\"ping\"}\n")
            .expect("write");
        let output = child.wait_with_output().expect("peer output");
        let echoed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("peer echo");
        assert_eq!(echoed["prompt"], "ping");
        if i >= 5 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

/// Private memory and RSS of `command` idle after starting (waiting for input).
fn idle_process_memory(command: &mut Command) -> (f64, f64) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn peer");
    std::thread::sleep(Duration::from_millis(500));
    let rollup =
        std::fs::read_to_string(format!("/proc/{}/smaps_rollup", child.id())).expect("rollup");
    let _ = child.kill();
    let _ = child.wait();
    let memory = Memory::parse(&rollup, "");
    (memory.private as f64, memory.rss as f64)
}

/// One agent's measurements.
struct Row {
    language: &'static str,
    /// New session p50, seconds.
    start_p50: f64,
    /// Private memory per idle session, bytes.
    private: f64,
    /// The table line.
    line: String,
}

async fn measure(language: &'static str, bytes: &[u8], sessions: usize) -> Row {
    let defaults = EngineConfig::default();
    let host = Arc::new(
        AgentHost::new(EngineConfig {
            max_instances: sessions as u32 + 64,
            core_instances_per_sandbox: std::env::var("CORRAL_BENCH_CORE_INSTANCES_PER_SANDBOX")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.core_instances_per_sandbox),
            ..defaults
        })
        .expect("engine"),
    );
    let started = Instant::now();
    let artifact = host.engine().precompile(bytes).expect("compile");
    let compile = started.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.cwasm");
    std::fs::write(&path, artifact).unwrap();
    let started = Instant::now();
    let agent = Arc::new(
        host.load_precompiled("echo", "digest", &path)
            .expect("load precompiled"),
    );
    let load = started.elapsed();
    let manager = Arc::new(SessionManager::new(
        host,
        HostServices::default(),
        SessionConfig {
            max_sessions: sessions + 64,
            ..SessionConfig::default()
        },
    ));

    // New session ready: instantiate + first trivial call, then stop.
    let mut new_session = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for i in 0..1_100 {
        let id = format!("cold-{i}");
        let t = Instant::now();
        let response = manager.invoke(&agent, request(&id)).await.expect("invoke");
        let elapsed = t.elapsed();
        assert!(response.new_session);
        if i >= 100 {
            let _ = new_session.record(elapsed.as_nanos().max(1) as u64);
        }
        manager.stop("echo", &id);
    }

    // Memory per idle session with `sessions` live ones.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = Memory::now();
    for i in 0..sessions {
        manager
            .invoke(&agent, request(&format!("idle-{i}")))
            .await
            .expect("invoke");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = Memory::now();
    assert_eq!(manager.live_sessions(), sessions);
    let private = after.private.saturating_sub(before.private) as f64 / sessions as f64;
    let rss = after.rss.saturating_sub(before.rss) as f64 / sessions as f64;
    let system = after.used.saturating_sub(before.used) as f64 / sessions as f64;
    manager.stop_all();

    // Warm invocations of one session.
    let iterations = 5_000;
    manager.invoke(&agent, request("warm")).await.expect("warm");
    let t = Instant::now();
    for _ in 0..iterations {
        manager
            .invoke(&agent, request("warm"))
            .await
            .expect("invoke");
    }
    let rate = iterations as f64 / t.elapsed().as_secs_f64();
    manager.stop_all();

    let ms = |q: f64| new_session.value_at_quantile(q) as f64 / 1e6;
    let line = format!(
        "| {language} echo | {:.1} MiB | {:.1} s | {:.1} ms | {:.2} ms | {:.2} ms | {:.2} MiB | {:.2} MiB | {:.2} MiB | {rate:.0} |",
        bytes.len() as f64 / (1 << 20) as f64,
        compile.as_secs_f64(),
        load.as_secs_f64() * 1e3,
        ms(0.5),
        ms(0.99),
        private / (1 << 20) as f64,
        system / (1 << 20) as f64,
        rss / (1 << 20) as f64,
    );
    Row {
        language,
        start_p50: ms(0.5) / 1e3,
        private,
        line,
    }
}

fn request(session: &str) -> InvocationRequest {
    InvocationRequest::new(session, b"{\"prompt\":\"ping\"}".to_vec())
}

/// Memory this process alone holds (private pages: what each new session
/// dirtied; copy-on-write image pages it only reads are shared and not in
/// it), the machine's used memory (`MemTotal - MemAvailable`), and RSS
/// (which counts a shared image page once per sandbox mapping it).
struct Memory {
    private: u64,
    used: u64,
    rss: u64,
}

impl Memory {
    fn now() -> Self {
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").expect("smaps_rollup");
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
        Self::parse(&rollup, &meminfo)
    }

    fn parse(rollup: &str, meminfo: &str) -> Self {
        let kib = |text: &str, field: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Self {
            private: kib(rollup, "Private_Clean:") + kib(rollup, "Private_Dirty:"),
            used: kib(meminfo, "MemTotal:").saturating_sub(kib(meminfo, "MemAvailable:")),
            rss: kib(rollup, "Rss:"),
        }
    }
}
