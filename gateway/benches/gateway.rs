//! Gateway overhead: a tools/call round trip through the gateway (in process,
//! and over MCP streamable HTTP) against calling the same upstream HTTP API
//! directly, on loopback. Prints a table.
//!
//! `cargo bench -p corral-gateway --bench gateway`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use corral_gateway::{Caller, HttpOptions, router};
use corral_policy::Principal;
use hdrhistogram::Histogram;
use serde_json::json;

const ITERATIONS: usize = 5_000;
const CONCURRENCY: usize = 32;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn measure<F, Fut>(call: &F) -> Histogram<u64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..500 {
        call().await;
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        call().await;
        histogram
            .record(started.elapsed().as_nanos().max(1) as u64)
            .unwrap();
    }
    histogram
}

async fn throughput<F, Fut>(call: Arc<F>) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..ITERATIONS / CONCURRENCY {
                call().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (ITERATIONS / CONCURRENCY * CONCURRENCY) as f64 / started.elapsed().as_secs_f64()
}

fn us(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

struct Row {
    name: &'static str,
    histogram: Histogram<u64>,
    rate: f64,
}

async fn row<F, Fut>(name: &'static str, call: F) -> Row
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let histogram = measure(&call).await;
    let rate = throughput(Arc::new(call)).await;
    Row {
        name,
        histogram,
        rate,
    }
}

async fn run() {
    let upstream = common::Upstream::start().await;
    let gateway = common::gateway(common::standard_config(&upstream)).await;
    let app = router(gateway.clone(), HttpOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    let direct = {
        let client = client.clone();
        let url = format!("{}/v1/pets/1", upstream.url);
        row("upstream HTTP API called directly", move || {
            let request = client.get(&url).header("x-api-key", "pet-key");
            async move {
                let response = request.send().await.unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap();
            }
        })
        .await
    };
    let in_process = {
        let gateway = gateway.clone();
        row("in-process gateway (agent path)", move || {
            let gateway = gateway.clone();
            async move {
                let caller = Caller::new(Principal::IamEntity { id: "bench".into() });
                let output = gateway
                    .call_tool(&caller, "pets___getPet", json!({"petId": "1"}))
                    .await
                    .unwrap();
                assert!(!output.is_error);
            }
        })
        .await
    };
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "pets___getPet", "arguments": {"petId": "1"}}})
    .to_string();
    let over_mcp = {
        let client = client.clone();
        row("MCP streamable HTTP via gateway", move || {
            let request = client
                .post(&mcp_url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .body(body.clone());
            async move {
                let response = request.send().await.unwrap();
                assert!(response.status().is_success());
                let text = response.text().await.unwrap();
                assert!(text.contains("Rex"), "{text}");
            }
        })
        .await
    };

    println!(
        "\n| path | p50 | p99 | calls/s ({CONCURRENCY} concurrent) | overhead vs direct (p50) |"
    );
    println!("|---|---|---|---|---|");
    let base = us(&direct.histogram, 0.5);
    for (index, row) in [&direct, &in_process, &over_mcp].into_iter().enumerate() {
        let overhead = if index == 0 {
            "—".to_string()
        } else {
            format!("{:+.1} µs", us(&row.histogram, 0.5) - base)
        };
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.0} | {overhead} |",
            row.name,
            us(&row.histogram, 0.5),
            us(&row.histogram, 0.99),
            row.rate
        );
    }
}
