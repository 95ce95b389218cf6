//! Errors named as AgentCore Memory names them.

use serde::Serialize;

/// Why a field failed validation (AgentCore's `ValidationExceptionReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ValidationReason {
    /// The request body could not be parsed.
    CannotParse,
    /// A field broke its constraints.
    FieldValidationFailed,
    /// A client token was reused with different parameters.
    IdempotentParameterMismatchException,
    /// A referenced event belongs to another session.
    EventInOtherSession,
    /// The request conflicts with stored state.
    ResourceConflict,
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Field name (`payload[3].conversational.content.text`).
    pub name: String,
    /// What is wrong with it.
    pub message: String,
}

/// A memory operation's failure, one variant per AgentCore error name.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MemoryError {
    /// `ValidationException` (400).
    #[error("ValidationException: {message}")]
    Validation {
        /// Human-readable summary.
        message: String,
        /// Reason code.
        reason: ValidationReason,
        /// Fields at fault.
        fields: Vec<FieldError>,
    },
    /// `ResourceNotFoundException` (404).
    #[error("ResourceNotFoundException: {0}")]
    NotFound(String),
    /// `ConflictException` (409).
    #[error("ConflictException: {0}")]
    Conflict(String),
    /// `ServiceQuotaExceededException` (402).
    #[error("ServiceQuotaExceededException: {0}")]
    QuotaExceeded(String),
    /// `ThrottledException` (429).
    #[error("ThrottledException: {0}")]
    Throttled(String),
    /// `ServiceException` (500): storage or an embedding/model provider failed.
    #[error("ServiceException: {0}")]
    Service(String),
}

impl MemoryError {
    /// A `FieldValidationFailed` error on one field.
    pub fn field(name: impl Into<String>, message: impl Into<String>) -> Self {
        let (name, message) = (name.into(), message.into());
        MemoryError::Validation {
            message: format!("{name}: {message}"),
            reason: ValidationReason::FieldValidationFailed,
            fields: vec![FieldError { name, message }],
        }
    }

    /// A validation error with a reason and no field list.
    pub fn invalid(reason: ValidationReason, message: impl Into<String>) -> Self {
        MemoryError::Validation {
            message: message.into(),
            reason,
            fields: Vec::new(),
        }
    }

    /// The AgentCore error name (`x-amzn-ErrorType`).
    pub fn error_name(&self) -> &'static str {
        match self {
            MemoryError::Validation { .. } => "ValidationException",
            MemoryError::NotFound(_) => "ResourceNotFoundException",
            MemoryError::Conflict(_) => "ConflictException",
            MemoryError::QuotaExceeded(_) => "ServiceQuotaExceededException",
            MemoryError::Throttled(_) => "ThrottledException",
            MemoryError::Service(_) => "ServiceException",
        }
    }

    /// The HTTP status AgentCore answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            MemoryError::Validation { .. } => 400,
            MemoryError::NotFound(_) => 404,
            MemoryError::Conflict(_) => 409,
            MemoryError::QuotaExceeded(_) => 402,
            MemoryError::Throttled(_) => 429,
            MemoryError::Service(_) => 500,
        }
    }
}

impl From<crate::store::StorageError> for MemoryError {
    fn from(error: crate::store::StorageError) -> Self {
        MemoryError::Service(error.to_string())
    }
}

impl From<crate::embed::EmbedError> for MemoryError {
    fn from(error: crate::embed::EmbedError) -> Self {
        match error {
            crate::embed::EmbedError::Throttled(m) => MemoryError::Throttled(m),
            other => MemoryError::Service(other.to_string()),
        }
    }
}
