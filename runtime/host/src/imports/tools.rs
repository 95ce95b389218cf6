//! `corral:agent/tools`: the session's tool catalogue.

use std::time::Instant;

use corral_telemetry::{DirectSpan, KeyValue, span_attributes};
use serde_json::Value;

use crate::bindings::tools::{Host, ToolError, ToolInfo};
use crate::session_log::{LogLevel, LogSource};
use crate::state::SessionState;

/// Longest argument text accepted from a guest.
const MAX_ARGUMENT_BYTES: usize = 1 << 20;

impl SessionState {
    async fn list_tools_live(&mut self) -> Result<Vec<ToolInfo>, ToolError> {
        self.gateway_tools().await
    }

    async fn call_tool_live(
        &mut self,
        name: String,
        arguments: String,
    ) -> Result<String, ToolError> {
        if let Some(max) = self.run_limits.max_tool_calls_per_session
            && self.session_tool_calls >= max
        {
            let message = format!("tool call limit reached: {max} tool calls per session");
            self.log.push(
                LogSource::Host,
                LogLevel::Warn,
                format!("tool {name} refused: {message}"),
                vec![
                    ("event".into(), "limit_exceeded".into()),
                    ("tool".into(), name),
                ],
            );
            return Err(ToolError::LimitExceeded(message));
        }
        self.scope.stats.tool_calls += 1;
        let started = Instant::now();
        let call_id = self.scope.take_tool_use_id(&name);
        // `session.id` and `gen_ai.conversation.id` come from the
        // invocation's session at close.
        let span = self.scope.open_span(|| {
            // Room for the call id and the gateway's seven.
            let mut attributes = span_attributes(
                [
                    KeyValue::new("gen_ai.operation.name", "execute_tool"),
                    KeyValue::new("gen_ai.tool.name", name.clone()),
                ],
                8,
            );
            if let Some(id) = &call_id {
                attributes.push(KeyValue::new("gen_ai.tool.call.id", id.clone()));
            }
            (
                corral_telemetry::span_name("execute_tool", &name),
                attributes,
            )
        });
        let capture = corral_telemetry::capture_content() && span.is_recording();
        if capture {
            span.set_attribute("gen_ai.tool.call.arguments", arguments.clone());
        }
        let result = span.in_scope(self.run_tool(&name, &arguments, &span)).await;
        match &result {
            Ok(output) if capture => {
                span.set_attribute("gen_ai.tool.call.result", output.clone());
            }
            Ok(_) => {}
            Err(e) => {
                let (kind, message) = tool_error_parts(e);
                span.record_error(kind, message);
            }
        }
        self.session_tool_calls = self.session_tool_calls.saturating_add(1);
        let elapsed = started.elapsed().as_millis();
        if matches!(result, Err(ToolError::Denied(_))) {
            self.scope.stats.tool_denials += 1;
        }
        let (level, message) = match &result {
            Ok(output) => (
                LogLevel::Info,
                format!(
                    "tool {name}({}) -> {} ({elapsed} ms)",
                    excerpt(&arguments),
                    excerpt(output)
                ),
            ),
            Err(error) => (
                LogLevel::Warn,
                format!(
                    "tool {name}({}) failed: {error:?} ({elapsed} ms)",
                    excerpt(&arguments)
                ),
            ),
        };
        self.log.push(
            LogSource::Host,
            level,
            message,
            vec![("event".into(), "tool_call".into()), ("tool".into(), name)],
        );
        result
    }
}

impl SessionState {
    async fn run_tool(
        &mut self,
        name: &str,
        arguments: &str,
        span: &DirectSpan,
    ) -> Result<String, ToolError> {
        if arguments.len() > MAX_ARGUMENT_BYTES {
            return Err(ToolError::InvalidArguments(format!(
                "arguments exceed {MAX_ARGUMENT_BYTES} bytes"
            )));
        }
        let arguments: Value = match arguments.trim() {
            "" => Value::Object(Default::default()),
            text => serde_json::from_str(text).map_err(|e| {
                ToolError::InvalidArguments(format!("arguments are not valid JSON: {e}"))
            })?,
        };
        if !arguments.is_object() {
            return Err(ToolError::InvalidArguments(
                "arguments must be a JSON object".into(),
            ));
        }
        let timeout = self.tool_timeout;
        match tokio::time::timeout(timeout, self.gateway_call(name, arguments, span)).await {
            Ok(result) => result,
            Err(_) => Err(ToolError::Timeout(format!(
                "{name} did not answer within {timeout:?}"
            ))),
        }
    }
}

/// The error type name and description of a tool error.
fn tool_error_parts(error: &ToolError) -> (&'static str, String) {
    match error {
        ToolError::NotFound(m) => ("not_found", m.clone()),
        ToolError::Denied(d) => ("denied", format!("{d:?}")),
        ToolError::InvalidArguments(m) => ("invalid_arguments", m.clone()),
        ToolError::Upstream(u) => ("upstream", u.message.clone()),
        ToolError::Timeout(m) => ("timeout", m.clone()),
        ToolError::LimitExceeded(m) => ("limit_exceeded", m.clone()),
    }
}

/// A short, single-line preview for logs.
fn excerpt(text: &str) -> String {
    const MAX: usize = 160;
    let line = text.replace('\n', " ");
    if line.len() <= MAX {
        return line;
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// Every call crosses the host-call seam ([`crate::host_calls`]): recorded
/// for the journal, or answered from it on replay.
impl Host for SessionState {
    async fn list_tools(&mut self) -> wasmtime::Result<Result<Vec<ToolInfo>, ToolError>> {
        crate::host_calls::journaled!(
            self,
            "tools",
            "list-tools",
            &(),
            self.list_tools_live().await
        )
    }

    async fn call_tool(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, ToolError>> {
        crate::host_calls::journaled!(
            self,
            "tools",
            "call-tool",
            &(&name, &arguments),
            self.call_tool_live(name, arguments).await
        )
    }
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpt_respects_char_boundaries() {
        let long = "é".repeat(200);
        let short = excerpt(&long);
        assert!(short.ends_with('…'));
        assert!(short.len() <= 164);
        assert_eq!(excerpt("a\nb"), "a b");
    }
}
