//! Request and response shapes of AgentCore Memory's data plane
//! (botocore `bedrock-agentcore`), with the same field names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::timestamp::Timestamp;

/// Author of a conversational payload item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// The end user.
    User,
    /// The agent.
    Assistant,
    /// A tool result.
    Tool,
    /// Anything else.
    Other,
}

/// Text content of a conversational item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Content {
    /// Plain text.
    Text(String),
}

/// One conversational turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversational {
    /// The turn's text.
    pub content: Content,
    /// Who said it.
    pub role: Role,
}

/// One item of an event's payload (`PayloadType`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PayloadItem {
    /// A conversational turn.
    Conversational(Conversational),
    /// Arbitrary JSON.
    Blob(Value),
}

/// A branch an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Branch {
    /// Event the branch forks from (absent on the branch's later events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_event_id: Option<String>,
    /// Branch name.
    pub name: String,
}

/// An event metadata value (`MetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetadataValue {
    /// A string.
    StringValue(String),
}

/// A stored short-term memory event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Memory the event belongs to.
    pub memory_id: String,
    /// Actor.
    pub actor_id: String,
    /// Session.
    pub session_id: String,
    /// `<digits>#<hex>`.
    pub event_id: String,
    /// When the event happened, as the caller said.
    pub event_timestamp: Timestamp,
    /// The payload (empty when listed without payloads).
    pub payload: Vec<PayloadItem>,
    /// Branch, when not on the main branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Branch>,
    /// Caller metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, MetadataValue>,
}

/// `CreateEvent` input (body plus the `memoryId` path parameter).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEventInput {
    /// Actor.
    pub actor_id: String,
    /// Session; AgentCore requires one for conversational memory.
    #[serde(default)]
    pub session_id: Option<String>,
    /// When the event happened.
    pub event_timestamp: Timestamp,
    /// 0–100 payload items.
    pub payload: Vec<PayloadItem>,
    /// Branch to write to.
    #[serde(default)]
    pub branch: Option<Branch>,
    /// Idempotency token.
    #[serde(default)]
    pub client_token: Option<String>,
    /// Caller metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, MetadataValue>,
}

/// Branch filter of `ListEvents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchFilter {
    /// Branch name (`main` is the trunk).
    pub name: String,
    /// Also return the parent branches' events up to the fork points.
    #[serde(default)]
    pub include_parent_branches: bool,
}

/// Left side of a metadata filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeftExpression {
    /// A metadata key.
    MetadataKey(String),
}

/// Operators of event metadata filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventFilterOperator {
    /// Key present with this value.
    EqualsTo,
    /// Key present.
    Exists,
    /// Key absent.
    NotExists,
}

/// Right side of an event metadata filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RightExpression {
    /// The value to compare with.
    MetadataValue(MetadataValue),
}

/// One event metadata filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventMetadataFilter {
    /// Key.
    pub left: LeftExpression,
    /// Operator.
    pub operator: EventFilterOperator,
    /// Value for `EQUALS_TO`.
    #[serde(default)]
    pub right: Option<RightExpression>,
}

/// `ListEvents` filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventFilter {
    /// Branch selection.
    #[serde(default)]
    pub branch: Option<BranchFilter>,
    /// 1–5 metadata conditions, all of which must hold.
    #[serde(default)]
    pub event_metadata: Option<Vec<EventMetadataFilter>>,
}

/// `ListEvents` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListEventsInput {
    /// Include payloads (default true).
    #[serde(default)]
    pub include_payloads: Option<bool>,
    /// Filter.
    #[serde(default)]
    pub filter: Option<EventFilter>,
    /// Page size, 1–100, default 20.
    #[serde(default)]
    pub max_results: Option<u32>,
    /// Continuation token.
    #[serde(default)]
    pub next_token: Option<String>,
}

/// `ListEvents` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEventsOutput {
    /// Events, oldest first.
    pub events: Vec<Event>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ListSessions`/`ListActors`/`ListMemoryRecords`-style page request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInput {
    /// Page size, 1–100, default 20.
    #[serde(default)]
    pub max_results: Option<u32>,
    /// Continuation token.
    #[serde(default)]
    pub next_token: Option<String>,
}

/// One session of an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// Session id.
    pub session_id: String,
    /// Actor id.
    pub actor_id: String,
    /// First event's arrival.
    pub created_at: Timestamp,
}

/// `ListSessions` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSessionsOutput {
    /// Sessions in id order.
    pub session_summaries: Vec<SessionSummary>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorSummary {
    /// Actor id.
    pub actor_id: String,
}

/// `ListActors` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListActorsOutput {
    /// Actors in id order.
    pub actor_summaries: Vec<ActorSummary>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Text of a long-term record (`MemoryContent`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MemoryContent {
    /// Plain text, 1–16,000 characters.
    Text(String),
}

impl MemoryContent {
    /// The text.
    pub fn text(&self) -> &str {
        match self {
            MemoryContent::Text(t) => t,
        }
    }
}

/// A long-term record metadata value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordMetadataValue {
    /// A string.
    StringValue(String),
    /// Up to five strings.
    StringListValue(Vec<String>),
    /// A number.
    NumberValue(f64),
    /// A time.
    DateTimeValue(Timestamp),
}

/// A long-term memory record (`MemoryRecord` / `MemoryRecordSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRecord {
    /// `mem-…`.
    pub memory_record_id: String,
    /// The remembered text.
    pub content: MemoryContent,
    /// Strategy that wrote it.
    pub memory_strategy_id: String,
    /// Its namespace (AgentCore allows one).
    pub namespaces: Vec<String>,
    /// When it was first written.
    pub created_at: Timestamp,
    /// Relevance, on retrieval only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, RecordMetadataValue>,
}

/// Operators of record metadata filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordFilterOperator {
    /// Equal.
    EqualsTo,
    /// Present.
    Exists,
    /// Absent.
    NotExists,
    /// Date before.
    Before,
    /// Date after.
    After,
    /// String contains / list contains.
    Contains,
    /// Number greater.
    GreaterThan,
    /// Number greater or equal.
    GreaterThanOrEquals,
    /// Number less.
    LessThan,
    /// Number less or equal.
    LessThanOrEquals,
}

/// Right side of a record metadata filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordRightExpression {
    /// The value to compare with.
    MetadataValue(RecordMetadataValue),
}

/// One record metadata filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordMetadataFilter {
    /// Key.
    pub left: LeftExpression,
    /// Operator.
    pub operator: RecordFilterOperator,
    /// Value.
    #[serde(default)]
    pub right: Option<RecordRightExpression>,
}

/// `RetrieveMemoryRecords` search criteria.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchCriteria {
    /// Natural-language query.
    pub search_query: String,
    /// Only records of this strategy.
    #[serde(default)]
    pub memory_strategy_id: Option<String>,
    /// Most records to consider, 1–100 (default 10).
    #[serde(default)]
    pub top_k: Option<u32>,
    /// Metadata conditions.
    #[serde(default)]
    pub metadata_filters: Option<Vec<RecordMetadataFilter>>,
}

/// `RetrieveMemoryRecords` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrieveMemoryRecordsInput {
    /// Namespace prefix.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Namespace path: records in it or below it.
    #[serde(default)]
    pub namespace_path: Option<String>,
    /// What to look for.
    pub search_criteria: SearchCriteria,
    /// Continuation token.
    #[serde(default)]
    pub next_token: Option<String>,
    /// Page size.
    #[serde(default)]
    pub max_results: Option<u32>,
}

/// `ListMemoryRecords` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListMemoryRecordsInput {
    /// Namespace prefix.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Namespace path: records in it or below it.
    #[serde(default)]
    pub namespace_path: Option<String>,
    /// Only records of this strategy.
    #[serde(default)]
    pub memory_strategy_id: Option<String>,
    /// Page size, 1–100, default 20.
    #[serde(default)]
    pub max_results: Option<u32>,
    /// Continuation token.
    #[serde(default)]
    pub next_token: Option<String>,
    /// Metadata conditions.
    #[serde(default)]
    pub metadata_filters: Option<Vec<RecordMetadataFilter>>,
}

/// A page of records (`RetrieveMemoryRecords`/`ListMemoryRecords` output).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRecordsOutput {
    /// Records.
    pub memory_record_summaries: Vec<MemoryRecord>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One record of `BatchCreateMemoryRecords`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryRecordCreateInput {
    /// Caller's id for matching results.
    pub request_identifier: String,
    /// One namespace.
    pub namespaces: Vec<String>,
    /// Text.
    pub content: MemoryContent,
    /// Time of the fact.
    pub timestamp: Timestamp,
    /// Strategy to file it under.
    #[serde(default)]
    pub memory_strategy_id: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, RecordMetadataValue>,
}

/// One record of `BatchUpdateMemoryRecords`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryRecordUpdateInput {
    /// Record to change.
    pub memory_record_id: String,
    /// Time of the change.
    pub timestamp: Timestamp,
    /// New text.
    #[serde(default)]
    pub content: Option<MemoryContent>,
    /// New namespace.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// New strategy.
    #[serde(default)]
    pub memory_strategy_id: Option<String>,
    /// New metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, RecordMetadataValue>>,
}

/// One record of `BatchDeleteMemoryRecords`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryRecordDeleteInput {
    /// Record to delete.
    pub memory_record_id: String,
}

/// Outcome of one record in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordStatus {
    /// Done.
    Succeeded,
    /// Not done; see the error.
    Failed,
}

/// Result of one record in a batch (`MemoryRecordOutput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRecordOutput {
    /// Record id (empty when creation failed before one was assigned).
    pub memory_record_id: String,
    /// Outcome.
    pub status: RecordStatus,
    /// The caller's request identifier (creates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_identifier: Option<String>,
    /// HTTP-style error code on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    /// Error message on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Output of the batch record operations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecordsOutput {
    /// Records that succeeded.
    pub successful_records: Vec<MemoryRecordOutput>,
    /// Records that failed.
    pub failed_records: Vec<MemoryRecordOutput>,
}

/// Which sessions `ListSessions` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionEventFilter {
    /// Only sessions that still hold unexpired events.
    HasEvents,
}

/// `ListSessions` filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionFilter {
    /// Event condition.
    #[serde(default)]
    pub event_filter: Option<SessionEventFilter>,
}

/// `ListSessions` input (body part).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListSessionsInput {
    /// Page size, 1–100.
    #[serde(default)]
    pub max_results: Option<u32>,
    /// Continuation token.
    #[serde(default)]
    pub next_token: Option<String>,
    /// Session filter.
    #[serde(default)]
    pub filter: Option<SessionFilter>,
}
