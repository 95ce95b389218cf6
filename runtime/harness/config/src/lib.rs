//! Configuration of the no-code harness: a prebuilt agent that runs the
//! tool loop with a system prompt, a tool allow-list, a step limit, memory
//! and an output format taken from a file instead of code.
//!
//! The host validates the file and hands it to the harness component as one
//! environment variable ([`ENV_VAR`]: base64url-encoded JSON, so it survives
//! any transport of `KEY=VALUE` pairs).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The environment variable that carries the configuration into the harness.
pub const ENV_VAR: &str = "CORRAL_HARNESS_CONFIG";

/// Most steps a harness may allow per invocation.
pub const MAX_STEPS_LIMIT: u32 = 100;

/// A harness agent's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarnessConfig {
    /// The system prompt (required, not empty).
    pub system_prompt: String,
    /// Model id for every call; `None` uses the host's configured model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Model calls per invocation, 1–100 (default 10).
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Tools the model may use, by exact name; absent: every tool of the
    /// session (the gateway's policies still decide each call); `[]`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Output token cap per model call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Messages of conversation kept per session (default 40; whole turns
    /// are dropped, oldest first).
    #[serde(default = "default_history_limit")]
    pub history_limit: usize,
    /// Memory use.
    #[serde(default)]
    pub memory: MemorySettings,
    /// Response format.
    #[serde(default)]
    pub output: OutputSettings,
}

/// How the harness uses the agent's memory resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySettings {
    /// Record every turn as a short-term memory event (default false).
    #[serde(default)]
    pub enabled: bool,
    /// Long-term namespace to retrieve from before answering (e.g.
    /// `/facts/{actorId}`); the records found are added to the system
    /// prompt. `None`: no retrieval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Records retrieved per invocation, 1–50 (default 3).
    #[serde(default = "default_top_k")]
    pub top_k: u32,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            namespace: None,
            top_k: default_top_k(),
        }
    }
}

/// The response body's shape.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// `json` (default): `{"response", "steps", "toolCalls", "usage"}`;
    /// `text`: the answer as `text/plain`.
    #[serde(default)]
    pub format: OutputFormat,
}

/// Response body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// A JSON object with the answer, steps, tool calls and token usage.
    #[default]
    Json,
    /// The answer only.
    Text,
}

fn default_max_steps() -> u32 {
    10
}

fn default_history_limit() -> usize {
    40
}

fn default_top_k() -> u32 {
    3
}

/// A configuration that cannot be used; names the field.
#[derive(Debug, thiserror::Error)]
pub enum HarnessConfigError {
    /// A field has a value outside its range.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field, as written in the file (`memory.top_k`).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The environment value is not a configuration.
    #[error("{ENV_VAR} is not a harness configuration: {0}")]
    Encoding(String),
    /// The environment value decoded but is not valid JSON for the config.
    #[error("{ENV_VAR} is not a harness configuration")]
    Json(#[source] serde_json::Error),
}

impl HarnessConfig {
    /// Checks every field's range; the error names the first bad field.
    pub fn validate(&self) -> Result<(), HarnessConfigError> {
        let invalid = |field, problem: &str| {
            Err(HarnessConfigError::Invalid {
                field,
                problem: problem.to_string(),
            })
        };
        if self.system_prompt.trim().is_empty() {
            return invalid("system_prompt", "must not be empty");
        }
        if self.max_steps == 0 || self.max_steps > MAX_STEPS_LIMIT {
            return invalid("max_steps", "must be between 1 and 100");
        }
        if let Some(id) = &self.model_id
            && id.trim().is_empty()
        {
            return invalid(
                "model_id",
                "must not be empty (leave it out for the host's model)",
            );
        }
        if let Some(tools) = &self.tools
            && let Some(bad) = tools.iter().find(|t| t.trim().is_empty())
        {
            return invalid("tools", &format!("tool names must not be empty ({bad:?})"));
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return invalid("temperature", "must be between 0 and 2");
        }
        if self.max_tokens == Some(0) {
            return invalid("max_tokens", "must be at least 1");
        }
        if self.history_limit == 0 {
            return invalid("history_limit", "must be at least 1");
        }
        if self.memory.top_k == 0 || self.memory.top_k > 50 {
            return invalid("memory.top_k", "must be between 1 and 50");
        }
        if let Some(namespace) = &self.memory.namespace
            && !namespace.starts_with('/')
        {
            return invalid(
                "memory.namespace",
                "must start with '/' (e.g. /facts/{actorId})",
            );
        }
        Ok(())
    }

    /// The value of [`ENV_VAR`] for this configuration.
    pub fn to_env_value(&self) -> String {
        // Serialising plain data to JSON cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes and validates the value of [`ENV_VAR`].
    pub fn from_env_value(value: &str) -> Result<Self, HarnessConfigError> {
        let json = URL_SAFE_NO_PAD
            .decode(value.trim())
            .map_err(|e| HarnessConfigError::Encoding(e.to_string()))?;
        let config: Self = serde_json::from_slice(&json).map_err(HarnessConfigError::Json)?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HarnessConfig {
        serde_json::from_str(r#"{"system_prompt": "Be brief."}"#).unwrap()
    }

    #[test]
    fn defaults_and_round_trip_through_the_environment() {
        let c = config();
        assert_eq!(c.max_steps, 10);
        assert_eq!(c.output.format, OutputFormat::Json);
        assert!(!c.memory.enabled);
        let value = c.to_env_value();
        assert!(
            value
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        );
        assert_eq!(HarnessConfig::from_env_value(&value).unwrap(), c);
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut c = config();
        c.max_steps = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("max_steps:")
        );
        let mut c = config();
        c.memory.namespace = Some("facts".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("memory.namespace:")
        );
        let mut c = config();
        c.system_prompt = " ".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("system_prompt:")
        );
        assert!(matches!(
            HarnessConfig::from_env_value("%%%"),
            Err(HarnessConfigError::Encoding(_))
        ));
    }
}
