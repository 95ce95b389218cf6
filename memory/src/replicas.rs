//! Keeping a replica's caches (memory resources, vector indexes) current
//! when other replicas sharing the store (PostgreSQL) change them.

use std::ops::ControlFlow;

use corral_storage::{Change, ScanStart};
use tokio::task::JoinHandle;

use crate::control::Memory;
use crate::error::MemoryError;
use crate::keys::{self, table};
use crate::records::{StoredRecord, vector_from};
use crate::service::{MemoryService, decode};

/// Topic of a memory resource's settings.
const MEMORY_TOPIC: &str = "memory/";
/// Topic of a memory resource's long-term records.
const RECORDS_TOPIC: &str = "records/";
/// Longest topic sent (PostgreSQL's NOTIFY payload is under 8,000 bytes).
const MAX_TOPIC_BYTES: usize = 7_000;

impl MemoryService {
    /// Tells other replicas that memory resource `id` changed (created,
    /// updated, deleted).
    pub(crate) fn announce_memory(&self, id: &str) {
        self.announce(&format!("{MEMORY_TOPIC}{id}"));
    }

    /// Tells other replicas that records `records` of memory `id` changed
    /// (written or deleted); they re-read just those. A list too long for
    /// one notification asks them to reload the memory's whole index.
    pub(crate) fn announce_records(&self, id: &str, records: &[&str]) {
        let listed = format!("{RECORDS_TOPIC}{id}/{}", records.join(","));
        if listed.len() <= MAX_TOPIC_BYTES {
            self.announce(&listed);
        } else {
            self.announce(&format!("{RECORDS_TOPIC}{id}"));
        }
    }

    fn announce(&self, topic: &str) {
        if let Err(error) = self.inner.storage.publish(topic) {
            // Others still read a missing resource through, and resync
            // when their listener reconnects.
            tracing::warn!(
                topic,
                "cannot tell other replicas about a memory change: {error}"
            );
        }
    }

    /// Follows other replicas' changes: reloads a memory resource, or a
    /// memory's vector index, when another replica announces a change, and
    /// everything after a resync. `None` when the store is not shared.
    pub fn follow_changes(&self) -> Option<JoinHandle<()>> {
        let mut changes = self.inner.storage.subscribe()?;
        let service = self.clone();
        Some(tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                let applied = service
                    .blocking(move |s| match change {
                        Change::Topic(topic) => s.apply_change(&topic),
                        Change::Resync => s.reload_all(),
                    })
                    .await;
                if let Err(error) = applied {
                    tracing::warn!("cannot apply another replica's memory change: {error}");
                }
            }
        }))
    }

    fn apply_change(&self, topic: &str) -> Result<(), MemoryError> {
        if let Some(id) = topic.strip_prefix(MEMORY_TOPIC) {
            return self.reload_memory(id);
        }
        if let Some(rest) = topic.strip_prefix(RECORDS_TOPIC) {
            let (id, records) = match rest.split_once('/') {
                Some((id, records)) => (id, Some(records)),
                None => (rest, None),
            };
            if !self.inner.memories.read().contains_key(id) {
                return Ok(());
            }
            return match records {
                Some(records) => self.refresh_records(id, records.split(',')),
                None => self.load_index(id),
            };
        }
        Ok(())
    }

    /// Re-reads records of memory `memory_id` into its index: upserted as
    /// stored now, removed when gone. Reading the stored state (not the
    /// announcement's) keeps the index right whatever order changes arrive in.
    fn refresh_records<'a>(
        &self,
        memory_id: &str,
        records: impl Iterator<Item = &'a str>,
    ) -> Result<(), MemoryError> {
        for record in records.filter(|r| !r.is_empty()) {
            let record_key = keys::key(table::RECORD, &[memory_id, record]);
            let stored = match self.inner.storage.get(&record_key)? {
                Some(bytes) => Some(decode::<StoredRecord>(&record_key, &bytes)?),
                None => None,
            };
            let vector = self
                .inner
                .storage
                .get(&keys::key(table::VECTOR, &[memory_id, record]))?;
            let mut indexes = self.inner.indexes.write();
            let Some(index) = indexes.get_mut(memory_id) else {
                return Ok(());
            };
            match (stored, vector) {
                (Some(stored), Some(vector)) => index.upsert(
                    record,
                    stored.namespace(),
                    &stored.record.memory_strategy_id,
                    &vector_from(&vector),
                ),
                _ => index.remove(record),
            }
        }
        Ok(())
    }

    /// Re-reads memory resource `id` (dropping it when it is gone).
    fn reload_memory(&self, id: &str) -> Result<(), MemoryError> {
        let key = keys::key(table::MEMORY, &[id]);
        match self.inner.storage.get(&key)? {
            Some(bytes) => {
                let memory: Memory = decode(&key, &bytes)?;
                let known = self
                    .inner
                    .memories
                    .write()
                    .insert(id.to_string(), memory)
                    .is_some();
                if !known {
                    self.load_index(id)?;
                }
            }
            None => {
                self.inner.memories.write().remove(id);
                self.inner.indexes.write().remove(id);
            }
        }
        Ok(())
    }

    /// Re-reads every memory resource and vector index.
    fn reload_all(&self) -> Result<(), MemoryError> {
        let mut ids = Vec::new();
        self.inner.storage.scan(
            &keys::prefix(table::MEMORY, &[]),
            ScanStart::Beginning,
            false,
            &mut |key, _| {
                if let Some(id) = key.get(2..) {
                    ids.push(String::from_utf8_lossy(id).into_owned());
                }
                ControlFlow::Continue(())
            },
        )?;
        let gone: Vec<String> = self
            .inner
            .memories
            .read()
            .keys()
            .filter(|id| !ids.contains(id))
            .cloned()
            .collect();
        for id in gone {
            self.inner.memories.write().remove(&id);
            self.inner.indexes.write().remove(&id);
        }
        for id in &ids {
            let key = keys::key(table::MEMORY, &[id]);
            if let Some(bytes) = self.inner.storage.get(&key)? {
                let memory: Memory = decode(&key, &bytes)?;
                self.inner.memories.write().insert(id.clone(), memory);
                self.load_index(id)?;
            }
        }
        Ok(())
    }
}
