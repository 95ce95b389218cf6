//! Memory over HTTP on AgentCore's paths: raw requests for the protocol
//! details (status codes, error headers, malformed bodies) and boto3's own
//! `bedrock-agentcore` clients for shape compatibility.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use corral_memory::http::router;
use serde_json::{Value, json};

/// Serves the memory router on 127.0.0.1; returns its base URL.
async fn serve(dir: &std::path::Path) -> String {
    let service = common::open(dir).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(service)).await.unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn rest_protocol_status_codes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path()).await;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/memories/create"))
        .json(&json!({"name": "rest", "eventExpiryDuration": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let memory: Value = created.json().await.unwrap();
    let id = memory["memory"]["id"].as_str().unwrap().to_string();

    let event = http
        .post(format!("{base}/memories/{id}/events"))
        .json(&json!({
            "actorId": "alice", "sessionId": "s", "eventTimestamp": 1_700_000_000.5,
            "payload": [{"conversational": {"content": {"text": "hi"}, "role": "USER"}}, {"blob": {"any": ["json"]}}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(event.status(), 201);
    let event: Value = event.json().await.unwrap();
    assert_eq!(event["event"]["eventTimestamp"], json!(1_700_000_000.5));
    assert_eq!(
        event["event"]["payload"][1]["blob"],
        json!({"any": ["json"]})
    );

    // Malformed JSON, wrong shapes, unknown memory, unknown fields.
    let cases = [
        (
            format!("{base}/memories/{id}/events"),
            "{not json".to_string(),
            400,
            "ValidationException",
        ),
        (
            format!("{base}/memories/{id}/events"),
            json!({"actorId": "a", "payload": "nope", "eventTimestamp": 1}).to_string(),
            400,
            "ValidationException",
        ),
        (
            format!("{base}/memories/missing-0123456789/events"),
            json!({"actorId": "a", "sessionId": "s", "eventTimestamp": 1, "payload": []})
                .to_string(),
            404,
            "ResourceNotFoundException",
        ),
        (
            format!("{base}/memories/{id}/retrieve"),
            String::new(),
            400,
            "ValidationException",
        ),
        (
            format!("{base}/memories/{id}/retrieve"),
            json!({"namespace": "/a", "searchCriteria": {"searchQuery": "x", "topK": 1000}})
                .to_string(),
            400,
            "ValidationException",
        ),
    ];
    for (url, body, status, error) in cases {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{url} {body}");
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            error,
            "{url} {body}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // An oversized payload is a validation error, not a dropped connection.
    let big = json!({"actorId": "a", "sessionId": "s", "eventTimestamp": 1,
        "payload": [{"blob": "x".repeat(6 * 1024 * 1024)}]});
    let response = http
        .post(format!("{base}/memories/{id}/events"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["fieldList"][0]["name"], "payload");
    // The store still works afterwards.
    let listed: Value = http
        .post(format!("{base}/memories/{id}/actor/alice/sessions/s"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["events"].as_array().unwrap().len(), 1);
}

fn python() -> PathBuf {
    corral_test_support::ci_python("boto3")
}

#[tokio::test]
async fn boto3_clients_work_unchanged() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/memory_client.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(&base)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "boto3 client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["memory_status"], "ACTIVE");
    assert_eq!(
        out["strategy_namespaces"][0],
        "/strategies/{memoryStrategyId}/actors/{actorId}"
    );
    assert_eq!(out["get_memory_name"], "boto_memory");
    assert_eq!(out["listed_memories"], true);
    assert_eq!(out["got_text"], "message 0");
    assert_eq!(out["got_timestamp_type"], "datetime");
    assert_eq!(out["event_pages"], json!([20, 5]));
    assert_eq!(out["sessions"], json!(["session-1"]));
    assert_eq!(out["actors"], json!(["tenant/carol"]));
    assert_eq!(out["deleted_event"], true);
    assert_eq!(out["created_records"], 2);
    assert_eq!(out["top_hit"], "Carol prefers window seats on flights");
    assert_eq!(out["scores_descending"], true);
    assert_eq!(out["record_namespaces"], json!(["/users/carol"]));
    assert_eq!(out["listed_records"], 2);
    assert_eq!(out["missing_memory_error"], "ResourceNotFoundException");
    assert_eq!(out["too_many_items_error"], "ValidationException");
    assert_eq!(out["bad_namespace_error"], "ValidationException");
    assert_eq!(out["delete_memory_status"], "DELETING");
}

#[tokio::test]
async fn the_aws_sdks_memory_client_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path()).await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/memory_sdk_client.py");
    let output = corral_test_support::run_python_with_dummy_aws(
        &corral_test_support::ci_python("bedrock-agentcore"),
        &script,
        &[base.as_ref()],
    )
    .await;
    assert!(
        output.status.success(),
        "MemoryClient failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["memory_status"], "ACTIVE");
    assert_eq!(
        out["listed"], true,
        "list_memories() pages with maxResults=100"
    );
    assert_eq!(out["strategies"], json!(["facts"]));
    assert_eq!(out["strategy_types"], json!(["SEMANTIC"]));
    assert_eq!(out["strategy_statuses"], json!(["ACTIVE"]));
    // Newest first, as AgentCore lists events: the last two turns.
    assert_eq!(
        out["event_texts"],
        json!([
            "Bye",
            "Goodbye",
            "I live in Oslo",
            "Nice",
            "I like tea",
            "Noted"
        ])
    );
    assert_eq!(out["turns"], 2);
    assert_eq!(
        out["turn_texts"],
        json!([["Bye", "Goodbye"], ["I live in Oslo", "Nice"]])
    );
    assert_eq!(out["got_event_text"], "I like tea");
    assert_eq!(out["sessions"], json!(["sdk-session"]));
    assert_eq!(out["actors"], json!(["sdk-user"]));
    assert_eq!(out["deleted"], true);
}
