//! JSON-RPC envelope checks in front of the MCP transport: a malformed body
//! gets the JSON-RPC error MCP requires (-32700 parse error, -32600 invalid
//! request, -32602 invalid params) instead of the transport's plain-text 415.
//! The body is parsed here once; a plain `tools/call` is then answered by
//! [`crate::direct`], everything else goes on to rmcp.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage, RequestId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::direct::DirectCalls;

/// JSON-RPC 2.0: the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: the JSON is not a request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0: the method's parameters are wrong.
pub const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC error object answering request `id` (`null` when unknown).
pub fn error_body(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message.into() } })
}

/// What the MCP endpoint's POST handling needs.
pub(crate) struct McpPost {
    /// Largest body read, in bytes.
    pub limit: usize,
    /// Where plain `tools/call` requests are answered.
    pub direct: DirectCalls,
}

/// Checks a JSON POST's envelope (bodies up to `limit` bytes) and answers
/// malformed ones itself; a plain `tools/call` is answered directly; everything
/// else — other methods, other content types, well-formed messages — goes on
/// to the transport unchanged.
pub(crate) async fn validate_jsonrpc(
    State(post): State<std::sync::Arc<McpPost>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = post.limit;
    let json_post = request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
    if !json_post {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let (status, message) = if is_length_limit(&error) {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Invalid Request: the body is over {limit} bytes"),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "Invalid Request: the body could not be read".to_string(),
                )
            };
            return (
                status,
                Json(error_body(Value::Null, INVALID_REQUEST, message)),
            )
                .into_response();
        }
    };
    match check(&bytes) {
        Ok(Checked::ToolCall { id, params }) if post.direct.takes(&parts, &params) => {
            post.direct.answer(&parts, id, params).await
        }
        Ok(_) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err((status, body)) => (status, Json(body)).into_response(),
    }
}

/// Whether reading a body failed because it exceeded the limit (not a
/// client that hung up or a malformed chunked encoding).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A well-formed message.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "lives on the stack for one request; boxing would allocate per call"
)]
enum Checked {
    /// A `tools/call` request, its parameters typed.
    ToolCall {
        id: RequestId,
        params: CallToolRequestParams,
    },
    /// Anything else an MCP server takes.
    Other,
}

/// Whether `bytes` is one well-formed JSON-RPC message an MCP server takes;
/// otherwise the status and error to answer with.
fn check(bytes: &[u8]) -> Result<Checked, (StatusCode, Value)> {
    let invalid = |id: Value, message: &str| {
        (
            StatusCode::BAD_REQUEST,
            error_body(id, INVALID_REQUEST, format!("Invalid Request: {message}")),
        )
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            error_body(Value::Null, PARSE_ERROR, format!("Parse error: {e}")),
        )
    })?;
    let Value::Object(message) = &value else {
        return Err(invalid(
            Value::Null,
            "expected one JSON-RPC object (batches are not supported)",
        ));
    };
    let id = message.get("id").cloned();
    let id_ok = matches!(id, None | Some(Value::String(_) | Value::Number(_)));
    let echo = if id_ok {
        id.unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(echo, "jsonrpc must be \"2.0\""));
    }
    if !id_ok {
        return Err(invalid(echo, "id must be a string or a number"));
    }
    match message.get("method") {
        Some(Value::String(_)) => {}
        Some(_) => return Err(invalid(echo, "method must be a string")),
        // A response to a server request carries a result or an error.
        None if message.contains_key("result") || message.contains_key("error") => {}
        None => return Err(invalid(echo, "method is required")),
    }
    // A notification gets no JSON-RPC reply: refusing one is an HTTP error.
    let params_status = if message.contains_key("id") {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let invalid_params = |message: String| {
        (
            params_status,
            error_body(
                echo.clone(),
                INVALID_PARAMS,
                format!("Invalid params: {message}"),
            ),
        )
    };
    if message.get("params").is_some_and(|p| !p.is_object()) {
        return Err(invalid_params("params must be an object".into()));
    }
    // A `tools/call` request is typed as what it is, not tried against every
    // message shape.
    let tool_call_id = (message.get("method").and_then(Value::as_str) == Some("tools/call"))
        .then(|| message.get("id"))
        .flatten()
        .and_then(|id| RequestId::deserialize(id).ok());
    if let Some(id) = tool_call_id {
        let params = match value {
            Value::Object(mut message) => message.remove("params").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        return CallToolRequestParams::deserialize(params)
            .map(|params| Checked::ToolCall { id, params })
            .map_err(|e| invalid_params(e.to_string()));
    }
    ClientJsonRpcMessage::deserialize(&value)
        .map(|_| Checked::Other)
        .map_err(|e| invalid_params(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn code(body: &str) -> Option<(StatusCode, i64, Value)> {
        check(body.as_bytes()).err().map(|(status, e)| {
            (
                status,
                e["error"]["code"].as_i64().unwrap(),
                e["id"].clone(),
            )
        })
    }

    #[test]
    fn a_notification_with_bad_params_is_refused_over_http_without_a_reply_id() {
        let (status, code, id) =
            code(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[1]}"#).unwrap();
        assert_eq!(
            (status, code, id),
            (StatusCode::BAD_REQUEST, INVALID_PARAMS, Value::Null)
        );
    }

    #[test]
    fn malformed_envelopes_get_json_rpc_errors() {
        assert_eq!(code("{not json").unwrap().1, PARSE_ERROR);
        for bad in [
            "[]",
            "7",
            r#"{"id": 1, "method": "ping"}"#,
            r#"{"jsonrpc": "2.0", "id": 1}"#,
            r#"{"jsonrpc": "2.0", "id": 1, "method": 5}"#,
            r#"{"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}"#,
        ] {
            let (status, kind, _) = code(bad).unwrap();
            assert_eq!(
                (status, kind),
                (StatusCode::BAD_REQUEST, INVALID_REQUEST),
                "{bad}"
            );
        }
        let (status, kind, id) =
            code(r#"{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": [1]}"#).unwrap();
        assert_eq!(
            (status, kind, id),
            (StatusCode::OK, INVALID_PARAMS, json!(3))
        );
        for good in [
            r#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#,
            r#"{"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}}"#,
            r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#,
        ] {
            assert!(check(good.as_bytes()).is_ok(), "{good}");
        }
    }
}
