//! The host as the tool loop sees it, so the loop can be tested off-wasm.

use crate::bindings::corral::agent::log::{self, Level};
use crate::bindings::corral::agent::model::{self, ConverseRequest, ConverseResponse, ModelError};
use crate::bindings::corral::agent::tools::{self, ToolError, ToolInfo};

/// What an agent loop needs from its host.
pub trait AgentHost {
    /// One model call.
    fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse, ModelError>;
    /// The session's tool catalogue.
    fn list_tools(&self) -> Result<Vec<ToolInfo>, ToolError>;
    /// One tool call with JSON arguments, returning JSON.
    fn call_tool(&self, name: &str, arguments: &str) -> Result<String, ToolError>;
    /// One session log line.
    fn log(&self, level: Level, message: &str);
}

/// The real host, through the component's imports.
#[derive(Debug, Default, Clone, Copy)]
pub struct WitHost;

impl AgentHost for WitHost {
    fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse, ModelError> {
        model::converse(request)
    }

    fn list_tools(&self) -> Result<Vec<ToolInfo>, ToolError> {
        tools::list_tools()
    }

    fn call_tool(&self, name: &str, arguments: &str) -> Result<String, ToolError> {
        tools::call_tool(name, arguments)
    }

    fn log(&self, level: Level, message: &str) {
        // A line over the log budget is dropped by the host; logging never fails the agent.
        let _ = log::write(level, message, &[]);
    }
}
