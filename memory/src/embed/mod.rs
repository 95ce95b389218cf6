//! Embedding providers: text → unit vectors for similarity search.

mod bedrock;
#[cfg(feature = "local-model")]
mod bert;
#[cfg(feature = "local-model")]
mod bert_model;
mod local;
mod openai;

use async_trait::async_trait;

pub use bedrock::BedrockEmbedder;
#[cfg(feature = "local-model")]
pub use bert::{BertEmbedder, MAX_TOKENS, MODEL_FILES, ModelError};
pub use local::LocalEmbedder;
pub use openai::OpenAiEmbedder;

/// Why embedding failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    /// The provider throttled the call.
    #[error("embedding provider throttled: {0}")]
    Throttled(String),
    /// The provider could not be reached or failed.
    #[error("embedding provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something unexpected.
    #[error("embedding provider answered badly: {0}")]
    BadResponse(String),
    /// A model run on this machine failed on the text.
    #[error("local embedding model failed to {step}")]
    Model {
        /// What it was doing (`tokenize`, `run`).
        step: &'static str,
        /// The tokenizer's or model's error.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
}

/// Turns texts into vectors of a fixed dimension.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Identifies the model and dimension; stored vectors from another
    /// fingerprint are re-embedded.
    fn fingerprint(&self) -> String;

    /// Length of every vector.
    fn dimensions(&self) -> usize;

    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Scales `v` to unit length (cosine similarity becomes a dot product).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// Checks a provider's vectors: count, dimension, finite values; normalises.
pub(crate) fn checked(
    mut vectors: Vec<Vec<f32>>,
    expected: usize,
    dimensions: usize,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    if vectors.len() != expected {
        return Err(EmbedError::BadResponse(format!(
            "{} vectors for {expected} texts",
            vectors.len()
        )));
    }
    for v in &mut vectors {
        if v.len() != dimensions {
            return Err(EmbedError::BadResponse(format!(
                "vector of {} dimensions, expected {dimensions}",
                v.len()
            )));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(EmbedError::BadResponse("non-finite vector value".into()));
        }
        normalize(v);
    }
    Ok(vectors)
}
