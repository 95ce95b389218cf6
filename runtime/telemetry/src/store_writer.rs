//! Writing the local span store: each span becomes a JSON line (the
//! [`StoredSpan`](crate::store::StoredSpan) shape) on the thread that ends
//! it, and batches of lines are appended to `spans.jsonl` with rotation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use opentelemetry::trace::{Event, SpanId, Status};
use opentelemetry::{Array, KeyValue, Value};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};

use crate::TelemetryError;
use crate::batch_sink::{BatchDelivery, SpanEncoding};
use crate::error::ExportError;
use crate::finished_span::FinishedSpan;
use crate::otlp_proto::unix_nanos;
use crate::store::{CURRENT, PREVIOUS, ROTATE_BYTES};

/// Spans as store lines.
#[derive(Debug)]
pub(crate) struct StoreLines;

impl SpanEncoding for StoreLines {
    fn encode(&self, span: &FinishedSpan<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        match serde_json::to_writer(&mut *out, &Line(span)) {
            Ok(()) => out.push(b'\n'),
            // Nothing in a span fails to serialize; if it did, no torn line.
            Err(_) => out.truncate(start),
        }
    }
}

/// Appends batches of lines to the store directory.
#[derive(Debug)]
pub(crate) struct StoreFile {
    dir: PathBuf,
    /// The open current file and its length.
    file: Option<(File, u64)>,
}

impl StoreFile {
    /// A writer into `dir` (created if missing).
    pub(crate) fn open(dir: &Path) -> Result<Self, TelemetryError> {
        std::fs::create_dir_all(dir).map_err(|source| TelemetryError::Store {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file: None,
        })
    }

    fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
        let current = self.dir.join(CURRENT);
        if self
            .file
            .as_ref()
            .is_some_and(|(_, len)| *len >= ROTATE_BYTES)
        {
            self.file = None;
            std::fs::rename(&current, self.dir.join(PREVIOUS))?;
        }
        let (file, len) = match &mut self.file {
            Some(open) => open,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&current)?;
                let len = file.metadata()?.len();
                self.file.insert((file, len))
            }
        };
        // One write per batch: other processes appending to the same store
        // interleave whole batches, not partial lines.
        file.write_all(lines)?;
        *len += lines.len() as u64;
        Ok(())
    }
}

impl BatchDelivery for StoreFile {
    fn deliver(&mut self, batch: &[u8], _spans: usize) -> Result<(), ExportError> {
        self.append(batch).map_err(|source| {
            // Reopen next time: the file may have been moved or removed.
            self.file = None;
            ExportError::Store {
                path: self.dir.join(CURRENT),
                source,
            }
        })
    }
}

/// A span in the stored shape, serialized from the span's record without
/// building a `StoredSpan`.
struct Line<'a>(&'a FinishedSpan<'a>);

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = self.0;
        let mut line = serializer.serialize_struct("StoredSpan", 11)?;
        line.serialize_field("trace_id", &Hex(span.span_context.trace_id().to_bytes()))?;
        line.serialize_field("span_id", &Hex(span.span_context.span_id().to_bytes()))?;
        if span.parent_span_id == SpanId::INVALID {
            line.skip_field("parent_span_id")?;
        } else {
            line.serialize_field("parent_span_id", &Hex(span.parent_span_id.to_bytes()))?;
        }
        line.serialize_field("remote_parent", &span.parent_span_is_remote)?;
        line.serialize_field("name", span.name)?;
        let start = unix_nanos(span.start_time);
        line.serialize_field("start_unix_nanos", &start)?;
        line.serialize_field(
            "duration_nanos",
            &unix_nanos(span.end_time).saturating_sub(start),
        )?;
        let (status, message) = match &span.status {
            Status::Unset => ("unset", None),
            Status::Ok => ("ok", None),
            Status::Error { description } => ("error", Some(description.as_ref())),
        };
        line.serialize_field("status", status)?;
        match message {
            Some(message) => line.serialize_field("status_message", message)?,
            None => line.skip_field("status_message")?,
        }
        line.serialize_field("attributes", &Attributes(span.attributes))?;
        if span.events.is_empty() {
            line.skip_field("events")?;
        } else {
            line.serialize_field("events", &Events(span.events))?;
        }
        line.end()
    }
}

/// An id as lowercase hex, written without the formatting machinery (it
/// was the store line's largest cost).
struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Ids are 8 or 16 bytes; 32 hex digits hold either.
        use serde::ser::Error;
        let mut buffer = [0_u8; 32];
        let text = buffer
            .get_mut(..2 * N)
            .ok_or_else(|| S::Error::custom("an id longer than 16 bytes"))?;
        hex::encode_to_slice(self.0, &mut *text).map_err(S::Error::custom)?;
        serializer.serialize_str(std::str::from_utf8(text).map_err(S::Error::custom)?)
    }
}

/// Attributes as a JSON object.
struct Attributes<'a>(&'a [KeyValue]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for kv in self.0 {
            map.serialize_entry(kv.key.as_str(), &Json(&kv.value))?;
        }
        map.end()
    }
}

struct Events<'a>(&'a [Event]);

impl Serialize for Events<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for event in self.0 {
            seq.serialize_element(&EventLine(event))?;
        }
        seq.end()
    }
}

struct EventLine<'a>(&'a Event);

impl Serialize for EventLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut event = serializer.serialize_struct("StoredEvent", 3)?;
        event.serialize_field("name", self.0.name.as_ref())?;
        event.serialize_field("time_unix_nanos", &unix_nanos(self.0.timestamp))?;
        event.serialize_field("attributes", &Attributes(&self.0.attributes))?;
        event.end()
    }
}

/// An attribute value as JSON: a non-finite float is `null`.
struct Json<'a>(&'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::I64(i) => serializer.serialize_i64(*i),
            Value::F64(f) if f.is_finite() => serializer.serialize_f64(*f),
            Value::F64(_) => serializer.serialize_unit(),
            Value::String(s) => serializer.serialize_str(s.as_str()),
            Value::Array(Array::Bool(v)) => v.serialize(serializer),
            Value::Array(Array::I64(v)) => v.serialize(serializer),
            Value::Array(Array::F64(v)) => {
                serializer.collect_seq(v.iter().map(|f| f.is_finite().then_some(*f)))
            }
            Value::Array(Array::String(v)) => serializer.collect_seq(v.iter().map(|s| s.as_str())),
            other => serializer.collect_str(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use serde_json::json;

    use super::*;
    use crate::store::{StoredEvent, StoredSpan, read_session};

    fn span(parent: SpanId, status: Status) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_500);
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "guest log",
            start + Duration::from_nanos(10),
            vec![KeyValue::new("line", "hi \"there\"\n")],
            0,
        ));
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0xab_u128),
                SpanId::from(0xcd_u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: parent,
            parent_span_is_remote: true,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed("execute_tool calculator"),
            start_time: start,
            end_time: start + Duration::from_nanos(1_250),
            attributes: vec![
                KeyValue::new("session.id", "s-9"),
                KeyValue::new("tool.calls", 2_i64),
                KeyValue::new("ok", true),
                KeyValue::new("ratio", 0.5_f64),
                KeyValue::new("nan", f64::NAN),
                KeyValue::new(
                    "tags",
                    Value::Array(Array::String(vec!["a".into(), "b".into()])),
                ),
                KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, f64::INFINITY]))),
            ],
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn lines_read_back_as_stored_spans() {
        let mut out = Vec::new();
        let first = span(SpanId::from(0xef_u64), Status::error("bad"));
        StoreLines.encode(&FinishedSpan::of(&first), &mut out);
        let second = span(SpanId::INVALID, Status::Ok);
        StoreLines.encode(&FinishedSpan::of(&second), &mut out);
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<StoredSpan> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        let attributes: BTreeMap<String, serde_json::Value> = [
            ("session.id", json!("s-9")),
            ("tool.calls", json!(2)),
            ("ok", json!(true)),
            ("ratio", json!(0.5)),
            ("nan", json!(null)),
            ("tags", json!(["a", "b"])),
            ("floats", json!([1.5, null])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let expected = StoredSpan {
            trace_id: format!("{:032x}", 0xab),
            span_id: format!("{:016x}", 0xcd),
            parent_span_id: Some(format!("{:016x}", 0xef)),
            remote_parent: true,
            name: "execute_tool calculator".into(),
            start_unix_nanos: 1_700_000_000_000_000_500,
            duration_nanos: 1_250,
            status: "error".into(),
            status_message: Some("bad".into()),
            attributes,
            events: vec![StoredEvent {
                name: "guest log".into(),
                time_unix_nanos: 1_700_000_000_000_000_510,
                attributes: [("line".to_string(), json!("hi \"there\"\n"))].into(),
            }],
        };
        assert_eq!(lines[0], expected);
        assert_eq!(lines[1].parent_span_id, None);
        assert_eq!(lines[1].status, "ok");
        assert_eq!(lines[1].status_message, None);
        assert!(!text.contains("parent_span_id\":null"));
    }

    #[test]
    fn batches_append_rotate_and_read_back() -> Result<(), ExportError> {
        let dir = tempfile::tempdir().map_err(|source| ExportError::Store {
            path: PathBuf::new(),
            source,
        })?;
        let mut file = match StoreFile::open(&dir.path().join("spans")) {
            Ok(file) => file,
            Err(error) => panic!("{error}"),
        };
        let mut batch = Vec::new();
        let line = span(SpanId::INVALID, Status::Ok);
        StoreLines.encode(&FinishedSpan::of(&line), &mut batch);
        file.deliver(&batch, 1)?;
        file.deliver(&batch, 1)?;
        let read = |file: &StoreFile| read_session(&file.dir, "s-9").unwrap_or_default();
        assert_eq!(read(&file).len(), 2);
        // Past the rotation size the current file moves aside; both are read.
        if let Some((_, len)) = file.file.as_mut() {
            *len = ROTATE_BYTES;
        }
        file.deliver(&batch, 1)?;
        assert!(file.dir.join(PREVIOUS).exists());
        assert_eq!(read(&file).len(), 3);
        Ok(())
    }
}
