//! `tools/call` answered straight from the gateway, without rmcp's
//! per-request service.
//!
//! In stateless mode rmcp serves every POST by building a service, a oneshot
//! transport, a cancellation token and a spawned task, and parses the body
//! again into its untagged message enum. For the one request a gateway
//! serves at volume that was most of the time of a call (`benches/peers`).
//! The direct path answers only the `tools/call` requests rmcp's stateless
//! JSON transport would take and answer the same way, through the same
//! [`McpGatewayServer::call`]. Anything else (other methods, an `Origin`
//! header, SEP-2243 `Mcp-*` headers, per-request protocol versions, retried
//! input requests, a `Host` this module cannot prove allowed) goes to rmcp,
//! which stays the one place those rules are decided.

use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corral_policy::Principal;
use rmcp::model::{
    CallToolRequestParams, ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};

use crate::server::McpGatewayServer;

/// `_meta` keys a direct call may carry: trace context and a progress token
/// (the gateway sends no progress, as through rmcp).
const META_KEYS: &[&str] = &["traceparent", "tracestate", "baggage", "progressToken"];

/// Answers the `tools/call` requests rmcp would answer identically.
#[derive(Clone)]
pub(crate) struct DirectCalls {
    server: McpGatewayServer,
    /// Lower-cased `Host` values accepted; empty accepts any (as rmcp).
    allowed_hosts: Vec<String>,
}

impl DirectCalls {
    /// Direct calls for `server`, accepting the `Host` values rmcp is
    /// configured with (empty: any).
    pub(crate) fn new(server: McpGatewayServer, allowed_hosts: &[String]) -> Self {
        Self {
            server,
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether this request may skip rmcp: every check rmcp's stateless
    /// JSON transport makes passes, and nothing it would treat specially is
    /// present.
    pub(crate) fn takes(&self, parts: &Parts, params: &CallToolRequestParams) -> bool {
        let headers = &parts.headers;
        accepts_json_and_sse(headers)
            && is_json(headers)
            && !headers.contains_key(header::ORIGIN)
            && self.host_allowed(headers)
            && plain_mcp_headers(headers)
            && params.input_responses.is_none()
            && params.request_state.is_none()
            && params
                .meta
                .as_ref()
                .is_none_or(|meta| meta.0.0.keys().all(|k| META_KEYS.contains(&k.as_str())))
    }

    /// The JSON-RPC answer to one `tools/call`, as rmcp would send it.
    pub(crate) async fn answer(
        &self,
        parts: &Parts,
        id: RequestId,
        params: CallToolRequestParams,
    ) -> Response {
        let principal =
            parts
                .extensions
                .get::<Principal>()
                .cloned()
                .unwrap_or(Principal::IamEntity {
                    id: "anonymous".into(),
                });
        let message = match self
            .server
            .call(principal, Some(&parts.headers), None, params)
            .await
        {
            Ok(result) => ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), id),
            Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
        };
        match serde_json::to_vec(&message) {
            Ok(body) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "cannot serialise a tools/call answer");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }

    /// The `Host` is one rmcp accepts: any when unrestricted, else a listed
    /// host (any port) or a listed `host:port`. IPv6 hosts go to rmcp.
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let Some(authority) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if authority.starts_with('[') {
            return false;
        }
        let authority = authority.to_ascii_lowercase();
        let host = authority.split(':').next().unwrap_or_default();
        self.allowed_hosts
            .iter()
            .any(|allowed| *allowed == authority || (!allowed.contains(':') && allowed == host))
    }
}

/// `Accept` names both `application/json` and `text/event-stream`.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for media in value.split(',') {
            let essence = media.split(';').next().unwrap_or_default().trim();
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// `Content-Type` is exactly `application/json` (parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// No `Mcp-*` header but a protocol version rmcp takes without negotiation
/// (one that still has `initialize`); an absent version means 2025-03-26.
fn plain_mcp_headers(headers: &HeaderMap) -> bool {
    headers.iter().all(|(name, value)| {
        let name = name.as_str();
        if !name.starts_with("mcp-") {
            return true;
        }
        name == "mcp-protocol-version"
            && value.to_str().is_ok_and(|version| {
                version <= ProtocolVersion::LATEST_WITH_INITIALIZE.as_str()
                    && ProtocolVersion::KNOWN_VERSIONS
                        .iter()
                        .any(|known| known.as_str() == version)
            })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Gateway, GatewayOptions};

    async fn direct(hosts: &[&str]) -> DirectCalls {
        let gateway = Gateway::new(
            serde_json::from_str("{}").unwrap(),
            GatewayOptions::default(),
        )
        .await
        .unwrap();
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        DirectCalls::new(McpGatewayServer::new(gateway), &hosts)
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder().method("POST").uri("/mcp");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    const PLAIN: &[(&str, &str)] = &[
        ("host", "127.0.0.1:8000"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-06-18"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut headers: Vec<_> = PLAIN
            .iter()
            .filter(|(name, _)| !extra.iter().any(|(n, _)| n == name))
            .copied()
            .collect();
        headers.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
        headers
    }

    #[tokio::test]
    async fn plain_calls_go_direct_and_anything_rmcp_decides_goes_to_rmcp() {
        let direct = direct(&["localhost", "127.0.0.1", "::1"]).await;
        let call = CallToolRequestParams::new("calc___add");
        assert!(direct.takes(&parts(PLAIN), &call));
        assert!(direct.takes(&parts(&with(&[("mcp-protocol-version", "")])), &call));
        for extra in [
            ("accept", "application/json"),
            ("accept", "*/*"),
            ("content-type", "application/jsonx"),
            ("origin", "http://evil.example"),
            ("host", "evil.example"),
            ("host", "[::1]:8000"),
            ("host", ""),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-protocol-version", "1999-01-01"),
            ("mcp-session-id", "abc"),
            ("mcp-method", "tools/call"),
        ] {
            assert!(
                !direct.takes(&parts(&with(&[extra])), &call),
                "{extra:?} must go to rmcp"
            );
        }
        let mut traced: CallToolRequestParams = serde_json::from_value(serde_json::json!({
            "name": "calc___add",
            "_meta": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        }))
        .unwrap();
        assert!(direct.takes(&parts(PLAIN), &traced));
        traced = serde_json::from_value(serde_json::json!({
            "name": "calc___add",
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
        }))
        .unwrap();
        assert!(!direct.takes(&parts(PLAIN), &traced));
        let any_host = self::direct(&[]).await;
        assert!(any_host.takes(&parts(&with(&[("host", "evil.example")])), &call));
    }
}
