//! Tool targets: where tools come from and how calls reach them.

pub mod lambda;
pub mod local;
pub mod mcp;
pub mod openapi;
pub mod wasm;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::CallError;
use crate::tool::{ToolDef, ToolOutput};

/// Kinds of target, for telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// An HTTP API described by OpenAPI.
    OpenApi,
    /// An AWS Lambda function.
    Lambda,
    /// An upstream MCP server.
    McpServer,
    /// A WebAssembly tool component.
    Wasm,
    /// Rust functions in the host process.
    Local,
}

impl TargetKind {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TargetKind::OpenApi => "openapi",
            TargetKind::Lambda => "lambda",
            TargetKind::McpServer => "mcp",
            TargetKind::Wasm => "wasm",
            TargetKind::Local => "local",
        }
    }
}

/// One call as a target sees it.
#[derive(Debug, Clone)]
pub struct TargetCall<'a> {
    /// The tool's name within the target.
    pub tool: &'a str,
    /// The exposed name (`<target>___<tool>`).
    pub exposed_name: &'a str,
    /// Arguments (a JSON object).
    pub arguments: Value,
    /// Gateway id.
    pub gateway_id: &'a str,
    /// Target name.
    pub target: &'a str,
    /// Request id of this call.
    pub request_id: &'a str,
    /// Runtime session id, when the caller is a sandboxed agent.
    pub session_id: Option<&'a str>,
    /// Response size cap in bytes.
    pub max_response_bytes: usize,
}

/// A source of tools.
#[async_trait]
pub trait Target: Send + Sync {
    /// What kind of target this is.
    fn kind(&self) -> TargetKind;

    /// The target's current tools.
    async fn list_tools(&self) -> Result<Vec<ToolDef>, CallError>;

    /// Runs one call.
    async fn call(&self, call: TargetCall<'_>) -> Result<ToolOutput, CallError>;
}

/// Marks an upstream call's span failed when the call failed (`upstream`) or
/// the tool reported an error (`tool_error_type`).
pub fn record_upstream_outcome(
    span: &tracing::Span,
    result: &Result<ToolOutput, CallError>,
    tool_error_type: &str,
) {
    match result {
        Ok(output) if output.is_error => {
            corral_telemetry::record_error(span, tool_error_type, &output.text_content())
        }
        Ok(_) => {}
        Err(error) => corral_telemetry::record_error(span, "upstream", &error.for_logs()),
    }
}

/// Reads a response body, failing once it exceeds `limit` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, CallError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(CallError::ResponseTooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CallError::upstream(None, "reading the response failed", e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(CallError::ResponseTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
