//! The storage seam: an ordered, durable key-value store.
//!
//! Memory and session journals need only point reads, ordered prefix scans,
//! atomic batches that are durable when acknowledged, and a persistent id
//! counter. Any ordered KV engine (RocksDB, FoundationDB, PostgreSQL with a
//! bytea key) can serve.

mod changes;
mod file;
mod group_commit;
mod pg_store;
mod sled_store;

use std::ops::ControlFlow;

pub use changes::{Change, Changes};
pub use file::write_file_atomic;
pub use pg_store::{CONNECT_TIMEOUT, PgStorage};
pub use sled_store::SledStorage;

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The engine reported an I/O or corruption error.
    #[error("storage error: {0}")]
    Engine(String),
    /// The database could not be reached or failed a statement.
    #[error("cannot {what}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The driver's or pool's error.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value did not decode.
    #[error("corrupt stored value under {key}: {message}")]
    Corrupt {
        /// Printable key.
        key: String,
        /// Decoder message.
        message: String,
    },
}

impl StorageError {
    /// Whether the store could not be reached (a database that is down or
    /// cut off): the operation may succeed when retried later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Database { .. })
    }
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
}

/// Writes applied atomically.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// The writes, in order.
    pub writes: Vec<Write>,
}

impl WriteBatch {
    /// Adds a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.push(Write::Put(key, value));
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.push(Write::Delete(key));
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// A write [`Storage::write`] applied, to wait on with [`Storage::sync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTicket(pub u64);

impl SyncTicket {
    /// A write that was durable when it returned.
    pub const DURABLE: SyncTicket = SyncTicket(0);
}

/// Where a scan starts.
#[derive(Debug, Clone, Copy)]
pub enum ScanStart<'a> {
    /// At the first key of the prefix (the last, scanning backwards).
    Beginning,
    /// Strictly after this key (before it, scanning backwards).
    After(&'a [u8]),
}

/// Receives scanned entries; breaking stops the scan.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// An ordered, durable key-value store.
pub trait Storage: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Visits keys under `prefix` in order (or reverse order) from `start`
    /// until `visit` breaks or the prefix ends.
    fn scan(
        &self,
        prefix: &[u8],
        start: ScanStart<'_>,
        reverse: bool,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), StorageError>;

    /// Applies `batch` atomically; returns once it is durable on disk.
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError>;

    /// Applies `batch` atomically, visible to reads at once, without waiting
    /// for the disk; returns a ticket for [`Storage::sync`]. Lets an async
    /// caller write on its own thread and wait for durability elsewhere.
    /// Default: [`Storage::commit`] (durable at once).
    fn write(&self, batch: WriteBatch) -> Result<SyncTicket, StorageError> {
        self.commit(batch).map(|()| SyncTicket::DURABLE)
    }

    /// Whether the write with `ticket` is durable already (a flush by
    /// another writer may have covered it).
    fn is_durable(&self, ticket: SyncTicket) -> bool {
        ticket == SyncTicket::DURABLE
    }

    /// Blocks until the write with `ticket` is durable; concurrent callers
    /// share flushes.
    fn sync(&self, ticket: SyncTicket) -> Result<(), StorageError> {
        let _ = ticket;
        Ok(())
    }

    /// A new id, unique and increasing across restarts.
    fn next_id(&self) -> Result<u64, StorageError>;

    /// Whether the store answers now (a round trip for a database; an
    /// embedded store always does). Health checks call it.
    fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Sets `key` to `new` (`None` removes it) only if its value is
    /// `expected` (`None`: absent), atomically and durably; returns whether
    /// it did. Replicas sharing a store claim work with it, so each piece
    /// runs once.
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StorageError>;

    /// Applies `batch` atomically only if `key` still holds `expected`
    /// (`None`: absent), visible to reads at once like
    /// [`Storage::write`]; returns `None`, having written nothing, when it
    /// does not. Writers sharing a record (a session's journal, appended by
    /// whichever replica holds the session) use it so a stale writer fails
    /// instead of overwriting.
    fn write_if(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        batch: WriteBatch,
    ) -> Result<Option<SyncTicket>, StorageError>;

    /// Tells every other process sharing this store that `topic` (of this
    /// namespace) changed, so it can drop what it cached. Default: nothing
    /// to tell (an embedded store has one process).
    fn publish(&self, topic: &str) -> Result<(), StorageError> {
        let _ = topic;
        Ok(())
    }

    /// The changes other processes publish to this namespace; `None` when
    /// no other process shares the store (the default). Delivery is best
    /// effort and prompt (PostgreSQL's LISTEN/NOTIFY); when some may have
    /// been missed the subscriber gets [`Change::Resync`].
    fn subscribe(&self) -> Option<Changes> {
        None
    }
}

/// The first key after every key starting with `prefix`; `None` when there
/// is none (an empty prefix, or one of only `0xFF` bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
