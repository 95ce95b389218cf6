//! The no-code harness: one prebuilt agent whose behaviour — system prompt,
//! model, tool allow-list, step limit, memory, output format — comes from
//! its configuration (`CORRAL_HARNESS_CONFIG`, set by `corral deploy
//! --harness` or `corral run --harness`), running the SDK's tool loop.

use std::sync::{Mutex, OnceLock};

use corral_agent::model::Message;
use corral_agent::{Agent, AgentError, Invocation, Response, ToolLoop, export_agent, memory};
use corral_harness_config::{ENV_VAR, HarnessConfig, OutputFormat};
use serde_json::json;

/// The configuration, read once per sandbox.
static CONFIG: OnceLock<Result<HarnessConfig, String>> = OnceLock::new();

/// The conversation so far; it lives as long as the session's sandbox.
static HISTORY: Mutex<Vec<Message>> = Mutex::new(Vec::new());

fn config() -> Result<&'static HarnessConfig, AgentError> {
    CONFIG
        .get_or_init(|| match std::env::var(ENV_VAR) {
            Ok(value) => HarnessConfig::from_env_value(&value).map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "{ENV_VAR} is not set: deploy this agent with `corral deploy --harness FILE`"
            )),
        })
        .as_ref()
        .map_err(|e| AgentError::Internal(format!("harness configuration: {e}")))
}

/// The system prompt plus the long-term records relevant to `prompt`.
fn system_prompt(config: &HarnessConfig, prompt: &str) -> String {
    let mut system = config.system_prompt.clone();
    let Some(namespace) = &config.memory.namespace else {
        return system;
    };
    match memory::retrieve_records(namespace, prompt, config.memory.top_k) {
        Ok(records) if !records.is_empty() => {
            system.push_str("\n\nWhat you remember about this user:");
            for record in records {
                system.push_str("\n- ");
                system.push_str(&record.content);
            }
        }
        Ok(_) | Err(memory::MemoryError::NotConfigured) => {}
        Err(error) => corral_agent::warn(&format!("memory retrieval failed: {error:?}")),
    }
    system
}

struct Harness;

impl Agent for Harness {
    fn invoke(invocation: Invocation) -> Result<Response, AgentError> {
        let config = config()?;
        let prompt = invocation.prompt()?;
        let mut tool_loop = ToolLoop::new(system_prompt(config, &prompt))
            .max_steps(config.max_steps)
            .history_limit(config.history_limit);
        if let Some(model) = &config.model_id {
            tool_loop = tool_loop.model(model.clone());
        }
        if let Some(tokens) = config.max_tokens {
            tool_loop = tool_loop.max_tokens(tokens);
        }
        if let Some(temperature) = config.temperature {
            tool_loop = tool_loop.temperature(temperature);
        }
        tool_loop = match &config.tools {
            Some(names) if names.is_empty() => tool_loop.without_tools(),
            Some(names) => tool_loop.only_tools(names.iter().cloned()),
            None => tool_loop,
        };
        let mut history = HISTORY.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = tool_loop.ask(&mut history, &prompt)?;
        let remembered = if config.memory.enabled {
            corral_agent::remember_turn(&prompt, &outcome.text)
        } else {
            None
        };
        Ok(match config.output.format {
            OutputFormat::Text => Response::text(outcome.text),
            OutputFormat::Json => Response::json(&json!({
                "response": outcome.text,
                "steps": outcome.steps,
                "toolCalls": outcome
                    .tool_calls
                    .iter()
                    .map(|c| json!({"name": c.name, "ok": c.ok}))
                    .collect::<Vec<_>>(),
                "memoryEventId": remembered,
                "usage": {
                    "inputTokens": outcome.usage.input_tokens,
                    "outputTokens": outcome.usage.output_tokens,
                },
            })),
        })
    }
}

export_agent!(Harness);
