//! The session id on every span of a session.
//!
//! The host starts each invocation (and session start/stop) under a context
//! whose baggage holds `session.id`; the span layer carries it from parent to
//! child and tags every span with it at export, so spans made by crates that
//! never see the session (gateway, policy, memory) are tagged too.

/// Baggage and span attribute key of the session id (AgentCore's).
pub const SESSION_ID_KEY: &str = "session.id";
/// The GenAI conversation id, equal to the session id.
pub(crate) const CONVERSATION_ID_KEY: &str = "gen_ai.conversation.id";

use std::sync::OnceLock;

/// A session's id as its spans are tagged with it at export
/// (`gen_ai.conversation.id` and `session.id`), shared by the spans of an
/// invocation. Each sink's encoding of the two tags is made once, by the
/// first span exported, and copied into every span after it: encoded per
/// span, the two tags were a third of a span's attributes, and their
/// `KeyValue`s' clones and drops a fifth of closing it (the tracing bench).
#[derive(Debug)]
pub(crate) struct SessionTag {
    id: Box<str>,
    /// Both tags as OTLP `Span.attributes` fields.
    pub(crate) otlp: OnceLock<Box<[u8]>>,
    /// Both tags as store-line `attributes` members, without a leading comma.
    pub(crate) store: OnceLock<Box<[u8]>>,
}

impl SessionTag {
    /// The tag of session `id`.
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            otlp: OnceLock::new(),
            store: OnceLock::new(),
        }
    }

    /// The session's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

/// The session tags one exported span carries: those of its session the
/// span did not set itself (its own attributes win), within the attribute
/// limit, in this order: `gen_ai.conversation.id`, `session.id`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SessionTags<'a> {
    /// The span's session, if it is in one.
    pub(crate) tag: Option<&'a SessionTag>,
    /// Whether `gen_ai.conversation.id` is added.
    pub(crate) conversation: bool,
    /// Whether `session.id` is added.
    pub(crate) session: bool,
}

impl<'a> SessionTags<'a> {
    /// The tags `tag` adds to a span with `attributes`, at most `room` of
    /// them (what the attribute limit leaves), and how many were left out
    /// for want of room. how many were left out for want of room.
    pub(crate) fn for_span(
        tag: Option<&'a SessionTag>,
        attributes: &[opentelemetry::KeyValue],
        room: usize,
    ) -> (Self, u32) {
        let Some(tag) = tag else {
            return (Self::default(), 0);
        };
        let (mut conversation, mut session) = (true, true);
        for kv in attributes {
            match kv.key.as_str() {
                SESSION_ID_KEY => session = false,
                CONVERSATION_ID_KEY => conversation = false,
                _ => {}
            }
        }
        let wanted = usize::from(conversation) + usize::from(session);
        // Past the limit the last ones go, as if pushed after the span's own.
        let conversation = conversation && room >= 1;
        let session = session && room > usize::from(conversation);
        let tags = Self {
            tag: Some(tag),
            conversation,
            session,
        };
        let left_out = u32::try_from(wanted - tags.count()).unwrap_or(0);
        (tags, left_out)
    }

    /// How many tags are added.
    pub(crate) fn count(&self) -> usize {
        usize::from(self.conversation) + usize::from(self.session)
    }

    /// Whether both tags are added (what the cached encodings hold).
    pub(crate) fn both(&self) -> bool {
        self.conversation && self.session
    }

    /// The added tags as attribute keys and the session's id, in order.
    pub(crate) fn pairs(self) -> impl Iterator<Item = (&'static str, &'a str)> {
        let id = self.tag.map(SessionTag::id).unwrap_or_default();
        [
            (self.conversation, CONVERSATION_ID_KEY),
            (self.session, SESSION_ID_KEY),
        ]
        .into_iter()
        .filter(|(added, _)| *added)
        .map(move |(_, key)| (key, id))
    }
}
