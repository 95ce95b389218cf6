//! A Cedar policy engine attached to a gateway: MCP clients see only the
//! tools they may call, denials come back as AgentCore answers them, denied
//! calls never reach the upstream, and every decision is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{Upstream, standard_config};
use corral_gateway::{HttpOptions, router};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const SECRET: &str = "policy-test-secret";

fn token(sub: &str, role: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "role": role, "iss": "https://idp.test", "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

const POLICIES: &[(&str, &str)] = &[
    (
        "viewers_read_pets.cedar",
        r#"permit(
  principal is AgentCore::OAuthUser,
  action in [AgentCore::Action::"pets___listPets", AgentCore::Action::"pets___getPet"],
  resource == AgentCore::Gateway::"gw-test-0123456789"
) when { principal.hasTag("role") && principal.getTag("role") == "viewer" };"#,
    ),
    (
        "admins_everything.cedar",
        r#"permit(principal, action in AgentCore::Action::"CallTool", resource)
when { principal.hasTag("role") && principal.getTag("role") == "admin" };"#,
    ),
    (
        "small_sums_only.cedar",
        r#"forbid(principal, action == AgentCore::Action::"orders___add", resource)
when { context.input.a > 1000 };"#,
    ),
];

async fn serve(upstream: &Upstream, dir: &std::path::Path) -> String {
    for (file, text) in POLICIES {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let mut config = standard_config(upstream);
    config["inboundAuth"] = json!({"jwt": {"hs256Secret": SECRET, "issuer": "https://idp.test"}});
    config["limits"]["pageSize"] = json!(100);
    config["policyEngineConfiguration"] = json!({
        "arn": "arn:aws:bedrock-agentcore:us-east-1:123456789012:policy-engine/shop-0123456789",
        "mode": "ENFORCE",
        "path": dir,
        "auditLog": dir.join("audit.jsonl"),
    });
    let gateway = common::gateway(config).await;
    let app = router(gateway, HttpOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn rpc(url: &str, bearer: &str, method: &str, params: Value) -> Value {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(bearer)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn tool_names(url: &str, bearer: &str) -> Vec<String> {
    let listed = rpc(url, bearer, "tools/list", json!({})).await;
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn policies_filter_listings_and_deny_calls_before_the_upstream() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = serve(&upstream, dir.path()).await;
    let viewer = token("vera", "viewer");
    let admin = token("ada", "admin");
    let guest = token("gus", "guest");

    assert_eq!(
        tool_names(&url, &viewer).await,
        [
            "x_amz_bedrock_agentcore_search",
            "pets___listPets",
            "pets___getPet"
        ]
    );
    assert!(tool_names(&url, &admin).await.len() > 8);
    assert_eq!(
        tool_names(&url, &guest).await,
        ["x_amz_bedrock_agentcore_search"]
    );

    // Allowed: reaches the upstream.
    let before = upstream.state.api_calls.load(Ordering::SeqCst);
    let allowed = rpc(
        &url,
        &viewer,
        "tools/call",
        json!({"name": "pets___getPet", "arguments": {"petId": "1"}}),
    )
    .await;
    assert_eq!(allowed["result"]["isError"], false, "{allowed}");
    assert_eq!(upstream.state.api_calls.load(Ordering::SeqCst), before + 1);

    // Denied: an isError result as AgentCore answers, and the upstream never sees it.
    let pets_before = upstream.state.pets.lock().len();
    let denied = rpc(
        &url,
        &viewer,
        "tools/call",
        json!({"name": "pets___createPet", "arguments": {"name": "Nemo"}}),
    )
    .await;
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    let text = denied["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("AuthorizeActionException - Tool Execution Denied"),
        "{text}"
    );
    assert_eq!(upstream.state.pets.lock().len(), pets_before);

    // A forbid on the input beats the admin's broad permit; the Lambda is never invoked.
    let lambda_before = upstream.state.lambda.lock().len();
    let big = rpc(
        &url,
        &admin,
        "tools/call",
        json!({"name": "orders___add", "arguments": {"a": 5000, "b": 1}}),
    )
    .await;
    let text = big["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("small_sums_only"), "{text}");
    assert_eq!(upstream.state.lambda.lock().len(), lambda_before);
    let small = rpc(
        &url,
        &admin,
        "tools/call",
        json!({"name": "orders___add", "arguments": {"a": 5, "b": 1}}),
    )
    .await;
    assert_eq!(small["result"]["isError"], false, "{small}");
    assert_eq!(upstream.state.lambda.lock().len(), lambda_before + 1);

    // Every decision is in the audit log, in order (the writer flushes asynchronously).
    let mut decisions = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap_or_default();
        decisions = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>();
        if decisions.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let summary: Vec<(String, String)> = decisions
        .iter()
        .map(|d| {
            (
                d["request"]["action"].as_str().unwrap().to_string(),
                d["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "AgentCore::Action::\"pets___getPet\"".to_string(),
                "ALLOW".to_string()
            ),
            (
                "AgentCore::Action::\"pets___createPet\"".to_string(),
                "DENY".to_string()
            ),
            (
                "AgentCore::Action::\"orders___add\"".to_string(),
                "DENY".to_string()
            ),
            (
                "AgentCore::Action::\"orders___add\"".to_string(),
                "ALLOW".to_string()
            ),
        ]
    );
    assert_eq!(
        decisions[2]["determiningPolicies"],
        json!(["small_sums_only"])
    );
    assert_eq!(
        decisions[0]["request"]["principal"],
        "AgentCore::OAuthUser::\"vera\""
    );
}

#[tokio::test]
async fn a_gateway_with_an_invalid_policy_does_not_start() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.cedar"),
        "permit(\n  principal,\n  action == AgentCore::Action::\"pets___getPett\",\n  resource\n);",
    )
    .unwrap();
    let mut config = standard_config(&upstream);
    config["policyEngineConfiguration"] = json!({"mode": "ENFORCE", "path": dir.path()});
    let config: corral_gateway::GatewayConfig = serde_json::from_value(config).unwrap();
    let error = corral_gateway::Gateway::new(config, common::options())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("typo.cedar:3:"), "{message}");
    assert!(message.contains("pets___getPett"), "{message}");
}
