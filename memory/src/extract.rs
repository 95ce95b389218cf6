//! Long-term extraction: a durable job queue drained by a background worker
//! that asks the model for facts, preferences or summaries and consolidates
//! them into records.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use corral_model::{ConverseRequest, InferenceConfig, Message, ModelError, ModelProvider};
use serde::Deserialize;

use crate::control::{Memory, MemoryStrategy, StrategyType};
use crate::error::MemoryError;
use crate::events::ExtractionJob;
use crate::keys::{self, table};
use crate::records::{StoredRecord, extraction_metadata, record_time};
use crate::service::{MemoryService, encode};
use crate::store::{ScanStart, WriteBatch};
use crate::timestamp::Timestamp;
use crate::types::{Content, Event, MemoryContent, MemoryRecord, PayloadItem};

/// Similarity above which a new fact restates an existing record.
const RESTATEMENT_SIMILARITY: f32 = 0.9;
/// Attempts before a job whose model keeps failing is dropped.
const MAX_ATTEMPTS: u32 = 5;
/// How often expired events are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// How long a worker holds a claimed job; a replica that dies mid-job
/// leaves it to the others once this runs out.
pub const JOB_LEASE: Duration = Duration::from_secs(300);

/// What a drain of the queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExtractionReport {
    /// Jobs completed (or dropped as obsolete).
    pub jobs_done: usize,
    /// Jobs left for a retry after a transient model failure.
    pub jobs_retrying: usize,
    /// Records created.
    pub records_created: usize,
    /// Records updated by consolidation.
    pub records_updated: usize,
}

#[derive(Debug, Deserialize)]
struct ExtractedFact {
    #[serde(default)]
    topic: Option<String>,
    content: String,
}

#[derive(Debug, Deserialize)]
struct ExtractedFacts {
    #[serde(default)]
    memories: Vec<ExtractedFact>,
    #[serde(default)]
    summary: Option<String>,
}

/// The system prompt for one strategy.
pub fn extraction_prompt(strategy: &MemoryStrategy) -> String {
    let task = match strategy.behaviour() {
        StrategyType::Semantic | StrategyType::Custom => {
            "Task: semantic fact extraction. Extract durable facts about the user and their \
             world from the NEW MESSAGES (use earlier messages only as context)."
        }
        StrategyType::UserPreference => {
            "Task: user preference extraction. Extract the user's stated or clearly implied \
             preferences, likes and dislikes from the NEW MESSAGES."
        }
        StrategyType::Summarization => {
            "Task: session summarization. Write a concise running summary of the whole \
             conversation so far."
        }
    };
    let format = if strategy.behaviour() == StrategyType::Summarization {
        r#"Answer with JSON only: {"summary": "<summary>"}"#
    } else {
        r#"Answer with JSON only: {"memories": [{"topic": "<short stable key, e.g. name, home_city, favourite_food>", "content": "<one self-contained sentence>"}]}. Use the same topic for a fact that updates or contradicts an earlier one. Answer {"memories": []} when there is nothing worth remembering."#
    };
    let mut prompt = format!("You maintain an agent's long-term memory.\n{task}\n{format}");
    if let Some(extra) = &strategy.append_to_prompt {
        prompt.push('\n');
        prompt.push_str(extra);
    }
    prompt
}

fn transcript(events: &[Event], new_event: &str) -> String {
    let mut earlier = String::new();
    let mut new = String::new();
    for event in events {
        let target = if event.event_id == new_event {
            &mut new
        } else {
            &mut earlier
        };
        for item in &event.payload {
            if let PayloadItem::Conversational(c) = item {
                let Content::Text(text) = &c.content;
                let role = serde_json::to_value(c.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                target.push_str(&format!("{role}: {text}\n"));
            }
        }
    }
    format!("EARLIER MESSAGES:\n{earlier}\nNEW MESSAGES:\n{new}")
}

/// Reads the model's answer: JSON if it parses, else one fact per line.
fn parse_answer(text: &str, summary: bool) -> ExtractedFacts {
    let json = text
        .find('{')
        .zip(text.rfind('}'))
        .and_then(|(a, b)| text.get(a..=b))
        .and_then(|j| serde_json::from_str::<ExtractedFacts>(j).ok());
    if let Some(facts) = json {
        return facts;
    }
    let trimmed = text.trim();
    if summary {
        return ExtractedFacts {
            memories: Vec::new(),
            summary: (!trimmed.is_empty()).then(|| trimmed.to_string()),
        };
    }
    ExtractedFacts {
        memories: trimmed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| ExtractedFact {
                topic: None,
                content: l.to_string(),
            })
            .collect(),
        summary: None,
    }
}

/// Keeps topic keys within the metadata alphabet.
fn clean_topic(topic: &str) -> Option<String> {
    let cleaned: String = topic
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:/=+@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

fn resolve_namespace(template: &str, strategy: &str, actor: &str, session: &str) -> String {
    template
        .replace("{memoryStrategyId}", strategy)
        .replace("{actorId}", actor)
        .replace("{sessionId}", session)
}

enum JobOutcome {
    Done { created: usize, updated: usize },
    Retry,
}

impl MemoryService {
    /// Processes every queued extraction job once.
    pub async fn run_extraction(
        &self,
        model: &dyn ModelProvider,
    ) -> Result<ExtractionReport, MemoryError> {
        let jobs = self
            .blocking(|svc| {
                let mut jobs = Vec::new();
                svc.scan_values::<ExtractionJob>(&[table::QUEUE], |k, job| {
                    jobs.push((k.to_vec(), job));
                    ControlFlow::Continue(())
                })?;
                Ok(jobs)
            })
            .await?;
        let mut report = ExtractionReport::default();
        for (key, job) in jobs {
            // Replicas sharing the store share the queue: run only the jobs
            // this worker claims.
            if !self.claim_job(&key).await? {
                continue;
            }
            match self.run_job(model, &job).await {
                Ok(JobOutcome::Done { created, updated }) => {
                    report.jobs_done += 1;
                    report.records_created += created;
                    report.records_updated += updated;
                    self.finish_job(key, None).await?;
                }
                Ok(JobOutcome::Retry) if job.attempts + 1 < MAX_ATTEMPTS => {
                    report.jobs_retrying += 1;
                    let retry = ExtractionJob {
                        attempts: job.attempts + 1,
                        ..job
                    };
                    self.finish_job(key, Some(retry)).await?;
                }
                Ok(JobOutcome::Retry) => {
                    tracing::warn!(memory = %job.memory_id, event = %job.event_id, "extraction dropped after {MAX_ATTEMPTS} attempts");
                    report.jobs_done += 1;
                    self.finish_job(key, None).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Claims the job under `key` for [`JOB_LEASE`]: when no worker holds
    /// it, or its holder's lease ran out (that replica died mid-job).
    /// Returns whether this worker now holds it.
    async fn claim_job(&self, key: &[u8]) -> Result<bool, MemoryError> {
        let claim_key = keys::job_claim(key);
        let key = key.to_vec();
        self.blocking(move |svc| {
            let storage = &svc.inner.storage;
            let now = Timestamp::now().millis();
            let lease = u64::try_from(JOB_LEASE.as_millis()).unwrap_or(u64::MAX);
            let mine =
                format!("{}:{}", svc.inner.worker_id, now.saturating_add(lease)).into_bytes();
            let current = storage.get(&claim_key)?;
            if let Some(held) = &current {
                let expires = std::str::from_utf8(held)
                    .ok()
                    .and_then(|s| s.rsplit_once(':'))
                    .and_then(|(_, t)| t.parse::<u64>().ok())
                    .unwrap_or(0);
                if expires > now {
                    return Ok(false);
                }
            }
            if !storage.compare_and_swap(&claim_key, current.as_deref(), Some(mine.clone()))? {
                return Ok(false);
            }
            // Another worker may have finished it since this one scanned.
            if storage.get(&key)?.is_none() {
                storage.compare_and_swap(&claim_key, Some(&mine), None)?;
                return Ok(false);
            }
            Ok(true)
        })
        .await
    }

    /// Removes a job and its claim, or rewrites it for a retry.
    async fn finish_job(
        &self,
        key: Vec<u8>,
        retry: Option<ExtractionJob>,
    ) -> Result<(), MemoryError> {
        self.blocking(move |svc| {
            let mut batch = WriteBatch::default();
            batch.delete(keys::job_claim(&key));
            batch.delete(key);
            if let Some(job) = retry {
                batch.put(keys::job(svc.inner.storage.next_id()?), encode(&job)?);
            }
            Ok(svc.inner.storage.commit(batch)?)
        })
        .await
    }

    async fn run_job(
        &self,
        model: &dyn ModelProvider,
        job: &ExtractionJob,
    ) -> Result<JobOutcome, MemoryError> {
        let Ok(memory) = self.memory(&job.memory_id) else {
            return Ok(JobOutcome::Done {
                created: 0,
                updated: 0,
            });
        };
        let context = self.config().extraction_context_events;
        let j = job.clone();
        let events = self
            .blocking(move |svc| svc.events_up_to(&j, context))
            .await?;
        if !events.iter().any(|e| e.event_id == job.event_id) {
            // Deleted or expired before extraction ran.
            return Ok(JobOutcome::Done {
                created: 0,
                updated: 0,
            });
        }
        let text = transcript(&events, &job.event_id);
        let (mut created, mut updated) = (0, 0);
        for strategy in &memory.strategies {
            let request = ConverseRequest {
                model_id: strategy.model_id.clone(),
                system: vec![extraction_prompt(strategy)],
                messages: vec![Message::user(text.clone())],
                tools: Vec::new(),
                inference: InferenceConfig {
                    temperature: Some(0.0),
                    ..Default::default()
                },
            };
            let answer = match model.converse(request).await {
                Ok(a) => a.output.text(),
                Err(
                    ModelError::Throttled(_) | ModelError::Unavailable(_) | ModelError::Timeout(_),
                ) => {
                    return Ok(JobOutcome::Retry);
                }
                Err(e) => {
                    tracing::warn!(strategy = %strategy.strategy_id, error = %e, "extraction model call failed");
                    continue;
                }
            };
            let (c, u) = self.consolidate(&memory, strategy, job, &answer).await?;
            created += c;
            updated += u;
        }
        Ok(JobOutcome::Done { created, updated })
    }

    /// The session's last `n` events up to and including the job's event.
    fn events_up_to(&self, job: &ExtractionJob, n: usize) -> Result<Vec<Event>, MemoryError> {
        let (ts, seq) = crate::ids::parse_event_id("eventId", &job.event_id)?;
        let last = keys::event(&job.memory_id, &job.actor_id, &job.session_id, ts, seq);
        let prefix = keys::prefix(
            table::EVENT,
            &[&job.memory_id, &job.actor_id, &job.session_id],
        );
        let mut start = last;
        start.push(0);
        self.last_events(&prefix, ScanStart::After(&start), n)
    }

    /// Merges a model answer into the strategy's namespace: same topic or a
    /// near-identical statement updates the existing record.
    async fn consolidate(
        &self,
        memory: &Memory,
        strategy: &MemoryStrategy,
        job: &ExtractionJob,
        answer: &str,
    ) -> Result<(usize, usize), MemoryError> {
        let summary = strategy.behaviour() == StrategyType::Summarization;
        let parsed = parse_answer(answer, summary);
        let facts: Vec<ExtractedFact> = if summary {
            parsed
                .summary
                .into_iter()
                .map(|s| ExtractedFact {
                    topic: Some("session_summary".into()),
                    content: s,
                })
                .collect()
        } else {
            parsed.memories
        };
        let facts: Vec<(Option<String>, String)> = facts
            .into_iter()
            .map(|f| {
                (
                    f.topic.as_deref().and_then(clean_topic),
                    f.content.trim().chars().take(16_000).collect::<String>(),
                )
            })
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if facts.is_empty() {
            return Ok((0, 0));
        }
        let template = strategy
            .namespace_templates
            .first()
            .map_or("/", String::as_str);
        let namespace = resolve_namespace(
            template,
            &strategy.strategy_id,
            &job.actor_id,
            &job.session_id,
        );
        let texts: Vec<String> = facts.iter().map(|(_, c)| c.clone()).collect();
        let vectors = self.inner.embedder.embed(&texts).await?;
        let memory_id = memory.id.clone();
        let strategy_id = strategy.strategy_id.clone();
        self.blocking(move |svc| {
            let mut existing = svc.records_in(&memory_id, &namespace, &strategy_id)?;
            let (mut created, mut updated) = (0, 0);
            for ((topic, content), vector) in facts.into_iter().zip(vectors) {
                let by_topic = topic
                    .as_ref()
                    .and_then(|t| existing.iter().position(|r| r.topic.as_ref() == Some(t)));
                let by_similarity = || {
                    svc.nearest(&memory_id, &namespace, &strategy_id, &vector)
                        .filter(|(_, score)| *score >= RESTATEMENT_SIMILARITY)
                        .and_then(|(id, _)| {
                            existing
                                .iter()
                                .position(|r| r.record.memory_record_id == id)
                        })
                };
                let stored = match by_topic.or_else(by_similarity) {
                    Some(i) => {
                        let mut r = existing[i].clone();
                        r.record.content = MemoryContent::Text(content);
                        r.record.created_at = record_time();
                        if topic.is_some() {
                            r.topic = topic;
                        }
                        r.record
                            .metadata
                            .extend(extraction_metadata(r.topic.as_deref()));
                        existing[i] = r.clone();
                        updated += 1;
                        r
                    }
                    None => {
                        let r = StoredRecord {
                            record: MemoryRecord {
                                memory_record_id: crate::ids::new_record_id(),
                                content: MemoryContent::Text(content),
                                memory_strategy_id: strategy_id.clone(),
                                namespaces: vec![namespace.clone()],
                                created_at: record_time(),
                                score: None,
                                metadata: extraction_metadata(topic.as_deref()),
                            },
                            topic,
                        };
                        existing.push(r.clone());
                        created += 1;
                        r
                    }
                };
                svc.put_records_now(&memory_id, vec![(stored, vector)])?;
            }
            Ok((created, updated))
        })
        .await
    }

    /// Runs extraction whenever events arrive (and purges expired events
    /// every minute) until the returned handle is aborted. Jobs left by a
    /// previous process are picked up at once.
    pub fn spawn_worker(&self, model: Arc<dyn ModelProvider>) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut purge = tokio::time::interval(PURGE_EVERY);
            let mut backoff = Duration::from_millis(200);
            loop {
                match service.run_extraction(model.as_ref()).await {
                    Ok(report) if report.jobs_retrying > 0 => {
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            () = service.inner.jobs.notified() => {}
                        }
                        continue;
                    }
                    Ok(_) => backoff = Duration::from_millis(200),
                    Err(e) => tracing::warn!(error = %e, "memory extraction failed"),
                }
                tokio::select! {
                    () = service.inner.jobs.notified() => {}
                    _ = purge.tick() => {
                        if let Err(e) = service.purge_expired(Timestamp::now()).await {
                            tracing::warn!(error = %e, "purging expired events failed");
                        }
                    }
                }
            }
        })
    }

    /// Jobs waiting for extraction.
    pub async fn pending_jobs(&self) -> Result<usize, MemoryError> {
        self.blocking(|svc| {
            let mut n = 0;
            svc.inner
                .storage
                .scan(&[table::QUEUE], ScanStart::Beginning, false, &mut |_, _| {
                    n += 1;
                    ControlFlow::Continue(())
                })?;
            Ok(n)
        })
        .await
    }
}

/// A deterministic offline extraction model: scripted rules that recognise
/// common personal facts and preferences, so memory works with no network.
pub fn offline_extraction_model() -> Result<corral_model::ScriptedModel, corral_model::ScriptError>
{
    corral_model::ScriptedModel::from_toml(include_str!("offline_extraction.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_as_json_or_lines() {
        let facts = parse_answer(
            "Sure: {\"memories\": [{\"topic\": \"home city\", \"content\": \"Lives in Lyon.\"}]}",
            false,
        );
        assert_eq!(facts.memories.len(), 1);
        assert_eq!(clean_topic("home city").as_deref(), Some("home_city"));
        let lines = parse_answer("Likes tea.\n\nHates rain.", false);
        assert_eq!(lines.memories.len(), 2);
        let summary = parse_answer("They talked about tea.", true);
        assert_eq!(summary.summary.as_deref(), Some("They talked about tea."));
    }
}
