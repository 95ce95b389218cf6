//! Helpers on the generated types: reading requests, building responses and
//! messages, rendering errors for models and people.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::corral::agent::model::{
    ContentBlock, Message, ModelError, Role, ToolResult, ToolResultContent, ToolResultStatus,
};
use crate::bindings::corral::agent::tools::ToolError;
use crate::bindings::corral::agent::types::{AgentError, Invocation, Response};

impl Invocation {
    /// The payload as UTF-8 text.
    pub fn text(&self) -> Result<String, AgentError> {
        String::from_utf8(self.payload.clone())
            .map_err(|_| AgentError::InvalidInput("payload is not UTF-8 text".into()))
    }

    /// The payload parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AgentError> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| AgentError::InvalidInput(format!("payload is not valid JSON: {e}")))
    }

    /// The user's prompt: the `prompt` (or `input`, `message`) field of a JSON
    /// object payload, a JSON string payload, or the raw text.
    pub fn prompt(&self) -> Result<String, AgentError> {
        let text = self.text()?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => ["prompt", "input", "message"]
                .iter()
                .find_map(|key| map.get(*key).and_then(Value::as_str))
                .map(str::to_string)
                .ok_or_else(|| {
                    AgentError::InvalidInput("JSON payload needs a string field \"prompt\"".into())
                }),
            Ok(Value::String(prompt)) => Ok(prompt),
            _ => Ok(text),
        }
    }
}

impl Response {
    /// A `text/plain` response.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            payload: text.into().into_bytes(),
            content_type: "text/plain; charset=utf-8".into(),
        }
    }

    /// An `application/json` response.
    pub fn json(value: &Value) -> Self {
        Self {
            payload: value.to_string().into_bytes(),
            content_type: "application/json".into(),
        }
    }

    /// A response with raw bytes and a content type.
    pub fn bytes(payload: Vec<u8>, content_type: impl Into<String>) -> Self {
        Self {
            payload,
            content_type: content_type.into(),
        }
    }
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

    /// The message's text blocks joined by newlines.
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

    /// Whether the message starts a turn: a user message with text.
    pub fn is_prompt(&self) -> bool {
        self.role == Role::User
            && self
                .content
                .iter()
                .any(|block| matches!(block, ContentBlock::Text(_)))
    }
}

impl ToolResult {
    /// A successful result; JSON text becomes a JSON block.
    pub fn success(tool_use_id: &str, output: &str) -> Self {
        let content = match serde_json::from_str::<Value>(output) {
            Ok(_) => ToolResultContent::Json(output.to_string()),
            Err(_) => ToolResultContent::Text(output.to_string()),
        };
        Self {
            tool_use_id: tool_use_id.to_string(),
            content: vec![content],
            status: ToolResultStatus::Success,
        }
    }

    /// A failed result explaining `error` to the model.
    pub fn failure(tool_use_id: &str, error: &ToolError) -> Self {
        Self {
            tool_use_id: tool_use_id.to_string(),
            content: vec![ToolResultContent::Text(error.explain())],
            status: ToolResultStatus::Error,
        }
    }
}

impl ToolError {
    /// A one-line explanation, fit for a model or a log.
    pub fn explain(&self) -> String {
        let mut f = String::new();
        let _ = self.write_explanation(&mut f);
        f
    }

    fn write_explanation(&self, f: &mut impl fmt::Write) -> fmt::Result {
        match self {
            ToolError::NotFound(name) => write!(f, "tool not found: {name}"),
            ToolError::Denied(denial) => {
                write!(f, "denied by policy: {}", denial.reason)?;
                if !denial.policy_ids.is_empty() {
                    write!(f, " (policies: {})", denial.policy_ids.join(", "))?;
                }
                Ok(())
            }
            ToolError::InvalidArguments(message) => write!(f, "invalid arguments: {message}"),
            ToolError::Upstream(failure) => match failure.status {
                Some(status) => write!(
                    f,
                    "upstream failed with status {status}: {}",
                    failure.message
                ),
                None => write!(f, "upstream failed: {}", failure.message),
            },
            ToolError::Timeout(message) => write!(f, "tool timed out: {message}"),
            ToolError::LimitExceeded(message) => write!(f, "tool limit exceeded: {message}"),
        }
    }
}

impl ModelError {
    /// A one-line explanation, fit for a model or a log.
    pub fn explain(&self) -> String {
        let mut f = String::new();
        let _ = self.write_explanation(&mut f);
        f
    }

    fn write_explanation(&self, f: &mut impl fmt::Write) -> fmt::Result {
        match self {
            ModelError::Throttled(m) => write!(f, "model throttled: {m}"),
            ModelError::Validation(m) => write!(f, "model rejected the request: {m}"),
            ModelError::Unavailable(m) => write!(f, "model unavailable: {m}"),
            ModelError::Timeout(m) => write!(f, "model timed out: {m}"),
            ModelError::LimitExceeded(m) => write!(f, "model limit exceeded: {m}"),
            ModelError::Internal(m) => write!(f, "model error: {m}"),
        }
    }
}

impl AgentError {
    /// A one-line explanation, fit for a model or a log.
    pub fn explain(&self) -> String {
        let mut f = String::new();
        let _ = self.write_explanation(&mut f);
        f
    }

    fn write_explanation(&self, f: &mut impl fmt::Write) -> fmt::Result {
        match self {
            AgentError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            AgentError::ModelFailed(m) => write!(f, "model failed: {m}"),
            AgentError::ToolFailed(m) => write!(f, "tool failed: {m}"),
            AgentError::LimitExceeded(m) => write!(f, "limit exceeded: {m}"),
            AgentError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl From<ModelError> for AgentError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::LimitExceeded(m) => AgentError::LimitExceeded(m),
            other => AgentError::ModelFailed(other.explain()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::corral::agent::tools::Denial;

    fn invocation(payload: &str) -> Invocation {
        Invocation {
            session_id: "s".into(),
            actor_id: "a".into(),
            request_id: "r".into(),
            payload: payload.as_bytes().to_vec(),
            content_type: "application/json".into(),
        }
    }

    #[test]
    fn prompt_accepts_json_fields_strings_and_text() {
        assert_eq!(invocation(r#"{"prompt": "hi"}"#).prompt().unwrap(), "hi");
        assert_eq!(invocation(r#"{"input": "yo"}"#).prompt().unwrap(), "yo");
        assert_eq!(invocation(r#""quoted""#).prompt().unwrap(), "quoted");
        assert_eq!(invocation("plain words").prompt().unwrap(), "plain words");
        assert!(matches!(
            invocation(r#"{"other": 1}"#).prompt(),
            Err(AgentError::InvalidInput(_))
        ));
        let bad = Invocation {
            payload: vec![0xff, 0xfe],
            ..invocation("")
        };
        assert!(matches!(bad.text(), Err(AgentError::InvalidInput(_))));
    }

    #[test]
    fn denial_renders_reason_and_policies() {
        let error = ToolError::Denied(Denial {
            reason: "refunds over 100 need approval".into(),
            policy_ids: vec!["refund-cap".into()],
        });
        assert_eq!(
            error.explain(),
            "denied by policy: refunds over 100 need approval (policies: refund-cap)"
        );
        let result = ToolResult::failure("t1", &error);
        assert_eq!(result.status, ToolResultStatus::Error);
    }

    #[test]
    fn success_detects_json() {
        assert!(matches!(
            ToolResult::success("t", r#"{"a":1}"#).content[0],
            ToolResultContent::Json(_)
        ));
        assert!(matches!(
            ToolResult::success("t", "plain").content[0],
            ToolResultContent::Text(_)
        ));
    }
}
