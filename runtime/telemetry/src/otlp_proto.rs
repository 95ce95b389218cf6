//! OTLP protobuf encoding of finished spans, written straight from the
//! span's record ([`FinishedSpan`]) into bytes.
//!
//! Written here instead of going through `opentelemetry-proto`'s message
//! structs because that path copies every span into a tree of owned
//! strings and vectors, then encodes and frees it on the export thread: on a
//! 2-core machine that work competed with the agents for most of the
//! tracing overhead. Here each span becomes one `ScopeSpans.spans` entry on
//! the thread that ends it, and a batch is those entries behind a
//! resource-and-scope header (see [`ExportHeader`]). Field numbers are those
//! of `opentelemetry/proto/trace/v1/trace.proto` and `common/v1/common.proto`;
//! the tests decode the output with `opentelemetry-proto`'s generated types.

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::finished_span::FinishedSpan;

/// `ScopeSpans.spans`: the field each encoded span is written as.
const SCOPE_SPANS_SPANS: u32 = 2;
/// OTLP span flag: the flags say whether the parent is remote.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// OTLP span flag: the parent is remote.
const FLAG_IS_REMOTE: u32 = 0x200;

/// Appends `span` as one length-delimited `ScopeSpans.spans` entry.
///
/// Kept small on purpose: a span is encoded between guest calls that evict
/// the caches, so the code's footprint costs more than its instructions
/// (callgrind's cache simulation of the tracing bench: a version that
/// staged framing in a `u128` ran faster in a warm loop but missed the
/// instruction cache 60% more per invocation). Keys are single bytes,
/// varints take one byte inline, and scalar attributes are sized before
/// they are written so nothing moves afterwards. Events and links, which
/// most spans have none of, are written out of line.
pub(crate) fn encode_span(span: &FinishedSpan<'_>, out: &mut Vec<u8>) {
    // A span's body is almost always 128 B to 16 KiB: a two-byte length.
    message_sized::<2>(out, SCOPE_SPANS_SPANS, |out| {
        let cx = &span.span_context;
        out.extend_from_slice(&[field_key(1, LENGTH_DELIMITED), 16]);
        out.extend_from_slice(&cx.trace_id().to_bytes());
        out.extend_from_slice(&[field_key(2, LENGTH_DELIMITED), 8]);
        out.extend_from_slice(&cx.span_id().to_bytes());
        if *cx.trace_state() != TraceState::NONE {
            string_field(out, 3, &cx.trace_state().header());
        }
        if span.parent_span_id != SpanId::INVALID {
            out.extend_from_slice(&[field_key(4, LENGTH_DELIMITED), 8]);
            out.extend_from_slice(&span.parent_span_id.to_bytes());
        }
        string_field(out, 5, span.name);
        varint_field(out, 6, kind_code(span.span_kind));
        fixed64_field(out, 7, unix_nanos(span.start_time));
        fixed64_field(out, 8, unix_nanos(span.end_time));
        attributes(out, 9, span.attributes);
        varint_field(out, 10, u64::from(span.dropped_attributes_count));
        if !span.events.is_empty() {
            events(out, span.events);
        }
        varint_field(out, 12, u64::from(span.dropped_events_count));
        if !span.links.is_empty() {
            links(out, span.links);
        }
        varint_field(out, 14, u64::from(span.dropped_links_count));
        let (code, description) = match span.status {
            Status::Unset => (0, ""),
            Status::Ok => (1, ""),
            Status::Error { description } => (2, description.as_ref()),
        };
        key(out, 15, LENGTH_DELIMITED);
        varint(
            out,
            (string_len(2, description) + if code == 0 { 0 } else { 2 }) as u64,
        );
        string_field(out, 2, description);
        varint_field(out, 3, code);
        fixed32_field(out, 16, flags(cx, span.parent_span_is_remote));
    });
}

/// `Span.events`.
#[inline(never)]
fn events(out: &mut Vec<u8>, events: &[Event]) {
    for event in events {
        message(out, 11, |out| {
            fixed64_field(out, 1, unix_nanos(event.timestamp));
            string_field(out, 2, &event.name);
            attributes(out, 3, &event.attributes);
            varint_field(out, 4, u64::from(event.dropped_attributes_count));
        });
    }
}

/// `Span.links`.
#[cold]
#[inline(never)]
fn links(out: &mut Vec<u8>, links: &[Link]) {
    for link in links {
        message(out, 13, |out| {
            let cx = &link.span_context;
            bytes_field(out, 1, &cx.trace_id().to_bytes());
            bytes_field(out, 2, &cx.span_id().to_bytes());
            string_field(out, 3, &cx.trace_state().header());
            attributes(out, 4, &link.attributes);
            varint_field(out, 5, u64::from(link.dropped_attributes_count));
            fixed32_field(out, 6, flags(cx, cx.is_remote()));
        });
    }
}

/// A one-byte field key (tags below 16).
const fn field_key(tag: u32, wire_type: u32) -> u8 {
    debug_assert!(tag < 16, "a one-byte key");
    ((tag << 3) | wire_type) as u8
}

/// The parts of an `ExportTraceServiceRequest` around a batch's spans: one
/// `ResourceSpans` holding one `ScopeSpans`.
#[derive(Debug, Clone)]
pub(crate) struct ExportHeader {
    /// The encoded `Resource` message body.
    resource: Vec<u8>,
    /// The encoded `InstrumentationScope` message body.
    scope: Vec<u8>,
    /// `ResourceSpans.schema_url`.
    resource_schema_url: String,
    /// `ScopeSpans.schema_url`.
    scope_schema_url: String,
}

impl ExportHeader {
    /// The header describing spans from `resource`, made by `scope`.
    pub(crate) fn new(resource: &Resource, scope: &InstrumentationScope) -> Self {
        let mut resource_body = Vec::new();
        for (key, value) in resource.iter() {
            message(&mut resource_body, 1, |out| {
                string_field(out, 1, key.as_str());
                message(out, 2, |out| any_value(out, value));
            });
        }
        let mut scope_body = Vec::new();
        string_field(&mut scope_body, 1, scope.name());
        string_field(&mut scope_body, 2, scope.version().unwrap_or_default());
        for kv in scope.attributes() {
            key_value(&mut scope_body, 3, kv);
        }
        Self {
            resource: resource_body,
            scope: scope_body,
            resource_schema_url: resource.schema_url().unwrap_or_default().to_string(),
            scope_schema_url: scope.schema_url().unwrap_or_default().to_string(),
        }
    }

    /// An `ExportTraceServiceRequest` carrying `spans`, the concatenated
    /// output of [`encode_span`].
    pub(crate) fn request(&self, spans: &[u8]) -> Vec<u8> {
        let scope_spans_len =
            nested_len(1, self.scope.len()) + spans.len() + string_len(3, &self.scope_schema_url);
        let resource_spans_len = nested_len(1, self.resource.len())
            + nested_len(2, scope_spans_len)
            + string_len(3, &self.resource_schema_url);
        let mut out = Vec::with_capacity(nested_len(1, resource_spans_len));
        key(&mut out, 1, LENGTH_DELIMITED);
        varint(&mut out, resource_spans_len as u64);
        key(&mut out, 1, LENGTH_DELIMITED);
        varint(&mut out, self.resource.len() as u64);
        out.extend_from_slice(&self.resource);
        key(&mut out, 2, LENGTH_DELIMITED);
        varint(&mut out, scope_spans_len as u64);
        key(&mut out, 1, LENGTH_DELIMITED);
        varint(&mut out, self.scope.len() as u64);
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(spans);
        string_field(&mut out, 3, &self.scope_schema_url);
        string_field(&mut out, 3, &self.resource_schema_url);
        out
    }
}

/// Span flags: the trace flags plus whether the parent is remote.
fn flags(cx: &SpanContext, parent_is_remote: bool) -> u32 {
    let mut flags = u32::from(cx.trace_flags().to_u8()) | FLAG_HAS_IS_REMOTE;
    if parent_is_remote {
        flags |= FLAG_IS_REMOTE;
    }
    flags
}

fn kind_code(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    // Seconds and nanoseconds, not `as_nanos`: a u128 product and a
    // checked narrowing on every timestamp.
    time.duration_since(UNIX_EPOCH)
        .map(|d| {
            d.as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos()))
        })
        .unwrap_or(0)
}

/// Writes a length-delimited field whose body `body` appends, when its
/// length is not known beforehand (see [`message_sized`]).
#[inline]
fn message(out: &mut Vec<u8>, tag: u32, body: impl FnOnce(&mut Vec<u8>)) {
    message_sized::<1>(out, tag, body);
}

/// Writes a length-delimited field whose body `body` appends. `PREFIX`
/// bytes are reserved for the length and the body is moved afterwards only
/// if its length's varint is another size, so bodies of the expected size
/// are written in one pass.
#[inline]
fn message_sized<const PREFIX: usize>(
    out: &mut Vec<u8>,
    tag: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    key(out, tag, LENGTH_DELIMITED);
    let at = out.len();
    out.extend_from_slice(&[0; PREFIX]);
    body(out);
    let len = out.len() - at - PREFIX;
    let mut prefix = [0_u8; 10];
    let written = write_varint(&mut prefix, len as u64);
    if written != PREFIX {
        let body_start = at + PREFIX;
        if written > PREFIX {
            out.resize(out.len() + written - PREFIX, 0);
            out.copy_within(body_start..body_start + len, at + written);
        } else {
            out.copy_within(body_start..body_start + len, at + written);
            out.truncate(at + written + len);
        }
    }
    out[at..at + written].copy_from_slice(&prefix[..written]);
}

/// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LENGTH_DELIMITED: u32 = 2;
const FIXED32: u32 = 5;

/// A field's key. Written here rather than with `prost::encoding`, whose
/// generic `BufMut` writers were a third of the encoding's instructions:
/// inlined with a constant tag, a key is one byte pushed.
#[inline(always)]
fn key(out: &mut Vec<u8>, tag: u32, wire_type: u32) {
    varint(out, u64::from((tag << 3) | wire_type));
}

/// A base-128 varint: one byte inline (keys, most lengths), longer ones
/// out of line so every call site stays small.
#[inline(always)]
fn varint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else {
        long_varint(out, value);
    }
}

#[inline(never)]
fn long_varint(out: &mut Vec<u8>, value: u64) {
    let mut bytes = [0_u8; 10];
    let len = write_varint(&mut bytes, value);
    out.extend_from_slice(&bytes[..len]);
}

/// The length of `value`'s varint.
#[inline]
fn varint_len(value: u64) -> usize {
    // Each byte carries 7 bits; zero still takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Writes `value`'s varint at the start of `buf`; returns its length.
fn write_varint(buf: &mut [u8; 10], mut value: u64) -> usize {
    let mut i = 0;
    while value >= 0x80 {
        buf[i] = (value as u8) | 0x80;
        value >>= 7;
        i += 1;
    }
    buf[i] = value as u8;
    i + 1
}

/// Encoded size of a length-delimited field with a `len`-byte body.
fn nested_len(tag: u32, len: usize) -> usize {
    varint_len(u64::from(tag << 3)) + varint_len(len as u64) + len
}

fn string_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        nested_len(tag, value.len())
    }
}

/// A string field, left out when empty (proto3's default).
fn string_field(out: &mut Vec<u8>, tag: u32, value: &str) {
    bytes_field(out, tag, value.as_bytes());
}

/// A bytes field, left out when empty.
fn bytes_field(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    if !value.is_empty() {
        raw_bytes(out, tag, value);
    }
}

#[inline]
fn raw_bytes(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    key(out, tag, LENGTH_DELIMITED);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// A varint field, left out when zero.
fn varint_field(out: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        key(out, tag, VARINT);
        varint(out, value);
    }
}

/// A `fixed64` field, left out when zero.
fn fixed64_field(out: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        key(out, tag, FIXED64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A `fixed32` field, left out when zero.
fn fixed32_field(out: &mut Vec<u8>, tag: u32, value: u32) {
    if value != 0 {
        key(out, tag, FIXED32);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Repeated `KeyValue` field `tag`.
fn attributes(out: &mut Vec<u8>, tag: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        key_value(out, tag, kv);
    }
}

/// One `KeyValue` message. Scalar values (nearly every attribute) are
/// sized first, so nothing moves after writing; arrays and newer value
/// types take the general path.
fn key_value(out: &mut Vec<u8>, tag: u32, kv: &KeyValue) {
    let name = kv.key.as_str();
    let Some(value_len) = scalar_len(&kv.value) else {
        nested_key_value(out, tag, kv);
        return;
    };
    key(out, tag, LENGTH_DELIMITED);
    varint(out, (string_len(1, name) + nested_len(2, value_len)) as u64);
    string_field(out, 1, name);
    key(out, 2, LENGTH_DELIMITED);
    varint(out, value_len as u64);
    any_value(out, &kv.value);
}

/// A `KeyValue` whose value is written before its length is known.
#[cold]
#[inline(never)]
fn nested_key_value(out: &mut Vec<u8>, tag: u32, kv: &KeyValue) {
    message(out, tag, |out| {
        string_field(out, 1, kv.key.as_str());
        message(out, 2, |out| any_value(out, &kv.value));
    });
}

/// The encoded length of a scalar `AnyValue`'s body; `None` for arrays and
/// newer value types.
#[inline]
fn scalar_len(value: &Value) -> Option<usize> {
    Some(match value {
        Value::String(s) => nested_len(1, s.as_str().len()),
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + varint_len(*i as u64),
        Value::F64(_) => 9,
        _ => return None,
    })
}

/// The body of an `AnyValue`. A oneof member is written even when it holds
/// its type's default (`false`, `0`, `""`), or the value would read as unset.
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => raw_bytes(out, 1, s.as_str().as_bytes()),
        Value::Bool(b) => {
            key(out, 2, VARINT);
            out.push(u8::from(*b));
        }
        Value::I64(i) => {
            key(out, 3, VARINT);
            // int64 is the two's-complement varint.
            varint(out, *i as u64);
        }
        Value::F64(f) => {
            key(out, 4, FIXED64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        other => uncommon_value(out, other),
    }
}

/// An array, or a value type newer than this writer (its display form).
#[cold]
#[inline(never)]
fn uncommon_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Array(array) => message(out, 5, |out| match array {
            Array::Bool(values) => array_values(out, values, |b| Value::Bool(*b)),
            Array::I64(values) => array_values(out, values, |i| Value::I64(*i)),
            Array::F64(values) => array_values(out, values, |f| Value::F64(*f)),
            Array::String(values) => {
                array_values(out, values, |s: &StringValue| Value::String(s.clone()))
            }
            // A newer array type: its display form.
            other => array_values(out, &[other.to_string()], |s| {
                Value::String(s.clone().into())
            }),
        }),
        other => raw_bytes(out, 1, other.to_string().as_bytes()),
    }
}

/// `ArrayValue.values` from `values`.
fn array_values<T>(out: &mut Vec<u8>, values: &[T], value: impl Fn(&T) -> Value) {
    for item in values {
        message(out, 1, |out| any_value(out, &value(item)));
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{Event, Link, SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope as ProtoScope;
    use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use prost::Message;

    use super::*;

    fn span(name: &str, status: Status, parent_is_remote: bool) -> SpanData {
        let trace_state = TraceState::from_key_value([("vendor", "x1")]).unwrap_or_default();
        let cx = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            TraceFlags::SAMPLED,
            false,
            trace_state,
        );
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "exception",
            start + Duration::from_micros(5),
            vec![KeyValue::new("exception.message", "boom")],
            2,
        ));
        events.dropped_count = 1;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            SpanContext::new(
                TraceId::from(7_u128),
                SpanId::from(9_u64),
                TraceFlags::default(),
                true,
                TraceState::default(),
            ),
            vec![KeyValue::new("why", "follows")],
            0,
        ));
        SpanData {
            span_context: cx,
            parent_span_id: SpanId::from(0x1122_u64),
            parent_span_is_remote: parent_is_remote,
            span_kind: SpanKind::Server,
            name: Cow::Owned(name.to_string()),
            start_time: start,
            end_time: start + Duration::from_micros(250),
            attributes: vec![
                KeyValue::new("session.id", "s-1"),
                KeyValue::new("empty", ""),
                KeyValue::new("ok", false),
                KeyValue::new("zero", 0_i64),
                KeyValue::new("negative", -42_i64),
                KeyValue::new("ratio", 0.25_f64),
                KeyValue::new(
                    "tags",
                    Value::Array(Array::String(vec!["a".into(), "".into()])),
                ),
                KeyValue::new("ints", Value::Array(Array::I64(vec![1, -1]))),
                KeyValue::new("long", "x".repeat(300)),
            ],
            dropped_attributes_count: 3,
            events,
            links,
            status,
            instrumentation_scope: InstrumentationScope::builder("corral").build(),
        }
    }

    /// What `opentelemetry-proto` makes of the same span.
    fn reference(span: &SpanData) -> ProtoSpan {
        ProtoSpan::from(span.clone())
    }

    fn decode_one(span: &SpanData) -> ProtoSpan {
        let mut out = Vec::new();
        encode_span(&FinishedSpan::of(span), &mut out);
        // One `ScopeSpans.spans` entry: key byte, length, body.
        let header = ExportHeader::new(
            &Resource::builder_empty().build(),
            &InstrumentationScope::builder("corral").build(),
        );
        let request = ExportTraceServiceRequest::decode(header.request(&out).as_slice())
            .unwrap_or_else(|error| panic!("not a valid request: {error}"));
        let mut spans = request.resource_spans[0].scope_spans[0].spans.clone();
        assert_eq!(spans.len(), 1);
        spans.remove(0)
    }

    #[test]
    fn spans_decode_as_opentelemetry_proto_encodes_them() {
        for (status, remote) in [
            (Status::Unset, false),
            (Status::Ok, true),
            (Status::error("it failed"), false),
        ] {
            let span = span("invoke demo", status, remote);
            assert_eq!(decode_one(&span), reference(&span));
        }
    }

    #[test]
    fn a_root_span_has_no_parent_and_long_bodies_keep_their_length() {
        let mut root = span(&"n".repeat(20_000), Status::Unset, false);
        root.parent_span_id = SpanId::INVALID;
        let decoded = decode_one(&root);
        assert!(decoded.parent_span_id.is_empty());
        assert_eq!(decoded, reference(&root));
    }

    #[test]
    fn short_spans_and_values_at_every_length_boundary_decode() {
        // A bare span is shorter than its two-byte length prefix assumes.
        let mut bare = span("s", Status::Unset, false);
        bare.attributes.clear();
        bare.events = SpanEvents::default();
        bare.links = SpanLinks::default();
        assert_eq!(decode_one(&bare), reference(&bare));
        // Values whose lengths cross each varint width, as scalars (sized
        // up front) and inside arrays (moved after writing).
        for len in [0, 1, 127, 128, 16_383, 16_384, 70_000] {
            let mut long = bare.clone();
            let text = "v".repeat(len);
            long.attributes = vec![
                KeyValue::new("k".repeat(len.min(300)), text.clone()),
                KeyValue::new(
                    "array",
                    Value::Array(Array::String(vec![text.clone().into()])),
                ),
                KeyValue::new("min", i64::MIN),
            ];
            long.name = Cow::Owned(text);
            assert_eq!(decode_one(&long), reference(&long), "length {len}");
        }
        // Attribute messages whose own bodies are 127 and 128 bytes long
        // (their length prefix grows from one byte to two).
        let mut edge = bare.clone();
        edge.attributes = (110..140)
            .map(|len| KeyValue::new("k", "v".repeat(len)))
            .collect();
        assert_eq!(decode_one(&edge), reference(&edge));
        // No trace state, and an error without a description.
        let mut plain = bare.clone();
        plain.span_context = SpanContext::new(
            TraceId::from(3_u128),
            SpanId::from(4_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        plain.status = Status::error("");
        assert_eq!(decode_one(&plain), reference(&plain));
    }

    #[test]
    fn varint_lengths_match_prost() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            assert_eq!(
                varint_len(value),
                prost::encoding::encoded_len_varint(value),
                "{value}"
            );
            let mut ours = Vec::new();
            varint(&mut ours, value);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
        }
    }

    #[test]
    fn a_batch_carries_resource_scope_and_every_span() {
        let resource = Resource::builder_empty()
            .with_service_name("corral-test")
            .with_attribute(KeyValue::new("replica", 3_i64))
            .with_schema_url([], "https://opentelemetry.io/schemas/1.26.0")
            .build();
        let scope = InstrumentationScope::builder("corral")
            .with_version("0.1.0")
            .with_attributes([KeyValue::new("lib", "tracing")])
            .build();
        let header = ExportHeader::new(&resource, &scope);
        let mut batch = Vec::new();
        let spans: Vec<SpanData> = (0..3)
            .map(|i| span(&format!("step {i}"), Status::Ok, false))
            .collect();
        for span in &spans {
            encode_span(&FinishedSpan::of(span), &mut batch);
        }
        let request = ExportTraceServiceRequest::decode(header.request(&batch).as_slice())
            .unwrap_or_else(|error| panic!("not a valid request: {error}"));
        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        assert_eq!(
            resource_spans.schema_url,
            "https://opentelemetry.io/schemas/1.26.0"
        );
        let attributes = &resource_spans
            .resource
            .as_ref()
            .unwrap_or_else(|| panic!("no resource"))
            .attributes;
        assert!(attributes.iter().any(
            |kv| kv.key == "service.name" && format!("{:?}", kv.value).contains("corral-test")
        ));
        assert!(attributes.iter().any(|kv| kv.key == "replica"));
        let scope_spans = &resource_spans.scope_spans[0];
        assert_eq!(
            scope_spans.scope,
            Some(ProtoScope {
                name: "corral".into(),
                version: "0.1.0".into(),
                attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
                    key: "lib".into(),
                    value: Some(opentelemetry::Value::from("tracing").into()),
                    ..Default::default()
                }],
                dropped_attributes_count: 0,
            })
        );
        let expected: Vec<ProtoSpan> = spans.iter().map(reference).collect();
        assert_eq!(scope_spans.spans, expected);
    }
}
