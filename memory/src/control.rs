//! Memory resources as `bedrock-agentcore-control` shapes them
//! (`CreateMemory`, `GetMemory`, `ListMemories`, `DeleteMemory`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::timestamp::Timestamp;

/// Kinds of long-term strategy (`MemoryStrategyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StrategyType {
    /// Facts and knowledge.
    Semantic,
    /// Running summaries of sessions.
    Summarization,
    /// User preferences.
    UserPreference,
    /// One of the above with the caller's own prompt.
    Custom,
}

/// Fields every strategy input shares.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyInputFields {
    /// Strategy name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Namespace templates (older name of `namespaceTemplates`).
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Namespace templates.
    #[serde(default)]
    pub namespace_templates: Option<Vec<String>>,
    /// Custom configuration (custom strategies only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
}

/// One strategy in `CreateMemory` (`MemoryStrategyInput`, a union).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StrategyInput {
    /// Semantic facts.
    SemanticMemoryStrategy(StrategyInputFields),
    /// Session summaries.
    SummaryMemoryStrategy(StrategyInputFields),
    /// User preferences.
    UserPreferenceMemoryStrategy(StrategyInputFields),
    /// Custom prompt over a built-in strategy.
    CustomMemoryStrategy(StrategyInputFields),
    /// Episodic memory (accepted by the shape, refused by Corral).
    EpisodicMemoryStrategy(StrategyInputFields),
}

/// `CreateMemory` input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateMemoryInput {
    /// Idempotency token.
    #[serde(default)]
    pub client_token: Option<String>,
    /// `[a-zA-Z][a-zA-Z0-9_]{0,47}`.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Days events are kept, 3–365.
    pub event_expiry_duration: u32,
    /// Long-term strategies.
    #[serde(default)]
    pub memory_strategies: Vec<StrategyInput>,
    /// Accepted and ignored (no KMS here).
    #[serde(default)]
    pub encryption_key_arn: Option<String>,
    /// Accepted and ignored (no IAM here).
    #[serde(default)]
    pub memory_execution_role_arn: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

/// A configured strategy (`MemoryStrategy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStrategy {
    /// `<name>-<10 chars>`.
    pub strategy_id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Kind.
    #[serde(rename = "type")]
    pub strategy_type: StrategyType,
    /// The built-in behaviour a custom strategy overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<StrategyType>,
    /// Namespace templates.
    pub namespaces: Vec<String>,
    /// Namespace templates (same as `namespaces`).
    pub namespace_templates: Vec<String>,
    /// Extra extraction instructions (custom strategies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_to_prompt: Option<String>,
    /// Model for extraction (custom strategies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Always `ACTIVE`.
    pub status: String,
}

impl MemoryStrategy {
    /// The behaviour extraction follows (custom strategies resolve to their base).
    pub fn behaviour(&self) -> StrategyType {
        match self.strategy_type {
            StrategyType::Custom => self.base_type.unwrap_or(StrategyType::Semantic),
            other => other,
        }
    }
}

/// A memory resource (`Memory`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// ARN-shaped id.
    pub arn: String,
    /// `<name>-<10 chars>`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Days events are kept.
    pub event_expiry_duration: u32,
    /// `ACTIVE`.
    pub status: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Strategies.
    #[serde(default)]
    pub strategies: Vec<MemoryStrategy>,
    /// Client token it was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `ListMemories` entry (`MemorySummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemorySummary {
    /// ARN.
    pub arn: String,
    /// Id.
    pub id: String,
    /// Status.
    pub status: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// `ListMemories` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMemoriesOutput {
    /// Memories in id order.
    pub memories: Vec<MemorySummary>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Default namespace template of each strategy kind (AgentCore's defaults).
pub fn default_namespace(kind: StrategyType) -> &'static str {
    match kind {
        StrategyType::Summarization => {
            "/strategies/{memoryStrategyId}/actors/{actorId}/sessions/{sessionId}"
        }
        _ => "/strategies/{memoryStrategyId}/actors/{actorId}",
    }
}

/// `UpdateMemory` input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMemoryInput {
    /// Idempotency token (accepted; an update is applied once per call).
    #[serde(default)]
    pub client_token: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New event retention in days, 3–365.
    #[serde(default)]
    pub event_expiry_duration: Option<u32>,
    /// Accepted and ignored (no IAM here).
    #[serde(default)]
    pub memory_execution_role_arn: Option<String>,
    /// Strategies to add, modify and delete.
    #[serde(default)]
    pub memory_strategies: Option<ModifyMemoryStrategies>,
}

/// `ModifyMemoryStrategies`: applied in the order delete, modify, add.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyMemoryStrategies {
    /// New strategies.
    #[serde(default)]
    pub add_memory_strategies: Vec<StrategyInput>,
    /// Changes to existing strategies.
    #[serde(default)]
    pub modify_memory_strategies: Vec<ModifyMemoryStrategyInput>,
    /// Strategies to remove (their records stay readable).
    #[serde(default)]
    pub delete_memory_strategies: Vec<DeleteMemoryStrategyInput>,
}

/// `ModifyMemoryStrategyInput`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyMemoryStrategyInput {
    /// The strategy changed.
    pub memory_strategy_id: String,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New namespace templates (older name of `namespaceTemplates`).
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// New namespace templates.
    #[serde(default)]
    pub namespace_templates: Option<Vec<String>>,
    /// New custom configuration (custom strategies only).
    #[serde(default)]
    pub configuration: Option<Value>,
}

/// `DeleteMemoryStrategyInput`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteMemoryStrategyInput {
    /// The strategy removed.
    pub memory_strategy_id: String,
}
