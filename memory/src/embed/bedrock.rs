//! Embeddings from Bedrock embedding models through `InvokeModel`
//! (Titan Text Embeddings and Cohere Embed request shapes).

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_smithy_types::Blob;
use serde::Deserialize;
use serde_json::json;

use super::{EmbedError, Embedder, checked};

/// Bedrock `InvokeModel` embedding client.
#[derive(Debug, Clone)]
pub struct BedrockEmbedder {
    client: Client,
    model_id: String,
    dimensions: usize,
}

#[derive(Deserialize)]
struct TitanResponse {
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    Plain(Vec<Vec<f32>>),
    Typed { float: Vec<Vec<f32>> },
}

#[derive(Deserialize)]
struct CohereResponse {
    embeddings: CohereEmbeddings,
}

impl BedrockEmbedder {
    /// Loads AWS configuration from the standard chain; `endpoint_url`
    /// overrides the service endpoint.
    pub async fn from_env(
        model_id: impl Into<String>,
        dimensions: usize,
        region: Option<String>,
        endpoint_url: Option<String>,
    ) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(Region::new(region));
        }
        let sdk = loader.load().await;
        let mut builder = aws_sdk_bedrockruntime::config::Builder::from(&sdk);
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Self::with_client(Client::from_conf(builder.build()), model_id, dimensions)
    }

    /// Uses an already configured client.
    pub fn with_client(client: Client, model_id: impl Into<String>, dimensions: usize) -> Self {
        BedrockEmbedder {
            client,
            model_id: model_id.into(),
            dimensions,
        }
    }

    fn is_cohere(&self) -> bool {
        self.model_id.contains("cohere.")
    }

    async fn invoke(&self, body: serde_json::Value) -> Result<Vec<u8>, EmbedError> {
        let bytes =
            serde_json::to_vec(&body).map_err(|e| EmbedError::BadResponse(e.to_string()))?;
        let output = self
            .client
            .invoke_model()
            .model_id(&self.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(bytes))
            .send()
            .await
            .map_err(|e| {
                let service = e.into_service_error();
                let message = service.message().unwrap_or("no message").to_string();
                match service {
                    InvokeModelError::ThrottlingException(_)
                    | InvokeModelError::ServiceQuotaExceededException(_) => {
                        EmbedError::Throttled(message)
                    }
                    other => EmbedError::Unavailable(format!(
                        "{}: {message}",
                        other.code().unwrap_or("InvokeModel failed")
                    )),
                }
            })?;
        Ok(output.body.into_inner())
    }
}

#[async_trait]
impl Embedder for BedrockEmbedder {
    fn fingerprint(&self) -> String {
        format!("bedrock/{}/{}", self.model_id, self.dimensions)
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let bad = |e: serde_json::Error| EmbedError::BadResponse(e.to_string());
        let vectors = if self.is_cohere() {
            let body = self
                .invoke(json!({ "texts": texts, "input_type": "search_document" }))
                .await?;
            match serde_json::from_slice::<CohereResponse>(&body)
                .map_err(bad)?
                .embeddings
            {
                CohereEmbeddings::Plain(v) | CohereEmbeddings::Typed { float: v } => v,
            }
        } else {
            // Titan embeds one text per call.
            let mut out = Vec::with_capacity(texts.len());
            for text in texts {
                let body = self
                    .invoke(json!({ "inputText": text, "dimensions": self.dimensions, "normalize": true }))
                    .await?;
                out.push(
                    serde_json::from_slice::<TitanResponse>(&body)
                        .map_err(bad)?
                        .embedding,
                );
            }
            out
        };
        checked(vectors, texts.len(), self.dimensions)
    }
}
