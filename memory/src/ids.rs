//! Identifiers in AgentCore's forms and the patterns they must match.

use std::sync::LazyLock;

use regex::Regex;

use crate::error::MemoryError;

fn pattern(re: &str) -> Regex {
    // The patterns are constants; a typo is a programming error caught by tests.
    #[allow(clippy::expect_used)]
    Regex::new(re).expect("valid id pattern")
}

static MEMORY_ID: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^[a-zA-Z][a-zA-Z0-9\-_]{0,99}-[a-zA-Z0-9]{10}$"));
static ACTOR_ID: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^[a-zA-Z0-9][a-zA-Z0-9\-_/]*(?::[a-zA-Z0-9\-_/]+)*[a-zA-Z0-9\-_/]*$")
});
static SESSION_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$"));
static EVENT_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[0-9]+#[a-fA-F0-9]+$"));
static NAMESPACE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^[a-zA-Z0-9/*][a-zA-Z0-9\-_/*]*(?::[a-zA-Z0-9\-_/*]+)*[a-zA-Z0-9\-_/*]*$")
});
static METADATA: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-zA-Z0-9\s._:/=+@\-]*$"));
static NAME: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-zA-Z][a-zA-Z0-9_]{0,47}$"));
static RECORD_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^mem-[a-zA-Z0-9\-_]{36,46}$"));
static REQUEST_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-zA-Z0-9_\-]{1,80}$"));

fn check(field: &str, value: &str, re: &Regex, min: usize, max: usize) -> Result<(), MemoryError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(MemoryError::field(
            field,
            format!("length must be {min} to {max}, got {len}"),
        ));
    }
    if !re.is_match(value) {
        return Err(MemoryError::field(
            field,
            format!("'{}' does not match {}", excerpt(value), re.as_str()),
        ));
    }
    Ok(())
}

fn excerpt(value: &str) -> String {
    value.chars().take(64).collect()
}

/// Validates a memory id.
pub fn memory_id(value: &str) -> Result<(), MemoryError> {
    check("memoryId", value, &MEMORY_ID, 12, 112)
}

/// Validates an actor id.
pub fn actor_id(value: &str) -> Result<(), MemoryError> {
    check("actorId", value, &ACTOR_ID, 1, 255)
}

/// Validates a session id.
pub fn session_id(value: &str) -> Result<(), MemoryError> {
    check("sessionId", value, &SESSION_ID, 1, 100)
}

/// Validates an event id.
pub fn event_id(field: &str, value: &str) -> Result<(), MemoryError> {
    check(field, value, &EVENT_ID, 3, 64)
}

/// Validates a branch name (same pattern as a session id).
pub fn branch_name(value: &str) -> Result<(), MemoryError> {
    check("branch.name", value, &SESSION_ID, 1, 100)
}

/// Validates a resolved namespace (or namespace prefix).
pub fn namespace(field: &str, value: &str) -> Result<(), MemoryError> {
    check(field, value, &NAMESPACE, 1, 1024)
}

/// Validates a metadata key or string value.
pub fn metadata(field: &str, value: &str, min: usize, max: usize) -> Result<(), MemoryError> {
    check(field, value, &METADATA, min, max)
}

/// Validates a memory or strategy name.
pub fn name(field: &str, value: &str) -> Result<(), MemoryError> {
    check(field, value, &NAME, 1, 48)
}

/// Validates a record id.
pub fn record_id(field: &str, value: &str) -> Result<(), MemoryError> {
    check(field, value, &RECORD_ID, 40, 50)
}

/// Validates a batch request identifier.
pub fn request_identifier(field: &str, value: &str) -> Result<(), MemoryError> {
    check(field, value, &REQUEST_ID, 1, 80)
}

/// `<digits>#<hex>`: event time (ms) and a store-wide sequence number.
pub fn format_event_id(ts_ms: u64, seq: u64) -> String {
    format!("{ts_ms:019}#{seq:016x}")
}

/// The time and sequence an event id encodes.
pub fn parse_event_id(field: &str, id: &str) -> Result<(u64, u64), MemoryError> {
    event_id(field, id)?;
    let bad = || MemoryError::field(field, format!("'{}' is not an event id", excerpt(id)));
    let (ts, seq) = id.split_once('#').ok_or_else(bad)?;
    let ts = ts.parse::<u64>().map_err(|_| bad())?;
    let seq = u64::from_str_radix(seq, 16).map_err(|_| bad())?;
    Ok((ts, seq))
}

/// Ten random alphanumerics, the suffix of memory and strategy ids.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(10)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A new record id: `mem-` and a UUID (40 characters).
pub fn new_record_id() -> String {
    format!("mem-{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_match_agentcore_patterns() {
        let id = format!("support-{}", random_suffix());
        memory_id(&id).unwrap();
        record_id("r", &new_record_id()).unwrap();
        let event = format_event_id(1_700_000_000_000, 42);
        assert_eq!(
            parse_event_id("e", &event).unwrap(),
            (1_700_000_000_000, 42)
        );
    }

    #[test]
    fn bad_ids_name_the_field() {
        let err = actor_id("").unwrap_err().to_string();
        assert!(err.contains("actorId"), "{err}");
        assert!(session_id("a b").is_err());
        assert!(namespace("namespace", "/a/{actorId}").is_err());
        namespace("namespace", "/strategies/s-1/actors/alice").unwrap();
        assert!(memory_id("short").is_err());
        assert!(parse_event_id("eventId", "12#zz").is_err());
    }
}
