//! Model providers for Corral agents.
//!
//! [`ModelProvider`] answers Converse-shaped requests. Four providers ship:
//! [`BedrockModel`] (Amazon Bedrock through `aws-sdk-bedrockruntime`),
//! [`OpenAiModel`] (any OpenAI-compatible Chat Completions endpoint),
//! [`AnthropicModel`] (Anthropic's Messages API) and [`ScriptedModel`]
//! (deterministic and offline, for demos and tests).

mod anthropic;
mod bedrock;
mod document;
mod http;
mod openai;
mod provider;
mod scripted;
mod template;
mod types;

pub use anthropic::{ANTHROPIC_VERSION, AnthropicConfig, AnthropicModel};
pub use bedrock::{BedrockConfig, BedrockModel};
pub use document::{document_to_json, json_to_document};
pub use openai::{OpenAiConfig, OpenAiModel};
pub use provider::{ModelError, ModelProvider};
pub use scripted::{
    Condition, Reply, Rule, Script, ScriptError, ScriptedFailure, ScriptedModel, ToolCallTemplate,
};
pub use types::{
    ContentBlock, ConverseRequest, ConverseResponse, InferenceConfig, Message, Role, StopReason,
    TokenUsage, ToolResult, ToolResultContent, ToolResultStatus, ToolSpec, ToolUse,
};
