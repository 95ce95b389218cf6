//! Embedding model flags shared by commands: what semantic tool search and
//! agent memory embed text with.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use corral_memory::embed::{BedrockEmbedder, BertEmbedder, Embedder, OpenAiEmbedder};

/// Which embedder turns text into vectors.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EmbedderKind {
    /// On this machine: the model in `--embedding-model` (all-MiniLM-L6-v2,
    /// fetched by `.ci/fetch-embedding-model`); without one, tool search
    /// ranks by words (BM25) and memory uses a hashing embedder.
    Local,
    /// Amazon Bedrock (`--embedding-model-id`, default
    /// amazon.titan-embed-text-v2:0; standard AWS credentials).
    Bedrock,
    /// An OpenAI-compatible `/embeddings` endpoint (`--embedding-base-url`,
    /// `--embedding-model-id`; key from `OPENAI_API_KEY`).
    Openai,
}

/// Flags choosing and configuring the embedder.
#[derive(Debug, Args)]
pub struct EmbedderArgs {
    /// Embedding provider.
    #[arg(long, value_enum, default_value = "local")]
    pub embedder: EmbedderKind,
    /// Directory of a local sentence-transformers BERT model
    /// (config.json, tokenizer.json, model.safetensors).
    #[arg(long, value_name = "DIR", env = "CORRAL_EMBEDDING_MODEL")]
    pub embedding_model: Option<PathBuf>,
    /// Model id of a Bedrock or OpenAI-compatible embedder.
    #[arg(long, value_name = "ID")]
    pub embedding_model_id: Option<String>,
    /// Base URL of an OpenAI-compatible embedder, up to the API version.
    #[arg(long, value_name = "URL")]
    pub embedding_base_url: Option<String>,
    /// Length of a remote embedder's vectors [default: 1024 for Bedrock,
    /// 1536 for OpenAI-compatible].
    #[arg(long, value_name = "N")]
    pub embedding_dimensions: Option<usize>,
}

impl EmbedderArgs {
    /// The embedder; `None` for `local` without a model directory.
    pub async fn embedder(&self) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
        Ok(Some(match self.embedder {
            EmbedderKind::Local => {
                let Some(dir) = &self.embedding_model else {
                    return Ok(None);
                };
                let model = tokio::task::spawn_blocking({
                    let dir = dir.clone();
                    move || BertEmbedder::load(&dir)
                })
                .await?
                .with_context(|| format!("loading the embedding model in {}", dir.display()))?;
                Arc::new(model)
            }
            EmbedderKind::Bedrock => Arc::new(
                BedrockEmbedder::from_env(
                    self.embedding_model_id
                        .as_deref()
                        .unwrap_or("amazon.titan-embed-text-v2:0"),
                    self.embedding_dimensions.unwrap_or(1024),
                    None,
                    None,
                )
                .await,
            ),
            EmbedderKind::Openai => Arc::new(OpenAiEmbedder::new(
                self.embedding_base_url
                    .clone()
                    .context("--embedder openai needs --embedding-base-url")?,
                self.embedding_model_id
                    .clone()
                    .context("--embedder openai needs --embedding-model-id")?,
                std::env::var("OPENAI_API_KEY").ok(),
                self.embedding_dimensions.unwrap_or(1536),
            )?),
        }))
    }
}
