//! `corral:agent/log`: structured guest log lines into the session log.

use crate::bindings::log::{Field, Host, Level};
use crate::session_log::{LogLevel, LogSource};
use crate::state::SessionState;

/// Longest guest log message kept.
const MAX_MESSAGE: usize = 8 << 10;

impl Host for SessionState {
    async fn write(&mut self, level: Level, message: String, fields: Vec<Field>) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(32)
            .map(|f| (f.key, f.value))
            .collect();
        let span = self.scope.current_span();
        if !span.is_disabled() {
            let mut attributes = vec![
                corral_telemetry::KeyValue::new("level", level.as_str()),
                corral_telemetry::KeyValue::new("message", message.clone()),
            ];
            attributes.extend(
                fields
                    .iter()
                    .map(|(k, v)| corral_telemetry::KeyValue::new(format!("field.{k}"), v.clone())),
            );
            corral_telemetry::add_span_event(span, "log", attributes);
        }
        self.log.push(LogSource::Guest, level, message, fields);
    }
}
