//! Why a journal operation failed.

use corral_storage::StorageError;

/// A journal failure; each names the session it concerns.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The storage engine failed.
    #[error("journal of session {session}: storage failed")]
    Storage {
        /// The session.
        session: String,
        /// The cause.
        #[source]
        source: StorageError,
    },
    /// A stored entry does not decode (corrupt or truncated).
    #[error("journal of session {session} is corrupt at offset {offset}: {message}")]
    Corrupt {
        /// The session.
        session: String,
        /// The entry's offset.
        offset: u64,
        /// What the decoder said.
        message: String,
    },
    /// Appending would take the journal past its size cap; nothing was written.
    #[error("journal of session {session} would exceed its cap of {limit} bytes")]
    Full {
        /// The session.
        session: String,
        /// The cap.
        limit: u64,
    },
    /// Another writer appended to the session's journal since this append
    /// read it (another replica took the session over): nothing was
    /// written.
    #[error("journal of session {session} was appended to by another writer; nothing was written")]
    Conflict {
        /// The session.
        session: String,
    },
    /// The session id is empty or longer than 1,024 bytes.
    #[error("invalid session id for a journal: {0:?}")]
    InvalidSession(String),
}

impl JournalError {
    /// Whether the journal's store could not be reached (retry later).
    pub fn is_unavailable(&self) -> bool {
        match self {
            JournalError::Storage { source, .. } => source.is_unavailable(),
            JournalError::Conflict { .. } => true,
            _ => false,
        }
    }
}
