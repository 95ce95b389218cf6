//! Typed errors of the agent host.

use std::time::Duration;

use corral_sandbox::{Fault, SandboxError};

use crate::admission::SessionQuota;
use crate::bindings::types::AgentError;

/// Errors loading or preparing an agent component.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The engine could not be configured.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The component does not implement Corral's agent world.
    #[error("component does not implement the corral:agent/agent world: {0}")]
    WrongWorld(String),
    /// Reading an agent file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The kind of error an agent reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentErrorKind {
    /// Bad request payload.
    InvalidInput,
    /// A model call failed.
    ModelFailed,
    /// A tool call failed.
    ToolFailed,
    /// The agent hit one of its limits.
    LimitExceeded,
    /// Anything else.
    Internal,
}

impl AgentErrorKind {
    /// Stable name (`InvalidInput`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            AgentErrorKind::InvalidInput => "InvalidInput",
            AgentErrorKind::ModelFailed => "ModelFailed",
            AgentErrorKind::ToolFailed => "ToolFailed",
            AgentErrorKind::LimitExceeded => "LimitExceeded",
            AgentErrorKind::Internal => "Internal",
        }
    }
}

impl From<AgentError> for (AgentErrorKind, String) {
    fn from(error: AgentError) -> Self {
        match error {
            AgentError::InvalidInput(m) => (AgentErrorKind::InvalidInput, m),
            AgentError::ModelFailed(m) => (AgentErrorKind::ModelFailed, m),
            AgentError::ToolFailed(m) => (AgentErrorKind::ToolFailed, m),
            AgentError::LimitExceeded(m) => (AgentErrorKind::LimitExceeded, m),
            AgentError::Internal(m) => (AgentErrorKind::Internal, m),
        }
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The request itself is invalid (e.g. an empty session id).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The agent ran and returned an error; the session lives on.
    #[error("agent returned {}: {message}", kind.as_str())]
    Agent {
        /// Error kind.
        kind: AgentErrorKind,
        /// The agent's message.
        message: String,
    },
    /// The sandbox failed (trap, CPU or memory limit); the session ended.
    #[error("session ended: {0}")]
    Fault(Fault),
    /// The invocation ran past its wall-clock limit; the session ended.
    #[error("invocation exceeded its time limit of {0:?}; the session ended")]
    Timeout(Duration),
    /// The session was stopped while the invocation ran.
    #[error("session was stopped")]
    Stopped,
    /// A session quota is spent and no idle session could be reclaimed.
    #[error("quota {quota} exceeded: limit {limit}{}", who.as_ref().map(|w| format!(" for {w}")).unwrap_or_default())]
    QuotaExceeded {
        /// Which quota.
        quota: SessionQuota,
        /// Its limit (sessions, or bytes for the memory budget).
        limit: usize,
        /// The agent or caller it applies to, when it is per agent or caller.
        who: Option<String>,
    },
    /// The sandbox pool has no free slot, even after reclaiming an idle
    /// session (the engine's pool is smaller than the session quotas allow).
    #[error("the sandbox pool is full ({0}); retry when sessions end")]
    PoolExhausted(String),
    /// The host failed (a bug, not the guest's doing); the session may have ended.
    #[error("internal error: {0}")]
    Internal(String),
    /// A new sandbox could not be created.
    #[error("cannot start sandbox: {0}")]
    Instantiate(String),
    /// The response (streamed chunks plus payload) is larger than allowed.
    #[error("response exceeds the limit of {0} bytes")]
    ResponseTooLarge(usize),
    /// The session's journal could not record the invocation (full, or the
    /// store failed); the response was not returned.
    #[error("the session journal could not record the invocation")]
    Journal(#[source] corral_journal::JournalError),
    /// The session's sandbox could not be rebuilt from its journal (a
    /// corrupt entry, or the agent no longer replays it); other sessions
    /// are unaffected. Stopping the session starts it afresh.
    #[error("session {session} cannot resume from its journal")]
    Resume {
        /// The session.
        session: String,
        /// What stopped the replay.
        #[source]
        cause: ResumeFailure,
    },
}

/// Why a session could not resume from its journal.
#[derive(Debug, thiserror::Error)]
pub enum ResumeFailure {
    /// The journal could not be read (a corrupt entry names its offset).
    #[error(transparent)]
    Journal(corral_journal::JournalError),
    /// The agent did something else than the journal records.
    #[error("replay diverged: {0}")]
    Diverged(Box<crate::divergence::Divergence>),
    /// The sandbox failed while replaying.
    #[error("the sandbox failed while replaying: {0}")]
    Fault(Fault),
}

impl InvokeError {
    /// Whether the invocation failed because shared state (the journal's
    /// database) could not be reached: nothing was half-written, and a
    /// retry may succeed once it is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            InvokeError::Journal(journal)
            | InvokeError::Resume {
                cause: ResumeFailure::Journal(journal),
                ..
            } => journal.is_unavailable(),
            _ => false,
        }
    }

    /// Stable error type name (span `error.type`, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            InvokeError::InvalidRequest(_) => "invalid_request",
            InvokeError::Agent { kind, .. } => kind.as_str(),
            InvokeError::Fault(_) => "sandbox_fault",
            InvokeError::Timeout(_) => "timeout",
            InvokeError::Stopped => "stopped",
            InvokeError::QuotaExceeded { .. } => "quota_exceeded",
            InvokeError::Instantiate(_) => "instantiate",
            InvokeError::Internal(_) => "internal",
            InvokeError::PoolExhausted(_) => "pool_exhausted",
            InvokeError::ResponseTooLarge(_) => "response_too_large",
            InvokeError::Journal(_) => "journal",
            InvokeError::Resume { .. } => "resume",
        }
    }

    /// Whether the error ended the session.
    pub fn ended_session(&self) -> bool {
        matches!(
            self,
            InvokeError::Fault(_) | InvokeError::Timeout(_) | InvokeError::Stopped
        )
    }
}
