//! Reading back the spans [`crate::otlp_proto`] writes, in place: the local
//! span store's worker turns each batch of encoded spans into store lines.
//!
//! A span is encoded once, on the thread that ends it, and every sink takes
//! those bytes; the store transcodes them on its own thread instead of
//! making the agent's thread write a second, JSON form (which cost as much
//! as the OTLP encoding again on the tracing bench). Fields are read where
//! they lie — names, keys and strings are borrowed from the batch — because
//! decoding into owned messages (`prost`'s generated types) cost the worker
//! twice what the JSON encoding had cost the agent. Field numbers are those
//! of `opentelemetry/proto/trace/v1/trace.proto` and `common/v1/common.proto`;
//! fields the store does not keep are skipped.

use prost::encoding::decode_varint;

use crate::otlp_proto::SCOPE_SPANS_SPANS;

/// Why encoded spans could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpanReadError {
    /// The bytes are not protobuf the writer could have written.
    #[error("span encoding: {0}")]
    Malformed(&'static str),
    /// A varint or key could not be decoded.
    #[error("span encoding")]
    Decode(#[from] prost::DecodeError),
}

/// One field of a protobuf message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Field<'a> {
    /// A varint (ints, bools, enums).
    Varint(u64),
    /// Eight little-endian bytes (fixed64, double).
    Fixed64(u64),
    /// A length-delimited body (strings, bytes, messages).
    Bytes(&'a [u8]),
    /// Four little-endian bytes (fixed32).
    Fixed32(u32),
}

/// The fields of one message, in order, as `(tag, field)`.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// The fields of the message body `body`.
    pub(crate) fn of(body: &'a [u8]) -> Self {
        Self(body)
    }

    fn next_field(&mut self) -> Result<(u32, Field<'a>), SpanReadError> {
        let key = self.varint()?;
        let tag =
            u32::try_from(key >> 3).map_err(|_| SpanReadError::Malformed("a tag past 32 bits"))?;
        if tag == 0 {
            return Err(SpanReadError::Malformed("field number 0"));
        }
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.take_array()?)),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| SpanReadError::Malformed("a field longer than memory"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take_array()?)),
            _ => return Err(SpanReadError::Malformed("a group or unknown wire type")),
        };
        Ok((tag, field))
    }

    /// A varint; one byte inline (keys, small lengths), longer ones
    /// through `prost`.
    #[inline]
    fn varint(&mut self) -> Result<u64, SpanReadError> {
        match self.0.split_first() {
            Some((&byte, rest)) if byte < 0x80 => {
                self.0 = rest;
                Ok(u64::from(byte))
            }
            _ => Ok(decode_varint(&mut self.0)?),
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], SpanReadError> {
        let (taken, rest) = self
            .0
            .split_at_checked(len)
            .ok_or(SpanReadError::Malformed("a field cut short"))?;
        self.0 = rest;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], SpanReadError> {
        let bytes = self.take(N)?;
        bytes
            .try_into()
            .map_err(|_| SpanReadError::Malformed("a fixed-width field cut short"))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), SpanReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.next_field();
        if field.is_err() {
            // Nothing after a field that cannot be framed can be.
            self.0 = &[];
        }
        Some(field)
    }
}

/// The message bodies of a batch: `ScopeSpans.spans` entries back to back,
/// as [`crate::otlp_proto::encode_span`] appends them.
pub(crate) fn span_bodies(batch: &[u8]) -> impl Iterator<Item = Result<&[u8], SpanReadError>> {
    Fields::of(batch).map(|field| match field? {
        (SCOPE_SPANS_SPANS, Field::Bytes(body)) => Ok(body),
        _ => Err(SpanReadError::Malformed("not a ScopeSpans.spans entry")),
    })
}

/// A `Span` message's fields the store keeps, borrowed from its body.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpanView<'a> {
    pub(crate) trace_id: &'a [u8],
    pub(crate) span_id: &'a [u8],
    /// Empty for a root.
    pub(crate) parent_span_id: &'a [u8],
    pub(crate) name: &'a str,
    pub(crate) start_time_unix_nano: u64,
    pub(crate) end_time_unix_nano: u64,
    /// Trace flags plus whether the parent is remote.
    pub(crate) flags: u32,
    /// 0 unset, 1 ok, 2 error.
    pub(crate) status_code: u64,
    pub(crate) status_message: &'a str,
    /// Whether the span has any event.
    pub(crate) has_events: bool,
    /// The whole body, for its attributes and events.
    body: &'a [u8],
}

impl<'a> SpanView<'a> {
    /// Reads the body of one `Span` message.
    pub(crate) fn read(body: &'a [u8]) -> Result<Self, SpanReadError> {
        let mut span = Self {
            body,
            ..Self::default()
        };
        for field in Fields::of(body) {
            match field? {
                (1, Field::Bytes(id)) => span.trace_id = id,
                (2, Field::Bytes(id)) => span.span_id = id,
                (4, Field::Bytes(id)) => span.parent_span_id = id,
                (5, Field::Bytes(name)) => span.name = text(name)?,
                (7, Field::Fixed64(nanos)) => span.start_time_unix_nano = nanos,
                (8, Field::Fixed64(nanos)) => span.end_time_unix_nano = nanos,
                (11, Field::Bytes(_)) => span.has_events = true,
                (15, Field::Bytes(status)) => {
                    for field in Fields::of(status) {
                        match field? {
                            (2, Field::Bytes(message)) => span.status_message = text(message)?,
                            (3, Field::Varint(code)) => span.status_code = code,
                            _ => {}
                        }
                    }
                }
                (16, Field::Fixed32(flags)) => span.flags = flags,
                _ => {}
            }
        }
        Ok(span)
    }

    /// The span's attributes (`Span.attributes`, field 9), in order.
    pub(crate) fn attributes(&self) -> KeyValues<'a> {
        KeyValues::of(self.body, 9)
    }

    /// The span's events (`Span.events`, field 11), in order.
    pub(crate) fn events(&self) -> impl Iterator<Item = Result<EventView<'a>, SpanReadError>> {
        Fields::of(self.body).filter_map(|field| match field {
            Ok((11, Field::Bytes(event))) => Some(EventView::read(event)),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        })
    }
}

/// A `Span.Event`'s fields, borrowed.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventView<'a> {
    pub(crate) time_unix_nano: u64,
    pub(crate) name: &'a str,
    body: &'a [u8],
}

impl<'a> EventView<'a> {
    fn read(body: &'a [u8]) -> Result<Self, SpanReadError> {
        let mut event = Self {
            body,
            ..Self::default()
        };
        for field in Fields::of(body) {
            match field? {
                (1, Field::Fixed64(nanos)) => event.time_unix_nano = nanos,
                (2, Field::Bytes(name)) => event.name = text(name)?,
                _ => {}
            }
        }
        Ok(event)
    }

    /// The event's attributes (`Event.attributes`, field 3), in order.
    pub(crate) fn attributes(&self) -> KeyValues<'a> {
        KeyValues::of(self.body, 3)
    }
}

/// The `KeyValue`s in field `tag` of a message body.
#[derive(Debug, Clone)]
pub(crate) struct KeyValues<'a> {
    fields: Fields<'a>,
    tag: u32,
}

impl<'a> KeyValues<'a> {
    fn of(body: &'a [u8], tag: u32) -> Self {
        Self {
            fields: Fields::of(body),
            tag,
        }
    }
}

impl<'a> Iterator for KeyValues<'a> {
    type Item = Result<(&'a str, ValueView<'a>), SpanReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.fields.next()? {
                Ok((tag, Field::Bytes(kv))) if tag == self.tag => return Some(key_value(kv)),
                Ok(_) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// A `KeyValue` message's key and value.
fn key_value(body: &[u8]) -> Result<(&str, ValueView<'_>), SpanReadError> {
    let (mut key, mut value) = ("", ValueView::Empty);
    for field in Fields::of(body) {
        match field? {
            (1, Field::Bytes(bytes)) => key = text(bytes)?,
            (2, Field::Bytes(bytes)) => value = ValueView::read(bytes)?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// An `AnyValue`, borrowed: the kinds the writer writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ValueView<'a> {
    /// No value (or a kind the writer never writes).
    Empty,
    String(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// An `ArrayValue` body: its `values` (field 1) are `AnyValue`s.
    Array(&'a [u8]),
}

impl<'a> ValueView<'a> {
    fn read(body: &'a [u8]) -> Result<Self, SpanReadError> {
        let mut value = Self::Empty;
        // A oneof: the last one written wins, as in any protobuf reader.
        for field in Fields::of(body) {
            value = match field? {
                (1, Field::Bytes(bytes)) => Self::String(text(bytes)?),
                (2, Field::Varint(b)) => Self::Bool(b != 0),
                // int64 is the two's-complement varint.
                (3, Field::Varint(i)) => Self::Int(i as i64),
                (4, Field::Fixed64(bits)) => Self::Double(f64::from_bits(bits)),
                (5, Field::Bytes(array)) => Self::Array(array),
                _ => value,
            };
        }
        Ok(value)
    }

    /// An array's elements, in order.
    pub(crate) fn elements(array: &'a [u8]) -> impl Iterator<Item = Result<Self, SpanReadError>> {
        Fields::of(array).filter_map(|field| match field {
            Ok((1, Field::Bytes(value))) => Some(Self::read(value)),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        })
    }
}

/// A string field's text.
fn text(bytes: &[u8]) -> Result<&str, SpanReadError> {
    std::str::from_utf8(bytes).map_err(|_| SpanReadError::Malformed("a string that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length-delimited field `tag` holding `body` (short bodies only).
    fn entry(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![(tag << 3) | 2, u8::try_from(body.len()).unwrap_or(u8::MAX)];
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn fields_of_every_wire_type_read_in_order() {
        let mut body = vec![0x08, 0x96, 0x01]; // 1: varint 150
        body.push(0x11); // 2: fixed64
        body.extend_from_slice(&7_u64.to_le_bytes());
        body.extend(entry(3, b"hi"));
        body.push(0x25); // 4: fixed32
        body.extend_from_slice(&9_u32.to_le_bytes());
        let fields: Vec<_> = Fields::of(&body)
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(
            fields,
            [
                (1, Field::Varint(150)),
                (2, Field::Fixed64(7)),
                (3, Field::Bytes(b"hi")),
                (4, Field::Fixed32(9))
            ]
        );
    }

    #[test]
    fn bad_framing_is_an_error_and_ends_the_fields() {
        // A body cut short, a fixed64 cut short, a group, a bad key.
        for bytes in [&[0x1a, 0x05, b'a'][..], &[0x11, 1, 2], &[0x0b], &[0x00]] {
            let mut fields = Fields::of(bytes);
            assert!(matches!(fields.next(), Some(Err(_))), "{bytes:?}");
            assert!(fields.next().is_none(), "{bytes:?}");
        }
    }

    #[test]
    fn a_batch_is_spans_entries_and_anything_else_is_refused() {
        let mut batch = entry(2, b"");
        batch.extend(entry(2, &entry(5, b"x")));
        let bodies: Vec<_> = span_bodies(&batch).collect();
        assert_eq!(bodies.len(), 2);
        let span = bodies[1].as_ref().map(|body| SpanView::read(body));
        assert!(matches!(span, Ok(Ok(SpanView { name: "x", .. }))));
        // A field other than `ScopeSpans.spans`.
        assert!(span_bodies(&entry(1, b"")).all(|body| body.is_err()));
    }

    #[test]
    fn values_read_as_the_writer_writes_them() -> Result<(), SpanReadError> {
        assert_eq!(ValueView::read(&entry(1, b"s"))?, ValueView::String("s"));
        assert_eq!(ValueView::read(&[0x10, 0x01])?, ValueView::Bool(true));
        // -1 as a ten-byte two's-complement varint.
        let mut minus_one = vec![0x18];
        minus_one.extend([0xff; 9]);
        minus_one.push(0x01);
        assert_eq!(ValueView::read(&minus_one)?, ValueView::Int(-1));
        let mut half = vec![0x21];
        half.extend_from_slice(&0.5_f64.to_bits().to_le_bytes());
        assert_eq!(ValueView::read(&half)?, ValueView::Double(0.5));
        assert_eq!(ValueView::read(&[])?, ValueView::Empty);
        let array = [entry(1, &entry(1, b"a")), entry(1, &[0x10, 0x00])].concat();
        let elements: Vec<_> = ValueView::elements(&array).collect::<Result<_, _>>()?;
        assert_eq!(elements, [ValueView::String("a"), ValueView::Bool(false)]);
        // A string that is not UTF-8.
        assert!(ValueView::read(&entry(1, &[0xff])).is_err());
        Ok(())
    }
}
