//! Places session requests across replicas sharing one database: an
//! invocation runs on the replica holding its session (claimed here when
//! nobody does, taken over when its holder's lease lapsed), or is forwarded
//! to it; stops reach the holder the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use corral_cluster::{LocalSessions, Owner, Placement, SessionDirectory};
use corral_host::SessionManager;

use crate::app::{AppState, MAX_PAYLOAD_BYTES, SESSION_HEADER};
use crate::error::ApiError;

/// Marks a request one replica forwarded to another (names the sender):
/// the receiver serves it or refuses, and never forwards it again.
pub const FORWARDED_HEADER: &str = "x-corral-forwarded-by";

/// How long a forwarded request may take to be answered (headers; a
/// streamed body then flows as it comes), beyond the invocation limit.
const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest stop request body relayed to the session's replica.
const STOP_BODY_LIMIT: usize = 64 * 1024;

/// How often placement is retried while a dead holder's lease runs out.
const TAKEOVER_POLL: Duration = Duration::from_millis(200);

/// This replica's part of a cluster: the directory and the client that
/// forwards to other replicas.
pub struct Cluster {
    directory: Arc<SessionDirectory>,
    client: reqwest::Client,
}

impl Cluster {
    /// Forwards with `client`'s connection pool.
    pub fn new(directory: Arc<SessionDirectory>) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(FORWARD_CONNECT_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self { directory, client }
    }

    /// The session directory.
    pub fn directory(&self) -> &Arc<SessionDirectory> {
        &self.directory
    }
}

/// The session manager as the heartbeat sees it.
pub struct ManagedSessions(pub Arc<SessionManager>);

impl LocalSessions for ManagedSessions {
    fn is_local(&self, session: &str) -> bool {
        self.0.has_session(session)
    }

    fn hand_off(&self, session: &str) {
        self.0.hand_off(session);
    }
}

/// What a session-addressed request does.
enum SessionRequest {
    /// `InvokeAgentRuntime` of runtime `agent`.
    Invoke { agent: String },
    /// `StopRuntimeSession`, or Corral's stop.
    Stop,
}

/// The session a request addresses, and what it does with it.
fn session_request(request: &Request) -> Option<SessionRequest> {
    let path = request.uri().path();
    let mut parts = path.trim_start_matches('/').split('/');
    match (request.method(), parts.next(), parts.next(), parts.next()) {
        (&Method::POST, Some("runtimes"), Some(runtime), Some("invocations")) => {
            let runtime = percent_encoding::percent_decode_str(runtime).decode_utf8_lossy();
            Some(SessionRequest::Invoke {
                agent: crate::registry::runtime_id_of(&runtime).to_string(),
            })
        }
        (&Method::POST, Some("runtimes"), Some(_), Some("stopruntimesession"))
        | (&Method::DELETE, Some("corral"), Some("sessions"), Some(_)) => {
            Some(SessionRequest::Stop)
        }
        _ => None,
    }
}

/// The session id a request names (header, or the last path segment of
/// Corral's stop).
fn session_id(request: &Request) -> Option<String> {
    if let Some(id) = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(id.to_string());
    }
    let path = request.uri().path();
    path.strip_prefix("/corral/sessions/")
        .filter(|rest| !rest.contains('/'))
        .map(|id| {
            percent_encoding::percent_decode_str(id)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// Middleware on the session routes of a replica in a cluster (others
/// pass through).
pub async fn place_sessions(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(cluster) = state.cluster.clone() else {
        return next.run(request).await;
    };
    let Some(kind) = session_request(&request) else {
        return next.run(request).await;
    };
    let forwarded = request.headers().contains_key(FORWARDED_HEADER);
    let mut request = request;
    let session = match (&kind, session_id(&request)) {
        (_, Some(id)) => id,
        // An invocation without a session starts one: named here, so it is
        // placed like any other.
        (SessionRequest::Invoke { .. }, None) => {
            let baggage =
                crate::app::baggage_session(&corral_telemetry::extract_context(request.headers()));
            match baggage {
                // The handler reads it from the baggage again.
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    if let Ok(value) = HeaderValue::from_str(&id) {
                        request.headers_mut().insert(SESSION_HEADER, value);
                    }
                    id
                }
            }
        }
        (SessionRequest::Stop, None) => return next.run(request).await,
    };
    // Malformed ids are refused by the handler, without a claim.
    let from_header = request.headers().contains_key(SESSION_HEADER);
    let invalid = match kind {
        SessionRequest::Invoke { .. } => {
            from_header && !crate::app::SESSION_ID_LENGTH.contains(&session.len())
        }
        SessionRequest::Stop => false,
    };
    if invalid || corral_host::validate_session_id(&session).is_err() {
        return next.run(request).await;
    }
    match kind {
        SessionRequest::Invoke { agent } => {
            invoke(&cluster, request, next, &session, &agent, forwarded).await
        }
        SessionRequest::Stop => stop(&cluster, request, next, &session, forwarded).await,
    }
}

/// Runs an invocation here when this replica holds (or takes) its session;
/// else forwards it to the holder, waiting out a dead holder's lease.
async fn invoke(
    cluster: &Cluster,
    request: Request,
    next: Next,
    session: &str,
    agent: &str,
    forwarded: bool,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                format!("the payload exceeds {MAX_PAYLOAD_BYTES} bytes or could not be read"),
            )
            .into_response();
        }
    };
    // A holder that stopped answering is waited for until its lease (and
    // a heartbeat) has surely run out.
    let config = cluster.directory.config();
    let deadline = Instant::now() + config.lease + config.heartbeat * 2;
    loop {
        let placed = place(cluster, session, agent).await;
        match placed {
            Ok(Placement::Local { guard, .. }) => {
                let response = next.run(Request::from_parts(parts, Body::from(body))).await;
                drop(guard);
                return response;
            }
            Ok(Placement::Remote(owner)) if forwarded => {
                return ApiError::unavailable(format!(
                    "session {session} is held by replica {} now; retry",
                    owner.replica
                ))
                .into_response();
            }
            Ok(Placement::Remote(owner)) => {
                match forward(
                    cluster,
                    &owner,
                    &parts.method,
                    &parts.uri,
                    &parts.headers,
                    body.clone(),
                )
                .await
                {
                    Ok(response) => return response,
                    Err(Unreachable) if Instant::now() < deadline => {
                        tracing::info!(session.id = %session, owner = %owner.replica, "the session's replica does not answer; waiting for its lease to lapse");
                        tokio::time::sleep(TAKEOVER_POLL).await;
                    }
                    Err(Unreachable) => {
                        return ApiError::unavailable(format!(
                            "replica {} holding session {session} does not answer; retry",
                            owner.replica
                        ))
                        .into_response();
                    }
                }
            }
            Err(error) => return error.into_response(),
        }
    }
}

/// Stops a session on the replica holding it, or here.
async fn stop(
    cluster: &Cluster,
    request: Request,
    next: Next,
    session: &str,
    forwarded: bool,
) -> Response {
    let directory = cluster.directory.clone();
    let id = session.to_string();
    let owner = tokio::task::spawn_blocking(move || directory.owner_elsewhere(&id)).await;
    match owner {
        // A live replica holds it: the stop is its to make (a forwarded
        // stop that finds it moved again is refused, never run here).
        Ok(Ok(Some(owner))) if forwarded => {
            return ApiError::unavailable(format!(
                "session {session} is held by replica {} now; retry",
                owner.replica
            ))
            .into_response();
        }
        Ok(Ok(Some(owner))) => {
            let (parts, body) = request.into_parts();
            let Ok(body) = axum::body::to_bytes(body, STOP_BODY_LIMIT).await else {
                return ApiError::validation(format!(
                    "a stop request's body must be under {STOP_BODY_LIMIT} bytes"
                ))
                .into_response();
            };
            return match forward(
                cluster,
                &owner,
                &parts.method,
                &parts.uri,
                &parts.headers,
                body,
            )
            .await
            {
                Ok(response) => response,
                // It holds its lease but does not answer: ending the
                // session here could race its sandbox.
                Err(Unreachable) => ApiError::unavailable(format!(
                    "replica {} holding session {session} does not answer; retry",
                    owner.replica
                ))
                .into_response(),
            };
        }
        Ok(Ok(None)) => {}
        Ok(Err(error)) => return directory_error(error).into_response(),
        Err(error) => {
            return ApiError::internal(format!("the placement task failed: {error}"))
                .into_response();
        }
    }
    let response = next.run(request).await;
    if response.status().is_success() {
        let directory = cluster.directory.clone();
        let id = session.to_string();
        let _ = tokio::task::spawn_blocking(move || directory.release(&id)).await;
    }
    response
}

/// [`SessionDirectory::place`] off the async threads.
async fn place(cluster: &Cluster, session: &str, agent: &str) -> Result<Placement, ApiError> {
    let directory = cluster.directory.clone();
    let (session, agent) = (session.to_string(), agent.to_string());
    tokio::task::spawn_blocking(move || directory.place(&session, &agent))
        .await
        .map_err(|e| ApiError::internal(format!("the placement task failed: {e}")))?
        .map_err(directory_error)
}

fn directory_error(error: corral_cluster::DirectoryError) -> ApiError {
    if error.is_unavailable() {
        ApiError::unavailable(format!("{error}: retry shortly"))
    } else {
        ApiError::internal(error.to_string())
    }
}

/// The holder could not be reached (nothing was sent): safe to retry.
struct Unreachable;

/// Hop-by-hop headers a proxy does not pass on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
];

/// Sends the request to `owner` and relays its answer, streaming the body.
async fn forward(
    cluster: &Cluster,
    owner: &Owner,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Unreachable> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", owner.address.trim_end_matches('/'));
    let mut outbound = cluster.client.request(method.clone(), url).body(body);
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            outbound = outbound.header(name, value);
        }
    }
    outbound = outbound.header(FORWARDED_HEADER, cluster.directory.replica());
    let answer = match outbound.send().await {
        Ok(answer) => answer,
        Err(error) if error.is_connect() => return Err(Unreachable),
        Err(error) => {
            tracing::warn!(owner = %owner.replica, "forwarding to the session's replica failed: {error}");
            // Sent, then lost: the request may have run there.
            return Ok(ApiError::internal(format!(
                "replica {} holding the session failed while answering; the request may have run",
                owner.replica
            ))
            .into_response());
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    Ok(response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|e| {
            ApiError::internal(format!("relaying the answer: {e}")).into_response()
        }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn request(method: Method, uri: &str, session: Option<&str>) -> Request {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(id) = session {
            builder = builder.header(SESSION_HEADER, id);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn session_routes_are_recognised_with_their_session() {
        let arn =
            "arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fassistant-abc";
        let invoke = request(
            Method::POST,
            &format!("/runtimes/{arn}/invocations?qualifier=DEFAULT"),
            Some("s-1"),
        );
        match session_request(&invoke) {
            Some(SessionRequest::Invoke { agent }) => assert_eq!(agent, "assistant-abc"),
            _ => panic!("an invocation"),
        }
        assert_eq!(session_id(&invoke).as_deref(), Some("s-1"));

        let stop = request(
            Method::POST,
            "/runtimes/echo/stopruntimesession",
            Some("s-2"),
        );
        assert!(matches!(session_request(&stop), Some(SessionRequest::Stop)));
        assert_eq!(session_id(&stop).as_deref(), Some("s-2"));

        let corral_stop = request(Method::DELETE, "/corral/sessions/s%2D3", None);
        assert!(matches!(
            session_request(&corral_stop),
            Some(SessionRequest::Stop)
        ));
        assert_eq!(session_id(&corral_stop).as_deref(), Some("s-3"));

        for (method, uri) in [
            (Method::GET, "/corral/sessions"),
            (Method::GET, "/corral/sessions/s-1/journal"),
            (Method::GET, "/runtimes/echo/invocations"),
            (Method::POST, "/corral/runtimes/echo"),
            (Method::GET, "/ping"),
        ] {
            let other = request(method.clone(), uri, Some("s-1"));
            assert!(session_request(&other).is_none(), "{method} {uri}");
        }
        let journal = request(Method::GET, "/corral/sessions/s-1/journal", None);
        assert_eq!(session_id(&journal), None);
    }
}
