//! The local span store: finished spans as JSON lines on disk, so
//! `corral trace <session-id>` works without a collector.
//!
//! `spans.jsonl` grows to [`ROTATE_BYTES`], then becomes `spans.1.jsonl`
//! (replacing the older one): at most twice that on disk.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SESSION_ID_KEY;

/// Size at which the current file is rotated.
pub const ROTATE_BYTES: u64 = 64 << 20;
/// The file being appended to.
pub(crate) const CURRENT: &str = "spans.jsonl";
/// The file rotated out.
pub(crate) const PREVIOUS: &str = "spans.1.jsonl";

/// One finished span as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSpan {
    /// Trace id (32 hex digits).
    pub trace_id: String,
    /// Span id (16 hex digits).
    pub span_id: String,
    /// Parent span id, absent for a root (or a remote parent's child: see `remote_parent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Whether the parent is in another process.
    #[serde(default)]
    pub remote_parent: bool,
    /// Span name.
    pub name: String,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// Duration in nanoseconds.
    pub duration_nanos: u64,
    /// `unset`, `ok` or `error`.
    pub status: String,
    /// Error description, for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Events (guest log lines, exceptions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<StoredEvent>,
}

/// A span event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Event name.
    pub name: String,
    /// Time, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl StoredSpan {
    /// A string attribute.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(|v| v.as_str())
    }
}

/// Every span in the store, older file first. Lines that do not parse (a
/// torn write) are skipped.
fn read_all(dir: &Path) -> std::io::Result<Vec<StoredSpan>> {
    let mut spans = Vec::new();
    for name in [PREVIOUS, CURRENT] {
        let file = match File::open(dir.join(name)) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for line in BufReader::new(file).lines() {
            if let Ok(span) = serde_json::from_str::<StoredSpan>(&line?) {
                spans.push(span);
            }
        }
    }
    Ok(spans)
}

/// Reads the store: every span of every trace that touches `session_id`,
/// oldest first.
pub fn read_session(dir: &Path, session_id: &str) -> std::io::Result<Vec<StoredSpan>> {
    let mut spans = read_all(dir)?;
    let traces: HashSet<String> = spans
        .iter()
        .filter(|s| s.attr(SESSION_ID_KEY) == Some(session_id))
        .map(|s| s.trace_id.clone())
        .collect();
    spans.retain(|s| traces.contains(&s.trace_id));
    spans.sort_by_key(|s| s.start_unix_nanos);
    Ok(spans)
}

/// Session ids in the store, most recently active first, with span counts.
pub fn list_sessions(dir: &Path) -> std::io::Result<Vec<(String, usize)>> {
    let mut last: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for span in read_all(dir)? {
        if let Some(session) = span.attr(SESSION_ID_KEY) {
            let entry = last.entry(session.to_string()).or_default();
            entry.0 = entry.0.max(span.start_unix_nanos);
            entry.1 += 1;
        }
    }
    let mut sessions: Vec<(String, u64, usize)> =
        last.into_iter().map(|(id, (t, n))| (id, t, n)).collect();
    sessions.sort_by_key(|s| std::cmp::Reverse(s.1));
    Ok(sessions.into_iter().map(|(id, _, n)| (id, n)).collect())
}
