//! The authorization seam between the gateway and the policy engine.

use serde::Serialize;
use serde_json::{Map, Value};

/// Who is calling, in AgentCore Policy's entity model.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "type")]
pub enum Principal {
    /// A caller authenticated by an OAuth/JWT bearer token (`AgentCore::OAuthUser`).
    OAuthUser {
        /// The token's subject.
        id: String,
        /// The token's claims, readable as tags in policies.
        #[serde(default)]
        claims: Map<String, Value>,
    },
    /// A caller authenticated by IAM or an API key (`AgentCore::IamEntity`).
    IamEntity {
        /// The entity's identifier (ARN or key name).
        id: String,
    },
}

impl Principal {
    /// The principal's id.
    pub fn id(&self) -> &str {
        match self {
            Principal::OAuthUser { id, .. } | Principal::IamEntity { id } => id,
        }
    }
}

/// Corral's own context beside the tool input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallContext {
    /// Runtime session id, for calls from sandboxed agents.
    pub session_id: Option<String>,
    /// Agent (runtime) name, for calls from sandboxed agents.
    pub agent: Option<String>,
    /// Actor the agent acts for.
    pub actor_id: Option<String>,
    /// Tool calls made earlier in the session.
    pub step: Option<u32>,
    /// When the call is made (now, when absent); policies see it as `context.corral.time`.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

/// One tool call to decide.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AuthorizationRequest {
    /// The caller.
    pub principal: Principal,
    /// The tool as exposed by the gateway (`<target>___<tool>`).
    pub tool: String,
    /// The gateway (resource) id or ARN.
    pub gateway: String,
    /// The tool arguments.
    #[serde(default)]
    pub input: Value,
    /// Corral context.
    #[serde(default)]
    pub context: CallContext,
}

/// A decision's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    /// The call may run.
    Allow,
    /// The call is refused.
    Deny,
}

/// The outcome of deciding one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyDecision {
    /// What the policies decided.
    pub effect: Effect,
    /// Whether the gateway must honour a `Deny` (false in LOG_ONLY mode).
    pub enforced: bool,
    /// Ids of the policies that determined the decision.
    pub policy_ids: Vec<String>,
    /// Human-readable reason.
    pub reason: String,
}

impl PolicyDecision {
    /// An enforced allow without policies (no engine attached).
    pub fn allow_unconditionally() -> Self {
        Self {
            effect: Effect::Allow,
            enforced: true,
            policy_ids: Vec::new(),
            reason: "no policy engine attached".into(),
        }
    }

    /// Whether the call may proceed.
    pub fn permits_call(&self) -> bool {
        self.effect == Effect::Allow || !self.enforced
    }
}

/// Decides tool calls; implemented by the policy engine.
pub trait PolicyHook: Send + Sync {
    /// Decides one call.
    fn authorize(&self, request: &AuthorizationRequest) -> PolicyDecision;

    /// Whether `principal` could ever be permitted to call `tool`; tools for
    /// which this is false are hidden from listings.
    fn may_list(&self, _principal: &Principal, _tool: &str, _gateway: &str) -> bool {
        true
    }
}

/// Allows everything: the behaviour without a policy engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl PolicyHook for AllowAll {
    fn authorize(&self, _request: &AuthorizationRequest) -> PolicyDecision {
        PolicyDecision::allow_unconditionally()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_only_denials_still_permit_the_call() {
        let mut decision = PolicyDecision {
            effect: Effect::Deny,
            enforced: true,
            policy_ids: vec!["p".into()],
            reason: "r".into(),
        };
        assert!(!decision.permits_call());
        decision.enforced = false;
        assert!(decision.permits_call());
        assert!(
            AllowAll
                .authorize(&AuthorizationRequest {
                    principal: Principal::IamEntity { id: "x".into() },
                    tool: "t___u".into(),
                    gateway: "g".into(),
                    input: Value::Null,
                    context: CallContext::default(),
                })
                .permits_call()
        );
    }
}
