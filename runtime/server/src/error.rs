//! One error surface for every route: AgentCore's REST-JSON errors
//! (`{"message": …}` with `x-amzn-ErrorType`), including the rejections
//! other layers produce (body limits, unknown routes, bad methods).

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use corral_host::{InvokeError, SessionQuota};

use crate::artifact::ArtifactError;
use crate::registry::RegistryError;

pub use corral_api::ERROR_TYPE_HEADER;

/// A handler's result.
pub type ApiResult = Result<Response, ApiError>;

/// An error as AgentCore's REST-JSON protocol sends it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    name: &'static str,
    message: String,
}

impl ApiError {
    /// An error with a status, an AWS error type and a message.
    pub fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            name,
            message: message.into(),
        }
    }

    /// `InternalServerException` (500).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            message,
        )
    }

    /// `ServiceUnavailableException` (503): shared state (the database)
    /// does not answer; retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            message,
        )
    }

    /// `ValidationException` (400).
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        corral_api::error_message(self.status, self.name, &self.message)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let message = e.to_string();
        match e {
            RegistryError::InvalidArtifact(_) | RegistryError::Validation(_) => {
                ApiError::validation(message)
            }
            RegistryError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                message,
            ),
            RegistryError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
            }
            RegistryError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "ConflictException", message)
            }
            RegistryError::Storage(source) if source.is_unavailable() => {
                ApiError::unavailable(message)
            }
            RegistryError::Contended => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                message,
            ),
            RegistryError::Io(_) | RegistryError::Storage(_) | RegistryError::Index(_) => {
                ApiError::internal(message)
            }
        }
    }
}

impl From<corral_api::pagination::PageError> for ApiError {
    fn from(e: corral_api::pagination::PageError) -> Self {
        ApiError::validation(e.to_string())
    }
}

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        let message = e.to_string();
        match e {
            ArtifactError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                message,
            ),
            // AgentCore answers an unreadable artifact with a validation error.
            ArtifactError::Invalid(_) | ArtifactError::Fetch { .. } => {
                ApiError::validation(message)
            }
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        let message = e.to_string();
        if e.is_unavailable() {
            let cause = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default();
            return ApiError::unavailable(format!("{message}: {cause}; retry shortly"));
        }
        match e {
            InvokeError::InvalidRequest(_) => ApiError::validation(message),
            // A caller over its own quota is throttled (retry once its
            // sessions end); a full host or agent is a service quota.
            InvokeError::QuotaExceeded {
                quota: SessionQuota::SessionsPerCaller,
                ..
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                message,
            ),
            InvokeError::QuotaExceeded { .. }
            | InvokeError::PoolExhausted(_)
            | InvokeError::Journal(corral_journal::JournalError::Full { .. }) => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "ServiceQuotaExceededException",
                format!(
                    "{message}: {}",
                    std::error::Error::source(&e)
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            ),
            InvokeError::Agent { .. }
            | InvokeError::Fault(_)
            | InvokeError::Timeout(_)
            | InvokeError::ResponseTooLarge(_) => {
                ApiError::new(StatusCode::FAILED_DEPENDENCY, "RuntimeClientError", message)
            }
            InvokeError::Stopped => {
                ApiError::new(StatusCode::CONFLICT, "ConflictException", message)
            }
            _ => ApiError::internal(message),
        }
    }
}

impl ApiError {
    /// The error type AWS clients see (`ValidationException`, …).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The message clients see.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `ResourceNotFoundException` (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    /// `ConflictException` (409).
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "ConflictException", message)
    }
}

/// The AgentCore error type for a bare status another layer answered with.
fn error_type(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "UnknownOperationException",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "AccessDeniedException",
        StatusCode::CONFLICT => "ConflictException",
        StatusCode::TOO_MANY_REQUESTS => "ThrottlingException",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableException",
        s if s.is_server_error() => "InternalServerException",
        _ => "ValidationException",
    }
}

/// Largest bare error body carried over into the JSON message.
const MAX_BARE_MESSAGE: usize = 4 * 1024;

/// Rewrites error responses that did not come from [`ApiError`] — axum's
/// extractor and body-limit rejections (413 as plain text), unknown routes,
/// wrong methods — into AgentCore's JSON errors, so AWS clients raise their
/// modelled exceptions. The MCP endpoints keep their own protocol's errors.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let mcp = request.uri().path().ends_with("/mcp");
    let response = next.run(request).await;
    let status = response.status();
    if mcp
        || !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(ERROR_TYPE_HEADER)
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_BARE_MESSAGE)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match (status, text.is_empty()) {
        (StatusCode::NOT_FOUND, _) => "no such operation: unknown route".to_string(),
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            "no such operation: method not allowed on this route".to_string()
        }
        (StatusCode::PAYLOAD_TOO_LARGE, _) => format!("request body too large: {text}"),
        (_, true) => status.canonical_reason().unwrap_or("error").to_string(),
        (_, false) => text,
    };
    let mut out = ApiError::new(status, error_type(status), message).into_response();
    // Keep headers such as `Allow` and `WWW-Authenticate`.
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The answer for a route no operation matches.
pub async fn unknown_operation() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "no such operation: unknown route",
    )
    .into_response()
}
