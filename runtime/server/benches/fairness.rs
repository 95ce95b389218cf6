//! CPU fairness: latency of a benign session (the `echo` agent invoked every
//! 20 ms over loopback HTTP) with no other load, then while four hostile
//! guests spin at once on the machine's cores, for three server set-ups:
//! guests on the I/O runtime with 10 ms time slices (Corral before the
//! dedicated guest executor), the same with 1 ms slices, guests on their own
//! threads with 1 ms slices, and the same with each invocation starting on
//! the I/O thread for up to 200 µs of CPU (`corral serve`'s default). Prints
//! a table.
//!
//! `cargo bench -p corral-server --bench fairness`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corral_host::{EngineConfig, SandboxLimits, SessionConfig};
use corral_server::SESSION_HEADER;
use hdrhistogram::Histogram;

const SAMPLES: usize = 250;
const PERIOD: Duration = Duration::from_millis(20);
const SPINNERS: usize = 4;

struct Setup {
    name: &'static str,
    epoch_tick: Duration,
    guest_threads: usize,
    inline_budget: Duration,
}

async fn start(setup: &Setup, dir: &std::path::Path) -> (String, corral_server::LoopbackStop) {
    common::serve(
        EngineConfig {
            epoch_tick: setup.epoch_tick,
            ..EngineConfig::default()
        },
        SessionConfig {
            guest_threads: setup.guest_threads,
            guest_inline_budget: setup.inline_budget,
            limits: SandboxLimits {
                cpu_time: Duration::from_secs(2),
                ..SandboxLimits::default()
            },
            ..SessionConfig::default()
        },
        dir,
        &[
            ("echo", corral_examples::ECHO_AGENT),
            ("probe", corral_test_guests::SANDBOX_PROBE),
        ],
    )
    .await
}

/// `SAMPLES` invocations of one benign session, one every `PERIOD`.
async fn benign(client: &reqwest::Client, url: &str) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    let session = format!("benign-session-{:032}", 0);
    let mut tick = tokio::time::interval(PERIOD);
    for _ in 0..SAMPLES {
        tick.tick().await;
        let started = Instant::now();
        let response = client
            .post(format!("{url}/runtimes/echo/invocations"))
            .header(SESSION_HEADER, &session)
            .body(r#"{"prompt":"ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        histogram
            .record(started.elapsed().as_nanos() as u64)
            .unwrap();
    }
    histogram
}

/// Keeps `SPINNERS` guests spinning (each until its CPU limit, then a fresh
/// one) until `stop` is set.
fn spinners(
    client: &reqwest::Client,
    url: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..SPINNERS)
        .map(|i| {
            let (client, url, stop) = (client.clone(), url.to_string(), stop.clone());
            tokio::spawn(async move {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let response = client
                        .post(format!("{url}/runtimes/probe/invocations"))
                        .header(SESSION_HEADER, format!("spinner-{i}-{round:040}"))
                        .body(r#"{"action":"spin"}"#)
                        .send()
                        .await
                        .unwrap();
                    // The CPU limit ends the spin with a typed error.
                    assert_eq!(response.status(), 424);
                }
            })
        })
        .collect()
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let setups = [
        Setup {
            name: "guests on the I/O threads, 10 ms slices (before)",
            epoch_tick: Duration::from_millis(10),
            guest_threads: 0,
            inline_budget: Duration::ZERO,
        },
        Setup {
            name: "guests on the I/O threads, 1 ms slices",
            epoch_tick: Duration::from_millis(1),
            guest_threads: 0,
            inline_budget: Duration::ZERO,
        },
        Setup {
            name: "dedicated guest threads, 1 ms slices",
            epoch_tick: Duration::from_millis(1),
            guest_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            inline_budget: Duration::ZERO,
        },
        Setup {
            name: "dedicated guest threads after 200 µs inline, 1 ms slices (default)",
            epoch_tick: Duration::from_millis(1),
            guest_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            inline_budget: SessionConfig::default().guest_inline_budget,
        },
    ];
    println!(
        "benign echo session, {SAMPLES} invocations every {} ms; {SPINNERS} guests spinning on {} cores",
        PERIOD.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| server | idle p50 | idle p99 | loaded p50 | loaded p99 | loaded max | p99 loaded / idle |"
    );
    println!("|---|---|---|---|---|---|---|");
    for setup in &setups {
        let dir = tempfile::tempdir().unwrap();
        let (url, stop_server) = start(setup, dir.path()).await;
        let client = reqwest::Client::new();
        // Warm the benign session (its first call instantiates the sandbox).
        benign_warmup(&client, &url).await;
        let idle = benign(&client, &url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = spinners(&client, &url, &stop);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let loaded = benign(&client, &url).await;
        stop.store(true, Ordering::Relaxed);
        for task in spinning {
            task.await.unwrap();
        }
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} ms | {:.1}× |",
            setup.name,
            ms(&idle, 0.5),
            ms(&idle, 0.99),
            ms(&loaded, 0.5),
            ms(&loaded, 0.99),
            loaded.max() as f64 / 1e6,
            ms(&loaded, 0.99) / ms(&idle, 0.99).max(0.001),
        );
        stop_server.stop().await;
    }
}

async fn benign_warmup(client: &reqwest::Client, url: &str) {
    for _ in 0..10 {
        let response = client
            .post(format!("{url}/runtimes/echo/invocations"))
            .header(SESSION_HEADER, format!("benign-session-{:032}", 0))
            .body(r#"{"prompt":"ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}
