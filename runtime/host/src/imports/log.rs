//! `corral:agent/log`: structured guest log lines into the session log and
//! onto the current span, within the invocation's log budget
//! ([`SandboxLimits`](corral_sandbox::SandboxLimits)`::log_*`).

use crate::bindings::log::{Field, Host, Level, LogError};
use crate::session_log::{LogLevel, LogSource};
use crate::state::SessionState;

impl SessionState {
    async fn write_live(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<Field>,
    ) -> Result<(), LogError> {
        let limits = self.sandbox.limits();
        let (max_lines, max_bytes) = (
            limits.log_lines_per_invocation,
            limits.log_bytes_per_invocation,
        );
        let (max_message, max_fields, max_field) = (
            limits.log_message_bytes,
            limits.log_fields_per_line,
            limits.log_field_bytes,
        );
        let max_events = limits.span_events_per_span;
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Truncate before anything is kept: the host holds at most the
        // truncated line, whatever the guest sent.
        let message = truncated(message, max_message);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(max_fields)
            .map(|f| (truncated(f.key, max_field), truncated(f.value, max_field)))
            .collect();
        let size = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let budget = &mut self.scope.log_budget;
        let over = if budget.lines >= max_lines {
            Some(format!(
                "log_lines_per_invocation: at most {max_lines} log lines per invocation"
            ))
        } else if budget.bytes.saturating_add(size) > max_bytes {
            Some(format!(
                "log_bytes_per_invocation: at most {max_bytes} log bytes per invocation"
            ))
        } else {
            None
        };
        if let Some(limit) = over {
            budget.dropped_lines += 1;
            if budget.dropped_lines == 1 {
                self.log.push(
                    LogSource::Host,
                    LogLevel::Warn,
                    format!("guest log limit reached ({limit}); further lines are dropped"),
                    vec![("event".into(), "log_limit".into())],
                );
            }
            return Err(LogError::LimitExceeded(limit));
        }
        budget.lines += 1;
        budget.bytes += size;
        let scope = &mut self.scope;
        if scope.log_span().is_recording() {
            if scope.log_budget.span_events < max_events {
                scope.log_budget.span_events += 1;
                let mut attributes = Vec::with_capacity(2 + fields.len());
                attributes.extend([
                    corral_telemetry::KeyValue::new("level", level.as_str()),
                    corral_telemetry::KeyValue::new("message", message.clone()),
                ]);
                attributes.extend(fields.iter().map(|(k, v)| {
                    corral_telemetry::KeyValue::new(["field.", k.as_str()].concat(), v.clone())
                }));
                scope.log_span().add_event_now("log", attributes);
            } else {
                scope.log_budget.dropped_span_events += 1;
            }
        }
        self.log.push(LogSource::Guest, level, message, fields);
        Ok(())
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Every call crosses the host-call seam ([`crate::host_calls`]): recorded
/// for the journal, or answered from it on replay.
impl Host for SessionState {
    async fn write(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<Field>,
    ) -> wasmtime::Result<Result<(), LogError>> {
        crate::host_calls::journaled!(
            self,
            "log",
            "write",
            &(&level, &message, &fields),
            self.write_live(level, message, fields).await
        )
    }
}

#[cfg(test)]
mod tests {
    use super::truncated;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncated("héllo".into(), 2), "h");
        assert_eq!(truncated("héllo".into(), 3), "hé");
        assert_eq!(truncated("abc".into(), 10), "abc");
    }
}
