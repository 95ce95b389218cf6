//! The seam between sandboxed agents and the tools they may call.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

pub use crate::bindings::tools::{Denial, ToolError, ToolInfo, UpstreamFailure};

/// Who is calling a tool.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// Agent (runtime) name.
    pub agent: Arc<str>,
    /// Runtime session id.
    pub session_id: Arc<str>,
    /// Actor of the current invocation.
    pub actor_id: String,
    /// Current invocation's request id.
    pub request_id: String,
    /// Tool calls made earlier in this session.
    pub step: u32,
}

/// A tool catalogue agents call through the `tools` interface.
#[async_trait]
pub trait ToolProvider: Send + Sync {
    /// Tools the caller may use.
    async fn list_tools(&self, ctx: &ToolContext) -> Result<Vec<ToolInfo>, ToolError>;

    /// Calls `name` with a JSON object of arguments.
    async fn call_tool(
        &self,
        ctx: &ToolContext,
        name: &str,
        arguments: Value,
    ) -> Result<Value, ToolError>;
}

/// The empty catalogue: every call is `not-found`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTools;

#[async_trait]
impl ToolProvider for NoTools {
    async fn list_tools(&self, _ctx: &ToolContext) -> Result<Vec<ToolInfo>, ToolError> {
        Ok(Vec::new())
    }

    async fn call_tool(
        &self,
        _ctx: &ToolContext,
        name: &str,
        _arguments: Value,
    ) -> Result<Value, ToolError> {
        Err(ToolError::NotFound(name.to_string()))
    }
}

type ToolFuture = Pin<Box<dyn Future<Output = Result<Value, ToolError>> + Send>>;
type ToolHandler = Arc<dyn Fn(ToolContext, Value) -> ToolFuture + Send + Sync>;

struct LocalTool {
    info: ToolInfo,
    handler: ToolHandler,
}

/// Tools implemented as Rust functions inside the host process.
#[derive(Default, Clone)]
pub struct LocalTools {
    tools: BTreeMap<String, Arc<LocalTool>>,
}

impl LocalTools {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an async tool; a later registration of the same name replaces it.
    pub fn register<F, Fut>(
        mut self,
        name: &str,
        description: &str,
        input_schema: Value,
        handler: F,
    ) -> Self
    where
        F: Fn(ToolContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, ToolError>> + Send + 'static,
    {
        let handler: ToolHandler = Arc::new(move |ctx, args| Box::pin(handler(ctx, args)));
        self.tools.insert(
            name.to_string(),
            Arc::new(LocalTool {
                info: ToolInfo {
                    name: name.to_string(),
                    description: description.to_string(),
                    input_schema: input_schema.to_string(),
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

    /// Whether no tool is registered.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

#[async_trait]
impl ToolProvider for LocalTools {
    async fn list_tools(&self, _ctx: &ToolContext) -> Result<Vec<ToolInfo>, ToolError> {
        Ok(self.tools.values().map(|t| t.info.clone()).collect())
    }

    async fn call_tool(
        &self,
        ctx: &ToolContext,
        name: &str,
        arguments: Value,
    ) -> Result<Value, ToolError> {
        let tool = self
            .tools
            .get(name)
            .ok_or_else(|| ToolError::NotFound(name.to_string()))?
            .clone();
        (tool.handler)(ctx.clone(), arguments).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> ToolContext {
        ToolContext {
            agent: "a".into(),
            session_id: "s".into(),
            actor_id: "u".into(),
            request_id: "r".into(),
            step: 0,
        }
    }

    #[tokio::test]
    async fn local_tools_list_and_call() {
        let tools = LocalTools::new().register(
            "double",
            "doubles n",
            json!({"type": "object"}),
            |_, args| async move {
                let n = args["n"]
                    .as_i64()
                    .ok_or_else(|| ToolError::InvalidArguments("n must be an integer".into()))?;
                Ok(json!(n * 2))
            },
        );
        assert_eq!(tools.list_tools(&ctx()).await.unwrap()[0].name, "double");
        assert_eq!(
            tools
                .call_tool(&ctx(), "double", json!({"n": 21}))
                .await
                .unwrap(),
            json!(42)
        );
        assert!(matches!(
            tools.call_tool(&ctx(), "double", json!({})).await,
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(matches!(
            tools.call_tool(&ctx(), "missing", json!({})).await,
            Err(ToolError::NotFound(_))
        ));
        assert!(matches!(
            NoTools.call_tool(&ctx(), "x", json!({})).await,
            Err(ToolError::NotFound(_))
        ));
    }
}
