//! The data of one session's wasmtime store.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use corral_sandbox::{SandboxCtx, SandboxState};
use std::borrow::Cow;

use corral_telemetry::{DirectSpan, KeyValue, SpanHandle, SpanStart, span_attributes};
use tokio::sync::mpsc;
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::host_calls::HostCalls;
use crate::memory::MemoryScope;
use crate::services::HostServices;
use crate::session_log::SessionLog;

/// Counters of one invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationStats {
    /// Model calls made.
    pub model_calls: u32,
    /// Tool calls made.
    pub tool_calls: u32,
    /// Prompt tokens used.
    pub input_tokens: u64,
    /// Completion tokens used.
    pub output_tokens: u64,
    /// Tool calls a policy denied.
    pub tool_denials: u32,
}

/// State that lives for one invocation.
pub(crate) struct InvocationScope {
    pub actor_id: String,
    pub request_id: String,
    pub stream: Option<mpsc::Sender<Vec<u8>>>,
    pub buffered: Vec<u8>,
    pub response_bytes: usize,
    pub stats: InvocationStats,
    /// The `invoke_agent` span (a replay's span when replaying).
    pub span: ScopeSpan,
    /// The current agent-loop step (opened by each model call). The loop's
    /// spans are direct spans: recorded without the `tracing` registry, which
    /// cost ~7% of a step (see `corral_telemetry::DirectSpan`).
    pub step: Option<DirectSpan>,
    /// Tool-use ids of the last model turn not yet called, by tool name.
    pub pending_tool_uses: VecDeque<(String, String)>,
    /// What the guest's log cost this invocation, against its limits.
    pub log_budget: LogBudget,
}

/// The span an invocation's work hangs under.
#[derive(Debug, Clone)]
pub(crate) enum ScopeSpan {
    /// A live invocation's `invoke_agent` span.
    Direct(DirectSpan),
    /// A `tracing` span (a replay's, or none).
    Tracing(tracing::Span),
}

impl ScopeSpan {
    /// A span under this one; `start` runs only if it records.
    fn child(&self, start: impl FnOnce() -> SpanStart) -> DirectSpan {
        match self {
            ScopeSpan::Direct(span) => span.child(start),
            ScopeSpan::Tracing(span) => DirectSpan::under(span, start),
        }
    }

    /// What may be recorded on it.
    fn handle(&self) -> &dyn SpanHandle {
        match self {
            ScopeSpan::Direct(span) => span,
            ScopeSpan::Tracing(span) => span,
        }
    }
}

impl From<DirectSpan> for ScopeSpan {
    fn from(span: DirectSpan) -> Self {
        ScopeSpan::Direct(span)
    }
}

impl From<tracing::Span> for ScopeSpan {
    fn from(span: tracing::Span) -> Self {
        ScopeSpan::Tracing(span)
    }
}

/// A step span's name, `step {number}`; the first steps' are not
/// formatted.
fn step_name(number: u32) -> Cow<'static, str> {
    const NAMES: [&str; 8] = [
        "step 1", "step 2", "step 3", "step 4", "step 5", "step 6", "step 7", "step 8",
    ];
    match number.checked_sub(1).and_then(|i| NAMES.get(i as usize)) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("step {number}")),
    }
}

/// Guest log usage of one invocation: lines and bytes kept, lines dropped,
/// and events on the current span.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    pub lines: u32,
    pub bytes: usize,
    pub dropped_lines: u64,
    pub span_events: u32,
    pub dropped_span_events: u64,
}

impl LogBudget {
    /// Records the events dropped on `span` as `corral.events.dropped`, and
    /// starts counting afresh for the next span.
    pub fn close_span(&mut self, span: &dyn SpanHandle) {
        if self.dropped_span_events > 0 {
            span.add_attributes(vec![KeyValue::new(
                "corral.events.dropped",
                i64::try_from(self.dropped_span_events).unwrap_or(i64::MAX),
            )]);
        }
        self.span_events = 0;
        self.dropped_span_events = 0;
    }
}

impl InvocationScope {
    pub fn new(
        actor_id: String,
        request_id: String,
        stream: Option<mpsc::Sender<Vec<u8>>>,
        span: impl Into<ScopeSpan>,
    ) -> Self {
        let span = span.into();
        Self {
            actor_id,
            request_id,
            stream,
            buffered: Vec::new(),
            response_bytes: 0,
            stats: InvocationStats::default(),
            span,
            step: None,
            pending_tool_uses: VecDeque::new(),
            log_budget: LogBudget::default(),
        }
    }

    /// Ends the current step and opens the next: a step is one model call
    /// and the tool calls it asks for.
    pub fn begin_step(&mut self) -> DirectSpan {
        // The previous step ends here, when its last handle drops.
        let previous = self.step.take();
        self.log_budget.close_span(match &previous {
            Some(step) => step,
            None => self.span.handle(),
        });
        drop(previous);
        let number = self.stats.model_calls + 1;
        let step = self.span.child(|| {
            (
                step_name(number),
                span_attributes([KeyValue::new("corral.step", i64::from(number))], 1),
            )
        });
        self.step = Some(step.clone());
        step
    }

    /// Records what the log limits dropped on the open spans.
    pub fn finish_log(&mut self) {
        let step = self.step.take();
        self.log_budget.close_span(match &step {
            Some(step) => step,
            None => self.span.handle(),
        });
        if self.log_budget.dropped_lines > 0 {
            self.span.handle().add_attributes(vec![KeyValue::new(
                "corral.log.lines_dropped",
                i64::try_from(self.log_budget.dropped_lines).unwrap_or(i64::MAX),
            )]);
        }
    }

    /// A span for new work (a tool call, a memory operation) under the
    /// current step, else under the invocation; `start` runs only if it
    /// records.
    pub fn open_span(&self, start: impl FnOnce() -> SpanStart) -> DirectSpan {
        match &self.step {
            Some(step) => step.child(start),
            None => self.span.child(start),
        }
    }

    /// The direct span new work runs in (the current step, else the
    /// invocation's), for work spawned off the invocation's task; disabled
    /// when replaying under a `tracing` span.
    pub fn current_direct_span(&self) -> DirectSpan {
        match (&self.step, &self.span) {
            (Some(step), _) => step.clone(),
            (None, ScopeSpan::Direct(span)) => span.clone(),
            (None, ScopeSpan::Tracing(_)) => DirectSpan::default(),
        }
    }

    /// The span the guest's log lines go on: the current step, else the
    /// invocation.
    pub fn log_span(&self) -> &dyn SpanHandle {
        match &self.step {
            Some(step) => step,
            None => self.span.handle(),
        }
    }

    /// The model's id for the next call of `tool`, if the last turn asked for it.
    pub fn take_tool_use_id(&mut self, tool: &str) -> Option<String> {
        let index = self
            .pending_tool_uses
            .iter()
            .position(|(name, _)| name == tool)?;
        self.pending_tool_uses.remove(index).map(|(_, id)| id)
    }
}

/// Store data of a session sandbox.
pub(crate) struct SessionState {
    pub sandbox: SandboxCtx,
    pub services: Arc<HostServices>,
    pub agent: Arc<str>,
    pub session_id: Arc<str>,
    pub log: Arc<SessionLog>,
    pub tool_timeout: Duration,
    pub scope: InvocationScope,
    /// Tool calls made in this session so far.
    pub session_tool_calls: u32,
    /// Deterministic loop limits of this agent.
    pub run_limits: crate::config::RunLimits,
    /// The agent's memory resource, if its settings name one.
    pub memory_id: Option<Arc<str>>,
    /// Memory writes of this session in the current minute (kept by the
    /// session entry, so a new sandbox does not reset it).
    pub memory_quota: Arc<parking_lot::Mutex<crate::memory_quota::MemoryWriteWindow>>,
    /// The host-call seam: records calls for the journal or answers them
    /// from it.
    pub calls: HostCalls,
}

impl SessionState {
    pub fn memory_scope(&self) -> MemoryScope {
        MemoryScope {
            agent: self.agent.clone(),
            session_id: self.session_id.clone(),
            actor_id: self.scope.actor_id.clone(),
            memory_id: self.memory_id.clone(),
        }
    }
}

impl SandboxState for SessionState {
    fn sandbox(&mut self) -> &mut SandboxCtx {
        &mut self.sandbox
    }
}

impl WasiView for SessionState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.sandbox.wasi_view()
    }
}
