//! Short-term memory: `CreateEvent`, `GetEvent`, `ListEvents`, `DeleteEvent`,
//! `ListSessions`, `ListActors`, and expiry.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::error::{MemoryError, ValidationReason};
use crate::filters;
use crate::ids;
use crate::keys::{self, table};
use crate::pagination::{self, DEFAULT_PAGE, MAX_PAGE};
use crate::service::{MemoryService, conflict, decode, encode};
use crate::store::{ScanStart, WriteBatch};
use crate::timestamp::Timestamp;
use crate::types::{
    ActorSummary, Branch, BranchFilter, CreateEventInput, Event, ListActorsOutput, ListEventsInput,
    ListEventsOutput, ListSessionsInput, ListSessionsOutput, PageInput, PayloadItem,
    SessionEventFilter, SessionSummary,
};

/// Longest conversational text, in characters.
const MAX_TEXT_CHARS: usize = 100_000;
/// Most payload items per event.
const MAX_PAYLOAD_ITEMS: usize = 100;

/// An event as stored: the event and when it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredEvent {
    pub(crate) event: Event,
    pub(crate) expires_at: Timestamp,
}

/// A named branch of a session: the event it forks from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredBranch {
    root_event_id: String,
    /// Branch of the root event; `None` is the main branch.
    parent: Option<String>,
}

/// What a client token committed to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredToken {
    request: serde_json::Value,
    actor_id: String,
    session_id: String,
    event_id: String,
}

/// Where an event lives, from the event-id index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventLocation {
    actor_id: String,
    session_id: String,
}

/// A long-term extraction job, queued in the same batch as its event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExtractionJob {
    pub(crate) memory_id: String,
    pub(crate) actor_id: String,
    pub(crate) session_id: String,
    pub(crate) event_id: String,
    #[serde(default)]
    pub(crate) attempts: u32,
}

fn validate_payload(payload: &[PayloadItem], max_bytes: usize) -> Result<(), MemoryError> {
    if payload.len() > MAX_PAYLOAD_ITEMS {
        return Err(MemoryError::field(
            "payload",
            format!("at most {MAX_PAYLOAD_ITEMS} items, got {}", payload.len()),
        ));
    }
    for (i, item) in payload.iter().enumerate() {
        if let PayloadItem::Conversational(c) = item {
            let crate::types::Content::Text(text) = &c.content;
            let chars = text.chars().count();
            if chars == 0 || chars > MAX_TEXT_CHARS {
                return Err(MemoryError::field(
                    format!("payload[{i}].conversational.content.text"),
                    format!("must be 1 to {MAX_TEXT_CHARS} characters, got {chars}"),
                ));
            }
        }
    }
    let size = serde_json::to_vec(payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > max_bytes {
        return Err(MemoryError::field(
            "payload",
            format!("payload of {size} bytes exceeds the {max_bytes}-byte limit"),
        ));
    }
    Ok(())
}

fn validate_metadata(
    metadata: &BTreeMap<String, crate::types::MetadataValue>,
) -> Result<(), MemoryError> {
    if metadata.len() > 15 {
        return Err(MemoryError::field("metadata", "at most 15 entries"));
    }
    for (k, crate::types::MetadataValue::StringValue(v)) in metadata {
        ids::metadata("metadata.key", k, 1, 128)?;
        ids::metadata(&format!("metadata.{k}"), v, 0, 256)?;
    }
    Ok(())
}

impl MemoryService {
    /// `CreateEvent`: appends an event; durable when this returns.
    pub async fn create_event(
        &self,
        memory_id: &str,
        input: CreateEventInput,
    ) -> Result<Event, MemoryError> {
        let memory = self.memory(memory_id)?;
        ids::actor_id(&input.actor_id)?;
        if let Some(s) = &input.session_id {
            ids::session_id(s)?;
        }
        validate_payload(&input.payload, self.inner.config.max_event_bytes)?;
        validate_metadata(&input.metadata)?;
        if let Some(branch) = &input.branch {
            ids::branch_name(&branch.name)?;
            if let Some(root) = &branch.root_event_id {
                ids::parse_event_id("branch.rootEventId", root)?;
            }
        }
        if let Some(token) = &input.client_token
            && (token.is_empty() || token.len() > 256)
        {
            return Err(MemoryError::field(
                "clientToken",
                "must be 1 to 256 characters",
            ));
        }
        let extract = !memory.strategies.is_empty()
            && input
                .payload
                .iter()
                .any(|p| matches!(p, PayloadItem::Conversational(_)));
        let expiry_days = memory.event_expiry_duration;
        let memory_id = memory_id.to_string();
        let event = self
            .blocking(move |s| s.create_event_now(&memory_id, input, expiry_days, extract))
            .await?;
        if extract {
            self.inner.jobs.notify_one();
        }
        Ok(event)
    }

    fn create_event_now(
        &self,
        memory_id: &str,
        input: CreateEventInput,
        expiry_days: u32,
        extract: bool,
    ) -> Result<Event, MemoryError> {
        let storage = &self.inner.storage;
        let session_id = input
            .session_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let token_key = input
            .client_token
            .as_ref()
            .map(|t| keys::key(table::CLIENT_TOKEN, &[memory_id, t]));
        let request = serde_json::to_value(&input)
            .map_err(|e| MemoryError::Service(format!("encode request: {e}")))?;
        if let Some(key) = &token_key
            && let Some(bytes) = storage.get(key)?
        {
            let stored: StoredToken = decode(key, &bytes)?;
            if stored.request != request {
                return Err(MemoryError::invalid(
                    ValidationReason::IdempotentParameterMismatchException,
                    "clientToken was used with different parameters",
                ));
            }
            return self.get_event_now(
                memory_id,
                &stored.actor_id,
                &stored.session_id,
                &stored.event_id,
            );
        }
        let actor = input.actor_id.as_str();
        let mut batch = WriteBatch::default();
        let branch = match &input.branch {
            None => None,
            Some(b) => Some(self.resolve_branch(memory_id, actor, &session_id, b, &mut batch)?),
        };
        let now = Timestamp::now();
        let seq = storage.next_id()?;
        let ts = input.event_timestamp.millis();
        let event_id = ids::format_event_id(ts, seq);
        let event = Event {
            memory_id: memory_id.to_string(),
            actor_id: actor.to_string(),
            session_id: session_id.clone(),
            event_id: event_id.clone(),
            event_timestamp: input.event_timestamp,
            payload: input.payload,
            branch,
            metadata: input.metadata,
        };
        let expires_at = now.plus_days(expiry_days);
        let event_key = keys::event(memory_id, actor, &session_id, ts, seq);
        batch.put(
            event_key.clone(),
            encode(&StoredEvent {
                event: event.clone(),
                expires_at,
            })?,
        );
        batch.put(
            keys::key(table::EVENT_ID, &[memory_id, &event_id]),
            encode(&EventLocation {
                actor_id: actor.to_string(),
                session_id: session_id.clone(),
            })?,
        );
        batch.put(keys::expiry(expires_at.millis(), &event_key), Vec::new());
        batch.put(keys::key(table::ACTOR, &[memory_id, actor]), Vec::new());
        let session_key = keys::key(table::SESSION, &[memory_id, actor, &session_id]);
        if storage.get(&session_key)?.is_none() {
            batch.put(
                session_key,
                encode(&SessionSummary {
                    session_id: session_id.clone(),
                    actor_id: actor.to_string(),
                    created_at: now,
                })?,
            );
        }
        if let Some(key) = token_key {
            batch.put(
                key,
                encode(&StoredToken {
                    request,
                    actor_id: actor.to_string(),
                    session_id: session_id.clone(),
                    event_id: event_id.clone(),
                })?,
            );
        }
        if extract {
            batch.put(
                keys::job(storage.next_id()?),
                encode(&ExtractionJob {
                    memory_id: memory_id.to_string(),
                    actor_id: actor.to_string(),
                    session_id,
                    event_id,
                    attempts: 0,
                })?,
            );
        }
        storage.commit(batch)?;
        Ok(event)
    }

    /// Checks a branch reference and records a new branch in `batch`.
    fn resolve_branch(
        &self,
        memory_id: &str,
        actor: &str,
        session: &str,
        branch: &Branch,
        batch: &mut WriteBatch,
    ) -> Result<Branch, MemoryError> {
        let key = keys::key(table::BRANCH, &[memory_id, actor, session, &branch.name]);
        if let Some(bytes) = self.inner.storage.get(&key)? {
            let stored: StoredBranch = decode(&key, &bytes)?;
            if let Some(root) = &branch.root_event_id
                && *root != stored.root_event_id
            {
                return Err(conflict(format!(
                    "branch {} already forks from event {}",
                    branch.name, stored.root_event_id
                )));
            }
            return Ok(Branch {
                root_event_id: Some(stored.root_event_id),
                name: branch.name.clone(),
            });
        }
        let Some(root) = &branch.root_event_id else {
            return Err(MemoryError::field(
                "branch.rootEventId",
                format!(
                    "branch {} does not exist; give the event it forks from",
                    branch.name
                ),
            ));
        };
        let root_event = self.find_event(memory_id, actor, session, root)?;
        let parent = root_event.branch.map(|b| b.name);
        batch.put(
            key,
            encode(&StoredBranch {
                root_event_id: root.clone(),
                parent,
            })?,
        );
        Ok(Branch {
            root_event_id: Some(root.clone()),
            name: branch.name.clone(),
        })
    }

    /// An event of this session by id, telling "in another session" apart
    /// from "nowhere".
    fn find_event(
        &self,
        memory_id: &str,
        actor: &str,
        session: &str,
        event_id: &str,
    ) -> Result<Event, MemoryError> {
        match self.get_event_now(memory_id, actor, session, event_id) {
            Err(MemoryError::NotFound(message)) => {
                let index = keys::key(table::EVENT_ID, &[memory_id, event_id]);
                if self.inner.storage.get(&index)?.is_some() {
                    Err(MemoryError::invalid(
                        ValidationReason::EventInOtherSession,
                        format!("event {event_id} belongs to another session"),
                    ))
                } else {
                    Err(MemoryError::NotFound(message))
                }
            }
            other => other,
        }
    }

    /// `GetEvent`.
    pub async fn get_event(
        &self,
        memory_id: &str,
        actor_id: &str,
        session_id: &str,
        event_id: &str,
    ) -> Result<Event, MemoryError> {
        self.memory(memory_id)?;
        ids::actor_id(actor_id)?;
        ids::session_id(session_id)?;
        let (m, a, s, e) = owned(memory_id, actor_id, session_id, event_id);
        self.blocking(move |svc| svc.get_event_now(&m, &a, &s, &e))
            .await
    }

    fn get_event_now(
        &self,
        memory_id: &str,
        actor_id: &str,
        session_id: &str,
        event_id: &str,
    ) -> Result<Event, MemoryError> {
        let (ts, seq) = ids::parse_event_id("eventId", event_id)?;
        let key = keys::event(memory_id, actor_id, session_id, ts, seq);
        let not_found = || MemoryError::NotFound(format!("event {event_id} not found"));
        let bytes = self.inner.storage.get(&key)?.ok_or_else(not_found)?;
        let stored: StoredEvent = decode(&key, &bytes)?;
        if stored.expires_at <= Timestamp::now() {
            return Err(not_found());
        }
        Ok(stored.event)
    }

    /// `DeleteEvent`; returns the deleted event's id.
    pub async fn delete_event(
        &self,
        memory_id: &str,
        actor_id: &str,
        session_id: &str,
        event_id: &str,
    ) -> Result<String, MemoryError> {
        self.memory(memory_id)?;
        ids::actor_id(actor_id)?;
        ids::session_id(session_id)?;
        let (m, a, s, e) = owned(memory_id, actor_id, session_id, event_id);
        self.blocking(move |svc| {
            let (ts, seq) = ids::parse_event_id("eventId", &e)?;
            let key = keys::event(&m, &a, &s, ts, seq);
            let bytes = svc
                .inner
                .storage
                .get(&key)?
                .ok_or_else(|| MemoryError::NotFound(format!("event {e} not found")))?;
            let stored: StoredEvent = decode(&key, &bytes)?;
            let mut batch = WriteBatch::default();
            batch.delete(keys::expiry(stored.expires_at.millis(), &key));
            batch.delete(keys::key(table::EVENT_ID, &[&m, &e]));
            batch.delete(key);
            svc.inner.storage.commit(batch)?;
            Ok(e)
        })
        .await
    }

    /// `ListEvents`: the session's events, newest first, as AgentCore lists
    /// them (the AWS SDK's `get_last_k_turns` reads the first page as the
    /// latest turns).
    pub async fn list_events(
        &self,
        memory_id: &str,
        actor_id: &str,
        session_id: &str,
        input: ListEventsInput,
    ) -> Result<ListEventsOutput, MemoryError> {
        self.memory(memory_id)?;
        ids::actor_id(actor_id)?;
        ids::session_id(session_id)?;
        let size = pagination::page_size(input.max_results, DEFAULT_PAGE, MAX_PAGE)?;
        let filter = input.filter.unwrap_or_default();
        if let Some(conditions) = &filter.event_metadata {
            filters::validate_event_filters(conditions)?;
        }
        if let Some(b) = &filter.branch {
            ids::branch_name(&b.name)?;
        }
        let after = input
            .next_token
            .as_deref()
            .map(|t| pagination::decode("events", t))
            .transpose()?;
        let include_payloads = input.include_payloads.unwrap_or(true);
        let (m, a, s) = (
            memory_id.to_string(),
            actor_id.to_string(),
            session_id.to_string(),
        );
        self.blocking(move |svc| {
            let branches = match &filter.branch {
                Some(b) => Some(svc.branch_scope(&m, &a, &s, b)?),
                None => None,
            };
            let prefix = keys::prefix(table::EVENT, &[&m, &a, &s]);
            let start = match &after {
                Some(k) if k.starts_with(&prefix) => ScanStart::After(k),
                Some(_) => {
                    return Err(MemoryError::field(
                        "nextToken",
                        "token is for another session",
                    ));
                }
                None => ScanStart::Beginning,
            };
            let now = Timestamp::now();
            let mut events = Vec::new();
            let mut last_key = None;
            let mut more = false;
            svc.scan_decoded(&prefix, start, true, |k, stored: StoredEvent| {
                if stored.expires_at <= now {
                    return ControlFlow::Continue(());
                }
                let mut event = stored.event;
                let on_branch = branches
                    .as_ref()
                    .is_none_or(|scope| scope.contains(&event, k));
                let matches = filter
                    .event_metadata
                    .as_ref()
                    .is_none_or(|f| filters::event_matches(&event.metadata, f));
                if !(on_branch && matches) {
                    return ControlFlow::Continue(());
                }
                if events.len() == size {
                    more = true;
                    return ControlFlow::Break(());
                }
                if !include_payloads {
                    event.payload.clear();
                }
                events.push(event);
                last_key = Some(k.to_vec());
                ControlFlow::Continue(())
            })?;
            let next_token = if more {
                last_key.map(|k| pagination::encode("events", &k))
            } else {
                None
            };
            Ok(ListEventsOutput { events, next_token })
        })
        .await
    }

    /// The session's `n` most recent unexpired events, oldest first (the
    /// context an agent loads at the start of an invocation).
    pub async fn recent_events(
        &self,
        memory_id: &str,
        actor_id: &str,
        session_id: &str,
        n: usize,
    ) -> Result<Vec<Event>, MemoryError> {
        self.memory(memory_id)?;
        ids::actor_id(actor_id)?;
        ids::session_id(session_id)?;
        let n = n.clamp(1, MAX_PAGE as usize);
        let (m, a, s) = (
            memory_id.to_string(),
            actor_id.to_string(),
            session_id.to_string(),
        );
        self.blocking(move |svc| {
            let prefix = keys::prefix(table::EVENT, &[&m, &a, &s]);
            svc.last_events(&prefix, ScanStart::Beginning, n)
        })
        .await
    }

    /// Up to `n` (at least one) unexpired events under a session prefix,
    /// scanning backwards from `start`; returned oldest first.
    pub(crate) fn last_events(
        &self,
        prefix: &[u8],
        start: ScanStart<'_>,
        n: usize,
    ) -> Result<Vec<Event>, MemoryError> {
        let now = Timestamp::now();
        let mut events = Vec::new();
        self.scan_decoded(prefix, start, true, |_, stored: StoredEvent| {
            if stored.expires_at > now {
                events.push(stored.event);
            }
            if events.len() >= n.max(1) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        events.reverse();
        Ok(events)
    }

    /// The branches (and cut-off events) a branch filter covers.
    fn branch_scope(
        &self,
        memory_id: &str,
        actor: &str,
        session: &str,
        filter: &BranchFilter,
    ) -> Result<BranchScope, MemoryError> {
        let mut scope = BranchScope::default();
        if filter.name == MAIN_BRANCH {
            scope.parts.push((None, None));
            return Ok(scope);
        }
        let mut name = Some(filter.name.clone());
        let mut limit: Option<Vec<u8>> = None;
        // Each hop moves to the parent branch up to the fork event; a
        // depth bound guards against a corrupt cycle.
        for _ in 0..1024 {
            scope.parts.push((name.clone(), limit.clone()));
            let Some(current) = name.clone() else { break };
            if !filter.include_parent_branches {
                break;
            }
            let key = keys::key(table::BRANCH, &[memory_id, actor, session, &current]);
            let Some(bytes) = self.inner.storage.get(&key)? else {
                break;
            };
            let stored: StoredBranch = decode(&key, &bytes)?;
            let (ts, seq) = ids::parse_event_id("branch.rootEventId", &stored.root_event_id)?;
            limit = Some(keys::event(memory_id, actor, session, ts, seq));
            name = stored.parent;
        }
        Ok(scope)
    }

    /// `ListSessions` of one actor, by session id.
    pub async fn list_sessions(
        &self,
        memory_id: &str,
        actor_id: &str,
        input: ListSessionsInput,
    ) -> Result<ListSessionsOutput, MemoryError> {
        self.memory(memory_id)?;
        ids::actor_id(actor_id)?;
        let size = pagination::page_size(input.max_results, DEFAULT_PAGE, MAX_PAGE)?;
        let has_events = input
            .filter
            .and_then(|f| f.event_filter)
            .is_some_and(|f| f == SessionEventFilter::HasEvents);
        let after = input
            .next_token
            .as_deref()
            .map(|t| pagination::decode("sessions", t))
            .transpose()?;
        let (m, a) = (memory_id.to_string(), actor_id.to_string());
        self.blocking(move |svc| {
            let prefix = keys::prefix(table::SESSION, &[&m, &a]);
            let (summaries, next) =
                svc.page::<SessionSummary>(&prefix, after.as_deref(), size, |s| {
                    if !has_events {
                        return Ok(true);
                    }
                    svc.session_has_events(&m, &a, &s.session_id)
                })?;
            Ok(ListSessionsOutput {
                session_summaries: summaries,
                next_token: next.map(|k| pagination::encode("sessions", &k)),
            })
        })
        .await
    }

    fn session_has_events(
        &self,
        memory_id: &str,
        actor: &str,
        session: &str,
    ) -> Result<bool, MemoryError> {
        let now = Timestamp::now();
        let mut found = false;
        self.scan_values(
            &keys::prefix(table::EVENT, &[memory_id, actor, session]),
            |_, e: StoredEvent| {
                found = e.expires_at > now;
                if found {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        Ok(found)
    }

    /// `ListActors`, by actor id.
    pub async fn list_actors(
        &self,
        memory_id: &str,
        input: PageInput,
    ) -> Result<ListActorsOutput, MemoryError> {
        self.memory(memory_id)?;
        let size = pagination::page_size(input.max_results, DEFAULT_PAGE, MAX_PAGE)?;
        let after = input
            .next_token
            .as_deref()
            .map(|t| pagination::decode("actors", t))
            .transpose()?;
        let m = memory_id.to_string();
        self.blocking(move |svc| {
            let prefix = keys::prefix(table::ACTOR, &[&m]);
            let mut actors = Vec::new();
            let mut next = None;
            let start = after
                .as_deref()
                .map_or(ScanStart::Beginning, ScanStart::After);
            svc.inner.storage.scan(&prefix, start, false, &mut |k, _| {
                if actors.len() == size {
                    next = Some(pagination::encode("actors", &keys_last(&actors, &prefix)));
                    return ControlFlow::Break(());
                }
                actors.push(ActorSummary {
                    actor_id: keys::last_component(k),
                });
                ControlFlow::Continue(())
            })?;
            Ok(ListActorsOutput {
                actor_summaries: actors,
                next_token: next,
            })
        })
        .await
    }

    /// Deletes events whose expiry is at or before `now`; returns how many.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<usize, MemoryError> {
        self.blocking(move |svc| {
            let mut purged = 0;
            loop {
                let mut batch = WriteBatch::default();
                let mut count = 0;
                svc.inner.storage.scan(
                    &[table::EXPIRY],
                    ScanStart::Beginning,
                    false,
                    &mut |k, _| {
                        let Some(at) = k.get(1..9).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
                            batch.delete(k.to_vec());
                            return ControlFlow::Continue(());
                        };
                        if u64::from_be_bytes(at) > now.millis() || count == 1000 {
                            return ControlFlow::Break(());
                        }
                        let event_key = k[9..].to_vec();
                        batch.delete(k.to_vec());
                        batch.delete(event_key);
                        count += 1;
                        ControlFlow::Continue(())
                    },
                )?;
                if batch.is_empty() {
                    break;
                }
                // Event-id index entries of purged events are found through
                // the event keys' sequence numbers on GetEvent; drop them too.
                let index_keys: Vec<Vec<u8>> = batch
                    .writes
                    .iter()
                    .filter_map(|w| match w {
                        crate::store::Write::Delete(k) if k.first() == Some(&table::EVENT) => {
                            event_id_key(k)
                        }
                        _ => None,
                    })
                    .collect();
                for k in index_keys {
                    batch.delete(k);
                }
                svc.inner.storage.commit(batch)?;
                purged += count;
                if count < 1000 {
                    break;
                }
            }
            Ok(purged)
        })
        .await
    }
}

/// The branch that holds events without a branch.
pub const MAIN_BRANCH: &str = "main";

/// Branches a filter covers: (branch name or main, last event key included).
#[derive(Default)]
struct BranchScope {
    parts: Vec<(Option<String>, Option<Vec<u8>>)>,
}

impl BranchScope {
    fn contains(&self, event: &Event, key: &[u8]) -> bool {
        let name = event.branch.as_ref().map(|b| &b.name);
        self.parts.iter().any(|(branch, limit)| {
            name == branch.as_ref() && limit.as_ref().is_none_or(|l| key <= l.as_slice())
        })
    }
}

/// Event-id index key for an event key (memory, actor, session, ts, seq).
fn event_id_key(event_key: &[u8]) -> Option<Vec<u8>> {
    // Layout: 'E' 0 memory 0 actor 0 session 0 ts(8) seq(8).
    let body = event_key.get(2..)?;
    let memory_end = body.iter().position(|b| *b == 0)?;
    let memory = std::str::from_utf8(&body[..memory_end]).ok()?;
    let tail = event_key.get(event_key.len().checked_sub(16)?..)?;
    let ts = u64::from_be_bytes(tail[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(tail[8..].try_into().ok()?);
    Some(keys::key(
        table::EVENT_ID,
        &[memory, &ids::format_event_id(ts, seq)],
    ))
}

fn keys_last(actors: &[ActorSummary], prefix: &[u8]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    if let Some(last) = actors.last() {
        key.extend_from_slice(last.actor_id.as_bytes());
    }
    key
}

fn owned(a: &str, b: &str, c: &str, d: &str) -> (String, String, String, String) {
    (a.to_string(), b.to_string(), c.to_string(), d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_index_key_is_recovered_from_an_event_key() {
        let k = keys::event("mem-1234567890", "alice", "s1", 1_700, 0x2a);
        assert_eq!(
            event_id_key(&k),
            Some(keys::key(
                table::EVENT_ID,
                &["mem-1234567890", &ids::format_event_id(1_700, 0x2a)]
            ))
        );
    }
}
