//! The seam every host call crosses. Each import the guest can call —
//! `model`, `tools`, `memory`, `log`, `response-stream` and WASI's clocks
//! and random — asks [`HostCalls::begin`] first and reports its answer to
//! [`HostCalls::finish`]. Recording, the calls are kept in order for the
//! session's journal; replaying, each call is checked against the journal
//! and answered from it, and the first difference stops the guest.

use std::collections::VecDeque;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use corral_journal::{HostCall, RecordedCall};

use crate::divergence::{Divergence, DivergenceKind};

/// Runs one import through the seam: `$live` (the import's own work) runs
/// only when the journal does not answer. Expands to the import's
/// `wasmtime::Result` (a divergence traps the guest).
macro_rules! journaled {
    ($state:expr, $interface:literal, $function:literal, $request:expr, $live:expr) => {{
        match $state.calls.begin($interface, $function, $request)? {
            $crate::host_calls::Begun::Replayed(answer) => Ok(answer),
            $crate::host_calls::Begun::Live(pending) => {
                let result = $live;
                $state.calls.finish(pending, &result);
                Ok(result)
            }
        }
    }};
}
pub(crate) use journaled;

/// What the seam does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// Calls run live and nothing is kept (the session is not journaled).
    #[default]
    Off,
    /// Calls run live and are kept for the journal.
    Record,
    /// Calls are answered from the journal.
    Replay,
}

/// Where the guest is in the run, for divergence reports.
#[derive(Debug, Default, Clone)]
struct Position {
    /// Invocation being replayed, from 1 (0: instantiation).
    invocation: u64,
    /// Its request id.
    request_id: String,
    /// Model calls made in this invocation.
    step: u32,
    /// Model calls made since the sandbox started.
    session_steps: u64,
    /// Journal offset of the last answered call.
    last_offset: Option<u64>,
}

/// A call the import still has to run live: finish it with the answer.
#[must_use]
pub(crate) struct Pending {
    call: Option<(&'static str, &'static str, Box<RawValue>)>,
}

/// What [`HostCalls::begin`] decided.
pub(crate) enum Begun<R> {
    /// The journal answers: return this.
    Replayed(R),
    /// Run the call live, then [`HostCalls::finish`] it.
    Live(Pending),
}

/// The host calls of a sandbox, in order.
#[derive(Debug, Default)]
pub(crate) struct HostCalls {
    mode: Mode,
    /// Calls made (or replayed) and not yet taken for the journal.
    recorded: Vec<HostCall>,
    /// Replay: the calls still to answer in this invocation.
    queue: VecDeque<RecordedCall>,
    /// Fork: the session step whose model call is the first made live.
    live_from_step: Option<u64>,
    /// Set when a fork point was reached and calls went live.
    forked: bool,
    position: Position,
    divergence: Option<Divergence>,
}

impl HostCalls {
    /// Calls kept for the journal when `journaled`, else run and forgotten.
    pub fn live(journaled: bool) -> Self {
        Self {
            mode: if journaled { Mode::Record } else { Mode::Off },
            ..Self::default()
        }
    }

    /// Calls answered from `queue` (the instantiation's calls, from a
    /// journal). Replayed calls are recorded as well, so a fork's journal
    /// holds them.
    pub fn replaying(queue: Vec<RecordedCall>) -> Self {
        Self {
            mode: Mode::Replay,
            queue: queue.into(),
            ..Self::default()
        }
    }

    /// Makes the model call of session step `step` (from 1) and everything
    /// after it live: the fork point.
    pub fn live_from_step(&mut self, step: u64) {
        self.live_from_step = Some(step);
    }

    /// Starts replaying invocation `number` (from 1) with its recorded calls.
    pub fn replay_invocation(&mut self, number: u64, request_id: &str, calls: Vec<RecordedCall>) {
        self.position.invocation = number;
        self.position.request_id = request_id.to_string();
        self.position.step = 0;
        if self.mode == Mode::Replay {
            self.queue = calls.into();
        }
    }

    /// Starts a live invocation (numbering continues for reports).
    pub fn live_invocation(&mut self, request_id: &str) {
        self.position.invocation += 1;
        self.position.request_id = request_id.to_string();
        self.position.step = 0;
    }

    /// Ends replay: from now on calls run live and are recorded when
    /// `journaled`.
    pub fn go_live(&mut self, journaled: bool) {
        self.mode = if journaled { Mode::Record } else { Mode::Off };
        self.queue.clear();
    }

    /// Whether a fork point was reached (calls went live mid-replay).
    pub fn forked(&self) -> bool {
        self.forked
    }

    /// The first difference from the journal, if replay found one.
    pub fn divergence(&self) -> Option<&Divergence> {
        self.divergence.as_ref()
    }

    /// Checks that the replayed invocation made every recorded call; a
    /// call left over is a divergence.
    pub fn finish_replayed_invocation(&mut self) -> Result<(), Box<Divergence>> {
        if self.mode != Mode::Replay {
            return Ok(());
        }
        if let Some(next) = self.queue.pop_front() {
            let divergence = self.diverge(
                DivergenceKind::MissingCall,
                Some(next.offset),
                Some(call_json(&next.call)),
                None,
            );
            return Err(Box::new(divergence));
        }
        Ok(())
    }

    /// Records a difference between the recorded and the new response.
    pub fn response_diverged(
        &mut self,
        offset: u64,
        recorded: serde_json::Value,
        actual: serde_json::Value,
    ) -> Divergence {
        self.diverge(
            DivergenceKind::Response,
            Some(offset),
            Some(recorded),
            Some(actual),
        )
    }

    /// The calls since the last take, in order.
    pub fn take(&mut self) -> Vec<HostCall> {
        std::mem::take(&mut self.recorded)
    }

    /// The guest calls `interface.function` with `request`: answered from
    /// the journal while replaying (a different call than the recorded one
    /// is a divergence, returned as a trap), else to be run live.
    pub fn begin<R: Answer>(
        &mut self,
        interface: &'static str,
        function: &'static str,
        request: &impl Serialize,
    ) -> wasmtime::Result<Begun<R>> {
        if interface == "model" && function == "converse" {
            self.position.step += 1;
            self.position.session_steps += 1;
            if self.mode == Mode::Replay && self.live_from_step == Some(self.position.session_steps)
            {
                self.forked = true;
                self.go_live(true);
            }
        }
        match self.mode {
            Mode::Off => Ok(Begun::Live(Pending { call: None })),
            Mode::Record => Ok(Begun::Live(Pending {
                call: Some((interface, function, to_raw(request))),
            })),
            Mode::Replay => self.answer(interface, function, to_raw(request)),
        }
    }

    /// Records the answer of a call [`HostCalls::begin`] let run live.
    pub fn finish<R: Answer>(&mut self, pending: Pending, answer: &R) {
        if let Some((interface, function, request)) = pending.call {
            self.recorded.push(HostCall {
                interface: interface.to_string(),
                function: function.to_string(),
                request,
                answer: answer.encode(),
            });
        }
    }

    fn answer<R: Answer>(
        &mut self,
        interface: &'static str,
        function: &'static str,
        request: Box<RawValue>,
    ) -> wasmtime::Result<Begun<R>> {
        let actual = HostCall {
            interface: interface.to_string(),
            function: function.to_string(),
            request,
            answer: to_raw(&()),
        };
        let Some(next) = self.queue.pop_front() else {
            let divergence = self.diverge(
                DivergenceKind::ExtraCall,
                None,
                None,
                Some(call_json(&actual)),
            );
            return Err(wasmtime::Error::new(divergence));
        };
        // The same serialiser wrote both: equal requests are equal text.
        let same = next.call.interface == actual.interface
            && next.call.function == actual.function
            && next.call.request.get() == actual.request.get();
        if !same {
            let divergence = self.diverge(
                DivergenceKind::DifferentCall,
                Some(next.offset),
                Some(call_json(&next.call)),
                Some(call_json(&actual)),
            );
            return Err(wasmtime::Error::new(divergence));
        }
        let Some(answer) = R::decode(&next.call.answer) else {
            let divergence = self.diverge(
                DivergenceKind::UnreadableAnswer,
                Some(next.offset),
                Some(next.call.answer_value()),
                None,
            );
            return Err(wasmtime::Error::new(divergence));
        };
        self.position.last_offset = Some(next.offset);
        self.recorded.push(next.call);
        Ok(Begun::Replayed(answer))
    }

    fn diverge(
        &mut self,
        kind: DivergenceKind,
        offset: Option<u64>,
        recorded: Option<serde_json::Value>,
        actual: Option<serde_json::Value>,
    ) -> Divergence {
        let divergence = Divergence::new(
            kind,
            self.position.invocation,
            self.position.request_id.clone(),
            self.position.step,
            self.position.session_steps,
            offset.or(self.position.last_offset),
            recorded,
            actual,
        );
        self.divergence.get_or_insert_with(|| divergence.clone());
        divergence
    }
}

/// A host call's answer in its journal form: `{"ok": …}` or `{"error": …}`.
pub(crate) trait Answer: Sized {
    /// The journal form.
    fn encode(&self) -> Box<RawValue>;
    /// Back from the journal form; `None` when it does not fit the type.
    fn decode(raw: &RawValue) -> Option<Self>;
}

/// The journal form of a result.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AnswerForm<T, E> {
    Ok(T),
    Error(E),
}

impl<T: Serialize + DeserializeOwned, E: Serialize + DeserializeOwned> Answer for Result<T, E> {
    fn encode(&self) -> Box<RawValue> {
        match self {
            Ok(value) => to_raw(&AnswerForm::<&T, &E>::Ok(value)),
            Err(error) => to_raw(&AnswerForm::<&T, &E>::Error(error)),
        }
    }

    fn decode(raw: &RawValue) -> Option<Self> {
        match serde_json::from_str::<AnswerForm<T, E>>(raw.get()).ok()? {
            AnswerForm::Ok(value) => Some(Ok(value)),
            AnswerForm::Error(error) => Some(Err(error)),
        }
    }
}

/// A value as JSON text. The WIT types and plain data always serialise;
/// `null` stands in should one ever not.
fn to_raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// A call as shown in a divergence report (its answer left out).
fn call_json(call: &HostCall) -> serde_json::Value {
    serde_json::json!({
        "interface": call.interface,
        "function": call.function,
        "request": call.request_value(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(
        offset: u64,
        interface: &str,
        function: &str,
        request: serde_json::Value,
        answer: serde_json::Value,
    ) -> RecordedCall {
        RecordedCall {
            offset,
            call: HostCall {
                interface: interface.into(),
                function: function.into(),
                request: to_raw(&request),
                answer: to_raw(&answer),
            },
        }
    }

    #[test]
    fn records_in_order_only_when_journaled() {
        let mut off = HostCalls::live(false);
        let Ok(Begun::Live(pending)) = off.begin::<Result<u8, String>>("model", "converse", &1)
        else {
            panic!("live call expected");
        };
        off.finish(pending, &Ok::<u8, String>(1));
        assert!(off.take().is_empty());

        let mut on = HostCalls::live(true);
        let Ok(Begun::Live(first)) =
            on.begin::<Result<String, String>>("tools", "call-tool", &"2+2")
        else {
            panic!("live call expected");
        };
        on.finish(first, &Ok::<String, String>("4".into()));
        let Ok(Begun::Live(second)) =
            on.begin::<Result<(), String>>("response-stream", "send", &())
        else {
            panic!("live call expected");
        };
        on.finish(second, &Err::<(), String>("closed".into()));
        let calls = on.take();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].answer_value(), serde_json::json!({"ok": "4"}));
        assert_eq!(
            calls[1].answer_value(),
            serde_json::json!({"error": "closed"})
        );
        assert!(on.take().is_empty());
    }

    #[test]
    fn replay_answers_from_the_journal_and_stops_at_the_first_difference() {
        let mut calls = HostCalls::replaying(Vec::new());
        calls.replay_invocation(
            1,
            "r1",
            vec![
                recorded(
                    3,
                    "tools",
                    "call-tool",
                    serde_json::json!(["calc", "1+1"]),
                    serde_json::json!({"ok": "2"}),
                ),
                recorded(
                    4,
                    "tools",
                    "call-tool",
                    serde_json::json!(["calc", "2+2"]),
                    serde_json::json!({"ok": "4"}),
                ),
            ],
        );
        let Ok(Begun::Replayed(answer)) =
            calls.begin::<Result<String, String>>("tools", "call-tool", &("calc", "1+1"))
        else {
            panic!("replayed answer expected");
        };
        assert_eq!(answer, Ok("2".to_string()));
        let Err(trap) =
            calls.begin::<Result<String, String>>("tools", "call-tool", &("calc", "3+3"))
        else {
            panic!("divergence expected");
        };
        let divergence = trap.downcast_ref::<Divergence>().cloned();
        assert_eq!(calls.divergence().cloned(), divergence);
        let divergence = calls
            .divergence()
            .cloned()
            .map(|d| (d.kind, d.offset, d.invocation));
        assert_eq!(
            divergence,
            Some((DivergenceKind::DifferentCall, Some(4), 1))
        );
    }

    #[test]
    fn a_replayed_invocation_must_make_every_recorded_call() {
        let mut calls = HostCalls::replaying(Vec::new());
        calls.replay_invocation(
            2,
            "r2",
            vec![recorded(
                9,
                "log",
                "write",
                serde_json::json!(["info", "hi", []]),
                serde_json::json!({"ok": null}),
            )],
        );
        let missing = calls
            .finish_replayed_invocation()
            .err()
            .map(|d| (d.kind, d.offset));
        assert_eq!(missing, Some((DivergenceKind::MissingCall, Some(9))));
    }

    #[test]
    fn a_fork_point_turns_calls_live() {
        let mut calls = HostCalls::replaying(Vec::new());
        calls.live_from_step(2);
        calls.replay_invocation(
            1,
            "r1",
            vec![
                recorded(
                    2,
                    "model",
                    "converse",
                    serde_json::json!({"m": 1}),
                    serde_json::json!({"ok": "a"}),
                ),
                recorded(
                    3,
                    "model",
                    "converse",
                    serde_json::json!({"m": 2}),
                    serde_json::json!({"ok": "b"}),
                ),
            ],
        );
        assert!(matches!(
            calls.begin::<Result<String, String>>(
                "model",
                "converse",
                &serde_json::json!({"m": 1})
            ),
            Ok(Begun::Replayed(_))
        ));
        let Ok(Begun::Live(pending)) = calls.begin::<Result<String, String>>(
            "model",
            "converse",
            &serde_json::json!({"m": 2}),
        ) else {
            panic!("the fork step runs live");
        };
        calls.finish(pending, &Ok::<String, String>("c".into()));
        assert!(calls.forked());
        assert!(calls.finish_replayed_invocation().is_ok());
        let answers: Vec<serde_json::Value> =
            calls.take().iter().map(HostCall::answer_value).collect();
        assert_eq!(
            answers,
            vec![
                serde_json::json!({"ok": "a"}),
                serde_json::json!({"ok": "c"})
            ]
        );
    }
}
