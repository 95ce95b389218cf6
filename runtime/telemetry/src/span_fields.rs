//! `tracing` fields as OpenTelemetry span attributes and span events.
//!
//! The conventions are `tracing-opentelemetry`'s, which Corral's spans were
//! written against: `otel.name`, `otel.kind`, `otel.status_code` and
//! `otel.status_description` set the span's name, kind and status; an
//! event's `message` is its name; an `error` field on an event marks the
//! span failed and becomes an `exception` event.

use std::borrow::Cow;
use std::fmt;

use opentelemetry::trace::{Event, SpanKind, Status};
use opentelemetry::{Key, KeyValue, StringValue, Value};
use tracing::field::{Field, Visit};

const SPAN_NAME_FIELD: &str = "otel.name";
const SPAN_KIND_FIELD: &str = "otel.kind";
const SPAN_STATUS_CODE_FIELD: &str = "otel.status_code";
const SPAN_STATUS_DESCRIPTION_FIELD: &str = "otel.status_description";
const EXCEPTION_EVENT: &str = "exception";
const EXCEPTION_MESSAGE: &str = "exception.message";

/// The `Visit` methods for booleans and numbers, the same for span and
/// event fields: each becomes an attribute through `self.value`. A `u64`
/// beyond `i64` (OpenTelemetry has no unsigned type) becomes a string.
macro_rules! primitive_fields {
    () => {
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.value(field, Value::Bool(value));
        }

        fn record_f64(&mut self, field: &Field, value: f64) {
            self.value(field, Value::F64(value));
        }

        fn record_i64(&mut self, field: &Field, value: i64) {
            self.value(field, Value::I64(value));
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            match i64::try_from(value) {
                Ok(value) => self.value(field, Value::I64(value)),
                Err(_) => self.value(field, Value::String(value.to_string().into())),
            }
        }
    };
}

/// A span's fields: attributes plus the `otel.*` overrides.
#[derive(Debug, Default)]
pub(crate) struct SpanFields {
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) kind: Option<SpanKind>,
    pub(crate) status: Option<Status>,
    status_description: Option<String>,
}

impl SpanFields {
    /// Room for `fields` attributes.
    pub(crate) fn with_capacity(fields: usize) -> Self {
        Self {
            attributes: Vec::with_capacity(fields),
            ..Self::default()
        }
    }

    fn value(&mut self, field: &Field, value: Value) {
        self.attributes
            .push(KeyValue::new(Key::from_static_str(field.name()), value));
    }

    /// Handles an `otel.*` string field; false for any other field.
    fn special(&mut self, field: &Field, value: &str) -> bool {
        match field.name() {
            SPAN_NAME_FIELD => self.name = Some(Cow::Owned(value.to_string())),
            SPAN_KIND_FIELD => self.kind = span_kind(value),
            SPAN_STATUS_CODE_FIELD => {
                self.status = Some(match value {
                    s if s.eq_ignore_ascii_case("ok") => Status::Ok,
                    s if s.eq_ignore_ascii_case("error") => {
                        Status::error(self.status_description.take().unwrap_or_default())
                    }
                    _ => Status::Unset,
                });
            }
            SPAN_STATUS_DESCRIPTION_FIELD => {
                if let Some(Status::Error { description }) = &mut self.status {
                    *description = Cow::Owned(value.to_string());
                } else {
                    self.status_description = Some(value.to_string());
                }
            }
            _ => return false,
        }
        true
    }
}

fn span_kind(value: &str) -> Option<SpanKind> {
    [
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ]
    .into_iter()
    .find(|(name, _)| value.eq_ignore_ascii_case(name))
    .map(|(_, kind)| kind)
}

impl Visit for SpanFields {
    primitive_fields!();

    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field, value) {
            self.value(field, Value::String(value.to_string().into()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let value = format!("{value:?}");
        if !self.special(field, &value) {
            self.value(field, Value::String(value.into()));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field, Value::String(value.to_string().into()));
        self.attributes.push(KeyValue::new(
            Key::from(format!("{}.chain", field.name())),
            Value::Array(error_chain(value).into()),
        ));
    }
}

/// The messages of `error`'s sources, outermost first.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<StringValue> {
    let mut chain = Vec::new();
    let mut next = error.source();
    while let Some(source) = next {
        chain.push(source.to_string().into());
        next = source.source();
    }
    chain
}

/// An event's fields as a span event.
#[derive(Debug)]
pub(crate) struct EventFields {
    name: Option<Cow<'static, str>>,
    metadata_name: &'static str,
    attributes: Vec<KeyValue>,
    status: Option<Status>,
}

impl EventFields {
    /// An event from a callsite with `metadata`; its level and target are
    /// attributes, as `tracing-opentelemetry` records them.
    pub(crate) fn new(metadata: &'static tracing::Metadata<'static>) -> Self {
        Self {
            name: None,
            metadata_name: metadata.name(),
            attributes: vec![
                KeyValue::new(
                    Key::from_static_str("level"),
                    Value::String(metadata.level().as_str().into()),
                ),
                KeyValue::new(
                    Key::from_static_str("target"),
                    Value::String(metadata.target().into()),
                ),
            ],
            status: None,
        }
    }

    /// The status the event sets on its span (an `error` field), and the
    /// event with at most `max_attributes` attributes.
    pub(crate) fn into_parts(mut self, max_attributes: usize) -> (Option<Status>, Event) {
        let dropped = self.attributes.len().saturating_sub(max_attributes);
        self.attributes.truncate(max_attributes);
        let name = self.name.unwrap_or(Cow::Borrowed(self.metadata_name));
        let event = Event::new(
            name,
            std::time::SystemTime::now(),
            self.attributes,
            u32::try_from(dropped).unwrap_or(u32::MAX),
        );
        (self.status, event)
    }

    fn error(&mut self, message: String) {
        self.status = Some(Status::error(message.clone()));
        self.name = Some(Cow::Borrowed(EXCEPTION_EVENT));
        self.attributes.push(KeyValue::new(
            Key::from_static_str(EXCEPTION_MESSAGE),
            Value::String(message.into()),
        ));
    }

    fn value(&mut self, field: &Field, value: Value) {
        self.attributes
            .push(KeyValue::new(Key::from_static_str(field.name()), value));
    }
}

impl Visit for EventFields {
    primitive_fields!();

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(Cow::Owned(value.to_string())),
            "error" if self.name.is_none() => self.error(format!("{value:?}")),
            _ => self.value(field, Value::String(value.to_string().into())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.name = Some(Cow::Owned(format!("{value:?}"))),
            "error" if self.name.is_none() => self.error(format!("{value:?}")),
            _ => self.value(field, Value::String(format!("{value:?}").into())),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        self.attributes.push(KeyValue::new(
            Key::from_static_str(EXCEPTION_MESSAGE),
            Value::String(message.clone().into()),
        ));
        self.value(field, Value::String(message.into()));
        self.attributes.push(KeyValue::new(
            Key::from(format!("{}.chain", field.name())),
            Value::Array(error_chain(value).into()),
        ));
    }
}
