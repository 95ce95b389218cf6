//! Corral's agent memory, shaped like Amazon Bedrock AgentCore Memory.
//!
//! Short-term memory keeps conversation events per memory, actor and session
//! (branches, metadata, expiry); long-term memory holds records that
//! strategies extract from events in the background, retrieved by semantic
//! similarity within namespaces. Everything is stored through the narrow
//! [`Storage`] trait — [`SledStorage`] by default, flushed before every
//! acknowledgement — and served as a Rust API ([`MemoryService`]) and over
//! AgentCore's REST paths ([`http::router`]).

pub mod control;
pub mod embed;
mod error;
mod events;
mod extract;
mod filters;
pub mod http;
mod ids;
mod keys;
mod pagination;
mod records;
mod replicas;
mod service;
/// The storage seam memory is kept in (re-exported from `corral-storage`).
pub use corral_storage as store;
mod timestamp;
pub mod types;
mod update;
mod vector_index;

pub use error::{FieldError, MemoryError, ValidationReason};
pub use events::MAIN_BRANCH;
pub use extract::{ExtractionReport, extraction_prompt, offline_extraction_model};
pub use records::MANUAL_STRATEGY;
pub use service::{MemoryConfig, MemoryService};
pub use store::{SledStorage, Storage, StorageError};
pub use timestamp::Timestamp;
pub use vector_index::{Hit, NamespaceScope, VectorIndex};
