//! Converse-shaped request and response types, serialised as Bedrock's
//! Converse JSON (`{"toolUse": {...}}`, camelCase fields).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who authored a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (also carries tool results).
    User,
    /// The model.
    Assistant,
}

/// A model's request to run a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    /// Links the request to its result.
    pub tool_use_id: String,
    /// Tool name.
    pub name: String,
    /// Arguments (a JSON object).
    pub input: Value,
}

/// Outcome of a tool run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ToolResultStatus {
    /// The tool succeeded.
    #[default]
    Success,
    /// The tool failed.
    Error,
}

/// One part of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent {
    /// Plain text.
    Text(String),
    /// A JSON document.
    Json(Value),
}

/// The result of a tool run, sent back to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// The tool use this answers.
    pub tool_use_id: String,
    /// Result content.
    pub content: Vec<ToolResultContent>,
    /// Success or error.
    #[serde(default)]
    pub status: ToolResultStatus,
}

impl ToolResult {
    /// The result rendered as text (JSON parts compactly serialised).
    pub fn text(&self) -> String {
        let parts: Vec<String> = self
            .content
            .iter()
            .map(|part| match part {
                ToolResultContent::Text(text) => text.clone(),
                ToolResultContent::Json(value) => value.to_string(),
            })
            .collect();
        parts.join("\n")
    }
}

/// One block of message content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentBlock {
    /// Plain text.
    Text(String),
    /// A tool request (assistant messages).
    ToolUse(ToolUse),
    /// A tool result (user messages).
    ToolResult(ToolResult),
}

/// A conversation message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Content blocks, in order.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message with one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlock::Text(text.into())],
        }
    }

    /// An assistant message with one text block.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: vec![ContentBlock::Text(text.into())],
        }
    }

    /// Concatenated text blocks of this message.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text(text) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        parts.join("\n")
    }

    /// Tool uses requested in this message.
    pub fn tool_uses(&self) -> impl Iterator<Item = &ToolUse> {
        self.content.iter().filter_map(|block| match block {
            ContentBlock::ToolUse(tool_use) => Some(tool_use),
            _ => None,
        })
    }

    /// Tool results carried by this message.
    pub fn tool_results(&self) -> impl Iterator<Item = &ToolResult> {
        self.content.iter().filter_map(|block| match block {
            ContentBlock::ToolResult(result) => Some(result),
            _ => None,
        })
    }
}

/// A tool the model may request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    /// Tool name.
    pub name: String,
    /// What the tool does.
    pub description: String,
    /// JSON Schema of the input object.
    pub input_schema: Value,
}

/// Sampling parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    /// Output token cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sequences that stop generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

/// One Converse request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    /// Model to use; `None` means the provider's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// System prompts.
    #[serde(default)]
    pub system: Vec<String>,
    /// Conversation, oldest first.
    pub messages: Vec<Message>,
    /// Tools the model may request.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Sampling parameters.
    #[serde(default)]
    pub inference: InferenceConfig,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The model requests tool runs.
    ToolUse,
    /// The output token cap was reached.
    MaxTokens,
    /// A stop sequence was produced.
    StopSequence,
    /// A guardrail intervened.
    GuardrailIntervened,
    /// Content was filtered.
    ContentFiltered,
    /// The model produced output that could not be parsed.
    MalformedModelOutput,
    /// The model produced a tool use that could not be parsed.
    MalformedToolUse,
    /// The conversation no longer fits the model's context window.
    ContextWindowExceeded,
}

impl StopReason {
    /// The Converse wire name (`end_turn`, `tool_use`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::GuardrailIntervened => "guardrail_intervened",
            StopReason::ContentFiltered => "content_filtered",
            StopReason::MalformedModelOutput => "malformed_model_output",
            StopReason::MalformedToolUse => "malformed_tool_use",
            StopReason::ContextWindowExceeded => "model_context_window_exceeded",
        }
    }
}

/// Tokens used by one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Completion tokens.
    pub output_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
}

impl TokenUsage {
    /// Usage with `total` computed.
    pub fn new(input_tokens: u32, output_tokens: u32) -> Self {
        Self {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens.saturating_add(output_tokens),
        }
    }
}

/// One Converse response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    /// The assistant message.
    pub output: Message,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Token usage.
    pub usage: TokenUsage,
    /// The model that answered.
    pub model_id: String,
}
