//! Model providers for Corral agents.
//!
//! [`ModelProvider`] answers Converse-shaped requests. Two providers ship:
//! [`BedrockModel`] (Amazon Bedrock through `aws-sdk-bedrockruntime`) and
//! [`ScriptedModel`] (deterministic and offline, for demos and tests).

mod bedrock;
mod document;
mod provider;
mod scripted;
mod template;
mod types;

pub use bedrock::{BedrockConfig, BedrockModel};
pub use document::{document_to_json, json_to_document};
pub use provider::{ModelError, ModelProvider};
pub use scripted::{
    Condition, Reply, Rule, Script, ScriptError, ScriptedFailure, ScriptedModel, ToolCallTemplate,
};
pub use types::{
    ContentBlock, ConverseRequest, ConverseResponse, InferenceConfig, Message, Role, StopReason,
    TokenUsage, ToolResult, ToolResultContent, ToolResultStatus, ToolSpec, ToolUse,
};
