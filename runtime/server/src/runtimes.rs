//! AgentCore Runtime's control plane (`bedrock-agentcore-control`): agent
//! runtimes, their immutable versions and their endpoints, in the shapes
//! boto3 sends and parses.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::artifact::{ArtifactLocation, RuntimeArtifact};
use crate::error::{ApiError, ApiResult};
use crate::registry::{
    AgentRegistry, AgentRuntime, DeployRequest, DeployTarget, EchoedSettings,
    LifecycleConfiguration, RuntimeEndpoint, RuntimeVersion,
};
use corral_api::pagination::{PageQuery, page};

/// Largest page of runtimes, versions and endpoints (AgentCore's).
const MAX_PAGE: u32 = 100;

/// The runtime and endpoint routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runtimes/", post(list_runtimes).put(create_runtime))
        .route(
            "/runtimes/{runtime}/",
            get(get_runtime).put(update_runtime).delete(delete_runtime),
        )
        .route("/runtimes/{runtime}/versions/", post(list_versions))
        .route(
            "/runtimes/{runtime}/runtime-endpoints/",
            put(create_endpoint).post(list_endpoints),
        )
        .route(
            "/runtimes/{runtime}/runtime-endpoints/{endpoint}/",
            get(get_endpoint)
                .put(update_endpoint)
                .delete(delete_endpoint),
        )
}

/// Parses a JSON request body, or answers `ValidationException`.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    corral_api::parse_json(body)
        .map_err(|e| ApiError::validation(format!("could not parse request body: {e}")))
}

fn accepted(value: Value) -> ApiResult {
    Ok((StatusCode::ACCEPTED, axum::Json(value)).into_response())
}

fn ok(value: Value) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

/// `AgentRuntime` list entry for `version` of `r`.
fn version_summary(r: &AgentRuntime, v: &RuntimeVersion) -> Value {
    json!({
        "agentRuntimeArn": r.agent_runtime_arn,
        "agentRuntimeId": r.agent_runtime_id,
        "agentRuntimeName": r.agent_runtime_name,
        "agentRuntimeVersion": v.agent_runtime_version,
        "description": v.description.clone().unwrap_or_default(),
        "lastUpdatedAt": v.created_at,
        "status": "READY",
    })
}

/// `AgentRuntime` list entry for the latest version of `r`.
pub(crate) fn summary(r: &AgentRuntime) -> Value {
    match r.latest() {
        Some(v) => version_summary(r, v),
        None => json!({
            "agentRuntimeArn": r.agent_runtime_arn,
            "agentRuntimeId": r.agent_runtime_id,
            "agentRuntimeName": r.agent_runtime_name,
            "status": "READY",
        }),
    }
}

/// The body of `CreateAgentRuntime` and `UpdateAgentRuntime`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeInput {
    #[serde(default)]
    agent_runtime_name: Option<String>,
    agent_runtime_artifact: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    role_arn: Option<String>,
    #[serde(default)]
    network_configuration: Option<Value>,
    #[serde(default)]
    protocol_configuration: Option<Value>,
    #[serde(default)]
    lifecycle_configuration: LifecycleConfiguration,
    #[serde(default)]
    environment_variables: BTreeMap<String, String>,
    /// Corral extension: memory resource (id) the agent's `memory` interface uses.
    #[serde(default)]
    memory_id: Option<String>,
    /// Idempotency token (boto3 fills one in and reuses it on retries).
    #[serde(default)]
    client_token: Option<String>,
}

impl RuntimeInput {
    /// The artifact to fetch and the deploy it makes.
    fn into_deploy(
        self,
        target: DeployTarget,
    ) -> Result<(RuntimeArtifact, DeployRequest), ApiError> {
        let artifact = RuntimeArtifact::parse(&self.agent_runtime_artifact)?;
        let request = DeployRequest {
            name: self.agent_runtime_name.unwrap_or_default(),
            target,
            echoed: EchoedSettings {
                agent_runtime_artifact: artifact.reported.clone(),
                role_arn: self.role_arn,
                network_configuration: self.network_configuration,
                protocol_configuration: self.protocol_configuration,
            },
            description: self.description,
            lifecycle: self.lifecycle_configuration,
            environment: self.environment_variables,
            memory_id: self.memory_id,
            client_token: self.client_token,
        };
        Ok((artifact, request))
    }
}

/// Fetches `artifact` and deploys it as `request` asks (a retry of a call
/// that already deployed returns its runtime without fetching again).
async fn deploy_artifact(
    state: &AppState,
    artifact: RuntimeArtifact,
    request: DeployRequest,
) -> Result<AgentRuntime, ApiError> {
    if let Some(done) = request
        .client_token
        .as_deref()
        .and_then(|t| state.registry.by_client_token(t))
    {
        return Ok(done);
    }
    let bytes = match &artifact.location {
        ArtifactLocation::Component(digest) => {
            let digest = digest.clone();
            // The digest names the artifact: one that is not here is a bad
            // artifact, not a missing runtime.
            off_thread(state, move |registry| registry.component_source(&digest))
                .await
                .map_err(|e| match e.name() {
                    "ResourceNotFoundException" => {
                        ApiError::validation(format!("agentRuntimeArtifact: {}", e.message()))
                    }
                    _ => e,
                })?
        }
        _ => {
            // Fetches hold up to a component each in memory: as many at
            // once as compiles.
            let _permit = state
                .deploys
                .acquire()
                .await
                .map_err(|e| ApiError::internal(format!("deploy queue closed: {e}")))?;
            state.artifacts.fetch(&artifact).await?
        }
    };
    deploy_off_thread(state, bytes, request).await
}

/// Runs a registry change on a blocking thread: it waits for the disk.
async fn off_thread<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&AgentRegistry) -> Result<T, crate::registry::RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    let registry = state.registry.clone();
    tokio::task::spawn_blocking(move || work(&registry))
        .await
        .map_err(|e| ApiError::internal(format!("registry task failed: {e}")))?
        .map_err(ApiError::from)
}

/// Deploys on a blocking thread, at most one per core at a time:
/// compiling a component is CPU-bound and holds it in memory.
pub(crate) async fn deploy_off_thread(
    state: &AppState,
    bytes: impl AsRef<[u8]> + Send + 'static,
    request: DeployRequest,
) -> Result<AgentRuntime, ApiError> {
    let _permit = state
        .deploys
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("deploy queue closed: {e}")))?;
    let registry = state.registry.clone();
    tokio::task::spawn_blocking(move || registry.deploy(bytes.as_ref(), request))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// `CreateAgentRuntime`.
async fn create_runtime(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let input: RuntimeInput = parse_body(&body)?;
    if input.agent_runtime_name.is_none() {
        return Err(ApiError::validation("agentRuntimeName is required"));
    }
    let (artifact, request) = input.into_deploy(DeployTarget::Create)?;
    let runtime = deploy_artifact(&state, artifact, request).await?;
    let version = runtime.latest();
    accepted(json!({
        "agentRuntimeArn": runtime.agent_runtime_arn,
        "agentRuntimeId": runtime.agent_runtime_id,
        "agentRuntimeVersion": version.map(|v| v.agent_runtime_version.clone()),
        "createdAt": version.map(|v| v.created_at),
        "status": "READY",
    }))
}

/// `UpdateAgentRuntime`: a new immutable version; `DEFAULT` follows it.
async fn update_runtime(
    State(state): State<AppState>,
    Path(runtime): Path<String>,
    body: Bytes,
) -> ApiResult {
    let input: RuntimeInput = parse_body(&body)?;
    let (artifact, request) = input.into_deploy(DeployTarget::Update(runtime))?;
    let runtime = deploy_artifact(&state, artifact, request).await?;
    let created = runtime.versions.first().map(|v| v.created_at);
    let version = runtime.latest();
    accepted(json!({
        "agentRuntimeArn": runtime.agent_runtime_arn,
        "agentRuntimeId": runtime.agent_runtime_id,
        "agentRuntimeVersion": version.map(|v| v.agent_runtime_version.clone()),
        "createdAt": created,
        "lastUpdatedAt": version.map(|v| v.created_at),
        "status": "READY",
    }))
}

async fn list_runtimes(State(state): State<AppState>, Query(query): Query<PageQuery>) -> ApiResult {
    let (runtimes, next) = page(
        state.registry.list(),
        |r| r.agent_runtime_name.clone(),
        &query,
        "runtimes",
        MAX_PAGE,
    )?;
    let runtimes: Vec<Value> = runtimes.iter().map(summary).collect();
    ok(json!({ "agentRuntimes": runtimes, "nextToken": next }))
}

#[derive(Deserialize, Default)]
struct VersionQuery {
    version: Option<String>,
}

/// `GetAgentRuntime` of the latest version, or of `?version=`.
async fn get_runtime(
    State(state): State<AppState>,
    Path(runtime): Path<String>,
    Query(query): Query<VersionQuery>,
) -> ApiResult {
    let r = state.registry.get(&runtime)?;
    let v = match query.version.as_deref() {
        Some(version) => r.version(version)?,
        None => r
            .latest()
            .ok_or_else(|| ApiError::not_found(format!("runtime {runtime} has no version")))?,
    };
    let created = r
        .versions
        .first()
        .map_or(v.created_at, |first| first.created_at);
    let echoed = &v.echoed;
    ok(json!({
        "agentRuntimeArn": r.agent_runtime_arn,
        "agentRuntimeId": r.agent_runtime_id,
        "agentRuntimeName": r.agent_runtime_name,
        "agentRuntimeVersion": v.agent_runtime_version,
        "description": v.description,
        "createdAt": created,
        "lastUpdatedAt": v.created_at,
        "status": "READY",
        "agentRuntimeArtifact": echoed.agent_runtime_artifact.clone()
            .unwrap_or_else(|| crate::artifact::component_artifact(&v.digest)),
        "roleArn": echoed.role_arn.clone()
            .unwrap_or_else(|| "arn:aws:iam::000000000000:role/corral".to_string()),
        "networkConfiguration": echoed.network_configuration.clone()
            .unwrap_or_else(|| json!({ "networkMode": "PUBLIC" })),
        "protocolConfiguration": echoed.protocol_configuration.clone()
            .unwrap_or_else(|| json!({ "serverProtocol": "HTTP" })),
        "lifecycleConfiguration": v.lifecycle_configuration,
        "environmentVariables": v.environment_variables,
        "memoryId": v.memory_id,
        "componentDigest": v.digest,
        "componentSize": v.size,
    }))
}

async fn delete_runtime(State(state): State<AppState>, Path(runtime): Path<String>) -> ApiResult {
    let r = off_thread(&state, move |registry| registry.delete(&runtime)).await?;
    accepted(json!({ "agentRuntimeId": r.agent_runtime_id, "status": "DELETING" }))
}

/// `ListAgentRuntimeVersions`, newest first.
async fn list_versions(
    State(state): State<AppState>,
    Path(runtime): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult {
    let r = state.registry.get(&runtime)?;
    let versions: Vec<&RuntimeVersion> = r.versions.iter().rev().collect();
    // Newest first: keys descend with the version number.
    let key = |v: &&RuntimeVersion| {
        let n: u64 = v.agent_runtime_version.parse().unwrap_or(0);
        format!("{:020}", u64::MAX - n)
    };
    let (versions, next) = page(versions, key, &query, "versions", MAX_PAGE)?;
    let versions: Vec<Value> = versions.iter().map(|v| version_summary(&r, v)).collect();
    ok(json!({ "agentRuntimes": versions, "nextToken": next }))
}

/// An endpoint as `GetAgentRuntimeEndpoint` and list entries show it.
fn endpoint_json(r: &AgentRuntime, e: &RuntimeEndpoint) -> Value {
    let version = r.endpoint_version(e);
    json!({
        "name": e.name,
        "id": e.endpoint_id(),
        "agentRuntimeArn": r.agent_runtime_arn,
        "agentRuntimeEndpointArn": format!("{}/runtime-endpoint/{}", r.agent_runtime_arn, e.name),
        "liveVersion": version,
        "targetVersion": version,
        "description": e.description,
        "status": "READY",
        "createdAt": e.created_at,
        "lastUpdatedAt": e.last_updated(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointInput {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    agent_runtime_version: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// `CreateAgentRuntimeEndpoint`; `ConflictException` when the name is taken.
async fn create_endpoint(
    State(state): State<AppState>,
    Path(runtime): Path<String>,
    body: Bytes,
) -> ApiResult {
    let input: EndpointInput = parse_body(&body)?;
    let name = input
        .name
        .ok_or_else(|| ApiError::validation("name is required"))?;
    let (r, e) = off_thread(&state, move |registry| {
        registry.create_endpoint(
            &runtime,
            &name,
            input.agent_runtime_version.as_deref(),
            input.description,
        )
    })
    .await?;
    let mut out = endpoint_json(&r, &e);
    out["agentRuntimeId"] = json!(r.agent_runtime_id);
    out["endpointName"] = json!(e.name);
    accepted(out)
}

async fn list_endpoints(
    State(state): State<AppState>,
    Path(runtime): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult {
    let r = state.registry.get(&runtime)?;
    let endpoints: Vec<&RuntimeEndpoint> = r.endpoints.values().collect();
    let (endpoints, next) = page(endpoints, |e| e.name.clone(), &query, "endpoints", MAX_PAGE)?;
    let endpoints: Vec<Value> = endpoints.iter().map(|e| endpoint_json(&r, e)).collect();
    ok(json!({ "runtimeEndpoints": endpoints, "nextToken": next }))
}

async fn get_endpoint(
    State(state): State<AppState>,
    Path((runtime, endpoint)): Path<(String, String)>,
) -> ApiResult {
    let r = state.registry.get(&runtime)?;
    let e = r.endpoint(&endpoint)?;
    ok(endpoint_json(&r, e))
}

async fn update_endpoint(
    State(state): State<AppState>,
    Path((runtime, endpoint)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let input: EndpointInput = parse_body(&body)?;
    let (r, e) = off_thread(&state, move |registry| {
        registry.update_endpoint(
            &runtime,
            &endpoint,
            input.agent_runtime_version.as_deref(),
            input.description,
        )
    })
    .await?;
    accepted(endpoint_json(&r, &e))
}

async fn delete_endpoint(
    State(state): State<AppState>,
    Path((runtime, endpoint)): Path<(String, String)>,
) -> ApiResult {
    let (r, e) = off_thread(&state, move |registry| {
        registry.delete_endpoint(&runtime, &endpoint)
    })
    .await?;
    accepted(json!({
        "status": "DELETING",
        "agentRuntimeId": r.agent_runtime_id,
        "endpointName": e.name,
    }))
}
