//! Tracing overhead: the assistant agent's step (one model call plus the
//! calculator tool through the in-process gateway) with tracing off, with
//! spans made but sent nowhere (the instrumentation's own cost), exported
//! over OTLP/gRPC to a local receiver, and with OTLP plus the local span
//! store. Prints a table: latency, and CPU time per step of Corral's threads
//! (the invocation threads over the recorded rounds plus the configuration's
//! span-sink workers; not the in-process receiver, which is the collector's
//! work), which varies less from run to run than latency on a shared 2-core
//! machine.
//!
//! `cargo bench -p corral-host --bench tracing` (`CORRAL_BENCH_INVOCATIONS`
//! sets invocations per configuration, default 8,000; `CORRAL_BENCH_ONLY`
//! picks configurations by row, e.g. `0,1`, to profile them alone).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_host::{
    AgentHost, CompiledAgent, EngineConfig, InvocationRequest, SessionConfig, SessionManager,
};
use corral_telemetry::receiver::OtlpReceiver;
use corral_telemetry::{OtlpConfig, OtlpProtocol, QueueConfig, Telemetry, TelemetryConfig};
use hdrhistogram::Histogram;
use tracing_subscriber::layer::SubscriberExt;

// The allocator the `corral` binary ships with: span attributes are many
// small allocations, which glibc's malloc serves slowly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Invocations per round and configuration; rounds alternate configurations
/// so drift (thermal, page cache) hits all of them alike.
const ROUND: usize = 100;

struct Setup {
    name: &'static str,
    telemetry: Option<Telemetry>,
    session: String,
    latencies: Histogram<u64>,
    steps: u64,
    invocations: u64,
    /// CPU time of the invocation threads over the recorded rounds.
    cpu_nanos: u64,
    /// This configuration's span-sink worker threads: their whole CPU time
    /// is added at the end (they deliver on a 1 s tick, so per-round
    /// readings would charge their work to whichever configuration runs).
    workers: Vec<std::path::PathBuf>,
}

/// The receiver's threads: a collector's work, left out of Corral's CPU time.
const RECEIVER_THREAD: &str = "otlp-receiver";

/// This process's threads.
fn threads() -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| tasks.flatten().map(|task| task.path()).collect())
        .unwrap_or_default()
}

/// Nanoseconds `thread` has run (the first field of its `schedstat`).
fn thread_cpu_nanos(thread: &std::path::Path) -> u64 {
    std::fs::read_to_string(thread.join("schedstat"))
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the threads that run invocations: all but the receiver's
/// and the span sinks' workers (those are counted per configuration, see
/// `Setup::workers`). Threads that exit between two readings are not
/// counted; the bench's threads live as long as it does.
fn invocation_cpu_nanos() -> u64 {
    threads()
        .iter()
        .filter(|thread| {
            std::fs::read_to_string(thread.join("comm")).is_ok_and(|comm| {
                !comm.starts_with(RECEIVER_THREAD) && !comm.starts_with("corral-spans")
            })
        })
        .map(|thread| thread_cpu_nanos(thread))
        .sum()
}

fn main() {
    let invocations: usize = std::env::var("CORRAL_BENCH_INVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8_000);
    // The receiver answers on its own runtime, as a collector would.
    let receiver_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(RECEIVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let receiver = receiver_runtime.block_on(OtlpReceiver::grpc()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let otlp = OtlpConfig {
        endpoint: receiver.endpoint(),
        protocol: OtlpProtocol::Grpc,
        headers: Default::default(),
        timeout: Duration::from_secs(10),
    };
    let mut setups = vec![
        setup("tracing off", None),
        setup("spans made, no sink", Some(TelemetryConfig::disabled())),
        setup(
            "OTLP/gRPC to a local receiver",
            Some(TelemetryConfig {
                otlp: Some(otlp.clone()),
                queue: QueueConfig::default(),
                ..TelemetryConfig::disabled()
            }),
        ),
        setup(
            "OTLP/gRPC + local span store",
            Some(TelemetryConfig {
                otlp: Some(otlp),
                local_store: Some(store.path().to_path_buf()),
                ..TelemetryConfig::disabled()
            }),
        ),
    ];

    // `CORRAL_BENCH_ONLY=1,2` keeps those configurations (by row, from 0),
    // e.g. to profile one of them alone.
    if let Ok(only) = std::env::var("CORRAL_BENCH_ONLY") {
        let keep: Vec<usize> = only
            .split(',')
            .filter_map(|i| i.trim().parse().ok())
            .collect();
        setups = setups
            .into_iter()
            .enumerate()
            .filter_map(|(row, setup)| keep.contains(&row).then_some(setup))
            .collect();
    }
    // Agent calls run on one current-thread runtime so each configuration's
    // subscriber (a thread-local default) sees every span.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (manager, agent) = runtime.block_on(assistant());
    for setup in &mut setups {
        run_round(&runtime, &manager, &agent, setup, 200, false);
    }
    for _ in 0..invocations.div_ceil(ROUND) {
        for setup in &mut setups {
            run_round(&runtime, &manager, &agent, setup, ROUND, true);
        }
    }

    let worker_nanos: Vec<u64> = setups
        .iter()
        .map(|setup| setup.workers.iter().map(|t| thread_cpu_nanos(t)).sum())
        .collect();
    for (setup, workers) in setups.iter_mut().zip(&worker_nanos) {
        setup.cpu_nanos += workers;
    }
    let base = setups[0].latencies.value_at_quantile(0.5) as f64 / steps_per(&setups[0]);
    let base_cpu = cpu_per_step(&setups[0]);
    println!();
    println!(
        "| configuration | invocation p50 | invocation p99 | step p50 | step overhead | CPU per step, Corral's threads | of which sink workers | CPU overhead |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (setup, workers) in setups.iter().zip(&worker_nanos) {
        let per = steps_per(setup);
        let p50 = setup.latencies.value_at_quantile(0.5) as f64;
        let p99 = setup.latencies.value_at_quantile(0.99) as f64;
        let step = p50 / per;
        let cpu = cpu_per_step(setup);
        let overhead = |value: f64, base: f64| {
            if setup.telemetry.is_none() {
                "—".to_string()
            } else {
                format!("{:+.1}%", (value / base - 1.0) * 100.0)
            }
        };
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.1} µs | {} | {:.1} µs | {:.1} µs | {} |",
            setup.name,
            p50 / 1e3,
            p99 / 1e3,
            step / 1e3,
            overhead(step, base),
            cpu / 1e3,
            *workers as f64 / setup.steps.max(1) as f64 / 1e3,
            overhead(cpu, base_cpu),
        );
    }
    let spans = receiver.span_count();
    let stats = corral_telemetry::export_stats();
    for setup in setups {
        if let Some(telemetry) = setup.telemetry {
            telemetry.shutdown();
        }
    }
    println!(
        "\nall configurations: OTLP exported {}, dropped {}, failed requests {}; store exported {}, dropped {}; the receiver holds {spans} spans",
        stats.otlp.exported,
        stats.otlp.dropped,
        stats.otlp.failed_exports,
        stats.store.exported,
        stats.store.dropped
    );
}

fn setup(name: &'static str, config: Option<TelemetryConfig>) -> Setup {
    let before = threads();
    let telemetry = config.map(|c| Telemetry::start(&c).unwrap());
    let workers = threads()
        .into_iter()
        .filter(|thread| !before.contains(thread))
        .collect();
    Setup {
        name,
        telemetry,
        workers,
        session: format!("bench-{}", name.replace(' ', "-")),
        latencies: Histogram::new(3).unwrap(),
        steps: 0,
        invocations: 0,
        cpu_nanos: 0,
    }
}

/// Nanoseconds of CPU per step over the recorded rounds.
fn cpu_per_step(setup: &Setup) -> f64 {
    setup.cpu_nanos as f64 / setup.steps.max(1) as f64
}

fn steps_per(setup: &Setup) -> f64 {
    setup.steps as f64 / setup.invocations.max(1) as f64
}

fn run_round(
    runtime: &tokio::runtime::Runtime,
    manager: &SessionManager,
    agent: &Arc<CompiledAgent>,
    setup: &mut Setup,
    count: usize,
    record: bool,
) {
    let subscriber = setup
        .telemetry
        .as_ref()
        .map(|t| tracing_subscriber::registry().with(t.layer()));
    let _default = subscriber.map(tracing::subscriber::set_default);
    let cpu_before = invocation_cpu_nanos();
    runtime.block_on(async {
        for _ in 0..count {
            let request = InvocationRequest::new(
                setup.session.as_str(),
                br#"{"prompt": "What is (17 * 23) + 4?"}"#.to_vec(),
            );
            let started = Instant::now();
            let response = manager.invoke(agent, request).await.unwrap();
            let elapsed = started.elapsed();
            assert_eq!(response.stats.tool_calls, 1);
            if record {
                setup.latencies.record(elapsed.as_nanos() as u64).unwrap();
                setup.steps += u64::from(response.stats.model_calls);
                setup.invocations += 1;
            }
        }
    });
    if record {
        setup.cpu_nanos += invocation_cpu_nanos().saturating_sub(cpu_before);
    }
}

async fn assistant() -> (SessionManager, Arc<CompiledAgent>) {
    let host = Arc::new(AgentHost::new(EngineConfig::default()).unwrap());
    let services = common::assistant_services(&host).await;
    let agent = Arc::new(
        host.compile("assistant", corral_examples::ASSISTANT_AGENT)
            .unwrap(),
    );
    let manager = SessionManager::new(host, services, SessionConfig::default());
    (manager, agent)
}
