//! [`MemoryService`]: memory resources, their events and records, over a [`Storage`].

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::control::{
    CreateMemoryInput, ListMemoriesOutput, Memory, MemoryStrategy, MemorySummary, StrategyInput,
    StrategyInputFields, StrategyType, default_namespace,
};
use crate::embed::Embedder;
use crate::error::{MemoryError, ValidationReason};
use crate::ids;
use crate::keys::{self, table};
use crate::pagination;
use crate::store::{ScanStart, Storage, StorageError, WriteBatch};
use crate::timestamp::Timestamp;
use crate::vector_index::VectorIndex;

/// Limits and tuning of a memory service.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Largest serialized event payload, in bytes.
    pub max_event_bytes: usize,
    /// Events of the session given to extraction as context.
    pub extraction_context_events: usize,
    /// Region and account used in memory ARNs.
    pub arn_prefix: String,
    /// Most memory resources.
    pub max_memories: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_event_bytes: 5 * 1024 * 1024,
            extraction_context_events: 10,
            arn_prefix: "arn:aws:bedrock-agentcore:local:000000000000".into(),
            max_memories: 1000,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) config: MemoryConfig,
    pub(crate) memories: RwLock<HashMap<String, Memory>>,
    pub(crate) indexes: RwLock<HashMap<String, VectorIndex>>,
    pub(crate) jobs: tokio::sync::Notify,
    /// This service's name in job claims (replicas share the job queue).
    pub(crate) worker_id: String,
    /// Serialises `UpdateMemory` calls.
    pub(crate) updates: tokio::sync::Mutex<()>,
}

/// AgentCore Memory's control and data planes over one store.
#[derive(Clone)]
pub struct MemoryService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MemoryError> {
    serde_json::to_vec(value).map_err(|e| MemoryError::Service(format!("encode: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, MemoryError> {
    serde_json::from_slice(bytes).map_err(|e| {
        MemoryError::from(StorageError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            message: e.to_string(),
        })
    })
}

const EMBEDDER_KEY: &str = "embedder";

/// Times a create tries to claim a name that keeps changing hands.
const NAME_CLAIM_ATTEMPTS: usize = 8;

/// A name claimed this long ago by a create that never wrote its resource
/// is free again.
const STALE_NAME_CLAIM_MS: u64 = 60_000;

/// The stored claim of a memory name: the resource's id and when.
fn name_claim(id: &str) -> Vec<u8> {
    format!("{id}\t{}", now_ms()).into_bytes()
}

/// The id and claim time (epoch ms; 0 when absent) of a stored name claim.
fn parse_name_claim(claim: &[u8]) -> (String, u64) {
    let text = String::from_utf8_lossy(claim);
    match text.split_once('\t') {
        Some((id, at)) => (id.to_string(), at.parse().unwrap_or(0)),
        None => (text.into_owned(), 0),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MemoryService {
    /// Opens the service: loads memory resources and the vector index,
    /// re-embedding records whose vectors came from another embedder.
    pub async fn open(
        storage: Arc<dyn Storage>,
        embedder: Arc<dyn Embedder>,
        config: MemoryConfig,
    ) -> Result<Self, MemoryError> {
        let service = MemoryService {
            inner: Arc::new(Inner {
                storage,
                embedder,
                config,
                memories: RwLock::new(HashMap::new()),
                indexes: RwLock::new(HashMap::new()),
                jobs: tokio::sync::Notify::new(),
                worker_id: uuid::Uuid::new_v4().simple().to_string(),
                updates: tokio::sync::Mutex::new(()),
            }),
        };
        let mut memories = HashMap::new();
        service.scan_values::<Memory>(&keys::prefix(table::MEMORY, &[]), |_, m| {
            memories.insert(m.id.clone(), m);
            ControlFlow::Continue(())
        })?;
        let ids: Vec<String> = memories.keys().cloned().collect();
        *service.inner.memories.write() = memories;
        let fingerprint = service.inner.embedder.fingerprint();
        let stored = service
            .inner
            .storage
            .get(&keys::key(table::META, &[EMBEDDER_KEY]))?;
        let same_embedder = stored.as_deref() == Some(fingerprint.as_bytes());
        for id in ids {
            if same_embedder {
                service.load_index(&id)?;
            } else {
                service.reembed(&id).await?;
            }
        }
        let mut batch = WriteBatch::default();
        batch.put(
            keys::key(table::META, &[EMBEDDER_KEY]),
            fingerprint.into_bytes(),
        );
        service.inner.storage.commit(batch)?;
        Ok(service)
    }

    /// The service's limits and tuning.
    pub fn config(&self) -> &MemoryConfig {
        &self.inner.config
    }

    /// The embedder used for records and queries.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner.embedder
    }

    /// Visits decoded values under `prefix`.
    pub(crate) fn scan_values<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        visit: impl FnMut(&[u8], T) -> ControlFlow<()>,
    ) -> Result<(), MemoryError> {
        self.scan_decoded(prefix, ScanStart::Beginning, false, visit)
    }

    /// Visits decoded values under `prefix` from `start`, in either
    /// direction; a value that does not decode stops the scan with an error.
    pub(crate) fn scan_decoded<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        start: ScanStart<'_>,
        reverse: bool,
        mut visit: impl FnMut(&[u8], T) -> ControlFlow<()>,
    ) -> Result<(), MemoryError> {
        let mut failure = None;
        self.inner.storage.scan(
            prefix,
            start,
            reverse,
            &mut |k, v| match decode::<T>(k, v) {
                Ok(value) => visit(k, value),
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            },
        )?;
        failure.map_or(Ok(()), Err)
    }

    /// One page of decoded values under `prefix` after `after` that pass
    /// `keep`; returns the page and the key to continue after when there is more.
    pub(crate) fn page<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        size: usize,
        mut keep: impl FnMut(&T) -> Result<bool, MemoryError>,
    ) -> Result<(Vec<T>, Option<Vec<u8>>), MemoryError> {
        let start = after.map_or(ScanStart::Beginning, ScanStart::After);
        let mut items = Vec::new();
        let mut last = None;
        let mut more = false;
        let mut failure = None;
        self.scan_decoded(prefix, start, false, |k, value: T| {
            match keep(&value) {
                Ok(false) => return ControlFlow::Continue(()),
                Ok(true) => {}
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            if items.len() == size {
                more = true;
                return ControlFlow::Break(());
            }
            items.push(value);
            last = Some(k.to_vec());
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok((items, if more { last } else { None }))
    }

    /// Runs a blocking storage section off the async executor.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&MemoryService) -> Result<T, MemoryError> + Send + 'static,
    ) -> Result<T, MemoryError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| MemoryError::Service(format!("storage task failed: {e}")))?
    }

    /// The memory resource `id`, or `ResourceNotFoundException`.
    pub fn memory(&self, id: &str) -> Result<Memory, MemoryError> {
        ids::memory_id(id)?;
        if let Some(memory) = self.inner.memories.read().get(id).cloned() {
            return Ok(memory);
        }
        // Another replica sharing this store (PostgreSQL) may have created
        // it since this one opened: read it through, with its records.
        let key = keys::key(table::MEMORY, &[id]);
        let Some(bytes) = self.inner.storage.get(&key)? else {
            return Err(MemoryError::NotFound(format!("memory {id} not found")));
        };
        let memory: Memory = decode(&key, &bytes)?;
        self.load_index(id)?;
        self.inner
            .memories
            .write()
            .entry(id.to_string())
            .or_insert(memory.clone());
        Ok(memory)
    }

    /// `CreateMemory`.
    pub async fn create_memory(&self, input: CreateMemoryInput) -> Result<Memory, MemoryError> {
        ids::name("name", &input.name)?;
        if !(3..=365).contains(&input.event_expiry_duration) {
            return Err(MemoryError::field(
                "eventExpiryDuration",
                format!("must be 3 to 365 days, got {}", input.event_expiry_duration),
            ));
        }
        if let Some(token) = &input.client_token {
            let existing = self
                .inner
                .memories
                .read()
                .values()
                .find(|m| m.client_token.as_deref() == Some(token))
                .cloned();
            if let Some(memory) = existing {
                return Ok(memory);
            }
        }
        {
            let memories = self.inner.memories.read();
            if memories.values().any(|m| m.name == input.name) {
                return Err(MemoryError::Conflict(format!(
                    "a memory named {} already exists",
                    input.name
                )));
            }
            if memories.len() >= self.inner.config.max_memories {
                return Err(MemoryError::QuotaExceeded(format!(
                    "at most {} memories",
                    self.inner.config.max_memories
                )));
            }
        }
        let now = Timestamp::now();
        let mut strategies = Vec::new();
        for (i, strategy) in input.memory_strategies.iter().enumerate() {
            strategies.push(build_strategy(i, strategy)?);
        }
        let mut names: Vec<&str> = strategies.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(MemoryError::field(
                "memoryStrategies",
                "strategy names must be unique",
            ));
        }
        let id = format!("{}-{}", input.name, ids::random_suffix());
        let memory = Memory {
            arn: format!("{}:memory/{id}", self.inner.config.arn_prefix),
            id: id.clone(),
            name: input.name,
            description: input.description,
            event_expiry_duration: input.event_expiry_duration,
            status: "ACTIVE".into(),
            created_at: now,
            updated_at: now,
            strategies,
            client_token: input.client_token,
        };
        let value = encode(&memory)?;
        let key = keys::key(table::MEMORY, &[&id]);
        let name_key = keys::key(table::MEMORY_NAME, &[&memory.name]);
        let token = memory.client_token.clone();
        let claimed_id = id.clone();
        // The name is claimed first (by compare-and-swap: another replica
        // may create the same name at once), then the resource written.
        let taken: Option<String> = self
            .blocking(move |s| {
                let storage = &s.inner.storage;
                let claim = name_claim(&claimed_id);
                let mut expected = None;
                for _ in 0..NAME_CLAIM_ATTEMPTS {
                    if storage.compare_and_swap(
                        &name_key,
                        expected.as_deref(),
                        Some(claim.clone()),
                    )? {
                        let mut batch = WriteBatch::default();
                        batch.put(key, value);
                        if let Err(error) = storage.commit(batch) {
                            // Give the name back; if even that fails, the
                            // claim goes stale and a later create takes it.
                            let _ = storage.compare_and_swap(&name_key, Some(&claim), None);
                            return Err(error.into());
                        }
                        return Ok(None);
                    }
                    let Some(holder) = storage.get(&name_key)? else {
                        expected = None;
                        continue;
                    };
                    let (holder_id, claimed_ms) = parse_name_claim(&holder);
                    // A claim whose resource was never written (a create
                    // that failed half-way) keeps the name only a while.
                    let written = storage
                        .get(&keys::key(table::MEMORY, &[&holder_id]))?
                        .is_some();
                    let stale = now_ms().saturating_sub(claimed_ms) > STALE_NAME_CLAIM_MS;
                    if written || !stale {
                        return Ok(Some(holder_id));
                    }
                    expected = Some(holder);
                }
                Err(MemoryError::Throttled(
                    "the memory's name kept changing hands; retry".into(),
                ))
            })
            .await?;
        if let Some(holder) = taken {
            // A retry of a create another replica answered returns it.
            if let Ok(existing) = self.memory(&holder)
                && token.is_some()
                && existing.client_token == token
            {
                return Ok(existing);
            }
            return Err(MemoryError::Conflict(format!(
                "a memory named {} already exists",
                memory.name
            )));
        }
        self.inner.indexes.write().insert(
            id.clone(),
            VectorIndex::new(self.inner.embedder.dimensions()),
        );
        self.inner
            .memories
            .write()
            .insert(id.clone(), memory.clone());
        self.announce_memory(&id);
        Ok(memory)
    }

    /// `GetMemory`.
    pub fn get_memory(&self, id: &str) -> Result<Memory, MemoryError> {
        self.memory(id)
    }

    /// The memory resource named `name`, wherever it was created (names
    /// are unique across replicas sharing the store).
    pub fn memory_named(&self, name: &str) -> Result<Memory, MemoryError> {
        let cached = self
            .inner
            .memories
            .read()
            .values()
            .find(|m| m.name == name)
            .cloned();
        if let Some(memory) = cached {
            return Ok(memory);
        }
        match self
            .inner
            .storage
            .get(&keys::key(table::MEMORY_NAME, &[name]))?
        {
            Some(claim) => self.memory(&parse_name_claim(&claim).0),
            None => Err(MemoryError::NotFound(format!("no memory named {name}"))),
        }
    }

    /// `ListMemories` (pages of 10 by default, at most 100 as AgentCore).
    pub fn list_memories(
        &self,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<ListMemoriesOutput, MemoryError> {
        let size = pagination::page_size(max_results, 10, pagination::MAX_PAGE)?;
        let after = next_token
            .map(|t| pagination::decode("memories", t))
            .transpose()?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let memories = self.inner.memories.read();
        let mut ids: Vec<&String> = memories
            .keys()
            .filter(|id| after.as_ref().is_none_or(|a| *id > a))
            .collect();
        ids.sort();
        let next_token =
            (ids.len() > size).then(|| pagination::encode("memories", ids[size - 1].as_bytes()));
        let page = ids
            .into_iter()
            .take(size)
            .filter_map(|id| memories.get(id))
            .map(|m| MemorySummary {
                arn: m.arn.clone(),
                id: m.id.clone(),
                status: m.status.clone(),
                created_at: m.created_at,
                updated_at: m.updated_at,
            })
            .collect();
        Ok(ListMemoriesOutput {
            memories: page,
            next_token,
        })
    }

    /// `DeleteMemory`: removes the resource and everything stored in it.
    pub async fn delete_memory(&self, id: &str) -> Result<Memory, MemoryError> {
        // Not while an update of it runs: the update would write it back.
        let _guard = self.inner.updates.lock().await;
        let memory = self.memory(id)?;
        let id = id.to_string();
        let name = memory.name.clone();
        self.blocking(move |s| {
            let mut batch = WriteBatch::default();
            for t in [
                table::ACTOR,
                table::SESSION,
                table::EVENT,
                table::EVENT_ID,
                table::BRANCH,
                table::CLIENT_TOKEN,
                table::RECORD,
                table::VECTOR,
            ] {
                s.inner.storage.scan(
                    &keys::prefix(t, &[&id]),
                    ScanStart::Beginning,
                    false,
                    &mut |k, _| {
                        batch.delete(k.to_vec());
                        ControlFlow::Continue(())
                    },
                )?;
            }
            batch.delete(keys::key(table::MEMORY, &[&id]));
            batch.delete(keys::key(table::MEMORY_NAME, &[&name]));
            s.inner.storage.commit(batch)?;
            s.inner.memories.write().remove(&id);
            s.inner.indexes.write().remove(&id);
            s.announce_memory(&id);
            Ok(())
        })
        .await?;
        Ok(memory)
    }
}

pub(crate) fn build_strategy(
    index: usize,
    input: &StrategyInput,
) -> Result<MemoryStrategy, MemoryError> {
    let field = format!("memoryStrategies[{index}]");
    let (kind, fields): (StrategyType, &StrategyInputFields) = match input {
        StrategyInput::SemanticMemoryStrategy(f) => (StrategyType::Semantic, f),
        StrategyInput::SummaryMemoryStrategy(f) => (StrategyType::Summarization, f),
        StrategyInput::UserPreferenceMemoryStrategy(f) => (StrategyType::UserPreference, f),
        StrategyInput::CustomMemoryStrategy(f) => (StrategyType::Custom, f),
        StrategyInput::EpisodicMemoryStrategy(_) => {
            return Err(MemoryError::field(
                field,
                "episodic strategies are not supported by Corral",
            ));
        }
    };
    ids::name(&format!("{field}.name"), &fields.name)?;
    let (base_type, append_to_prompt, model_id) = match kind {
        StrategyType::Custom => custom_configuration(&field, fields.configuration.as_ref())?,
        _ => (None, None, None),
    };
    let behaviour = base_type.unwrap_or(kind);
    let templates = fields
        .namespace_templates
        .clone()
        .or_else(|| fields.namespaces.clone())
        .unwrap_or_else(|| vec![default_namespace(behaviour).to_string()]);
    if templates.len() != 1 {
        return Err(MemoryError::field(
            format!("{field}.namespaces"),
            "exactly one namespace template",
        ));
    }
    validate_template(&format!("{field}.namespaces"), &templates[0])?;
    Ok(MemoryStrategy {
        strategy_id: format!("{}-{}", fields.name, ids::random_suffix()),
        name: fields.name.clone(),
        description: fields.description.clone(),
        strategy_type: kind,
        base_type,
        namespaces: templates.clone(),
        namespace_templates: templates,
        append_to_prompt,
        model_id,
        status: "ACTIVE".into(),
    })
}

type CustomParts = (Option<StrategyType>, Option<String>, Option<String>);

/// Reads a custom strategy's `configuration` union: which built-in it
/// overrides, and the extraction prompt addition and model.
fn custom_configuration(
    field: &str,
    configuration: Option<&serde_json::Value>,
) -> Result<CustomParts, MemoryError> {
    let Some(obj) = configuration.and_then(|c| c.as_object()) else {
        return Err(MemoryError::field(
            format!("{field}.configuration"),
            "a custom strategy needs a configuration",
        ));
    };
    let (base, body) = if let Some(b) = obj.get("semanticOverride") {
        (StrategyType::Semantic, b)
    } else if let Some(b) = obj.get("userPreferenceOverride") {
        (StrategyType::UserPreference, b)
    } else if let Some(b) = obj.get("summaryOverride") {
        (StrategyType::Summarization, b)
    } else {
        return Err(MemoryError::field(
            format!("{field}.configuration"),
            "expected semanticOverride, userPreferenceOverride or summaryOverride",
        ));
    };
    let step = body.get("extraction").or_else(|| body.get("consolidation"));
    let prompt = step
        .and_then(|s| s.get("appendToPrompt"))
        .and_then(|p| p.as_str())
        .map(str::to_string);
    let model = step
        .and_then(|s| s.get("modelId"))
        .and_then(|p| p.as_str())
        .map(str::to_string);
    if let Some(p) = &prompt
        && (p.is_empty() || p.chars().count() > 30_000)
    {
        return Err(MemoryError::field(
            format!("{field}.configuration.appendToPrompt"),
            "must be 1 to 30000 characters",
        ));
    }
    Ok((Some(base), prompt, model))
}

/// Namespace templates may use `{actorId}`, `{sessionId}`, `{memoryStrategyId}`.
pub(crate) fn validate_template(field: &str, template: &str) -> Result<(), MemoryError> {
    let resolved = template
        .replace("{actorId}", "a")
        .replace("{sessionId}", "s")
        .replace("{memoryStrategyId}", "m");
    if resolved.contains('{') || resolved.contains('}') {
        return Err(MemoryError::field(
            field,
            "only {actorId}, {sessionId} and {memoryStrategyId} may be used",
        ));
    }
    ids::namespace(field, &resolved)
}

/// Validation error for a conflict with stored state.
pub(crate) fn conflict(message: impl Into<String>) -> MemoryError {
    MemoryError::invalid(ValidationReason::ResourceConflict, message)
}
