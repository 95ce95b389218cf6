//! `UpdateMemory`: description, event retention, and adding, modifying and
//! deleting strategies of a memory resource.

use serde_json::Value;

use crate::control::{Memory, ModifyMemoryStrategyInput, StrategyType, UpdateMemoryInput};
use crate::error::MemoryError;
use crate::keys::{self, table};
use crate::service::{MemoryService, build_strategy, encode, validate_template};
use crate::timestamp::Timestamp;

/// How often an update is retried when another replica changed the
/// resource first.
const UPDATE_ATTEMPTS: usize = 8;

impl MemoryService {
    /// `UpdateMemory`: applies deletes, then modifications, then additions,
    /// all or nothing. Strategies added here extract from events created
    /// after the update; a deleted strategy's records stay readable.
    pub async fn update_memory(
        &self,
        id: &str,
        input: UpdateMemoryInput,
    ) -> Result<Memory, MemoryError> {
        // One update at a time in this process; against other replicas
        // sharing the store, each update swaps the stored resource it read.
        let _guard = self.inner.updates.lock().await;
        self.memory(id)?;
        let key = keys::key(table::MEMORY, &[id]);
        for _ in 0..UPDATE_ATTEMPTS {
            let read_key = key.clone();
            let stored = self
                .blocking(move |s| Ok(s.inner.storage.get(&read_key)?))
                .await?
                .ok_or_else(|| MemoryError::NotFound(format!("memory {id} not found")))?;
            let mut memory: Memory = crate::service::decode(&key, &stored)?;
            apply(&mut memory, id, &input)?;
            memory.updated_at = Timestamp::now();
            let value = encode(&memory)?;
            let swap_key = key.clone();
            let swapped = self
                .blocking(move |s| {
                    Ok(s.inner
                        .storage
                        .compare_and_swap(&swap_key, Some(&stored), Some(value))?)
                })
                .await?;
            if swapped {
                self.inner
                    .memories
                    .write()
                    .insert(memory.id.clone(), memory.clone());
                self.announce_memory(&memory.id);
                return Ok(memory);
            }
        }
        Err(MemoryError::Throttled(format!(
            "memory {id} kept changing while this update applied; retry"
        )))
    }
}

/// Applies `input` to `memory`: deletes, then modifications, then
/// additions, all or nothing.
fn apply(memory: &mut Memory, id: &str, input: &UpdateMemoryInput) -> Result<(), MemoryError> {
    if let Some(description) = &input.description {
        memory.description = Some(description.clone());
    }
    if let Some(days) = input.event_expiry_duration {
        if !(3..=365).contains(&days) {
            return Err(MemoryError::field(
                "eventExpiryDuration",
                format!("must be 3 to 365 days, got {days}"),
            ));
        }
        memory.event_expiry_duration = days;
    }
    if let Some(changes) = &input.memory_strategies {
        for (i, delete) in changes.delete_memory_strategies.iter().enumerate() {
            let before = memory.strategies.len();
            memory
                .strategies
                .retain(|s| s.strategy_id != delete.memory_strategy_id);
            if memory.strategies.len() == before {
                return Err(MemoryError::field(
                    format!("memoryStrategies.deleteMemoryStrategies[{i}]"),
                    format!("memory {id} has no strategy {}", delete.memory_strategy_id),
                ));
            }
        }
        for (i, modify) in changes.modify_memory_strategies.iter().enumerate() {
            modify_strategy(memory, i, modify)?;
        }
        for (i, add) in changes.add_memory_strategies.iter().enumerate() {
            memory.strategies.push(build_strategy(i, add)?);
        }
        let mut names: Vec<&str> = memory.strategies.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(MemoryError::field(
                "memoryStrategies",
                "strategy names must be unique",
            ));
        }
    }
    Ok(())
}

/// Applies one `ModifyMemoryStrategyInput`.
fn modify_strategy(
    memory: &mut Memory,
    index: usize,
    modify: &ModifyMemoryStrategyInput,
) -> Result<(), MemoryError> {
    let field = format!("memoryStrategies.modifyMemoryStrategies[{index}]");
    let Some(strategy) = memory
        .strategies
        .iter_mut()
        .find(|s| s.strategy_id == modify.memory_strategy_id)
    else {
        return Err(MemoryError::field(
            field,
            format!(
                "memory {} has no strategy {}",
                memory.id, modify.memory_strategy_id
            ),
        ));
    };
    if let Some(description) = &modify.description {
        strategy.description = Some(description.clone());
    }
    if let Some(templates) = modify
        .namespace_templates
        .as_ref()
        .or(modify.namespaces.as_ref())
    {
        let [template] = templates.as_slice() else {
            return Err(MemoryError::field(
                format!("{field}.namespaces"),
                "exactly one namespace template",
            ));
        };
        validate_template(&format!("{field}.namespaces"), template)?;
        strategy.namespaces = templates.clone();
        strategy.namespace_templates = templates.clone();
    }
    if let Some(configuration) = &modify.configuration {
        if strategy.strategy_type != StrategyType::Custom {
            return Err(MemoryError::field(
                format!("{field}.configuration"),
                "only custom strategies take a configuration",
            ));
        }
        // `ModifyStrategyConfiguration` nests the override under
        // `extraction`/`consolidation`; what it changes is the prompt
        // addition and the model.
        if let Some(prompt) = find_string(configuration, "appendToPrompt") {
            if prompt.is_empty() || prompt.chars().count() > 30_000 {
                return Err(MemoryError::field(
                    format!("{field}.configuration.appendToPrompt"),
                    "must be 1 to 30000 characters",
                ));
            }
            strategy.append_to_prompt = Some(prompt.to_string());
        }
        if let Some(model) = find_string(configuration, "modelId") {
            strategy.model_id = Some(model.to_string());
        }
    }
    Ok(())
}

/// The first string under key `name` anywhere in `value`.
fn find_string<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    match value {
        Value::Object(map) => map
            .get(name)
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(|v| find_string(v, name))),
        Value::Array(items) => items.iter().find_map(|v| find_string(v, name)),
        _ => None,
    }
}
