//! Model selection flags shared by commands.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use corral_model::{
    AnthropicConfig, AnthropicModel, BedrockConfig, BedrockModel, ModelProvider, OpenAiConfig,
    OpenAiModel, ScriptedModel,
};

/// Which model provider answers the agent.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelKind {
    /// Deterministic offline model driven by a script.
    Scripted,
    /// Amazon Bedrock through the Converse API (standard AWS credentials).
    Bedrock,
    /// Any OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama,
    /// vLLM, llama.cpp server): `--base-url`, `--model-id`, key from
    /// `--api-key-env`.
    Openai,
    /// Anthropic's Messages API: `--model-id`, key from `--api-key-env`
    /// (default `ANTHROPIC_API_KEY`), `--base-url` to override the endpoint.
    Anthropic,
}

/// Flags choosing and configuring the model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model provider.
    #[arg(long, value_enum, default_value = "scripted")]
    pub model: ModelKind,
    /// Script for the scripted model (`.toml` or `.json`); without it the
    /// model echoes the prompt.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Model id [default for Bedrock: us.anthropic.claude-sonnet-4-20250514-v1:0;
    /// required for OpenAI-compatible endpoints].
    #[arg(long, env = "CORRAL_MODEL_ID")]
    pub model_id: Option<String>,
    /// Base URL of an OpenAI-compatible endpoint, up to the API version
    /// (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`).
    #[arg(long, value_name = "URL", env = "CORRAL_MODEL_BASE_URL")]
    pub base_url: Option<String>,
    /// Environment variable holding the API key of an OpenAI-compatible or
    /// Anthropic endpoint [default: OPENAI_API_KEY or ANTHROPIC_API_KEY];
    /// an unset variable sends no key.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// AWS region for Bedrock (defaults to the AWS config chain).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Bedrock endpoint override.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

impl ModelArgs {
    /// The key in `--api-key-env`, else in `default_var`; `None` when unset.
    fn api_key(&self, default_var: &str) -> Option<String> {
        std::env::var(self.api_key_env.as_deref().unwrap_or(default_var)).ok()
    }

    /// Builds the provider.
    pub async fn provider(&self) -> anyhow::Result<Arc<dyn ModelProvider>> {
        Ok(match self.model {
            ModelKind::Scripted => match &self.script {
                Some(path) => Arc::new(
                    ScriptedModel::from_file(path)
                        .with_context(|| format!("loading script {}", path.display()))?,
                ),
                None => Arc::new(ScriptedModel::echo()),
            },
            ModelKind::Bedrock => {
                let model_id = self
                    .model_id
                    .as_deref()
                    .unwrap_or("us.anthropic.claude-sonnet-4-20250514-v1:0");
                let mut config = BedrockConfig::new(model_id);
                config.region = self.region.clone();
                config.endpoint_url = self.endpoint_url.clone();
                Arc::new(BedrockModel::from_env(config).await)
            }
            ModelKind::Openai => {
                let base_url = self
                    .base_url
                    .clone()
                    .context("--model openai needs --base-url (e.g. http://127.0.0.1:11434/v1)")?;
                let model_id = self
                    .model_id
                    .clone()
                    .context("--model openai needs --model-id")?;
                let mut config = OpenAiConfig::new(base_url, model_id);
                config.api_key = self.api_key("OPENAI_API_KEY");
                Arc::new(OpenAiModel::new(config)?)
            }
            ModelKind::Anthropic => {
                let model_id = self
                    .model_id
                    .clone()
                    .context("--model anthropic needs --model-id (e.g. claude-sonnet-4-5)")?;
                let mut config = AnthropicConfig::new(model_id);
                if let Some(base_url) = &self.base_url {
                    config.base_url = base_url.clone();
                }
                config.api_key = self.api_key("ANTHROPIC_API_KEY");
                Arc::new(AnthropicModel::new(config)?)
            }
        })
    }
}
