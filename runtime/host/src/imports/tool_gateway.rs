//! The gateway as the session's tool catalogue: in process, no network hop,
//! the same catalogue, policy and limits MCP clients get. Gateway results
//! and errors become the agent ABI's types here.

use corral_gateway::{CallError, Caller};
use corral_policy::{CallContext, Principal};
use corral_telemetry::DirectSpan;
use serde_json::{Map, Value};

use crate::bindings::tools::{Denial, ToolError, ToolInfo, UpstreamFailure};
use crate::state::SessionState;

/// Longest error text passed back to an agent.
const MAX_ERROR_TEXT: usize = 4096;

impl SessionState {
    /// The caller the gateway sees: the invocation's actor, as an
    /// `AgentCore::OAuthUser` whose claims name the agent.
    fn tool_caller(&self) -> Caller {
        let actor = self.scope.actor_id.clone();
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String(actor.clone()));
        claims.insert("agent".into(), Value::String(self.agent.to_string()));
        Caller {
            principal: Principal::OAuthUser {
                id: actor.clone(),
                claims,
            },
            request_id: self.scope.request_id.clone(),
            context: CallContext {
                session_id: Some(self.session_id.to_string()),
                agent: Some(self.agent.to_string()),
                actor_id: Some(actor),
                step: Some(self.session_tool_calls),
                time: None,
            },
        }
    }

    /// The tools this session's caller may see (none without a gateway).
    pub(super) async fn gateway_tools(&mut self) -> Result<Vec<ToolInfo>, ToolError> {
        let Some(gateway) = self.services.tools.clone() else {
            return Ok(Vec::new());
        };
        // Host calls run on the guest's fiber stack; policy evaluation (Cedar
        // guards its recursion by the stack left) runs on a runtime thread.
        let principal = self.tool_caller().principal;
        let span = self.scope.current_direct_span();
        let visible = tokio::spawn(async move {
            span.in_scope(async { gateway.visible_tools(&principal) })
                .await
        })
        .await
        .map_err(|e| upstream(format!("tool listing failed: {e}")))?;
        Ok(visible
            .into_iter()
            .map(|tool| ToolInfo {
                name: tool.name,
                description: tool.description,
                input_schema: tool.input_schema.to_string(),
            })
            .collect())
    }

    /// Calls `name` through the gateway; the result as JSON text.
    pub(super) async fn gateway_call(
        &mut self,
        name: &str,
        arguments: Value,
        span: &DirectSpan,
    ) -> Result<String, ToolError> {
        let Some(gateway) = self.services.tools.clone() else {
            return Err(ToolError::NotFound(name.to_string()));
        };
        let caller = self.tool_caller();
        let name = name.to_string();
        // The gateway records its attributes on the `execute_tool` span
        // rather than opening a span of its own. The call may run a WASM
        // tool for seconds, so it runs on the guest threads.
        let span = span.clone();
        let output = crate::executor::spawn_guest_work(async move {
            span.in_scope(gateway.call_tool_in(&caller, &name, arguments, &span))
                .await
        })
        .await
        .map_err(|e| upstream(format!("tool call failed: {e}")))?
        .map_err(tool_error)?;
        if output.is_error {
            return Err(ToolError::Upstream(UpstreamFailure {
                status: output.status,
                message: bounded(output.text_content()),
            }));
        }
        Ok(output.to_json().to_string())
    }
}

fn upstream(message: String) -> ToolError {
    ToolError::Upstream(UpstreamFailure {
        status: None,
        message,
    })
}

fn bounded(mut text: String) -> String {
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A gateway error as the agent ABI's typed tool error.
fn tool_error(error: CallError) -> ToolError {
    match error {
        CallError::NotFound(name) => ToolError::NotFound(name),
        CallError::Denied { reason, policy_ids } => {
            ToolError::Denied(Denial { reason, policy_ids })
        }
        CallError::InvalidArguments(message) => ToolError::InvalidArguments(message),
        CallError::Upstream {
            status, message, ..
        } => ToolError::Upstream(UpstreamFailure {
            status,
            message: bounded(message),
        }),
        CallError::Timeout(limit) => ToolError::Timeout(format!("no answer within {limit:?}")),
        error @ (CallError::ResponseTooLarge(_) | CallError::Overloaded { .. }) => {
            ToolError::LimitExceeded(error.to_string())
        }
        CallError::InvalidCursor => ToolError::InvalidArguments("invalid cursor".into()),
        error @ CallError::Unavailable { .. } => ToolError::Upstream(UpstreamFailure {
            status: Some(503),
            message: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn gateway_errors_map_to_typed_tool_errors() {
        assert!(matches!(
            tool_error(CallError::NotFound("x".into())),
            ToolError::NotFound(_)
        ));
        match tool_error(CallError::Denied {
            reason: "no".into(),
            policy_ids: vec!["p".into()],
        }) {
            ToolError::Denied(denial) => assert_eq!(denial.policy_ids, vec!["p".to_string()]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            tool_error(CallError::Timeout(Duration::from_secs(1))),
            ToolError::Timeout(_)
        ));
        assert!(matches!(
            tool_error(CallError::ResponseTooLarge(5)),
            ToolError::LimitExceeded(_)
        ));
        match tool_error(CallError::Upstream {
            status: Some(503),
            message: "x".repeat(10_000),
            detail: Some("http://10.0.0.7/ refused".into()),
        }) {
            ToolError::Upstream(failure) => {
                assert_eq!(failure.status, Some(503));
                assert!(failure.message.len() <= MAX_ERROR_TEXT + 3);
            }
            other => panic!("{other:?}"),
        }
    }
}
