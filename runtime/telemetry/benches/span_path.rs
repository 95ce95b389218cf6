//! The span path alone: one invocation-shaped tree of Corral's spans (the
//! shape `corral-host` makes for the assistant agent: `invoke_agent` with a
//! session, two steps, two `chat` spans with their three late attributes, an
//! `execute_tool` with the gateway's attributes, a failing memory call),
//! made in a loop under each subscriber configuration. Low-noise where the
//! tracing bench (`corral-host`'s `tracing`) is not, for working on the
//! span path itself.
//!
//! The tree is made two ways: as the host makes it, with
//! [`DirectSpan`]s, and as the same `tracing` spans (what the host made
//! before), to show what the registry and the layer cost.
//!
//! Two variants: warm (the loop alone: caches hold everything) and evicted
//! (1 MiB written between operations, as a sandbox's work between host
//! calls does). Both print each configuration's time over tracing off's in
//! the same variant.
//!
//! `cargo bench -p corral-telemetry --bench span_path`
//! (`CORRAL_BENCH_TREES` sets trees per configuration, default 20,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use std::future::Future;
use std::task::{Poll, Waker};

use corral_telemetry::{
    Context, DirectSpan, KeyValue, OpenTelemetrySpanExt, Telemetry, TelemetryConfig, record_error,
    span_filter,
};
use tracing::field::Empty;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

// The allocator the `corral` binary ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Spans in one tree.
const SPANS: u32 = 7;

/// Bytes written between operations in the evicted variant: a core's L2.
const EVICT_BYTES: usize = 1 << 20;

/// A layer that does nothing.
struct Noop;

impl<S: tracing::Subscriber> Layer<S> for Noop {}

/// Stands in for the work between host calls: in the evicted variant it
/// writes over a buffer the size of a core's L2.
struct Between(Option<Vec<u8>>);

impl Between {
    fn run(&mut self) {
        if let Some(buffer) = &mut self.0 {
            let seed = buffer[0].wrapping_add(1);
            for (i, byte) in buffer.iter_mut().enumerate().step_by(64) {
                *byte = seed.wrapping_add(i as u8);
            }
            black_box(&buffer);
        }
    }
}

/// Polls `future` once, as an executor would (every future here is ready).
fn poll_once(future: impl Future<Output = ()>) {
    let future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(Waker::noop());
    let polled = future.poll(&mut cx);
    debug_assert!(matches!(polled, Poll::Ready(())));
}

/// A model or tool call's direct span under `step`, as the host makes it:
/// opened with `opened`, the call's work run in its scope, then `result`
/// recorded; it ends when it drops, here.
async fn call_span(
    step: &DirectSpan,
    name: &str,
    opened: [KeyValue; 3],
    result: [KeyValue; 3],
    between: &mut Between,
) {
    let span = step.child(|| (name.to_string().into(), opened.into()));
    span.in_scope(async { between.run() }).await;
    span.set_attributes(result);
}

/// One invocation's spans, as the host makes them: direct spans.
fn direct_tree(between: &mut Between) {
    let root = DirectSpan::in_current(|| {
        (
            "invoke_agent assistant".into(),
            vec![
                KeyValue::new("gen_ai.operation.name", "invoke_agent"),
                KeyValue::new("gen_ai.agent.name", "assistant"),
                KeyValue::new("gen_ai.agent.version", "1.0.0".to_string()),
                KeyValue::new("corral.actor.id", "default".to_string()),
                KeyValue::new(
                    "corral.request.id",
                    "0b7f2c4e-5d1a-4f3e-9c2b-8a6d4e1f3c5b".to_string(),
                ),
            ],
        )
    });
    root.set_session("bench-session");
    poll_once(root.in_scope(async {
        for number in 1..=2_u32 {
            between.run();
            let step = root.child(|| {
                (
                    format!("step {number}").into(),
                    vec![KeyValue::new("corral.step", i64::from(number))],
                )
            });
            call_span(
                &step,
                "chat corral.scripted",
                [
                    KeyValue::new("gen_ai.operation.name", "chat"),
                    KeyValue::new("gen_ai.provider.name", "corral.scripted".to_string()),
                    KeyValue::new("gen_ai.request.model", "corral.scripted".to_string()),
                ],
                [
                    KeyValue::new("gen_ai.response.finish_reasons", "tool_use"),
                    KeyValue::new("gen_ai.usage.input_tokens", 120_i64),
                    KeyValue::new("gen_ai.usage.output_tokens", 24_i64),
                ],
                between,
            )
            .await;
            if number == 1 {
                call_span(
                    &step,
                    "execute_tool calculator___evaluate",
                    [
                        KeyValue::new("gen_ai.operation.name", "execute_tool"),
                        KeyValue::new("gen_ai.tool.name", "calculator___evaluate".to_string()),
                        KeyValue::new("gen_ai.tool.call.id", "tooluse_1".to_string()),
                    ],
                    [
                        KeyValue::new("corral.gateway.target", "calculator"),
                        KeyValue::new("corral.gateway.target_type", "wasm"),
                        KeyValue::new("corral.policy.decision", "allow"),
                    ],
                    between,
                )
                .await;
            } else {
                let memory = step.child(|| {
                    (
                        "memory.create_event".into(),
                        vec![
                            KeyValue::new("corral.memory.operation", "memory.create_event"),
                            KeyValue::new("corral.memory.namespace", String::new()),
                            KeyValue::new("corral.actor.id", "default".to_string()),
                        ],
                    )
                });
                memory.set_attribute("memory.operation.count", 2_i64);
                memory.in_scope(async { between.run() }).await;
                memory.record_error("not_configured", "NotConfigured".into());
            }
        }
    }));
    root.set_attribute("corral.session.new", false);
}

/// The same spans as `tracing` spans, as the host made them before.
fn tree(between: &mut Between) {
    let root = tracing::info_span!(
        target: "corral_host::manager",
        "invoke_agent",
        otel.name = "invoke_agent assistant",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "assistant",
        gen_ai.agent.version = "1.0.0",
        session.id = "bench-session",
        gen_ai.conversation.id = "bench-session",
        corral.actor.id = "default",
        corral.request.id = "0b7f2c4e-5d1a-4f3e-9c2b-8a6d4e1f3c5b",
        corral.session.new = Empty,
    );
    if !root.is_disabled() {
        root.set_session_parent(Context::new(), "bench-session");
    }
    let _root = root.enter();
    for number in 1..=2_u32 {
        between.run();
        let step = tracing::info_span!(
            target: "corral_host::state",
            parent: &root,
            "agent.step",
            otel.name = if number == 1 { "step 1" } else { "step 2" },
            corral.step = number,
        );
        let chat = tracing::info_span!(
            target: "corral_host::imports::model",
            parent: &step,
            "chat",
            otel.name = "chat corral.scripted",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = "corral.scripted",
            gen_ai.request.model = "corral.scripted",
            session.id = "bench-session",
            gen_ai.conversation.id = "bench-session",
            error.type = Empty,
        );
        chat.in_scope(|| between.run());
        chat.set_attributes([
            KeyValue::new("gen_ai.response.finish_reasons", "tool_use"),
            KeyValue::new("gen_ai.usage.input_tokens", 120_i64),
            KeyValue::new("gen_ai.usage.output_tokens", 24_i64),
        ]);
        drop(chat);
        if number == 1 {
            let tool = tracing::info_span!(
                target: "corral_host::imports::tools",
                parent: &step,
                "execute_tool",
                otel.name = "execute_tool calculator___evaluate",
                gen_ai.operation.name = "execute_tool",
                gen_ai.tool.name = "calculator___evaluate",
                gen_ai.tool.call.id = "tooluse_1",
                session.id = "bench-session",
                gen_ai.conversation.id = "bench-session",
                error.type = Empty,
            );
            tool.in_scope(|| between.run());
            tool.set_attributes([
                KeyValue::new("corral.gateway.target", "calculator"),
                KeyValue::new("corral.gateway.target_type", "wasm"),
                KeyValue::new("corral.policy.decision", "allow"),
            ]);
        } else {
            let memory = tracing::info_span!(
                target: "corral_host::imports::memory",
                parent: &step,
                "memory",
                otel.name = "memory.create_event",
                corral.memory.operation = "memory.create_event",
                corral.memory.namespace = "",
                corral.actor.id = "default",
                memory.operation.count = Empty,
            );
            memory.record("memory.operation.count", 2_u64);
            memory.in_scope(|| between.run());
            record_error(&memory, "not_configured", "NotConfigured");
        }
    }
    root.record("corral.session.new", false);
}

/// Nanoseconds per tree made by `make` under `dispatch` (none: tracing
/// off).
fn measure(
    dispatch: Option<&tracing::Dispatch>,
    make: fn(&mut Between),
    between: &mut Between,
    trees: u32,
) -> f64 {
    let mut run = |count: u32| {
        let started = Instant::now();
        for _ in 0..count {
            make(between);
        }
        started.elapsed().as_nanos() as f64 / f64::from(count)
    };
    // A tenth of them first, unmeasured, to warm up.
    let mut warm_then_measure = || {
        run(trees / 10);
        run(trees)
    };
    match dispatch {
        Some(dispatch) => tracing::dispatcher::with_default(dispatch, warm_then_measure),
        None => warm_then_measure(),
    }
}

fn main() {
    let trees: u32 = std::env::var("CORRAL_BENCH_TREES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
        // The evicted variant runs a tenth of them, and needs some.
        .max(100);
    let store = tempfile::tempdir().unwrap();
    let no_sink = Telemetry::start(&TelemetryConfig::disabled()).unwrap();
    let with_store = Telemetry::start(&TelemetryConfig {
        local_store: Some(store.path().to_path_buf()),
        ..TelemetryConfig::disabled()
    })
    .unwrap();
    let corral = |telemetry: &Telemetry| {
        Some(tracing::Dispatch::new(
            tracing_subscriber::registry().with(telemetry.layer()),
        ))
    };
    type Configuration = (&'static str, Option<tracing::Dispatch>, fn(&mut Between));
    let configurations: Vec<Configuration> = vec![
        ("tracing off", None, direct_tree),
        ("direct spans, no sink", corral(&no_sink), direct_tree),
        (
            "direct spans, local span store",
            corral(&with_store),
            direct_tree,
        ),
        (
            "as tracing spans: in the registry only",
            Some(tracing::Dispatch::new(tracing_subscriber::registry())),
            tree,
        ),
        (
            "as tracing spans: a no-op layer behind Corral's filter",
            Some(tracing::Dispatch::new(
                tracing_subscriber::registry().with(Noop.with_filter(span_filter())),
            )),
            tree,
        ),
        (
            "as tracing spans: Corral's layer, no sink",
            corral(&no_sink),
            tree,
        ),
        (
            "as tracing spans: Corral's layer, local span store",
            corral(&with_store),
            tree,
        ),
    ];

    println!(
        "| configuration | warm, per tree | warm, per span | evicted, per tree | evicted, per span |"
    );
    println!("|---|---|---|---|---|");
    let mut warm = Between(None);
    let mut evicted = Between(Some(vec![0; EVICT_BYTES]));
    // Rounds alternate configurations so drift hits all of them alike;
    // the medians of the rounds are reported.
    const ROUNDS: usize = 5;
    let mut results = vec![(Vec::new(), Vec::new()); configurations.len()];
    // One unrecorded round first: each registry's slab and each layer's
    // allocations settle.
    for (_, dispatch, make) in &configurations {
        measure(dispatch.as_ref(), *make, &mut warm, trees);
    }
    for _ in 0..ROUNDS {
        for ((_, dispatch, make), (warm_ns, evicted_ns)) in configurations.iter().zip(&mut results)
        {
            warm_ns.push(measure(dispatch.as_ref(), *make, &mut warm, trees));
            evicted_ns.push(measure(dispatch.as_ref(), *make, &mut evicted, trees / 10));
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let medians: Vec<(f64, f64)> = results
        .iter_mut()
        .map(|(warm_ns, evicted_ns)| (median(warm_ns), median(evicted_ns)))
        .collect();
    // Each configuration's time over tracing off's, in the same variant.
    let (warm_off, evicted_off) = medians[0];
    for ((name, _, _), (warm_ns, evicted_ns)) in configurations.iter().zip(&medians).skip(1) {
        let (warm, evicted) = (warm_ns - warm_off, evicted_ns - evicted_off);
        println!(
            "| {name} | {:.0} ns | {:.0} ns | {:.0} ns | {:.0} ns |",
            warm,
            warm / f64::from(SPANS),
            evicted,
            evicted / f64::from(SPANS),
        );
    }
    println!(
        "\ntracing off: {warm_off:.0} ns per tree warm, {evicted_off:.0} ns evicted (the eviction itself); the columns above are each configuration's time over it"
    );
    no_sink.shutdown();
    let stats = with_store.shutdown();
    // The store's queue (2,048 spans) can fill in a tight loop; a dropped
    // span was still encoded, only not queued.
    println!(
        "the store wrote {} spans and dropped {} (queue full)",
        stats.store.exported, stats.store.dropped
    );
}
