//! Embeddings from an OpenAI-compatible `/embeddings` endpoint (OpenAI,
//! vLLM, Ollama, LiteLLM, text-embeddings-inference…).

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{EmbedError, Embedder, checked};

/// Client of `POST {base_url}/embeddings`.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
    dimensions: usize,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    #[serde(default)]
    index: usize,
}

impl OpenAiEmbedder {
    /// A client for `model` at `base_url` (e.g. `https://api.openai.com/v1`)
    /// returning `dimensions`-long vectors.
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        api_key: Option<String>,
        dimensions: usize,
    ) -> Result<Self, EmbedError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        Ok(OpenAiEmbedder {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: model.into(),
            api_key,
            dimensions,
        })
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn fingerprint(&self) -> String {
        format!(
            "openai/{}/{}/{}",
            self.base_url, self.model, self.dimensions
        )
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = self
            .http
            .post(format!("{}/embeddings", self.base_url))
            .json(&json!({ "model": self.model, "input": texts }));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(EmbedError::Throttled(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let excerpt: String = body.chars().take(300).collect();
            return Err(EmbedError::Unavailable(format!("HTTP {status}: {excerpt}")));
        }
        let mut parsed: Response = response
            .json()
            .await
            .map_err(|e| EmbedError::BadResponse(e.to_string()))?;
        parsed.data.sort_by_key(|item| item.index);
        let vectors = parsed.data.into_iter().map(|item| item.embedding).collect();
        checked(vectors, texts.len(), self.dimensions)
    }
}
