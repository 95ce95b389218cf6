//! RS256 JWT inbound auth with keys from a JWKS file and a JWKS URL (test-only
//! key pair in tests/fixtures), end to end through the MCP endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use axum::routing::get;
use corral_gateway::{Gateway, GatewayConfig, HttpOptions, router};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn token(claims: Value, kid: &str) -> String {
    let key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixtures().join("jwt-test-key.pem")).unwrap())
            .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, &claims, &key).unwrap()
}

fn exp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300
}

async fn serve(jwt: Value) -> String {
    let config: GatewayConfig = serde_json::from_value(json!({
        "authorizerType": "CUSTOM_JWT",
        "inboundAuth": {"jwt": jwt},
        "targets": [{"name": "calculator", "targetConfiguration": {"mcp": {"wasm": {"builtin": "calculator"}}}}]
    }))
    .unwrap();
    let mut options = common::options();
    options.base_dir = fixtures();
    let gateway = Gateway::new(config, options).await.unwrap();
    let app = router(gateway, HttpOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn list_status(url: &str, bearer: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .bearer_auth(bearer)
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn rs256_tokens_from_a_jwks_file() {
    let url = serve(json!({"jwksFile": "jwks.json", "issuer": "https://idp.test", "allowedAudience": ["corral-gw"], "allowedClients": ["agent-app"]})).await;
    let good = token(
        json!({"sub": "alice", "iss": "https://idp.test", "aud": "corral-gw", "client_id": "agent-app", "exp": exp()}),
        "test-key-1",
    );
    let (status, body) = list_status(&url, &good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["tools"][0]["name"], "calculator___evaluate");

    let wrong_client = token(
        json!({"sub": "a", "iss": "https://idp.test", "aud": "corral-gw", "client_id": "other", "exp": exp()}),
        "test-key-1",
    );
    let (status, body) = list_status(&url, &wrong_client).await;
    assert_eq!(status, 401);
    assert!(
        body["message"].as_str().unwrap().contains("not allowed"),
        "{body}"
    );

    let unknown_kid = token(
        json!({"sub": "a", "iss": "https://idp.test", "aud": "corral-gw", "client_id": "agent-app", "exp": exp()}),
        "rotated",
    );
    let (status, _) = list_status(&url, &unknown_kid).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn rs256_tokens_from_a_jwks_url() {
    let jwks = std::fs::read_to_string(fixtures().join("jwks.json")).unwrap();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || async move { jwks.clone() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = serve(json!({"jwksUrl": jwks_url})).await;
    let good = token(json!({"sub": "bob", "exp": exp()}), "test-key-1");
    assert_eq!(list_status(&url, &good).await.0, 200);
    let expired = token(json!({"sub": "bob", "exp": 1_000_000}), "test-key-1");
    assert_eq!(list_status(&url, &expired).await.0, 401);
    assert_eq!(list_status(&url, "not.a.jwt").await.0, 401);
}
