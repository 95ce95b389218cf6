//! Tools and their results, independent of where they come from.

use serde_json::{Value, json};

/// A tool as a target declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    /// Name within its target.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of the input object.
    pub input_schema: Value,
    /// JSON Schema of the structured result, if declared.
    pub output_schema: Option<Value>,
}

/// What a tool returned, in MCP's result shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    /// MCP content blocks (`{"type": "text", "text": ...}`, images, ...).
    pub content: Vec<Value>,
    /// Structured result, if any.
    pub structured: Option<Value>,
    /// Whether the tool reported an error.
    pub is_error: bool,
    /// Upstream status for errors that have one (HTTP status).
    pub status: Option<u16>,
}

impl ToolOutput {
    /// A JSON result: structured content plus its text rendering.
    pub fn json(value: Value) -> Self {
        Self {
            content: vec![text_block(&value.to_string())],
            structured: Some(value),
            ..Self::default()
        }
    }

    /// A text result.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![text_block(&text.into())],
            ..Self::default()
        }
    }

    /// An error result carrying a message and optional status.
    pub fn error(message: impl Into<String>, status: Option<u16>) -> Self {
        Self {
            content: vec![text_block(&message.into())],
            is_error: true,
            status,
            ..Self::default()
        }
    }

    /// Concatenated text blocks.
    pub fn text_content(&self) -> String {
        let parts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect();
        parts.join("\n")
    }

    /// The result as one JSON value for agents: the structured result, else
    /// the text (parsed as JSON when it is), else the content blocks.
    pub fn to_json(&self) -> Value {
        if let Some(structured) = &self.structured {
            return structured.clone();
        }
        let all_text = self
            .content
            .iter()
            .all(|b| b.get("type").and_then(Value::as_str) == Some("text"));
        if all_text {
            let text = self.text_content();
            return serde_json::from_str(&text).unwrap_or(Value::String(text));
        }
        Value::Array(self.content.clone())
    }

    /// Serialized size, for the response cap (counted, not rendered).
    pub fn size(&self) -> usize {
        let content: usize = self.content.iter().map(json_len).sum();
        content + self.structured.as_ref().map_or(0, json_len)
    }
}

/// Length of `value`'s compact JSON text.
fn json_len(value: &Value) -> usize {
    /// Counts the bytes written to it.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to an infallible writer cannot fail.
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => value.to_string().len(),
    }
}

/// An MCP text content block.
pub fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_json_prefers_structured_then_parsed_text() {
        assert_eq!(ToolOutput::json(json!({"a": 1})).to_json(), json!({"a": 1}));
        assert_eq!(ToolOutput::text("[1,2]").to_json(), json!([1, 2]));
        assert_eq!(ToolOutput::text("plain").to_json(), json!("plain"));
        let image = ToolOutput {
            content: vec![json!({"type": "image", "data": "AA==", "mimeType": "image/png"})],
            ..ToolOutput::default()
        };
        assert_eq!(
            image.to_json(),
            json!([{"type": "image", "data": "AA==", "mimeType": "image/png"}])
        );
    }
}
