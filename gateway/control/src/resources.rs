//! The persisted resources: gateways with their targets, and policy engines
//! with their policies, keeping what callers sent in AgentCore's shapes so
//! `Get*` answers with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A gateway (`CreateGateway`) and its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayResource {
    /// `<name>-<10 chars>`, lowercase.
    pub gateway_id: String,
    /// ARN (also the Cedar resource `AgentCore::Gateway::"<arn>"`).
    pub gateway_arn: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `roleArn`, kept and reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `MCP`.
    pub protocol_type: String,
    /// `protocolConfiguration` as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_configuration: Option<Value>,
    /// `NONE` or `CUSTOM_JWT`.
    pub authorizer_type: String,
    /// `authorizerConfiguration` as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_configuration: Option<Value>,
    /// The attached policy engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_engine_configuration: Option<PolicyEngineAttachment>,
    /// Creation time, epoch seconds.
    pub created_at: f64,
    /// Last change, epoch seconds.
    pub updated_at: f64,
    /// Targets by id.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetResource>,
    /// The `clientToken` it was created with (a retry returns it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `policyEngineConfiguration` of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEngineAttachment {
    /// The policy engine's ARN.
    pub arn: String,
    /// `ENFORCE` or `LOG_ONLY`.
    pub mode: corral_policy::EngineMode,
}

/// A gateway target (`CreateGatewayTarget`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResource {
    /// Ten alphanumerics, uppercase.
    pub target_id: String,
    /// Name; tools are `<name>___<tool>`.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `targetConfiguration` as given.
    pub target_configuration: Value,
    /// `credentialProviderConfigurations` as given.
    #[serde(default)]
    pub credential_provider_configurations: Vec<Value>,
    /// Creation time, epoch seconds.
    pub created_at: f64,
    /// Last change, epoch seconds.
    pub updated_at: f64,
    /// Last `SynchronizeGatewayTargets`, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synchronized_at: Option<f64>,
    /// The `clientToken` it was created with (a retry returns it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// A policy engine (`CreatePolicyEngine`) and its policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEngineResource {
    /// `<name>-<10 chars>`.
    pub policy_engine_id: String,
    /// ARN.
    pub policy_engine_arn: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time, epoch seconds.
    pub created_at: f64,
    /// Last change, epoch seconds.
    pub updated_at: f64,
    /// Policies by id.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicyResource>,
    /// The `clientToken` it was created with (a retry returns it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// A Cedar policy (`CreatePolicy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResource {
    /// `<name>-<10 chars>`.
    pub policy_id: String,
    /// The engine it belongs to.
    #[serde(default)]
    pub policy_engine_id: String,
    /// ARN.
    pub policy_arn: String,
    /// Name (the policy id decisions report).
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Cedar statement.
    pub statement: String,
    /// `ACTIVE` or `LOG_ONLY`.
    pub enforcement_mode: corral_policy::PolicyStatus,
    /// How validation findings are treated.
    #[serde(default)]
    pub validation_mode: corral_policy::ValidationMode,
    /// Creation time, epoch seconds.
    pub created_at: f64,
    /// Last change, epoch seconds.
    pub updated_at: f64,
    /// The `clientToken` it was created with (a retry returns it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// Everything the control plane persists, in one document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Gateways by id.
    #[serde(default)]
    pub gateways: BTreeMap<String, GatewayResource>,
    /// Policy engines by id.
    #[serde(default)]
    pub policy_engines: BTreeMap<String, PolicyEngineResource>,
}

pub use corral_api::{now_seconds, random_suffix};

/// The id an ARN names for resource type `kind`; other identifiers as given.
pub fn id_of<'a>(identifier: &'a str, kind: &str) -> &'a str {
    corral_api::arn_resource_id(identifier, kind)
}
