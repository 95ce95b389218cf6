//! Model selection flags shared by commands.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use corral_model::{BedrockConfig, BedrockModel, ModelProvider, ScriptedModel};

/// Which model provider answers the agent.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelKind {
    /// Deterministic offline model driven by a script.
    Scripted,
    /// Amazon Bedrock through the Converse API (standard AWS credentials).
    Bedrock,
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
    /// Bedrock model id.
    #[arg(
        long,
        env = "CORRAL_BEDROCK_MODEL_ID",
        default_value = "us.anthropic.claude-sonnet-4-20250514-v1:0"
    )]
    pub model_id: String,
    /// AWS region for Bedrock (defaults to the AWS config chain).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Bedrock endpoint override.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

impl ModelArgs {
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
                let mut config = BedrockConfig::new(&self.model_id);
                config.region = self.region.clone();
                config.endpoint_url = self.endpoint_url.clone();
                Arc::new(BedrockModel::from_env(config).await)
            }
        })
    }
}
