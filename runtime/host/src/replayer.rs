//! [`SessionReplayer`]: re-runs a recorded session offline and reports the
//! first divergence, or forks it at a step into a new, live session.

use std::sync::Arc;

use corral_journal::{ForkPoint, JournalError, Segment};
use corral_telemetry::OpenTelemetrySpanExt;
use serde::Serialize;
use tracing::Instrument;

use crate::agent::{AgentHost, CompiledAgent};
use crate::config::SessionConfig;
use crate::divergence::Divergence;
use crate::host_calls::HostCalls;
use crate::memory_quota::MemoryWriteWindow;
use crate::replay::{self, GuestReturn, ReplayStop};
use crate::services::HostServices;
use crate::session::{CallOutcome, Sandbox, SessionHandles, StartFailure};
use crate::session_log::SessionLog;
use crate::state::InvocationScope;
use corral_sandbox::Fault;

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// The session step (model call, from 1) from which calls run live
    /// against the replayer's services; `None`: replay everything offline.
    pub until_step: Option<u64>,
    /// Journal the run as this new session (a fork linked to its parent);
    /// needs `until_step` and a journal in the replayer's configuration.
    pub fork: Option<String>,
}

/// One invocation as replayed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedInvocation {
    /// Its number in the run, from 1.
    pub number: u64,
    /// Request id.
    pub request_id: String,
    /// Whether any of it ran live (at or after the fork step).
    pub live: bool,
    /// Whether the agent returned a response (not an error).
    pub ok: bool,
    /// The response, or the agent's error, as text.
    pub response: String,
}

/// Where a fork branched off.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkReport {
    /// The new session.
    pub session: String,
    /// The parent session.
    pub parent: String,
    /// The parent's journal offset of the first call made live.
    pub parent_offset: u64,
    /// The session step that ran live first.
    pub step: u64,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// The session replayed.
    pub session: String,
    /// Agent name in the journal.
    pub agent: String,
    /// Component digest in the journal.
    pub recorded_digest: String,
    /// Component digest replayed.
    pub digest: String,
    /// Invocations run, in order.
    pub invocations: Vec<ReplayedInvocation>,
    /// Model calls (steps) the journal records.
    pub recorded_steps: u64,
    /// Host calls the journal records.
    pub recorded_host_calls: usize,
    /// The first difference, if the agent diverged.
    pub divergence: Option<Divergence>,
    /// The new session, when forking.
    pub fork: Option<ForkReport>,
}

impl ReplayReport {
    /// Whether every replayed invocation did and returned what it did then.
    pub fn identical(&self) -> bool {
        self.divergence.is_none()
    }
}

/// Why a replay could not run (a divergence is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// `--until` names a step the session does not have.
    #[error("step {step} is not in the session: it records steps 1 to {steps}")]
    StepOutOfRange {
        /// The step asked for.
        step: u64,
        /// Steps recorded.
        steps: u64,
    },
    /// A fork needs a step to branch at and a journal to write to.
    #[error("a fork needs --until STEP and a journal to write the new session to")]
    ForkNeedsJournal,
    /// The fork's session id is taken.
    #[error("session {0} already has a journal; choose another id for the fork")]
    ForkExists(String),
    /// The journal could not be read or written.
    #[error("session journal failed")]
    Journal(#[source] JournalError),
    /// The host failed (a bug, not the journal's or the guest's doing).
    #[error("internal error: {0}")]
    Internal(String),
    /// The sandbox failed (a trap or a limit), replaying or live.
    #[error("the sandbox failed in invocation {invocation}: {fault}")]
    Fault {
        /// The invocation (0: instantiation).
        invocation: u64,
        /// The failure.
        fault: Fault,
    },
}

/// Replays recorded sessions in sandboxes of its own host. Offline replay
/// makes no model, tool or memory call; the services are reached only after
/// a fork point.
pub struct SessionReplayer {
    host: Arc<AgentHost>,
    services: Arc<HostServices>,
    config: SessionConfig,
}

impl SessionReplayer {
    /// A replayer whose forks reach `services` and are journaled in
    /// `config.journal`.
    pub fn new(host: Arc<AgentHost>, services: HostServices, config: SessionConfig) -> Self {
        Self {
            host,
            services: Arc::new(services),
            config,
        }
    }

    /// Replays `segment` (a sandbox's run from `session`'s journal) in
    /// `agent`, which need not be the recorded component: a changed one
    /// shows where it diverges.
    pub async fn replay(
        &self,
        agent: &CompiledAgent,
        session: &str,
        segment: Segment,
        options: &ReplayOptions,
    ) -> Result<ReplayReport, ReplayError> {
        let span = tracing::info_span!(
            "session.replay",
            otel.name = format!("session.replay {}", agent.name()).as_str(),
            corral.replay = true,
            session.id = %session,
            corral.journal.offset = segment.offset,
        );
        // The live part of a fork's spans (steps, model and tool calls) are
        // tagged with the session at close, from here.
        span.set_session(session);
        self.run(agent, session, segment, options)
            .instrument(span)
            .await
    }

    async fn run(
        &self,
        agent: &CompiledAgent,
        session: &str,
        mut segment: Segment,
        options: &ReplayOptions,
    ) -> Result<ReplayReport, ReplayError> {
        let steps = segment.steps();
        let fork = match (&options.fork, options.until_step, &self.config.journal) {
            (None, _, _) => None,
            (Some(child), Some(step), Some(journal)) => {
                let exists = journal
                    .summary(child)
                    .map_err(ReplayError::Journal)?
                    .is_some();
                if exists {
                    return Err(ReplayError::ForkExists(child.clone()));
                }
                Some((child.clone(), journal.clone(), step))
            }
            _ => return Err(ReplayError::ForkNeedsJournal),
        };
        if let Some(step) = options.until_step
            && (step == 0 || step > steps)
        {
            return Err(ReplayError::StepOutOfRange { step, steps });
        }
        let mut report = ReplayReport {
            session: session.to_string(),
            agent: segment.start.agent.clone(),
            recorded_digest: segment.start.digest.clone(),
            digest: agent.digest().to_string(),
            invocations: Vec::new(),
            recorded_steps: steps,
            recorded_host_calls: segment.host_calls(),
            divergence: None,
            fork: None,
        };
        let mut calls = HostCalls::replaying(std::mem::take(&mut segment.startup_calls));
        if let Some(step) = options.until_step {
            calls.live_from_step(step);
        }
        let handles = SessionHandles {
            session_id: Arc::from(
                fork.as_ref()
                    .map_or(session, |(child, _, _)| child.as_str()),
            ),
            log: Arc::new(SessionLog::new(session, self.config.log_capacity_bytes)),
            memory_quota: Arc::new(parking_lot::Mutex::new(MemoryWriteWindow::default())),
        };
        let started = Sandbox::start(
            &self.host,
            agent,
            self.services.clone(),
            handles,
            &self.config,
            calls,
        )
        .await;
        let mut sandbox = match started {
            Ok(sandbox) => sandbox,
            Err(StartFailure::Diverged(divergence)) => {
                report.divergence = Some(*divergence);
                return Ok(report);
            }
            Err(StartFailure::Fault(fault)) => {
                return Err(ReplayError::Fault {
                    invocation: 0,
                    fault,
                });
            }
        };
        let mut pending_start = fork.as_ref().map(|(_, _, step)| {
            let parent_offset = segment.step_offset(*step).unwrap_or(segment.end_offset);
            report.fork = Some(ForkReport {
                session: options.fork.clone().unwrap_or_default(),
                parent: session.to_string(),
                parent_offset,
                step: *step,
            });
            corral_journal::Entry::Started(crate::manager::session_start(
                &self.config,
                agent,
                crate::manager::now_ms(),
                Some(ForkPoint {
                    session: session.to_string(),
                    offset: parent_offset,
                }),
            ))
        });
        let startup_calls = sandbox.calls().take();
        let mut startup = Some(startup_calls);
        for (index, recorded) in segment.invocations.iter_mut().enumerate() {
            if recorded.response.is_none() {
                break;
            }
            let number = index as u64 + 1;
            let live_before = sandbox.calls().forked();
            let returned = if live_before {
                let child = fork
                    .as_ref()
                    .map_or(session, |(child, _, _)| child.as_str());
                self.run_live(&mut sandbox, child, number, recorded).await?
            } else {
                match replay::replay_invocation(
                    &mut sandbox,
                    session,
                    number,
                    recorded,
                    &tracing::Span::current(),
                )
                .await
                {
                    Ok(returned) => returned,
                    Err(ReplayStop::Diverged(divergence)) => {
                        report.divergence = Some(*divergence);
                        break;
                    }
                    Err(ReplayStop::Fault(fault)) => {
                        return Err(ReplayError::Fault {
                            invocation: number,
                            fault,
                        });
                    }
                }
            };
            let invocation_calls = sandbox.calls().take();
            if let Some((child, journal, _)) = &fork {
                let mut entries = Vec::with_capacity(invocation_calls.len() + 3);
                if let Some(start) = pending_start.take() {
                    entries.push(start);
                    entries.extend(
                        startup
                            .take()
                            .unwrap_or_default()
                            .into_iter()
                            .map(corral_journal::Entry::HostCall),
                    );
                }
                entries.push(corral_journal::Entry::Invocation {
                    request_id: recorded.request_id.clone(),
                    actor_id: recorded.actor_id.clone(),
                    content_type: recorded.content_type.clone(),
                    payload: recorded.payload.clone(),
                    traceparent: corral_telemetry::span_traceparent(&tracing::Span::current()),
                });
                entries.extend(
                    invocation_calls
                        .into_iter()
                        .map(corral_journal::Entry::HostCall),
                );
                entries.push(corral_journal::Entry::Response {
                    request_id: recorded.request_id.clone(),
                    ok: returned.ok,
                    content_type: returned.content_type.clone(),
                    payload: returned.payload.clone(),
                });
                let (journal, child) = (journal.clone(), child.clone());
                tokio::task::spawn_blocking(move || {
                    journal.append(&child, &entries, crate::manager::now_ms())
                })
                .await
                .map_err(|e| ReplayError::Internal(format!("journal append task failed: {e}")))?
                .map_err(ReplayError::Journal)?;
            }
            report.invocations.push(ReplayedInvocation {
                number,
                request_id: recorded.request_id.clone(),
                live: sandbox.calls().forked(),
                ok: returned.ok,
                response: String::from_utf8_lossy(&returned.payload).into_owned(),
            });
        }
        Ok(report)
    }

    /// Runs a recorded invocation live (after the fork point).
    async fn run_live(
        &self,
        sandbox: &mut Sandbox,
        session: &str,
        number: u64,
        recorded: &corral_journal::RecordedInvocation,
    ) -> Result<GuestReturn, ReplayError> {
        sandbox.calls().live_invocation(&recorded.request_id);
        let invocation = replay::invocation_of(recorded, session);
        let scope = InvocationScope::new(
            recorded.actor_id.clone(),
            recorded.request_id.clone(),
            None,
            tracing::Span::current(),
        );
        match sandbox.call(&invocation, scope).await {
            CallOutcome::Returned(result, _) => Ok(GuestReturn::of(&result)),
            CallOutcome::Fault(fault) => Err(ReplayError::Fault {
                invocation: number,
                fault,
            }),
            CallOutcome::Diverged(divergence) => Err(ReplayError::Fault {
                invocation: number,
                fault: Fault::Trap(format!("a live call reported a divergence: {divergence}")),
            }),
        }
    }
}
