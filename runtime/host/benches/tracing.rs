//! Tracing overhead: the assistant agent's step (one model call plus the
//! calculator tool through the in-process gateway) with tracing off, with
//! spans only in `tracing-subscriber`'s registry (what any `tracing` layer
//! pays before recording anything), with a no-op layer behind the per-layer
//! filter Corral's layer uses, with Corral's spans made but sent nowhere
//! (the instrumentation's own cost), exported over OTLP/gRPC to a local
//! receiver, with OTLP plus the local span store, and with the store alone
//! (what `corral serve` runs by default). Prints a table: latency, and CPU
//! time per step of Corral's threads (the invocation threads over the
//! recorded rounds plus the configuration's span-sink workers), which
//! varies less from run to run than latency on a shared 2-core machine.
//!
//! The receiver stands in for a collector (Jaeger, an OpenTelemetry
//! Collector), so it runs as a process of its own on the same 2 cores: this
//! bench re-executed with `CORRAL_TRACING_BENCH_RECEIVER_PROCESS` set. It decodes every
//! request, as a collector must.
//!
//! `cargo bench -p corral-host --bench tracing` (`CORRAL_BENCH_INVOCATIONS`
//! sets invocations per configuration, default 8,000; `CORRAL_BENCH_ONLY`
//! picks configurations by row, e.g. `0,3`, to profile them alone).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_host::{
    AgentHost, CompiledAgent, EngineConfig, InvocationRequest, SessionConfig, SessionManager,
};
use corral_telemetry::receiver::OtlpReceiver;
use corral_telemetry::{OtlpConfig, OtlpProtocol, QueueConfig, Telemetry, TelemetryConfig};
use hdrhistogram::Histogram;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

// The allocator the `corral` binary ships with: span attributes are many
// small allocations, which glibc's malloc serves slowly.
#[global_allocator]
static ALLOCATOR: Counting = Counting(mimalloc::MiMalloc);

thread_local! {
    /// Allocations this thread has made so far. Per thread, so the sink
    /// workers of other configurations (which deliver on their own tick)
    /// are not charged to the configuration that runs.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts an allocation on this thread (not during the thread's teardown).
fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

/// Allocations this thread has made so far.
fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// mimalloc, counting allocations (what a span's recording costs is mostly
/// how much it allocates and touches).
struct Counting(mimalloc::MiMalloc);

// A global allocator can only be written with `unsafe`.
// SAFETY: every call is forwarded unchanged to mimalloc.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Invocations per round and configuration; rounds alternate configurations
/// so drift (thermal, page cache) hits all of them alike.
const ROUND: usize = 100;

/// What records the spans of one configuration.
enum Spans {
    /// No subscriber: spans are disabled at their call sites.
    Off,
    /// `tracing-subscriber`'s registry with no layer: the floor any
    /// `tracing` layer starts from.
    RegistryOnly,
    /// A layer that records nothing, behind the per-layer filter Corral's
    /// layer uses: what the filter's bookkeeping adds to the registry.
    FilteredNoop,
    /// Corral's telemetry pipeline.
    Corral(Telemetry),
}

struct Setup {
    name: &'static str,
    spans: Spans,
    session: String,
    latencies: Histogram<u64>,
    steps: u64,
    invocations: u64,
    /// CPU time of the invocation threads over the recorded rounds.
    cpu_nanos: u64,
    /// Allocations (and reallocations) over the recorded rounds, on the
    /// thread that runs the invocations (the bench's one runtime thread).
    allocations: u64,
    /// This configuration's span-sink worker threads: their whole CPU time
    /// is added at the end (they deliver on a 1 s tick, so per-round
    /// readings would charge their work to whichever configuration runs).
    workers: Vec<std::path::PathBuf>,
}

/// Set in the environment of the receiver's process.
const RECEIVER_PROCESS: &str = "CORRAL_TRACING_BENCH_RECEIVER_PROCESS";

/// The OTLP/gRPC receiver, a process of its own as a collector would be.
struct ReceiverProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    endpoint: String,
}

impl ReceiverProcess {
    /// Starts this bench again as a receiver and reads its endpoint.
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(RECEIVER_PROCESS, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut endpoint = String::new();
        stdout.read_line(&mut endpoint).unwrap();
        let endpoint = endpoint.trim().to_string();
        assert!(
            endpoint.starts_with("http://"),
            "receiver said {endpoint:?}"
        );
        Self {
            child,
            stdin,
            stdout,
            endpoint,
        }
    }

    /// Spans the receiver has decoded so far.
    fn span_count(&mut self) -> usize {
        writeln!(self.stdin, "count").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().parse().unwrap()
    }
}

impl Drop for ReceiverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The receiver process: prints its endpoint, answers each `count` line on
/// stdin with the spans decoded so far, and exits when stdin closes.
fn serve_receiver() {
    // One worker thread answers requests, as a small collector would.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let receiver = runtime.block_on(OtlpReceiver::grpc()).unwrap();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", receiver.endpoint()).unwrap();
    stdout.flush().unwrap();
    for line in std::io::stdin().lines() {
        if line.unwrap().trim() == "count" {
            writeln!(stdout, "{}", receiver.span_count()).unwrap();
            stdout.flush().unwrap();
        }
    }
}

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

/// CPU time of the threads that run invocations: all but the span sinks'
/// workers (those are counted per configuration, see `Setup::workers`).
/// Threads that exit between two readings are not counted; the bench's
/// threads live as long as it does.
fn invocation_cpu_nanos() -> u64 {
    threads()
        .iter()
        .filter(|thread| {
            std::fs::read_to_string(thread.join("comm"))
                .is_ok_and(|comm| !comm.starts_with("corral-spans"))
        })
        .map(|thread| thread_cpu_nanos(thread))
        .sum()
}

fn main() {
    if std::env::var_os(RECEIVER_PROCESS).is_some() {
        return serve_receiver();
    }
    let invocations: usize = std::env::var("CORRAL_BENCH_INVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8_000);
    let mut receiver = ReceiverProcess::start();
    let store = tempfile::tempdir().unwrap();
    let store_only = tempfile::tempdir().unwrap();
    let otlp = OtlpConfig {
        endpoint: receiver.endpoint.clone(),
        protocol: OtlpProtocol::Grpc,
        headers: Default::default(),
        timeout: Duration::from_secs(10),
    };
    let mut setups = vec![
        setup("tracing off", || Spans::Off),
        setup("spans in the registry only", || Spans::RegistryOnly),
        setup("a no-op layer behind Corral's filter", || {
            Spans::FilteredNoop
        }),
        setup(
            "spans made, no sink",
            || corral(TelemetryConfig::disabled()),
        ),
        setup("OTLP/gRPC to a local receiver", || {
            corral(TelemetryConfig {
                otlp: Some(otlp.clone()),
                queue: QueueConfig::default(),
                ..TelemetryConfig::disabled()
            })
        }),
        setup("OTLP/gRPC + local span store", || {
            corral(TelemetryConfig {
                otlp: Some(otlp.clone()),
                local_store: Some(store.path().to_path_buf()),
                ..TelemetryConfig::disabled()
            })
        }),
        setup("local span store only (`corral serve`'s default)", || {
            corral(TelemetryConfig {
                local_store: Some(store_only.path().to_path_buf()),
                ..TelemetryConfig::disabled()
            })
        }),
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
        "| configuration | invocation p50 | invocation p99 | step p50 | step overhead | CPU per step, Corral's threads | of which sink workers | CPU overhead | allocations per step |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (setup, workers) in setups.iter().zip(&worker_nanos) {
        let per = steps_per(setup);
        let p50 = setup.latencies.value_at_quantile(0.5) as f64;
        let p99 = setup.latencies.value_at_quantile(0.99) as f64;
        let step = p50 / per;
        let cpu = cpu_per_step(setup);
        let overhead = |value: f64, base: f64| {
            if matches!(setup.spans, Spans::Off) {
                "—".to_string()
            } else {
                format!("{:+.1}%", (value / base - 1.0) * 100.0)
            }
        };
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.1} µs | {} | {:.1} µs | {:.1} µs | {} | {:.0} |",
            setup.name,
            p50 / 1e3,
            p99 / 1e3,
            step / 1e3,
            overhead(step, base),
            cpu / 1e3,
            *workers as f64 / setup.steps.max(1) as f64 / 1e3,
            overhead(cpu, base_cpu),
            setup.allocations as f64 / setup.steps.max(1) as f64,
        );
    }
    for setup in setups {
        if let Spans::Corral(telemetry) = setup.spans {
            telemetry.shutdown();
        }
    }
    let stats = corral_telemetry::export_stats();
    let spans = receiver.span_count();
    println!(
        "\nall configurations: OTLP exported {}, dropped {}, failed requests {}; store exported {}, dropped {}; the receiver holds {spans} spans",
        stats.otlp.exported,
        stats.otlp.dropped,
        stats.otlp.failed_exports,
        stats.store.exported,
        stats.store.dropped
    );
}

/// A layer that does nothing.
struct Noop;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {}

/// Corral's pipeline configured by `config`.
fn corral(config: TelemetryConfig) -> Spans {
    Spans::Corral(Telemetry::start(&config).unwrap())
}

fn setup(name: &'static str, start: impl FnOnce() -> Spans) -> Setup {
    let before = threads();
    let spans = start();
    let workers = threads()
        .into_iter()
        .filter(|thread| !before.contains(thread))
        .collect();
    Setup {
        name,
        spans,
        workers,
        session: format!("bench-{}", name.replace(' ', "-")),
        latencies: Histogram::new(3).unwrap(),
        steps: 0,
        invocations: 0,
        cpu_nanos: 0,
        allocations: 0,
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
    let dispatch = match &setup.spans {
        Spans::Off => None,
        Spans::RegistryOnly => Some(tracing::Dispatch::new(tracing_subscriber::registry())),
        Spans::FilteredNoop => Some(tracing::Dispatch::new(
            tracing_subscriber::registry().with(Noop.with_filter(corral_telemetry::span_filter())),
        )),
        Spans::Corral(telemetry) => Some(tracing::Dispatch::new(
            tracing_subscriber::registry().with(telemetry.layer()),
        )),
    };
    let _default = dispatch.as_ref().map(tracing::dispatcher::set_default);
    let cpu_before = invocation_cpu_nanos();
    let allocations_before = allocations();
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
        setup.allocations += allocations().saturating_sub(allocations_before);
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
