//! The HTTP+JSON call shared by the providers that speak a vendor's REST
//! API directly (OpenAI-compatible Chat Completions, Anthropic Messages):
//! one POST, status and transport failures mapped to typed [`ModelError`]s.

use std::time::Duration;

use serde_json::Value;

use crate::provider::ModelError;
use crate::types::{ContentBlock, ConverseResponse, Message, Role, StopReason, TokenUsage};

/// Longest error body excerpt kept in a [`ModelError`].
const MAX_ERROR_EXCERPT: usize = 512;

/// One JSON endpoint of a model vendor.
pub(crate) struct JsonEndpoint {
    url: String,
    client: reqwest::Client,
}

impl JsonEndpoint {
    /// An endpoint at `url` whose calls (connection included) end after `timeout`.
    pub fn new(url: String, timeout: Duration) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ModelError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { url, client })
    }

    /// POSTs `body` with `headers` and returns the JSON answer, or the
    /// failure as a typed error carrying the vendor's own message.
    pub async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> Result<Value, ModelError> {
        let mut call = self.client.post(&self.url).json(body);
        for (name, value) in headers {
            call = call.header(*name, *value);
        }
        let response = call.send().await.map_err(transport_error)?;
        let status = response.status();
        let text = response.text().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(status_error(status.as_u16(), &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            ModelError::Internal(format!("the response is not JSON: {e}: {}", excerpt(&text)))
        })
    }
}

/// The Converse response for a vendor's answer: the parsed `content` and
/// `stop_reason`, token counts from `usage.<input>` and `usage.<output>`
/// (the field names differ by vendor), and the model that answered (else
/// `model_id`).
pub(crate) fn converse_response(
    value: &Value,
    content: Vec<ContentBlock>,
    stop_reason: StopReason,
    (input, output): (&str, &str),
    model_id: String,
) -> ConverseResponse {
    let tokens = |field: &str| {
        value
            .get("usage")
            .and_then(|usage| usage.get(field))
            .and_then(Value::as_u64)
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    ConverseResponse {
        output: Message {
            role: Role::Assistant,
            content,
        },
        stop_reason,
        usage: TokenUsage::new(tokens(input), tokens(output)),
        model_id: value
            .get("model")
            .and_then(Value::as_str)
            .map_or(model_id, str::to_string),
    }
}

/// A failed HTTP status as a typed error, with the vendor's message
/// (`error.message`, which OpenAI-compatible servers and Anthropic share).
fn status_error(status: u16, body: &str) -> ModelError {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| excerpt(body));
    let detail = format!("HTTP {status}: {message}");
    match status {
        429 => ModelError::Throttled(detail),
        400 | 404 | 413 | 422 => ModelError::Validation(detail),
        401 | 403 => ModelError::Validation(format!("not authorised ({detail})")),
        408 | 504 => ModelError::Timeout(detail),
        500..=599 => ModelError::Unavailable(detail),
        _ => ModelError::Internal(detail),
    }
}

/// A transport failure as a typed error.
fn transport_error(error: reqwest::Error) -> ModelError {
    if error.is_timeout() {
        ModelError::Timeout(error.to_string())
    } else if error.is_connect() {
        ModelError::Unavailable(format!("cannot connect: {error}"))
    } else {
        ModelError::Unavailable(error.to_string())
    }
}

/// At most [`MAX_ERROR_EXCERPT`] bytes of `text`, on a character boundary.
fn excerpt(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_EXCERPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_typed_errors() {
        let body = r#"{"error": {"message": "slow down", "type": "rate_limit"}}"#;
        assert_eq!(
            status_error(429, body),
            ModelError::Throttled("HTTP 429: slow down".into())
        );
        assert!(matches!(
            status_error(400, "bad"),
            ModelError::Validation(_)
        ));
        assert!(matches!(status_error(529, ""), ModelError::Unavailable(_)));
        assert_eq!(excerpt(&"é".repeat(400)).len(), 512);
    }
}
