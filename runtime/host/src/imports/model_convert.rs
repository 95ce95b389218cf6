//! Conversions between the WIT `model` types and `corral-model`'s types.

use corral_model as m;
use serde_json::Value;

use crate::bindings::model as w;

/// Parses JSON text the guest sent; `what` names it in the error.
fn parse_json(text: &str, what: &str) -> Result<Value, w::ModelError> {
    serde_json::from_str(text)
        .map_err(|e| w::ModelError::Validation(format!("{what} is not valid JSON: {e}")))
}

/// Guest request → provider request.
pub fn request_from_wit(request: w::ConverseRequest) -> Result<m::ConverseRequest, w::ModelError> {
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in request.messages {
        messages.push(message_from_wit(message)?);
    }
    let mut tools = Vec::with_capacity(request.tools.len());
    for tool in request.tools {
        tools.push(m::ToolSpec {
            input_schema: parse_json(
                &tool.input_schema,
                &format!("input schema of tool '{}'", tool.name),
            )?,
            name: tool.name,
            description: tool.description,
        });
    }
    Ok(m::ConverseRequest {
        model_id: request.model_id,
        system: request.system,
        messages,
        tools,
        inference: m::InferenceConfig {
            max_tokens: request.inference.max_tokens,
            temperature: request.inference.temperature,
            top_p: request.inference.top_p,
            stop_sequences: request.inference.stop_sequences,
        },
    })
}

fn message_from_wit(message: w::Message) -> Result<m::Message, w::ModelError> {
    let role = match message.role {
        w::Role::User => m::Role::User,
        w::Role::Assistant => m::Role::Assistant,
    };
    let mut content = Vec::with_capacity(message.content.len());
    for block in message.content {
        content.push(match block {
            w::ContentBlock::Text(text) => m::ContentBlock::Text(text),
            w::ContentBlock::ToolUse(tool_use) => m::ContentBlock::ToolUse(m::ToolUse {
                input: parse_json(&tool_use.input, "tool-use input")?,
                tool_use_id: tool_use.tool_use_id,
                name: tool_use.name,
            }),
            w::ContentBlock::ToolResult(result) => {
                let mut parts = Vec::with_capacity(result.content.len());
                for part in result.content {
                    parts.push(match part {
                        w::ToolResultContent::Text(text) => m::ToolResultContent::Text(text),
                        w::ToolResultContent::Json(json) => {
                            m::ToolResultContent::Json(parse_json(&json, "tool-result JSON")?)
                        }
                    });
                }
                m::ContentBlock::ToolResult(m::ToolResult {
                    tool_use_id: result.tool_use_id,
                    content: parts,
                    status: match result.status {
                        w::ToolResultStatus::Success => m::ToolResultStatus::Success,
                        w::ToolResultStatus::Error => m::ToolResultStatus::Error,
                    },
                })
            }
        });
    }
    Ok(m::Message { role, content })
}

/// Provider response → guest response.
pub fn response_to_wit(response: m::ConverseResponse) -> w::ConverseResponse {
    w::ConverseResponse {
        output: message_to_wit(response.output),
        stop_reason: stop_reason_to_wit(response.stop_reason),
        usage: w::TokenUsage {
            input_tokens: response.usage.input_tokens,
            output_tokens: response.usage.output_tokens,
            total_tokens: response.usage.total_tokens,
        },
    }
}

fn message_to_wit(message: m::Message) -> w::Message {
    w::Message {
        role: match message.role {
            m::Role::User => w::Role::User,
            m::Role::Assistant => w::Role::Assistant,
        },
        content: message
            .content
            .into_iter()
            .map(|block| match block {
                m::ContentBlock::Text(text) => w::ContentBlock::Text(text),
                m::ContentBlock::ToolUse(tool_use) => w::ContentBlock::ToolUse(w::ToolUse {
                    tool_use_id: tool_use.tool_use_id,
                    name: tool_use.name,
                    input: tool_use.input.to_string(),
                }),
                m::ContentBlock::ToolResult(result) => w::ContentBlock::ToolResult(w::ToolResult {
                    tool_use_id: result.tool_use_id,
                    content: result
                        .content
                        .into_iter()
                        .map(|part| match part {
                            m::ToolResultContent::Text(text) => w::ToolResultContent::Text(text),
                            m::ToolResultContent::Json(json) => {
                                w::ToolResultContent::Json(json.to_string())
                            }
                        })
                        .collect(),
                    status: match result.status {
                        m::ToolResultStatus::Success => w::ToolResultStatus::Success,
                        m::ToolResultStatus::Error => w::ToolResultStatus::Error,
                    },
                }),
            })
            .collect(),
    }
}

fn stop_reason_to_wit(reason: m::StopReason) -> w::StopReason {
    match reason {
        m::StopReason::EndTurn => w::StopReason::EndTurn,
        m::StopReason::ToolUse => w::StopReason::ToolUse,
        m::StopReason::MaxTokens => w::StopReason::MaxTokens,
        m::StopReason::StopSequence => w::StopReason::StopSequence,
        m::StopReason::GuardrailIntervened => w::StopReason::GuardrailIntervened,
        m::StopReason::ContentFiltered => w::StopReason::ContentFiltered,
        m::StopReason::MalformedModelOutput => w::StopReason::MalformedModelOutput,
        m::StopReason::MalformedToolUse => w::StopReason::MalformedToolUse,
        m::StopReason::ContextWindowExceeded => w::StopReason::ContextWindowExceeded,
    }
}

/// Provider error → guest error.
pub fn error_to_wit(error: m::ModelError) -> w::ModelError {
    match error {
        m::ModelError::Throttled(msg) => w::ModelError::Throttled(msg),
        m::ModelError::Validation(msg) => w::ModelError::Validation(msg),
        m::ModelError::Unavailable(msg) => w::ModelError::Unavailable(msg),
        m::ModelError::Timeout(msg) => w::ModelError::Timeout(msg),
        m::ModelError::LimitExceeded(msg) => w::ModelError::LimitExceeded(msg),
        m::ModelError::Internal(msg) => w::ModelError::Internal(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_json_from_guest_is_a_validation_error() {
        let request = w::ConverseRequest {
            model_id: None,
            system: vec![],
            messages: vec![w::Message {
                role: w::Role::Assistant,
                content: vec![w::ContentBlock::ToolUse(w::ToolUse {
                    tool_use_id: "t".into(),
                    name: "n".into(),
                    input: "{not json".into(),
                })],
            }],
            tools: vec![],
            inference: w::InferenceConfig {
                max_tokens: None,
                temperature: None,
                top_p: None,
                stop_sequences: vec![],
            },
        };
        assert!(matches!(
            request_from_wit(request),
            Err(w::ModelError::Validation(_))
        ));
    }

    #[test]
    fn response_converts() {
        let response = m::ConverseResponse {
            output: m::Message::assistant("hi"),
            stop_reason: m::StopReason::EndTurn,
            usage: m::TokenUsage::new(3, 4),
            model_id: "x".into(),
        };
        let wit = response_to_wit(response);
        assert_eq!(wit.usage.total_tokens, 7);
        assert!(matches!(&wit.output.content[0], w::ContentBlock::Text(t) if t == "hi"));
    }
}
