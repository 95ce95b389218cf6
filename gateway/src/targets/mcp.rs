//! Upstream MCP servers (streamable HTTP or local stdio), through the `rmcp`
//! client: their tools are re-exported, the connection is re-established
//! after failures, and the tool list is refreshed on `tools/list_changed`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmcp::model::{CallToolRequestParams, ClientConfig, Implementation, RequestParamsMeta};
use rmcp::service::{NotificationContext, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

use super::{Target, TargetCall, TargetKind, record_upstream_outcome};
use crate::error::CallError;
use crate::tool::{ToolDef, ToolOutput};

/// How to reach an upstream MCP server.
#[derive(Debug, Clone)]
pub enum McpEndpoint {
    /// Streamable HTTP at a URL, with extra headers (e.g. credentials).
    Http {
        /// Endpoint URL.
        url: String,
        /// Headers sent with every request.
        headers: Vec<(String, String)>,
    },
    /// A local server on stdio.
    Stdio {
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Environment (plus `PATH`).
        env: BTreeMap<String, String>,
    },
}

/// Runs the future `work` makes on `runtime` if given (aborting it if the
/// caller stops waiting), else, or if that runtime has shut down, where the
/// caller is.
async fn on_runtime<T, F>(
    runtime: Option<&tokio::runtime::Handle>,
    work: impl Fn() -> F,
) -> Result<T, String>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let Some(runtime) = runtime else {
        return work().await;
    };
    // Aborted if this future is dropped (the connect timeout).
    let task = tokio_util::task::AbortOnDropHandle::new(runtime.spawn(work()));
    match task.await {
        Ok(result) => result,
        // Only a runtime shutting down cancels it (the caller is still here).
        Err(error) if error.is_cancelled() => work().await,
        Err(error) => Err(format!("the connecting task failed: {error}")),
    }
}

/// Connects `handler` to `endpoint`.
async fn connect_to(
    handler: UpstreamHandler,
    endpoint: &McpEndpoint,
) -> Result<Connection, String> {
    match endpoint {
        McpEndpoint::Http { url, headers } => {
            let mut map = HashMap::new();
            for (name, value) in headers {
                let name =
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
                let value = http::HeaderValue::from_str(value).map_err(|e| e.to_string())?;
                map.insert(name, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.clone()).custom_headers(map);
            handler
                .serve(StreamableHttpClientTransport::from_config(config))
                .await
                .map_err(|e| e.to_string())
        }
        McpEndpoint::Stdio { command, args, env } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).env_clear().envs(env);
            if let Ok(path) = std::env::var("PATH") {
                cmd.env("PATH", path);
            }
            let transport = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map(|(transport, _stderr)| transport)
                .map_err(|e| format!("cannot start {command}: {e}"))?;
            handler.serve(transport).await.map_err(|e| e.to_string())
        }
    }
}

/// Receives the upstream's notifications.
#[derive(Clone)]
struct UpstreamHandler {
    target: String,
    changes: mpsc::UnboundedSender<String>,
}

impl ClientHandler for UpstreamHandler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::info!(target = %self.target, "upstream MCP server changed its tool list");
        let _ = self.changes.send(self.target.clone());
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("corral-gateway", env!("CARGO_PKG_VERSION"));
        info
    }
}

type Connection = RunningService<RoleClient, UpstreamHandler>;

/// An upstream MCP server whose tools the gateway re-exports.
pub struct McpTarget {
    name: String,
    endpoint: McpEndpoint,
    connect_timeout: Duration,
    handler: UpstreamHandler,
    /// Where connections are made: the runtime that made the target. A
    /// connection's driver task (and a stdio server's child) lives on the
    /// runtime that connects; a call on a serving loop of its own
    /// (`serve_per_core`) must not tie the upstream to that loop.
    runtime: Option<tokio::runtime::Handle>,
    connection: Mutex<Option<Arc<Connection>>>,
    tools: parking_lot::RwLock<Vec<ToolDef>>,
    /// Whether the upstream's tools were ever listed.
    listed: std::sync::atomic::AtomicBool,
}

impl McpTarget {
    /// A target for `endpoint`; list changes are reported on `changes`.
    pub fn new(
        name: &str,
        endpoint: McpEndpoint,
        connect_timeout: Duration,
        changes: mpsc::UnboundedSender<String>,
    ) -> Self {
        Self {
            name: name.to_string(),
            endpoint,
            connect_timeout,
            handler: UpstreamHandler {
                target: name.to_string(),
                changes,
            },
            runtime: tokio::runtime::Handle::try_current().ok(),
            connection: Mutex::new(None),
            tools: parking_lot::RwLock::new(Vec::new()),
            listed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    async fn connect(&self) -> Result<Connection, CallError> {
        let (handler, endpoint) = (self.handler.clone(), self.endpoint.clone());
        let connecting = move || {
            let (handler, endpoint) = (handler.clone(), endpoint.clone());
            async move { connect_to(handler, &endpoint).await }
        };
        let connecting = on_runtime(self.runtime.as_ref(), connecting);
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(message)) => Err(CallError::upstream(
                None,
                format!("MCP server '{}' is unreachable", self.name),
                format!("cannot connect to MCP server '{}': {message}", self.name),
            )),
            Err(_) => Err(CallError::upstream(
                None,
                format!("connecting to MCP server '{}' timed out", self.name),
                format!("no connection within {:?}", self.connect_timeout),
            )),
        }
    }

    /// The live connection, connecting when there is none or it closed.
    async fn connection(&self) -> Result<Arc<Connection>, CallError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref()
            && !connection.is_closed()
        {
            return Ok(connection.clone());
        }
        let connection = Arc::new(self.connect().await?);
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Drops a failed connection so the next call reconnects.
    async fn forget(&self, failed: &Arc<Connection>) {
        let mut slot = self.connection.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *slot = None;
        }
    }

    /// Whether the upstream's tools have been listed at least once (until
    /// then its tools are missing from the catalogue).
    pub fn has_listed(&self) -> bool {
        self.listed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Lists the upstream's tools again and caches them.
    pub async fn refresh(&self) -> Result<Vec<ToolDef>, CallError> {
        for attempt in 0..2 {
            let connection = self.connection().await?;
            match connection.peer().list_all_tools().await {
                Ok(tools) => {
                    let tools: Vec<ToolDef> = tools
                        .into_iter()
                        .map(|tool| ToolDef {
                            name: tool.name.to_string(),
                            description: tool
                                .description
                                .map(|d| d.to_string())
                                .unwrap_or_default(),
                            input_schema: Value::Object((*tool.input_schema).clone()),
                            output_schema: tool.output_schema.map(|s| Value::Object((*s).clone())),
                        })
                        .collect();
                    *self.tools.write() = tools.clone();
                    self.listed
                        .store(true, std::sync::atomic::Ordering::Release);
                    return Ok(tools);
                }
                Err(error) if attempt == 0 && is_transport_failure(&error) => {
                    self.forget(&connection).await
                }
                Err(error) => return Err(service_error(&self.name, error)),
            }
        }
        Err(CallError::upstream(
            None,
            format!("MCP server '{}' is unreachable", self.name),
            "the connection closed twice in a row",
        ))
    }
}

fn is_transport_failure(error: &ServiceError) -> bool {
    matches!(
        error,
        ServiceError::TransportClosed | ServiceError::TransportSend(_)
    )
}

fn service_error(target: &str, error: ServiceError) -> CallError {
    match error {
        ServiceError::Timeout { timeout } => CallError::Timeout(timeout),
        // The upstream's own error is meant for its clients.
        ServiceError::McpError(e) => CallError::Upstream {
            status: None,
            message: format!(
                "MCP server '{target}' answered with error {}: {}",
                e.code.0, e.message
            ),
            detail: None,
        },
        other => CallError::upstream(
            None,
            format!("MCP server '{target}' failed"),
            format!("MCP server '{target}': {other}"),
        ),
    }
}

#[async_trait]
impl Target for McpTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::McpServer
    }

    async fn list_tools(&self) -> Result<Vec<ToolDef>, CallError> {
        Ok(self.tools.read().clone())
    }

    async fn call(&self, call: TargetCall<'_>) -> Result<ToolOutput, CallError> {
        let span = tracing::info_span!(
            "mcp.client",
            otel.name = %format!("tools/call {}", call.tool),
            otel.kind = "client",
            mcp.method.name = "tools/call",
            gen_ai.tool.name = %call.tool,
            corral.target = %self.name,
        );
        let result = corral_telemetry::in_span(&span, self.call_upstream(&call)).await;
        record_upstream_outcome(&span, &result, "tool_error");
        result
    }
}

impl McpTarget {
    /// Calls the tool upstream, reconnecting once; the current trace context
    /// travels in the request's `_meta` (MCP SEP-414).
    async fn call_upstream(&self, call: &TargetCall<'_>) -> Result<ToolOutput, CallError> {
        let arguments = call.arguments.as_object().cloned();
        let trace_headers = corral_telemetry::current_trace_headers();
        for attempt in 0..2 {
            let connection = self.connection().await?;
            let mut params = CallToolRequestParams::new(call.tool.to_string());
            params.arguments = arguments.clone();
            for (name, value) in &trace_headers {
                match name.as_str() {
                    "traceparent" => params.set_traceparent(value),
                    "tracestate" => params.set_tracestate(value),
                    "baggage" => params.set_baggage(value),
                    _ => {}
                }
            }
            match connection.peer().call_tool(params).await {
                Ok(result) => {
                    let content = result
                        .content
                        .iter()
                        .map(|block| serde_json::to_value(block).unwrap_or(Value::Null))
                        .collect();
                    return Ok(ToolOutput {
                        content,
                        structured: result.structured_content,
                        is_error: result.is_error.unwrap_or(false),
                        status: None,
                    });
                }
                Err(error) if attempt == 0 && is_transport_failure(&error) => {
                    tracing::warn!(target = %self.name, %error, "MCP upstream connection failed; reconnecting");
                    self.forget(&connection).await;
                }
                Err(error) => return Err(service_error(&self.name, error)),
            }
        }
        Err(CallError::upstream(
            None,
            format!("MCP server '{}' is unreachable", self.name),
            "the connection closed twice in a row",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_on_the_given_runtime_or_here_once_it_is_gone() {
        let other = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("connecting-runtime")
            .enable_all()
            .build()
            .unwrap();
        let thread = || async { Ok(std::thread::current().name().map(str::to_string)) };
        let there = on_runtime(Some(other.handle()), thread).await.unwrap();
        assert_eq!(there.as_deref(), Some("connecting-runtime"));
        let handle = other.handle().clone();
        other.shutdown_background();
        let here = on_runtime(Some(&handle), thread).await.unwrap();
        assert_ne!(here.as_deref(), Some("connecting-runtime"));
        assert_eq!(on_runtime(None, thread).await.unwrap(), here);
    }
}
