//! [`DirectoryError`]: why the session directory could not answer.

use corral_storage::StorageError;

/// Why a session could not be placed, released or listed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The shared store failed or does not answer.
    #[error("the session directory's store failed")]
    Storage(#[from] StorageError),
    /// This replica's lease has lapsed (it could not reach the store in
    /// time): it serves no session until it renews it.
    #[error("this replica's lease has lapsed; it serves no session until it reaches the store")]
    LeaseLapsed,
    /// Other replicas kept changing the session's record.
    #[error("session {0} kept changing owner while this replica placed it")]
    Contended(String),
    /// A stored record does not decode.
    #[error("corrupt session directory record {key}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
}

impl DirectoryError {
    /// Whether a retry may succeed once the store is back (or the record
    /// settles): unavailability, not a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DirectoryError::Storage(e) => e.is_unavailable(),
            DirectoryError::LeaseLapsed | DirectoryError::Contended(_) => true,
            DirectoryError::Corrupt { .. } => false,
        }
    }
}
