//! Writing the local span store: each span becomes a JSON line (the
//! [`StoredSpan`](crate::store::StoredSpan) shape) on the thread that ends
//! it, and batches of lines are appended to `spans.jsonl` with rotation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use opentelemetry::trace::{Event, SpanId, Status};
use opentelemetry::{Array, KeyValue, Value};

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
        write_line(span, out);
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

/// Writes `span`'s store line (the `StoredSpan` shape) and a newline.
///
/// Written by hand rather than through `serde_json`'s `Serialize`: it runs
/// on the thread that ends the span, between guest calls that evict the
/// caches, where the generic serializer's larger code cost more than the
/// bytes take to write. Strings are escaped as `serde_json` escapes them.
fn write_line(span: &FinishedSpan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"trace_id\":");
    write_hex(out, &span.span_context.trace_id().to_bytes());
    out.extend_from_slice(b",\"span_id\":");
    write_hex(out, &span.span_context.span_id().to_bytes());
    if span.parent_span_id != SpanId::INVALID {
        out.extend_from_slice(b",\"parent_span_id\":");
        write_hex(out, &span.parent_span_id.to_bytes());
    }
    out.extend_from_slice(if span.parent_span_is_remote {
        b",\"remote_parent\":true,\"name\":"
    } else {
        b",\"remote_parent\":false,\"name\":"
    });
    write_str(out, span.name);
    let start = unix_nanos(span.start_time);
    out.extend_from_slice(b",\"start_unix_nanos\":");
    write_integer(out, start);
    out.extend_from_slice(b",\"duration_nanos\":");
    write_integer(out, unix_nanos(span.end_time).saturating_sub(start));
    match span.status {
        Status::Unset => out.extend_from_slice(b",\"status\":\"unset\""),
        Status::Ok => out.extend_from_slice(b",\"status\":\"ok\""),
        Status::Error { description } => {
            out.extend_from_slice(b",\"status\":\"error\",\"status_message\":");
            write_str(out, description);
        }
    }
    out.extend_from_slice(b",\"attributes\":");
    write_attributes(out, span.attributes);
    if !span.events.is_empty() {
        write_events(out, span.events);
    }
    out.extend_from_slice(b"}\n");
}

/// `,"events":[...]`.
#[inline(never)]
fn write_events(out: &mut Vec<u8>, events: &[Event]) {
    out.extend_from_slice(b",\"events\":");
    write_list(out, *b"[]", events, |out, event| {
        out.extend_from_slice(b"{\"name\":");
        write_str(out, &event.name);
        out.extend_from_slice(b",\"time_unix_nanos\":");
        write_integer(out, unix_nanos(event.timestamp));
        out.extend_from_slice(b",\"attributes\":");
        write_attributes(out, &event.attributes);
        out.push(b'}');
    });
}

/// Attributes as a JSON object.
fn write_attributes(out: &mut Vec<u8>, attributes: &[KeyValue]) {
    write_list(out, *b"{}", attributes, |out, kv| {
        write_str(out, kv.key.as_str());
        out.push(b':');
        match &kv.value {
            Value::String(s) => write_str(out, s.as_str()),
            Value::I64(i) => write_integer(out, *i),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            other => write_uncommon(out, other),
        }
    });
}

/// `items` between two brackets (`[]` or `{}`), comma-separated, each
/// written by `item`.
fn write_list<T>(
    out: &mut Vec<u8>,
    [open, close]: [u8; 2],
    items: &[T],
    mut item: impl FnMut(&mut Vec<u8>, &T),
) {
    out.push(open);
    for (i, value) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, value);
    }
    out.push(close);
}

/// A float (a non-finite one is `null`), an array, or a value type newer
/// than this writer (its display form).
#[cold]
#[inline(never)]
fn write_uncommon(out: &mut Vec<u8>, value: &Value) {
    fn float(out: &mut Vec<u8>, f: f64) {
        // `serde_json` writes the shortest form that reads back equal; it
        // cannot fail on a finite float.
        if !f.is_finite() || serde_json::to_writer(&mut *out, &f).is_err() {
            out.extend_from_slice(b"null");
        }
    }
    match value {
        Value::F64(f) => float(out, *f),
        Value::Array(Array::Bool(v)) => write_list(out, *b"[]", v, |out, b| {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }),
        Value::Array(Array::I64(v)) => write_list(out, *b"[]", v, |out, i| {
            write_integer(out, *i);
        }),
        Value::Array(Array::F64(v)) => write_list(out, *b"[]", v, |out, f| float(out, *f)),
        Value::Array(Array::String(v)) => write_list(out, *b"[]", v, |out, s| {
            write_str(out, s.as_str());
        }),
        other => write_str(out, &other.to_string()),
    }
}

/// An integer in decimal.
fn write_integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// An id as a JSON string of lowercase hex.
fn write_hex<const N: usize>(out: &mut Vec<u8>, id: &[u8; N]) {
    // Ids are 8 or 16 bytes: 32 hex digits and two quotes hold either.
    const { assert!(N <= 16, "a trace or span id") };
    let mut quoted = [b'"'; 34];
    let len = 2 * N + 2;
    if let Some(digits) = quoted.get_mut(1..len - 1)
        && hex::encode_to_slice(id, digits).is_ok()
        && let Some(quoted) = quoted.get(..len)
    {
        out.extend_from_slice(quoted);
    }
}

/// `text` as a JSON string, escaped as `serde_json` escapes it: quotes,
/// backslashes and control characters.
///
/// Eight bytes are checked at a time: almost nothing in a span needs
/// escaping, and a byte-at-a-time loop was most of the store line's
/// instructions (callgrind).
fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        // A word that needs no escape is skipped whole; one that does (and
        // the tail shorter than a word) is walked byte by byte.
        let end = match bytes
            .get(i..i + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
        {
            Some(word) if !needs_escape(u64::from_le_bytes(word)) => {
                i += 8;
                continue;
            }
            Some(_) => i + 8,
            None => bytes.len(),
        };
        while i < end {
            let byte = bytes.get(i).copied().unwrap_or_default();
            if byte < 0x20 || byte == b'"' || byte == b'\\' {
                out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
                write_escape(out, byte);
                run = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(bytes.get(run..).unwrap_or_default());
    out.push(b'"');
}

/// Whether any of the eight bytes in `word` is a control character, a
/// quote or a backslash (the exact "has a byte below / equal to" tests on
/// a word; bytes from 0x80 up never match).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let is_quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    (below_space | is_quote | is_backslash) != 0
}

/// The escape of one byte that needs it.
fn write_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let escape: &[u8] = match byte {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x08 => b"\\b",
        0x0c => b"\\f",
        _ => &[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ],
    };
    out.extend_from_slice(escape);
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
    fn the_word_check_finds_exactly_the_bytes_that_need_escaping() {
        for byte in 0_u8..=255 {
            let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
            for position in 0..8 {
                // Among plain bytes, and among bytes from 0x80 up.
                for filler in [b'a', 0xff] {
                    let mut word = [filler; 8];
                    word[position] = byte;
                    assert_eq!(
                        needs_escape(u64::from_le_bytes(word)),
                        expected,
                        "{byte:#x} at {position} among {filler:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn strings_and_values_are_written_as_serde_json_writes_them() {
        let controls: String = (0_u8..0x20).map(char::from).collect();
        let long = format!("{controls} and some more text \\ with \"quotes\" {controls}");
        for text in [
            "",
            "plain",
            "q\"b\\s/",
            "h\u{e9}llo \u{1f600}",
            "\u{7f}",
            &controls,
            "eight ok\"",
            "sixteen bytes ok, then \n",
            &long,
        ] {
            let mut out = Vec::new();
            write_str(&mut out, text);
            assert_eq!(
                String::from_utf8_lossy(&out),
                serde_json::to_string(text).unwrap_or_default()
            );
        }
        let attributes = [
            KeyValue::new("f", 0.1),
            KeyValue::new("g", -2.0),
            KeyValue::new("nan", f64::NAN),
            KeyValue::new("min", i64::MIN),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![-1, 7]))),
            KeyValue::new("none", Value::Array(Array::String(Vec::new()))),
        ];
        let mut out = Vec::new();
        write_attributes(&mut out, &attributes);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"f":0.1,"g":-2.0,"nan":null,"min":-9223372036854775808,"bools":[true,false],"ints":[-1,7],"none":[]}"#
        );
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
