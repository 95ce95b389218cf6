//! [`Storage`] on sled, the embedded default.

use std::path::Path;

use super::group_commit::GroupCommit;
use super::{ScanStart, Storage, StorageError, SyncTicket, Write, WriteBatch};

/// sled-backed storage: one tree, atomic batches, flushed before acknowledging.
pub struct SledStorage {
    db: sled::Db,
    group: GroupCommit,
}

fn engine(error: sled::Error) -> StorageError {
    StorageError::Engine(error.to_string())
}

/// How long [`SledStorage::open`] waits for another holder of the store
/// (a process, or a server in this one, that is exiting) to let it go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether sled failed because another holder has the store's file lock
/// (sled reports it as an `Other` I/O error naming the lock; a handle just
/// dropped keeps it until sled's flusher thread exits).
fn locked(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().starts_with("could not acquire lock"))
}

impl SledStorage {
    /// Opens (or creates) the store in `dir`; when another holder still has
    /// it, waits up to 5 s for it to let go (a restart that overlaps the
    /// previous server's exit), then fails.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            let opened = sled::Config::new()
                .path(dir)
                // We flush explicitly before acknowledging; the background
                // flush only bounds the work each explicit flush has to do.
                .flush_every_ms(Some(500))
                .open();
            match opened {
                Err(error) if locked(&error) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                opened => break opened.map_err(engine)?,
            }
        };
        Ok(SledStorage {
            db,
            group: GroupCommit::default(),
        })
    }

    /// A throwaway in-memory store (tests, demos).
    pub fn temporary() -> Result<Self, StorageError> {
        let db = sled::Config::new().temporary(true).open().map_err(engine)?;
        Ok(SledStorage {
            db,
            group: GroupCommit::default(),
        })
    }
}

impl Storage for SledStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(key).map_err(engine)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        start: ScanStart<'_>,
        reverse: bool,
        visit: &mut super::ScanVisitor<'_>,
    ) -> Result<(), StorageError> {
        use std::ops::Bound;
        let end = prefix_end(prefix);
        let (lower, upper) = match (start, reverse) {
            (ScanStart::Beginning, _) => (Bound::Included(prefix.to_vec()), end),
            (ScanStart::After(key), false) => (Bound::Excluded(key.to_vec()), end),
            (ScanStart::After(key), true) => (
                Bound::Included(prefix.to_vec()),
                Bound::Excluded(key.to_vec()),
            ),
        };
        let range = self.db.range::<Vec<u8>, _>((lower, upper));
        let mut step = |item: Result<(sled::IVec, sled::IVec), sled::Error>| {
            let (k, v) = item.map_err(engine)?;
            Ok::<_, StorageError>(visit(&k, &v))
        };
        if reverse {
            for item in range.rev() {
                if step(item)?.is_break() {
                    break;
                }
            }
        } else {
            for item in range {
                if step(item)?.is_break() {
                    break;
                }
            }
        }
        Ok(())
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let ticket = self.write(batch)?;
        self.sync(ticket)
    }

    fn write(&self, batch: WriteBatch) -> Result<SyncTicket, StorageError> {
        if batch.is_empty() {
            return Ok(SyncTicket::DURABLE);
        }
        let mut sled_batch = sled::Batch::default();
        for write in batch.writes {
            match write {
                Write::Put(k, v) => sled_batch.insert(k, v),
                Write::Delete(k) => sled_batch.remove(k),
            }
        }
        self.group
            .apply(|| self.db.apply_batch(sled_batch).map_err(engine))
            .map(SyncTicket)
    }

    fn write_if(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        batch: WriteBatch,
    ) -> Result<Option<SyncTicket>, StorageError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        let mut matched = true;
        let ticket = self.group.apply(|| {
            let outcome = self.db.transaction(|tx| {
                if tx.get(key)?.as_deref() != expected {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                for write in &batch.writes {
                    match write {
                        Write::Put(k, v) => {
                            tx.insert(k.as_slice(), v.as_slice())?;
                        }
                        Write::Delete(k) => {
                            tx.remove(k.as_slice())?;
                        }
                    }
                }
                Ok(())
            });
            match outcome {
                Ok(()) => Ok(()),
                Err(TransactionError::Abort(())) => {
                    matched = false;
                    Ok(())
                }
                Err(TransactionError::Storage(error)) => Err(engine(error)),
            }
        })?;
        Ok(matched.then_some(SyncTicket(ticket)))
    }

    fn is_durable(&self, ticket: SyncTicket) -> bool {
        self.group.is_durable(ticket.0)
    }

    fn sync(&self, ticket: SyncTicket) -> Result<(), StorageError> {
        self.group
            .wait(ticket.0, || self.db.flush().map(|_| ()).map_err(engine))
    }

    fn next_id(&self) -> Result<u64, StorageError> {
        self.db.generate_id().map_err(engine)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StorageError> {
        let swapped = self
            .db
            .compare_and_swap(key, expected, new)
            .map_err(engine)?
            .is_ok();
        if swapped {
            self.db.flush().map_err(engine)?;
        }
        Ok(swapped)
    }
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> std::ops::Bound<Vec<u8>> {
    match super::prefix_end(prefix) {
        Some(end) => std::ops::Bound::Excluded(end),
        None => std::ops::Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::ops::ControlFlow;

    #[test]
    fn reopening_waits_for_the_previous_holder_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledStorage::open(dir.path()).unwrap();
        let error = sled::Config::new().path(dir.path()).open().unwrap_err();
        assert!(locked(&error), "{error}");
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        // Opened once the first handle (and sled's flusher) let go.
        SledStorage::open(dir.path()).unwrap();
        holder.join().unwrap();
    }

    fn keys(
        store: &SledStorage,
        prefix: &[u8],
        start: ScanStart<'_>,
        reverse: bool,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        store
            .scan(prefix, start, reverse, &mut |k, _| {
                out.push(k.to_vec());
                ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    #[test]
    fn scans_stay_inside_the_prefix_in_both_directions() {
        let store = SledStorage::temporary().unwrap();
        let mut batch = WriteBatch::default();
        for k in [&b"a\x00"[..], b"a\x01", b"a\xff", b"b", b"a"] {
            batch.put(k.to_vec(), b"v".to_vec());
        }
        store.commit(batch).unwrap();
        assert_eq!(
            keys(&store, b"a\x00", ScanStart::Beginning, false),
            vec![b"a\x00".to_vec()]
        );
        assert_eq!(keys(&store, b"a", ScanStart::Beginning, false).len(), 4);
        assert_eq!(
            keys(&store, b"a", ScanStart::After(b"a\x00"), false),
            vec![b"a\x01".to_vec(), b"a\xff".to_vec()]
        );
        assert_eq!(
            keys(&store, b"a", ScanStart::After(b"a\xff"), true),
            vec![b"a\x01".to_vec(), b"a\x00".to_vec(), b"a".to_vec()]
        );
    }

    #[test]
    fn written_batches_read_at_once_and_are_durable_after_sync() {
        let store = SledStorage::temporary().unwrap();
        let mut batch = WriteBatch::default();
        batch.put(b"k".to_vec(), b"1".to_vec());
        let ticket = store.write(batch).unwrap();
        assert_ne!(ticket, SyncTicket::DURABLE);
        assert_eq!(store.get(b"k").unwrap(), Some(b"1".to_vec()));
        store.sync(ticket).unwrap();
        assert!(store.is_durable(ticket));
        // A later write is not covered by the earlier flush.
        let mut batch = WriteBatch::default();
        batch.put(b"k".to_vec(), b"2".to_vec());
        let later = store.write(batch).unwrap();
        assert!(!store.is_durable(later));
        assert_eq!(
            store.write(WriteBatch::default()).unwrap(),
            SyncTicket::DURABLE
        );
    }

    #[test]
    fn ids_increase_and_deletes_apply() {
        let store = SledStorage::temporary().unwrap();
        let a = store.next_id().unwrap();
        assert!(store.next_id().unwrap() > a);
        let mut batch = WriteBatch::default();
        batch.put(b"k".to_vec(), b"1".to_vec());
        store.commit(batch).unwrap();
        let mut batch = WriteBatch::default();
        batch.delete(b"k".to_vec());
        store.commit(batch).unwrap();
        assert_eq!(store.get(b"k").unwrap(), None);
    }
}
