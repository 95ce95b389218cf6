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
