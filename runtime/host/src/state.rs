//! The data of one session's wasmtime store.

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
}

impl InvocationScope {
    pub fn new(
        actor_id: String,
        request_id: String,
        stream: Option<mpsc::Sender<Vec<u8>>>,
    ) -> Self {
        Self {
            actor_id,
            request_id,
            stream,
            buffered: Vec::new(),
            response_bytes: 0,
            stats: InvocationStats::default(),
        }
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
