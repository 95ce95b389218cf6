//! In-process tools: Rust functions served as a gateway target, so their
//! calls get the same catalogue naming, policy, concurrency limit, timeout
//! and spans as every other target's.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::{Target, TargetCall, TargetKind};
use crate::error::CallError;
use crate::tool::{ToolDef, ToolOutput};

/// Who is calling an in-process tool.
#[derive(Debug, Clone)]
pub struct LocalCall {
    /// Request id of the call.
    pub request_id: String,
    /// Runtime session id, when the caller is a sandboxed agent.
    pub session_id: Option<String>,
}

type LocalFuture = Pin<Box<dyn Future<Output = Result<Value, CallError>> + Send>>;
type LocalHandler = Arc<dyn Fn(LocalCall, Value) -> LocalFuture + Send + Sync>;

struct LocalTool {
    def: ToolDef,
    handler: LocalHandler,
}

/// Tools implemented as async Rust functions in the host process; give
/// them to the gateway with [`crate::GatewayOptions::local_targets`].
#[derive(Default, Clone)]
pub struct LocalTools {
    tools: BTreeMap<String, Arc<LocalTool>>,
}

impl std::fmt::Debug for LocalTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTools")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LocalTools {
    /// No tools yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; a later one of the same name replaces it. The handler
    /// gets the call's arguments (a JSON object) and returns the result, or
    /// a [`CallError`] (e.g. `InvalidArguments`, `Upstream`).
    pub fn register<F, Fut>(
        mut self,
        name: &str,
        description: &str,
        input_schema: Value,
        handler: F,
    ) -> Self
    where
        F: Fn(LocalCall, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        let handler: LocalHandler = Arc::new(move |call, args| Box::pin(handler(call, args)));
        self.tools.insert(
            name.to_string(),
            Arc::new(LocalTool {
                def: ToolDef {
                    name: name.to_string(),
                    description: description.to_string(),
                    input_schema,
                    output_schema: None,
                },
                handler,
            }),
        );
        self
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

#[async_trait]
impl Target for LocalTools {
    fn kind(&self) -> TargetKind {
        TargetKind::Local
    }

    async fn list_tools(&self) -> Result<Vec<ToolDef>, CallError> {
        Ok(self.tools.values().map(|t| t.def.clone()).collect())
    }

    async fn call(&self, call: TargetCall<'_>) -> Result<ToolOutput, CallError> {
        let tool = self
            .tools
            .get(call.tool)
            .cloned()
            .ok_or_else(|| CallError::NotFound(call.exposed_name.to_string()))?;
        let who = LocalCall {
            request_id: call.request_id.to_string(),
            session_id: call.session_id.map(str::to_string),
        };
        // The gateway caps the response size, as for every target.
        (tool.handler)(who, call.arguments)
            .await
            .map(ToolOutput::json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call<'a>(tool: &'a str, arguments: Value) -> TargetCall<'a> {
        TargetCall {
            tool,
            exposed_name: tool,
            arguments,
            gateway_id: "g",
            target: "local",
            request_id: "r",
            session_id: Some("s"),
            max_response_bytes: 64,
        }
    }

    #[tokio::test]
    async fn lists_and_calls_with_typed_errors() {
        let tools = LocalTools::new().register(
            "double",
            "doubles n",
            json!({"type": "object"}),
            |who, args| async move {
                assert_eq!(who.session_id.as_deref(), Some("s"));
                let n = args["n"]
                    .as_i64()
                    .ok_or_else(|| CallError::InvalidArguments("n must be an integer".into()))?;
                Ok(json!(n * 2))
            },
        );
        assert_eq!(tools.len(), 1);
        assert_eq!(tools.list_tools().await.unwrap()[0].name, "double");
        let out = tools.call(call("double", json!({"n": 21}))).await.unwrap();
        assert_eq!(out.structured, Some(json!(42)));
        assert!(matches!(
            tools.call(call("double", json!({}))).await,
            Err(CallError::InvalidArguments(_))
        ));
        assert!(matches!(
            tools.call(call("missing", json!({}))).await,
            Err(CallError::NotFound(_))
        ));
    }
}
