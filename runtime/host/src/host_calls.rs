//! The seam every journaled host call crosses: each import the guest calls
//! hands its request and its answer here, in call order, and the session
//! manager writes them to the session's journal with the invocation.

use serde::Serialize;

/// The host calls of one invocation, kept only when the session journals.
#[derive(Debug, Default)]
pub(crate) struct HostCalls {
    enabled: bool,
    recorded: Vec<corral_journal::HostCall>,
}

impl HostCalls {
    /// Calls recorded when `enabled`, else nothing (and nothing serialised).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            recorded: Vec::new(),
        }
    }

    /// The request in journal form, taken before the import consumes it;
    /// `None` when not journaling.
    pub fn request(&self, request: &impl Serialize) -> Option<serde_json::Value> {
        self.enabled
            .then(|| serde_json::to_value(request).unwrap_or(serde_json::Value::Null))
    }

    /// Records one call: `request` from [`HostCalls::request`] and the
    /// import's result (`{"ok": …}` or `{"error": …}`).
    pub fn record<T: Serialize, E: Serialize>(
        &mut self,
        interface: &str,
        function: &str,
        request: Option<serde_json::Value>,
        result: &Result<T, E>,
    ) {
        let Some(request) = request else {
            return;
        };
        let answer = match result {
            Ok(value) => serde_json::json!({ "ok": value }),
            Err(error) => serde_json::json!({ "error": error }),
        };
        self.recorded.push(corral_journal::HostCall {
            interface: interface.to_string(),
            function: function.to_string(),
            request,
            answer,
        });
    }

    /// The calls recorded so far, in order.
    pub fn take(&mut self) -> Vec<corral_journal::HostCall> {
        std::mem::take(&mut self.recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_only_when_enabled() {
        let mut off = HostCalls::new(false);
        let request = off.request(&("a", 1));
        off.record::<u8, String>("model", "converse", request, &Ok(1));
        assert!(off.take().is_empty());

        let mut on = HostCalls::new(true);
        let first = on.request(&"2+2");
        on.record::<&str, String>("tools", "call-tool", first, &Ok("4"));
        let second = on.request(&());
        on.record::<(), &str>("response-stream", "send", second, &Err("closed"));
        let calls = on.take();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].answer, serde_json::json!({"ok": "4"}));
        assert_eq!(calls[1].answer, serde_json::json!({"error": "closed"}));
        assert!(on.take().is_empty());
    }
}
