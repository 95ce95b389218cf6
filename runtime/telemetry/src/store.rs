//! The local span store: finished spans as JSON lines on disk, so
//! `corral trace <session-id>` works without a collector.
//!
//! `spans.jsonl` grows to [`ROTATE_BYTES`], then becomes `spans.1.jsonl`
//! (replacing the older one): at most twice that on disk.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{Array, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{SESSION_ID_KEY, TelemetryError};

/// Size at which the current file is rotated.
pub const ROTATE_BYTES: u64 = 64 << 20;
const CURRENT: &str = "spans.jsonl";
const PREVIOUS: &str = "spans.1.jsonl";

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
    /// The stored form of `span`.
    pub fn from_span_data(span: &SpanData) -> Self {
        let (status, status_message) = match &span.status {
            Status::Unset => ("unset", None),
            Status::Ok => ("ok", None),
            Status::Error { description } => ("error", Some(description.to_string())),
        };
        Self {
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: (span.parent_span_id != SpanId::INVALID)
                .then(|| span.parent_span_id.to_string()),
            remote_parent: span.parent_span_is_remote,
            name: span.name.to_string(),
            start_unix_nanos: unix_nanos(span.start_time),
            duration_nanos: span
                .end_time
                .duration_since(span.start_time)
                .unwrap_or(Duration::ZERO)
                .as_nanos() as u64,
            status: status.into(),
            status_message,
            attributes: span
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), json_value(&kv.value)))
                .collect(),
            events: span
                .events
                .iter()
                .map(|event| StoredEvent {
                    name: event.name.to_string(),
                    time_unix_nanos: unix_nanos(event.timestamp),
                    attributes: event
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.to_string(), json_value(&kv.value)))
                        .collect(),
                })
                .collect(),
        }
    }

    /// A string attribute.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(|v| v.as_str())
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as u64
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(b) => (*b).into(),
        Value::I64(i) => (*i).into(),
        Value::F64(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) => s.as_str().into(),
        Value::Array(Array::Bool(v)) => v.clone().into(),
        Value::Array(Array::I64(v)) => v.clone().into(),
        Value::Array(Array::F64(v)) => v.clone().into(),
        Value::Array(Array::String(v)) => v.iter().map(|s| s.as_str()).collect::<Vec<_>>().into(),
        other => other.to_string().into(),
    }
}

/// Exporter appending spans to the store directory.
#[derive(Debug)]
pub struct SpanStoreWriter {
    dir: PathBuf,
    file: Mutex<Option<(File, u64)>>,
}

impl SpanStoreWriter {
    /// A writer into `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, TelemetryError> {
        std::fs::create_dir_all(dir).map_err(|source| TelemetryError::Store {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file: Mutex::new(None),
        })
    }

    fn append(&self, batch: &[SpanData]) -> std::io::Result<()> {
        let mut buffer = Vec::with_capacity(batch.len() * 512);
        for span in batch {
            serde_json::to_writer(&mut buffer, &StoredSpan::from_span_data(span))?;
            buffer.push(b'\n');
        }
        let mut slot = self.file.lock();
        let current = self.dir.join(CURRENT);
        if slot.as_ref().is_some_and(|(_, len)| *len >= ROTATE_BYTES) {
            *slot = None;
            std::fs::rename(&current, self.dir.join(PREVIOUS))?;
        }
        if slot.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&current)?;
            let len = file.metadata()?.len();
            *slot = Some((file, len));
        }
        if let Some((file, len)) = slot.as_mut() {
            // One write per batch: other processes appending to the same
            // store interleave whole batches, not partial lines.
            file.write_all(&buffer)?;
            *len += buffer.len() as u64;
        }
        Ok(())
    }
}

impl SpanExporter for SpanStoreWriter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let result = self
            .append(&batch)
            .map_err(|error| OTelSdkError::InternalFailure(format!("span store: {error}")));
        std::future::ready(result)
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
