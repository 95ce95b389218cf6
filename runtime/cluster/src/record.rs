//! What the directory stores: replicas with their leases, and sessions
//! with their owners.

use serde::{Deserialize, Serialize};

use crate::error::DirectoryError;

/// Key prefix of replica records.
pub(crate) const REPLICA_PREFIX: &str = "replica/";
/// Key prefix of session records.
pub(crate) const SESSION_PREFIX: &str = "session/";

/// A replica as it registered: where it answers and until when its lease runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaRecord {
    /// Its id.
    pub id: String,
    /// Base URL it answers at.
    pub address: String,
    /// When its lease ends, epoch milliseconds.
    pub expires_ms: u64,
}

impl ReplicaRecord {
    /// Whether its lease still runs at `now_ms`.
    pub fn alive_at(&self, now_ms: u64) -> bool {
        self.expires_ms > now_ms
    }
}

/// A session as the directory places it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// The session id.
    pub session_id: String,
    /// The agent runtime it was first invoked on, as the caller named it.
    pub agent: String,
    /// The replica holding it.
    pub replica: String,
    /// That replica's address.
    pub address: String,
    /// Since when it holds it, epoch milliseconds.
    pub since_ms: u64,
    /// This claim's id: each claim writes a distinct record, so a release
    /// of an earlier claim never deletes a later one.
    #[serde(default)]
    pub claim: String,
}

/// The replica holding a session elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its id.
    pub replica: String,
    /// Its base URL.
    pub address: String,
}

pub(crate) fn replica_key(id: &str) -> Vec<u8> {
    format!("{REPLICA_PREFIX}{id}").into_bytes()
}

pub(crate) fn session_key(id: &str) -> Vec<u8> {
    format!("{SESSION_PREFIX}{id}").into_bytes()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: for<'a> Deserialize<'a>>(
    key: &[u8],
    bytes: &[u8],
) -> Result<T, DirectoryError> {
    serde_json::from_slice(bytes).map_err(|source| DirectoryError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}
