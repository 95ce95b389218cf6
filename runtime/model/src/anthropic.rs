//! [`AnthropicModel`]: Anthropic's Messages API behind the Converse-shaped
//! [`ModelProvider`] seam. Converse and Messages are close cousins: content
//! blocks map one to one (`text`, `tool_use`, `tool_result`), tool specs
//! become `tools` with an `input_schema`, and system prompts go in `system`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::http::{JsonEndpoint, converse_response};
use crate::provider::{ModelError, ModelProvider};
use crate::types::{
    ContentBlock, ConverseRequest, ConverseResponse, Role, StopReason, ToolResultStatus, ToolUse,
};

/// The Messages API version Corral speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Output token cap sent when a request sets none (the API requires one).
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Where and how to reach the Messages API.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// Base URL (`https://api.anthropic.com`); `/v1/messages` is appended.
    pub base_url: String,
    /// Model used when a request names none.
    pub model_id: String,
    /// API key, sent as `x-api-key`.
    pub api_key: Option<String>,
    /// Limit of one call, connection included (5 minutes).
    pub timeout: Duration,
}

impl AnthropicConfig {
    /// A config for `model_id` at Anthropic's public endpoint, without a key.
    pub fn new(model_id: impl Into<String>) -> Self {
        Self {
            base_url: "https://api.anthropic.com".into(),
            model_id: model_id.into(),
            api_key: None,
            timeout: Duration::from_secs(300),
        }
    }
}

/// A model behind Anthropic's Messages API.
pub struct AnthropicModel {
    config: AnthropicConfig,
    endpoint: JsonEndpoint,
}

impl AnthropicModel {
    /// A provider for `config`; fails only if the HTTP client cannot be built.
    pub fn new(config: AnthropicConfig) -> Result<Self, ModelError> {
        let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
        let endpoint = JsonEndpoint::new(url, config.timeout)?;
        Ok(Self { config, endpoint })
    }
}

#[async_trait]
impl ModelProvider for AnthropicModel {
    fn provider_name(&self) -> &'static str {
        "anthropic"
    }

    fn default_model_id(&self) -> &str {
        &self.config.model_id
    }

    async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, ModelError> {
        let model_id = request
            .model_id
            .clone()
            .unwrap_or_else(|| self.config.model_id.clone());
        let body = messages_request(&model_id, &request);
        let mut headers = vec![("anthropic-version", ANTHROPIC_VERSION)];
        if let Some(key) = &self.config.api_key {
            headers.push(("x-api-key", key.as_str()));
        }
        let value = self.endpoint.post(&body, &headers).await?;
        messages_response(&value, model_id)
    }
}

/// The Messages request for a Converse request.
fn messages_request(model_id: &str, request: &ConverseRequest) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|message| {
            let content: Vec<Value> = message.content.iter().map(block).collect();
            json!({
                "role": match message.role { Role::User => "user", Role::Assistant => "assistant" },
                "content": content,
            })
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(model_id));
    body.insert(
        "max_tokens".into(),
        json!(request.inference.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    body.insert("messages".into(), Value::Array(messages));
    if !request.system.is_empty() {
        body.insert("system".into(), json!(request.system.join("\n")));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({"name": tool.name, "description": tool.description, "input_schema": tool.input_schema})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(temperature) = request.inference.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = request.inference.top_p {
        body.insert("top_p".into(), json!(top_p));
    }
    if !request.inference.stop_sequences.is_empty() {
        body.insert(
            "stop_sequences".into(),
            json!(request.inference.stop_sequences),
        );
    }
    Value::Object(body)
}

/// One Converse content block as a Messages content block.
fn block(block: &ContentBlock) -> Value {
    match block {
        ContentBlock::Text(text) => json!({"type": "text", "text": text}),
        ContentBlock::ToolUse(tool_use) => json!({
            "type": "tool_use", "id": tool_use.tool_use_id, "name": tool_use.name, "input": tool_use.input,
        }),
        ContentBlock::ToolResult(result) => json!({
            "type": "tool_result",
            "tool_use_id": result.tool_use_id,
            "content": result.text(),
            "is_error": result.status == ToolResultStatus::Error,
        }),
    }
}

/// The Converse response for a Messages answer.
fn messages_response(value: &Value, model_id: String) -> Result<ConverseResponse, ModelError> {
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ModelError::Internal("the response has no content".into()))?;
    let mut content = Vec::new();
    let mut malformed = false;
    for item in blocks {
        match item.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = item.get("text").and_then(Value::as_str) {
                    content.push(ContentBlock::Text(text.to_string()));
                }
            }
            Some("tool_use") => {
                let id = item.get("id").and_then(Value::as_str);
                let name = item.get("name").and_then(Value::as_str);
                match (id, name, item.get("input")) {
                    (Some(id), Some(name), Some(input)) if input.is_object() => {
                        content.push(ContentBlock::ToolUse(ToolUse {
                            tool_use_id: id.to_string(),
                            name: name.to_string(),
                            input: input.clone(),
                        }));
                    }
                    _ => malformed = true,
                }
            }
            // Thinking and other block types carry nothing Converse has.
            _ => {}
        }
    }
    let stop_reason = if malformed {
        StopReason::MalformedToolUse
    } else {
        match value.get("stop_reason").and_then(Value::as_str) {
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("refusal") => StopReason::ContentFiltered,
            Some("model_context_window_exceeded") => StopReason::ContextWindowExceeded,
            _ => StopReason::EndTurn,
        }
    };
    Ok(converse_response(
        value,
        content,
        stop_reason,
        ("input_tokens", "output_tokens"),
        model_id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Message, ToolResult, ToolResultContent};

    #[test]
    fn blocks_map_one_to_one() {
        let request = ConverseRequest {
            system: vec!["Be brief.".into()],
            messages: vec![
                Message::user("What is 6 * 7?"),
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::ToolResult(ToolResult {
                        tool_use_id: "toolu_1".into(),
                        content: vec![ToolResultContent::Text("denied".into())],
                        status: ToolResultStatus::Error,
                    })],
                },
            ],
            ..ConverseRequest::default()
        };
        let body = messages_request("claude", &request);
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(
            body["messages"][1]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "denied", "is_error": true})
        );
    }

    #[test]
    fn a_tool_use_without_an_object_input_is_malformed() {
        let answer = json!({"content": [{"type": "tool_use", "id": "t", "name": "x", "input": "oops"}], "stop_reason": "tool_use"});
        let response = messages_response(&answer, "m".into()).unwrap();
        assert_eq!(response.stop_reason, StopReason::MalformedToolUse);
    }
}
