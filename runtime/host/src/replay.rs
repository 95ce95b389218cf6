//! Re-running recorded invocations in a sandbox, every host call answered
//! from the journal: how a session resumes (silently, then live), how
//! `corral replay` checks a session, and how a fork branches off one.

use corral_journal::RecordedInvocation;
use tracing::Instrument;

use crate::bindings::types::{AgentError, Invocation, Response};
use crate::divergence::Divergence;
use crate::error::AgentErrorKind;
use crate::session::{CallOutcome, Sandbox};
use crate::state::InvocationScope;
use corral_sandbox::Fault;

/// What the guest returned, in the form the journal keeps: `ok` with the
/// final payload (streamed chunks are `response-stream` host calls), or the
/// agent's error as `kind: message`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GuestReturn {
    pub ok: bool,
    pub content_type: String,
    pub payload: Vec<u8>,
}

impl GuestReturn {
    /// The journal form of a guest's result.
    pub fn of(result: &Result<Response, AgentError>) -> Self {
        match result {
            Ok(response) => Self {
                ok: true,
                content_type: response.content_type.clone(),
                payload: response.payload.clone(),
            },
            Err(error) => {
                let (kind, message): (AgentErrorKind, String) = error.clone().into();
                Self {
                    ok: false,
                    content_type: String::new(),
                    payload: format!("{}: {message}", kind.as_str()).into_bytes(),
                }
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok,
            "contentType": self.content_type,
            "payload": String::from_utf8_lossy(&self.payload),
        })
    }
}

/// Why re-running recorded invocations stopped.
#[derive(Debug)]
pub(crate) enum ReplayStop {
    /// The guest did something else than the journal records.
    Diverged(Box<Divergence>),
    /// The sandbox failed (a trap, a limit).
    Fault(Fault),
}

/// The invocation a recorded one was.
pub(crate) fn invocation_of(recorded: &RecordedInvocation, session_id: &str) -> Invocation {
    Invocation {
        session_id: session_id.to_string(),
        actor_id: recorded.actor_id.clone(),
        request_id: recorded.request_id.clone(),
        payload: recorded.payload.clone(),
        content_type: recorded.content_type.clone(),
    }
}

/// Runs recorded invocation `number` (from 1) in `sandbox`, answering its
/// host calls (taken out of `recorded`) from the journal up to a fork point,
/// if one is set, and checks the guest made every recorded call and
/// returned what it returned then (unless a fork went live inside it).
/// Returns what the guest returned.
pub(crate) async fn replay_invocation(
    sandbox: &mut Sandbox,
    session_id: &str,
    number: u64,
    recorded: &mut RecordedInvocation,
    span: &tracing::Span,
) -> Result<GuestReturn, ReplayStop> {
    let calls = std::mem::take(&mut recorded.calls);
    sandbox
        .calls()
        .replay_invocation(number, &recorded.request_id, calls);
    let invocation = invocation_of(recorded, session_id);
    let scope = InvocationScope::new(
        recorded.actor_id.clone(),
        recorded.request_id.clone(),
        None,
        span.clone(),
    );
    let outcome = sandbox
        .call(&invocation, scope)
        .instrument(span.clone())
        .await;
    let returned = match outcome {
        CallOutcome::Returned(result, _) => GuestReturn::of(&result),
        CallOutcome::Fault(fault) => return Err(ReplayStop::Fault(fault)),
        CallOutcome::Diverged(divergence) => return Err(ReplayStop::Diverged(divergence)),
    };
    if sandbox.calls().forked() {
        return Ok(returned);
    }
    sandbox
        .calls()
        .finish_replayed_invocation()
        .map_err(ReplayStop::Diverged)?;
    if let Some(response) = &recorded.response {
        let then = GuestReturn {
            ok: response.ok,
            content_type: response.content_type.clone(),
            payload: response.payload.clone(),
        };
        if then != returned {
            let divergence =
                sandbox
                    .calls()
                    .response_diverged(response.offset, then.json(), returned.json());
            return Err(ReplayStop::Diverged(Box::new(divergence)));
        }
    }
    Ok(returned)
}
