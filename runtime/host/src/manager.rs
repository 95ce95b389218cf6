//! The session manager: maps session ids to live sandboxes, runs invocations,
//! and ends sessions on stop, idle timeout, maximum lifetime or fault.

use corral_telemetry::{DirectSpan, KeyValue, OpenTelemetrySpanExt, span_attributes};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument;

use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use corral_journal::Entry as JournalEntry;

use crate::admission::{Applicant, Refusal, SessionKey, SessionQuota, SessionTable};
use crate::agent::{AgentHost, CompiledAgent};
use crate::bindings::types::Invocation;
use crate::config::SessionConfig;
use crate::error::ResumeFailure;
use crate::error::{AgentErrorKind, InvokeError};
use crate::executor::GuestExecutor;
use crate::host_calls::HostCalls;
use crate::replay::{self, GuestReturn, ReplayStop};
use crate::services::HostServices;
use crate::session::{
    CallOutcome, HibernatedSession, Sandbox, SessionEntry, SessionHandles, SessionInfo,
    StartFailure,
};
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
    /// Moved to another replica (its journal resumes it there).
    HandedOff,
}

struct ManagerInner {
    host: Arc<AgentHost>,
    services: Arc<HostServices>,
    config: SessionConfig,
    sessions: Mutex<SessionTable>,
    /// Sessions whose sandbox was dropped while idle; their journal keeps
    /// them. Locked after `sessions` when both are held.
    hibernated: Mutex<HashMap<SessionKey, HibernatedSession>>,
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
            threads => match GuestExecutor::new(threads, config.guest_inline_budget) {
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
            hibernated: Mutex::new(HashMap::new()),
            executor,
        });
        if !inner.config.shared_journal {
            inner.recover_from_journal();
        }
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
        // Log lines written during the invocation name it when the log
        // filter enables this span (`CORRAL_LOG=info`); tracing leaves its
        // target out, and at the default filter it is not made at all.
        let log_context = tracing::info_span!(
            target: corral_telemetry::LOG_CONTEXT_TARGET,
            "invocation",
            gen_ai.agent.name = agent.name(),
            session.id = request.session_id.as_str(),
            corral.request.id = request_id.as_str(),
        );
        let inner = self.inner.clone();
        let agent = agent.clone();
        let invocation = span.clone();
        // Boxed at once: this future then holds a pointer, not the
        // invocation's state machine, which every layer above would copy.
        //
        // Not polled in `invoke_agent`'s scope: the spans below it are
        // opened under it explicitly, and the scope was entered on every
        // wake of the invocation, each time on cold caches (~0.8 points of
        // a step on the tracing bench). Where `tracing` spans are opened
        // under it (`session.start`), its scope is entered for that.
        let call = Box::pin(
            async move {
                inner
                    .invoke_in_span(&agent, request, request_id, invocation)
                    .await
            }
            .instrument(log_context),
        );
        let result = match &self.inner.executor {
            Some(executor) => executor.run(call).await.unwrap_or_else(|error| {
                Err(InvokeError::Internal(format!(
                    "the invocation task {error}; the session ended"
                )))
            }),
            None => call.await,
        };
        match &result {
            Ok(response) => {
                span.set_attribute("corral.session.new", response.new_session);
            }
            Err(error) => span.record_error(error.kind(), error.to_string()),
        }
        result
    }

    /// Ends a session at once, freeing its sandbox; an in-flight invocation
    /// fails with [`InvokeError::Stopped`]. Returns whether it existed.
    pub fn stop(&self, agent: &str, session_id: &str) -> bool {
        let key: SessionKey = (Arc::from(agent), Arc::from(session_id));
        let entry = self.inner.sessions.lock().remove(&key);
        let hibernated = self.inner.hibernated.lock().remove(&key).is_some();
        match entry {
            Some(entry) => {
                self.inner.finish(&entry, EndReason::Stopped);
                true
            }
            None => self.inner.end_journaled(session_id, EndReason::Stopped) || hibernated,
        }
    }

    /// Ends every session whose id matches, across agents; returns how many.
    pub fn stop_session_everywhere(&self, session_id: &str) -> usize {
        let (removed, hibernated) = self.inner.remove_everywhere(session_id);
        for entry in &removed {
            self.inner.finish(entry, EndReason::Stopped);
        }
        if removed.is_empty() {
            // Hibernated, or live before a restart: ended in the journal.
            let ended = self.inner.end_journaled(session_id, EndReason::Stopped);
            return hibernated.max(usize::from(ended));
        }
        removed.len() + hibernated
    }

    /// Whether `session_id` has a sandbox, or hibernates, here (on any agent).
    pub fn has_session(&self, session_id: &str) -> bool {
        self.inner
            .sessions
            .lock()
            .iter()
            .any(|((_, id), _)| &**id == session_id)
            || self
                .inner
                .hibernated
                .lock()
                .keys()
                .any(|(_, id)| &**id == session_id)
    }

    /// Drops `session_id`'s sandboxes here without ending the session: its
    /// journal stays resumable, for the replica that takes it over. An
    /// invocation in flight fails with [`InvokeError::Stopped`]. Returns
    /// how many sandboxes (and hibernated entries) it dropped.
    pub fn hand_off(&self, session_id: &str) -> usize {
        let (removed, hibernated) = self.inner.remove_everywhere(session_id);
        for entry in &removed {
            self.inner.finish(entry, EndReason::HandedOff);
        }
        removed.len() + hibernated
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
        infos.extend(
            self.inner
                .hibernated
                .lock()
                .iter()
                .map(|((agent, session), h)| h.info(agent, session)),
        );
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

    /// Number of live sessions (with a sandbox; hibernated ones not counted).
    pub fn live_sessions(&self) -> usize {
        self.inner.sessions.lock().len()
    }

    /// Number of hibernated sessions.
    pub fn hibernated_sessions(&self) -> usize {
        self.inner.hibernated.lock().len()
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
    /// Takes every live entry of `session_id` (on any agent) out of the
    /// table and forgets its hibernated ones; returns the live entries and
    /// how many hibernated ones there were.
    fn remove_everywhere(&self, session_id: &str) -> (Vec<Arc<SessionEntry>>, usize) {
        let removed: Vec<Arc<SessionEntry>> = {
            let mut sessions = self.sessions.lock();
            let keys: Vec<SessionKey> = sessions
                .iter()
                .map(|(key, _)| key)
                .filter(|(_, id)| &**id == session_id)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| sessions.remove(k)).collect()
        };
        let hibernated = {
            let mut hibernated = self.hibernated.lock();
            let before = hibernated.len();
            hibernated.retain(|(_, id), _| &**id != session_id);
            before - hibernated.len()
        };
        (removed, hibernated)
    }

    async fn invoke_in_span(
        &self,
        agent: &Arc<CompiledAgent>,
        request: InvocationRequest,
        request_id: String,
        span: DirectSpan,
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
            let mut new_segment = None;
            if new_session {
                let start_span = span.in_scope_sync(|| {
                    tracing::info_span!(
                        "session.start",
                        otel.name = format!("session.start {}", entry.agent.name()).as_str(),
                        gen_ai.agent.name = %entry.agent.name(),
                        gen_ai.agent.version = %entry.agent.version(),
                        corral.session.resumed_invocations = tracing::field::Empty,
                    )
                });
                match self
                    .start_sandbox(&entry)
                    .instrument(start_span.clone())
                    .await
                {
                    Ok(started) => {
                        let how = if started.resumed > 0 {
                            start_span
                                .record("corral.session.resumed_invocations", started.resumed);
                            entry.invocations.store(started.resumed, Ordering::Relaxed);
                            format!(
                                " (resumed from its journal: {} invocations replayed)",
                                started.resumed
                            )
                        } else {
                            String::new()
                        };
                        entry.log.push(
                            LogSource::Host,
                            LogLevel::Info,
                            format!(
                                "session started on {} version {}{how}",
                                entry.agent.name(),
                                entry.agent.version()
                            ),
                            vec![("event".into(), "session_start".into())],
                        );
                        new_segment = started.new_segment;
                        *guard = Some(started.sandbox);
                    }
                    Err(error) => {
                        busy.release();
                        self.end(&entry, EndReason::Fault);
                        return Err(error);
                    }
                }
            }
            let Some(sandbox) = guard.as_mut() else {
                continue;
            };
            let scope = InvocationScope::new(
                request.actor_id.clone(),
                request_id.clone(),
                request.stream.clone(),
                span.clone(),
            );
            sandbox.calls().live_invocation(&request_id);
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
            let (result, scope) = match outcome {
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
                Ok(CallOutcome::Diverged(divergence)) => {
                    // Only a replay diverges; a live call never does.
                    *guard = None;
                    self.end(&entry, EndReason::Fault);
                    return Err(InvokeError::Internal(format!(
                        "a live invocation reported a replay divergence: {divergence}"
                    )));
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
            let calls = sandbox.calls().take();
            let limit = sandbox.limits().response_bytes;
            if let Err(error) = self
                .journal(
                    &entry,
                    new_segment,
                    &invocation,
                    calls,
                    &GuestReturn::of(&result),
                    &span,
                )
                .await
            {
                // The sandbox is now ahead of its journal: drop it, so the
                // next invocation resumes from what the journal holds.
                *guard = None;
                self.end(&entry, EndReason::Fault);
                return Err(error);
            }
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    let (kind, message): (AgentErrorKind, String) = error.into();
                    return Err(InvokeError::Agent { kind, message });
                }
            };
            // Streamed chunks and the final payload share one budget.
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
    /// journaled: `started` and the instantiation's calls when the sandbox
    /// is new (`new_segment`), the invocation, its host calls and what the
    /// guest returned. Durable when it returns; the response is not
    /// returned otherwise.
    async fn journal(
        &self,
        entry: &SessionEntry,
        new_segment: Option<Vec<corral_journal::HostCall>>,
        invocation: &Invocation,
        calls: Vec<corral_journal::HostCall>,
        returned: &GuestReturn,
        span: &DirectSpan,
    ) -> Result<(), InvokeError> {
        let Some(journal) = self.config.journal.clone() else {
            return Ok(());
        };
        let now_ms = now_ms();
        let mut entries = Vec::with_capacity(calls.len() + 3);
        if let Some(startup) = new_segment {
            entries.push(JournalEntry::Started(
                self.session_start(entry, now_ms, None),
            ));
            entries.extend(startup.into_iter().map(JournalEntry::HostCall));
        }
        entries.push(JournalEntry::Invocation {
            request_id: invocation.request_id.clone(),
            actor_id: invocation.actor_id.clone(),
            content_type: invocation.content_type.clone(),
            payload: invocation.payload.clone(),
            traceparent: span.traceparent(),
        });
        entries.extend(calls.into_iter().map(JournalEntry::HostCall));
        entries.push(JournalEntry::Response {
            request_id: invocation.request_id.clone(),
            ok: returned.ok,
            content_type: returned.content_type.clone(),
            payload: returned.payload.clone(),
        });
        // A session ended (stopped, or handed off to another replica that
        // may be appending already) records nothing more here.
        if entry.ended.load(Ordering::Acquire) {
            return Err(InvokeError::Stopped);
        }
        // Written here (in memory, cheap); the wait for the disk, when
        // another writer's flush has not covered it, runs off the async
        // threads.
        let (_, ticket) = journal
            .append_unsynced(&entry.session_id, &entries, now_ms)
            .map_err(InvokeError::Journal)?;
        if !journal.is_durable(ticket) {
            let session = entry.session_id.to_string();
            tokio::task::spawn_blocking(move || journal.sync(&session, ticket))
                .await
                .map_err(|e| InvokeError::Internal(format!("journal sync task failed: {e}")))?
                .map_err(InvokeError::Journal)?;
        }
        entry.journaled.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The `started` entry of a new sandbox of `entry`.
    fn session_start(
        &self,
        entry: &SessionEntry,
        at_ms: u64,
        parent: Option<corral_journal::ForkPoint>,
    ) -> corral_journal::SessionStart {
        session_start(&self.config, &entry.agent, at_ms, parent)
    }

    /// A sandbox for `entry`: rebuilt from the session's journal when it has
    /// a resumable one (same agent and component, not ended), else new.
    async fn start_sandbox(
        &self,
        entry: &Arc<SessionEntry>,
    ) -> Result<StartedSandbox, InvokeError> {
        let journaled = self.config.journal.is_some();
        if let Some(segment) = self.resumable_segment(entry).await? {
            return self.resume(entry, segment).await;
        }
        let mut sandbox = self
            .instantiate(entry, || HostCalls::live(journaled))
            .await
            .map_err(|failure| match failure {
                StartFailure::Fault(fault) => start_fault(fault),
                StartFailure::Diverged(divergence) => InvokeError::Internal(format!(
                    "a live start reported a replay divergence: {divergence}"
                )),
            })?;
        let startup = sandbox.calls().take();
        Ok(StartedSandbox {
            sandbox,
            new_segment: journaled.then_some(startup),
            resumed: 0,
        })
    }

    /// The journal segment `entry`'s session can resume from, if any.
    async fn resumable_segment(
        &self,
        entry: &SessionEntry,
    ) -> Result<Option<corral_journal::Segment>, InvokeError> {
        let Some(journal) = self.config.journal.clone() else {
            return Ok(None);
        };
        let session = entry.session_id.to_string();
        let read = tokio::task::spawn_blocking(move || journal.last_segment(&session))
            .await
            .map_err(|e| InvokeError::Internal(format!("journal read task failed: {e}")))?;
        let segment = read.map_err(|cause| InvokeError::Resume {
            session: entry.session_id.to_string(),
            cause: ResumeFailure::Journal(cause),
        })?;
        let Some(segment) = segment else {
            return Ok(None);
        };
        if segment.ended.is_some() || segment.invocations.is_empty() {
            return Ok(None);
        }
        if segment.start.agent != entry.agent.name() || segment.start.digest != entry.agent.digest()
        {
            entry.log.push(
                LogSource::Host,
                LogLevel::Warn,
                format!(
                    "the journal recorded {} version {} ({}); the session starts afresh on {} version {}",
                    segment.start.agent,
                    segment.start.version,
                    &segment.start.digest[..segment.start.digest.len().min(12)],
                    entry.agent.name(),
                    entry.agent.version()
                ),
                vec![("event".into(), "session_not_resumed".into())],
            );
            return Ok(None);
        }
        Ok(Some(segment))
    }

    /// Rebuilds `entry`'s sandbox by replaying `segment` (no model, tool or
    /// memory call is made), then leaves it live and journaling.
    async fn resume(
        &self,
        entry: &Arc<SessionEntry>,
        mut segment: corral_journal::Segment,
    ) -> Result<StartedSandbox, InvokeError> {
        let span = tracing::info_span!(
            "session.resume",
            otel.name = format!("session.resume {}", entry.agent.name()).as_str(),
            corral.replay = true,
            session.id = %entry.session_id,
            corral.journal.offset = segment.offset,
            corral.journal.host_calls = segment.host_calls() as u64,
        );
        link_recorded_traces(&span, &segment);
        let failed = |cause| InvokeError::Resume {
            session: entry.session_id.to_string(),
            cause,
        };
        let startup = std::mem::take(&mut segment.startup_calls);
        let mut sandbox = self
            .instantiate(entry, || HostCalls::replaying(startup.clone()))
            .instrument(span.clone())
            .await
            .map_err(|failure| match failure {
                StartFailure::Fault(Fault::PoolExhausted(detail)) => {
                    InvokeError::PoolExhausted(detail)
                }
                StartFailure::Fault(fault) => failed(ResumeFailure::Fault(fault)),
                StartFailure::Diverged(divergence) => failed(ResumeFailure::Diverged(divergence)),
            })?;
        let mut resumed = 0;
        for (index, recorded) in segment.invocations.iter_mut().enumerate() {
            if recorded.response.is_none() {
                break;
            }
            replay::replay_invocation(
                &mut sandbox,
                &entry.session_id,
                index as u64 + 1,
                recorded,
                &span,
            )
            .await
            .map_err(|stop| match stop {
                ReplayStop::Diverged(divergence) => failed(ResumeFailure::Diverged(divergence)),
                ReplayStop::Fault(fault) => failed(ResumeFailure::Fault(fault)),
            })?;
            resumed += 1;
        }
        sandbox.calls().go_live(true);
        sandbox.calls().take();
        entry.journaled.store(true, Ordering::Relaxed);
        Ok(StartedSandbox {
            sandbox,
            new_segment: None,
            resumed,
        })
    }

    /// Instantiates `entry`'s agent with the seam `calls` makes. When the
    /// engine's pool has no free slot, the session idle longest (any agent)
    /// is reclaimed and the start tried once more.
    async fn instantiate(
        &self,
        entry: &Arc<SessionEntry>,
        calls: impl Fn() -> HostCalls,
    ) -> Result<Sandbox, StartFailure> {
        let start = || {
            Sandbox::start(
                &self.host,
                &entry.agent,
                self.services.clone(),
                SessionHandles {
                    session_id: entry.session_id.clone(),
                    log: entry.log.clone(),
                    memory_quota: entry.memory_quota.clone(),
                },
                &self.config,
                calls(),
            )
        };
        match start().await {
            Err(StartFailure::Fault(Fault::PoolExhausted(detail))) => {
                let reclaimed = self.sessions.lock().reclaim_oldest_idle();
                match reclaimed {
                    Some(victim) => {
                        self.reclaimed(&victim);
                        start().await
                    }
                    None => Err(StartFailure::Fault(Fault::PoolExhausted(detail))),
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
            let mut entry = SessionEntry::new(
                agent.clone(),
                session_id.clone(),
                caller.clone(),
                &self.config,
            );
            if let Some(hibernated) = self.hibernated.lock().get(&key) {
                entry = entry.resumes(hibernated);
            }
            let entry = Arc::new(entry);
            let applicant = Applicant {
                agent: &key.0,
                caller: caller.as_ref(),
                memory_bytes: entry.reserved_bytes,
            };
            match sessions.admit(&applicant, &self.config) {
                Ok(reclaimed) => {
                    sessions.insert(key.clone(), entry.clone());
                    self.hibernated.lock().remove(&key);
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
            self.reclaimed(entry);
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
        if reason.ends_for_good() && entry.journaled.load(Ordering::Relaxed) {
            self.append_ended(&entry.session_id, reason);
        }
        self.record_end(entry, reason);
    }

    /// A session reclaimed for room: journaled, it hibernates (its next
    /// invocation resumes it); otherwise it has ended.
    fn reclaimed(&self, entry: &Arc<SessionEntry>) {
        if self.config.journal.is_some() && entry.journaled.load(Ordering::Relaxed) {
            let key: SessionKey = (entry.agent.name_arc(), entry.session_id.clone());
            self.hibernated
                .lock()
                .insert(key, HibernatedSession::of(entry));
        }
        self.record_end(entry, EndReason::Reclaimed);
    }

    /// Records in the journal that a session without a sandbox (hibernated,
    /// or live before a restart) ended, when its journal can still resume;
    /// returns whether it could.
    fn end_journaled(&self, session_id: &str, reason: EndReason) -> bool {
        let Some(journal) = &self.config.journal else {
            return false;
        };
        match journal.last_segment(session_id) {
            Ok(Some(segment)) if segment.ended.is_none() => {
                self.append_ended(session_id, reason);
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(session.id = %session_id, "cannot read the session journal: {error}");
                false
            }
        }
    }

    /// Appends `ended` to a session's journal: its next invocation starts
    /// afresh.
    fn append_ended(&self, session_id: &str, reason: EndReason) {
        let Some(journal) = &self.config.journal else {
            return;
        };
        let now = now_ms();
        let ended = JournalEntry::Ended {
            reason: reason.as_str().to_string(),
            at_ms: now,
        };
        if let Err(error) = journal.append(session_id, &[ended], now) {
            tracing::warn!(session.id = %session_id, "cannot record the session's end in its journal: {error}");
        }
    }

    /// The `session.stop` span and log line of an ended session.
    fn record_end(&self, entry: &SessionEntry, reason: EndReason) {
        let span = tracing::info_span!(
            parent: None,
            "session.stop",
            otel.name = format!("session.stop {}", entry.agent.name()).as_str(),
            gen_ai.agent.name = %entry.agent.name(),
            corral.session.end_reason = reason.as_str(),
            corral.session.invocations = entry.invocations.load(Ordering::Relaxed),
            corral.session.lifetime_ms = entry.created.elapsed().as_millis() as u64,
        );
        span.set_session_parent(corral_telemetry::Context::new(), &entry.session_id);
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
        let hibernated_expired: Vec<(SessionKey, &'static str)> = {
            let mut hibernated = self.hibernated.lock();
            let keys: Vec<(SessionKey, &'static str)> = hibernated
                .iter()
                .filter_map(|(key, h)| h.expired().map(|why| (key.clone(), why)))
                .collect();
            for (key, _) in &keys {
                hibernated.remove(key);
            }
            keys
        };
        for ((_, session), why) in &hibernated_expired {
            let reason = if *why == "max_lifetime" {
                EndReason::MaxLifetime
            } else {
                EndReason::IdleTimeout
            };
            self.append_ended(session, reason);
        }
        self.hibernate_idle();
        expired.len() + hibernated_expired.len()
    }

    /// Lists the sessions the journal can resume (live before a restart or
    /// crash) as hibernated, so they show in listings and end after their
    /// idle timeout or lifetime like any other; those already past it end
    /// now. Agents' own timeouts are not known here: the defaults apply.
    fn recover_from_journal(&self) {
        let Some(journal) = &self.config.journal else {
            return;
        };
        let summaries = match journal.sessions() {
            Ok(summaries) => summaries,
            Err(error) => {
                tracing::warn!("cannot list journaled sessions: {error}");
                return;
            }
        };
        let now = now_ms();
        let instant = Instant::now();
        let since = |ms: u64| Duration::from_millis(now.saturating_sub(ms));
        let mut expired = Vec::new();
        {
            let mut hibernated = self.hibernated.lock();
            for summary in summaries.into_iter().filter(|s| s.resumable()) {
                let Some(sandbox) = &summary.sandbox else {
                    continue;
                };
                let (age, idle) = (since(sandbox.at_ms), since(summary.updated_ms));
                let (created, hibernated_since) =
                    match (instant.checked_sub(age), instant.checked_sub(idle)) {
                        (Some(created), Some(idle_since))
                            if age < self.config.max_lifetime
                                && idle < self.config.idle_timeout =>
                        {
                            (created, idle_since)
                        }
                        _ => {
                            let reason = if age >= self.config.max_lifetime {
                                EndReason::MaxLifetime
                            } else {
                                EndReason::IdleTimeout
                            };
                            expired.push((summary.session.clone(), reason));
                            continue;
                        }
                    };
                let at = |ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(ms);
                hibernated.insert(
                    (
                        Arc::from(sandbox.agent.as_str()),
                        Arc::from(summary.session.as_str()),
                    ),
                    HibernatedSession {
                        version: Arc::from(sandbox.version.as_str()),
                        created,
                        created_at: at(sandbox.at_ms),
                        hibernated: hibernated_since,
                        hibernated_at: at(summary.updated_ms),
                        invocations: 0,
                        caller: None,
                        idle_timeout: self.config.idle_timeout,
                        max_lifetime: self.config.max_lifetime,
                    },
                );
            }
        }
        for (session, reason) in expired {
            self.append_ended(&session, reason);
        }
    }

    /// Drops the sandboxes of journaled sessions idle past `hibernate_after`
    /// (their journal keeps them); returns how many.
    fn hibernate_idle(&self) -> usize {
        let (Some(_), Some(after)) = (&self.config.journal, self.config.hibernate_after) else {
            return 0;
        };
        let mut sessions = self.sessions.lock();
        let candidates: Vec<SessionKey> = sessions
            .iter()
            .filter(|(_, entry)| {
                entry.journaled.load(Ordering::Relaxed)
                    && entry.idle_for() >= after
                    && entry.is_idle()
            })
            .map(|(key, _)| key.clone())
            .collect();
        let mut count = 0;
        for key in candidates {
            let Some(entry) = sessions.get(&key).cloned() else {
                continue;
            };
            // Under its sandbox lock, so no invocation is starting in it.
            if !entry.claim_idle() {
                continue;
            }
            sessions.remove(&key);
            self.hibernated
                .lock()
                .insert(key, HibernatedSession::of(&entry));
            entry.log.push(
                LogSource::Host,
                LogLevel::Info,
                "session hibernated: idle, its sandbox dropped; the next invocation resumes it"
                    .into(),
                vec![("event".into(), "session_hibernated".into())],
            );
            count += 1;
        }
        if count > 0 {
            tracing::debug!(sessions = count, "hibernated idle sessions");
        }
        count
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
            // Ending sessions writes to their journals: off the async threads.
            Some(inner) => {
                let _ = tokio::task::spawn_blocking(move || inner.reap()).await;
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
/// attributes, under the current span (the server's request span, or none:
/// a new trace). A direct span, as the agent loop's are: as a `tracing`
/// span it alone cost ~4% of a step on the tracing bench. It is in the
/// session (`set_session`): it and every span below it (steps, model and
/// tool calls, gateway, memory) are tagged with the session's id
/// (`session.id`, `gen_ai.conversation.id`) at close, the same across a
/// session's invocations, and outbound calls carry it as baggage, built
/// only when one is made.
fn invocation_span(
    agent: &CompiledAgent,
    request: &InvocationRequest,
    request_id: &str,
) -> DirectSpan {
    let span = DirectSpan::in_current(|| {
        (
            corral_telemetry::span_name("invoke_agent", agent.name()),
            // Room for `corral.session.new`, or an error's type.
            span_attributes(
                [
                    KeyValue::new("gen_ai.operation.name", "invoke_agent"),
                    KeyValue::new("gen_ai.agent.name", agent.name_arc()),
                    KeyValue::new("gen_ai.agent.version", agent.version_arc()),
                    KeyValue::new("corral.actor.id", request.actor_id.clone()),
                    KeyValue::new("corral.request.id", request_id.to_string()),
                ],
                1,
            ),
        )
    });
    span.set_session(&request.session_id);
    span
}

impl EndReason {
    /// Whether the session is over (recorded in its journal, so it does not
    /// resume); a fault, shutdown or reclaim leaves it resumable.
    fn ends_for_good(self) -> bool {
        matches!(
            self,
            EndReason::Stopped | EndReason::IdleTimeout | EndReason::MaxLifetime
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            EndReason::Stopped => "stopped",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxLifetime => "max_lifetime",
            EndReason::Fault => "fault",
            EndReason::Shutdown => "shutdown",
            EndReason::Reclaimed => "reclaimed",
            EndReason::HandedOff => "handed_off",
        }
    }
}

/// A sandbox just started for a session.
struct StartedSandbox {
    sandbox: Sandbox,
    /// The instantiation's host calls when a new journal segment begins
    /// (`started` is written with the first invocation).
    new_segment: Option<Vec<corral_journal::HostCall>>,
    /// Invocations replayed to rebuild it (0: a new sandbox).
    resumed: u64,
}

/// The invocation error of a sandbox that did not start.
fn start_fault(fault: Fault) -> InvokeError {
    match fault {
        Fault::PoolExhausted(detail) => InvokeError::PoolExhausted(detail),
        other => InvokeError::Instantiate(other.to_string()),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The `started` entry of a sandbox of `agent`.
pub(crate) fn session_start(
    config: &SessionConfig,
    agent: &CompiledAgent,
    at_ms: u64,
    parent: Option<corral_journal::ForkPoint>,
) -> corral_journal::SessionStart {
    let cpu_time = agent.settings().cpu_time.unwrap_or(config.limits.cpu_time);
    corral_journal::SessionStart {
        agent: agent.name().to_string(),
        version: agent.version().to_string(),
        digest: agent.digest().to_string(),
        limits: serde_json::json!({
            "memoryBytes": config.memory_cap(agent.settings()),
            "cpuTimeMs": cpu_time.as_millis() as u64,
        }),
        at_ms,
        parent,
    }
}

/// Links `span` to the traces of the invocations a resume re-runs (the
/// first and the last, so a resume points at where its state came from).
fn link_recorded_traces(span: &tracing::Span, segment: &corral_journal::Segment) {
    if span.is_disabled() {
        return;
    }
    let first = segment.invocations.first();
    let last = segment
        .invocations
        .last()
        .filter(|_| segment.invocations.len() > 1);
    for recorded in first.into_iter().chain(last) {
        if let Some(context) = recorded
            .traceparent
            .as_deref()
            .and_then(corral_telemetry::span_context_from_traceparent)
        {
            span.add_link(context);
        }
    }
}
