//! The provider trait every model backend implements.

use async_trait::async_trait;

use crate::types::{ConverseRequest, ConverseResponse};

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The provider throttled the call.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The request was invalid.
    #[error("invalid request: {0}")]
    Validation(String),
    /// The provider is unreachable or unavailable.
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The call took too long.
    #[error("model call timed out: {0}")]
    Timeout(String),
    /// A caller-side limit was reached.
    #[error("model limit exceeded: {0}")]
    LimitExceeded(String),
    /// Anything else.
    #[error("model error: {0}")]
    Internal(String),
}

impl ModelError {
    /// Stable error type name (span `error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::Throttled(_) => "throttled",
            ModelError::Validation(_) => "validation",
            ModelError::Unavailable(_) => "unavailable",
            ModelError::Timeout(_) => "timeout",
            ModelError::LimitExceeded(_) => "limit_exceeded",
            ModelError::Internal(_) => "internal",
        }
    }
}

/// A model backend that answers Converse requests.
#[async_trait]
pub trait ModelProvider: Send + Sync {
    /// Provider name for telemetry (`aws.bedrock`, `corral.scripted`): one
    /// fixed name per provider, so spans carry it without a copy.
    fn provider_name(&self) -> &'static str;

    /// The model used when a request names none.
    fn default_model_id(&self) -> &str;

    /// Answers one Converse request.
    async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, ModelError>;
}
