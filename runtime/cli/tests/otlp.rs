//! `corral serve` exporting OTLP/gRPC to a real receiver (built from the
//! official `opentelemetry-proto` definitions) for a whole agent session:
//! model calls, an allowed and a denied tool call, memory writes; inbound
//! `traceparent` continued, outbound HTTP calls carrying it; and a collector
//! that never answers does not slow invocations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_telemetry::receiver::{OtlpReceiver, ReceivedSpan};
use corral_test_support::{ChildServer, free_port, spawn_server};
use parking_lot::Mutex;
use serde_json::{Value, json};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The orders API the gateway fronts; records each request's `traceparent`
/// and `baggage`.
async fn orders_api() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/orders/{id}",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                let header = |name| corral_test_support::header_text(&headers, name);
                record
                    .lock()
                    .push((header("traceparent"), header("baggage")));
                axum::Json(json!({"id": "42", "status": "shipped"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Gateway with the orders API (getOrder, refundOrder) and policies that
/// permit getOrder and refunds under 100; a script that looks the order up,
/// asks for a refund of 500 (denied), then answers.
fn write_setup(dir: &Path, api: &str) {
    let openapi = json!({
        "openapi": "3.0.0",
        "info": {"title": "orders", "version": "1"},
        "servers": [{"url": api}],
        "paths": {
            "/orders/{id}": {"get": {
                "operationId": "getOrder",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the order"}}
            }},
            "/orders/{id}/refund": {"post": {
                "operationId": "refundOrder",
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "amount", "in": "query", "required": true, "schema": {"type": "integer"}}
                ],
                "responses": {"200": {"description": "refunded"}}
            }}
        }
    });
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/read_orders.cedar"),
        concat!(
            "permit(principal, action == AgentCore::Action::\"orders___getOrder\", resource);\n",
            "permit(principal, action == AgentCore::Action::\"orders___refundOrder\", resource)\n",
            "  when { context.input.amount < 100 };\n",
        ),
    )
    .unwrap();
    let gateway = json!({
        "name": "shop",
        "policyEngineConfiguration": {"mode": "ENFORCE", "path": "policies"},
        "targets": [{"name": "orders", "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": openapi.to_string()}}}}]
    });
    std::fs::write(dir.join("gateway.json"), gateway.to_string()).unwrap();
    std::fs::write(
        dir.join("script.toml"),
        r#"model_id = "corral.scripted-shop"
[[rules]]
when.tool_results = false
text = "Looking the order up."
tool_use = [{ name = "orders___getOrder", input = { id = "42" } }]
[[rules]]
when.last_tool = "orders___getOrder"
text = "Refunding it."
tool_use = [{ name = "orders___refundOrder", input = { id = "42", amount = 500 } }]
[[rules]]
when.last_tool = "orders___refundOrder"
text = "Order 42 has shipped; I may not refund it."
[fallback]
text = "?"
"#,
    )
    .unwrap();
}

/// `corral serve` on a free port with `otel` environment variables, with
/// the shop assistant deployed.
async fn serve(dir: &Path, otel: &[(&str, String)]) -> ChildServer {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--gateway")
        .arg(dir.join("gateway.json"))
        .arg("--script")
        .arg(dir.join("script.toml"))
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (key, value) in otel {
        command.env(key, value);
    }
    let served = spawn_server(&mut command, port);
    let deployed = reqwest::Client::new()
        .post(format!("{}/corral/runtimes/shop", served.url))
        .header("content-type", "application/wasm")
        .body(std::fs::read(corral_examples::ASSISTANT_AGENT_PATH).unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        deployed.status().is_success(),
        "{:?}",
        deployed.text().await
    );
    served
}

async fn invoke(url: &str, session: &str, traceparent: Option<&str>) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/runtimes/shop/invocations"))
        .header("x-amzn-bedrock-agentcore-runtime-session-id", session)
        .header("content-type", "application/json")
        .body(json!({"prompt": "Where is order 42? Refund it."}).to_string());
    if let Some(parent) = traceparent {
        request = request.header("traceparent", parent);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success());
    response.json().await.unwrap()
}

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    pick: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {what}, found {}: {spans:#?}",
        found.len()
    );
    found[0]
}

fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_exports_its_span_tree_over_otlp() {
    let dir = tempfile::tempdir().unwrap();
    let (api, traceparents) = orders_api().await;
    write_setup(dir.path(), &api);
    let receiver = OtlpReceiver::grpc().await.unwrap();
    let served = serve(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            ("OTEL_SERVICE_NAME", "corral-under-test".into()),
        ],
    )
    .await;
    let session = "otlp-session-0123456789abcdef0123456789";
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let first = invoke(&served.url, session, Some(&caller)).await;
    assert_eq!(
        first["response"],
        "Order 42 has shipped; I may not refund it."
    );
    assert_eq!(
        first["toolCalls"],
        json!([{"name": "orders___getOrder", "ok": true}, {"name": "orders___refundOrder", "ok": false}])
    );
    assert!(first["memoryEventId"].is_string(), "{first}");
    let second = invoke(&served.url, session, None).await;
    assert_eq!(second["turns"], 2);

    let spans = receiver
        .wait_for(Duration::from_secs(20), |s| {
            s.iter()
                .filter(|s| s.name.starts_with("invoke_agent"))
                .count()
                >= 2
                && s.iter().filter(|s| s.name == "memory.create_event").count() >= 2
        })
        .await;

    // Every span of the session carries its id, and comes from this service.
    let session_spans: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.attr("session.id") == Some(session))
        .collect();
    for span in &session_spans {
        assert_eq!(
            span.attr("gen_ai.conversation.id"),
            Some(session),
            "{span:#?}"
        );
        assert_eq!(
            span.resource.get("service.name").map(String::as_str),
            Some("corral-under-test")
        );
    }

    // The first invocation continues the caller's trace.
    let traced: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == CALLER_TRACE)
        .cloned()
        .collect();
    assert!(
        traced.iter().all(|s| s.attr("session.id") == Some(session)),
        "{traced:#?}"
    );
    let server = one(&traced, "http.server", |s| {
        s.name.starts_with("POST /runtimes")
    });
    assert_eq!(server.parent_span_id, CALLER_SPAN);
    let invocation = one(&traced, "invoke_agent", |s| s.name == "invoke_agent shop");
    assert_eq!(invocation.parent_span_id, server.span_id);
    assert_eq!(
        invocation.attr("gen_ai.operation.name"),
        Some("invoke_agent")
    );
    assert_eq!(invocation.attr("gen_ai.agent.name"), Some("shop"));
    assert_eq!(invocation.attr("corral.session.new"), Some("true"));

    let start = one(&traced, "session.start", |s| {
        s.name.starts_with("session.start")
    });
    assert_eq!(start.parent_span_id, invocation.span_id);
    let instantiate = one(&traced, "sandbox.instantiate", |s| {
        s.name == "sandbox.instantiate" && s.parent_span_id == start.span_id
    });
    assert!(instantiate.end_unix_nanos > instantiate.start_unix_nanos);

    // Three steps: getOrder, refundOrder, answer.
    let mut steps: Vec<&ReceivedSpan> = children(&traced, invocation)
        .into_iter()
        .filter(|s| s.attr("corral.step").is_some())
        .collect();
    steps.sort_by_key(|s| s.start_unix_nanos);
    assert_eq!(
        steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["step 1", "step 2", "step 3"]
    );
    for (step, finish) in steps.iter().zip(["tool_use", "tool_use", "end_turn"]) {
        let chat = one(&traced, "chat", |s| {
            s.parent_span_id == step.span_id && s.attr("gen_ai.operation.name") == Some("chat")
        });
        assert_eq!(chat.name, "chat corral.scripted-shop");
        assert_eq!(chat.attr("gen_ai.provider.name"), Some("corral.scripted"));
        assert_eq!(
            chat.attr("gen_ai.request.model"),
            Some("corral.scripted-shop")
        );
        assert_eq!(chat.attr("gen_ai.response.finish_reasons"), Some(finish));
        assert!(
            chat.attr("gen_ai.usage.input_tokens")
                .is_some_and(|t| t.parse::<u64>().unwrap() > 0)
        );
        assert!(chat.attr("gen_ai.usage.output_tokens").is_some());
        // Content is opt-in: off here.
        assert_eq!(chat.attr("gen_ai.input.messages"), None);
    }

    // Allowed call: step 1 → execute_tool → gateway → policy ALLOW + HTTP upstream.
    let allowed = one(&traced, "allowed execute_tool", |s| {
        s.parent_span_id == steps[0].span_id
            && s.attr("gen_ai.operation.name") == Some("execute_tool")
    });
    assert_eq!(allowed.attr("gen_ai.tool.name"), Some("orders___getOrder"));
    assert!(
        allowed
            .attr("gen_ai.tool.call.id")
            .is_some_and(|id| !id.is_empty())
    );
    assert_ne!(allowed.status_code, 2);
    // The gateway and the policy engine record on the agent's execute_tool
    // span (no spans of their own); the upstream call is its one child.
    assert_eq!(allowed.attr("policy.decision"), Some("ALLOW"));
    assert_eq!(allowed.attr("policy.enforced"), Some("true"));
    assert_eq!(allowed.attr("outcome"), Some("ok"));
    assert_eq!(allowed.attr("target.kind"), Some("openapi"));
    assert_eq!(children(&traced, allowed).len(), 1);
    let upstream = one(&traced, "upstream call", |s| {
        s.parent_span_id == allowed.span_id && s.name == "GET /orders/{id}"
    });
    assert_eq!(upstream.attr("http.request.method"), Some("GET"));

    // The upstream saw the trace (same trace id, parent = the client span)
    // and the session in its baggage.
    let seen = traceparents.lock().clone();
    let call = seen
        .iter()
        .find(|(traceparent, _)| {
            *traceparent == format!("00-{CALLER_TRACE}-{}-01", upstream.span_id)
        })
        .unwrap_or_else(|| panic!("{seen:?} vs {}", upstream.span_id));
    assert!(
        call.1.contains(&format!("session.id={session}")),
        "{seen:?}"
    );

    // Denied call: error status, a DENY decision, and no upstream call.
    let denied = one(&traced, "denied execute_tool", |s| {
        s.parent_span_id == steps[1].span_id
            && s.attr("gen_ai.operation.name") == Some("execute_tool")
    });
    assert_eq!(
        denied.attr("gen_ai.tool.name"),
        Some("orders___refundOrder")
    );
    assert_eq!(denied.status_code, 2, "{denied:#?}");
    assert_eq!(denied.attr("error.type"), Some("denied"));
    assert!(denied.events.iter().any(|(name, _)| name == "exception"));
    assert_eq!(denied.attr("policy.decision"), Some("DENY"));
    let denied_children = children(&traced, denied);
    assert!(denied_children.is_empty(), "{denied_children:#?}");

    // The turn was written to memory under the last step.
    let memory = one(&traced, "memory write", |s| s.name == "memory.create_event");
    assert_eq!(memory.parent_span_id, steps[2].span_id);
    assert_eq!(memory.attr("memory.operation.count"), Some("2"));

    // The second invocation: its own trace, same session, no new sandbox.
    let later: Vec<&ReceivedSpan> = session_spans
        .iter()
        .copied()
        .filter(|s| s.name == "invoke_agent shop" && s.trace_id != CALLER_TRACE)
        .collect();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].attr("corral.session.new"), Some("false"));
    let mut by_trace: HashMap<&str, usize> = HashMap::new();
    for span in &session_spans {
        *by_trace.entry(span.trace_id.as_str()).or_default() += 1;
    }
    assert_eq!(by_trace.len(), 2, "{by_trace:?}");

    // Rejected invocations and control-plane calls are server spans too,
    // continuing the caller's trace and carrying the response status.
    const REJECTED_TRACE: &str = "0af7651916cd43dd8448eb211c80319d";
    const CONTROL_TRACE: &str = "5b8aa5a2d2c872e8321cf37308d69df2";
    let http = reqwest::Client::new();
    let rejected = http
        .post(format!("{}/runtimes/no_such_agent/invocations", served.url))
        .header(
            "traceparent",
            format!("00-{REJECTED_TRACE}-{CALLER_SPAN}-01"),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 404);
    let listed = http
        .get(format!("{}/gateways/", served.url))
        .header(
            "traceparent",
            format!("00-{CONTROL_TRACE}-{CALLER_SPAN}-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let spans = receiver
        .wait_for(Duration::from_secs(20), |s| {
            s.iter().any(|s| s.trace_id == REJECTED_TRACE)
                && s.iter().any(|s| s.trace_id == CONTROL_TRACE)
        })
        .await;
    let rejected = one(&spans, "rejected invocation", |s| {
        s.trace_id == REJECTED_TRACE
    });
    assert_eq!(
        rejected.name,
        "POST /runtimes/{agentRuntimeArn}/invocations"
    );
    assert_eq!(rejected.parent_span_id, CALLER_SPAN);
    assert_eq!(rejected.attr("http.response.status_code"), Some("404"));
    assert_eq!(
        rejected.attr("error.type"),
        Some("ResourceNotFoundException")
    );
    let control = one(&spans, "control-plane call", |s| {
        s.trace_id == CONTROL_TRACE
    });
    assert_eq!(control.name, "GET /gateways/");
    assert_eq!(control.attr("http.response.status_code"), Some("200"));
    let metrics = http
        .get(format!("{}/metrics", served.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"corral_invocations_total{agent="unknown",outcome="rejected"} 1"#),
        "{metrics}"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_does_not_slow_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let (api, _) = orders_api().await;
    write_setup(dir.path(), &api);
    // Accepts connections and never answers: every export waits for its timeout.
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = blackhole.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = blackhole.accept().await {
            keep.lock().push(socket);
        }
    });
    let served = serve(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000".into()),
        ],
    )
    .await;
    let session = "blackhole-session-0123456789abcdef01234";
    for _ in 0..5 {
        let started = Instant::now();
        let answer = invoke(&served.url, session, None).await;
        assert_eq!(
            answer["response"],
            "Order 42 has shipped; I may not refund it."
        );
        // Bounded, not a benchmark: an export blocked for 30 s would show.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        !held.lock().is_empty(),
        "the exporter never tried the collector"
    );
    drop(served);
}
