//! What a journal holds.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Bytes as base64 in JSON.
mod bytes {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Where a forked session branched off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkPoint {
    /// The parent session.
    pub session: String,
    /// The parent's journal offset the fork replayed up to (exclusive).
    pub offset: u64,
}

/// What a sandbox started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStart {
    /// Agent runtime name.
    pub agent: String,
    /// Agent version label.
    pub version: String,
    /// SHA-256 of the component, hex: replay instantiates exactly this.
    pub digest: String,
    /// The session's limits, as the host describes them.
    pub limits: serde_json::Value,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Set when the session is a fork of another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ForkPoint>,
}

/// One host call the guest made and the answer it got, as data: `request`
/// and `answer` are the call's arguments and result (`{"ok": …}` or
/// `{"error": …}`) in the host's JSON form, kept as the exact JSON text:
/// replay compares requests and decodes answers without building trees.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCall {
    /// The interface (`model`, `tools`, `memory`, `log`, `response-stream`,
    /// `wasi:clocks/wall-clock`, `wasi:random/random`, …).
    pub interface: String,
    /// The function (`converse`, `call-tool`, `now`, …).
    pub function: String,
    /// The arguments.
    pub request: Box<RawValue>,
    /// The result, `{"ok": …}` or `{"error": …}`.
    pub answer: Box<RawValue>,
}

impl PartialEq for HostCall {
    fn eq(&self, other: &Self) -> bool {
        self.interface == other.interface
            && self.function == other.function
            && self.request.get() == other.request.get()
            && self.answer.get() == other.answer.get()
    }
}

impl HostCall {
    /// The request as a JSON value (for display and tests).
    pub fn request_value(&self) -> serde_json::Value {
        serde_json::from_str(self.request.get()).unwrap_or(serde_json::Value::Null)
    }

    /// The answer as a JSON value (for display and tests).
    pub fn answer_value(&self) -> serde_json::Value {
        serde_json::from_str(self.answer.get()).unwrap_or(serde_json::Value::Null)
    }
}

/// One journal entry, in JSON `{"<kind>": {…}}` (`started`, `invocation`,
/// `hostCall`, `ended`, `response`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Entry {
    /// A sandbox began: what it runs and with which limits. Entries up to
    /// the next `started` replay into that sandbox.
    Started(SessionStart),
    /// An invocation arrived.
    Invocation {
        /// Its request id.
        request_id: String,
        /// The actor it runs for.
        actor_id: String,
        /// MIME type of the payload.
        content_type: String,
        /// The payload.
        #[serde(with = "bytes")]
        payload: Vec<u8>,
        /// W3C `traceparent` of the invocation's span, so replays and
        /// resumes can link to the trace they re-run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
    },
    /// The guest called the host.
    HostCall(HostCall),
    /// The session ended for good (stopped, idle past its timeout, or past
    /// its lifetime): the next invocation starts a new sandbox instead of
    /// resuming this one.
    Ended {
        /// Why (`stopped`, `idle_timeout`, `max_lifetime`).
        reason: String,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// The invocation ended.
    Response {
        /// The request id it answers.
        request_id: String,
        /// `true` for a response, `false` for an error.
        ok: bool,
        /// MIME type (empty for an error).
        content_type: String,
        /// The response body, or the error text.
        #[serde(with = "bytes")]
        payload: Vec<u8>,
    },
}

impl Entry {
    /// The encoded form stored (one JSON object).
    pub(crate) fn encode(&self) -> Vec<u8> {
        // A plain data enum always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored entry.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// An entry and its offset in the session's journal; in JSON, one object
/// `{"offset": n, "<kind>": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Position in the journal, from 0.
    pub offset: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
}

impl Record {
    /// Reads one record in its JSON form (a line of the journal API).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)?;
        let offset = object
            .remove("offset")
            .and_then(|o| o.as_u64())
            .ok_or_else(|| serde::de::Error::missing_field("offset"))?;
        // Entries hold raw JSON, which only reads from text.
        let entry = serde_json::from_str(&serde_json::Value::Object(object).to_string())?;
        Ok(Record { offset, entry })
    }
}
