//! The Bedrock provider, through the real AWS SDK client, against a local
//! server on 127.0.0.1 that speaks the Converse REST/JSON wire format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use corral_model::{
    BedrockConfig, BedrockModel, ContentBlock, ConverseRequest, InferenceConfig, Message,
    ModelError, ModelProvider, Role, StopReason, ToolResult, ToolResultContent, ToolResultStatus,
    ToolSpec,
};
use serde_json::{Value, json};

/// A recorded request: model id from the path, headers, JSON body.
#[derive(Debug, Clone)]
struct Seen {
    model_id: String,
    authorization: String,
    body: Value,
}

/// Canned reply: status, optional error type header, JSON body.
#[derive(Clone)]
struct Canned {
    status: u16,
    error_type: Option<&'static str>,
    body: Value,
}

#[derive(Clone, Default)]
struct ConverseServer {
    replies: Arc<Mutex<VecDeque<Canned>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn converse(
    State(server): State<ConverseServer>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    server.seen.lock().unwrap().push(Seen {
        model_id,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body,
    });
    let reply = server.replies.lock().unwrap().pop_front();
    let Some(reply) = reply else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no canned reply").into_response();
    };
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json")],
        reply.body.to_string(),
    )
        .into_response();
    if let Some(kind) = reply.error_type {
        response
            .headers_mut()
            .insert("x-amzn-errortype", kind.parse().unwrap());
    }
    response
}

impl ConverseServer {
    async fn start(replies: Vec<Canned>) -> (Self, String) {
        let server = ConverseServer {
            replies: Arc::new(Mutex::new(replies.into())),
            seen: Arc::default(),
        };
        let app = Router::new()
            .route("/model/{model_id}/converse", post(converse))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, url)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn model(url: &str, max_attempts: u32) -> BedrockModel {
    let sdk_config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )))
        .build();
    let mut config = BedrockConfig::new("anthropic.claude-test-v1:0");
    config.endpoint_url = Some(url.to_string());
    config.max_attempts = max_attempts;
    config.initial_backoff = Duration::from_millis(5);
    config.timeout = Duration::from_secs(10);
    BedrockModel::from_sdk_config(&sdk_config, config)
}

fn ok(body: Value) -> Canned {
    Canned {
        status: 200,
        error_type: None,
        body,
    }
}

fn throttled() -> Canned {
    Canned {
        status: 429,
        error_type: Some(
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        ),
        body: json!({"message": "Too many requests, please wait before trying again."}),
    }
}

fn calc_request() -> ConverseRequest {
    ConverseRequest {
        system: vec!["You are terse.".into()],
        messages: vec![Message::user("What is 2+2?")],
        tools: vec![ToolSpec {
            name: "calc".into(),
            description: "Evaluates arithmetic".into(),
            input_schema: json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
        }],
        inference: InferenceConfig {
            max_tokens: Some(256),
            temperature: Some(0.0),
            ..InferenceConfig::default()
        },
        ..ConverseRequest::default()
    }
}

#[tokio::test]
async fn tool_use_turn_then_final_answer() {
    let (server, url) = ConverseServer::start(vec![
        ok(json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "I'll calculate."},
                {"toolUse": {"toolUseId": "tooluse_abc", "name": "calc", "input": {"expression": "2+2"}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 40, "outputTokens": 12, "totalTokens": 52},
            "metrics": {"latencyMs": 20}
        })),
        ok(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "2+2 = 4"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 60, "outputTokens": 5, "totalTokens": 65},
            "metrics": {"latencyMs": 10}
        })),
    ])
    .await;
    let model = model(&url, 1);

    let mut request = calc_request();
    let first = model.converse(request.clone()).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert_eq!(first.usage.total_tokens, 52);
    assert_eq!(first.model_id, "anthropic.claude-test-v1:0");
    let tool_use = first.output.tool_uses().next().unwrap().clone();
    assert_eq!(tool_use.name, "calc");
    assert_eq!(tool_use.input, json!({"expression": "2+2"}));

    request.messages.push(first.output.clone());
    request.messages.push(Message {
        role: Role::User,
        content: vec![ContentBlock::ToolResult(ToolResult {
            tool_use_id: tool_use.tool_use_id.clone(),
            content: vec![ToolResultContent::Json(json!({"value": 4}))],
            status: ToolResultStatus::Success,
        })],
    });
    let second = model.converse(request).await.unwrap();
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(second.output.text(), "2+2 = 4");

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].model_id, "anthropic.claude-test-v1:0");
    assert!(
        seen[0]
            .authorization
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "request is SigV4-signed: {}",
        seen[0].authorization
    );
    let body = &seen[0].body;
    assert_eq!(body["system"][0]["text"], "You are terse.");
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["messages"][0]["content"][0]["text"], "What is 2+2?");
    assert_eq!(body["toolConfig"]["tools"][0]["toolSpec"]["name"], "calc");
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"][0],
        "expression"
    );
    assert_eq!(body["inferenceConfig"]["maxTokens"], 256);
    let result = &seen[1].body["messages"][2]["content"][0]["toolResult"];
    assert_eq!(result["toolUseId"], "tooluse_abc");
    assert_eq!(result["status"], "success");
    assert_eq!(result["content"][0]["json"]["value"], 4);
    assert_eq!(
        seen[1].body["messages"][1]["content"][1]["toolUse"]["input"]["expression"],
        "2+2"
    );
}

#[tokio::test]
async fn persistent_throttling_is_a_typed_error_after_retries() {
    let (server, url) = ConverseServer::start(vec![throttled(), throttled(), throttled()]).await;
    let err = model(&url, 3).converse(calc_request()).await.unwrap_err();
    match err {
        ModelError::Throttled(message) => {
            assert!(message.contains("Too many requests"), "{message}")
        }
        other => panic!("expected throttling, got {other:?}"),
    }
    assert_eq!(server.seen().len(), 3, "the SDK retried throttling");
}

#[tokio::test]
async fn throttling_then_success_is_retried_transparently() {
    let (server, url) = ConverseServer::start(vec![
        throttled(),
        ok(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "fine"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
            "metrics": {"latencyMs": 1}
        })),
    ])
    .await;
    let reply = model(&url, 3).converse(calc_request()).await.unwrap();
    assert_eq!(reply.output.text(), "fine");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn validation_error_and_unreachable_endpoint_are_typed() {
    let (_server, url) = ConverseServer::start(vec![Canned {
        status: 400,
        error_type: Some("ValidationException"),
        body: json!({"message": "messages: must not be empty"}),
    }])
    .await;
    let err = model(&url, 1).converse(calc_request()).await.unwrap_err();
    assert_eq!(
        err,
        ModelError::Validation("messages: must not be empty".into())
    );

    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = model(&dead, 1).converse(calc_request()).await.unwrap_err();
    assert!(matches!(err, ModelError::Unavailable(_)), "{err:?}");
}
