//! A multi-step assistant: keeps the session's conversation in its sandbox,
//! records each turn in the session's short-term memory (when attached), and
//! runs the tool loop over whatever tools the session may use.

use std::sync::Mutex;

use corral_agent::model::Message;
use corral_agent::{Agent, AgentError, Invocation, Response, ToolLoop, export_agent};
use serde_json::json;

const SYSTEM: &str = "You are a helpful assistant. Use the tools you are given \
    for anything you cannot answer with certainty, then answer briefly.";

/// The conversation so far; it lives as long as the session's sandbox.
static HISTORY: Mutex<Vec<Message>> = Mutex::new(Vec::new());

struct Assistant;

impl Agent for Assistant {
    fn invoke(invocation: Invocation) -> Result<Response, AgentError> {
        let prompt = invocation.prompt()?;
        let mut history = HISTORY
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outcome = ToolLoop::new(SYSTEM)
            .max_steps(8)
            .history_limit(40)
            .ask(&mut history, &prompt)?;
        let remembered = corral_agent::remember_turn(&prompt, &outcome.text);
        let tools: Vec<_> = outcome
            .tool_calls
            .iter()
            .map(|c| json!({"name": c.name, "ok": c.ok}))
            .collect();
        Ok(Response::json(&json!({
            "response": outcome.text,
            "steps": outcome.steps,
            "toolCalls": tools,
            "turns": history.iter().filter(|m| m.is_prompt()).count(),
            "memoryEventId": remembered,
            "usage": {
                "inputTokens": outcome.usage.input_tokens,
                "outputTokens": outcome.usage.output_tokens,
            },
        })))
    }
}

export_agent!(Assistant);
