//! One live session: its sandbox (store + instance) and its bookkeeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use corral_sandbox::{
    Fault, SandboxCtx, SandboxLimits, SandboxOptions, install_cpu_budget, reset_cpu_budget,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use wasmtime::Store;

use crate::agent::{AgentHost, CompiledAgent};
use crate::bindings::Agent;
use crate::bindings::types::{AgentError, Invocation, Response};
use crate::config::SessionConfig;
use crate::host_calls::HostCalls;
use crate::memory_quota::MemoryWriteWindow;
use crate::services::HostServices;
use crate::session_log::SessionLog;
use crate::state::{InvocationScope, SessionState};

/// A session's store and component instance.
pub(crate) struct Sandbox {
    store: Store<SessionState>,
    agent: Agent,
}

/// Why a sandbox did not start.
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// Instantiation failed (pool exhausted, trap, limits).
    Fault(Fault),
    /// Replaying its journal, instantiation did something else.
    Diverged(Box<crate::divergence::Divergence>),
}

/// What a guest call ended with.
pub(crate) enum CallOutcome {
    /// The guest returned (success or its own error).
    Returned(Result<Response, AgentError>, Box<InvocationScope>),
    /// The sandbox failed; it must be discarded.
    Fault(Fault),
    /// Replaying, the guest did something its journal does not have; the
    /// sandbox must be discarded.
    Diverged(Box<crate::divergence::Divergence>),
}

/// What a sandbox shares with its session: its id, log and memory-write
/// window (kept across the session's sandboxes).
pub(crate) struct SessionHandles {
    pub session_id: Arc<str>,
    pub log: Arc<SessionLog>,
    pub memory_quota: Arc<parking_lot::Mutex<MemoryWriteWindow>>,
}

impl Sandbox {
    /// Creates the store and instantiates the agent in it.
    pub async fn start(
        host: &AgentHost,
        agent: &CompiledAgent,
        services: Arc<HostServices>,
        session: SessionHandles,
        config: &SessionConfig,
        calls: HostCalls,
    ) -> Result<Self, StartFailure> {
        let SessionHandles {
            session_id,
            log,
            memory_quota,
        } = session;
        let settings = agent.settings();
        let limits = SandboxLimits {
            memory_bytes: config.memory_cap(settings),
            cpu_time: settings.cpu_time.unwrap_or(config.limits.cpu_time),
            ..config.limits.clone()
        };
        let sandbox = SandboxCtx::new(
            host.engine(),
            SandboxOptions {
                limits,
                env: settings.env.clone(),
                output: log.clone(),
            },
        );
        let state = SessionState {
            sandbox,
            services,
            agent: agent.name_arc(),
            session_id,
            log,
            tool_timeout: config.tool_timeout,
            scope: InvocationScope::new(String::new(), String::new(), None, tracing::Span::none()),
            session_tool_calls: 0,
            run_limits: settings.run_limits,
            memory_id: settings.memory_id.as_deref().map(Arc::from),
            memory_quota,
            calls,
        };
        let mut store = Store::new(host.engine().engine(), state);
        install_cpu_budget(&mut store);
        let span = tracing::info_span!(
            "sandbox.instantiate",
            corral.sandbox.memory_limit_bytes = store.data().sandbox.limits().memory_bytes as u64,
        );
        match tracing::Instrument::instrument(agent.pre.instantiate_async(&mut store), span).await {
            Ok(instance) => Ok(Self {
                store,
                agent: instance,
            }),
            Err(err) => Err(match store.data().calls.divergence() {
                Some(divergence) => StartFailure::Diverged(Box::new(divergence.clone())),
                None => StartFailure::Fault(store.data().sandbox.classify(&err)),
            }),
        }
    }

    /// Runs one invocation. Cancellation-safe: dropping the future abandons
    /// the call, after which the sandbox must be discarded.
    pub async fn call(&mut self, invocation: &Invocation, scope: InvocationScope) -> CallOutcome {
        reset_cpu_budget(&mut self.store);
        self.store.data_mut().scope = scope;
        let handler = self.agent.corral_agent_handler();
        let result = handler.call_invoke(&mut self.store, invocation).await;
        self.store.data().sandbox.flush_output();
        let mut scope = std::mem::replace(
            &mut self.store.data_mut().scope,
            InvocationScope::new(String::new(), String::new(), None, tracing::Span::none()),
        );
        scope.finish_log();
        match result {
            Ok(returned) => CallOutcome::Returned(returned, Box::new(scope)),
            Err(err) => match self.store.data().calls.divergence() {
                Some(divergence) => CallOutcome::Diverged(Box::new(divergence.clone())),
                None => CallOutcome::Fault(self.store.data().sandbox.classify(&err)),
            },
        }
    }

    /// The host-call seam of this sandbox.
    pub fn calls(&mut self) -> &mut HostCalls {
        &mut self.store.data_mut().calls
    }

    /// Bytes of linear memory the guest holds.
    pub fn memory_used(&self) -> usize {
        self.store.data().sandbox.memory_used()
    }

    /// The limits this sandbox runs under.
    pub fn limits(&self) -> &SandboxLimits {
        self.store.data().sandbox.limits()
    }
}

/// Whether a session is running an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SessionStatus {
    /// An invocation is in progress.
    Active,
    /// Waiting for the next invocation.
    Idle,
    /// Idle, its sandbox dropped; the next invocation resumes it from its
    /// journal.
    Hibernated,
}

/// What is kept of a hibernated session: enough to list it and to carry
/// its lifetime over when it resumes (its state is in its journal).
#[derive(Debug, Clone)]
pub(crate) struct HibernatedSession {
    pub version: Arc<str>,
    pub created: Instant,
    pub created_at: SystemTime,
    pub hibernated: Instant,
    pub hibernated_at: SystemTime,
    pub invocations: u64,
    pub caller: Option<Arc<str>>,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
}

impl HibernatedSession {
    /// What is kept of `entry` when it hibernates.
    pub fn of(entry: &SessionEntry) -> Self {
        let idle_for = entry.idle_for();
        Self {
            version: entry.agent.version_arc(),
            created: entry.created,
            created_at: entry.created_at,
            hibernated: Instant::now() - idle_for,
            hibernated_at: SystemTime::now() - idle_for,
            invocations: entry.invocations.load(Ordering::Relaxed),
            caller: entry.caller.clone(),
            idle_timeout: entry.idle_timeout,
            max_lifetime: entry.max_lifetime,
        }
    }

    /// Whether it has been idle past its timeout or lived past its lifetime,
    /// and why.
    pub fn expired(&self) -> Option<&'static str> {
        if self.created.elapsed() >= self.max_lifetime {
            Some("max_lifetime")
        } else if self.hibernated.elapsed() >= self.idle_timeout {
            Some("idle_timeout")
        } else {
            None
        }
    }

    /// A listing of it.
    pub fn info(&self, agent: &str, session_id: &str) -> SessionInfo {
        SessionInfo {
            agent: agent.to_string(),
            version: self.version.to_string(),
            session_id: session_id.to_string(),
            status: SessionStatus::Hibernated,
            created_at: self.created_at,
            last_activity: self.hibernated_at,
            age: self.created.elapsed(),
            invocations: self.invocations,
            memory_bytes: 0,
            caller: self.caller.as_deref().map(str::to_string),
        }
    }
}

/// A snapshot of a live session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// Agent (runtime) name.
    pub agent: String,
    /// Agent version the session runs.
    pub version: String,
    /// Runtime session id.
    pub session_id: String,
    /// Active or idle.
    pub status: SessionStatus,
    /// When the session started.
    pub created_at: SystemTime,
    /// When the last invocation started or ended.
    pub last_activity: SystemTime,
    /// Time since start.
    pub age: Duration,
    /// Invocations completed.
    pub invocations: u64,
    /// Guest linear memory in bytes.
    pub memory_bytes: usize,
    /// Who started the session (principal, API key name or peer address).
    pub caller: Option<String>,
}

/// Bookkeeping of one session, readable without waiting for its invocation.
pub(crate) struct SessionEntry {
    pub agent: Arc<CompiledAgent>,
    pub session_id: Arc<str>,
    pub created: Instant,
    pub created_at: SystemTime,
    last_activity_ms: AtomicU64,
    pub busy: AtomicBool,
    pub ended: AtomicBool,
    pub invocations: AtomicU64,
    pub memory_bytes: AtomicUsize,
    pub cancel: CancellationToken,
    pub log: Arc<SessionLog>,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub sandbox: tokio::sync::Mutex<Option<Sandbox>>,
    /// Who started the session (principal or API key), for per-caller quotas.
    pub caller: Option<Arc<str>>,
    /// Guest memory the session reserves against the budget: its memory cap.
    pub reserved_bytes: usize,
    /// Memory writes in the current minute, across the session's sandboxes.
    pub memory_quota: Arc<parking_lot::Mutex<MemoryWriteWindow>>,
    /// Whether its sandbox's run is in the journal (so it can resume, and
    /// ending it for good is recorded there).
    pub journaled: AtomicBool,
}

impl SessionEntry {
    pub fn new(
        agent: Arc<CompiledAgent>,
        session_id: Arc<str>,
        caller: Option<Arc<str>>,
        config: &SessionConfig,
    ) -> Self {
        let settings = agent.settings();
        Self {
            caller,
            reserved_bytes: config.memory_cap(settings),
            memory_quota: Arc::default(),
            idle_timeout: settings.idle_timeout.unwrap_or(config.idle_timeout),
            max_lifetime: settings.max_lifetime.unwrap_or(config.max_lifetime),
            log: Arc::new(SessionLog::new(&session_id, config.log_capacity_bytes)),
            agent,
            session_id,
            created: Instant::now(),
            created_at: SystemTime::now(),
            last_activity_ms: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            invocations: AtomicU64::new(0),
            memory_bytes: AtomicUsize::new(0),
            cancel: CancellationToken::new(),
            sandbox: tokio::sync::Mutex::new(None),
            journaled: AtomicBool::new(false),
        }
    }

    /// Carries a hibernated session's lifetime and counters over.
    pub fn resumes(mut self, hibernated: &HibernatedSession) -> Self {
        self.created = hibernated.created;
        self.created_at = hibernated.created_at;
        self.invocations = AtomicU64::new(hibernated.invocations);
        self
    }

    /// Has a sandbox, is not running an invocation, and no invocation holds
    /// its sandbox (a session still starting is not idle).
    pub fn is_idle(&self) -> bool {
        !self.busy.load(Ordering::Relaxed)
            && self
                .sandbox
                .try_lock()
                .is_ok_and(|sandbox| sandbox.is_some())
    }

    /// Ends an idle session for reclaim: under its sandbox lock (so no
    /// invocation can be starting in it), marks it ended and frees the
    /// sandbox. False when it is busy or already ended.
    pub fn claim_idle(&self) -> bool {
        let Ok(mut sandbox) = self.sandbox.try_lock() else {
            return false;
        };
        if self.busy.load(Ordering::Relaxed) || self.ended.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.cancel.cancel();
        *sandbox = None;
        true
    }

    /// Records activity now.
    pub fn touch(&self) {
        let ms = self.created.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last activity.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// Whether the session outlived its maximum lifetime.
    pub fn past_lifetime(&self) -> bool {
        self.created.elapsed() >= self.max_lifetime
    }

    /// Whether the session has been idle past its timeout.
    pub fn past_idle(&self) -> bool {
        !self.busy.load(Ordering::Relaxed) && self.idle_for() >= self.idle_timeout
    }

    pub fn info(&self) -> SessionInfo {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        SessionInfo {
            agent: self.agent.name().to_string(),
            version: self.agent.version().to_string(),
            session_id: self.session_id.to_string(),
            status: if self.busy.load(Ordering::Relaxed) {
                SessionStatus::Active
            } else {
                SessionStatus::Idle
            },
            created_at: self.created_at,
            last_activity: self.created_at + last,
            age: self.created.elapsed(),
            invocations: self.invocations.load(Ordering::Relaxed),
            memory_bytes: self.memory_bytes.load(Ordering::Relaxed),
            caller: self.caller.as_deref().map(str::to_string),
        }
    }
}
