//! The data of one session's wasmtime store.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use corral_sandbox::{SandboxCtx, SandboxState};
use tokio::sync::mpsc;
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::memory::MemoryScope;
use crate::services::HostServices;
use crate::session_log::SessionLog;
use crate::tools::ToolContext;

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
    /// The `invoke_agent` span.
    pub span: tracing::Span,
    /// The current agent-loop step (opened by each model call).
    pub step: Option<tracing::Span>,
    /// Tool-use ids of the last model turn not yet called, by tool name.
    pub pending_tool_uses: VecDeque<(String, String)>,
}

impl InvocationScope {
    pub fn new(
        actor_id: String,
        request_id: String,
        stream: Option<mpsc::Sender<Vec<u8>>>,
        span: tracing::Span,
    ) -> Self {
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
        }
    }

    /// Ends the current step and opens the next: a step is one model call
    /// and the tool calls it asks for.
    pub fn begin_step(&mut self) -> tracing::Span {
        self.step = None;
        let number = self.stats.model_calls + 1;
        let step = tracing::info_span!(
            parent: &self.span,
            "agent.step",
            otel.name = %format!("step {number}"),
            corral.step = number,
        );
        self.step = Some(step.clone());
        step
    }

    /// The span new work hangs under: the current step, else the invocation.
    pub fn current_span(&self) -> &tracing::Span {
        self.step.as_ref().unwrap_or(&self.span)
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
    pub max_response_bytes: usize,
    pub scope: InvocationScope,
    /// Tool calls made in this session so far.
    pub session_tool_calls: u32,
    /// Deterministic loop limits of this agent.
    pub run_limits: crate::config::RunLimits,
}

impl SessionState {
    pub fn tool_context(&self) -> ToolContext {
        ToolContext {
            agent: self.agent.clone(),
            session_id: self.session_id.clone(),
            actor_id: self.scope.actor_id.clone(),
            request_id: self.scope.request_id.clone(),
            step: self.session_tool_calls,
        }
    }

    pub fn memory_scope(&self) -> MemoryScope {
        MemoryScope {
            agent: self.agent.clone(),
            session_id: self.session_id.clone(),
            actor_id: self.scope.actor_id.clone(),
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
