//! The session manager: maps session ids to live sandboxes, runs invocations,
//! and ends sessions on stop, idle timeout, maximum lifetime or fault.

use corral_telemetry::OpenTelemetrySpanExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use corral_journal::Entry as JournalEntry;

use crate::admission::{Applicant, Refusal, SessionKey, SessionQuota, SessionTable};
use crate::agent::{AgentHost, CompiledAgent};
use crate::bindings::types::Invocation;
use crate::config::SessionConfig;
use crate::error::{AgentErrorKind, InvokeError};
use crate::executor::GuestExecutor;
use crate::host_calls::HostCalls;
use crate::services::HostServices;
use crate::session::{CallOutcome, Sandbox, SessionEntry, SessionInfo};
use crate::session_log::{LogEntry, LogLevel, LogSource};
use crate::state::{InvocationScope, InvocationStats};
use corral_sandbox::Fault;

/// Longest session id accepted.
pub const MAX_SESSION_ID_LEN: usize = 256;

/// One request to an agent.
#[derive(Debug)]
pub struct InvocationRequest {
    /// Runtime session id; invocations with the same id share a sandbox.
    pub session_id: String,
    /// The actor (end user) the invocation acts for.
    pub actor_id: String,
    /// Correlation id; generated when absent.
    pub request_id: Option<String>,
    /// Request body.
    pub payload: Vec<u8>,
    /// MIME type of the body.
    pub content_type: String,
    /// Receives streamed chunks as the agent sends them; without it chunks
    /// are prepended to the response payload.
    pub stream: Option<mpsc::Sender<Vec<u8>>>,
    /// Who is calling (principal or API key), for per-caller session quotas;
    /// `None` is not counted against any caller.
    pub caller: Option<String>,
}

impl InvocationRequest {
    /// A JSON request for `session_id` from the default actor.
    pub fn new(session_id: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            session_id: session_id.into(),
            actor_id: "default".into(),
            request_id: None,
            payload: payload.into(),
            content_type: "application/json".into(),
            stream: None,
            caller: None,
        }
    }

    /// Sets the caller the session counts against.
    pub fn caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = Some(caller.into());
        self
    }

    /// Sets the actor.
    pub fn actor(mut self, actor_id: impl Into<String>) -> Self {
        self.actor_id = actor_id.into();
        self
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Streams chunks into `sender`.
    pub fn stream(mut self, sender: mpsc::Sender<Vec<u8>>) -> Self {
        self.stream = Some(sender);
        self
    }
}

/// A successful invocation.
#[derive(Debug)]
pub struct InvocationResponse {
    /// Response body (after any streamed chunks).
    pub payload: Vec<u8>,
    /// MIME type of the body.
    pub content_type: String,
    /// The session id.
    pub session_id: String,
    /// The request id.
    pub request_id: String,
    /// Whether this invocation started a new sandbox.
    pub new_session: bool,
    /// Session log lines written during this invocation.
    pub log: Vec<LogEntry>,
    /// Model/tool counters.
    pub stats: InvocationStats,
    /// Wall-clock duration.
    pub duration: Duration,
}

impl InvocationResponse {
    /// The payload as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    Stopped,
    IdleTimeout,
    MaxLifetime,
    Fault,
    Shutdown,
    /// Idle, and its room was needed for a new session under a quota.
    Reclaimed,
}

struct ManagerInner {
    host: Arc<AgentHost>,
    services: Arc<HostServices>,
    config: SessionConfig,
    sessions: Mutex<SessionTable>,
    /// Runs guest code off the caller's runtime when `guest_threads` > 0.
    executor: Option<GuestExecutor>,
}

/// Owns the live sessions of an [`AgentHost`].
pub struct SessionManager {
    inner: Arc<ManagerInner>,
    reaper: Option<JoinHandle<()>>,
}

impl Drop for SessionManager {
    fn drop(&mut self) {
        if let Some(reaper) = self.reaper.take() {
            reaper.abort();
        }
    }
}

impl SessionManager {
    /// A manager whose sessions reach `services`; inside a tokio runtime it
    /// also starts the expiry task.
    pub fn new(host: Arc<AgentHost>, services: HostServices, config: SessionConfig) -> Self {
        let executor = match config.guest_threads {
            0 => None,
            threads => match GuestExecutor::new(threads) {
                Ok(executor) => Some(executor),
                Err(error) => {
                    tracing::warn!(%error, "cannot start the guest executor; guests run on the caller's threads");
                    None
                }
            },
        };
        let inner = Arc::new(ManagerInner {
            host,
            services: Arc::new(services),
            config,
            sessions: Mutex::new(SessionTable::default()),
            executor,
        });
        let reaper = tokio::runtime::Handle::try_current()
            .ok()
            .map(|handle| handle.spawn(reap_loop(Arc::downgrade(&inner))));
        Self { inner, reaper }
    }

    /// The host sessions run on.
    pub fn host(&self) -> &Arc<AgentHost> {
        &self.inner.host
    }

    /// The services sessions reach.
    pub fn services(&self) -> &Arc<HostServices> {
        &self.inner.services
    }

    /// The session configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Runs one invocation in the session's sandbox, creating it if needed.
    pub async fn invoke(
        &self,
        agent: &Arc<CompiledAgent>,
        mut request: InvocationRequest,
    ) -> Result<InvocationResponse, InvokeError> {
        validate_session_id(&request.session_id)?;
        let request_id = request
            .request_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        let span = invocation_span(agent, &request, &request_id);
        let inner = self.inner.clone();
        let agent = agent.clone();
        let in_span = span.clone();
        let call = async move {
            inner
                .invoke_in_span(&agent, request, request_id, in_span)
                .await
        }
        .instrument(span.clone());
        let result = match &self.inner.executor {
            Some(executor) => executor.run(call).await.unwrap_or_else(|error| {
                let what = if error.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                Err(InvokeError::Internal(format!(
                    "the invocation task {what}; the session ended"
                )))
            }),
            None => call.await,
        };
        match &result {
            Ok(response) => {
                span.record("corral.session.new", response.new_session);
            }
            Err(error) => corral_telemetry::record_error(&span, error.kind(), &error.to_string()),
        }
        result
    }

    /// Ends a session at once, freeing its sandbox; an in-flight invocation
    /// fails with [`InvokeError::Stopped`]. Returns whether it existed.
    pub fn stop(&self, agent: &str, session_id: &str) -> bool {
        let key: SessionKey = (Arc::from(agent), Arc::from(session_id));
        let entry = self.inner.sessions.lock().remove(&key);
        match entry {
            Some(entry) => {
                self.inner.finish(&entry, EndReason::Stopped);
                true
            }
            None => false,
        }
    }

    /// Ends every session whose id matches, across agents; returns how many.
    pub fn stop_session_everywhere(&self, session_id: &str) -> usize {
        let removed: Vec<Arc<SessionEntry>> = {
            let mut sessions = self.inner.sessions.lock();
            let keys: Vec<SessionKey> = sessions
                .iter()
                .map(|(key, _)| key)
                .filter(|(_, id)| &**id == session_id)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| sessions.remove(k)).collect()
        };
        for entry in &removed {
            self.inner.finish(entry, EndReason::Stopped);
        }
        removed.len()
    }

    /// Ends all sessions (shutdown).
    pub fn stop_all(&self) -> usize {
        let all: Vec<Arc<SessionEntry>> = self.inner.sessions.lock().drain();
        for entry in &all {
            self.inner.finish(entry, EndReason::Shutdown);
        }
        all.len()
    }

    /// Snapshots of all live sessions.
    pub fn list(&self) -> Vec<SessionInfo> {
        let entries: Vec<Arc<SessionEntry>> =
            self.inner.sessions.lock().values().cloned().collect();
        let mut infos: Vec<SessionInfo> = entries.iter().map(|e| e.info()).collect();
        infos.sort_by(|a, b| (&a.agent, &a.session_id).cmp(&(&b.agent, &b.session_id)));
        infos
    }

    /// The session's log, if it is live.
    pub fn session_log(&self, agent: &str, session_id: &str) -> Option<Vec<LogEntry>> {
        let key: SessionKey = (Arc::from(agent), Arc::from(session_id));
        self.inner
            .sessions
            .lock()
            .get(&key)
            .map(|e| e.log.entries())
    }

    /// Number of live sessions.
    pub fn live_sessions(&self) -> usize {
        self.inner.sessions.lock().len()
    }

    /// Guest memory live sessions reserve (the sum of their memory caps).
    pub fn reserved_memory(&self) -> usize {
        self.inner.sessions.lock().reserved_bytes()
    }

    /// Ends sessions past their idle timeout or lifetime; returns how many.
    pub fn reap(&self) -> usize {
        self.inner.reap()
    }
}

impl ManagerInner {
    async fn invoke_in_span(
        &self,
        agent: &Arc<CompiledAgent>,
        request: InvocationRequest,
        request_id: String,
        span: tracing::Span,
    ) -> Result<InvocationResponse, InvokeError> {
        let started = Instant::now();
        let session_id: Arc<str> = Arc::from(request.session_id.as_str());
        let invocation = Invocation {
            session_id: request.session_id.clone(),
            actor_id: request.actor_id.clone(),
            request_id: request_id.clone(),
            payload: request.payload,
            content_type: request.content_type,
        };
        // A session can end between lookup and lock (stop, expiry); then the
        // invocation starts a fresh one.
        for _ in 0..3 {
            let entry = self.entry_for(agent, &session_id, request.caller.as_deref())?;
            let mut guard = entry.sandbox.lock().await;
            if entry.ended.load(Ordering::Acquire) {
                continue;
            }
            if entry.past_lifetime() {
                *guard = None;
                self.end(&entry, EndReason::MaxLifetime);
                continue;
            }
            let busy = BusyGuard::new(self, &entry);
            entry.touch();
            let log_start = entry.log.next_seq();
            let new_session = guard.is_none();
            if new_session {
                let start_span = tracing::info_span!(
                    "session.start",
                    otel.name = %format!("session.start {}", entry.agent.name()),
                    gen_ai.agent.name = %entry.agent.name(),
                    gen_ai.agent.version = %entry.agent.version(),
                );
                match self.start_sandbox(&entry).instrument(start_span).await {
                    Ok(sandbox) => {
                        entry.log.push(
                            LogSource::Host,
                            LogLevel::Info,
                            format!(
                                "session started on {} version {}",
                                entry.agent.name(),
                                entry.agent.version()
                            ),
                            vec![("event".into(), "session_start".into())],
                        );
                        *guard = Some(sandbox);
                    }
                    Err(fault) => {
                        busy.release();
                        self.end(&entry, EndReason::Fault);
                        return Err(match fault {
                            Fault::PoolExhausted(detail) => InvokeError::PoolExhausted(detail),
                            other => InvokeError::Instantiate(other.to_string()),
                        });
                    }
                }
            }
            let Some(sandbox) = guard.as_mut() else {
                continue;
            };
            let mut scope = InvocationScope::new(
                request.actor_id.clone(),
                request_id.clone(),
                request.stream.clone(),
                span.clone(),
            );
            scope.calls = HostCalls::new(self.config.journal.is_some());
            let timeout = self.config.invocation_timeout;
            let outcome = tokio::select! {
                biased;
                _ = entry.cancel.cancelled() => Err(InvokeError::Stopped),
                result = tokio::time::timeout(timeout, sandbox.call(&invocation, scope)) => {
                    result.map_err(|_| InvokeError::Timeout(timeout))
                }
            };
            busy.release();
            entry.touch();
            let (result, mut scope) = match outcome {
                Ok(CallOutcome::Returned(result, scope)) => (result, scope),
                Ok(CallOutcome::Fault(fault)) => {
                    *guard = None;
                    entry.log.push(
                        LogSource::Host,
                        LogLevel::Error,
                        format!("session ended: {fault}"),
                        vec![("event".into(), "session_fault".into())],
                    );
                    self.end(&entry, EndReason::Fault);
                    return Err(InvokeError::Fault(fault));
                }
                Err(error) => {
                    *guard = None;
                    let reason = match error {
                        InvokeError::Stopped => EndReason::Stopped,
                        _ => EndReason::Fault,
                    };
                    self.end(&entry, reason);
                    return Err(error);
                }
            };
            entry.invocations.fetch_add(1, Ordering::Relaxed);
            entry
                .memory_bytes
                .store(sandbox.memory_used(), Ordering::Relaxed);
            let calls = scope.calls.take();
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    let (kind, message): (AgentErrorKind, String) = error.into();
                    let text = format!("{}: {message}", kind.as_str());
                    self.journal(&entry, new_session, &invocation, calls, Err(&text))
                        .await?;
                    return Err(InvokeError::Agent { kind, message });
                }
            };
            // Streamed chunks and the final payload share one budget.
            let limit = sandbox.limits().response_bytes;
            if scope.response_bytes.saturating_add(response.payload.len()) > limit {
                return Err(InvokeError::ResponseTooLarge(limit));
            }
            let payload = if scope.buffered.is_empty() {
                response.payload
            } else {
                let mut joined = scope.buffered;
                joined.extend_from_slice(&response.payload);
                joined
            };
            self.journal(
                &entry,
                new_session,
                &invocation,
                calls,
                Ok((&response.content_type, &payload)),
            )
            .await?;
            return Ok(InvocationResponse {
                payload,
                content_type: response.content_type,
                session_id: request.session_id,
                request_id,
                new_session,
                log: entry.log.since(log_start),
                stats: scope.stats,
                duration: started.elapsed(),
            });
        }
        Err(InvokeError::Instantiate(
            "the session kept ending while the invocation started; retry".into(),
        ))
    }

    /// Appends one invocation to the session's journal, when sessions are
    /// journaled: a `started` entry for a new sandbox, the invocation, its
    /// host calls and its response (`Ok((content type, payload))`) or error.
    /// Durable when it returns; the response is not returned otherwise.
    async fn journal(
        &self,
        entry: &SessionEntry,
        new_sandbox: bool,
        invocation: &Invocation,
        calls: Vec<corral_journal::HostCall>,
        response: Result<(&str, &[u8]), &str>,
    ) -> Result<(), InvokeError> {
        let Some(journal) = self.config.journal.clone() else {
            return Ok(());
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut entries = Vec::with_capacity(calls.len() + 3);
        if new_sandbox {
            let limits = &self.config.limits;
            entries.push(JournalEntry::Started {
                agent: entry.agent.name().to_string(),
                version: entry.agent.version().to_string(),
                digest: entry.agent.digest().to_string(),
                limits: serde_json::json!({
                    "memoryBytes": self.config.memory_cap(entry.agent.settings()),
                    "cpuTimeMs": entry.agent.settings().cpu_time.unwrap_or(limits.cpu_time).as_millis() as u64,
                }),
                at_ms: now_ms,
                parent: None,
            });
        }
        entries.push(JournalEntry::Invocation {
            request_id: invocation.request_id.clone(),
            actor_id: invocation.actor_id.clone(),
            content_type: invocation.content_type.clone(),
            payload: invocation.payload.clone(),
        });
        entries.extend(calls.into_iter().map(JournalEntry::HostCall));
        entries.push(match response {
            Ok((content_type, payload)) => JournalEntry::Response {
                request_id: invocation.request_id.clone(),
                ok: true,
                content_type: content_type.to_string(),
                payload: payload.to_vec(),
            },
            Err(error) => JournalEntry::Response {
                request_id: invocation.request_id.clone(),
                ok: false,
                content_type: String::new(),
                payload: error.as_bytes().to_vec(),
            },
        });
        let session = entry.session_id.to_string();
        // Appending waits for the store to make it durable: off the async threads.
        tokio::task::spawn_blocking(move || journal.append(&session, &entries, now_ms))
            .await
            .map_err(|e| InvokeError::Internal(format!("journal append task failed: {e}")))?
            .map(|_| ())
            .map_err(InvokeError::Journal)
    }

    /// A new sandbox for `entry`. When the engine's pool has no free slot,
    /// the session idle longest (any agent) is reclaimed and the start tried
    /// once more.
    async fn start_sandbox(&self, entry: &Arc<SessionEntry>) -> Result<Sandbox, Fault> {
        let start = || {
            Sandbox::start(
                &self.host,
                &entry.agent,
                self.services.clone(),
                entry.session_id.clone(),
                entry.log.clone(),
                &entry.memory_quota,
                &self.config,
            )
        };
        match start().await {
            Err(Fault::PoolExhausted(detail)) => {
                let reclaimed = self.sessions.lock().reclaim_oldest_idle();
                match reclaimed {
                    Some(victim) => {
                        self.record_end(&victim, EndReason::Reclaimed);
                        start().await
                    }
                    None => Err(Fault::PoolExhausted(detail)),
                }
            }
            other => other,
        }
    }

    /// The live session, or a new one admitted under the quotas (idle
    /// sessions are reclaimed first, oldest idle first; see
    /// [`SessionTable::admit`]).
    fn entry_for(
        &self,
        agent: &Arc<CompiledAgent>,
        session_id: &Arc<str>,
        caller: Option<&str>,
    ) -> Result<Arc<SessionEntry>, InvokeError> {
        let key: SessionKey = (agent.name_arc(), session_id.clone());
        let caller: Option<Arc<str>> = caller.map(Arc::from);
        let admitted = {
            let mut sessions = self.sessions.lock();
            if let Some(entry) = sessions.get(&key) {
                return Ok(entry.clone());
            }
            let entry = Arc::new(SessionEntry::new(
                agent.clone(),
                session_id.clone(),
                caller.clone(),
                &self.config,
            ));
            let applicant = Applicant {
                agent: &key.0,
                caller: caller.as_ref(),
                memory_bytes: entry.reserved_bytes,
            };
            match sessions.admit(&applicant, &self.config) {
                Ok(reclaimed) => {
                    sessions.insert(key.clone(), entry.clone());
                    Ok((entry, reclaimed))
                }
                Err(Refusal { quota, limit }) => {
                    let who = match quota {
                        SessionQuota::SessionsPerCaller => {
                            caller.as_ref().map(|c| format!("caller '{c}'"))
                        }
                        SessionQuota::SessionsPerAgent => Some(format!("agent '{}'", key.0)),
                        _ => None,
                    };
                    Err(InvokeError::QuotaExceeded { quota, limit, who })
                }
            }
        };
        let (entry, reclaimed) = admitted?;
        for entry in &reclaimed {
            entry.log.push(
                LogSource::Host,
                LogLevel::Info,
                "session reclaimed: idle, and its room was needed for a new session".into(),
                vec![("event".into(), "session_reclaimed".into())],
            );
            // Already ended and freed by the claim; record how it ended.
            self.record_end(entry, EndReason::Reclaimed);
        }
        Ok(entry)
    }

    /// Removes `entry` from the map (if still there) and finishes it.
    fn end(&self, entry: &Arc<SessionEntry>, reason: EndReason) {
        let key: SessionKey = (entry.agent.name_arc(), entry.session_id.clone());
        {
            let mut sessions = self.sessions.lock();
            if sessions
                .get(&key)
                .is_some_and(|current| Arc::ptr_eq(current, entry))
            {
                sessions.remove(&key);
            }
        }
        self.finish(entry, reason);
    }

    /// Marks the entry ended, interrupts any invocation and frees an idle sandbox.
    fn finish(&self, entry: &Arc<SessionEntry>, reason: EndReason) {
        if entry.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        entry.cancel.cancel();
        if let Ok(mut sandbox) = entry.sandbox.try_lock() {
            *sandbox = None;
        }
        self.record_end(entry, reason);
    }

    /// The `session.stop` span and log line of an ended session.
    fn record_end(&self, entry: &SessionEntry, reason: EndReason) {
        let span = tracing::info_span!(
            parent: None,
            "session.stop",
            otel.name = %format!("session.stop {}", entry.agent.name()),
            gen_ai.agent.name = %entry.agent.name(),
            corral.session.end_reason = reason.as_str(),
            corral.session.invocations = entry.invocations.load(Ordering::Relaxed),
            corral.session.lifetime_ms = entry.created.elapsed().as_millis() as u64,
        );
        let _ = span.set_parent(corral_telemetry::session_context(
            &corral_telemetry::Context::new(),
            &entry.session_id,
        ));
        span.in_scope(|| {
            tracing::info!(
                session.id = %entry.session_id,
                agent = entry.agent.name(),
                reason = reason.as_str(),
                "session ended"
            );
        });
    }

    fn reap(&self) -> usize {
        let expired: Vec<(Arc<SessionEntry>, EndReason)> = {
            let mut sessions = self.sessions.lock();
            let keys: Vec<(SessionKey, EndReason)> = sessions
                .iter()
                .filter_map(|(key, entry)| {
                    if entry.past_lifetime() {
                        Some((key.clone(), EndReason::MaxLifetime))
                    } else if entry.past_idle() {
                        Some((key.clone(), EndReason::IdleTimeout))
                    } else {
                        None
                    }
                })
                .collect();
            keys.into_iter()
                .filter_map(|(key, reason)| sessions.remove(&key).map(|e| (e, reason)))
                .collect()
        };
        for (entry, reason) in &expired {
            self.finish(entry, *reason);
        }
        expired.len()
    }
}

/// Marks a session busy while an invocation runs in it. An invocation
/// abandoned midway (a host panic, or its future dropped) ends the session:
/// its sandbox may have stopped mid-call, and a session left marked busy
/// would never idle out or be reclaimed.
struct BusyGuard<'a> {
    inner: &'a ManagerInner,
    entry: &'a Arc<SessionEntry>,
    released: bool,
}

impl<'a> BusyGuard<'a> {
    fn new(inner: &'a ManagerInner, entry: &'a Arc<SessionEntry>) -> Self {
        entry.busy.store(true, Ordering::Relaxed);
        Self {
            inner,
            entry,
            released: false,
        }
    }

    /// The invocation finished (well or not) and the session may idle.
    fn release(mut self) {
        self.released = true;
        self.entry.busy.store(false, Ordering::Relaxed);
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if !self.released {
            self.entry.busy.store(false, Ordering::Relaxed);
            self.inner.end(self.entry, EndReason::Fault);
        }
    }
}

async fn reap_loop(inner: Weak<ManagerInner>) {
    let interval = match inner.upgrade() {
        Some(inner) => inner.config.reap_interval(),
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        match inner.upgrade() {
            Some(inner) => {
                inner.reap();
            }
            None => return,
        }
    }
}

/// Checks a session id: 1 to [`MAX_SESSION_ID_LEN`] bytes, no control characters.
pub fn validate_session_id(session_id: &str) -> Result<(), InvokeError> {
    if session_id.is_empty() || session_id.len() > MAX_SESSION_ID_LEN {
        return Err(InvokeError::InvalidRequest(format!(
            "session id must be 1 to {MAX_SESSION_ID_LEN} characters"
        )));
    }
    if session_id.chars().any(char::is_control) {
        return Err(InvokeError::InvalidRequest(
            "session id must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// The span of one invocation, with OpenTelemetry GenAI and AgentCore
/// attributes. Its context carries `session.id` as baggage, so every span
/// below it (gateway, policy, memory) is tagged with the session, and the
/// id is the same across a session's invocations.
fn invocation_span(
    agent: &CompiledAgent,
    request: &InvocationRequest,
    request_id: &str,
) -> tracing::Span {
    let span = tracing::info_span!(
        "invoke_agent",
        otel.name = %format!("invoke_agent {}", agent.name()),
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = %agent.name(),
        gen_ai.agent.version = %agent.version(),
        session.id = %request.session_id,
        gen_ai.conversation.id = %request.session_id,
        corral.actor.id = %request.actor_id,
        corral.request.id = %request_id,
        corral.session.new = tracing::field::Empty,
    );
    if !span.is_disabled() {
        let parent = tracing::Span::current().context();
        let _ = span.set_parent(corral_telemetry::session_context(
            &parent,
            &request.session_id,
        ));
    }
    span
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::Stopped => "stopped",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxLifetime => "max_lifetime",
            EndReason::Fault => "fault",
            EndReason::Shutdown => "shutdown",
            EndReason::Reclaimed => "reclaimed",
        }
    }
}
