//! Serving over MCP (streamable HTTP at /mcp): an rmcp client and raw
//! JSON-RPC for both protocol versions, pagination, auth, malformed input,
//! and two replicas behind a round-robin balancer serving one client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{Upstream, standard_config};
use corral_gateway::{HttpOptions, router};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

/// Serves a gateway built from `config`; returns its base URL.
async fn serve(config: Value) -> String {
    let gateway = common::gateway(config).await;
    let app = router(gateway, HttpOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A JSON-RPC POST; returns status, headers and parsed body (if any).
async fn rpc(url: &str, body: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

#[tokio::test]
async fn rmcp_client_lists_all_pages_and_calls_tools() {
    let upstream = Upstream::start().await;
    let url = serve(standard_config(&upstream)).await;
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{url}/mcp"
        )))
        .await
        .unwrap();
    let first = client.peer().list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 4);
    assert_eq!(first.tools[0].name, "x_amz_bedrock_agentcore_search");
    assert!(first.next_cursor.is_some());
    let all = client.peer().list_all_tools().await.unwrap();
    assert!(all.len() > 8, "all pages: {}", all.len());
    assert!(all.iter().all(|t| t.name.len() <= 64));

    let mut params = CallToolRequestParams::new("pets___getPet");
    params.arguments = Some(json!({"petId": "1"}).as_object().unwrap().clone());
    let result = client.peer().call_tool(params).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(result.structured_content.unwrap()["name"], "Rex");

    let mut params = CallToolRequestParams::new("pets___getPet");
    params.arguments = Some(json!({"petId": "404"}).as_object().unwrap().clone());
    let result = client.peer().call_tool(params).await.unwrap();
    assert_eq!(
        result.is_error,
        Some(true),
        "upstream 404 is a tool error result"
    );

    let err = client
        .peer()
        .call_tool(CallToolRequestParams::new("nope___nothing"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unknown tool"), "{err}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn current_and_previous_protocol_versions_are_served_statelessly() {
    let upstream = Upstream::start().await;
    let url = serve(standard_config(&upstream)).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let (status, headers, body) = rpc(&url, &init.to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(body["result"]["serverInfo"]["name"], "test-gateway");
    assert_eq!(body["result"]["instructions"], "Test gateway");
    assert!(
        headers.get("mcp-session-id").is_none(),
        "no replica-local session"
    );

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (status, _, body) = rpc(
        &url,
        &list.to_string(),
        &[("mcp-protocol-version", "2025-11-25")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["tools"].as_array().unwrap().len(), 4);
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    let (_, _, body) = rpc(
        &url,
        &ping.to_string(),
        &[("mcp-protocol-version", "2025-11-25")],
    )
    .await;
    assert_eq!(body["result"], json!({}));
}

#[tokio::test]
async fn malformed_requests_get_errors_and_the_gateway_keeps_serving() {
    let upstream = Upstream::start().await;
    let url = serve(standard_config(&upstream)).await;
    // Each gets the JSON-RPC error MCP requires, as JSON.
    for (body, code) in [
        ("{not json", -32700),
        ("[]", -32600),
        (r#"{"jsonrpc": "2.0", "id": 1}"#, -32600),
        (
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "x"}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            -32602,
        ),
    ] {
        let (status, headers, reply) =
            rpc(&url, body, &[("mcp-protocol-version", "2025-11-25")]).await;
        assert!(
            headers[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{body} → {status} {reply}"
        );
        assert_eq!(reply["jsonrpc"], "2.0", "{body} → {status} {reply}");
        assert_eq!(reply["error"]["code"], code, "{body} → {status} {reply}");
    }
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5 << 20)
    );
    let (status, _, _) = rpc(&url, &huge, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    let (status, _, body) = rpc(
        &url,
        &ping.to_string(),
        &[("mcp-protocol-version", "2025-11-25")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn inbound_auth_rejects_strangers_with_401() {
    let upstream = Upstream::start().await;
    let mut config = standard_config(&upstream);
    config["inboundAuth"] = json!({"apiKeys": [{"name": "ci-bot", "key": "gw-key-1"}]});
    let url = serve(config).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let (status, headers, body) = rpc(&url, &ping, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("missing credentials"),
        "{body}"
    );
    assert!(headers.get("www-authenticate").is_some());
    let (status, _, body) = rpc(&url, &ping, &[("x-api-key", "wrong")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "invalid API key");
    let (status, _, _) = rpc(
        &url,
        &ping,
        &[
            ("x-api-key", "gw-key-1"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let mut headers = std::collections::HashMap::new();
    headers.insert(
        http::HeaderName::from_static("x-api-key"),
        http::HeaderValue::from_static("gw-key-1"),
    );
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp")).custom_headers(headers);
    let client = ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap();
    assert!(!client.peer().list_all_tools().await.unwrap().is_empty());
}

/// Round-robins each request across replicas, counting per replica.
#[derive(Clone)]
struct Balancer {
    replicas: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    served: Arc<Vec<AtomicUsize>>,
    client: reqwest::Client,
}

async fn balance(
    State(lb): State<Balancer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = lb.next.fetch_add(1, Ordering::SeqCst) % lb.replicas.len();
    lb.served[index].fetch_add(1, Ordering::SeqCst);
    let mut request = lb.client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!("{}{}", lb.replicas[index], uri.path()),
    );
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let response = request.body(body).send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut out_headers = HeaderMap::new();
    for (name, value) in response.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            out_headers.insert(
                http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
    }
    (status, out_headers, response.bytes().await.unwrap()).into_response()
}

#[tokio::test]
async fn two_replicas_serve_one_client_alternately() {
    let upstream = Upstream::start().await;
    let replicas = vec![
        serve(standard_config(&upstream)).await,
        serve(standard_config(&upstream)).await,
    ];
    let lb = Balancer {
        replicas: Arc::new(replicas),
        next: Arc::new(AtomicUsize::new(0)),
        served: Arc::new(vec![AtomicUsize::new(0), AtomicUsize::new(0)]),
        client: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(balance).with_state(lb.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{url}/mcp"
        )))
        .await
        .unwrap();
    for i in 0..6 {
        let tools = client.peer().list_all_tools().await.unwrap();
        assert!(tools.len() > 8);
        let mut params = CallToolRequestParams::new("orders___add");
        params.arguments = Some(json!({"a": i, "b": 1}).as_object().unwrap().clone());
        let result = client.peer().call_tool(params).await.unwrap();
        assert_eq!(result.structured_content.unwrap()["sum"], i + 1);
    }
    let served: Vec<usize> = lb.served.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(
        served.iter().all(|n| *n >= 5),
        "both replicas served the client: {served:?}"
    );
    client.cancel().await.unwrap();
}

/// A loopback address nothing listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// Every failure text a client sees: a JSON-RPC error's message, or a
/// tool result's text when `isError` is set.
fn client_error_text(reply: &Value) -> String {
    if let Some(message) = reply["error"]["message"].as_str() {
        return message.to_string();
    }
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn failures_reach_clients_without_internal_urls_or_type_names() {
    let upstream = Upstream::start().await;
    let dead_api = dead_url();
    let dead_mcp = dead_url();
    let mut config = common::standard_config(&upstream);
    let targets = config["targets"].as_array_mut().unwrap();
    targets.push(json!({"name": "gone", "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": common::pets_openapi(&dead_api)}}}}));
    targets.push(json!({"name": "down", "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": format!("{dead_mcp}/mcp")}}}}));
    let url = serve(config).await;
    let mut lambda_down = common::standard_config(&upstream);
    lambda_down["aws"]["lambdaEndpointUrl"] = json!(dead_url());
    // The AWS SDK retries a refused connection with jittered backoff (up to
    // ~3 s in all); under a 1.5 s deadline a loaded machine answered
    // "timed out" before the SDK gave up, so this gateway waits longer, as
    // `targets.rs`'s unreachable-upstream test does.
    lambda_down["limits"]["callTimeoutMs"] = json!(5000);
    let lambda_down_url = serve(lambda_down).await;

    let cases = [
        (
            &url,
            "gone___getPet",
            json!({"petId": "1"}),
            "could not connect to the API",
        ),
        (
            &url,
            "pets___brokenCall",
            json!({}),
            "HTTP 500 Internal Server Error: database exploded",
        ),
        (&url, "pets___slowCall", json!({}), "timed out"),
        (
            &url,
            "orders___explode",
            json!({}),
            "Lambda function error (Unhandled)",
        ),
        (
            &lambda_down_url,
            "orders___get_order",
            json!({"orderId": "1"}),
            "the function could not be reached",
        ),
        (
            &url,
            "down___anything",
            json!({}),
            "target 'down' is unavailable",
        ),
        (
            &url,
            "calculator___evaluate",
            json!({"expression": "1/"}),
            "cannot evaluate",
        ),
        (&url, "nope___nothing", json!({}), "unknown tool"),
    ];
    let internal = [
        "http://",
        "127.0.0.1",
        dead_api.as_str(),
        dead_mcp.as_str(),
        "::",
        "reqwest",
        "hyper",
        "Error {",
        "Kind(",
        "os error",
        "tokio",
        "rmcp",
        "wasmtime",
        "aws_sdk",
    ];
    for (at, tool, arguments, expected) in cases {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}})
        .to_string();
        let (_, _, reply) = rpc(at, &body, &[("mcp-protocol-version", "2025-11-25")]).await;
        let text = client_error_text(&reply);
        assert!(!text.trim().is_empty(), "{tool}: empty error");
        assert!(
            text.to_lowercase().contains(&expected.to_lowercase()),
            "{tool}: {text:?} should say {expected:?}"
        );
        for leak in internal {
            assert!(!text.contains(leak), "{tool}: {text:?} leaks {leak:?}");
        }
    }
}
