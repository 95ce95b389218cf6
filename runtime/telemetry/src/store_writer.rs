//! Writing the local span store: the store's worker turns each batch of
//! encoded spans (OTLP `Span` messages, made once on the thread that ended
//! each span) into JSON lines (the [`StoredSpan`](crate::store::StoredSpan)
//! shape) and appends them to `spans.jsonl`, with rotation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::ser::{Error as _, SerializeMap, SerializeSeq, SerializeStruct, Serializer};

use crate::TelemetryError;
use crate::batch_sink::BatchDelivery;
use crate::error::ExportError;
use crate::otlp_proto::FLAG_IS_REMOTE;
use crate::otlp_read::{EventView, KeyValues, SpanReadError, SpanView, ValueView, span_bodies};
use crate::store::{CURRENT, PREVIOUS, ROTATE_BYTES};

/// Why a span of a batch was left out of the store (a bug: the writer and
/// this reader disagree).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreLineError {
    /// Its encoding could not be read back.
    #[error("reading a span back")]
    Read(#[from] SpanReadError),
    /// Its line could not be written.
    #[error("writing a span's store line")]
    Line(#[source] serde_json::Error),
}

/// Appends `batch`'s spans (OTLP encodings back to back) to `out` as store
/// lines. A span that cannot be read back is left out, and the first such
/// error returned after the others are written.
pub(crate) fn store_lines(batch: &[u8], out: &mut Vec<u8>) -> Result<(), StoreLineError> {
    let mut first_error = None;
    for body in span_bodies(batch) {
        let written = body
            .and_then(SpanView::read)
            .map_err(StoreLineError::Read)
            .and_then(|span| {
                let start = out.len();
                match serde_json::to_writer(&mut *out, &Line(&span)) {
                    Ok(()) => {
                        out.push(b'\n');
                        Ok(())
                    }
                    Err(error) => {
                        // No torn line.
                        out.truncate(start);
                        Err(StoreLineError::Line(error))
                    }
                }
            });
        if let Err(error) = written {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Appends batches of lines to the store directory.
#[derive(Debug)]
pub(crate) struct StoreFile {
    dir: PathBuf,
    /// The open current file and its length.
    file: Option<(File, u64)>,
    /// A batch's lines, reused from batch to batch.
    lines: Vec<u8>,
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
            lines: Vec::new(),
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
        let mut lines = std::mem::take(&mut self.lines);
        lines.clear();
        let read = store_lines(batch, &mut lines);
        let appended = self.append(&lines).map_err(|source| {
            // Reopen next time: the file may have been moved or removed.
            self.file = None;
            ExportError::Store {
                path: self.dir.join(CURRENT),
                source,
            }
        });
        // One batch of huge spans must not pin its size for good.
        if lines.capacity() <= LINES_KEEP {
            self.lines = lines;
        }
        appended?;
        read.map_err(ExportError::StoreLine)
    }
}

/// Most of the lines buffer kept between batches.
const LINES_KEEP: usize = 4 << 20;

/// A span in the stored shape, serialized from its OTLP encoding without
/// building a `StoredSpan`.
struct Line<'a>(&'a SpanView<'a>);

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = self.0;
        let mut line = serializer.serialize_struct("StoredSpan", 11)?;
        line.serialize_field("trace_id", &Hex(span.trace_id))?;
        line.serialize_field("span_id", &Hex(span.span_id))?;
        if span.parent_span_id.is_empty() {
            line.skip_field("parent_span_id")?;
        } else {
            line.serialize_field("parent_span_id", &Hex(span.parent_span_id))?;
        }
        line.serialize_field("remote_parent", &(span.flags & FLAG_IS_REMOTE != 0))?;
        line.serialize_field("name", span.name)?;
        let start = span.start_time_unix_nano;
        line.serialize_field("start_unix_nanos", &start)?;
        line.serialize_field(
            "duration_nanos",
            &span.end_time_unix_nano.saturating_sub(start),
        )?;
        let (status, message) = match span.status_code {
            1 => ("ok", None),
            2 => ("error", Some(span.status_message)),
            _ => ("unset", None),
        };
        line.serialize_field("status", status)?;
        match message {
            Some(message) => line.serialize_field("status_message", message)?,
            None => line.skip_field("status_message")?,
        }
        line.serialize_field("attributes", &Attributes(span.attributes()))?;
        if span.has_events {
            line.serialize_field("events", &Events(span))?;
        } else {
            line.skip_field("events")?;
        }
        line.end()
    }
}

/// An id as lowercase hex, written without the formatting machinery (it
/// was the store line's largest cost).
struct Hex<'a>(&'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Ids are 8 or 16 bytes; 32 hex digits hold either.
        let mut buffer = [0_u8; 32];
        let text = buffer
            .get_mut(..2 * self.0.len())
            .ok_or_else(|| S::Error::custom("an id longer than 16 bytes"))?;
        hex::encode_to_slice(self.0, &mut *text).map_err(S::Error::custom)?;
        serializer.serialize_str(std::str::from_utf8(text).map_err(S::Error::custom)?)
    }
}

/// Attributes as a JSON object.
struct Attributes<'a>(KeyValues<'a>);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for kv in self.0.clone() {
            let (key, value) = kv.map_err(S::Error::custom)?;
            map.serialize_entry(key, &Json(value))?;
        }
        map.end()
    }
}

/// A span's events as a JSON array.
struct Events<'a>(&'a SpanView<'a>);

impl Serialize for Events<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for event in self.0.events() {
            seq.serialize_element(&EventLine(event.map_err(S::Error::custom)?))?;
        }
        seq.end()
    }
}

struct EventLine<'a>(EventView<'a>);

impl Serialize for EventLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut event = serializer.serialize_struct("StoredEvent", 3)?;
        event.serialize_field("name", self.0.name)?;
        event.serialize_field("time_unix_nanos", &self.0.time_unix_nano)?;
        event.serialize_field("attributes", &Attributes(self.0.attributes()))?;
        event.end()
    }
}

/// An attribute value as JSON: a non-finite float, or no value, is `null`.
struct Json<'a>(ValueView<'a>);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ValueView::String(s) => serializer.serialize_str(s),
            ValueView::Bool(b) => serializer.serialize_bool(b),
            ValueView::Int(i) => serializer.serialize_i64(i),
            ValueView::Double(f) if f.is_finite() => serializer.serialize_f64(f),
            ValueView::Double(_) | ValueView::Empty => serializer.serialize_unit(),
            ValueView::Array(array) => {
                let mut seq = serializer.serialize_seq(None)?;
                for element in ValueView::elements(array) {
                    seq.serialize_element(&Json(element.map_err(S::Error::custom)?))?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::trace::{
        Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::{Array, KeyValue, Value};
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use serde_json::json;

    use super::*;
    use crate::finished_span::FinishedSpan;
    use crate::otlp_proto::encode_span;
    use crate::store::{StoredEvent, StoredSpan, read_session};

    /// `spans` encoded as the pipeline hands them to the sinks.
    fn encoded(spans: &[SpanData]) -> Vec<u8> {
        let mut batch = Vec::new();
        for span in spans {
            encode_span(&FinishedSpan::of(span), &mut batch);
        }
        batch
    }

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
        let batch = encoded(&[
            span(SpanId::from(0xef_u64), Status::error("bad")),
            span(SpanId::INVALID, Status::Ok),
        ]);
        assert!(store_lines(&batch, &mut out).is_ok());
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
    fn a_span_that_cannot_be_read_back_is_left_out_and_reported() {
        let good = encoded(&[span(SpanId::INVALID, Status::Ok)]);
        // A span whose name is not UTF-8, between two good ones.
        let mut batch = good.clone();
        batch.extend_from_slice(&[0x12, 0x03, 0x2a, 0x01, 0xff]);
        batch.extend_from_slice(&good);
        let mut out = Vec::new();
        let result = store_lines(&batch, &mut out);
        assert!(matches!(result, Err(StoreLineError::Read(_))), "{result:?}");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines()
                .all(|line| serde_json::from_str::<StoredSpan>(line).is_ok())
        );
        // A batch cut short keeps what came before the cut.
        out.clear();
        let cut = &batch[..good.len() + 2];
        assert!(store_lines(cut, &mut out).is_err());
        assert_eq!(String::from_utf8_lossy(&out).lines().count(), 1);
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
        let batch = encoded(&[span(SpanId::INVALID, Status::Ok)]);
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
