//! OpenAPI targets: each operation of an OpenAPI 3.0/3.1 document is a tool,
//! called over HTTP with reqwest and the target's outbound credentials.

mod parse;
mod refs;

use std::sync::Arc;

use async_trait::async_trait;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value};

pub use parse::{Location, Operation, is_json, operations, parse_text};

use super::{Target, TargetCall, TargetKind, read_capped, record_upstream_outcome};
use crate::credentials::OutboundCredential;
use crate::error::{CallError, excerpt};
use crate::http_client::HttpClients;
use crate::tool::{ToolDef, ToolOutput};

/// A problem in an OpenAPI document, located by JSON pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    /// JSON pointer (`/paths/~1pets/get`), empty for the whole document.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl SpecError {
    fn new(pointer: &str, message: &str) -> Self {
        Self {
            pointer: if pointer.is_empty() {
                "/".to_string()
            } else {
                pointer.to_string()
            },
            message: message.to_string(),
        }
    }
}

/// Longest error body excerpt returned to callers.
const ERROR_EXCERPT: usize = 2048;

/// Characters escaped in a path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'?')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// An HTTP API described by OpenAPI.
pub struct OpenApiTarget {
    operations: Vec<Operation>,
    clients: HttpClients,
    credential: Option<Arc<OutboundCredential>>,
}

impl OpenApiTarget {
    /// Builds the target from document text.
    pub fn new(
        document: &str,
        clients: HttpClients,
        credential: Option<OutboundCredential>,
    ) -> Result<Self, SpecError> {
        let doc = parse_text(document)?;
        Ok(Self {
            operations: operations(&doc)?,
            clients,
            credential: credential.map(Arc::new),
        })
    }

    fn request(
        &self,
        operation: &Operation,
        arguments: &Map<String, Value>,
    ) -> Result<reqwest::RequestBuilder, CallError> {
        let mut path = operation.path.clone();
        let mut query: Vec<(String, String)> = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body_fields = Map::new();
        let mut whole_body = None;
        for binding in &operation.bindings {
            let Some(value) = arguments.get(&binding.property) else {
                if binding.location == Location::Path {
                    return Err(CallError::InvalidArguments(format!(
                        "missing path parameter {:?}",
                        binding.property
                    )));
                }
                continue;
            };
            match binding.location {
                Location::Path => {
                    let text = scalar(value);
                    let encoded = utf8_percent_encode(&text, SEGMENT).to_string();
                    path = path.replace(&format!("{{{}}}", binding.wire_name), &encoded);
                }
                Location::Query => match value {
                    Value::Array(items) => {
                        query.extend(items.iter().map(|v| (binding.wire_name.clone(), scalar(v))))
                    }
                    Value::Null => {}
                    other => query.push((binding.wire_name.clone(), scalar(other))),
                },
                Location::Header => headers.push((binding.wire_name.clone(), scalar(value))),
                Location::BodyField => {
                    body_fields.insert(binding.wire_name.clone(), value.clone());
                }
                Location::Body => whole_body = Some(value.clone()),
            }
        }
        let method = reqwest::Method::from_bytes(operation.method.as_bytes())
            .map_err(|e| CallError::InvalidArguments(format!("bad method: {e}")))?;
        // The server URL was parsed at load; only the path is parsed here
        // (re-parsing the whole URL, host and all, was ~4% of a call).
        let mut url = operation.base_url.clone();
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        let mut request = self.clients.get().request(method, url).query(&query);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let body =
            whole_body.or_else(|| (!body_fields.is_empty()).then_some(Value::Object(body_fields)));
        if let (Some(body), Some(content_type)) = (body, &operation.body_content_type) {
            let content_type = if content_type == "*/*" {
                "application/json"
            } else {
                content_type
            };
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        Ok(request.header("accept", "application/json, */*;q=0.5"))
    }
}

/// A value as a query/header/path string: strings raw, the rest as JSON.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Target for OpenApiTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::OpenApi
    }

    async fn list_tools(&self) -> Result<Vec<ToolDef>, CallError> {
        Ok(self.operations.iter().map(|o| o.tool.clone()).collect())
    }

    async fn call(&self, call: TargetCall<'_>) -> Result<ToolOutput, CallError> {
        let operation = self
            .operations
            .iter()
            .find(|o| o.tool.name == call.tool)
            .ok_or_else(|| CallError::NotFound(call.exposed_name.to_string()))?;
        let span = tracing::info_span!(
            "http.client",
            otel.name = %format!("{} {}", operation.method, operation.path),
            otel.kind = "client",
            http.request.method = %operation.method,
            url.template = %operation.path,
            server.address = %operation.server,
            http.response.status_code = tracing::field::Empty,
        );
        let result = corral_telemetry::in_span(&span, self.send(operation, &call)).await;
        if let Ok(ToolOutput {
            status: Some(status),
            ..
        }) = &result
        {
            span.record("http.response.status_code", status);
        }
        record_upstream_outcome(&span, &result, "http_status");
        result
    }
}

impl OpenApiTarget {
    /// Sends the operation's request (carrying the current trace context) and
    /// reads the response.
    async fn send(
        &self,
        operation: &Operation,
        call: &TargetCall<'_>,
    ) -> Result<ToolOutput, CallError> {
        let empty = Map::new();
        let arguments = call.arguments.as_object().unwrap_or(&empty);
        let mut request = self.request(operation, arguments)?;
        if let Some(credential) = &self.credential {
            request = credential.apply(request, self.clients.get()).await?;
        }
        for (name, value) in corral_telemetry::current_trace_headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            // The URL (which may carry a query API key) stays in the detail.
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect to the API"
            } else {
                "the request failed"
            };
            CallError::upstream(
                None,
                format!("{} {} failed: {what}", operation.method, operation.path),
                crate::error::describe_http_error(&e),
            )
        })?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = read_capped(response, call.max_response_bytes).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            return Ok(ToolOutput::error(
                format!("HTTP {}: {}", status, excerpt(&text, ERROR_EXCERPT)),
                Some(status.as_u16()),
            ));
        }
        if (is_json(&content_type) || content_type.is_empty())
            && let Ok(value) = serde_json::from_str::<Value>(&text)
        {
            return Ok(ToolOutput::json(value));
        }
        Ok(ToolOutput::text(text))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SPEC: &str = r#"{
        "openapi": "3.0.0",
        "servers": [{"url": "http://127.0.0.1:9/v1/"}],
        "paths": {"/pets/{petId}": {"get": {
            "operationId": "getPet",
            "parameters": [
                {"name": "petId", "in": "path", "required": true, "schema": {"type": "string"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}}
            ]
        }}}
    }"#;

    #[test]
    fn requests_keep_the_servers_path_prefix_and_encode_parameters() {
        let target =
            OpenApiTarget::new(SPEC, HttpClients::shared(reqwest::Client::new()), None).unwrap();
        let operation = &target.operations[0];
        let arguments = serde_json::json!({"petId": "a b/c", "q": "x&y"});
        let request = target
            .request(operation, arguments.as_object().unwrap())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:9/v1/pets/a%20b%2Fc?q=x%26y"
        );
    }

    #[test]
    fn a_server_url_that_does_not_parse_is_refused_at_load() {
        let spec = SPEC.replace("http://127.0.0.1:9/v1/", "http://[::1/v1");
        assert!(
            OpenApiTarget::new(&spec, HttpClients::shared(reqwest::Client::new()), None).is_err()
        );
    }
}
