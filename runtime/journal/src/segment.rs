//! A journal read as runs of one sandbox: [`Segment`]s.

use crate::entry::{Entry, HostCall, Record, SessionStart};

/// A recorded host call and its offset.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// Offset in the journal.
    pub offset: u64,
    /// The call and its answer.
    pub call: HostCall,
}

/// How a recorded invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedResponse {
    /// Offset in the journal.
    pub offset: u64,
    /// `true` for a response, `false` for an error.
    pub ok: bool,
    /// MIME type (empty for an error).
    pub content_type: String,
    /// Body, or the error text.
    pub payload: Vec<u8>,
}

/// One recorded invocation with its host calls in order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedInvocation {
    /// Offset of its `invocation` entry.
    pub offset: u64,
    /// Request id.
    pub request_id: String,
    /// Actor it ran for.
    pub actor_id: String,
    /// MIME type of the payload.
    pub content_type: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// W3C `traceparent` of the original invocation's span.
    pub traceparent: Option<String>,
    /// Host calls, in order.
    pub calls: Vec<RecordedCall>,
    /// Its response; `None` when the journal ends inside it.
    pub response: Option<RecordedResponse>,
}

/// The entries of one sandbox: its start, the calls it made while
/// instantiating, its invocations, and whether the session ended there.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Offset of the `started` entry.
    pub offset: u64,
    /// What the sandbox started with.
    pub start: SessionStart,
    /// Host calls made while instantiating, before the first invocation.
    pub startup_calls: Vec<RecordedCall>,
    /// Invocations, in order.
    pub invocations: Vec<RecordedInvocation>,
    /// Set when the session ended for good: `(offset, reason)`.
    pub ended: Option<(u64, String)>,
    /// Offset after the segment's last entry.
    pub end_offset: u64,
}

impl Segment {
    /// Model calls (agent-loop steps) recorded, across invocations.
    pub fn steps(&self) -> u64 {
        self.model_calls().count() as u64
    }

    /// The journal offset of the model call of step `step` (from 1).
    pub fn step_offset(&self, step: u64) -> Option<u64> {
        let index = usize::try_from(step.checked_sub(1)?).ok()?;
        self.model_calls().nth(index).map(|c| c.offset)
    }

    fn model_calls(&self) -> impl Iterator<Item = &RecordedCall> {
        self.invocations
            .iter()
            .flat_map(|invocation| &invocation.calls)
            .filter(|c| c.call.interface == "model" && c.call.function == "converse")
    }

    /// Host calls of the whole segment.
    pub fn host_calls(&self) -> usize {
        self.startup_calls.len()
            + self
                .invocations
                .iter()
                .map(|i| i.calls.len())
                .sum::<usize>()
    }
}

/// Splits `records` (a journal, in order) into segments. Entries before the
/// first `started` belong to no sandbox and are skipped.
pub fn segments(records: Vec<Record>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for Record { offset, entry } in records {
        if let Entry::Started(start) = entry {
            out.push(Segment {
                offset,
                start,
                startup_calls: Vec::new(),
                invocations: Vec::new(),
                ended: None,
                end_offset: offset + 1,
            });
            continue;
        }
        let Some(segment) = out.last_mut() else {
            continue;
        };
        segment.end_offset = offset + 1;
        match entry {
            Entry::Started(_) => {}
            Entry::Invocation {
                request_id,
                actor_id,
                content_type,
                payload,
                traceparent,
            } => segment.invocations.push(RecordedInvocation {
                offset,
                request_id,
                actor_id,
                content_type,
                payload,
                traceparent,
                calls: Vec::new(),
                response: None,
            }),
            Entry::HostCall(call) => {
                let recorded = RecordedCall { offset, call };
                match segment.invocations.last_mut() {
                    Some(invocation) if invocation.response.is_none() => {
                        invocation.calls.push(recorded)
                    }
                    Some(_) => {}
                    None => segment.startup_calls.push(recorded),
                }
            }
            Entry::Response {
                ok,
                content_type,
                payload,
                ..
            } => {
                if let Some(invocation) = segment.invocations.last_mut() {
                    invocation.response = Some(RecordedResponse {
                        offset,
                        ok,
                        content_type,
                        payload,
                    });
                }
            }
            Entry::Ended { reason, .. } => segment.ended = Some((offset, reason)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entries::{call, invocation, started};

    fn response(id: &str) -> Entry {
        Entry::Response {
            request_id: id.into(),
            ok: true,
            content_type: "text/plain".into(),
            payload: b"ok".to_vec(),
        }
    }

    #[test]
    fn splits_by_sandbox_and_groups_calls_by_invocation() {
        let entries = vec![
            started(),
            call(),
            invocation(1),
            call(),
            response("r1"),
            Entry::Ended {
                reason: "stopped".into(),
                at_ms: 1,
            },
            started(),
            invocation(2),
            call(),
        ];
        let records = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| Record {
                offset: i as u64,
                entry,
            })
            .collect();
        let segments = segments(records);
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].startup_calls.len(), 1);
        assert_eq!(segments[0].invocations[0].calls[0].offset, 3);
        assert_eq!(segments[0].ended, Some((5, "stopped".into())));
        assert_eq!(segments[1].offset, 6);
        assert!(segments[1].invocations[0].response.is_none());
        assert_eq!(segments[1].end_offset, 9);
        assert_eq!(segments[1].host_calls(), 1);
    }
}
