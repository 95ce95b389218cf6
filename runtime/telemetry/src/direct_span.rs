//! Spans the host records straight into the pipeline, without `tracing`.
//!
//! The agent loop opens a span for every step, model call, tool call and
//! memory operation. As `tracing` spans, each one costs a registry slot,
//! the per-layer filter's bookkeeping, field visiting, an extension-map
//! entry and an enter and exit on every poll: about 2 µs per span on the
//! tracing bench (`cargo bench -p corral-host --bench tracing`), on caches
//! the sandbox has just evicted, ~7% of an agent step. A [`DirectSpan`] is
//! one allocation holding the record Corral's layer keeps for its own spans
//! ([`SpanState`]), exported the same way when its last handle drops.
//!
//! Exported with its tree: a span opened under another direct span is held
//! when it ends until the top span of its tree ends, and the tree's spans
//! are encoded and freed in one pass ([`crate::held_spans`]).
//!
//! Trade-off: other `tracing` layers (a log formatter) do not see direct
//! spans; a log line written inside one shows the enclosing `tracing` span.
//! Code running inside [`DirectSpan::in_scope`] still finds the direct span
//! as its parent wherever the trace is concerned: `tracing` spans it opens
//! are the direct span's children, `tracing` events on the current span
//! become the direct span's events, and [`crate::inject_current`] and
//! [`crate::current_trace_headers`] propagate its context.

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status};
use opentelemetry::{Context, Key, KeyValue, Value};
use parking_lot::Mutex;

use crate::held_spans::HeldSpans;
use crate::span_ext::{raise_status, with_current_state, with_state};
use crate::span_layer::{Parent, Recording, SpanPipeline, SpanState};

/// What a direct span starts with: its name and attributes.
pub type SpanStart = (Cow<'static, str>, Vec<KeyValue>);

/// A direct span's attributes: `first`, with room for the `later` ones
/// its caller adds while it is open and the session tags added at close,
/// so the list is allocated once for the span's life.
pub fn span_attributes<const N: usize>(first: [KeyValue; N], later: usize) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(N + later + crate::span_layer::SESSION_TAGS);
    attributes.extend(first);
    attributes
}

/// A span name `"{operation} {subject}"` (`chat claude`, `execute_tool
/// search`), as the GenAI conventions name spans; one exact allocation.
///
/// Pushed by hand: `format!` cost several times the instructions, and
/// `[..].concat()`'s generic join, cold between guest calls, missed the
/// instruction cache ~36 times per invocation on the tracing bench
/// (callgrind's cache simulation), 7% of what the spans themselves miss.
pub fn span_name(operation: &str, subject: &str) -> Cow<'static, str> {
    let mut name = String::with_capacity(operation.len() + 1 + subject.len());
    name.push_str(operation);
    name.push(' ');
    name.push_str(subject);
    Cow::Owned(name)
}

/// A span recorded without `tracing`: opened under a `tracing` span of a
/// Corral pipeline or under another direct span, ended (and exported, if
/// sampled) when its last clone drops. Disabled, and free, when its parent
/// is not traced.
#[derive(Clone, Default)]
pub struct DirectSpan(Option<Arc<Shared>>);

impl std::fmt::Debug for DirectSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectSpan")
            .field("recording", &self.is_recording())
            .finish_non_exhaustive()
    }
}

/// One direct span's record, shared by its clones.
struct Shared {
    pipeline: Arc<SpanPipeline>,
    /// `None` only while the span is being exported, as it drops.
    state: Mutex<Option<SpanState>>,
    /// The ended spans of this span's tree, exported when its top ends.
    tree: Arc<HeldSpans>,
    /// Whether this span is its tree's top (its parent is not a direct span).
    top: bool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(state) = self.state.get_mut().take() {
            let end = SystemTime::now();
            if self.top {
                self.tree.close(&self.pipeline, state, end);
            } else {
                self.tree.end(&self.pipeline, state, end);
            }
        }
    }
}

impl DirectSpan {
    /// A span under `parent`; `start` runs only if `parent` is one of a
    /// Corral pipeline's spans, so a disabled span costs no formatting.
    pub fn under(parent: &tracing::Span, start: impl FnOnce() -> SpanStart) -> Self {
        let mut start = Some(start);
        let mut made = None;
        with_state(parent, |pipeline, state| {
            made = start
                .take()
                .map(|start| Shared::top(pipeline, Parent::Local(state), start()));
        });
        Self(made)
    }

    /// A span under the current span, as a contextual `tracing` span's
    /// parent is found; `start` runs only if it records.
    ///
    /// The parent is the direct span whose scope the caller runs in, else
    /// the nearest traced span among the current `tracing` span and its
    /// ancestors; with neither, the span starts a trace under the current
    /// OpenTelemetry context (a remote parent, or none). Disabled when the
    /// current subscriber runs no Corral pipeline.
    pub fn in_current(start: impl FnOnce() -> SpanStart) -> Self {
        if let Some(direct) = scoped(None) {
            return direct.child(start);
        }
        let mut start = Some(start);
        let mut made = None;
        with_current_state(|pipeline, state| {
            let parent = match state {
                Some(state) => Parent::Local(state),
                None => Parent::Context(Context::current()),
            };
            made = start
                .take()
                .map(|start| Shared::top(pipeline, parent, start()));
        });
        Self(made)
    }

    /// A child of this span; `start` runs only if this span records.
    pub fn child(&self, start: impl FnOnce() -> SpanStart) -> Self {
        let Some(shared) = &self.0 else {
            return Self(None);
        };
        let guard = shared.state.lock();
        let made = guard.as_ref().map(|parent| {
            Shared::new(
                &shared.pipeline,
                Parent::Local(parent),
                start(),
                shared.tree.clone(),
                false,
            )
        });
        Self(made)
    }

    /// Whether this span records (its parent was traced).
    pub fn is_recording(&self) -> bool {
        self.0.is_some()
    }

    /// Sets an attribute.
    pub fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>) {
        if self.is_recording() {
            let attribute = KeyValue::new(key, value);
            self.with_state(|state| state.recording.attributes.push(attribute));
        }
    }

    /// Sets several attributes under one lock.
    pub fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>) {
        self.with_state(|state| state.recording.attributes.extend(attributes));
    }

    /// Adds an event with `attributes`, timestamped now.
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        if self.is_recording() {
            let event = Event::new(name, std::time::SystemTime::now(), attributes, 0);
            self.with_state(|state| state.recording.events.push(event));
        }
    }

    /// Sets the span's status (Unset < Error < Ok, as the SDK orders them:
    /// Ok is final, and a first error's description is kept).
    pub fn set_status(&self, status: Status) {
        self.with_state(|state| raise_status(&mut state.recording.status, status));
    }

    /// Marks the span failed: `error.type`, error status and an `exception`
    /// event (what [`crate::record_error`] and an `error.type` field do for
    /// a `tracing` span), under one lock; the message is copied once, for
    /// the event, and the type not at all.
    pub fn record_error(&self, error_type: &'static str, message: String) {
        if !self.is_recording() {
            return;
        }
        let event = Event::new(
            "exception",
            SystemTime::now(),
            vec![
                KeyValue::new("exception.type", error_type),
                KeyValue::new("exception.message", message.clone()),
            ],
            0,
        );
        self.with_state(|state| {
            let recording = &mut state.recording;
            recording
                .attributes
                .push(KeyValue::new("error.type", error_type));
            raise_status(&mut recording.status, Status::error(message));
            recording.events.push(event);
        });
    }

    /// Puts this span, and the spans made under it from now on, in session
    /// `session_id` (see [`crate::OpenTelemetrySpanExt::set_session`]).
    pub fn set_session(&self, session_id: &str) {
        self.with_state(|state| state.set_session(session_id));
    }

    /// This span's W3C `traceparent`, when it records.
    pub fn traceparent(&self) -> Option<String> {
        if !self.is_recording() {
            return None;
        }
        crate::propagation::traceparent(self.span_context())
    }

    /// This span's context: its trace, span id and baggage, for propagation.
    pub fn context(&self) -> Context {
        let mut cx = None;
        self.with_state(|state| cx = Some(state.context()));
        cx.unwrap_or_default()
    }

    /// This span's own trace and span id (no baggage).
    pub fn span_context(&self) -> SpanContext {
        let mut span_context = None;
        self.with_state(|state| span_context = Some(state.span_context.clone()));
        span_context.unwrap_or_else(SpanContext::empty_context)
    }

    /// `future` inside this span: while it is polled, `tracing` spans it
    /// opens on the current span are this span's children, events on the
    /// current span are this span's, and outbound calls propagate this
    /// span's context.
    pub fn in_scope<F: Future>(&self, future: F) -> InScope<F> {
        InScope {
            span: self.0.clone(),
            future,
        }
    }

    /// Runs `f` inside this span's scope: the synchronous
    /// [`DirectSpan::in_scope`] (a `tracing` span `f` opens on the current
    /// span is this span's child).
    pub fn in_scope_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut home = self.0.clone();
        let Some(span) = home.take() else {
            return f();
        };
        let _scope = ScopeGuard::enter(span, &mut home);
        f()
    }

    /// Runs `f` on the span's state; nothing when it is disabled.
    pub(crate) fn with_state(&self, f: impl FnOnce(&mut SpanState)) {
        if let Some(shared) = &self.0
            && let Some(state) = shared.state.lock().as_mut()
        {
            f(state);
        }
    }

    /// A `tracing` span's state under this one.
    pub(crate) fn start_child(&self, recording: Recording) -> Option<SpanState> {
        let shared = self.0.as_ref()?;
        let guard = shared.state.lock();
        let parent = guard.as_ref()?;
        Some(shared.pipeline.start(Parent::Local(parent), recording))
    }
}

impl Shared {
    /// The top span of a new tree.
    fn top(pipeline: &Arc<SpanPipeline>, parent: Parent<'_>, start: SpanStart) -> Arc<Self> {
        Self::new(pipeline, parent, start, Arc::default(), true)
    }

    fn new(
        pipeline: &Arc<SpanPipeline>,
        parent: Parent<'_>,
        start: SpanStart,
        tree: Arc<HeldSpans>,
        top: bool,
    ) -> Arc<Self> {
        let (name, mut attributes) = start;
        // Room for the session tags added at close.
        attributes.reserve(crate::span_layer::SESSION_TAGS);
        let recording = Recording::new(name, SpanKind::Internal, attributes, Status::Unset);
        Arc::new(Self {
            pipeline: pipeline.clone(),
            state: Mutex::new(Some(pipeline.start(parent, recording))),
            tree,
            top,
        })
    }
}

pin_project_lite::pin_project! {
    /// A future polled inside a [`DirectSpan`]'s scope
    /// ([`DirectSpan::in_scope`]). A struct, not an `async fn`, so the
    /// future is polled where it lies: an `async fn` would move it (an
    /// invocation's future is kilobytes) into its own state first.
    ///
    /// It keeps a handle to the span, which each poll moves into the
    /// thread's scope and back: no reference count is touched per poll.
    #[must_use = "futures do nothing unless polled"]
    pub struct InScope<F> {
        span: Option<Arc<Shared>>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for InScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(span) = this.span.take() else {
            return this.future.poll(cx);
        };
        let _scope = ScopeGuard::enter(span, this.span);
        this.future.poll(cx)
    }
}

/// The direct span a future is polled in, on this thread.
struct Scope {
    /// How many of Corral's `tracing` spans were entered on this thread when
    /// the poll began: while no other has been entered, the direct span is
    /// the current span.
    depth: u32,
    span: Arc<Shared>,
}

thread_local! {
    static SCOPE: Cell<Option<Scope>> = const { Cell::new(None) };
    /// Corral's `tracing` spans entered and not yet exited on this thread,
    /// counted by its layer. Kept here, not read from the registry's span
    /// stack, because every poll reads it: through the dispatcher that read
    /// is a look-up of the default subscriber, its span stack and a slab.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Counts one of Corral's `tracing` spans entered on this thread.
pub(crate) fn entered() {
    let _ = DEPTH.try_with(|depth| depth.set(depth.get().wrapping_add(1)));
}

/// Counts one of Corral's `tracing` spans exited on this thread.
pub(crate) fn exited() {
    let _ = DEPTH.try_with(|depth| depth.set(depth.get().wrapping_sub(1)));
}

/// Puts a span's scope in place for one poll and, when dropped, restores
/// the one before and hands the span back to its [`InScope`] (nothing while
/// the thread's locals are being torn down). Inlined into each poll: the
/// scope is entered on every wake of an invocation, when its code is cold.
struct ScopeGuard<'a> {
    previous: Option<Scope>,
    home: &'a mut Option<Arc<Shared>>,
}

impl<'a> ScopeGuard<'a> {
    #[inline]
    fn enter(span: Arc<Shared>, home: &'a mut Option<Arc<Shared>>) -> Self {
        let depth = DEPTH.try_with(Cell::get).unwrap_or(0);
        let scope = Some(Scope { depth, span });
        let previous = SCOPE.try_with(|cell| cell.replace(scope)).ok().flatten();
        Self { previous, home }
    }
}

impl Drop for ScopeGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let previous = self.previous.take();
        if let Ok(mine) = SCOPE.try_with(|cell| cell.replace(previous)) {
            *self.home = mine.map(|scope| scope.span);
        }
    }
}

/// The direct span the running code is in, unless one of Corral's
/// `tracing` spans was entered inside it (that span is then the current
/// one, until it exits). With `pipeline`, only a span of that pipeline.
pub(crate) fn scoped(pipeline: Option<&SpanPipeline>) -> Option<DirectSpan> {
    let depth = DEPTH.try_with(Cell::get).ok()?;
    SCOPE
        .try_with(|cell| {
            let scope = cell.take();
            let found = scope
                .as_ref()
                .filter(|scope| scope.depth == depth)
                .filter(|scope| pipeline.is_none_or(|p| std::ptr::eq(p, &*scope.span.pipeline)))
                .map(|scope| DirectSpan(Some(scope.span.clone())));
            cell.set(scope);
            found
        })
        .ok()
        .flatten()
}

/// The context outbound calls from the running code carry: the direct span
/// it is in, else the current `tracing` span's.
pub(crate) fn current_context() -> Context {
    use crate::OpenTelemetrySpanExt;
    match scoped(None) {
        Some(direct) => direct.context(),
        None => tracing::Span::current().context(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceContextExt};
    use opentelemetry_sdk::trace::SpanData;

    use super::*;
    use crate::OpenTelemetrySpanExt;
    use crate::test_pipeline::{Kept, attr, named, names};

    /// The `traceparent` among W3C header pairs.
    fn traceparent(headers: &[(String, String)]) -> String {
        headers
            .iter()
            .find(|(k, _)| k == "traceparent")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn start(name: &'static str) -> impl FnOnce() -> SpanStart {
        move || (name.into(), Vec::new())
    }

    #[tokio::test]
    async fn direct_spans_join_the_trace_and_stand_in_for_the_current_span() {
        let kept = Kept::default();
        let _default = tracing::dispatcher::set_default(&kept.dispatch());
        let root = tracing::info_span!("invoke");
        root.set_session("s-1");
        let step = DirectSpan::under(&root, || ("step 1".into(), vec![KeyValue::new("n", 1)]));
        let call = step.child(start("chat"));
        let (headers, nested_parent) = crate::in_span(
            &root,
            call.in_scope(async {
                tokio::task::yield_now().await;
                tracing::info!(detail = "x", "retrying");
                let nested = tracing::info_span!("http");
                let nested_parent = nested.span_context();
                let headers = crate::current_trace_headers();
                drop(nested);
                (headers, nested_parent)
            }),
        )
        .await;
        call.set_attributes([KeyValue::new("tokens", 3)]);
        call.record_error("timeout", "no answer".into());
        call.record_error("later", "kept out".into());
        drop((call, step, root));

        let spans = kept.take();
        assert_eq!(spans.len(), 4, "{spans:?}");
        let (invoke, step, chat, http) = (
            named(&spans, "invoke"),
            named(&spans, "step 1"),
            named(&spans, "chat"),
            named(&spans, "http"),
        );
        let trace = invoke.span_context.trace_id();
        for span in [step, chat, http] {
            assert_eq!(span.span_context.trace_id(), trace);
            assert_eq!(
                attr(span, "session.id").map(Value::as_str).as_deref(),
                Some("s-1"),
                "{span:?}"
            );
        }
        assert_eq!(step.parent_span_id, invoke.span_context.span_id());
        assert_eq!(chat.parent_span_id, step.span_context.span_id());
        // A `tracing` span opened inside the scope is the direct span's child.
        assert_eq!(http.parent_span_id, chat.span_context.span_id());
        assert_eq!(nested_parent.span_id(), http.span_context.span_id());
        assert_eq!(attr(step, "n"), Some(&Value::I64(1)));
        assert_eq!(attr(chat, "tokens"), Some(&Value::I64(3)));
        assert_eq!(
            attr(chat, "error.type").map(Value::as_str).as_deref(),
            Some("timeout")
        );
        assert_eq!(chat.status, Status::error("no answer"), "the first error's");
        let events: Vec<&str> = chat.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(
            events,
            ["retrying", "exception", "exception"],
            "the event on the current span"
        );
        // Outbound calls carry the direct span's context and the session.
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let expected = format!("00-{}-{}-01", trace, chat.span_context.span_id());
        assert_eq!(header("traceparent"), expected);
        assert!(header("baggage").contains("session.id=s-1"), "{headers:?}");
    }

    #[tokio::test]
    async fn outside_its_scope_or_under_an_entered_span_the_current_span_is_the_tracing_one() {
        let kept = Kept::default();
        let _default = tracing::dispatcher::set_default(&kept.dispatch());
        let root = tracing::info_span!("invoke");
        let tool = DirectSpan::under(&root, start("tool"));
        let inner = tracing::info_span!(parent: &root, "inner");
        let (inner_context, explicit) = crate::in_span(
            &root,
            tool.in_scope(async {
                // A span with an explicit parent keeps it.
                let explicit = tracing::info_span!(parent: &root, "explicit");
                // A `tracing` span entered inside the scope takes over.
                let headers =
                    crate::in_span(&inner, async { crate::current_trace_headers() }).await;
                (headers, explicit.span_context())
            }),
        )
        .await;
        let outside = crate::in_span(&root, async { crate::current_trace_headers() }).await;
        let inner_id = inner.span_context().span_id().to_string();
        let root_id = root.span_context().span_id().to_string();
        assert!(traceparent(&inner_context).contains(&inner_id));
        assert!(traceparent(&outside).contains(&root_id));
        drop((tool, inner, root));
        let spans = kept.take();
        let explicit_span = named(&spans, "explicit");
        assert_eq!(explicit_span.span_context.span_id(), explicit.span_id());
        assert_eq!(
            explicit_span.parent_span_id,
            named(&spans, "invoke").span_context.span_id()
        );
    }

    #[tokio::test]
    async fn nested_scopes_and_untraced_spans_inside_them() {
        let kept = Kept::default();
        // Corral's filter: spans of other targets are not traced.
        let _default = tracing::dispatcher::set_default(&kept.filtered_dispatch());
        let root = DirectSpan::in_current(start("root"));
        let child = root.child(start("child"));
        let grandchild = root
            .in_scope(async {
                child
                    .in_scope(async {
                        // Another crate's span, entered: not traced, so the
                        // direct span stays the parent.
                        let other = tracing::info_span!(target: "hyper", "connect");
                        let _entered = other.enter();
                        DirectSpan::in_current(start("grandchild"))
                    })
                    .await
            })
            .await;
        // Back in the outer scope only.
        let sibling = root
            .in_scope(async { DirectSpan::in_current(start("sibling")) })
            .await;
        drop((grandchild, sibling, child, root));
        let spans = kept.take();
        let id = |name: &str| named(&spans, name).span_context.span_id();
        assert_eq!(named(&spans, "root").parent_span_id, SpanId::INVALID);
        assert_eq!(named(&spans, "child").parent_span_id, id("root"));
        assert_eq!(named(&spans, "grandchild").parent_span_id, id("child"));
        assert_eq!(named(&spans, "sibling").parent_span_id, id("root"));
        assert!(spans.iter().all(|s: &SpanData| s.name != "connect"));
    }

    #[test]
    fn in_current_looks_past_untraced_spans_and_starts_traces_under_remote_parents() {
        let kept = Kept::default();
        tracing::dispatcher::with_default(&kept.filtered_dispatch(), || {
            let request = tracing::info_span!(target: "corral_server", "request");
            let other = tracing::info_span!(target: "tower", "layer");
            let under = request.in_scope(|| other.in_scope(|| DirectSpan::in_current(start("a"))));
            drop(under);
            let remote = crate::extract_context(&{
                let mut headers = http::HeaderMap::new();
                headers.insert(
                    "traceparent",
                    http::HeaderValue::from_static(
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    ),
                );
                headers
            });
            let _attached = remote.attach();
            drop(DirectSpan::in_current(start("b")));
            drop(request);
        });
        let spans = kept.take();
        assert_eq!(
            named(&spans, "a").parent_span_id,
            named(&spans, "request").span_context.span_id(),
            "the nearest traced ancestor"
        );
        let b = named(&spans, "b");
        assert_eq!(
            b.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(b.parent_span_is_remote);
    }

    #[test]
    fn a_span_under_an_untraced_parent_records_nothing() {
        let kept = Kept::default();
        tracing::dispatcher::with_default(&kept.dispatch(), || {
            let span = DirectSpan::under(&tracing::Span::none(), || {
                unreachable!("not started when the parent is not traced")
            });
            assert!(!span.is_recording());
            let child = span.child(|| unreachable!("nor its children"));
            child.set_attribute("k", "v");
            child.record_error("e", "m".into());
            assert!(!child.context().span().span_context().is_valid());
        });
        // With no Corral pipeline, nothing records either.
        let none = DirectSpan::in_current(|| unreachable!("no pipeline"));
        assert!(!none.is_recording());
        assert!(kept.take().is_empty());
    }

    #[tokio::test]
    async fn a_tree_of_direct_spans_is_exported_when_its_top_ends() {
        let kept = Kept::default();
        let _default = tracing::dispatcher::set_default(&kept.dispatch());
        let invoke = DirectSpan::in_current(start("invoke"));
        let step = invoke.child(start("step"));
        let chat = step.child(start("chat"));
        // A `tracing` span inside a held span's scope is exported at its
        // own close, as every `tracing` span is.
        chat.in_scope(async { drop(tracing::info_span!("http")) })
            .await;
        assert_eq!(names(&kept.take()), ["http"]);
        drop(chat);
        tokio::task::yield_now().await;
        drop(step);
        assert!(kept.take().is_empty(), "held until the top ends");
        let tool = invoke.child(start("tool"));
        drop(invoke);
        let spans = kept.take();
        assert_eq!(names(&spans), ["chat", "step", "invoke"]);
        let (chat, step, invoke) = (&spans[0], &spans[1], &spans[2]);
        assert!(chat.end_time <= step.end_time && step.end_time <= invoke.end_time);
        assert_eq!(chat.parent_span_id, step.span_context.span_id());
        assert_eq!(step.parent_span_id, invoke.span_context.span_id());
        // A span that outlives its tree's top leaves as it ends.
        drop(tool);
        assert_eq!(kept.take().len(), 1);
    }

    #[test]
    fn a_tracing_span_opened_in_a_synchronous_scope_is_the_direct_spans_child() {
        let kept = Kept::default();
        tracing::dispatcher::with_default(&kept.dispatch(), || {
            let top = DirectSpan::in_current(start("top"));
            drop(top.in_scope_sync(|| tracing::info_span!("start")));
            drop(tracing::info_span!("outside"));
            drop(top);
        });
        let spans = kept.take();
        let top = named(&spans, "top");
        assert_eq!(
            named(&spans, "start").parent_span_id,
            top.span_context.span_id()
        );
        assert_ne!(
            named(&spans, "outside").span_context.trace_id(),
            top.span_context.trace_id(),
            "out of the scope, a new trace"
        );
    }
}
