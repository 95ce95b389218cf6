//! Renders stored spans as an indented tree for the terminal.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::store::StoredSpan;

/// Attributes worth a glance, in display order, with their labels.
const SHOWN: &[(&str, &str)] = &[
    ("gen_ai.request.model", "model"),
    ("gen_ai.response.finish_reasons", "finish"),
    ("gen_ai.usage.input_tokens", "in"),
    ("gen_ai.usage.output_tokens", "out"),
    ("gen_ai.tool.call.id", "call"),
    ("policy.decision", "policy"),
    ("policy.ids", "policies"),
    ("corral.session.end_reason", "reason"),
    ("http.response.status_code", "status"),
    ("memory.operation.count", "count"),
    ("error.type", "error"),
];

/// The spans as a tree per trace: name, duration, key attributes, errors
/// and events, children indented under parents in start order.
pub fn render(spans: &[StoredSpan]) -> String {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&StoredSpan>> = HashMap::new();
    let mut roots: Vec<&StoredSpan> = Vec::new();
    for span in spans {
        match span.parent_span_id.as_deref() {
            Some(parent) if ids.contains(parent) => children.entry(parent).or_default().push(span),
            _ => roots.push(span),
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_unix_nanos);
    }
    roots.sort_by_key(|s| s.start_unix_nanos);
    let mut out = String::new();
    let mut last_trace = "";
    for root in roots {
        if root.trace_id != last_trace {
            let _ = writeln!(out, "trace {}", root.trace_id);
            last_trace = &root.trace_id;
        }
        write_span(&mut out, root, &children, "", true);
    }
    out
}

fn write_span(
    out: &mut String,
    span: &StoredSpan,
    children: &HashMap<&str, Vec<&StoredSpan>>,
    prefix: &str,
    last: bool,
) {
    let branch = if last { "└─ " } else { "├─ " };
    let _ = write!(
        out,
        "{prefix}{branch}{}  {}",
        span.name,
        duration(span.duration_nanos)
    );
    for (key, label) in SHOWN {
        let text = match span.attributes.get(*key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => continue,
        };
        if !text.is_empty() {
            let _ = write!(out, "  {label}={text}");
        }
    }
    if span.status == "error" {
        let _ = write!(
            out,
            "  ✗ {}",
            span.status_message.as_deref().unwrap_or("error")
        );
    }
    out.push('\n');
    let inner = format!("{prefix}{}", if last { "   " } else { "│  " });
    let kids = children
        .get(span.span_id.as_str())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for event in &span.events {
        let text = event
            .attributes
            .get("message")
            .or_else(|| event.attributes.get("exception.message"))
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let level = event
            .attributes
            .get("level")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let rail = if kids.is_empty() { "   " } else { "│  " };
        let _ = writeln!(out, "{inner}{rail}· {} {level} {text}", event.name);
    }
    for (i, child) in kids.iter().enumerate() {
        write_span(out, child, children, &inner, i + 1 == kids.len());
    }
}

fn duration(nanos: u64) -> String {
    match nanos {
        n if n < 1_000 => format!("{n} ns"),
        n if n < 1_000_000 => format!("{:.1} µs", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1} ms", n as f64 / 1e6),
        n => format!("{:.2} s", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn span(id: &str, parent: Option<&str>, name: &str, start: u64) -> StoredSpan {
        StoredSpan {
            trace_id: "t1".into(),
            span_id: id.into(),
            parent_span_id: parent.map(String::from),
            remote_parent: false,
            name: name.into(),
            start_unix_nanos: start,
            duration_nanos: 1_500_000,
            status: "unset".into(),
            status_message: None,
            attributes: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn children_nest_under_parents_in_start_order() {
        let mut denied = span("c", Some("a"), "execute_tool refund", 30);
        denied.status = "error".into();
        denied.status_message = Some("denied by policy".into());
        denied
            .attributes
            .insert("policy.decision".into(), "DENY".into());
        let spans = vec![
            span("a", None, "invoke_agent shop", 10),
            denied,
            span("b", Some("a"), "chat scripted", 20),
        ];
        let text = render(&spans);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "trace t1");
        assert!(
            lines[1].starts_with("└─ invoke_agent shop  1.5 ms"),
            "{text}"
        );
        assert!(lines[2].starts_with("   ├─ chat scripted"), "{text}");
        assert!(
            lines[3].starts_with("   └─ execute_tool refund")
                && lines[3].contains("policy=DENY")
                && lines[3].ends_with("✗ denied by policy"),
            "{text}"
        );
    }
}
