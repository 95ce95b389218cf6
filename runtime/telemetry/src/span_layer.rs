//! The `tracing` layer that turns Corral's spans into exported OpenTelemetry
//! spans.
//!
//! Written here instead of using `tracing-opentelemetry` because that layer
//! builds every span twice — a `SpanBuilder` in the registry, then an SDK
//! span object (behind its own mutex, through the tracer, sampler and every
//! processor's `on_start`) when the span or a child first needs its context —
//! and that cost ~7% of an agent step on the tracing bench. This layer keeps
//! one record per span in the registry's extensions and hands the sinks a
//! borrowed view of it ([`FinishedSpan`]) at close. Sampling
//! (`OTEL_TRACES_SAMPLER`), id generation and span limits are the SDK's own.

use std::any::TypeId;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState,
};
use opentelemetry::{Context as OtelContext, Key, KeyValue};
use opentelemetry_sdk::trace::{Config, IdGenerator, SamplingDecision, ShouldSample, SpanLimits};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::direct_span;
use crate::finished_span::{FinishedSpan, FinishedSpans, within};
use crate::propagation::session_context;
use crate::session::{CONVERSATION_ID_KEY, SESSION_ID_KEY};
use crate::sinks::SpanSinks;
use crate::span_ext::WithSpanState;
use crate::span_fields::{EventFields, SpanFields};

/// What every span of one pipeline shares: where spans go and how they are
/// sampled, identified and limited.
#[derive(Debug)]
pub(crate) struct SpanPipeline {
    sinks: SpanSinks,
    sampler: Box<dyn ShouldSample>,
    ids: Box<dyn IdGenerator>,
    limits: SpanLimits,
}

impl SpanPipeline {
    /// A pipeline feeding `sinks`, sampling as `OTEL_TRACES_SAMPLER` says
    /// (default: parent-based, always on) within the `OTEL_SPAN_*_LIMIT`s.
    pub(crate) fn new(sinks: SpanSinks) -> Self {
        let config = Config::default();
        Self {
            sinks,
            sampler: config.sampler,
            ids: config.id_generator,
            limits: config.span_limits,
        }
    }

    /// Where finished spans go.
    pub(crate) fn sinks(&self) -> &SpanSinks {
        &self.sinks
    }
}

/// One span's OpenTelemetry side, kept in the registry's extensions.
#[derive(Debug)]
pub(crate) struct SpanState {
    /// This span's identity, as propagated to children and outbound calls.
    pub(crate) span_context: SpanContext,
    /// The parent's context: baggage (and, for a root, the remote parent).
    parent_cx: OtelContext,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    /// The session id, tagged on the span at close: from baggage, or set
    /// with [`SpanState::set_session`]. Shared: a child copies a pointer.
    session: Option<Arc<str>>,
    /// Whether `parent_cx`'s baggage already carries `session`; if not,
    /// [`SpanState::context`] adds it when first asked.
    session_in_baggage: bool,
    /// What is exported if the span is sampled.
    pub(crate) recording: Recording,
}

/// What a span exports. Kept for unsampled spans too, so a span re-rooted
/// under a sampled caller ([`SpanPipeline::set_parent`]) loses nothing.
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    start: SystemTime,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) events: Vec<Event>,
    /// Links; the span limit is applied at export.
    pub(crate) links: Vec<Link>,
    pub(crate) status: Status,
}

impl SpanState {
    /// This span's context for propagation: its parent's baggage (with the
    /// session's id) plus its own span context.
    pub(crate) fn context(&mut self) -> OtelContext {
        if !self.session_in_baggage
            && let Some(session) = &self.session
        {
            self.parent_cx = session_context(&self.parent_cx, session);
            self.session_in_baggage = true;
        }
        self.parent_cx
            .with_remote_span_context(self.span_context.clone())
    }

    /// Puts this span, and the spans made under it from now on, in session
    /// `session_id`: they are tagged with it, and their propagated context
    /// carries it as baggage. That baggage is built only when a context is
    /// asked for (an outbound call), so spans that never leave the process
    /// do not pay for it. If the caller's baggage is already full
    /// (OpenTelemetry's 64 entries or 8 KiB), the spans are still tagged
    /// but the id cannot be propagated.
    pub(crate) fn set_session(&mut self, session_id: &str) {
        if self.session.as_deref() != Some(session_id) {
            self.session = Some(Arc::from(session_id));
            self.session_in_baggage = false;
        }
    }
}

/// Where a new span's trace comes from.
pub(crate) enum Parent<'a> {
    /// One of this layer's spans.
    Local(&'a SpanState),
    /// An OpenTelemetry context (a remote caller, baggage, or nothing).
    Context(OtelContext),
}

/// A span's place in its trace.
struct Placement {
    trace_id: TraceId,
    flags: TraceFlags,
    trace_state: TraceState,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    parent_cx: OtelContext,
    session: Option<Arc<str>>,
    session_in_baggage: bool,
}

impl SpanPipeline {
    /// Where a span with `recording` goes under `parent`, sampling it if
    /// `parent` is not one of this layer's spans.
    fn place(&self, parent: Parent<'_>, recording: &Recording) -> Placement {
        match parent {
            // Every sampler OTEL_TRACES_SAMPLER can name decides a local
            // child as its parent was decided (parent-based ones by
            // definition; always_on/off and traceidratio because the trace
            // id is the same), so the sampler is not consulted.
            Parent::Local(parent) => Placement {
                trace_id: parent.span_context.trace_id(),
                flags: parent.span_context.trace_flags(),
                trace_state: parent.span_context.trace_state().clone(),
                parent_span_id: parent.span_context.span_id(),
                parent_is_remote: false,
                parent_cx: parent.parent_cx.clone(),
                session: parent.session.clone(),
                session_in_baggage: parent.session_in_baggage,
            },
            Parent::Context(cx) => {
                let remote = cx.span().span_context().clone();
                let (trace_id, parent_span_id, parent_is_remote) = if remote.is_valid() {
                    (remote.trace_id(), remote.span_id(), remote.is_remote())
                } else {
                    (self.ids.new_trace_id(), SpanId::INVALID, false)
                };
                let decision = self.sampler.should_sample(
                    Some(&cx),
                    trace_id,
                    &recording.name,
                    &recording.kind,
                    &recording.attributes,
                    &recording.links,
                );
                let flags = match decision.decision {
                    SamplingDecision::RecordAndSample => TraceFlags::SAMPLED,
                    SamplingDecision::Drop | SamplingDecision::RecordOnly => TraceFlags::default(),
                };
                let session = cx
                    .baggage()
                    .get(SESSION_ID_KEY)
                    .map(|v| Arc::from(v.as_str()));
                Placement {
                    trace_id,
                    flags,
                    trace_state: decision.trace_state,
                    parent_span_id,
                    parent_is_remote,
                    parent_cx: cx,
                    session_in_baggage: session.is_some(),
                    session,
                }
            }
        }
    }

    /// The state of a new span with `recording` under `parent`.
    pub(crate) fn start(&self, parent: Parent<'_>, recording: Recording) -> SpanState {
        let placement = self.place(parent, &recording);
        let span_id = self.ids.new_span_id();
        Self::state(placement, span_id, recording)
    }

    fn state(placement: Placement, span_id: SpanId, recording: Recording) -> SpanState {
        SpanState {
            span_context: SpanContext::new(
                placement.trace_id,
                span_id,
                placement.flags,
                false,
                placement.trace_state,
            ),
            parent_cx: placement.parent_cx,
            parent_span_id: placement.parent_span_id,
            parent_is_remote: placement.parent_is_remote,
            session: placement.session,
            session_in_baggage: placement.session_in_baggage,
            recording,
        }
    }

    /// Re-roots `state` under `cx` (a remote caller or a session's baggage),
    /// keeping its span id and what it has recorded. Children made before
    /// this call keep the old trace.
    pub(crate) fn set_parent(&self, state: &mut SpanState, cx: OtelContext) {
        let placement = self.place(Parent::Context(cx), &state.recording);
        Self::reroot(state, placement);
    }

    /// Moves `state` to `placement`, keeping its span id and recording.
    fn reroot(state: &mut SpanState, placement: Placement) {
        let span_id = state.span_context.span_id();
        let recording = std::mem::replace(&mut state.recording, Recording::empty());
        *state = Self::state(placement, span_id, recording);
    }

    /// Exports a closed span if it is sampled and has somewhere to go.
    ///
    /// The sinks read the span where it lies ([`FinishedSpan`]) and it is
    /// dropped here once, on the thread that ended it.
    pub(crate) fn finish(&self, state: SpanState) {
        self.finish_at(state, SystemTime::now());
    }

    /// Whether a span with `state` is exported when it ends: sampled, with
    /// somewhere to go.
    pub(crate) fn exports(&self, state: &SpanState) -> bool {
        state.span_context.is_sampled() && !self.sinks.is_empty()
    }

    /// Exports a span that ended at `end` ([`SpanPipeline::finish`]).
    pub(crate) fn finish_at(&self, state: SpanState, end: SystemTime) {
        if self.exports(&state) {
            self.finish_all(&mut [(state, end)]);
        }
    }

    /// Exports `spans`, each exportable ([`SpanPipeline::exports`]) and
    /// paired with its end, in one pass: every sink takes them all at once
    /// (one lock of its queue, not one per span). The caller drops them.
    pub(crate) fn finish_all(&self, spans: &mut [(SpanState, SystemTime)]) {
        for (state, _) in spans.iter_mut() {
            if let Some(session) = state.session.take() {
                tag_session(&mut state.recording.attributes, session);
            }
        }
        self.sinks.on_end(&Ended {
            limits: &self.limits,
            spans,
        });
    }
}

/// Ended spans as the sinks read them, within the span limits.
struct Ended<'a> {
    limits: &'a SpanLimits,
    spans: &'a [(SpanState, SystemTime)],
}

impl FinishedSpans for Ended<'_> {
    fn for_each(&self, each: &mut dyn FnMut(&FinishedSpan<'_>)) {
        let limits = self.limits;
        for (state, end) in self.spans {
            let recording = &state.recording;
            let (attributes, dropped_attributes_count) =
                within(&recording.attributes, limits.max_attributes_per_span);
            let (events, dropped_events_count) =
                within(&recording.events, limits.max_events_per_span);
            let (links, dropped_links_count) = within(&recording.links, limits.max_links_per_span);
            each(&FinishedSpan {
                span_context: &state.span_context,
                parent_span_id: state.parent_span_id,
                parent_span_is_remote: state.parent_is_remote,
                span_kind: &recording.kind,
                name: &recording.name,
                start_time: recording.start,
                // A span ends when its last handle is dropped, not at its
                // last exit: timing every exit (each poll of an instrumented
                // future) cost more than the span itself. Corral's spans are
                // dropped with the work they time.
                end_time: *end,
                attributes,
                dropped_attributes_count,
                events,
                dropped_events_count,
                links,
                dropped_links_count,
                status: &recording.status,
            });
        }
    }
}

impl Recording {
    /// A recording started now.
    pub(crate) fn new(
        name: Cow<'static, str>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        status: Status,
    ) -> Self {
        Self {
            name,
            kind,
            start: SystemTime::now(),
            attributes,
            events: Vec::new(),
            links: Vec::new(),
            status,
        }
    }

    /// A placeholder while a recording moves.
    fn empty() -> Self {
        Self::new(
            Cow::Borrowed(""),
            SpanKind::Internal,
            Vec::new(),
            Status::Unset,
        )
    }
}

/// How many attributes [`tag_session`] may add.
pub(crate) const SESSION_TAGS: usize = 2;

/// Adds `session.id` and `gen_ai.conversation.id` unless the span set them
/// itself (its own fields win over baggage).
///
/// Writing the two from an encoding cached per invocation instead, so
/// no `KeyValue` is pushed, encoded and dropped per span, was tried
/// (4b1f525, reverted): ~2.7k fewer instructions an invocation, yet nine
/// paired runs of the tracing bench measured it 0.6 points slower, the
/// shifted code layout costing more than it saved.
fn tag_session(attributes: &mut Vec<KeyValue>, session: Arc<str>) {
    let (mut has_session, mut has_conversation) = (false, false);
    for kv in attributes.iter() {
        match kv.key.as_str() {
            SESSION_ID_KEY => has_session = true,
            CONVERSATION_ID_KEY => has_conversation = true,
            _ => {}
        }
    }
    if !has_conversation {
        attributes.push(KeyValue::new(
            Key::from_static_str(CONVERSATION_ID_KEY),
            session.clone(),
        ));
    }
    if !has_session {
        attributes.push(KeyValue::new(Key::from_static_str(SESSION_ID_KEY), session));
    }
}

/// The `tracing` layer of one pipeline.
pub(crate) struct SpanLayer<S> {
    with_state: WithSpanState,
    _subscriber: std::marker::PhantomData<fn(S)>,
}

impl<S> SpanLayer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    /// A layer sending spans through `pipeline`.
    pub(crate) fn new(pipeline: Arc<SpanPipeline>) -> Self {
        Self {
            with_state: WithSpanState::new::<S>(pipeline),
            _subscriber: std::marker::PhantomData,
        }
    }

    fn pipeline(&self) -> &SpanPipeline {
        &self.with_state.pipeline
    }
}

/// Runs `f` on `span`'s recording, if it is one of this layer's spans.
fn with_recording<S>(span: Option<SpanRef<'_, S>>, f: impl FnOnce(&mut Recording))
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if let Some(span) = span
        && let Some(state) = span.extensions_mut().get_mut::<SpanState>()
    {
        f(&mut state.recording);
    }
}

impl<S> Layer<S> for SpanLayer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        // Room for the session tags added at close, so they do not move
        // the attributes.
        let mut fields = SpanFields::with_capacity(attrs.fields().len() + SESSION_TAGS);
        attrs.record(&mut fields);
        let recording = Recording::new(
            fields
                .name
                .take()
                .unwrap_or(Cow::Borrowed(attrs.metadata().name())),
            fields.kind.take().unwrap_or(SpanKind::Internal),
            fields.attributes,
            fields.status.take().unwrap_or(Status::Unset),
        );
        // Inside a direct span's scope, a span opened on the current span is
        // the direct span's child.
        if attrs.is_contextual()
            && let Some(direct) = direct_span::scoped(Some(self.pipeline()))
        {
            if let Some(state) = direct.start_child(recording) {
                span.extensions_mut().insert(state);
            }
            return;
        }
        let parent_span = if attrs.is_contextual() {
            ctx.lookup_current()
        } else {
            attrs.parent().and_then(|parent| ctx.span(parent))
        };
        let state = {
            let extensions = parent_span.as_ref().map(|p| p.extensions());
            let parent = match extensions.as_ref().and_then(|e| e.get::<SpanState>()) {
                Some(state) => Parent::Local(state),
                None if attrs.is_contextual() => Parent::Context(OtelContext::current()),
                None => Parent::Context(OtelContext::new()),
            };
            self.pipeline().start(parent, recording)
        };
        span.extensions_mut().insert(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = SpanFields::with_capacity(0);
        values.record(&mut fields);
        with_recording(ctx.span(id), |recording| {
            if let Some(name) = fields.name {
                recording.name = name;
            }
            if let Some(kind) = fields.kind {
                recording.kind = kind;
            }
            if let Some(status) = fields.status {
                recording.status = status;
            }
            recording.attributes.append(&mut fields.attributes);
        });
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        let Some(link) = ctx.span(follows).and_then(|follows| {
            follows
                .extensions()
                .get::<SpanState>()
                .map(|s| Link::with_context(s.span_context.clone()))
        }) else {
            return;
        };
        with_recording(ctx.span(id), |recording| recording.links.push(link));
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        // Inside a direct span's scope, an event on the current span is the
        // direct span's.
        let direct = if event.is_contextual() {
            direct_span::scoped(Some(self.pipeline()))
        } else {
            None
        };
        let span = if direct.is_some() {
            None
        } else {
            ctx.event_span(event)
        };
        if direct.is_none() && span.is_none() {
            return;
        }
        let metadata = event.metadata();
        let mut fields = EventFields::new(metadata);
        event.record(&mut fields);
        let limit =
            usize::try_from(self.pipeline().limits.max_attributes_per_event).unwrap_or(usize::MAX);
        let is_error = *metadata.level() == tracing::Level::ERROR;
        let (status, otel_event) = fields.into_parts(limit);
        let apply = |recording: &mut Recording| {
            if let Some(status) = status {
                recording.status = status;
            } else if is_error && recording.status == Status::Unset {
                recording.status = Status::error("");
            }
            recording.events.push(otel_event);
        };
        match direct {
            Some(direct) => direct.with_state(|state| apply(&mut state.recording)),
            None => with_recording(span, apply),
        }
    }

    fn on_enter(&self, _: &Id, _: Context<'_, S>) {
        direct_span::entered();
    }

    fn on_exit(&self, _: &Id, _: Context<'_, S>) {
        direct_span::exited();
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let state = span.extensions_mut().remove::<SpanState>();
        if let Some(state) = state {
            self.pipeline().finish(state);
        }
    }

    // `tracing` finds per-layer state only through this unsafe hook (as
    // `tracing-error` and `tracing-opentelemetry` do).
    // SAFETY: each pointer points at `self` or a field of it, of exactly the
    // type `id` names, and is valid as long as `&self` is.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<WithSpanState>() {
            Some(&self.with_state as *const WithSpanState as *const ())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Value;
    use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
    use opentelemetry_sdk::trace::SpanData;

    use super::*;
    use crate::test_pipeline::{Kept, attr, named};
    use crate::{OpenTelemetrySpanExt, session_context};

    /// Runs `f` under a layer feeding one sink; returns the finished spans.
    fn traced(f: impl FnOnce()) -> Vec<SpanData> {
        let kept = Kept::default();
        tracing::dispatcher::with_default(&kept.dispatch(), f);
        kept.take()
    }

    #[test]
    fn remote_parent_baggage_and_children_share_the_trace() {
        let remote = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap_or(TraceId::INVALID),
            SpanId::from_hex("00f067aa0ba902b7").unwrap_or(SpanId::INVALID),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let mut propagated = None;
        let spans = traced(|| {
            let root = tracing::info_span!("root", otel.name = "invoke demo", otel.kind = "server");
            let caller = OtelContext::new().with_remote_span_context(remote.clone());
            root.set_parent(session_context(&caller, "s-1"));
            let _root = root.enter();
            let child = tracing::info_span!("child", session.id = "own");
            propagated = Some(child.context());
            child.set_attribute("late", 7_i64);
            drop(child);
        });
        assert_eq!(spans.len(), 2, "{spans:#?}");
        let (root, child) = (named(&spans, "invoke demo"), named(&spans, "child"));
        assert_eq!(root.span_kind, SpanKind::Server);
        assert_eq!(root.span_context.trace_id(), remote.trace_id());
        assert_eq!(root.parent_span_id, remote.span_id());
        assert!(root.parent_span_is_remote);
        assert_eq!(child.parent_span_id, root.span_context.span_id());
        assert!(!child.parent_span_is_remote);
        assert_eq!(child.span_context.trace_id(), remote.trace_id());
        assert_eq!(attr(root, SESSION_ID_KEY), Some(&Value::from("s-1")));
        assert_eq!(attr(root, CONVERSATION_ID_KEY), Some(&Value::from("s-1")));
        // A span's own field wins over baggage, and appears once.
        assert_eq!(attr(child, SESSION_ID_KEY), Some(&Value::from("own")));
        let sessions = child
            .attributes
            .iter()
            .filter(|kv| kv.key.as_str() == SESSION_ID_KEY);
        assert_eq!(sessions.count(), 1);
        assert_eq!(attr(child, "late"), Some(&Value::I64(7)));
        // The child's context carries its own span and the session baggage.
        let Some(cx) = propagated else {
            panic!("no context");
        };
        assert_eq!(
            cx.span().span_context().span_id(),
            child.span_context.span_id()
        );
        assert_eq!(
            opentelemetry::baggage::BaggageExt::baggage(&cx)
                .get(SESSION_ID_KEY)
                .map(|v| v.as_str().to_string()),
            Some("s-1".to_string())
        );
    }

    #[test]
    fn a_session_parent_tags_spans_and_reaches_the_baggage_when_asked() {
        let caller_baggage = |session: &'static str| {
            opentelemetry::baggage::BaggageExt::with_baggage(
                &OtelContext::new(),
                [
                    KeyValue::new("tenant", "t-1"),
                    KeyValue::new(SESSION_ID_KEY, session),
                ],
            )
        };
        let mut propagated = Vec::new();
        let spans = traced(|| {
            // The caller's baggage names another session: this one wins.
            let root = tracing::info_span!("root");
            root.set_session_parent(caller_baggage("other"), "s-1");
            let child = tracing::info_span!(parent: &root, "child");
            let grandchild = tracing::info_span!(parent: &child, "grandchild");
            // Asked for after its children were made: they build their own.
            propagated.push(grandchild.context());
            propagated.push(root.context());
            // A caller already in the session: its baggage is kept as is.
            let same = tracing::info_span!("same");
            same.set_session_parent(caller_baggage("s-2"), "s-2");
            propagated.push(same.context());
            // Another session under the same parent span (an invocation
            // inside a request span): same trace, the new session.
            let nested = tracing::info_span!(parent: &root, "nested");
            nested.set_session("s-3");
            let leaf = tracing::info_span!(parent: &nested, "leaf");
            propagated.push(leaf.context());
        });
        for name in ["root", "child", "grandchild"] {
            let span = named(&spans, name);
            assert_eq!(
                attr(span, SESSION_ID_KEY),
                Some(&Value::from("s-1")),
                "{name}"
            );
            assert_eq!(attr(span, CONVERSATION_ID_KEY), Some(&Value::from("s-1")));
        }
        assert_eq!(
            attr(named(&spans, "same"), SESSION_ID_KEY),
            Some(&Value::from("s-2"))
        );
        let baggage = |cx: &OtelContext, key: &str| {
            opentelemetry::baggage::BaggageExt::baggage(cx)
                .get(key)
                .map(|v| v.as_str().to_string())
        };
        let sessions: Vec<_> = propagated
            .iter()
            .map(|cx| baggage(cx, SESSION_ID_KEY))
            .collect();
        assert_eq!(
            sessions,
            [
                Some("s-1".into()),
                Some("s-1".into()),
                Some("s-2".into()),
                Some("s-3".into())
            ]
        );
        let (root, nested) = (named(&spans, "root"), named(&spans, "nested"));
        assert_eq!(nested.parent_span_id, root.span_context.span_id());
        assert_eq!(nested.span_context.trace_id(), root.span_context.trace_id());
        for name in ["nested", "leaf"] {
            let span = named(&spans, name);
            assert_eq!(
                attr(span, SESSION_ID_KEY),
                Some(&Value::from("s-3")),
                "{name}"
            );
        }
        for cx in &propagated {
            assert_eq!(baggage(cx, "tenant"), Some("t-1".into()));
        }
        assert_eq!(
            propagated[0].span().span_context().span_id(),
            named(&spans, "grandchild").span_context.span_id()
        );
    }

    #[test]
    fn events_status_links_and_recorded_fields() {
        let spans = traced(|| {
            let first = tracing::info_span!("first");
            let first_context = first.context().span().span_context().clone();
            drop(first);
            let span = tracing::info_span!("work", outcome = tracing::field::Empty);
            span.add_link(first_context.clone());
            let _entered = span.enter();
            tracing::info!(items = 3_u64, "started");
            span.record("outcome", "done");
            tracing::error!(error = "boom");
            drop(_entered);
            let ok = tracing::info_span!("ok");
            tracing::warn!(parent: &ok, "fine");
            ok.set_status(Status::Ok);
            ok.set_status(Status::error("late"));
            ok.add_event("custom", vec![KeyValue::new("k", "v")]);
            ok.set_attribute("one", 1_i64);
            ok.set_attributes([KeyValue::new("two", 2_i64), KeyValue::new("three", "3")]);
        });
        let work = named(&spans, "work");
        assert_eq!(attr(work, "outcome"), Some(&Value::from("done")));
        assert_eq!(work.status, Status::error("\"boom\""));
        let names: Vec<&str> = work.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(names, ["started", "exception"]);
        let started = &work.events[0];
        assert!(started.attributes.contains(&KeyValue::new("items", 3_i64)));
        assert!(started.attributes.contains(&KeyValue::new("level", "INFO")));
        assert_eq!(work.links.len(), 1);
        assert_eq!(
            work.links[0].span_context.span_id(),
            named(&spans, "first").span_context.span_id()
        );
        let ok = named(&spans, "ok");
        assert_eq!(ok.status, Status::Ok, "Ok is final");
        let names: Vec<&str> = ok.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(names, ["fine", "custom"]);
        assert_eq!(attr(ok, "one"), Some(&Value::from(1_i64)));
        assert_eq!(attr(ok, "two"), Some(&Value::from(2_i64)));
        assert_eq!(attr(ok, "three"), Some(&Value::from("3")));
    }

    #[test]
    fn spans_outside_a_pipeline_have_no_context() {
        let span = tracing::info_span!("untraced");
        assert!(!span.context().span().span_context().is_valid());
        span.set_parent(OtelContext::new());
        span.set_attribute("ignored", 1_i64);
        span.set_attributes([KeyValue::new("ignored", 2_i64)]);
    }
}
