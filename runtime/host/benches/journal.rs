//! Journaling overhead: the assistant's two-step invocation (scripted model
//! and the calculator WASM tool through the in-process gateway) with and
//! without a session journal on disk (sled in a temporary directory, each
//! invocation durable before it returns), in alternating rounds of sessions
//! of 10 invocations. Prints a table.
//!
//! `cargo bench -p corral-host --bench journal` (`CORRAL_BENCH_SESSIONS`
//! rounds per configuration, default 200).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_host::{
    AgentHost, CompiledAgent, EngineConfig, GatewayTools, HostServices, InvocationRequest,
    SessionConfig, SessionManager,
};
use corral_journal::{JournalConfig, JournalStore};
use corral_model::ScriptedModel;
use hdrhistogram::Histogram;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TURNS: usize = 10;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::var("CORRAL_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn corral_storage::Storage> =
        Arc::new(corral_storage::SledStorage::open(dir.path()).unwrap());
    let journal = JournalStore::new(
        storage,
        JournalConfig {
            max_bytes_per_session: u64::MAX,
            ..JournalConfig::default()
        },
    );
    let host = Arc::new(AgentHost::new(EngineConfig::default()).unwrap());
    let agent = Arc::new(
        host.compile("assistant", corral_examples::ASSISTANT_AGENT)
            .unwrap(),
    );
    let plain = manager(&host, SessionConfig::default()).await;
    let journaled = manager(
        &host,
        SessionConfig {
            journal: Some(journal.clone()),
            ..SessionConfig::default()
        },
    )
    .await;

    let mut off = Histogram::<u64>::new(3).unwrap();
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
        run(
            &journaled,
            &agent,
            &format!("journaled-{round}"),
            record.then_some(&mut on),
        )
        .await;
    }
    let steps_per_invocation = steps as f64 / ((rounds + 5) * TURNS) as f64;
    let sessions = journal.sessions().unwrap();
    let bytes: u64 = sessions.iter().map(|s| s.bytes).sum();
    let entries: u64 = sessions.iter().map(|s| s.entries).sum();
    let invocations = (sessions.len() * TURNS) as f64;
    let p = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    let step = |h: &Histogram<u64>| p(h, 0.5) / steps_per_invocation;
    println!(
        "\n| configuration | invocation p50 | p99 | step p50 | added per step |\n|---|---|---|---|---|"
    );
    println!(
        "| not journaled | {:.1} µs | {:.1} µs | {:.1} µs | — |",
        p(&off, 0.5),
        p(&off, 0.99),
        step(&off)
    );
    println!(
        "| journaled (sled, durable per invocation) | {:.1} µs | {:.1} µs | {:.1} µs | {:+.1} µs ({:+.1}%) |",
        p(&on, 0.5),
        p(&on, 0.99),
        step(&on),
        step(&on) - step(&off),
        (step(&on) / step(&off) - 1.0) * 100.0
    );
    println!(
        "\njournal: {:.0} bytes and {:.1} entries per invocation ({:.0} bytes per step), {} sessions of {TURNS} turns",
        bytes as f64 / invocations,
        entries as f64 / invocations,
        bytes as f64 / invocations / steps_per_invocation,
        sessions.len()
    );
}

async fn manager(host: &Arc<AgentHost>, config: SessionConfig) -> SessionManager {
    let gateway = Gateway::new(
        GatewayConfig::builtin_tools(&["calculator"]).unwrap(),
        GatewayOptions {
            engine: Some(host.engine().clone()),
            ..GatewayOptions::default()
        },
    )
    .await
    .unwrap();
    let model = ScriptedModel::from_toml(corral_examples::ASSISTANT_SCRIPT).unwrap();
    let services =
        HostServices::new(Arc::new(model)).with_tools(Arc::new(GatewayTools::new(gateway)));
    SessionManager::new(host.clone(), services, config)
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
    manager.stop_all();
    steps
}
