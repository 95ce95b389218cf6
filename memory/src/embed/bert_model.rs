//! The BERT encoder (Devlin et al., as Hugging Face's `BertModel` lays out
//! its weights) on `candle-nn`: what a sentence-transformers model such as
//! all-MiniLM-L6-v2 runs before pooling.
//!
//! Written here rather than taken from `candle-transformers`: that crate
//! compiles a hundred model families, ~100 s of CPU in every fresh build
//! (about a tenth of the demo's first build), for the one encoder used here.
//! Only what sentence embedding needs is implemented: one unpadded sequence
//! at a time (so there is no attention mask), no pooler or heads.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};
use serde::Deserialize;

/// The activation between a layer's two feed-forward projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// GELU with the exact (erf) form.
    Gelu,
    /// GELU's tanh approximation.
    #[serde(alias = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluApproximate,
    /// ReLU.
    Relu,
}

/// The fields of a model's `config.json` the encoder reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of every hidden state (the embedding's dimensions).
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// The feed-forward activation.
    #[serde(default = "gelu")]
    pub hidden_act: HiddenAct,
    /// Positions the model has embeddings for.
    pub max_position_embeddings: usize,
    /// Token types (segments) the model has embeddings for.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// Layer normalisation's epsilon.
    #[serde(default = "layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Prefix of the weights in checkpoints that nest them (`bert.`).
    pub model_type: Option<String>,
}

fn gelu() -> HiddenAct {
    HiddenAct::Gelu
}

fn two() -> usize {
    2
}

fn layer_norm_eps() -> f64 {
    1e-12
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A loaded BERT encoder.
pub struct BertEncoder {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    act: HiddenAct,
}

impl BertEncoder {
    /// Loads the weights `vb` holds, at the top level or under the
    /// config's `model_type` prefix.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        match Self::load_at(vb.clone(), config) {
            Ok(encoder) => Ok(encoder),
            Err(error) => match &config.model_type {
                Some(prefix) => Self::load_at(vb.pp(prefix), config).map_err(|_| error),
                None => Err(error),
            },
        }
    }

    fn load_at(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        let e = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let attention = l.pp("attention");
                Ok(Layer {
                    query: linear(hidden, hidden, attention.pp("self.query"))?,
                    key: linear(hidden, hidden, attention.pp("self.key"))?,
                    value: linear(hidden, hidden, attention.pp("self.value"))?,
                    attention_out: linear(hidden, hidden, attention.pp("output.dense"))?,
                    attention_norm: layer_norm(hidden, eps, attention.pp("output.LayerNorm"))?,
                    intermediate: linear(
                        hidden,
                        config.intermediate_size,
                        l.pp("intermediate.dense"),
                    )?,
                    output: linear(config.intermediate_size, hidden, l.pp("output.dense"))?,
                    output_norm: layer_norm(hidden, eps, l.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            words: embedding(config.vocab_size, hidden, e.pp("word_embeddings"))?,
            positions: embedding(
                config.max_position_embeddings,
                hidden,
                e.pp("position_embeddings"),
            )?,
            token_types: embedding(
                config.type_vocab_size,
                hidden,
                e.pp("token_type_embeddings"),
            )?,
            embedding_norm: layer_norm(hidden, eps, e.pp("LayerNorm"))?,
            layers,
            heads: config.num_attention_heads.max(1),
            act: config.hidden_act,
        })
    }

    /// The last hidden states `(1, tokens, hidden)` of one sequence of
    /// token ids `(1, tokens)`, all of token type 0.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, tokens) = ids.dims2()?;
        let positions = Tensor::arange(0u32, tokens as u32, ids.device())?;
        let embedded = self
            .words
            .forward(ids)?
            .add(&self.token_types.forward(&ids.zeros_like()?)?)?
            .broadcast_add(&self.positions.forward(&positions)?)?;
        let mut hidden = self.embedding_norm.forward(&embedded)?;
        for layer in &self.layers {
            hidden = self.layer(layer, &hidden)?;
        }
        Ok(hidden)
    }

    fn layer(&self, layer: &Layer, input: &Tensor) -> Result<Tensor> {
        let (batch, tokens, width) = input.dims3()?;
        let head_width = width / self.heads;
        // (batch, tokens, width) -> (batch, heads, tokens, head width)
        let split = |x: Tensor| {
            x.reshape((batch, tokens, self.heads, head_width))?
                .transpose(1, 2)?
                .contiguous()
        };
        let query = split(layer.query.forward(input)?)?;
        let key = split(layer.key.forward(input)?)?;
        let value = split(layer.value.forward(input)?)?;
        let scores = (query.matmul(&key.t()?)? / (head_width as f64).sqrt())?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = weights
            .matmul(&value)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch, tokens, width))?;
        let attended = layer
            .attention_norm
            .forward(&(layer.attention_out.forward(&context)? + input)?)?;
        let inner = layer.intermediate.forward(&attended)?;
        let inner = match self.act {
            HiddenAct::Gelu => inner.gelu_erf()?,
            HiddenAct::GeluApproximate => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        layer
            .output_norm
            .forward(&(layer.output.forward(&inner)? + attended)?)
    }
}
