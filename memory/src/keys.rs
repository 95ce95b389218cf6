//! Key layout in the ordered store. Components are joined by `0x00`, which
//! no validated id can contain, so prefixes never collide.

/// Tables, one leading byte each.
pub(crate) mod table {
    pub const MEMORY: u8 = b'M';
    pub const ACTOR: u8 = b'A';
    pub const SESSION: u8 = b'S';
    pub const EVENT: u8 = b'E';
    pub const BRANCH: u8 = b'B';
    pub const CLIENT_TOKEN: u8 = b'T';
    pub const EXPIRY: u8 = b'X';
    pub const RECORD: u8 = b'R';
    pub const VECTOR: u8 = b'V';
    pub const QUEUE: u8 = b'Q';
    pub const META: u8 = b'Z';
    pub const EVENT_ID: u8 = b'I';
    /// Which worker holds an extraction job, until when.
    pub const JOB_CLAIM: u8 = b'C';
    /// A memory resource's name, claimed by its id: names stay unique
    /// across replicas creating at once.
    pub const MEMORY_NAME: u8 = b'N';
}

/// Builds a key from a table and string components.
pub(crate) fn key(table: u8, parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    out.push(table);
    for part in parts {
        out.push(0);
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// `key(table, parts)` followed by a separator: every key below it.
pub(crate) fn prefix(table: u8, parts: &[&str]) -> Vec<u8> {
    let mut out = key(table, parts);
    out.push(0);
    out
}

/// Key of one event: session prefix + big-endian timestamp and sequence.
pub(crate) fn event(memory: &str, actor: &str, session: &str, ts_ms: u64, seq: u64) -> Vec<u8> {
    let mut out = prefix(table::EVENT, &[memory, actor, session]);
    out.extend_from_slice(&ts_ms.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// Key of an expiry-index entry pointing at `event_key`.
pub(crate) fn expiry(expires_ms: u64, event_key: &[u8]) -> Vec<u8> {
    let mut out = vec![table::EXPIRY];
    out.extend_from_slice(&expires_ms.to_be_bytes());
    out.extend_from_slice(event_key);
    out
}

/// Key of an extraction job.
/// The claim on the job stored under `job_key`.
pub(crate) fn job_claim(job_key: &[u8]) -> Vec<u8> {
    let mut out = vec![table::JOB_CLAIM];
    out.extend_from_slice(job_key);
    out
}

pub(crate) fn job(seq: u64) -> Vec<u8> {
    let mut out = vec![table::QUEUE];
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// The last string component of a key built by [`key`].
pub(crate) fn last_component(key: &[u8]) -> String {
    let start = key.iter().rposition(|b| *b == 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&key[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_order_by_time_then_sequence_within_a_session() {
        let a = event("m", "alice", "s1", 5, 9);
        let b = event("m", "alice", "s1", 6, 1);
        let c = event("m", "alice", "s1", 6, 2);
        assert!(a < b && b < c);
        assert!(a.starts_with(&prefix(table::EVENT, &["m", "alice", "s1"])));
        assert!(!a.starts_with(&prefix(table::EVENT, &["m", "alice", "s"])));
    }

    #[test]
    fn last_component_reads_back_the_id() {
        assert_eq!(
            last_component(&key(table::ACTOR, &["m", "user/1"])),
            "user/1"
        );
    }
}
