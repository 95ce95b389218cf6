//! The labelled tool-search set (`tests/fixtures/search/labelled.json`) as
//! gateway targets: one OpenAPI target per group of tools.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use corral_gateway::{Caller, Gateway, GatewayConfig, GatewayOptions, SEARCH_TOOL};
use corral_memory::embed::Embedder;
use corral_policy::Principal;
use serde_json::{Value, json};

/// Tools by target name, each `(operationId, description)`.
pub type Targets = Vec<(String, Vec<(String, String)>)>;

/// The labelled set: targets, and `(query, expected exposed tool name)`.
pub fn labelled() -> (Targets, Vec<(String, String)>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/search/labelled.json"
    );
    let set: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let targets = set["targets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(target, tools)| {
            let tools = tools
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let field = |k: &str| t[k].as_str().unwrap().to_string();
                    (field("name"), field("description"))
                })
                .collect();
            (target.clone(), tools)
        })
        .collect();
    let queries = set["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let field = |k: &str| q[k].as_str().unwrap().to_string();
            (field("query"), field("expected"))
        })
        .collect();
    (targets, queries)
}

/// A gateway with semantic search serving `targets` as OpenAPI targets
/// (their server is never called), searching with `embedder`, its
/// catalogue embedded.
pub async fn search_gateway(
    targets: &Targets,
    embedder: Option<Arc<dyn Embedder>>,
) -> Arc<Gateway> {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(name, tools)| {
            let paths: serde_json::Map<String, Value> = tools
                .iter()
                .map(|(operation, description)| {
                    (
                        format!("/{operation}"),
                        json!({"post": {"operationId": operation, "summary": description}}),
                    )
                })
                .collect();
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": name, "version": "1"},
                "servers": [{"url": "http://127.0.0.1:9"}],
                "paths": paths,
            });
            json!({"name": name, "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": doc.to_string()}}}})
        })
        .collect();
    let config: GatewayConfig = serde_json::from_value(json!({
        "protocolConfiguration": {"mcp": {"searchType": "SEMANTIC"}},
        "targets": targets,
    }))
    .unwrap();
    let options = GatewayOptions {
        embedder,
        ..GatewayOptions::default()
    };
    let gateway = Gateway::new(config, options).await.unwrap();
    gateway.prepare_search().await.unwrap();
    gateway
}

/// The exposed names the search tool returns for `query`, best first.
pub async fn search(gateway: &Gateway, query: &str) -> Vec<String> {
    let caller = Caller::new(Principal::IamEntity {
        id: "searcher".into(),
    });
    let output = gateway
        .call_tool(&caller, SEARCH_TOOL, json!({"query": query}))
        .await
        .unwrap();
    output.structured.unwrap()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}
