//! Puts the session id on every span of a session.
//!
//! The host starts each invocation (and session start/stop) under a context
//! whose baggage holds `session.id`; OpenTelemetry contexts flow to child
//! spans, so this processor can tag spans made by crates that never see the
//! session (gateway, policy, memory).

use std::time::Duration;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, Key, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Baggage and span attribute key of the session id (AgentCore's).
pub const SESSION_ID_KEY: &str = "session.id";
/// The GenAI conversation id, equal to the session id.
const CONVERSATION_ID_KEY: &str = "gen_ai.conversation.id";

/// Tags spans with the session id from baggage, then fans out to sinks.
#[derive(Debug)]
pub(crate) struct SessionTagger {
    sinks: Vec<Box<dyn SpanProcessor>>,
}

impl SessionTagger {
    /// A tagger feeding `sinks` (each gets every span).
    pub(crate) fn new(sinks: Vec<Box<dyn SpanProcessor>>) -> Self {
        Self { sinks }
    }
}

impl SpanProcessor for SessionTagger {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(session) = cx.baggage().get(SESSION_ID_KEY) {
            span.set_attribute(KeyValue::new(SESSION_ID_KEY, session.clone()));
            span.set_attribute(KeyValue::new(CONVERSATION_ID_KEY, session.clone()));
        }
        for sink in &self.sinks {
            sink.on_start(span, cx);
        }
    }

    fn on_end(&self, mut span: SpanData) {
        dedupe_session_attributes(&mut span.attributes);
        let Some((last, rest)) = self.sinks.split_last() else {
            return;
        };
        for sink in rest {
            sink.on_end(span.clone());
        }
        last.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Every sink is flushed, even after one fails.
        let results: Vec<OTelSdkResult> = self.sinks.iter().map(|s| s.force_flush()).collect();
        results.into_iter().collect()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let results: Vec<OTelSdkResult> = self
            .sinks
            .iter()
            .map(|s| s.shutdown_with_timeout(timeout))
            .collect();
        results.into_iter().collect()
    }

    fn set_resource(&mut self, resource: &Resource) {
        for sink in &mut self.sinks {
            sink.set_resource(resource);
        }
    }
}

/// Keeps the first of repeated session attributes (a span may carry them as
/// its own fields and from baggage).
fn dedupe_session_attributes(attributes: &mut Vec<KeyValue>) {
    let session = Key::from_static_str(SESSION_ID_KEY);
    let conversation = Key::from_static_str(CONVERSATION_ID_KEY);
    let (mut seen_session, mut seen_conversation) = (false, false);
    attributes.retain(|kv| {
        let seen = if kv.key == session {
            &mut seen_session
        } else if kv.key == conversation {
            &mut seen_conversation
        } else {
            return true;
        };
        !std::mem::replace(seen, true)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_session_attributes_keep_the_first() {
        let mut attributes = vec![
            KeyValue::new("session.id", "s1"),
            KeyValue::new("other", 1),
            KeyValue::new("session.id", "s1"),
            KeyValue::new("gen_ai.conversation.id", "s1"),
            KeyValue::new("gen_ai.conversation.id", "s1"),
        ];
        dedupe_session_attributes(&mut attributes);
        let keys: Vec<&str> = attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["session.id", "other", "gen_ai.conversation.id"]);
    }
}
