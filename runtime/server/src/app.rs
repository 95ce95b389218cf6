//! The HTTP application: AgentCore Runtime's data plane (`InvokeAgentRuntime`,
//! `StopRuntimeSession`, `/ping`), the runtime part of its control plane, the
//! Corral deploy and sessions API, and the memory routes.

use corral_telemetry::OpenTelemetrySpanExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use corral_host::{InvocationRequest, InvokeError, SessionManager};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::registry::{AgentRegistry, DeployRequest, LifecycleConfiguration};
use crate::runtimes::{deploy_off_thread, summary};

/// Header carrying the runtime session id.
pub const SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";
/// Header carrying the request id of an invocation.
pub const REQUEST_ID_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-request-id";
/// Header carrying the caller's user id.
pub const USER_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-user-id";
/// Largest invocation payload (AgentCore's limit).
pub const MAX_PAYLOAD_BYTES: usize = 100 * 1024 * 1024;

/// Shared state of the server: one `Arc`, so the per-request clones the
/// `from_fn` middlewares make cost one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl AppState {
    /// State holding `inner`.
    pub fn new(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct AppStateInner {
    /// Deployed agents.
    pub registry: Arc<AgentRegistry>,
    /// Live sessions.
    pub sessions: Arc<SessionManager>,
    /// Invocations in flight (for `/ping`'s `HealthyBusy`).
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// When `/ping`'s status last changed, epoch seconds.
    pub status_changed: Arc<std::sync::atomic::AtomicU64>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Inbound authentication; `None` accepts every caller.
    pub auth: Option<Arc<corral_gateway::Authenticator>>,
    /// Host names requests may carry; `None` accepts any.
    pub allowed_hosts: Option<Arc<Vec<String>>>,
    /// Fetches runtime artifacts (S3, files).
    pub artifacts: Arc<crate::artifact::ArtifactFetcher>,
    /// Deploys (fetch, compile) running at once: one per core.
    pub deploys: Arc<tokio::sync::Semaphore>,
    /// A store in the shared database, if any; `/ping` is unhealthy while
    /// it does not answer.
    pub database: Option<Arc<dyn corral_storage::Storage>>,
    /// This replica's part of a cluster, when replicas share a database.
    pub cluster: Option<Arc<crate::placement::Cluster>>,
}

/// Builds the router (memory routes are merged by the caller when enabled).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/metrics", get(metrics))
        .route("/runtimes/{runtime}/invocations", post(invoke))
        .route("/runtimes/{runtime}/stopruntimesession", post(stop_session))
        .route("/corral/runtimes/{name}", post(deploy))
        .route("/corral/sessions", get(list_sessions))
        .route("/corral/sessions/{session}", delete(stop_any_session))
        .route("/corral/sessions/{session}/journal", get(session_journal))
        .route("/corral/components/{digest}", get(component_source))
        .merge(crate::runtimes::routes())
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::placement::place_sessions,
        ))
        .with_state(state)
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `/ping`'s 503 answer: this process cannot serve now, saying why.
fn unhealthy(state: &AppState, why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(corral_api::ERROR_TYPE_HEADER, "ServiceUnavailableException")],
        axum::Json(json!({
            "status": "Unhealthy",
            "message": why,
            "time_of_last_update": state.status_changed.load(std::sync::atomic::Ordering::Relaxed),
        })),
    )
        .into_response()
}

async fn ping(State(state): State<AppState>) -> Response {
    if let Some(database) = state.database.clone() {
        let answers = tokio::task::spawn_blocking(move || database.check()).await;
        if let Ok(Err(error)) | Err(error) = answers.map_err(|e| {
            corral_storage::StorageError::Engine(format!("the health check failed: {e}"))
        }) {
            tracing::warn!(error = %error, "unhealthy: the database does not answer");
            return unhealthy(&state, "the database does not answer");
        }
    }
    if let Some(cluster) = &state.cluster
        && !cluster.directory().holds_lease()
    {
        return unhealthy(&state, "this replica's lease has lapsed");
    }
    let busy = state.in_flight.load(std::sync::atomic::Ordering::Relaxed) > 0;
    axum::Json(json!({
        "status": if busy { "HealthyBusy" } else { "Healthy" },
        "time_of_last_update": state.status_changed.load(std::sync::atomic::Ordering::Relaxed),
    }))
    .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics
        .sessions_live
        .set(state.sessions.live_sessions() as i64);
    state
        .metrics
        .guest_memory_reserved
        .set(i64::try_from(state.sessions.reserved_memory()).unwrap_or(i64::MAX));
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// One server span per request (but `/ping` and `/metrics`, and the
/// invocations route, whose handler makes its own), named after the matched
/// route, a child of the caller's W3C trace context, with the response status.
pub async fn trace_requests(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    if path == "/ping" || path == "/metrics" || path.ends_with("/invocations") {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unknown route", |m| m.as_str())
        .to_string();
    let method = request.method().as_str().to_string();
    let span = tracing::info_span!(
        "http.server",
        otel.name = format!("{method} {route}").as_str(),
        otel.kind = "server",
        http.request.method = method.as_str(),
        http.route = route.as_str(),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if !span.is_disabled() {
        span.set_parent(corral_telemetry::extract_context(request.headers()));
    }
    let response = corral_telemetry::in_span(&span, next.run(request)).await;
    span.record("http.response.status_code", response.status().as_u16());
    if let Some(kind) = response
        .headers()
        .get(crate::error::ERROR_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        span.record("error.type", kind);
    }
    response
}

/// Refuses requests whose `Host` is not an allowed host name (when the
/// server names some): the defence against DNS rebinding for a server on
/// loopback.
pub async fn check_host(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(allowed) = &state.allowed_hosts else {
        return next.run(request).await;
    };
    let host = header(request.headers(), "host").unwrap_or_default();
    // `name:port`, `[v6]:port`, or a bare name.
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::FORBIDDEN,
        "AccessDeniedException",
        format!("Host '{host}' is not a name this server answers to"),
    )
    .into_response()
}

/// Rejects unauthenticated requests on every route but `/ping`, and names
/// each request's caller (the principal, else the peer address).
pub async fn authenticate(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = state.auth.as_ref().filter(|a| a.required()) else {
        return next.run(with_peer_caller(request)).await;
    };
    if request.uri().path() == "/ping" {
        return next.run(request).await;
    }
    let authorization = header(request.headers(), "authorization").map(str::to_string);
    let api_key = header(request.headers(), "x-api-key").map(str::to_string);
    match auth
        .authenticate(authorization.as_deref(), api_key.as_deref())
        .await
    {
        Ok(principal) => {
            let mut request = request;
            request
                .extensions_mut()
                .insert(Caller(principal.id().to_string()));
            next.run(request).await
        }
        Err(e) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "AccessDeniedException", e.0).into_response()
        }
    }
}

/// Who is calling, for per-caller session quotas: the authenticated
/// principal's id (API key name or JWT subject), else the peer's IP address.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Names the caller of a request that authentication did not name: its
/// peer's IP address, when the server knows it.
fn with_peer_caller(mut request: axum::extract::Request) -> axum::extract::Request {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_string());
    if let Some(peer) = peer {
        request.extensions_mut().insert(Caller(peer));
    }
    request
}

#[derive(Deserialize, Default)]
struct Qualifier {
    qualifier: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Counts an invocation in flight for `/ping` while alive.
struct InFlight(AppState);

impl InFlight {
    fn start(state: &AppState) -> Self {
        if state
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            state
                .status_changed
                .store(epoch_seconds(), std::sync::atomic::Ordering::Relaxed);
        }
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self
            .0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed)
            == 1
        {
            self.0
                .status_changed
                .store(epoch_seconds(), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Lengths AgentCore accepts for `runtimeSessionId`.
pub(crate) const SESSION_ID_LENGTH: std::ops::RangeInclusive<usize> = 33..=256;

/// The `session.id` baggage entry, if it is a usable session id.
pub(crate) fn baggage_session(cx: &corral_telemetry::Context) -> Option<String> {
    let id = corral_telemetry::baggage_session_id(cx)?;
    corral_host::validate_session_id(&id).is_ok().then_some(id)
}

/// `InvokeAgentRuntime`: one server span per invocation, accepted or not,
/// carrying the response status; rejections are counted as
/// `corral_invocations_total{outcome="rejected"}`.
async fn invoke(
    State(state): State<AppState>,
    Path(runtime): Path<String>,
    Query(query): Query<Qualifier>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    // The caller's W3C trace context; a `session.id` in its baggage names
    // the session when the request has no session header (as AgentCore).
    let trace_context = corral_telemetry::extract_context(&headers);
    let session_id = match header(&headers, SESSION_HEADER) {
        Some(id) if SESSION_ID_LENGTH.contains(&id.len()) => Ok(id.to_string()),
        Some(id) => Err(ApiError::validation(format!(
            "runtimeSessionId must be 33 to 256 characters, got {}",
            id.len()
        ))),
        None => {
            Ok(baggage_session(&trace_context).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()))
        }
    };
    let span = tracing::info_span!(
        "http.server",
        otel.name = "POST /runtimes/{agentRuntimeArn}/invocations",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/runtimes/{agentRuntimeArn}/invocations",
        gen_ai.agent.name = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if !span.is_disabled() {
        match &session_id {
            Ok(id) => span.set_session_parent(trace_context.clone(), id),
            Err(_) => span.set_parent(trace_context.clone()),
        }
    }
    let result = match session_id {
        Ok(session_id) => {
            let call = Invocation {
                runtime,
                qualifier: query.qualifier,
                caller: caller.map(|axum::Extension(Caller(id))| id),
                session_id,
            };
            corral_telemetry::in_span(&span, dispatch(&state, call, &headers, payload)).await
        }
        Err(e) => {
            state.metrics.record_rejected(None);
            Err(e)
        }
    };
    let response = result.unwrap_or_else(|e| {
        span.record("error.type", e.name());
        e.into_response()
    });
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// What an accepted invocation request names.
struct Invocation {
    runtime: String,
    qualifier: Option<String>,
    caller: Option<String>,
    session_id: String,
}

/// Resolves the agent and runs the invocation (in the current span).
async fn dispatch(
    state: &AppState,
    call: Invocation,
    headers: &HeaderMap,
    payload: Bytes,
) -> ApiResult {
    let loaded = state
        .registry
        .loaded_for(&call.runtime, call.qualifier.as_deref());
    let resolved = match loaded {
        Some(found) => Ok(found),
        // Not loaded here yet (or known only to the shared store): loaded,
        // or compiled first, off the async threads.
        None => match state.registry.get(&call.runtime).and_then(|runtime| {
            let version = runtime.resolve(call.qualifier.as_deref())?.clone();
            Ok((runtime, version))
        }) {
            Ok((runtime, version)) => {
                let registry = state.registry.clone();
                tokio::task::spawn_blocking(move || {
                    let agent = registry.compiled(&runtime, &version)?;
                    Ok((runtime.agent_runtime_name, agent))
                })
                .await
                .map_err(|e| ApiError::internal(format!("the compile task failed: {e}")))?
            }
            Err(error) => Err(error),
        },
    };
    let (agent_name, agent) = match resolved {
        Ok(found) => found,
        Err(e) => {
            let known = state.registry.get(&call.runtime).ok();
            state
                .metrics
                .record_rejected(known.as_ref().map(|r| r.agent_runtime_name.as_str()));
            return Err(e.into());
        }
    };
    let span = tracing::Span::current();
    span.record("gen_ai.agent.name", agent_name.as_str());
    let session_id = call.session_id;
    let caller = call.caller;
    let content_type = header(headers, "content-type")
        .unwrap_or("application/json")
        .to_string();
    let actor = header(headers, USER_HEADER)
        .unwrap_or("default")
        .to_string();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let mut request = InvocationRequest::new(session_id.clone(), payload.to_vec())
        .actor(actor)
        .content_type(content_type)
        .stream(tx);
    request.caller = caller;
    let guard = InFlight::start(state);
    let sessions = state.sessions.clone();
    let metrics = state.metrics.clone();
    let mut call = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let result = sessions.invoke(&agent, request).await;
        let elapsed = started.elapsed();
        metrics.record(&agent_name, elapsed.as_secs_f64(), &result);
        match &result {
            // A log line only (`parent: None`): as an event on the request's
            // span it repeated what `invoke_agent` records, and recording
            // it there cost ~1.5% of the server's CPU per invocation.
            Ok(r) => tracing::info!(
                parent: None,
                agent = %agent_name,
                session.id = %r.session_id,
                request_id = %r.request_id,
                new_session = r.new_session,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "invocation"
            ),
            Err(e) => {
                tracing::warn!(agent = %agent_name, error = %e, duration_ms = elapsed.as_secs_f64() * 1000.0, "invocation failed")
            }
        }
        result
    }.instrument(span.clone()));
    // The agent streams if it sends a chunk before it returns.
    let first = tokio::select! {
        biased;
        done = &mut call => {
            drop(guard);
            // Chunks the agent sent before it returned still go out first.
            let mut chunks = Vec::new();
            while let Ok(chunk) = rx.try_recv() {
                chunks.push(chunk);
            }
            if chunks.is_empty() {
                return buffered(done);
            }
            return streamed_whole(chunks, done, &session_id);
        }
        chunk = rx.recv() => chunk,
    };
    let Some(first) = first else {
        // The sender closed without a chunk: the invocation is ending.
        let done = call.await;
        drop(guard);
        return buffered(done);
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let stream = async_stream(Some(first), rx, call, guard);
    let mut out = Response::new(Body::from_stream(stream));
    let h = out.headers_mut();
    insert(h, "content-type", "text/event-stream");
    insert(h, SESSION_HEADER, &session_id);
    insert(h, REQUEST_ID_HEADER, &request_id);
    Ok(out)
}

/// Server-sent events: each chunk as a `data:` event, then the final payload.
fn async_stream(
    first: Option<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    call: tokio::task::JoinHandle<Result<corral_host::InvocationResponse, InvokeError>>,
    guard: InFlight,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let (out_tx, out_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let _guard = guard;
        let mut rx = rx;
        let event = sse_event;
        if let Some(chunk) = first
            && out_tx.send(Ok(event(&chunk))).await.is_err()
        {
            return;
        }
        while let Some(chunk) = rx.recv().await {
            if out_tx.send(Ok(event(&chunk))).await.is_err() {
                return;
            }
        }
        let tail = match call.await {
            Ok(Ok(response)) if !response.payload.is_empty() => Some(event(&response.payload)),
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(Bytes::from(format!(
                "event: error\ndata: {}\n\n",
                json!({"message": e.to_string()})
            ))),
            Err(e) => Some(Bytes::from(format!(
                "event: error\ndata: {}\n\n",
                json!({"message": e.to_string()})
            ))),
        };
        if let Some(tail) = tail {
            let _ = out_tx.send(Ok(tail)).await;
        }
    });
    futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

type CallResult =
    Result<Result<corral_host::InvocationResponse, InvokeError>, tokio::task::JoinError>;

/// A whole (not streamed) invocation response.
fn buffered(done: CallResult) -> ApiResult {
    let response = done.map_err(|e| ApiError::internal(e.to_string()))??;
    let mut out = (StatusCode::OK, response.payload).into_response();
    let h = out.headers_mut();
    insert(h, "content-type", &response.content_type);
    insert(h, SESSION_HEADER, &response.session_id);
    insert(h, REQUEST_ID_HEADER, &response.request_id);
    Ok(out)
}

/// Formats one chunk as a server-sent event.
fn sse_event(chunk: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(chunk);
    let mut e = String::new();
    for line in text.split('\n') {
        e.push_str("data: ");
        e.push_str(line);
        e.push('\n');
    }
    e.push('\n');
    Bytes::from(e)
}

/// A streamed response whose chunks all arrived before the agent returned.
fn streamed_whole(chunks: Vec<Vec<u8>>, done: CallResult, session_id: &str) -> ApiResult {
    let response = done.map_err(|e| ApiError::internal(e.to_string()))??;
    let mut body = Vec::new();
    for chunk in chunks
        .iter()
        .chain((!response.payload.is_empty()).then_some(&response.payload))
    {
        body.extend_from_slice(&sse_event(chunk));
    }
    let mut out = (StatusCode::OK, body).into_response();
    let h = out.headers_mut();
    insert(h, "content-type", "text/event-stream");
    insert(h, SESSION_HEADER, session_id);
    insert(h, REQUEST_ID_HEADER, &response.request_id);
    Ok(out)
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

async fn stop_session(
    State(state): State<AppState>,
    Path(runtime): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let runtime = state.registry.get(&runtime)?;
    let Some(session) = header(&headers, SESSION_HEADER) else {
        return Err(ApiError::validation("runtimeSessionId header is required"));
    };
    // Ending a session writes to its journal: off the async threads.
    let sessions = state.sessions.clone();
    let (agent, id) = (runtime.agent_runtime_name.clone(), session.to_string());
    let stopped = tokio::task::spawn_blocking(move || sessions.stop(&agent, &id))
        .await
        .map_err(|e| ApiError::internal(format!("stop task failed: {e}")))?;
    if !stopped {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!(
                "no live session {session} on {}",
                runtime.agent_runtime_name
            ),
        ));
    }
    let mut out = (StatusCode::OK, axum::Json(json!({}))).into_response();
    insert(out.headers_mut(), SESSION_HEADER, session);
    Ok(out)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DeployQuery {
    description: Option<String>,
    idle_runtime_session_timeout: Option<u64>,
    max_lifetime: Option<u64>,
    /// `KEY=VALUE` pairs separated by commas.
    env: Option<String>,
    /// Memory resource (id) the agent's `memory` interface uses.
    memory_id: Option<String>,
}

/// Corral's deploy: the body is the component.
async fn deploy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<DeployQuery>,
    body: Bytes,
) -> ApiResult {
    let mut environment = std::collections::BTreeMap::new();
    for pair in query
        .env
        .iter()
        .flat_map(|e| e.split(','))
        .filter(|p| !p.is_empty())
    {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ApiError::validation(format!(
                "env entry '{pair}' is not KEY=VALUE"
            )));
        };
        environment.insert(k.to_string(), v.to_string());
    }
    let request = DeployRequest {
        name,
        description: query.description,
        lifecycle: LifecycleConfiguration {
            idle_runtime_session_timeout: query.idle_runtime_session_timeout,
            max_lifetime: query.max_lifetime,
        },
        environment,
        memory_id: query.memory_id,
        ..DeployRequest::default()
    };
    let runtime = deploy_off_thread(&state, body, request).await?;
    Ok((StatusCode::CREATED, axum::Json(summary(&runtime))).into_response())
}

async fn list_sessions(State(state): State<AppState>) -> ApiResult {
    let here = state
        .cluster
        .as_ref()
        .map(|c| c.directory().replica().to_string());
    let mut sessions: Vec<Value> = state
        .sessions
        .list()
        .into_iter()
        .map(|s| {
            json!({
                "agentRuntimeName": s.agent,
                "agentRuntimeVersion": s.version,
                "runtimeSessionId": s.session_id,
                "state": format!("{:?}", s.status),
                "ageSeconds": s.age.as_secs_f64(),
                "lastActivity": s.last_activity.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64(),
                "invocations": s.invocations,
                "memoryBytes": s.memory_bytes,
                "caller": s.caller,
                "replica": here,
            })
        })
        .collect();
    // In a cluster, the sessions other replicas hold, with their holder. A
    // session whose holder's lease has lapsed (the replica died, or is late
    // renewing under load) stays listed as `Resumable`: its journal is
    // intact and its next invocation resumes it on whichever replica gets it.
    if let Some(cluster) = &state.cluster {
        let directory = cluster.directory().clone();
        let placed = tokio::task::spawn_blocking(move || directory.sessions())
            .await
            .map_err(|e| ApiError::internal(format!("the directory task failed: {e}")))?
            .map_err(|e| {
                if e.is_unavailable() {
                    ApiError::unavailable(format!("{e}: retry shortly"))
                } else {
                    ApiError::internal(e.to_string())
                }
            })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let local: HashSet<String> = sessions
            .iter()
            .filter_map(|s| s["runtimeSessionId"].as_str().map(str::to_string))
            .collect();
        for (record, alive) in placed {
            if local.contains(&record.session_id) {
                continue;
            }
            let state = if alive && Some(&record.replica) != here.as_ref() {
                "Remote"
            } else {
                "Resumable"
            };
            sessions.push(json!({
                "agentRuntimeName": record.agent,
                "runtimeSessionId": record.session_id,
                "state": state,
                "ageSeconds": now.saturating_sub(Duration::from_millis(record.since_ms)).as_secs_f64(),
                "replica": record.replica,
                "replicaAddress": record.address,
            }));
        }
    }
    Ok(axum::Json(json!({ "sessions": sessions })).into_response())
}

#[derive(Deserialize, Default)]
struct StopQuery {
    /// Also delete the session's journal.
    #[serde(default)]
    purge: bool,
}

async fn stop_any_session(
    State(state): State<AppState>,
    Path(session): Path<String>,
    Query(query): Query<StopQuery>,
) -> ApiResult {
    let sessions = state.sessions.clone();
    let id = session.clone();
    let stopped = tokio::task::spawn_blocking(move || sessions.stop_session_everywhere(&id))
        .await
        .map_err(|e| ApiError::internal(format!("stop task failed: {e}")))?;
    let purged = match (&state.sessions.config().journal, query.purge) {
        (Some(journal), true) => {
            let journal = journal.clone();
            let id = session.clone();
            tokio::task::spawn_blocking(move || journal.delete(&id))
                .await
                .map_err(|e| ApiError::internal(format!("journal task failed: {e}")))?
                .map_err(|e| ApiError::internal(format!("{e}")))?
        }
        _ => false,
    };
    if stopped == 0 && !purged {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("no live session or journal {session}"),
        ));
    }
    Ok(
        axum::Json(json!({ "runtimeSessionId": session, "stopped": stopped, "purged": purged }))
            .into_response(),
    )
}

/// The source of a deployed component by its SHA-256 (what `corral replay
/// --server` instantiates).
async fn component_source(State(state): State<AppState>, Path(digest): Path<String>) -> ApiResult {
    let registry = state.registry.clone();
    let source = tokio::task::spawn_blocking(move || registry.component_source(&digest))
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))??;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/wasm")],
        source,
    )
        .into_response())
}

#[derive(Deserialize)]
struct JournalQuery {
    #[serde(default)]
    offset: u64,
    #[serde(default = "default_journal_page")]
    limit: usize,
}

fn default_journal_page() -> usize {
    1_000
}

/// A session's journal as JSON lines, `limit` (at most 10,000) entries from
/// `offset`; `x-corral-next-offset` says where the next page starts.
async fn session_journal(
    State(state): State<AppState>,
    Path(session): Path<String>,
    Query(query): Query<JournalQuery>,
) -> ApiResult {
    let Some(journal) = state.sessions.config().journal.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "this server does not journal sessions (start it with --journal)".to_string(),
        ));
    };
    let limit = query.limit.clamp(1, 10_000);
    let id = session.clone();
    let (summary, records) = tokio::task::spawn_blocking(move || {
        Ok::<_, corral_journal::JournalError>((
            journal.summary(&id)?,
            journal.read(&id, query.offset, limit)?,
        ))
    })
    .await
    .map_err(|e| ApiError::internal(format!("journal task failed: {e}")))?
    .map_err(|e| match e {
        corral_journal::JournalError::InvalidSession(_) => ApiError::validation(e.to_string()),
        other => ApiError::internal(other.to_string()),
    })?;
    let Some(summary) = summary else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("no journal for session {session}"),
        ));
    };
    let next = records.last().map_or(query.offset, |r| r.offset + 1);
    let mut body = String::new();
    for record in &records {
        body.push_str(&serde_json::to_string(record).unwrap_or_default());
        body.push('\n');
    }
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/x-ndjson".to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-corral-next-offset"),
                next.to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-corral-journal-entries"),
                summary.entries.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
