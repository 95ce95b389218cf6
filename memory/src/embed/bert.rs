//! A sentence-embedding model run locally on the CPU: a BERT-family
//! sentence-transformers model (all-MiniLM-L6-v2 by default) with mean
//! pooling, through `candle`. No network at run time; the model directory is
//! read once at load.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use super::bert_model::{BertConfig, BertEncoder};
use super::{EmbedError, Embedder, checked};

/// Tokens a text is cut to; all-MiniLM-L6-v2 was trained on 256.
pub const MAX_TOKENS: usize = 256;

/// Files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Why a model directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file of the model could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not a BERT configuration.
    #[error("{} is not a BERT model configuration", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: serde_json::Error,
    },
    /// `tokenizer.json` could not be used.
    #[error("{} is not a usable tokenizer", path.display())]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The weights do not fit the configuration.
    #[error("the weights in {} do not load as a BERT model", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: candle_core::Error,
    },
}

struct Loaded {
    model: BertEncoder,
    tokenizer: Tokenizer,
    device: Device,
}

/// A BERT sentence embedder (mean pooling, unit vectors).
#[derive(Clone)]
pub struct BertEmbedder {
    loaded: Arc<Loaded>,
    dimensions: usize,
    fingerprint: String,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl BertEmbedder {
    /// Loads a sentence-transformers model directory holding
    /// [`MODEL_FILES`] (as all-MiniLM-L6-v2 ships).
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ModelError::Read { path, source })
        };
        let config_path = dir.join("config.json");
        let config: BertConfig =
            serde_json::from_slice(&read("config.json")?).map_err(|source| ModelError::Config {
                path: config_path.clone(),
                source,
            })?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(|source| {
            ModelError::Tokenizer {
                path: tokenizer_path.clone(),
                source,
            }
        })?;
        // Texts are embedded one at a time: padding would add tokens the
        // mean pooling then counts (some published tokenizer.json files
        // switch padding on).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|source| ModelError::Tokenizer {
                path: tokenizer_path,
                source,
            })?;
        let weights_path = dir.join("model.safetensors");
        let weights = read("model.safetensors")?;
        let digest = Sha256::new()
            .chain_update(&weights)
            .chain_update(read("config.json")?)
            .finalize();
        let device = Device::Cpu;
        let model = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .and_then(|vb| BertEncoder::load(vb, &config))
            .map_err(|source| ModelError::Weights {
                path: weights_path,
                source,
            })?;
        Ok(BertEmbedder {
            loaded: Arc::new(Loaded {
                model,
                tokenizer,
                device,
            }),
            dimensions: config.hidden_size,
            fingerprint: format!(
                "corral.bert-mean-v1/{}/{}",
                hex::encode(&digest[..8]),
                config.hidden_size
            ),
        })
    }

    /// Embeds one text synchronously (CPU-bound: milliseconds per text).
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let loaded = &self.loaded;
        let encoding = loaded
            .tokenizer
            .encode(text, true)
            .map_err(|source| EmbedError::Model {
                step: "tokenize",
                source: Arc::from(source),
            })?;
        let run = || -> candle_core::Result<Vec<f32>> {
            let ids = Tensor::new(encoding.get_ids(), &loaded.device)?.unsqueeze(0)?;
            let hidden = loaded.model.forward(&ids)?;
            hidden.mean(1)?.squeeze(0)?.to_vec1::<f32>()
        };
        let vector = run().map_err(|source| EmbedError::Model {
            step: "run",
            source: Arc::new(source),
        })?;
        checked(vec![vector], 1, self.dimensions)?
            .pop()
            .ok_or_else(|| EmbedError::BadResponse("no vector".into()))
    }
}

#[async_trait]
impl Embedder for BertEmbedder {
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let this = self.clone();
        let texts = texts.to_vec();
        // Inference is CPU-bound: keep it off the async worker threads.
        tokio::task::spawn_blocking(move || texts.iter().map(|t| this.embed_one(t)).collect())
            .await
            .map_err(|e| EmbedError::Unavailable(format!("embedding task failed: {e}")))?
    }
}
