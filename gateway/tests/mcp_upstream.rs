//! Upstream MCP servers re-exported through the gateway: tools appear, calls
//! are proxied, `tools/list_changed` refreshes the catalogue, and a restarted
//! or late upstream is reconnected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use corral_gateway::{Caller, Gateway};
use corral_policy::Principal;
use rmcp::model::RequestParamsMeta;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// An upstream whose `grow` tool adds a tool and announces the change.
#[derive(Clone, Default)]
struct Upstream {
    grown: Arc<AtomicBool>,
    /// `_meta.traceparent` of each `tools/call` (empty when absent).
    traceparents: Arc<parking_lot::Mutex<Vec<String>>>,
}

fn tool(name: &str, description: &str) -> Tool {
    let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
    Tool::new(
        name.to_string(),
        description.to_string(),
        Arc::new(schema.as_object().unwrap().clone()),
    )
}

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = vec![tool("echo", "Echoes text"), tool("grow", "Adds a tool")];
        if self.grown.load(Ordering::SeqCst) {
            tools.push(tool("late", "A tool that appeared later"));
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let traceparent = request
            .traceparent()
            .or(context.meta.get_traceparent())
            .unwrap_or("");
        self.traceparents.lock().push(traceparent.to_string());
        let text = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("text"))
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_string();
        match request.name.as_ref() {
            "echo" | "late" => Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                "{}: {text}",
                request.name
            ))])
            .into()),
            "grow" => {
                self.grown.store(true, Ordering::SeqCst);
                let _ = context.peer.notify_tool_list_changed().await;
                Ok(CallToolResult::success(vec![ContentBlock::text("grown")]).into())
            }
            other => Err(McpError::invalid_params(format!("no tool {other}"), None)),
        }
    }
}

/// Serves an upstream on `addr` (port 0 for any); returns its address and a stop token.
async fn serve(addr: SocketAddr, upstream: Upstream) -> (SocketAddr, CancellationToken) {
    let stop = CancellationToken::new();
    let config = StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token());
    let service = StreamableHttpService::new(
        move || Ok(upstream.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    });
    (addr, stop)
}

async fn gateway_for(addr: SocketAddr) -> Arc<Gateway> {
    common::gateway(json!({
        "limits": {"callTimeoutMs": 3000},
        "targets": [{"name": "up", "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": format!("http://{addr}/mcp")}}}}]
    }))
    .await
}

fn caller() -> Caller {
    Caller::new(Principal::IamEntity { id: "t".into() })
}

async fn wait_for_tool(gateway: &Gateway, name: &str) -> bool {
    for _ in 0..100 {
        if gateway.catalog().get(name).is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn upstream_tools_are_proxied_and_list_changes_refresh_the_catalogue() {
    let (addr, _stop) = serve("127.0.0.1:0".parse().unwrap(), Upstream::default()).await;
    let gateway = gateway_for(addr).await;
    assert!(gateway.catalog().get("up___echo").is_some());
    assert!(gateway.catalog().get("up___late").is_none());
    let out = gateway
        .call_tool(&caller(), "up___echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(out.text_content(), "echo: hi");
    let mut versions = gateway.subscribe_catalog();
    let before = *versions.borrow_and_update();
    gateway
        .call_tool(&caller(), "up___grow", json!({}))
        .await
        .unwrap();
    assert!(
        wait_for_tool(&gateway, "up___late").await,
        "list_changed refreshed the catalogue"
    );
    assert!(
        *versions.borrow() > before,
        "catalogue subscribers are notified"
    );
    let out = gateway
        .call_tool(&caller(), "up___late", json!({"text": "x"}))
        .await
        .unwrap();
    assert_eq!(out.text_content(), "late: x");
}

#[tokio::test]
async fn a_restarted_upstream_is_reconnected() {
    let (addr, stop) = serve("127.0.0.1:0".parse().unwrap(), Upstream::default()).await;
    let gateway = gateway_for(addr).await;
    assert!(
        gateway
            .call_tool(&caller(), "up___echo", json!({"text": "1"}))
            .await
            .is_ok()
    );
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let down = gateway
        .call_tool(&caller(), "up___echo", json!({"text": "2"}))
        .await;
    assert!(down.is_err(), "the upstream is down: {down:?}");
    let (_, _stop) = serve(addr, Upstream::default()).await;
    let mut result = Err(corral_gateway::CallError::NotFound(String::new()));
    for _ in 0..20 {
        result = gateway
            .call_tool(&caller(), "up___echo", json!({"text": "3"}))
            .await;
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(result.unwrap().text_content(), "echo: 3");
}

#[tokio::test]
async fn an_upstream_that_starts_late_is_picked_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let gateway = gateway_for(addr).await;
    assert!(
        gateway.catalog().is_empty(),
        "gateway starts without the unreachable upstream"
    );
    let err = gateway
        .call_tool(&caller(), "up___echo", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, corral_gateway::CallError::Unavailable { target } if target == "up"),
        "{err:?}"
    );
    let unknown = gateway
        .call_tool(&caller(), "nobody___echo", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(unknown, corral_gateway::CallError::NotFound(_)));
    let (_, _stop) = serve(addr, Upstream::default()).await;
    assert!(
        wait_for_tool(&gateway, "up___echo").await,
        "background retry connected"
    );
}

#[tokio::test]
async fn upstream_calls_carry_the_trace_context_in_meta() {
    let upstream = Upstream::default();
    let (addr, _stop) = serve("127.0.0.1:0".parse().unwrap(), upstream.clone()).await;
    let gateway = gateway_for(addr).await;
    common::in_caller_trace(async {
        let out = gateway
            .call_tool(&caller(), "up___echo", json!({"text": "hi"}))
            .await
            .unwrap();
        assert_eq!(out.text_content(), "echo: hi");
    })
    .await;
    let seen = upstream.traceparents.lock().clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].starts_with(&format!("00-{}-", common::CALLER_TRACE)),
        "{seen:?}"
    );
}

/// A gateway with the built-in calculator, MCP upstream `up` at `addr`
/// (maybe down) and Cedar `policies` attached.
async fn guarded_gateway(
    addr: SocketAddr,
    policies: &[(&str, &str)],
) -> (Arc<Gateway>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in policies {
        std::fs::write(dir.path().join(format!("{name}.cedar")), text).unwrap();
    }
    let gateway = common::gateway(json!({
        "limits": {"callTimeoutMs": 3000},
        "targets": [
            {"name": "up", "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": format!("http://{addr}/mcp")}}}},
            {"name": "calculator", "targetConfiguration": {"mcp": {"wasm": {"builtin": "calculator"}}}},
        ],
        "policyEngineConfiguration": {"path": dir.path(), "mode": "ENFORCE"},
    }))
    .await;
    (gateway, dir)
}

fn down_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

const PERMIT_ECHO: &str =
    r#"permit(principal, action == AgentCore::Action::"up___echo", resource);"#;
const PERMIT_CALCULATOR: &str =
    r#"permit(principal, action == AgentCore::Action::"calculator___evaluate", resource);"#;

#[tokio::test]
async fn policies_naming_a_down_upstreams_tools_wait_for_them() {
    let addr = down_address();
    // Starts, and serves the target that is up, though a policy names a tool
    // the catalogue does not have yet.
    let (gateway, _dir) = guarded_gateway(
        addr,
        &[("echo", PERMIT_ECHO), ("calculator", PERMIT_CALCULATOR)],
    )
    .await;
    assert_eq!(gateway.unavailable_targets(), ["up"]);
    let sum = gateway
        .call_tool(
            &caller(),
            "calculator___evaluate",
            json!({"expression": "2 + 3"}),
        )
        .await
        .unwrap();
    assert!(sum.text_content().contains('5'), "{}", sum.text_content());
    // When the upstream comes, its tools arrive and the waiting permit applies.
    let (_, _stop) = serve(addr, Upstream::default()).await;
    assert!(
        wait_for_tool(&gateway, "up___echo").await,
        "background retry connected"
    );
    assert!(gateway.unavailable_targets().is_empty());
    let echoed = gateway
        .call_tool(&caller(), "up___echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(echoed.text_content(), "echo: hi");
}

#[tokio::test]
async fn a_waiting_forbid_fails_closed_until_its_tools_arrive() {
    let addr = down_address();
    let forbid = r#"forbid(principal, action == AgentCore::Action::"up___echo", resource);"#;
    let (gateway, _dir) = guarded_gateway(
        addr,
        &[
            ("calculator", PERMIT_CALCULATOR),
            ("echo", PERMIT_ECHO),
            ("no_echo", forbid),
        ],
    )
    .await;
    let denied = gateway
        .call_tool(
            &caller(),
            "calculator___evaluate",
            json!({"expression": "1 + 1"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(denied, corral_gateway::CallError::Denied { .. }),
        "a forbid that cannot be checked yet denies everything: {denied:?}"
    );
    let (_, _stop) = serve(addr, Upstream::default()).await;
    assert!(wait_for_tool(&gateway, "up___echo").await);
    gateway
        .call_tool(
            &caller(),
            "calculator___evaluate",
            json!({"expression": "1 + 1"}),
        )
        .await
        .unwrap();
    let forbidden = gateway
        .call_tool(&caller(), "up___echo", json!({"text": "hi"}))
        .await
        .unwrap_err();
    assert!(
        matches!(forbidden, corral_gateway::CallError::Denied { .. }),
        "{forbidden:?}"
    );
}

#[tokio::test]
async fn a_policy_naming_an_unknown_tool_of_a_live_target_still_refuses_the_load() {
    let addr = down_address();
    let typo =
        r#"permit(principal, action == AgentCore::Action::"calculator___evaluat", resource);"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("typo.cedar"), typo).unwrap();
    let config: corral_gateway::GatewayConfig = serde_json::from_value(json!({
        "targets": [
            {"name": "up", "targetConfiguration": {"mcp": {"mcpServer": {"endpoint": format!("http://{addr}/mcp")}}}},
            {"name": "calculator", "targetConfiguration": {"mcp": {"wasm": {"builtin": "calculator"}}}},
        ],
        "policyEngineConfiguration": {"path": dir.path(), "mode": "ENFORCE"},
    }))
    .unwrap();
    let refused = Gateway::new(config, common::options()).await.unwrap_err();
    assert!(refused.to_string().contains("typo"), "{refused}");
}
