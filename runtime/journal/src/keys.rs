//! Storage keys. A session id is length-prefixed so one session's prefix is
//! never a prefix of another's (`a` and `ab`).

/// Entries: `J` + len(u16 BE) + session + offset (u64 BE).
const ENTRIES: u8 = b'J';
/// Per-session header: `H` + len(u16 BE) + session.
const HEADER: u8 = b'H';

/// Longest session id a journal accepts.
pub(crate) const MAX_SESSION_LEN: usize = 1_024;

fn with_session(tag: u8, session: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(3 + session.len() + 8);
    key.push(tag);
    // Callers check the length against MAX_SESSION_LEN first.
    key.extend_from_slice(&(session.len() as u16).to_be_bytes());
    key.extend_from_slice(session.as_bytes());
    key
}

/// The prefix of every entry of `session`.
pub(crate) fn entries(session: &str) -> Vec<u8> {
    with_session(ENTRIES, session)
}

/// The key of `session`'s entry at `offset`.
pub(crate) fn entry(session: &str, offset: u64) -> Vec<u8> {
    let mut key = entries(session);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// The offset at the end of an entry key.
pub(crate) fn offset_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The header key of `session`.
pub(crate) fn header(session: &str) -> Vec<u8> {
    with_session(HEADER, session)
}

/// The prefix of every header.
pub(crate) fn headers() -> Vec<u8> {
    vec![HEADER]
}

/// The session of a header key.
pub(crate) fn session_of_header(key: &[u8]) -> Option<String> {
    let len = u16::from_be_bytes(key.get(1..3)?.try_into().ok()?) as usize;
    String::from_utf8(key.get(3..3 + len)?.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_never_share_a_prefix_and_offsets_sort() {
        assert!(!entry("ab", 0).starts_with(&entries("a")));
        assert!(entry("a", 1) < entry("a", 2));
        assert!(entry("a", 255) < entry("a", 256));
        assert_eq!(offset_of(&entry("s", 42)), Some(42));
        assert_eq!(
            session_of_header(&header("sess-1")).as_deref(),
            Some("sess-1")
        );
    }
}
