//! OpenTelemetry operations on `tracing` spans: their context for
//! propagation, a remote parent, links, attributes, events and status.

use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::trace::{Event, Link, SpanContext, Status};
use opentelemetry::{Context, Key, KeyValue, Value};
use tracing::span::Id;
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use crate::span_layer::{SpanPipeline, SpanState};

/// Runs a closure on the state of span `id` in the registry behind a dispatch.
type Lookup = fn(&Dispatch, &Id, &mut dyn FnMut(&mut SpanState));

/// Found by downcasting the current subscriber: reaches a span's state in a
/// registry whose type the call site does not know (the pattern
/// `tracing-error` and `tracing-opentelemetry` use).
pub(crate) struct WithSpanState {
    pub(crate) pipeline: Arc<SpanPipeline>,
    lookup: Lookup,
    /// Like `lookup`, on the nearest of the span and its ancestors that the
    /// pipeline traces.
    nearest: Lookup,
}

impl WithSpanState {
    /// The lookup for registries of type `S`.
    pub(crate) fn new<S>(pipeline: Arc<SpanPipeline>) -> Self
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        Self {
            pipeline,
            lookup: lookup::<S, false>,
            nearest: lookup::<S, true>,
        }
    }
}

/// Runs `f` on the state of span `id` in a registry of type `S`, or with
/// `NEAREST`, of the nearest of it and its ancestors that has one.
fn lookup<S, const NEAREST: bool>(dispatch: &Dispatch, id: &Id, f: &mut dyn FnMut(&mut SpanState))
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let Some(span) = dispatch
        .downcast_ref::<S>()
        .and_then(|subscriber| subscriber.span(id))
    else {
        return;
    };
    for span in span.scope().take(if NEAREST { usize::MAX } else { 1 }) {
        if let Some(state) = span.extensions_mut().get_mut::<SpanState>() {
            f(state);
            return;
        }
    }
}

/// Runs `f` with the current subscriber's Corral pipeline and the state of
/// the nearest traced span among the current one and its ancestors (as a
/// contextual `tracing` span's parent is found); `None` for the state when
/// none is traced. Nothing when the subscriber runs no Corral pipeline.
pub(crate) fn with_current_state(mut f: impl FnMut(&Arc<SpanPipeline>, Option<&mut SpanState>)) {
    tracing::dispatcher::get_default(|dispatch| {
        let Some(with) = dispatch.downcast_ref::<WithSpanState>() else {
            return;
        };
        let mut found = false;
        if let Some(id) = dispatch.current_span().id() {
            (with.nearest)(dispatch, id, &mut |state| {
                found = true;
                f(&with.pipeline, Some(state));
            });
        }
        if !found {
            f(&with.pipeline, None);
        }
    });
}

/// Raises `current` to `status` as the SDK orders them (Unset < Error <
/// Ok): Ok is final, and a first error's description is kept.
pub(crate) fn raise_status(current: &mut Status, status: Status) {
    if status > *current {
        *current = status;
    }
}

/// Runs `f` on `span`'s state; nothing when the span is disabled or not
/// traced by a Corral pipeline.
pub(crate) fn with_state(
    span: &tracing::Span,
    mut f: impl FnMut(&Arc<SpanPipeline>, &mut SpanState),
) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(with) = dispatch.downcast_ref::<WithSpanState>() {
            (with.lookup)(dispatch, id, &mut |state| f(&with.pipeline, state));
        }
    });
}

/// OpenTelemetry operations on a `tracing` span. Each is a no-op on a span
/// the pipeline does not trace (tracing off, or filtered out).
pub trait OpenTelemetrySpanExt {
    /// Makes `cx` (a remote caller's context, or a session's baggage) this
    /// span's parent. Call before the span has children.
    fn set_parent(&self, cx: Context);
    /// Makes `cx` this span's parent within session `session_id`: the same
    /// as `set_parent(session_context(&cx, session_id))`, but the session's
    /// baggage is built only if a context is asked for (an outbound call).
    /// Call before the span has children.
    fn set_session_parent(&self, cx: Context, session_id: &str);
    /// Puts this span in session `session_id`, under the parent it has: it
    /// and the spans made under it are tagged with the id, and outbound
    /// calls from them carry it as baggage (built only when asked for).
    /// Call before the span has children.
    fn set_session(&self, session_id: &str);
    /// This span's own trace and span id (no baggage), for a `traceparent`.
    fn span_context(&self) -> SpanContext;
    /// Links this span to another span, in this trace or another.
    fn add_link(&self, span_context: SpanContext);
    /// This span's context: its trace, span id and baggage, for propagation.
    fn context(&self) -> Context;
    /// Sets an attribute that is not one of the span's declared fields.
    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>);
    /// Sets several such attributes with one look-up of the span (each
    /// `set_attribute` finds the span in the registry again).
    fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>);
    /// Sets the span's status.
    fn set_status(&self, status: Status);
    /// Adds an event with `attributes`, timestamped now.
    fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>);
}

impl OpenTelemetrySpanExt for tracing::Span {
    fn set_parent(&self, cx: Context) {
        let mut cx = Some(cx);
        with_state(self, |pipeline, state| {
            if let Some(cx) = cx.take() {
                pipeline.set_parent(state, cx);
            }
        });
    }

    fn set_session_parent(&self, cx: Context, session_id: &str) {
        let mut cx = Some(cx);
        with_state(self, |pipeline, state| {
            if let Some(cx) = cx.take() {
                pipeline.set_parent(state, cx);
                state.set_session(session_id);
            }
        });
    }

    fn set_session(&self, session_id: &str) {
        with_state(self, |_, state| state.set_session(session_id));
    }

    fn span_context(&self) -> SpanContext {
        let mut span_context = None;
        with_state(self, |_, state| {
            span_context = Some(state.span_context.clone());
        });
        span_context.unwrap_or_else(SpanContext::empty_context)
    }

    fn add_link(&self, span_context: SpanContext) {
        let mut link = Some(Link::with_context(span_context));
        with_state(self, |_, state| {
            state.recording.links.extend(link.take());
        });
    }

    fn context(&self) -> Context {
        let mut cx = None;
        with_state(self, |_, state| cx = Some(state.context()));
        cx.unwrap_or_default()
    }

    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>) {
        let mut attribute = Some(KeyValue::new(key, value));
        with_state(self, |_, state| {
            state.recording.attributes.extend(attribute.take());
        });
    }

    fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>) {
        let mut attributes = Some(attributes);
        with_state(self, |_, state| {
            state
                .recording
                .attributes
                .extend(attributes.take().into_iter().flatten());
        });
    }

    fn set_status(&self, status: Status) {
        let mut status = Some(status);
        with_state(self, |_, state| {
            if let Some(status) = status.take() {
                raise_status(&mut state.recording.status, status);
            }
        });
    }

    fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        let mut event = Some(Event::new(
            name,
            std::time::SystemTime::now(),
            attributes,
            0,
        ));
        with_state(self, |_, state| {
            state.recording.events.extend(event.take());
        });
    }
}
