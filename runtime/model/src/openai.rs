//! [`OpenAiModel`]: any OpenAI-compatible Chat Completions endpoint (OpenAI,
//! Ollama, vLLM, llama.cpp server, ...) behind the Converse-shaped
//! [`ModelProvider`] seam. Tool specs become `tools` of type `function`,
//! assistant tool uses become `tool_calls`, tool results become `tool`
//! messages, and the answer maps back the same way.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::http::{JsonEndpoint, converse_response};
use crate::provider::{ModelError, ModelProvider};
use crate::types::{
    ContentBlock, ConverseRequest, ConverseResponse, Message, Role, StopReason, ToolUse,
};

/// Where and how to reach a Chat Completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL, up to and including the API version (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` for Ollama); `/chat/completions` is appended.
    pub base_url: String,
    /// Model used when a request names none.
    pub model_id: String,
    /// Bearer token, if the endpoint wants one (local servers usually do not).
    pub api_key: Option<String>,
    /// Limit of one call, connection included (5 minutes).
    pub timeout: Duration,
}

impl OpenAiConfig {
    /// A config for `model_id` at `base_url`, without a key.
    pub fn new(base_url: impl Into<String>, model_id: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model_id: model_id.into(),
            api_key: None,
            timeout: Duration::from_secs(300),
        }
    }
}

/// A Chat Completions model.
pub struct OpenAiModel {
    config: OpenAiConfig,
    endpoint: JsonEndpoint,
}

impl OpenAiModel {
    /// A provider for `config`; fails only if the HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, ModelError> {
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let endpoint = JsonEndpoint::new(url, config.timeout)?;
        Ok(Self { config, endpoint })
    }
}

#[async_trait]
impl ModelProvider for OpenAiModel {
    fn provider_name(&self) -> &'static str {
        "openai"
    }

    fn default_model_id(&self) -> &str {
        &self.config.model_id
    }

    async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, ModelError> {
        let model_id = request
            .model_id
            .clone()
            .unwrap_or_else(|| self.config.model_id.clone());
        let body = chat_request(&model_id, &request);
        let authorization = self
            .config
            .api_key
            .as_ref()
            .map(|key| format!("Bearer {key}"));
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        let value = self.endpoint.post(&body, &headers).await?;
        chat_response(&value, model_id)
    }
}

/// The Chat Completions request for a Converse request.
fn chat_request(model_id: &str, request: &ConverseRequest) -> Value {
    let mut messages: Vec<Value> = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system.join("\n")}));
    }
    for message in &request.messages {
        push_messages(&mut messages, message);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model_id));
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.input_schema,
                }})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    let inference = &request.inference;
    if let Some(max) = inference.max_tokens {
        body.insert("max_tokens".into(), json!(max));
    }
    if let Some(temperature) = inference.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = inference.top_p {
        body.insert("top_p".into(), json!(top_p));
    }
    if !inference.stop_sequences.is_empty() {
        body.insert("stop".into(), json!(inference.stop_sequences));
    }
    Value::Object(body)
}

/// Appends one Converse message as Chat Completions messages: tool results
/// become `tool` messages (one per result), the rest one user or assistant
/// message.
fn push_messages(out: &mut Vec<Value>, message: &Message) {
    match message.role {
        Role::User => {
            for result in message.tool_results() {
                out.push(json!({
                    "role": "tool",
                    "tool_call_id": result.tool_use_id,
                    "content": result.text(),
                }));
            }
            let text = message.text();
            if !text.is_empty() || message.tool_results().next().is_none() {
                out.push(json!({"role": "user", "content": text}));
            }
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .tool_uses()
                .map(|tool_use| {
                    json!({"id": tool_use.tool_use_id, "type": "function", "function": {
                        "name": tool_use.name,
                        "arguments": tool_use.input.to_string(),
                    }})
                })
                .collect();
            let text = message.text();
            let mut assistant = Map::new();
            assistant.insert("role".into(), json!("assistant"));
            assistant.insert(
                "content".into(),
                if text.is_empty() {
                    Value::Null
                } else {
                    json!(text)
                },
            );
            if !calls.is_empty() {
                assistant.insert("tool_calls".into(), Value::Array(calls));
            }
            out.push(Value::Object(assistant));
        }
    }
}

/// The Converse response for a Chat Completions answer.
fn chat_response(value: &Value, model_id: String) -> Result<ConverseResponse, ModelError> {
    let choice = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .ok_or_else(|| ModelError::Internal("the response has no choices".into()))?;
    let message = choice
        .get("message")
        .ok_or_else(|| ModelError::Internal("the first choice has no message".into()))?;
    let mut content = Vec::new();
    if let Some(text) = message.get("content").and_then(Value::as_str)
        && !text.is_empty()
    {
        content.push(ContentBlock::Text(text.to_string()));
    }
    let mut malformed = false;
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let id = call.get("id").and_then(Value::as_str);
        match (id, name, serde_json::from_str::<Value>(arguments)) {
            (Some(id), Some(name), Ok(input)) => content.push(ContentBlock::ToolUse(ToolUse {
                tool_use_id: id.to_string(),
                name: name.to_string(),
                input,
            })),
            _ => malformed = true,
        }
    }
    let has_tool_uses = content
        .iter()
        .any(|block| matches!(block, ContentBlock::ToolUse(_)));
    let stop_reason = if malformed {
        StopReason::MalformedToolUse
    } else {
        match choice.get("finish_reason").and_then(Value::as_str) {
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::ContentFiltered,
            _ if has_tool_uses => StopReason::ToolUse,
            _ => StopReason::EndTurn,
        }
    };
    Ok(converse_response(
        value,
        content,
        stop_reason,
        ("prompt_tokens", "completion_tokens"),
        model_id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ToolResult, ToolResultContent, ToolResultStatus, ToolSpec};

    #[test]
    fn tool_uses_and_results_map_to_tool_calls_and_tool_messages() {
        let request = ConverseRequest {
            system: vec!["Be brief.".into()],
            messages: vec![
                Message::user("What is 6 * 7?"),
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::ToolUse(ToolUse {
                        tool_use_id: "call_1".into(),
                        name: "calculator___evaluate".into(),
                        input: json!({"expression": "6 * 7"}),
                    })],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::ToolResult(ToolResult {
                        tool_use_id: "call_1".into(),
                        content: vec![ToolResultContent::Json(json!({"value": 42}))],
                        status: ToolResultStatus::Success,
                    })],
                },
            ],
            tools: vec![ToolSpec {
                name: "calculator___evaluate".into(),
                description: "arithmetic".into(),
                input_schema: json!({"type": "object"}),
            }],
            ..ConverseRequest::default()
        };
        let body = chat_request("m", &request);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(
            messages[0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(messages[1]["role"], "user");
        assert_eq!(messages[2]["content"], Value::Null);
        assert_eq!(
            messages[2]["tool_calls"][0]["function"]["arguments"],
            "{\"expression\":\"6 * 7\"}"
        );
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"value\":42}"})
        );
        assert_eq!(
            messages.len(),
            4,
            "no empty user message beside the tool result"
        );
        assert_eq!(
            body["tools"][0]["function"]["name"],
            "calculator___evaluate"
        );
    }

    #[test]
    fn malformed_tool_arguments_are_a_typed_stop_reason() {
        let answer = json!({"choices": [{"finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "t", "arguments": "{not json"}}]
        }}]});
        let response = chat_response(&answer, "m".into()).unwrap();
        assert_eq!(response.stop_reason, StopReason::MalformedToolUse);
    }
}
