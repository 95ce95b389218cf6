//! Journal entries the unit tests build.

use crate::entry::{Entry, HostCall, SessionStart};

/// A sandbox of agent `a` version `1` starting.
pub(crate) fn started() -> Entry {
    Entry::Started(SessionStart {
        agent: "a".into(),
        version: "1".into(),
        digest: "d".into(),
        limits: serde_json::Value::Null,
        at_ms: 0,
        parent: None,
    })
}

/// Invocation `r{n}` of actor `alice`, payload four bytes of `n`.
pub(crate) fn invocation(n: u8) -> Entry {
    Entry::Invocation {
        request_id: format!("r{n}"),
        actor_id: "alice".into(),
        content_type: "application/json".into(),
        payload: vec![n; 4],
        traceparent: None,
    }
}

/// A wall-clock read.
pub(crate) fn call() -> Entry {
    Entry::HostCall(HostCall {
        interface: "wasi:clocks/wall-clock".into(),
        function: "now".into(),
        request: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap_or_default(),
        answer: serde_json::value::to_raw_value(&serde_json::json!({"ok": [1, 2]}))
            .unwrap_or_default(),
    })
}
