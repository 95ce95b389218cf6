//! Shared helpers: local upstreams that speak the real wire protocols (an
//! HTTP API, an OAuth2 token endpoint, the Lambda Invoke REST API) and
//! gateway builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_sandbox::{EngineConfig, SandboxEngine};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// A Lambda invocation as the local Lambda server saw it.
#[derive(Debug, Clone)]
pub struct LambdaSeen {
    pub function: String,
    pub invocation_type: String,
    pub client_context: Value,
    pub event: Value,
    pub authorization: String,
    pub traceparent: String,
}

#[derive(Default)]
pub struct UpstreamState {
    pub pets: Mutex<Vec<Value>>,
    pub api_calls: AtomicUsize,
    pub token_fetches: AtomicUsize,
    pub lambda: Mutex<Vec<LambdaSeen>>,
}

/// One local server with every upstream the tests need.
pub struct Upstream {
    pub url: String,
    pub state: Arc<UpstreamState>,
}

impl Upstream {
    pub async fn start() -> Self {
        let state = Arc::new(UpstreamState::default());
        state.pets.lock().extend([
            json!({"id": "1", "name": "Rex", "tag": "dog"}),
            json!({"id": "2", "name": "Tom", "tag": "cat"}),
        ]);
        let app = Router::new()
            .route("/v1/pets", get(list_pets).post(create_pet))
            .route("/v1/pets/{pet_id}", get(get_pet))
            .route("/v1/slow", get(slow))
            .route("/v1/huge", get(huge))
            .route("/v1/broken", get(broken))
            .route("/v1/report", get(report))
            .route("/oauth/token", post(token))
            .route(
                "/2015-03-31/functions/{function}/invocations",
                post(lambda_invoke),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }
}

fn needs_key(headers: &HeaderMap) -> Option<Response> {
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some("pet-key") => None,
        _ => Some(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": "missing or bad x-api-key"})),
            )
                .into_response(),
        ),
    }
}

async fn list_pets(
    State(state): State<Arc<UpstreamState>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    state.api_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(denied) = needs_key(&headers) {
        return denied;
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let pets: Vec<Value> = state.pets.lock().iter().take(limit).cloned().collect();
    let trace = corral_test_support::header_text(&headers, "x-trace");
    axum::Json(json!({"pets": pets, "trace": trace})).into_response()
}

async fn get_pet(
    State(state): State<Arc<UpstreamState>>,
    headers: HeaderMap,
    Path(pet_id): Path<String>,
) -> Response {
    state.api_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(denied) = needs_key(&headers) {
        return denied;
    }
    let pet = state
        .pets
        .lock()
        .iter()
        .find(|p| p["id"] == pet_id.as_str())
        .cloned();
    match pet {
        Some(pet) => axum::Json(pet).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": format!("no pet {pet_id}")})),
        )
            .into_response(),
    }
}

async fn create_pet(
    State(state): State<Arc<UpstreamState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.api_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(denied) = needs_key(&headers) {
        return denied;
    }
    let Ok(mut pet) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let mut pets = state.pets.lock();
    pet["id"] = json!((pets.len() + 1).to_string());
    pets.push(pet.clone());
    (StatusCode::CREATED, axum::Json(pet)).into_response()
}

async fn slow() -> Response {
    tokio::time::sleep(Duration::from_secs(3)).await;
    axum::Json(json!({"late": true})).into_response()
}

async fn huge() -> Response {
    let items: Vec<Value> = (0..100_000)
        .map(|i| json!({"item": i, "padding": "xxxxxxxxxxxxxxxx"}))
        .collect();
    axum::Json(json!({"items": items})).into_response()
}

async fn broken() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "database exploded: ".repeat(500),
    )
        .into_response()
}

async fn report(headers: HeaderMap) -> Response {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(auth) if auth.starts_with("Bearer tok-") => {
            axum::Json(json!({"report": "ok", "token": auth})).into_response()
        }
        _ => (StatusCode::UNAUTHORIZED, "bad token").into_response(),
    }
}

async fn token(
    State(state): State<Arc<UpstreamState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("client-1:client-secret")
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if !body.contains("grant_type=client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let n = state.token_fetches.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(
        json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}),
    )
    .into_response()
}

/// The Lambda Invoke REST API: the event is the body, the client context is
/// base64 JSON in `X-Amz-Client-Context`, handler failures are reported with
/// `X-Amz-Function-Error`.
async fn lambda_invoke(
    State(state): State<Arc<UpstreamState>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name| corral_test_support::header_text(&headers, name);
    let client_context: Value = base64::engine::general_purpose::STANDARD
        .decode(header("x-amz-client-context"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    state.lambda.lock().push(LambdaSeen {
        function: function.clone(),
        invocation_type: header("x-amz-invocation-type"),
        client_context: client_context.clone(),
        event: event.clone(),
        authorization: header("authorization"),
        traceparent: header("traceparent"),
    });
    if function.ends_with("missing") {
        return (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            axum::Json(
                json!({"Type": "User", "Message": format!("Function not found: {function}")}),
            ),
        )
            .into_response();
    }
    // An AgentCore-style handler: the tool name comes from the client context.
    let tool = client_context["custom"]["bedrockAgentCoreToolName"]
        .as_str()
        .unwrap_or("");
    let tool = tool.split("___").nth(1).unwrap_or(tool);
    match tool {
        "get_order" => axum::Json(json!({"content": [{"type": "text", "text": json!({"orderId": event["orderId"], "status": "shipped"}).to_string()}]})).into_response(),
        "add" => axum::Json(json!({"sum": event["a"].as_i64().unwrap_or(0) + event["b"].as_i64().unwrap_or(0)})).into_response(),
        "explode" => (
            StatusCode::OK,
            [("x-amz-function-error", "Unhandled"), ("x-amz-executed-version", "$LATEST")],
            axum::Json(json!({"errorMessage": "boom", "errorType": "RuntimeError"})),
        )
            .into_response(),
        other => axum::Json(json!({"content": [{"type": "text", "text": format!("Unknown tool: {other}")}], "isError": true})).into_response(),
    }
}

/// The pets OpenAPI document pointing at `base`.
pub fn pets_openapi(base: &str) -> String {
    format!(
        r##"
openapi: 3.1.0
info: {{title: Pets, version: "1"}}
servers: [{{url: "{base}/v1"}}]
paths:
  /pets:
    get:
      operationId: listPets
      summary: List pets in the store
      parameters:
        - {{name: limit, in: query, schema: {{type: integer}}}}
        - {{name: X-Trace, in: header, schema: {{type: string}}}}
    post:
      operationId: createPet
      summary: Add a pet to the store
      requestBody:
        required: true
        content:
          application/json:
            schema: {{$ref: "#/components/schemas/NewPet"}}
  /pets/{{petId}}:
    get:
      operationId: getPet
      summary: Find a pet by id
      parameters:
        - {{name: petId, in: path, required: true, schema: {{type: string}}}}
  /slow:
    get: {{operationId: slowCall, summary: Takes three seconds}}
  /huge:
    get: {{operationId: hugeCall, summary: Returns a very large document}}
  /broken:
    get: {{operationId: brokenCall, summary: Always fails}}
components:
  schemas:
    NewPet:
      type: object
      required: [name]
      properties:
        name: {{type: string}}
        tag: {{type: string}}
"##
    )
}

pub use corral_test_support::dummy_aws;

/// A gateway config with the pets API (API key), a Lambda target and the
/// built-in WASM tools, all pointing at `upstream`.
pub fn standard_config(upstream: &Upstream) -> Value {
    json!({
        "name": "test-gateway",
        "gatewayId": "gw-test-0123456789",
        "protocolConfiguration": {"mcp": {"searchType": "SEMANTIC", "instructions": "Test gateway"}},
        "limits": {"callTimeoutMs": 1500, "maxResponseBytes": 262144, "pageSize": 4},
        "aws": {"lambdaEndpointUrl": upstream.url},
        "credentialProviders": [
            {"name": "pets-key", "type": "API_KEY", "secret": "pet-key"}
        ],
        "targets": [
            {
                "name": "pets",
                "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": pets_openapi(&upstream.url)}}},
                "credentialProviderConfigurations": [{
                    "credentialProviderType": "API_KEY",
                    "credentialProvider": {"apiKeyCredentialProvider": {
                        "providerArn": "arn:aws:bedrock-agentcore:us-east-1:123456789012:token-vault/default/apikeycredentialprovider/pets-key",
                        "credentialParameterName": "x-api-key",
                        "credentialLocation": "HEADER"
                    }}
                }]
            },
            {
                "name": "orders",
                "targetConfiguration": {"mcp": {"lambda": {
                    "lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-fn",
                    "toolSchema": {"inlinePayload": [
                        {"name": "get_order", "description": "Look up an order by id",
                         "inputSchema": {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}},
                        {"name": "add", "description": "Add two integers",
                         "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}},
                        {"name": "explode", "description": "Always fails",
                         "inputSchema": {"type": "object", "properties": {}}}
                    ]}
                }}},
                "credentialProviderConfigurations": [{"credentialProviderType": "GATEWAY_IAM_ROLE"}]
            },
            {"name": "calculator", "targetConfiguration": {"mcp": {"wasm": {"builtin": "calculator"}}}},
            {"name": "json", "targetConfiguration": {"mcp": {"wasm": {"builtin": "json"}}}}
        ]
    })
}

/// One sandbox engine per test binary, so tool components compile once.
pub fn engine() -> SandboxEngine {
    static ENGINE: OnceLock<SandboxEngine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            SandboxEngine::new(EngineConfig {
                max_instances: 128,
                ..EngineConfig::default()
            })
            .unwrap()
        })
        .clone()
}

/// Options with the shared engine and dummy AWS credentials.
pub fn options() -> GatewayOptions {
    GatewayOptions {
        aws: Some(dummy_aws()),
        engine: Some(engine()),
        ..GatewayOptions::default()
    }
}

/// Builds a gateway from a JSON config value.
pub async fn gateway(config: Value) -> Arc<Gateway> {
    let config: GatewayConfig = serde_json::from_value(config).unwrap();
    Gateway::new(config, options()).await.unwrap()
}

/// Trace id of the caller in [`in_caller_trace`].
pub const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Runs `work` (on this thread) inside a span that continues a caller's
/// trace, with Corral's spans turned into OpenTelemetry spans.
pub async fn in_caller_trace<F: std::future::Future>(work: F) -> F::Output {
    use corral_telemetry::OpenTelemetrySpanExt;
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;
    let telemetry =
        corral_telemetry::Telemetry::start(&corral_telemetry::TelemetryConfig::disabled()).unwrap();
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    let _default = tracing::subscriber::set_default(subscriber);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{CALLER_TRACE}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let caller = tracing::info_span!(target: "corral_test", "caller");
    caller.set_parent(corral_telemetry::extract_context(&headers));
    work.instrument(caller).await
}
pub mod search_set;
