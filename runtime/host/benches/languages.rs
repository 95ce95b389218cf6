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
    for (language, bytes) in agents {
        let row = measure(language, &bytes, sessions).await;
        println!("{row}");
    }
}

async fn measure(language: &str, bytes: &[u8], sessions: usize) -> String {
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
    format!(
        "| {language} echo | {:.1} MiB | {:.1} s | {:.1} ms | {:.2} ms | {:.2} ms | {:.2} MiB | {:.2} MiB | {:.2} MiB | {rate:.0} |",
        bytes.len() as f64 / (1 << 20) as f64,
        compile.as_secs_f64(),
        load.as_secs_f64() * 1e3,
        ms(0.5),
        ms(0.99),
        private / (1 << 20) as f64,
        system / (1 << 20) as f64,
        rss / (1 << 20) as f64,
    )
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
        let kib = |text: &str, field: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").expect("smaps_rollup");
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
        Self {
            private: kib(&rollup, "Private_Clean:") + kib(&rollup, "Private_Dirty:"),
            used: kib(&meminfo, "MemTotal:").saturating_sub(kib(&meminfo, "MemAvailable:")),
            rss: kib(&rollup, "Rss:"),
        }
    }
}
