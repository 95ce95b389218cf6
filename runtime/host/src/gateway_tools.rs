//! The gateway as the tool catalogue of sandboxed agents: in process, no
//! network hop, the same catalogue and the same checks as MCP clients get.

use std::sync::Arc;
use tracing::Instrument;

use async_trait::async_trait;
use corral_gateway::{CallError, Caller, Gateway};
use corral_policy::{CallContext, Principal};
use serde_json::{Map, Value};

use crate::tools::{Denial, ToolContext, ToolError, ToolInfo, ToolProvider, UpstreamFailure};

/// Longest error text passed back to an agent.
const MAX_ERROR_TEXT: usize = 4096;

/// Serves a [`Gateway`]'s catalogue to agents.
#[derive(Clone)]
pub struct GatewayTools {
    gateway: Arc<Gateway>,
}

impl GatewayTools {
    /// Agents of this host call tools through `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

/// The policy principal of an agent's call: the actor it acts for, as an
/// `AgentCore::OAuthUser` whose claims name the agent.
pub fn principal_for(ctx: &ToolContext) -> Principal {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(ctx.actor_id.clone()));
    claims.insert("agent".into(), Value::String(ctx.agent.to_string()));
    Principal::OAuthUser {
        id: ctx.actor_id.clone(),
        claims,
    }
}

fn caller_for(ctx: &ToolContext) -> Caller {
    Caller {
        principal: principal_for(ctx),
        request_id: ctx.request_id.clone(),
        context: CallContext {
            session_id: Some(ctx.session_id.to_string()),
            agent: Some(ctx.agent.to_string()),
            actor_id: Some(ctx.actor_id.clone()),
            step: Some(ctx.step),
            time: None,
        },
    }
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

/// Maps a gateway error to the agent ABI's typed tool error.
pub fn tool_error(error: CallError) -> ToolError {
    match error {
        CallError::NotFound(name) => ToolError::NotFound(name),
        CallError::Denied { reason, policy_ids } => {
            ToolError::Denied(Denial { reason, policy_ids })
        }
        CallError::InvalidArguments(message) => ToolError::InvalidArguments(message),
        CallError::Upstream { status, message } => ToolError::Upstream(UpstreamFailure {
            status,
            message: bounded(message),
        }),
        CallError::Timeout(limit) => ToolError::Timeout(format!("no answer within {limit:?}")),
        error @ (CallError::ResponseTooLarge(_) | CallError::Overloaded { .. }) => {
            ToolError::LimitExceeded(error.to_string())
        }
        CallError::InvalidCursor => ToolError::InvalidArguments("invalid cursor".into()),
    }
}

#[async_trait]
impl ToolProvider for GatewayTools {
    async fn list_tools(&self, ctx: &ToolContext) -> Result<Vec<ToolInfo>, ToolError> {
        // Host calls run on the guest's fiber stack; policy evaluation (Cedar
        // guards its recursion by the stack left) runs on a runtime thread.
        let gateway = self.gateway.clone();
        let principal = principal_for(ctx);
        let visible = tokio::spawn(
            async move { gateway.visible_tools(&principal) }.instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| {
            ToolError::Upstream(UpstreamFailure {
                status: None,
                message: format!("tool listing failed: {e}"),
            })
        })?;
        Ok(visible
            .into_iter()
            .map(|tool| ToolInfo {
                name: tool.name,
                description: tool.description,
                input_schema: tool.input_schema.to_string(),
            })
            .collect())
    }

    async fn call_tool(
        &self,
        ctx: &ToolContext,
        name: &str,
        arguments: Value,
    ) -> Result<Value, ToolError> {
        let gateway = self.gateway.clone();
        let caller = caller_for(ctx);
        let name = name.to_string();
        let output = tokio::spawn(
            async move { gateway.call_tool(&caller, &name, arguments).await }
                .instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| {
            ToolError::Upstream(UpstreamFailure {
                status: None,
                message: format!("tool call failed: {e}"),
            })
        })?
        .map_err(tool_error)?;
        if output.is_error {
            return Err(ToolError::Upstream(UpstreamFailure {
                status: output.status,
                message: bounded(output.text_content()),
            }));
        }
        Ok(output.to_json())
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
        }) {
            ToolError::Upstream(failure) => {
                assert_eq!(failure.status, Some(503));
                assert!(failure.message.len() <= MAX_ERROR_TEXT + 3);
            }
            other => panic!("{other:?}"),
        }
    }
}
