//! AgentCore Memory over HTTP: the data plane (`bedrock-agentcore`) and the
//! memory part of the control plane (`bedrock-agentcore-control`), on the
//! same paths, status codes and error shapes, so boto3 clients work with
//! `endpoint_url` pointed at Corral.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::control::{CreateMemoryInput, UpdateMemoryInput};
use crate::error::{MemoryError, ValidationReason};
use crate::service::MemoryService;
use crate::types::{
    CreateEventInput, ListEventsInput, ListMemoryRecordsInput, ListSessionsInput,
    MemoryRecordCreateInput, MemoryRecordDeleteInput, MemoryRecordUpdateInput, PageInput,
    RetrieveMemoryRecordsInput,
};

/// Largest request body read, in bytes (events are capped lower, with a
/// field-level error).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The memory routes, ready to merge into a server's router.
pub fn router(service: MemoryService) -> Router {
    Router::new()
        .route("/memories/create", post(create_memory))
        .route("/memories/", post(list_memories))
        .route("/memories/{memory_id}/details", get(get_memory))
        .route("/memories/{memory_id}/delete", delete(delete_memory))
        .route("/memories/{memory_id}/update", put(update_memory))
        .route("/memories/{memory_id}/events", post(create_event))
        .route(
            "/memories/{memory_id}/actor/{actor_id}/sessions/{session_id}/events/{event_id}",
            get(get_event).delete(delete_event),
        )
        .route(
            "/memories/{memory_id}/actor/{actor_id}/sessions/{session_id}",
            post(list_events),
        )
        .route(
            "/memories/{memory_id}/actor/{actor_id}/sessions",
            post(list_sessions),
        )
        .route("/memories/{memory_id}/actors", post(list_actors))
        .route("/memories/{memory_id}/retrieve", post(retrieve_records))
        .route("/memories/{memory_id}/memoryRecords", post(list_records))
        .route(
            "/memories/{memory_id}/memoryRecord/{record_id}",
            get(get_record),
        )
        .route(
            "/memories/{memory_id}/memoryRecords/{record_id}",
            delete(delete_record),
        )
        .route(
            "/memories/{memory_id}/memoryRecords/batchCreate",
            post(batch_create),
        )
        .route(
            "/memories/{memory_id}/memoryRecords/batchUpdate",
            post(batch_update),
        )
        .route(
            "/memories/{memory_id}/memoryRecords/batchDelete",
            post(batch_delete),
        )
        .with_state(service)
}

/// A memory error as AgentCore's REST-JSON protocol sends it.
pub struct ApiError(pub MemoryError);

impl From<MemoryError> for ApiError {
    fn from(e: MemoryError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &error {
            MemoryError::Validation { message, .. } => message.clone(),
            MemoryError::NotFound(m)
            | MemoryError::Conflict(m)
            | MemoryError::QuotaExceeded(m)
            | MemoryError::Throttled(m)
            | MemoryError::Service(m) => m.clone(),
        };
        let mut body = json!({ "message": message });
        if let MemoryError::Validation { reason, fields, .. } = &error {
            body["reason"] = json!(reason);
            if !fields.is_empty() {
                body["fieldList"] = json!(fields);
            }
        }
        corral_api::error_response(status, error.error_name(), body)
    }
}

type ApiResult = Result<Response, ApiError>;

/// Reads and parses a JSON body; bad JSON is a `ValidationException`
/// (`CannotParse`) naming the problem.
async fn json_body<T: DeserializeOwned + Default>(body: Body) -> Result<T, ApiError> {
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        MemoryError::field(
            "body",
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError(MemoryError::invalid(
            ValidationReason::CannotParse,
            format!("could not parse request body: {e}"),
        ))
    })
}

fn ok<T: Serialize>(status: StatusCode, value: T) -> ApiResult {
    Ok((status, axum::Json(value)).into_response())
}

/// Wraps a required-body input so empty bodies still fail to parse.
#[derive(Deserialize)]
#[serde(transparent)]
struct Required<T>(Option<T>);

impl<T> Default for Required<T> {
    fn default() -> Self {
        Required(None)
    }
}

async fn required<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let Required(value) = json_body::<Required<T>>(body).await?;
    value.ok_or_else(|| {
        ApiError(MemoryError::invalid(
            ValidationReason::CannotParse,
            "request body is required",
        ))
    })
}

async fn create_memory(State(s): State<MemoryService>, body: Body) -> ApiResult {
    let input: CreateMemoryInput = required(body).await?;
    ok(
        StatusCode::ACCEPTED,
        json!({ "memory": s.create_memory(input).await? }),
    )
}

async fn list_memories(State(s): State<MemoryService>, body: Body) -> ApiResult {
    let page: PageInput = json_body(body).await?;
    ok(
        StatusCode::OK,
        s.list_memories(page.max_results, page.next_token.as_deref())?,
    )
}

async fn get_memory(State(s): State<MemoryService>, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, json!({ "memory": s.get_memory(&id)? }))
}

async fn update_memory(
    State(s): State<MemoryService>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let input: UpdateMemoryInput = json_body(body).await?;
    ok(
        StatusCode::ACCEPTED,
        json!({ "memory": s.update_memory(&id, input).await? }),
    )
}

async fn delete_memory(State(s): State<MemoryService>, Path(id): Path<String>) -> ApiResult {
    let memory = s.delete_memory(&id).await?;
    ok(
        StatusCode::ACCEPTED,
        json!({ "memoryId": memory.id, "status": "DELETING" }),
    )
}

async fn create_event(
    State(s): State<MemoryService>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let input: CreateEventInput = required(body).await?;
    ok(
        StatusCode::CREATED,
        json!({ "event": s.create_event(&id, input).await? }),
    )
}

async fn get_event(
    State(s): State<MemoryService>,
    Path((m, a, sess, e)): Path<(String, String, String, String)>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        json!({ "event": s.get_event(&m, &a, &sess, &e).await? }),
    )
}

async fn delete_event(
    State(s): State<MemoryService>,
    Path((m, a, sess, e)): Path<(String, String, String, String)>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        json!({ "eventId": s.delete_event(&m, &a, &sess, &e).await? }),
    )
}

async fn list_events(
    State(s): State<MemoryService>,
    Path((m, a, sess)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult {
    let input: ListEventsInput = json_body(body).await?;
    ok(StatusCode::OK, s.list_events(&m, &a, &sess, input).await?)
}

async fn list_sessions(
    State(s): State<MemoryService>,
    Path((m, a)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let input: ListSessionsInput = json_body(body).await?;
    ok(StatusCode::OK, s.list_sessions(&m, &a, input).await?)
}

async fn list_actors(
    State(s): State<MemoryService>,
    Path(m): Path<String>,
    body: Body,
) -> ApiResult {
    let input: PageInput = json_body(body).await?;
    ok(StatusCode::OK, s.list_actors(&m, input).await?)
}

async fn retrieve_records(
    State(s): State<MemoryService>,
    Path(m): Path<String>,
    body: Body,
) -> ApiResult {
    let input: RetrieveMemoryRecordsInput = required(body).await?;
    ok(StatusCode::OK, s.retrieve_memory_records(&m, input).await?)
}

async fn list_records(
    State(s): State<MemoryService>,
    Path(m): Path<String>,
    body: Body,
) -> ApiResult {
    let input: ListMemoryRecordsInput = json_body(body).await?;
    ok(StatusCode::OK, s.list_memory_records(&m, input).await?)
}

async fn get_record(
    State(s): State<MemoryService>,
    Path((m, r)): Path<(String, String)>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        json!({ "memoryRecord": s.get_memory_record(&m, &r).await? }),
    )
}

async fn delete_record(
    State(s): State<MemoryService>,
    Path((m, r)): Path<(String, String)>,
) -> ApiResult {
    ok(
        StatusCode::OK,
        json!({ "memoryRecordId": s.delete_memory_record(&m, &r).await? }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Batch<T> {
    records: Vec<T>,
    #[serde(default, rename = "clientToken")]
    _client_token: Option<Value>,
}

async fn batch_create(
    State(s): State<MemoryService>,
    Path(m): Path<String>,
    body: Body,
) -> ApiResult {
    let batch: Batch<MemoryRecordCreateInput> = required(body).await?;
    ok(
        StatusCode::CREATED,
        s.batch_create_memory_records(&m, batch.records).await?,
    )
}

async fn batch_update(
    State(s): State<MemoryService>,
    Path(m): Path<String>,
    body: Body,
) -> ApiResult {
    let batch: Batch<MemoryRecordUpdateInput> = required(body).await?;
    ok(
        StatusCode::OK,
        s.batch_update_memory_records(&m, batch.records).await?,
    )
}

async fn batch_delete(
    State(s): State<MemoryService>,
    Path(m): Path<String>,
    body: Body,
) -> ApiResult {
    let batch: Batch<MemoryRecordDeleteInput> = required(body).await?;
    ok(
        StatusCode::OK,
        s.batch_delete_memory_records(&m, batch.records).await?,
    )
}
