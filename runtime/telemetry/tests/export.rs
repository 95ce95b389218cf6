//! The span pipeline against real OTLP receivers on 127.0.0.1 and the local store.

use std::time::{Duration, Instant};

use corral_telemetry::OpenTelemetrySpanExt;
use corral_telemetry::receiver::OtlpReceiver;
use corral_telemetry::{
    OtlpConfig, OtlpProtocol, QueueConfig, Telemetry, TelemetryConfig, export_stats,
    session_context, store,
};
use tracing_subscriber::layer::SubscriberExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config(otlp: Option<(String, OtlpProtocol)>, queue: QueueConfig) -> TelemetryConfig {
    TelemetryConfig {
        otlp: otlp.map(|(endpoint, protocol)| OtlpConfig {
            endpoint,
            protocol,
            headers: Default::default(),
            timeout: Duration::from_secs(2),
        }),
        queue,
        ..TelemetryConfig::disabled()
    }
}

fn fast_queue() -> QueueConfig {
    QueueConfig {
        scheduled_delay: Duration::from_millis(20),
        ..QueueConfig::default()
    }
}

/// Emits (under a `corral*` target, which the layer exports) an invocation-shaped tree: root (session in baggage) → step → tool.
fn emit_session_tree(session: &str) {
    let root =
        tracing::info_span!(target: "corral_test", "invoke_agent", otel.name = "invoke_agent demo");
    root.set_parent(session_context(&opentelemetry::Context::new(), session));
    let _root = root.enter();
    let step = tracing::info_span!(target: "corral_test", "agent.step");
    let _step = step.enter();
    let tool =
        tracing::info_span!(target: "corral_test", "execute_tool", gen_ai.tool.name = "calc");
    drop(tool);
}

async fn shutdown(telemetry: Telemetry) -> corral_telemetry::ExportStats {
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_protocols_deliver_the_tree_with_session_tags() -> TestResult {
    for (receiver, protocol) in [
        (OtlpReceiver::grpc().await?, OtlpProtocol::Grpc),
        (OtlpReceiver::http().await?, OtlpProtocol::HttpProtobuf),
    ] {
        let endpoint = match protocol {
            OtlpProtocol::Grpc => receiver.endpoint(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", receiver.endpoint()),
        };
        let telemetry = Telemetry::start(&config(Some((endpoint, protocol)), fast_queue()))?;
        let subscriber = tracing_subscriber::registry().with(telemetry.layer());
        tracing::subscriber::with_default(subscriber, || emit_session_tree("sess-42"));
        shutdown(telemetry).await;
        let spans = receiver
            .wait_for(Duration::from_secs(10), |s| s.len() >= 3)
            .await;
        assert_eq!(spans.len(), 3, "{protocol:?}: {spans:#?}");
        let by_name = |name: &str| spans.iter().find(|s| s.name == name);
        let (Some(root), Some(step), Some(tool)) = (
            by_name("invoke_agent demo"),
            by_name("agent.step"),
            by_name("execute_tool"),
        ) else {
            panic!("{protocol:?}: missing spans in {spans:#?}");
        };
        assert_eq!(root.parent_span_id, "");
        assert_eq!(step.parent_span_id, root.span_id);
        assert_eq!(tool.parent_span_id, step.span_id);
        assert!(spans.iter().all(|s| s.trace_id == root.trace_id));
        for span in &spans {
            assert_eq!(span.attr("session.id"), Some("sess-42"), "{span:?}");
            assert_eq!(span.attr("gen_ai.conversation.id"), Some("sess-42"));
            assert_eq!(
                span.resource.get("service.name").map(String::as_str),
                Some("corral")
            );
        }
        assert_eq!(tool.attr("gen_ai.tool.name"), Some("calc"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_collector_costs_nothing_on_the_span_path() -> TestResult {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let failed_before = export_stats().otlp.failed_exports;
    let telemetry = Telemetry::start(&config(
        Some((format!("http://{closed}"), OtlpProtocol::Grpc)),
        fast_queue(),
    ))?;
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    let started = Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..200 {
            emit_session_tree(&format!("s{i}"));
        }
    });
    // Bounded, not a benchmark: span creation never waits on the network
    // (the export timeout is 2 s).
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let stats = shutdown(telemetry).await;
    assert!(stats.otlp.failed_exports > failed_before, "{stats:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_spans() -> TestResult {
    let receiver = OtlpReceiver::grpc_with_delay(Duration::from_millis(500)).await?;
    let dropped_before = export_stats().otlp.dropped;
    let queue = QueueConfig {
        max_queue_size: 8,
        max_export_batch_size: 8,
        scheduled_delay: Duration::from_millis(10),
    };
    let telemetry = Telemetry::start(&config(
        Some((receiver.endpoint(), OtlpProtocol::Grpc)),
        queue,
    ))?;
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..100 {
            emit_session_tree(&format!("s{i}"));
        }
    });
    let stats = shutdown(telemetry).await;
    let dropped = stats.otlp.dropped - dropped_before;
    let received = receiver.spans().len() as u64;
    assert!(dropped > 0, "{stats:?}");
    // Every span is either delivered or counted as dropped.
    assert_eq!(
        dropped + received,
        300,
        "dropped {dropped}, received {received}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_keeps_a_session_for_corral_trace() -> TestResult {
    let dir = tempfile::tempdir()?;
    let telemetry = Telemetry::start(&TelemetryConfig {
        local_store: Some(dir.path().to_path_buf()),
        queue: fast_queue(),
        ..TelemetryConfig::disabled()
    })?;
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        emit_session_tree("mine");
        emit_session_tree("other");
        emit_session_tree("mine");
    });
    shutdown(telemetry).await;
    let spans = store::read_session(dir.path(), "mine")?;
    assert_eq!(spans.len(), 6);
    let sessions = store::list_sessions(dir.path())?;
    assert_eq!(sessions.len(), 2);
    let tree = corral_telemetry::tree::render(&spans);
    assert_eq!(tree.matches("trace ").count(), 2, "{tree}");
    assert!(tree.contains("└─ invoke_agent demo"), "{tree}");
    assert!(tree.contains("      └─ execute_tool"), "{tree}");
    Ok(())
}
