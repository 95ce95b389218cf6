//! Serving the catalogue over MCP (streamable HTTP at `/mcp`) with `rmcp`.
//!
//! The server runs in the protocol's stateless mode: no MCP session lives in
//! one replica's memory, so any replica behind a load balancer can answer any
//! request (clients of the 2025-11-25 protocol still `initialize`; the answer
//! carries no session id, and later requests need none).

use corral_telemetry::OpenTelemetrySpanExt;
use rmcp::model::RequestParamsMeta;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use corral_policy::Principal;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::auth::Authenticator;
use crate::direct::DirectCalls;
use crate::error::{CallError, GatewayError};
use crate::gateway::{Caller, Gateway, ListedTool};
use crate::jsonrpc::McpPost;
use crate::tool::ToolOutput;

/// Text AgentCore returns when a policy denies a tool call.
pub const DENIED_PREFIX: &str = "AuthorizeActionException - Tool Execution Denied";

/// The MCP face of a gateway.
#[derive(Clone)]
pub struct McpGatewayServer {
    gateway: Arc<Gateway>,
}

impl McpGatewayServer {
    /// Serves `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }

    fn principal(context: &RequestContext<RoleServer>) -> Principal {
        principal_of(context.extensions.get::<http::request::Parts>())
    }
}

/// Who an HTTP request is from: the principal inbound authentication put
/// on it, else an anonymous IAM entity.
pub(crate) fn principal_of(parts: Option<&http::request::Parts>) -> Principal {
    parts
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        .unwrap_or(Principal::IamEntity {
            id: "anonymous".into(),
        })
}

fn to_tool(tool: ListedTool) -> Tool {
    let schema = match tool.input_schema {
        Value::Object(map) => map,
        _ => serde_json::Map::from_iter([("type".to_string(), json!("object"))]),
    };
    let mut out = Tool::new(tool.name, tool.description, Arc::new(schema));
    if let Some(Value::Object(output)) = tool.output_schema {
        out = out.with_raw_output_schema(Arc::new(output));
    }
    out
}

/// An MCP `CallToolResult` for a tool output.
pub fn to_call_result(output: ToolOutput) -> CallToolResult {
    let content: Vec<ContentBlock> = output.content.into_iter().map(content_block).collect();
    let mut result = if output.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = output.structured;
    result
}

/// A content block as rmcp types it; a plain text block (most results)
/// without a round trip through serde, anything it cannot type as text.
fn content_block(block: Value) -> ContentBlock {
    if let Value::Object(map) = &block
        && map.len() == 2
        && map.get("type").and_then(Value::as_str) == Some("text")
        && let Some(Value::String(text)) = map.get("text")
    {
        return ContentBlock::text(text.clone());
    }
    serde_json::from_value(block.clone()).unwrap_or_else(|_| ContentBlock::text(block.to_string()))
}

/// How a call error reaches an MCP client: protocol errors for bad requests,
/// `isError` results for everything that happened at or beyond the policy.
pub fn error_result(error: CallError) -> Result<CallToolResult, McpError> {
    let text = match &error {
        CallError::NotFound(name) => {
            return Err(McpError::invalid_params(
                format!("Unknown tool: {name}"),
                None,
            ));
        }
        CallError::InvalidCursor => return Err(McpError::invalid_params("Invalid cursor", None)),
        CallError::Denied { reason, policy_ids } => {
            let mut text = format!("{DENIED_PREFIX}: {reason}");
            if !policy_ids.is_empty() {
                text.push_str(&format!(" (policies: {})", policy_ids.join(", ")));
            }
            text
        }
        other => other.to_string(),
    };
    Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
}

impl ServerHandler for McpGatewayServer {
    fn get_info(&self) -> ServerConfig {
        let config = self.gateway.config();
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                config.name.clone(),
                env!("CARGO_PKG_VERSION"),
            ));
        if let Some(instructions) = &config.protocol_configuration.mcp.instructions {
            info = info.with_instructions(instructions.clone());
        }
        info
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = Self::principal(&context);
        let cursor = request.and_then(|r| r.cursor);
        let page = self
            .gateway
            .list_tools(&principal, cursor.as_deref())
            .map_err(|_| McpError::invalid_params("Invalid cursor", None))?;
        let mut result =
            ListToolsResult::with_all_items(page.items.into_iter().map(to_tool).collect());
        result.next_cursor = page.next_cursor;
        Ok(result)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        Err(untyped_request(&request))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let parts = context.extensions.get::<http::request::Parts>();
        self.call(
            principal_of(parts),
            parts.map(|p| &p.headers),
            Some(&context.meta),
            request,
        )
        .await
        .map(Into::into)
    }
}

impl McpGatewayServer {
    /// One `tools/call` as MCP answers it, whichever way it arrived (through
    /// rmcp's service or [`crate::direct`]): a `mcp.server` span continuing
    /// the caller's trace, the gateway call, the result or protocol error.
    pub(crate) async fn call(
        &self,
        principal: Principal,
        headers: Option<&http::HeaderMap>,
        meta: Option<&rmcp::model::RequestMetaObject>,
        request: CallToolRequestParams,
    ) -> Result<CallToolResult, McpError> {
        let caller = Caller::new(principal);
        let span = tracing::info_span!(
            "mcp.server",
            otel.name = format!("tools/call {}", request.name).as_str(),
            otel.kind = "server",
            mcp.method.name = "tools/call",
            gen_ai.tool.name = %request.name,
        );
        if !span.is_disabled() {
            span.set_parent(caller_trace_context(&request, meta, headers));
        }
        let arguments = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let call = self
            .gateway
            .call_tool_in(&caller, &request.name, arguments, &span);
        match corral_telemetry::in_span(&span, call).await {
            Ok(output) => Ok(to_call_result(output)),
            Err(error) => error_result(error),
        }
    }
}

/// Methods MCP defines for a client to call: one of them reaching
/// [`ServerHandler::on_custom_request`] had parameters that do not fit it.
const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
];

/// The answer to a request rmcp could not type: -32602 for a known method
/// with bad parameters, -32601 for an unknown method.
fn untyped_request(request: &CustomRequest) -> McpError {
    let method = request.method.as_str();
    if !MCP_METHODS.contains(&method) {
        return McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            method.to_string(),
            None,
        );
    }
    let reason = match method {
        "tools/call" => request
            .params_as::<CallToolRequestParams>()
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    McpError::invalid_params(
        format!(
            "Invalid params for {method}{}",
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ),
        None,
    )
}

/// The MCP client's trace context: the request's `_meta` (SEP-414) over the
/// HTTP request's `traceparent`/`tracestate`/`baggage` headers.
fn caller_trace_context(
    request: &CallToolRequestParams,
    meta: Option<&rmcp::model::RequestMetaObject>,
    headers: Option<&http::HeaderMap>,
) -> corral_telemetry::Context {
    // Only the trace headers, not a copy of every request header.
    let mut carrier = http::HeaderMap::new();
    if let Some(headers) = headers {
        for name in ["traceparent", "tracestate", "baggage"] {
            for value in headers.get_all(name) {
                carrier.append(name, value.clone());
            }
        }
    }
    // rmcp moves a request's `_meta` into the context; older paths and the
    // direct path keep it on the params.
    for (name, value) in [
        (
            "traceparent",
            meta.and_then(|m| m.get_traceparent())
                .or(request.traceparent()),
        ),
        (
            "tracestate",
            meta.and_then(|m| m.get_tracestate())
                .or(request.tracestate()),
        ),
        (
            "baggage",
            meta.and_then(|m| m.get_baggage()).or(request.baggage()),
        ),
    ] {
        if let Some(value) = value.and_then(|v| http::HeaderValue::from_str(v).ok()) {
            carrier.insert(name, value);
        }
    }
    corral_telemetry::extract_context(&carrier)
}

/// Settings of the HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values accepted (DNS-rebinding protection); `*` accepts any.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

/// An axum router serving the gateway at `/mcp`, behind inbound auth.
pub fn router(gateway: Arc<Gateway>, options: HttpOptions) -> Result<Router, GatewayError> {
    let config = gateway.config().clone();
    let authenticator = Arc::new(Authenticator::new(
        config.authorizer()?,
        &config.inbound_auth,
        gateway.base_dir(),
    )?);
    if !authenticator.required() {
        tracing::warn!(gateway = %config.name, "MCP endpoint has no inbound authentication (authorizerType NONE)");
    }
    let mut http = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(config.limits.max_request_bytes);
    http = if options.allowed_hosts.iter().any(|h| h == "*") {
        http.disable_allowed_hosts()
    } else {
        http.with_allowed_hosts(options.allowed_hosts.clone())
    };
    let server = McpGatewayServer::new(gateway);
    let post = Arc::new(McpPost {
        limit: config.limits.max_request_bytes,
        direct: DirectCalls::new(server.clone(), &http.allowed_hosts),
    });
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        http,
    );
    Ok(Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(
            post,
            crate::jsonrpc::validate_jsonrpc,
        ))
        .layer(middleware::from_fn_with_state(authenticator, authenticate)))
}

async fn authenticate(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match auth
        .authenticate(authorization.as_deref(), api_key.as_deref())
        .await
    {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => {
            let body = json!({"error": "Unauthorized", "message": error.0}).to_string();
            let mut response = (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"corral\""),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_read_as_agentcore_does() {
        let result = error_result(CallError::Denied {
            reason: "refund above limit".into(),
            policy_ids: vec!["refund-cap".into()],
        })
        .unwrap();
        assert_eq!(result.is_error, Some(true));
        let text = serde_json::to_value(&result.content[0]).unwrap();
        let text = text["text"].as_str().unwrap();
        assert!(
            text.starts_with("AuthorizeActionException - Tool Execution Denied"),
            "{text}"
        );
        assert!(text.contains("refund-cap"));
        assert!(error_result(CallError::NotFound("x".into())).is_err());
    }
}
