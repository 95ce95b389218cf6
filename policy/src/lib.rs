//! Corral's policy engine: Cedar policies decide every tool call before it runs.
//!
//! [`PolicyHook`] is the seam the gateway calls; [`AllowAll`] is the hook used
//! when no policy engine is attached (AgentCore's behaviour without one).
//! [`PolicyEngine`] evaluates AgentCore Policy's entity model: principal
//! `AgentCore::OAuthUser` (JWT claims as tags) or `AgentCore::IamEntity`,
//! action `AgentCore::Action::"<target>___<tool>"` in `Action::"CallTool"`,
//! resource `AgentCore::Gateway::"<gateway>"`, `context.input` typed from the
//! tool's input schema, and Corral's own `context.corral`.

mod audit;
mod diagnostics;
mod engine;
mod error;
mod hook;
mod index;
mod input;
mod schema;
mod source;

pub use audit::{AuditRecord, AuditSink, FileAudit, MemoryAudit};
pub use engine::{EngineMode, Evaluation, InvalidPolicy, PolicyEngine, ValidationReport};
pub use error::PolicyError;
pub use hook::{
    AllowAll, AuthorizationRequest, CallContext, Effect, PolicyDecision, PolicyHook, Principal,
};
pub use schema::{CatalogSchema, ToolSignature};
pub use source::{MAX_POLICY_BYTES, PolicyBundle, PolicyDefinition, PolicyStatus, ValidationMode};
