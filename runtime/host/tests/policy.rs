//! Policy and deterministic limits end to end: a sandboxed agent's tool
//! calls go through a gateway with a Cedar policy engine; a denied call
//! reaches the agent as a typed denial and never reaches the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::routing::post;
use common::{fixture, manager, test_config};
use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_host::{
    AgentErrorKind, AgentSettings, CompiledAgent, HostServices, InvocationRequest, InvokeError,
    RunLimits, SessionManager,
};
use corral_model::ScriptedModel;
use serde_json::{Value, json};

/// A calculator HTTP API that counts the calls it serves.
async fn calculator_api() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/evaluate",
        post(move |Json(body): Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let expression = body["expression"].as_str().unwrap_or_default().to_string();
                let value = corral_calculator::evaluate(&expression).unwrap_or(f64::NAN);
                let value = if value.fract() == 0.0 {
                    json!(value as i64)
                } else {
                    json!(value)
                };
                Json(json!({"expression": expression, "value": value}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

const POLICIES: &[(&str, &str)] = &[
    (
        "everyone.cedar",
        r#"permit(principal, action in AgentCore::Action::"CallTool", resource);"#,
    ),
    (
        "no_division.cedar",
        r#"forbid(principal, action == AgentCore::Action::"calculator___evaluate", resource)
when { context.input.expression like "*/*" };"#,
    ),
    (
        "block_mallory.cedar",
        r#"forbid(principal == AgentCore::OAuthUser::"mallory", action, resource);"#,
    ),
];

async fn services(dir: &std::path::Path) -> (HostServices, Arc<AtomicUsize>) {
    let (url, calls) = calculator_api().await;
    for (file, text) in POLICIES {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let openapi = json!({
        "openapi": "3.0.3",
        "info": {"title": "Calculator", "version": "1"},
        "servers": [{"url": url}],
        "paths": {"/evaluate": {"post": {
            "operationId": "evaluate",
            "summary": "Evaluate an arithmetic expression",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]
            }}}}
        }}}
    });
    let config: GatewayConfig = serde_json::from_value(json!({
        "gatewayId": "gw-agents-0123456789",
        "targets": [{"name": "calculator", "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": openapi.to_string()}}}}],
        "policyEngineConfiguration": {"mode": "ENFORCE", "path": dir}
    }))
    .unwrap();
    let options = GatewayOptions {
        engine: Some(fixture().host.engine().clone()),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::new(config, options).await.unwrap();
    let model = ScriptedModel::from_toml(corral_examples::ASSISTANT_SCRIPT).unwrap();
    (
        HostServices::new(Arc::new(model)).with_gateway(gateway),
        calls,
    )
}

async fn ask(
    manager: &SessionManager,
    agent: &Arc<CompiledAgent>,
    actor: &str,
    session: &str,
    prompt: &str,
) -> Result<Value, InvokeError> {
    let response = manager
        .invoke(
            agent,
            InvocationRequest::new(session, json!({"prompt": prompt}).to_string()).actor(actor),
        )
        .await?;
    Ok(serde_json::from_slice(&response.payload).unwrap())
}

#[tokio::test]
async fn denied_tool_calls_reach_the_agent_typed_and_never_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let (services, calls) = services(dir.path()).await;
    let manager = manager(services, test_config());
    let assistant = &fixture().assistant;

    let allowed = ask(
        &manager,
        assistant,
        "alice",
        "alice-session-1",
        "What is 6 * 7?",
    )
    .await
    .unwrap();
    assert_eq!(allowed["response"], "6 * 7 = 42.", "{allowed}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let denied = ask(
        &manager,
        assistant,
        "alice",
        "alice-session-1",
        "What is 10 / 2?",
    )
    .await
    .unwrap();
    assert_eq!(
        denied["toolCalls"],
        json!([{"name": "calculator___evaluate", "ok": false}])
    );
    let text = denied["response"].as_str().unwrap();
    assert!(
        text.starts_with("I could not get that from the tool"),
        "{text}"
    );
    assert!(text.contains("no_division"), "{text}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the upstream never saw the denied call"
    );

    let blocked = ask(
        &manager,
        assistant,
        "mallory",
        "mallory-session-1",
        "What is 6 * 7?",
    )
    .await
    .unwrap();
    // The tool is never offered to mallory's model, so it is never called.
    assert_eq!(blocked["toolCalls"], json!([]), "{blocked}");
    assert!(
        blocked["response"]
            .as_str()
            .unwrap()
            .starts_with("I can do arithmetic")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let log: Vec<String> = manager
        .session_log("assistant", "alice-session-1")
        .map(|entries| entries.into_iter().map(|e| e.message).collect())
        .unwrap_or_default();
    assert!(log.iter().any(|l| l.contains("Denied")), "{log:?}");
}

#[tokio::test]
async fn deterministic_limits_stop_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (services, calls) = services(dir.path()).await;
    let manager = manager(services, test_config());
    let limited = |limits: RunLimits| {
        let bytes = corral_examples::ASSISTANT_AGENT;
        Arc::new(
            fixture()
                .host
                .compile("limited-assistant", bytes)
                .unwrap()
                .with_settings(AgentSettings {
                    run_limits: limits,
                    ..AgentSettings::default()
                }),
        )
    };

    // One tool call per session: the follow-up's tool call is refused.
    let one_tool = limited(RunLimits {
        max_tool_calls_per_session: Some(1),
        ..RunLimits::default()
    });
    let first = ask(
        &manager,
        &one_tool,
        "alice",
        "limit-session-1",
        "What is 6 * 7?",
    )
    .await
    .unwrap();
    assert_eq!(first["response"], "6 * 7 = 42.");
    let second = ask(
        &manager,
        &one_tool,
        "alice",
        "limit-session-1",
        "multiply that by 2",
    )
    .await
    .unwrap();
    let text = second["response"].as_str().unwrap();
    assert!(
        text.contains("tool call limit reached: 1 tool calls per session"),
        "{text}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // One model call per invocation: the answer after the tool result is refused.
    let one_model = limited(RunLimits {
        max_model_calls_per_invocation: Some(1),
        ..RunLimits::default()
    });
    let error = ask(
        &manager,
        &one_model,
        "alice",
        "limit-session-2",
        "What is 6 * 7?",
    )
    .await
    .unwrap_err();
    let InvokeError::Agent { kind, message } = &error else {
        panic!("expected an agent error, got {error}");
    };
    assert!(
        matches!(
            kind,
            AgentErrorKind::LimitExceeded | AgentErrorKind::ModelFailed
        ),
        "{error}"
    );
    assert!(message.contains("model call limit reached"), "{message}");

    // A token budget smaller than one exchange.
    let few_tokens = limited(RunLimits {
        max_tokens_per_invocation: Some(1),
        ..RunLimits::default()
    });
    let error = ask(
        &manager,
        &few_tokens,
        "alice",
        "limit-session-3",
        "What is 6 * 7?",
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("token limit reached"), "{error}");
}
