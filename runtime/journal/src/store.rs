//! [`JournalStore`]: appending, reading, listing and deleting journals.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use corral_storage::{ScanStart, Storage, StorageError, SyncTicket, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Record};
use crate::error::JournalError;
use crate::keys;

/// Size and retention of journals.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Bytes one session's journal may hold (64 MiB). An append past it
    /// fails with [`JournalError::Full`] and writes nothing.
    pub max_bytes_per_session: u64,
    /// How long a journal is kept after its last append (`None`: until the
    /// session is deleted). Default 30 days.
    pub retention: Option<Duration>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            max_bytes_per_session: 64 << 20,
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

/// The per-session header: what an append needs without scanning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// The session.
    #[serde(default)]
    pub session: String,
    /// Entries written (the next offset).
    pub entries: u64,
    /// Bytes of encoded entries.
    pub bytes: u64,
    /// First append, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Last append, milliseconds since the Unix epoch.
    pub updated_ms: u64,
    /// Offset of the last `started` entry (where the current sandbox's
    /// entries begin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started: Option<u64>,
    /// What the last `started` entry started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxSummary>,
    /// Whether an `ended` entry follows the last `started` one: the session
    /// is over and does not resume.
    #[serde(default)]
    pub ended: bool,
}

/// The session's latest sandbox, from its `started` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSummary {
    /// Agent runtime name.
    pub agent: String,
    /// Agent version label.
    pub version: String,
    /// When it started, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl SessionSummary {
    /// Whether the session's latest sandbox can be resumed from this journal.
    pub fn resumable(&self) -> bool {
        self.last_started.is_some() && !self.ended
    }
}

/// Journals of many sessions over one storage.
///
/// Appends to one session must not race each other (the host serialises a
/// session's invocations); appends to different sessions may.
#[derive(Clone)]
pub struct JournalStore {
    storage: Arc<dyn Storage>,
    config: JournalConfig,
}

impl std::fmt::Debug for JournalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JournalStore {
    /// Journals kept in `storage`.
    pub fn new(storage: Arc<dyn Storage>, config: JournalConfig) -> Self {
        Self { storage, config }
    }

    /// The configuration.
    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    /// Appends `entries` to `session`'s journal at `now_ms`, durably and
    /// atomically; returns the offset of the first. Past the size cap
    /// nothing is written.
    pub fn append(
        &self,
        session: &str,
        entries: &[Entry],
        now_ms: u64,
    ) -> Result<u64, JournalError> {
        let (first, ticket) = self.append_unsynced(session, entries, now_ms)?;
        self.sync(session, ticket)?;
        Ok(first)
    }

    /// Appends like [`JournalStore::append`], visible to reads at once but
    /// not yet durable: returns the offset of the first entry and the ticket
    /// [`JournalStore::sync`] waits on. An async caller appends on its own
    /// thread and waits for the disk on a blocking one (or not at all, when
    /// [`JournalStore::is_durable`] says another writer's flush covered it).
    pub fn append_unsynced(
        &self,
        session: &str,
        entries: &[Entry],
        now_ms: u64,
    ) -> Result<(u64, SyncTicket), JournalError> {
        check(session)?;
        let header = keys::header(session);
        let stored = self
            .storage
            .get(&header)
            .map_err(|source| storage(session, source))?;
        let mut summary = match &stored {
            Some(bytes) => decode_summary(session, bytes)?,
            None => SessionSummary {
                session: session.to_string(),
                created_ms: now_ms,
                ..SessionSummary::default()
            },
        };
        let first = summary.entries;
        let mut batch = WriteBatch::default();
        let mut bytes = summary.bytes;
        for (i, entry) in entries.iter().enumerate() {
            match entry {
                Entry::Started(start) => {
                    summary.last_started = Some(first + i as u64);
                    summary.sandbox = Some(SandboxSummary {
                        agent: start.agent.clone(),
                        version: start.version.clone(),
                        at_ms: start.at_ms,
                    });
                    summary.ended = false;
                }
                Entry::Ended { .. } => summary.ended = true,
                _ => {}
            }
            let encoded = entry.encode();
            bytes = bytes.saturating_add(encoded.len() as u64);
            batch.put(keys::entry(session, first + i as u64), encoded);
        }
        if bytes > self.config.max_bytes_per_session {
            return Err(JournalError::Full {
                session: session.to_string(),
                limit: self.config.max_bytes_per_session,
            });
        }
        summary.entries = first + entries.len() as u64;
        summary.bytes = bytes;
        summary.updated_ms = now_ms;
        batch.put(
            header.clone(),
            serde_json::to_vec(&summary).unwrap_or_default(),
        );
        // Written only over the header it was computed from: an append by
        // another writer meanwhile (the replica that took the session over)
        // makes this one fail instead of overwriting its entries.
        let ticket = self
            .storage
            .write_if(&header, stored.as_deref(), batch)
            .map_err(|source| storage(session, source))?
            .ok_or_else(|| JournalError::Conflict {
                session: session.to_string(),
            })?;
        Ok((first, ticket))
    }

    /// Whether an append with `ticket` is durable already.
    pub fn is_durable(&self, ticket: SyncTicket) -> bool {
        self.storage.is_durable(ticket)
    }

    /// Blocks until the append with `ticket` (to `session`) is durable.
    pub fn sync(&self, session: &str, ticket: SyncTicket) -> Result<(), JournalError> {
        self.storage
            .sync(ticket)
            .map_err(|source| storage(session, source))
    }

    /// Up to `limit` entries of `session` from `offset`, in order. A stored
    /// entry that does not decode fails with [`JournalError::Corrupt`] naming
    /// its offset.
    pub fn read(
        &self,
        session: &str,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<Record>, JournalError> {
        check(session)?;
        let prefix = keys::entries(session);
        let start_key = offset
            .checked_sub(1)
            .map(|before| keys::entry(session, before));
        let start = match &start_key {
            Some(key) => ScanStart::After(key),
            None => ScanStart::Beginning,
        };
        let mut records = Vec::new();
        let mut corrupt = None;
        self.storage
            .scan(&prefix, start, false, &mut |key, value| {
                if records.len() >= limit {
                    return ControlFlow::Break(());
                }
                let at = keys::offset_of(key).unwrap_or(u64::MAX);
                match Entry::decode(value) {
                    Ok(entry) => {
                        records.push(Record { offset: at, entry });
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        corrupt = Some((at, e.to_string()));
                        ControlFlow::Break(())
                    }
                }
            })
            .map_err(|source| storage(session, source))?;
        if let Some((offset, message)) = corrupt {
            return Err(JournalError::Corrupt {
                session: session.to_string(),
                offset,
                message,
            });
        }
        Ok(records)
    }

    /// The whole journal of `session`, in order.
    pub fn read_all(&self, session: &str) -> Result<Vec<Record>, JournalError> {
        self.read(session, 0, usize::MAX)
    }

    /// The entries of the session's latest sandbox, or `None` when the
    /// journal is empty or has no `started` entry.
    pub fn last_segment(&self, session: &str) -> Result<Option<crate::Segment>, JournalError> {
        let Some(summary) = self.summary(session)? else {
            return Ok(None);
        };
        let from = summary.last_started.unwrap_or(0);
        let records = self.read(session, from, usize::MAX)?;
        Ok(crate::segments(records).pop())
    }

    /// `session`'s header, or `None` when it has no journal.
    pub fn summary(&self, session: &str) -> Result<Option<SessionSummary>, JournalError> {
        check(session)?;
        let Some(bytes) = self
            .storage
            .get(&keys::header(session))
            .map_err(|source| storage(session, source))?
        else {
            return Ok(None);
        };
        decode_summary(session, &bytes).map(Some)
    }

    /// Every session with a journal.
    pub fn sessions(&self) -> Result<Vec<SessionSummary>, JournalError> {
        let mut out = Vec::new();
        self.storage
            .scan(
                &keys::headers(),
                ScanStart::Beginning,
                false,
                &mut |key, value| {
                    if let (Some(session), Ok(mut summary)) = (
                        keys::session_of_header(key),
                        serde_json::from_slice::<SessionSummary>(value),
                    ) {
                        summary.session = session;
                        out.push(summary);
                    }
                    ControlFlow::Continue(())
                },
            )
            .map_err(|source| storage("*", source))?;
        Ok(out)
    }

    /// Deletes `session`'s journal; returns whether there was one.
    pub fn delete(&self, session: &str) -> Result<bool, JournalError> {
        check(session)?;
        let existed = self.summary(session)?.is_some();
        let mut batch = WriteBatch::default();
        self.storage
            .scan(
                &keys::entries(session),
                ScanStart::Beginning,
                false,
                &mut |key, _| {
                    batch.delete(key.to_vec());
                    ControlFlow::Continue(())
                },
            )
            .map_err(|source| storage(session, source))?;
        batch.delete(keys::header(session));
        self.storage
            .commit(batch)
            .map_err(|source| storage(session, source))?;
        Ok(existed)
    }

    /// Deletes the journals not appended to within the retention period
    /// before `now_ms`; returns the sessions deleted.
    pub fn expire(&self, now_ms: u64) -> Result<Vec<String>, JournalError> {
        let Some(retention) = self.config.retention else {
            return Ok(Vec::new());
        };
        let cutoff = now_ms.saturating_sub(retention.as_millis() as u64);
        let mut expired = Vec::new();
        for summary in self.sessions()? {
            if summary.updated_ms < cutoff && self.delete(&summary.session)? {
                expired.push(summary.session);
            }
        }
        Ok(expired)
    }
}

/// A session's stored header.
fn decode_summary(session: &str, bytes: &[u8]) -> Result<SessionSummary, JournalError> {
    let mut summary: SessionSummary =
        serde_json::from_slice(bytes).map_err(|e| JournalError::Corrupt {
            session: session.to_string(),
            offset: u64::MAX,
            message: format!("header: {e}"),
        })?;
    summary.session = session.to_string();
    Ok(summary)
}

fn check(session: &str) -> Result<(), JournalError> {
    if session.is_empty() || session.len() > keys::MAX_SESSION_LEN {
        Err(JournalError::InvalidSession(session.to_string()))
    } else {
        Ok(())
    }
}

fn storage(session: &str, source: StorageError) -> JournalError {
    JournalError::Storage {
        session: session.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use corral_storage::SledStorage;

    use super::*;
    use crate::test_entries::{call, invocation, started};

    fn store(config: JournalConfig) -> (JournalStore, Arc<dyn Storage>) {
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::temporary().unwrap());
        (JournalStore::new(storage.clone(), config), storage)
    }

    #[test]
    fn writers_racing_on_one_journal_never_overwrite_each_other() {
        // Two replicas (two stores on one storage) append to one session:
        // each append that succeeds is whole and in the journal; the ones
        // that lost a race wrote nothing.
        let (one, storage) = store(JournalConfig::default());
        let two = JournalStore::new(storage, JournalConfig::default());
        let stores = [&one, &two];
        let won = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|n| {
                    let journal = stores[usize::from(n % 2)];
                    scope.spawn(move || {
                        let mut appended = 0;
                        for round in 0..20u8 {
                            match journal.append("s", &[invocation(n), invocation(round)], 1) {
                                Ok(_) => appended += 2,
                                Err(JournalError::Conflict { session }) => {
                                    assert_eq!(session, "s");
                                }
                                Err(other) => panic!("{other}"),
                            }
                        }
                        appended
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert!(won > 0);
        let records = one.read_all("s").unwrap();
        assert_eq!(records.len() as u64, won);
        assert_eq!(one.summary("s").unwrap().unwrap().entries, won);
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..won).collect::<Vec<_>>());
    }

    #[test]
    fn the_last_segment_starts_at_the_last_started_entry() {
        let (journal, _) = store(JournalConfig::default());
        assert_eq!(journal.last_segment("s").unwrap(), None);
        journal
            .append("s", &[started(), invocation(1), call()], 1)
            .unwrap();
        journal
            .append("s", &[started(), invocation(2), call()], 2)
            .unwrap();
        let summary = journal.summary("s").unwrap().unwrap();
        assert_eq!(summary.last_started, Some(3));
        assert_eq!(
            summary.sandbox.as_ref().map(|s| s.agent.as_str()),
            Some("a")
        );
        assert!(summary.resumable());
        let ended = Entry::Ended {
            reason: "stopped".into(),
            at_ms: 3,
        };
        journal.append("s", &[ended], 3).unwrap();
        assert!(!journal.summary("s").unwrap().unwrap().resumable());
        journal.append("s", &[started()], 4).unwrap();
        assert!(journal.summary("s").unwrap().unwrap().resumable());
        journal.append("s", &[invocation(3)], 5).unwrap();
        let segment = journal.last_segment("s").unwrap().unwrap();
        assert_eq!(segment.offset, 7);
        assert_eq!(segment.invocations.len(), 1);
        assert_eq!(segment.invocations[0].request_id, "r3");
        assert_eq!(segment.invocations[0].offset, 8);
    }

    #[test]
    fn appends_read_back_in_order_from_any_offset() {
        let (journal, _) = store(JournalConfig::default());
        assert_eq!(
            journal.append("s1", &[invocation(1), call()], 10).unwrap(),
            0
        );
        assert_eq!(journal.append("s1", &[invocation(2)], 20).unwrap(), 2);
        journal.append("s10", &[invocation(9)], 20).unwrap();
        let all = journal.read_all("s1").unwrap();
        assert_eq!(
            all.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(all[1].entry, call());
        assert_eq!(journal.read("s1", 1, 1).unwrap()[0].entry, call());
        assert_eq!(journal.read("s1", 2, 10).unwrap().len(), 1);
        let summary = journal.summary("s1").unwrap().unwrap();
        assert_eq!(
            (summary.entries, summary.created_ms, summary.updated_ms),
            (3, 10, 20)
        );
        assert_eq!(journal.sessions().unwrap().len(), 2);
    }

    #[test]
    fn the_cap_refuses_an_append_whole() {
        let (journal, _) = store(JournalConfig {
            max_bytes_per_session: 200,
            ..JournalConfig::default()
        });
        journal.append("s", &[invocation(1)], 1).unwrap();
        let err = journal
            .append("s", &[invocation(2), invocation(3), invocation(4)], 2)
            .unwrap_err();
        assert!(
            matches!(err, JournalError::Full { limit: 200, .. }),
            "{err}"
        );
        assert_eq!(
            journal.read_all("s").unwrap().len(),
            1,
            "nothing of it was written"
        );
        journal.append("other", &[invocation(1)], 2).unwrap();
    }

    #[test]
    fn a_corrupt_entry_names_session_and_offset_and_spares_other_sessions() {
        let (journal, storage) = store(JournalConfig::default());
        journal
            .append("bad", &[invocation(1), call(), invocation(2)], 1)
            .unwrap();
        journal.append("good", &[invocation(1)], 1).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(
            keys::entry("bad", 1),
            b"{\"kind\":\"hostCall\",\"interf".to_vec(),
        );
        storage.commit(batch).unwrap();
        let err = journal.read_all("bad").unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { session, offset: 1, .. } if session == "bad"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("session bad is corrupt at offset 1")
        );
        assert_eq!(
            journal.read("bad", 0, 1).unwrap().len(),
            1,
            "entries before it still read"
        );
        assert_eq!(journal.read_all("good").unwrap().len(), 1);
    }

    #[test]
    fn delete_and_expiry_remove_whole_journals() {
        let (journal, _) = store(JournalConfig {
            retention: Some(Duration::from_millis(100)),
            ..JournalConfig::default()
        });
        journal.append("old", &[invocation(1)], 1_000).unwrap();
        journal.append("new", &[invocation(1)], 1_950).unwrap();
        journal
            .append("gone", &[invocation(1), call()], 1_950)
            .unwrap();
        assert!(journal.delete("gone").unwrap());
        assert!(!journal.delete("gone").unwrap());
        assert!(journal.read_all("gone").unwrap().is_empty());
        assert_eq!(journal.expire(2_000).unwrap(), vec!["old".to_string()]);
        assert_eq!(
            journal
                .sessions()
                .unwrap()
                .iter()
                .map(|s| s.session.as_str())
                .collect::<Vec<_>>(),
            vec!["new"]
        );
        assert!(matches!(
            journal.append("", &[], 1),
            Err(JournalError::InvalidSession(_))
        ));
    }

    #[test]
    fn journals_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path()).unwrap());
            let journal = JournalStore::new(storage, JournalConfig::default());
            journal.append("s", &[invocation(1), call()], 5).unwrap();
        }
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path()).unwrap());
        let journal = JournalStore::new(storage, JournalConfig::default());
        assert_eq!(journal.read_all("s").unwrap().len(), 2);
        assert_eq!(journal.append("s", &[invocation(2)], 6).unwrap(), 2);
    }

    #[test]
    fn records_serialise_as_json_lines_with_base64_payloads() {
        let record = Record {
            offset: 3,
            entry: invocation(1),
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(
            line,
            r#"{"offset":3,"invocation":{"requestId":"r1","actorId":"alice","contentType":"application/json","payload":"AQEBAQ=="}}"#
        );
        assert_eq!(Record::from_json(&line).unwrap(), record);
        let call = Record {
            offset: 4,
            entry: call(),
        };
        let line = serde_json::to_string(&call).unwrap();
        assert!(line.contains(r#""hostCall":{"interface""#), "{line}");
        assert_eq!(Record::from_json(&line).unwrap(), call);
    }
}
