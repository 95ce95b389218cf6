//! Corral's policy engine: every tool call is decided before it runs.
//!
//! [`PolicyHook`] is the seam the gateway calls; [`AllowAll`] is the hook used
//! when no policy engine is attached (AgentCore's behaviour without one).

mod hook;

pub use hook::{
    AllowAll, AuthorizationRequest, CallContext, Effect, PolicyDecision, PolicyHook, Principal,
};
