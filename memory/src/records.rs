//! Long-term memory records: retrieval, listing and the batch operations.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::error::MemoryError;
use crate::filters;
use crate::ids;
use crate::keys::{self, table};
use crate::pagination::{self, MAX_PAGE};
use crate::service::{MemoryService, decode, encode};
use crate::store::WriteBatch;
use crate::timestamp::Timestamp;
use crate::types::{
    BatchRecordsOutput, ListMemoryRecordsInput, MemoryContent, MemoryRecord,
    MemoryRecordCreateInput, MemoryRecordDeleteInput, MemoryRecordOutput, MemoryRecordUpdateInput,
    MemoryRecordsOutput, RecordStatus, RetrieveMemoryRecordsInput,
};
use crate::vector_index::{NamespaceScope, VectorIndex};

/// Longest record text, in characters.
const MAX_RECORD_CHARS: usize = 16_000;
/// Most records per batch call.
const MAX_BATCH: usize = 100;
/// Strategy id of records written through the batch API without one.
pub const MANUAL_STRATEGY: &str = "manual";

/// A record as stored, with the extraction topic it answers (if any).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredRecord {
    pub(crate) record: MemoryRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) topic: Option<String>,
}

impl StoredRecord {
    pub(crate) fn namespace(&self) -> &str {
        self.record.namespaces.first().map_or("/", String::as_str)
    }
}

fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn vector_from(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn validate_text(field: &str, content: &MemoryContent) -> Result<(), MemoryError> {
    let chars = content.text().chars().count();
    if chars == 0 || chars > MAX_RECORD_CHARS {
        return Err(MemoryError::field(
            field,
            format!("must be 1 to {MAX_RECORD_CHARS} characters, got {chars}"),
        ));
    }
    Ok(())
}

fn validate_namespaces(field: &str, namespaces: &[String]) -> Result<(), MemoryError> {
    if namespaces.len() != 1 {
        return Err(MemoryError::field(field, "exactly one namespace"));
    }
    ids::namespace(field, &namespaces[0])
}

fn scope<'a>(
    namespace: Option<&'a str>,
    path: Option<&'a str>,
) -> Result<NamespaceScope<'a>, MemoryError> {
    match (namespace, path) {
        (Some(_), Some(_)) => Err(MemoryError::field(
            "namespace",
            "give namespace or namespacePath, not both",
        )),
        (Some(n), None) => {
            ids::namespace("namespace", n)?;
            Ok(NamespaceScope::Prefix(n))
        }
        (None, Some(p)) => {
            ids::namespace("namespacePath", p)?;
            Ok(NamespaceScope::Path(p))
        }
        (None, None) => Ok(NamespaceScope::All),
    }
}

fn failed(id: String, request: Option<String>, error: &MemoryError) -> MemoryRecordOutput {
    MemoryRecordOutput {
        memory_record_id: id,
        status: RecordStatus::Failed,
        request_identifier: request,
        error_code: Some(error.http_status()),
        error_message: Some(error.to_string()),
    }
}

fn succeeded(id: String, request: Option<String>) -> MemoryRecordOutput {
    MemoryRecordOutput {
        memory_record_id: id,
        status: RecordStatus::Succeeded,
        request_identifier: request,
        error_code: None,
        error_message: None,
    }
}

impl MemoryService {
    /// `RetrieveMemoryRecords`: records most similar to the query, best first.
    pub async fn retrieve_memory_records(
        &self,
        memory_id: &str,
        input: RetrieveMemoryRecordsInput,
    ) -> Result<MemoryRecordsOutput, MemoryError> {
        self.retrieve_memory_records_where(memory_id, input, &|_, _| true)
            .await
    }

    /// [`retrieve_memory_records`](Self::retrieve_memory_records) among the
    /// records whose namespace and strategy id satisfy
    /// `keep(namespace, strategy_id)`, applied before ranking: records it
    /// refuses take none of the `topK` places (see
    /// [`VectorIndex::search_where`]). Not part of the AgentCore API; for
    /// callers confining a search to namespaces no prefix or path expresses.
    pub async fn retrieve_memory_records_where(
        &self,
        memory_id: &str,
        input: RetrieveMemoryRecordsInput,
        keep: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> Result<MemoryRecordsOutput, MemoryError> {
        self.memory(memory_id)?;
        let criteria = &input.search_criteria;
        let query_chars = criteria.search_query.chars().count();
        if query_chars == 0 || query_chars > 10_000 {
            return Err(MemoryError::field(
                "searchCriteria.searchQuery",
                "must be 1 to 10000 characters",
            ));
        }
        let top_k = match criteria.top_k {
            None => 10,
            Some(k @ 1..=100) => k as usize,
            Some(k) => {
                return Err(MemoryError::field(
                    "searchCriteria.topK",
                    format!("must be 1 to 100, got {k}"),
                ));
            }
        };
        if let Some(f) = &criteria.metadata_filters {
            filters::validate_record_filters(f)?;
        }
        let page = pagination::page_size(
            input.max_results,
            top_k.min(MAX_PAGE as usize) as u32,
            MAX_PAGE,
        )?;
        let offset = match &input.next_token {
            Some(t) => {
                let bytes = pagination::decode("retrieve", t)?;
                String::from_utf8_lossy(&bytes)
                    .parse::<usize>()
                    .map_err(|_| MemoryError::field("nextToken", "invalid pagination token"))?
            }
            None => 0,
        };
        let scope = scope(input.namespace.as_deref(), input.namespace_path.as_deref())?;
        let query = self
            .inner
            .embedder
            .embed(std::slice::from_ref(&criteria.search_query))
            .await?
            .pop()
            .ok_or_else(|| MemoryError::Service("embedder returned no vector".into()))?;
        let hits = {
            let indexes = self.inner.indexes.read();
            let Some(index) = indexes.get(memory_id) else {
                return Ok(MemoryRecordsOutput {
                    memory_record_summaries: Vec::new(),
                    next_token: None,
                });
            };
            // With metadata filters the best matches may sit below the first
            // topK by similarity, so rank everything in scope first.
            let k = if criteria.metadata_filters.is_some() {
                index.len()
            } else {
                top_k
            };
            let strategy = criteria.memory_strategy_id.as_deref();
            index.search_where(&query, scope, k, |namespace, s| {
                strategy.is_none_or(|want| want == s) && keep(namespace, s)
            })
        };
        let filters = criteria.metadata_filters.clone();
        let m = memory_id.to_string();
        let ranked = self
            .blocking(move |svc| {
                let mut out = Vec::new();
                for hit in hits {
                    if out.len() == top_k {
                        break;
                    }
                    let Some(stored) = svc.stored_record(&m, &hit.id)? else {
                        continue;
                    };
                    let mut record = stored.record;
                    if filters
                        .as_ref()
                        .is_some_and(|f| !filters::record_matches(&record.metadata, f))
                    {
                        continue;
                    }
                    record.score = Some(f64::from(hit.score));
                    out.push(record);
                }
                Ok(out)
            })
            .await?;
        let end = (offset + page).min(ranked.len());
        let next_token = (end < ranked.len())
            .then(|| pagination::encode("retrieve", end.to_string().as_bytes()));
        let summaries = ranked.into_iter().skip(offset).take(page).collect();
        Ok(MemoryRecordsOutput {
            memory_record_summaries: summaries,
            next_token,
        })
    }

    /// `ListMemoryRecords`: records in scope, by record id.
    pub async fn list_memory_records(
        &self,
        memory_id: &str,
        input: ListMemoryRecordsInput,
    ) -> Result<MemoryRecordsOutput, MemoryError> {
        self.memory(memory_id)?;
        let size = pagination::page_size(input.max_results, pagination::DEFAULT_PAGE, MAX_PAGE)?;
        scope(input.namespace.as_deref(), input.namespace_path.as_deref())?;
        if let Some(f) = &input.metadata_filters {
            filters::validate_record_filters(f)?;
        }
        let after = input
            .next_token
            .as_deref()
            .map(|t| pagination::decode("records", t))
            .transpose()?;
        let m = memory_id.to_string();
        self.blocking(move |svc| {
            let scope = scope(input.namespace.as_deref(), input.namespace_path.as_deref())?;
            let prefix = keys::prefix(table::RECORD, &[&m]);
            let (page, next) =
                svc.page::<StoredRecord>(&prefix, after.as_deref(), size, |stored| {
                    Ok(scope.covers(stored.namespace())
                        && input
                            .memory_strategy_id
                            .as_ref()
                            .is_none_or(|s| *s == stored.record.memory_strategy_id)
                        && input
                            .metadata_filters
                            .as_ref()
                            .is_none_or(|f| filters::record_matches(&stored.record.metadata, f)))
                })?;
            let records: Vec<MemoryRecord> = page.into_iter().map(|s| s.record).collect();
            Ok(MemoryRecordsOutput {
                memory_record_summaries: records,
                next_token: next.map(|k| pagination::encode("records", &k)),
            })
        })
        .await
    }

    /// `GetMemoryRecord`.
    pub async fn get_memory_record(
        &self,
        memory_id: &str,
        record_id: &str,
    ) -> Result<MemoryRecord, MemoryError> {
        self.memory(memory_id)?;
        ids::record_id("memoryRecordId", record_id)?;
        let (m, r) = (memory_id.to_string(), record_id.to_string());
        self.blocking(move |svc| {
            svc.stored_record(&m, &r)?
                .map(|s| s.record)
                .ok_or_else(|| MemoryError::NotFound(format!("memory record {r} not found")))
        })
        .await
    }

    /// `DeleteMemoryRecord`; returns the deleted id.
    pub async fn delete_memory_record(
        &self,
        memory_id: &str,
        record_id: &str,
    ) -> Result<String, MemoryError> {
        self.memory(memory_id)?;
        ids::record_id("memoryRecordId", record_id)?;
        let (m, r) = (memory_id.to_string(), record_id.to_string());
        self.blocking(move |svc| {
            if svc.stored_record(&m, &r)?.is_none() {
                return Err(MemoryError::NotFound(format!(
                    "memory record {r} not found"
                )));
            }
            svc.delete_records_now(&m, std::slice::from_ref(&r))?;
            Ok(r)
        })
        .await
    }

    /// `BatchCreateMemoryRecords`: each record succeeds or fails on its own.
    pub async fn batch_create_memory_records(
        &self,
        memory_id: &str,
        records: Vec<MemoryRecordCreateInput>,
    ) -> Result<BatchRecordsOutput, MemoryError> {
        self.memory(memory_id)?;
        check_batch(records.len())?;
        let mut out = BatchRecordsOutput::default();
        let mut valid = Vec::new();
        for (i, input) in records.into_iter().enumerate() {
            let checked = ids::request_identifier(
                &format!("records[{i}].requestIdentifier"),
                &input.request_identifier,
            )
            .and_then(|()| validate_text(&format!("records[{i}].content.text"), &input.content))
            .and_then(|()| {
                validate_namespaces(&format!("records[{i}].namespaces"), &input.namespaces)
            })
            .and_then(|()| {
                filters::validate_record_metadata(
                    &format!("records[{i}].metadata"),
                    &input.metadata,
                )
            });
            match checked {
                Ok(()) => valid.push(input),
                Err(e) => out.failed_records.push(failed(
                    String::new(),
                    Some(input.request_identifier),
                    &e,
                )),
            }
        }
        let texts: Vec<String> = valid.iter().map(|r| r.content.text().to_string()).collect();
        let vectors = if texts.is_empty() {
            Vec::new()
        } else {
            self.inner.embedder.embed(&texts).await?
        };
        let mut rows = Vec::new();
        for (input, vector) in valid.into_iter().zip(vectors) {
            let id = ids::new_record_id();
            out.successful_records
                .push(succeeded(id.clone(), Some(input.request_identifier)));
            rows.push((
                StoredRecord {
                    record: MemoryRecord {
                        memory_record_id: id,
                        content: input.content,
                        memory_strategy_id: input
                            .memory_strategy_id
                            .unwrap_or_else(|| MANUAL_STRATEGY.into()),
                        namespaces: input.namespaces,
                        created_at: input.timestamp,
                        score: None,
                        metadata: input.metadata,
                    },
                    topic: None,
                },
                vector,
            ));
        }
        let m = memory_id.to_string();
        self.blocking(move |svc| svc.put_records_now(&m, rows))
            .await?;
        Ok(out)
    }

    /// `BatchUpdateMemoryRecords`.
    pub async fn batch_update_memory_records(
        &self,
        memory_id: &str,
        records: Vec<MemoryRecordUpdateInput>,
    ) -> Result<BatchRecordsOutput, MemoryError> {
        self.memory(memory_id)?;
        check_batch(records.len())?;
        let m = memory_id.to_string();
        let existing: Vec<Result<StoredRecord, MemoryError>> = {
            let ids: Vec<String> = records.iter().map(|r| r.memory_record_id.clone()).collect();
            self.blocking(move |svc| {
                Ok(ids
                    .iter()
                    .map(|id| {
                        ids::record_id("memoryRecordId", id)?;
                        svc.stored_record(&m, id)?.ok_or_else(|| {
                            MemoryError::NotFound(format!("memory record {id} not found"))
                        })
                    })
                    .collect())
            })
            .await?
        };
        let mut out = BatchRecordsOutput::default();
        let mut updated = Vec::new();
        for (i, (input, current)) in records.into_iter().zip(existing).enumerate() {
            let result = current.and_then(|mut stored| {
                if let Some(content) = input.content {
                    validate_text(&format!("records[{i}].content.text"), &content)?;
                    stored.record.content = content;
                }
                if let Some(namespaces) = input.namespaces {
                    validate_namespaces(&format!("records[{i}].namespaces"), &namespaces)?;
                    stored.record.namespaces = namespaces;
                }
                if let Some(metadata) = input.metadata {
                    filters::validate_record_metadata(
                        &format!("records[{i}].metadata"),
                        &metadata,
                    )?;
                    stored.record.metadata = metadata;
                }
                if let Some(strategy) = input.memory_strategy_id {
                    stored.record.memory_strategy_id = strategy;
                }
                stored.record.created_at = input.timestamp;
                Ok(stored)
            });
            match result {
                Ok(stored) => updated.push(stored),
                Err(e) => out
                    .failed_records
                    .push(failed(input.memory_record_id, None, &e)),
            }
        }
        let texts: Vec<String> = updated
            .iter()
            .map(|s| s.record.content.text().to_string())
            .collect();
        let vectors = if texts.is_empty() {
            Vec::new()
        } else {
            self.inner.embedder.embed(&texts).await?
        };
        for s in &updated {
            out.successful_records
                .push(succeeded(s.record.memory_record_id.clone(), None));
        }
        let rows: Vec<_> = updated.into_iter().zip(vectors).collect();
        let m = memory_id.to_string();
        self.blocking(move |svc| svc.put_records_now(&m, rows))
            .await?;
        Ok(out)
    }

    /// `BatchDeleteMemoryRecords`.
    pub async fn batch_delete_memory_records(
        &self,
        memory_id: &str,
        records: Vec<MemoryRecordDeleteInput>,
    ) -> Result<BatchRecordsOutput, MemoryError> {
        self.memory(memory_id)?;
        check_batch(records.len())?;
        let m = memory_id.to_string();
        self.blocking(move |svc| {
            let mut out = BatchRecordsOutput::default();
            let mut doomed = Vec::new();
            for r in records {
                let id = r.memory_record_id;
                let found = ids::record_id("memoryRecordId", &id).and_then(|()| {
                    svc.stored_record(&m, &id)?.ok_or_else(|| {
                        MemoryError::NotFound(format!("memory record {id} not found"))
                    })
                });
                match found {
                    Ok(_) => {
                        out.successful_records.push(succeeded(id.clone(), None));
                        doomed.push(id);
                    }
                    Err(e) => out.failed_records.push(failed(id, None, &e)),
                }
            }
            svc.delete_records_now(&m, &doomed)?;
            Ok(out)
        })
        .await
    }

    pub(crate) fn stored_record(
        &self,
        memory_id: &str,
        record_id: &str,
    ) -> Result<Option<StoredRecord>, MemoryError> {
        let key = keys::key(table::RECORD, &[memory_id, record_id]);
        match self.inner.storage.get(&key)? {
            Some(bytes) => Ok(Some(decode(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes records and their vectors durably, then indexes them.
    pub(crate) fn put_records_now(
        &self,
        memory_id: &str,
        rows: Vec<(StoredRecord, Vec<f32>)>,
    ) -> Result<(), MemoryError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for (stored, vector) in &rows {
            let id = &stored.record.memory_record_id;
            batch.put(keys::key(table::RECORD, &[memory_id, id]), encode(stored)?);
            batch.put(
                keys::key(table::VECTOR, &[memory_id, id]),
                vector_bytes(vector),
            );
        }
        self.inner.storage.commit(batch)?;
        let mut indexes = self.inner.indexes.write();
        let index = indexes
            .entry(memory_id.to_string())
            .or_insert_with(|| VectorIndex::new(self.inner.embedder.dimensions()));
        for (stored, vector) in &rows {
            index.upsert(
                &stored.record.memory_record_id,
                stored.namespace(),
                &stored.record.memory_strategy_id,
                vector,
            );
        }
        drop(indexes);
        let ids: Vec<&str> = rows
            .iter()
            .map(|(stored, _)| stored.record.memory_record_id.as_str())
            .collect();
        self.announce_records(memory_id, &ids);
        Ok(())
    }

    fn delete_records_now(&self, memory_id: &str, ids: &[String]) -> Result<(), MemoryError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for id in ids {
            batch.delete(keys::key(table::RECORD, &[memory_id, id]));
            batch.delete(keys::key(table::VECTOR, &[memory_id, id]));
        }
        self.inner.storage.commit(batch)?;
        if let Some(index) = self.inner.indexes.write().get_mut(memory_id) {
            for id in ids {
                index.remove(id);
            }
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.announce_records(memory_id, &ids);
        Ok(())
    }

    /// Every stored record of a memory, by id.
    pub(crate) fn all_records(&self, memory_id: &str) -> Result<Vec<StoredRecord>, MemoryError> {
        let mut out = Vec::new();
        self.scan_values::<StoredRecord>(&keys::prefix(table::RECORD, &[memory_id]), |_, r| {
            out.push(r);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Rebuilds a memory's vector index from stored vectors.
    pub(crate) fn load_index(&self, memory_id: &str) -> Result<(), MemoryError> {
        let dims = self.inner.embedder.dimensions();
        let mut index = VectorIndex::new(dims);
        for stored in self.all_records(memory_id)? {
            let id = &stored.record.memory_record_id;
            let Some(bytes) = self
                .inner
                .storage
                .get(&keys::key(table::VECTOR, &[memory_id, id]))?
            else {
                continue;
            };
            let vector = vector_from(&bytes);
            index.upsert(
                id,
                stored.namespace(),
                &stored.record.memory_strategy_id,
                &vector,
            );
        }
        self.inner
            .indexes
            .write()
            .insert(memory_id.to_string(), index);
        Ok(())
    }

    /// Re-embeds every record of a memory with the current embedder.
    pub(crate) async fn reembed(&self, memory_id: &str) -> Result<(), MemoryError> {
        let records = self.all_records(memory_id)?;
        self.inner.indexes.write().insert(
            memory_id.to_string(),
            VectorIndex::new(self.inner.embedder.dimensions()),
        );
        for chunk in records.chunks(64) {
            let texts: Vec<String> = chunk
                .iter()
                .map(|s| s.record.content.text().to_string())
                .collect();
            let vectors = self.inner.embedder.embed(&texts).await?;
            let rows: Vec<_> = chunk.iter().cloned().zip(vectors).collect();
            self.put_records_now(memory_id, rows)?;
        }
        Ok(())
    }

    /// Records of one strategy in one namespace, for consolidation.
    pub(crate) fn records_in(
        &self,
        memory_id: &str,
        namespace: &str,
        strategy_id: &str,
    ) -> Result<Vec<StoredRecord>, MemoryError> {
        Ok(self
            .all_records(memory_id)?
            .into_iter()
            .filter(|r| r.namespace() == namespace && r.record.memory_strategy_id == strategy_id)
            .collect())
    }

    /// Similarity search over one namespace and strategy.
    pub(crate) fn nearest(
        &self,
        memory_id: &str,
        namespace: &str,
        strategy_id: &str,
        vector: &[f32],
    ) -> Option<(String, f32)> {
        let indexes = self.inner.indexes.read();
        let hit = indexes
            .get(memory_id)?
            .search(
                vector,
                NamespaceScope::Path(namespace),
                Some(strategy_id),
                1,
            )
            .into_iter()
            .next()?;
        Some((hit.id.to_string(), hit.score))
    }
}

fn check_batch(len: usize) -> Result<(), MemoryError> {
    if len == 0 || len > MAX_BATCH {
        return Err(MemoryError::field(
            "records",
            format!("1 to {MAX_BATCH} records, got {len}"),
        ));
    }
    Ok(())
}

/// Record metadata set by extraction.
pub(crate) fn extraction_metadata(
    topic: Option<&str>,
) -> BTreeMap<String, crate::types::RecordMetadataValue> {
    let mut m = BTreeMap::new();
    if let Some(t) = topic {
        m.insert(
            "topic".to_string(),
            crate::types::RecordMetadataValue::StringValue(t.to_string()),
        );
    }
    m
}

/// Now, for records created by extraction.
pub(crate) fn record_time() -> Timestamp {
    Timestamp::now()
}
