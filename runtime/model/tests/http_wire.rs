//! The providers that call a vendor's REST API directly — OpenAI-compatible
//! Chat Completions and Anthropic Messages — through their real HTTP client,
//! against local servers on 127.0.0.1 that speak each wire format: a
//! tool-use turn, the turn after the tool result, a rate limit, a server
//! error and an unreachable endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use corral_model::{
    AnthropicConfig, AnthropicModel, ContentBlock, ConverseRequest, Message, ModelError,
    ModelProvider, OpenAiConfig, OpenAiModel, Role, StopReason, ToolResult, ToolResultContent,
    ToolResultStatus, ToolSpec,
};
use serde_json::{Value, json};

/// A vendor API stand-in: canned replies in order; records each request's
/// credential headers and body.
#[derive(Clone, Default)]
struct ChatServer {
    replies: Arc<Mutex<VecDeque<(u16, Value)>>>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn completions(
    State(server): State<ChatServer>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let credentials = format!(
        "{}{}{}",
        header("authorization"),
        header("x-api-key"),
        header("anthropic-version")
    );
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    server.seen.lock().unwrap().push((credentials, body));
    let (status, reply) = server
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((500, json!({"error": {"message": "no reply queued"}})));
    (StatusCode::from_u16(status).unwrap(), axum::Json(reply)).into_response()
}

async fn start(replies: Vec<(u16, Value)>) -> (String, ChatServer) {
    let server = ChatServer::default();
    server.replies.lock().unwrap().extend(replies);
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/v1/messages", post(completions))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, server)
}

fn model(base_url: &str) -> OpenAiModel {
    let mut config = OpenAiConfig::new(base_url, "llama3.1");
    config.api_key = Some("sk-local".into());
    config.timeout = Duration::from_secs(5);
    OpenAiModel::new(config).unwrap()
}

fn calculator() -> ToolSpec {
    ToolSpec {
        name: "calculator___evaluate".into(),
        description: "Evaluates arithmetic".into(),
        input_schema: json!({"type": "object", "properties": {"expression": {"type": "string"}}}),
    }
}

#[tokio::test]
async fn a_tool_loop_round_trips_through_chat_completions() {
    let (url, server) = start(vec![
        (
            200,
            json!({"id": "chatcmpl-1", "model": "llama3.1", "choices": [{"index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_abc", "type": "function",
                    "function": {"name": "calculator___evaluate", "arguments": "{\"expression\":\"6 * 7\"}"}
                }]}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}}),
        ),
        (
            200,
            json!({"id": "chatcmpl-2", "model": "llama3.1", "choices": [{"index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "6 * 7 = 42."}}],
                "usage": {"prompt_tokens": 70, "completion_tokens": 6, "total_tokens": 76}}),
        ),
    ])
    .await;
    let model = model(&url);
    let mut request = ConverseRequest {
        system: vec!["You are a calculator.".into()],
        messages: vec![Message::user("What is 6 * 7?")],
        tools: vec![calculator()],
        ..ConverseRequest::default()
    };
    let first = model.converse(request.clone()).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert_eq!(first.usage.total_tokens, 62);
    let tool_use = first.output.tool_uses().next().unwrap().clone();
    assert_eq!(tool_use.tool_use_id, "call_abc");
    assert_eq!(tool_use.input, json!({"expression": "6 * 7"}));

    request.messages.push(first.output);
    request.messages.push(Message {
        role: Role::User,
        content: vec![ContentBlock::ToolResult(ToolResult {
            tool_use_id: tool_use.tool_use_id,
            content: vec![ToolResultContent::Json(json!({"value": 42}))],
            status: ToolResultStatus::Success,
        })],
    });
    let second = model.converse(request).await.unwrap();
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(second.output.text(), "6 * 7 = 42.");
    assert_eq!(second.model_id, "llama3.1");

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "Bearer sk-local");
    let first_body = &seen[0].1;
    assert_eq!(first_body["model"], "llama3.1");
    assert_eq!(first_body["messages"][0]["role"], "system");
    assert_eq!(first_body["tools"][0]["type"], "function");
    let replay = &seen[1].1["messages"];
    assert_eq!(replay[2]["tool_calls"][0]["id"], "call_abc");
    assert_eq!(
        replay[3],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "{\"value\":42}"})
    );
}

#[tokio::test]
async fn rate_limits_errors_and_unreachable_endpoints_are_typed() {
    let (url, _server) = start(vec![
        (
            429,
            json!({"error": {"message": "Rate limit reached for requests", "type": "requests"}}),
        ),
        (503, json!({"error": {"message": "model is loading"}})),
        (400, json!({"error": {"message": "unknown model 'nope'"}})),
    ])
    .await;
    let model = model(&url);
    let request = ConverseRequest {
        messages: vec![Message::user("hi")],
        ..ConverseRequest::default()
    };
    let throttled = model.converse(request.clone()).await.unwrap_err();
    assert_eq!(
        throttled,
        ModelError::Throttled("HTTP 429: Rate limit reached for requests".into())
    );
    let unavailable = model.converse(request.clone()).await.unwrap_err();
    assert!(
        matches!(&unavailable, ModelError::Unavailable(m) if m.contains("model is loading")),
        "{unavailable:?}"
    );
    let invalid = model.converse(request.clone()).await.unwrap_err();
    assert!(
        matches!(&invalid, ModelError::Validation(m) if m.contains("unknown model")),
        "{invalid:?}"
    );
    // Nothing listens on a just-freed port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = self::model(&format!("http://127.0.0.1:{port}/v1"))
        .converse(request)
        .await
        .unwrap_err();
    assert!(matches!(down, ModelError::Unavailable(_)), "{down:?}");
}

fn anthropic(base_url: &str) -> AnthropicModel {
    let mut config = AnthropicConfig::new("claude-sonnet-4-5");
    config.base_url = base_url.trim_end_matches("/v1").to_string();
    config.api_key = Some("sk-ant-local".into());
    config.timeout = Duration::from_secs(5);
    AnthropicModel::new(config).unwrap()
}

#[tokio::test]
async fn a_tool_loop_round_trips_through_anthropic_messages() {
    let (url, server) = start(vec![
        (
            200,
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [
                    {"type": "text", "text": "Let me calculate."},
                    {"type": "tool_use", "id": "toolu_01", "name": "calculator___evaluate", "input": {"expression": "6 * 7"}}
                ],
                "stop_reason": "tool_use", "usage": {"input_tokens": 40, "output_tokens": 20}}),
        ),
        (
            200,
            json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "6 * 7 = 42."}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 80, "output_tokens": 7}}),
        ),
    ])
    .await;
    let model = anthropic(&url);
    let mut request = ConverseRequest {
        system: vec!["You are a calculator.".into()],
        messages: vec![Message::user("What is 6 * 7?")],
        tools: vec![calculator()],
        ..ConverseRequest::default()
    };
    let first = model.converse(request.clone()).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert_eq!(first.output.text(), "Let me calculate.");
    assert_eq!(first.usage.total_tokens, 60);
    let tool_use = first.output.tool_uses().next().unwrap().clone();
    assert_eq!(tool_use.tool_use_id, "toolu_01");
    request.messages.push(first.output);
    request.messages.push(Message {
        role: Role::User,
        content: vec![ContentBlock::ToolResult(ToolResult {
            tool_use_id: tool_use.tool_use_id,
            content: vec![ToolResultContent::Json(json!({"value": 42}))],
            status: ToolResultStatus::Success,
        })],
    });
    let second = model.converse(request).await.unwrap();
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(second.output.text(), "6 * 7 = 42.");

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].0, "sk-ant-local2023-06-01",
        "x-api-key and anthropic-version"
    );
    let first_body = &seen[0].1;
    assert_eq!(first_body["system"], "You are a calculator.");
    assert_eq!(first_body["max_tokens"], 4096);
    assert_eq!(first_body["tools"][0]["input_schema"]["type"], "object");
    let replay = &seen[1].1["messages"];
    assert_eq!(replay[1]["content"][1]["type"], "tool_use");
    assert_eq!(
        replay[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_01", "content": "{\"value\":42}", "is_error": false})
    );
}

#[tokio::test]
async fn anthropic_rate_limits_and_overload_are_typed() {
    let (url, _server) = start(vec![
        (
            429,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"}}),
        ),
        (
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
    ])
    .await;
    let model = anthropic(&url);
    let request = ConverseRequest {
        messages: vec![Message::user("hi")],
        ..ConverseRequest::default()
    };
    let throttled = model.converse(request.clone()).await.unwrap_err();
    assert!(
        matches!(&throttled, ModelError::Throttled(m) if m.contains("rate limit")),
        "{throttled:?}"
    );
    let overloaded = model.converse(request).await.unwrap_err();
    assert!(
        matches!(&overloaded, ModelError::Unavailable(m) if m.contains("Overloaded")),
        "{overloaded:?}"
    );
}
