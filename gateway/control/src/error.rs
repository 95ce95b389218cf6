//! Errors of the control plane, as AgentCore's REST-JSON protocol sends them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a control-plane operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Malformed input, or a configuration Corral cannot apply
    /// (`ValidationException`, 400).
    #[error("{0}")]
    Validation(String),
    /// No such gateway, target, policy engine or policy
    /// (`ResourceNotFoundException`, 404).
    #[error("{0}")]
    NotFound(String),
    /// The name is taken, or the resource is in use (`ConflictException`, 409).
    #[error("{0}")]
    Conflict(String),
    /// A gateway could not be built from its configuration.
    #[error("gateway configuration: {0}")]
    Gateway(#[source] corral_gateway::GatewayError),
    /// Policies do not parse or validate.
    #[error(transparent)]
    Policy(#[from] corral_policy::PolicyError),
    /// The resource index could not be written (`InternalServerException`, 500).
    #[error("control-plane storage: {0}")]
    Storage(#[source] std::io::Error),
}

impl ControlError {
    /// The error type AWS clients see.
    pub fn error_type(&self) -> &'static str {
        match self {
            ControlError::Validation(_) | ControlError::Gateway(_) | ControlError::Policy(_) => {
                "ValidationException"
            }
            ControlError::NotFound(_) => "ResourceNotFoundException",
            ControlError::Conflict(_) => "ConflictException",
            ControlError::Storage(_) => "InternalServerException",
        }
    }

    /// The HTTP status AgentCore answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ControlError::Validation(_) | ControlError::Gateway(_) | ControlError::Policy(_) => {
                StatusCode::BAD_REQUEST
            }
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        if let ControlError::Storage(e) = &self {
            tracing::error!(error = %e, "control-plane storage failed");
        }
        corral_api::error_message(self.status(), self.error_type(), &self.to_string())
    }
}
