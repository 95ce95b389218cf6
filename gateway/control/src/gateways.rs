//! Gateways and their targets: create, read, update, delete, synchronise,
//! and building a running gateway from its resource.

use std::sync::Arc;

use corral_gateway::{Gateway, GatewayConfig};
use corral_policy::PolicyEngine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ControlError;
use crate::resources::{
    GatewayResource, PolicyEngineAttachment, Resources, TargetResource, id_of, now_seconds,
    random_suffix,
};
use crate::{ControlPlane, LiveGateway};

/// `CreateGateway` / `UpdateGateway` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayInput {
    /// Name, `([0-9a-zA-Z][-]?){1,48}`.
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `roleArn` (kept and reported).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// `MCP` (the default).
    #[serde(default)]
    pub protocol_type: Option<String>,
    /// `protocolConfiguration`.
    #[serde(default)]
    pub protocol_configuration: Option<Value>,
    /// `NONE` or `CUSTOM_JWT`.
    #[serde(default)]
    pub authorizer_type: Option<String>,
    /// `authorizerConfiguration` (`customJWTAuthorizer`).
    #[serde(default)]
    pub authorizer_configuration: Option<Value>,
    /// The policy engine deciding the gateway's calls.
    #[serde(default)]
    pub policy_engine_configuration: Option<PolicyEngineAttachment>,
    /// Idempotency token: a create retried with it returns the first result.
    #[serde(default)]
    pub client_token: Option<String>,
}

/// `CreateGatewayTarget` / `UpdateGatewayTarget` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetInput {
    /// Name, `([0-9a-zA-Z][-]?){1,100}`.
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `targetConfiguration` (OpenAPI, Lambda, MCP server, …).
    #[serde(default)]
    pub target_configuration: Option<Value>,
    /// `credentialProviderConfigurations`.
    #[serde(default)]
    pub credential_provider_configurations: Option<Vec<Value>>,
    /// Idempotency token: a create retried with it returns the first result.
    #[serde(default)]
    pub client_token: Option<String>,
}

/// Whether `name` matches `([0-9a-zA-Z][-]?){1,max}`.
fn valid_name(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    let mut units = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            return false;
        }
        i += 1;
        if i < bytes.len() && bytes[i] == b'-' {
            i += 1;
        }
        units += 1;
    }
    (1..=max).contains(&units)
}

impl ControlPlane {
    /// `CreateGateway`: a running gateway with no targets yet.
    pub async fn create_gateway(
        &self,
        input: GatewayInput,
    ) -> Result<GatewayResource, ControlError> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| ControlError::Validation("name is required".into()))?;
        if !valid_name(&name, 48) {
            return Err(ControlError::Validation(format!(
                "name '{name}' must match ([0-9a-zA-Z][-]?){{1,48}}"
            )));
        }
        let mut resources = self.resources.lock().await;
        if let Some(done) = input.client_token.as_ref().and_then(|token| {
            resources
                .gateways
                .values()
                .find(|g| g.client_token.as_ref() == Some(token))
        }) {
            return Ok(done.clone());
        }
        if resources.gateways.values().any(|g| g.name == name) {
            return Err(ControlError::Conflict(format!(
                "a gateway named {name} already exists"
            )));
        }
        let id = format!("{}-{}", name.to_ascii_lowercase(), random_suffix());
        let now = now_seconds();
        let mut gateway = GatewayResource {
            gateway_arn: format!("{}:gateway/{id}", self.arn_prefix),
            gateway_id: id,
            name,
            description: None,
            role_arn: None,
            protocol_type: "MCP".into(),
            protocol_configuration: None,
            authorizer_type: "NONE".into(),
            authorizer_configuration: None,
            policy_engine_configuration: None,
            created_at: now,
            updated_at: now,
            targets: Default::default(),
            client_token: input.client_token.clone(),
        };
        apply_gateway_input(&mut gateway, input)?;
        self.commit_gateway(&mut resources, gateway).await
    }

    /// `UpdateGateway`: replaces the gateway's settings (AgentCore's
    /// update is a full replacement) and restarts it.
    pub async fn update_gateway(
        &self,
        identifier: &str,
        input: GatewayInput,
    ) -> Result<GatewayResource, ControlError> {
        let mut resources = self.resources.lock().await;
        let mut gateway = find_gateway(&resources, identifier)?.clone();
        if let Some(name) = &input.name
            && *name != gateway.name
        {
            if !valid_name(name, 48) {
                return Err(ControlError::Validation(format!(
                    "name '{name}' must match ([0-9a-zA-Z][-]?){{1,48}}"
                )));
            }
            if resources.gateways.values().any(|g| g.name == *name) {
                return Err(ControlError::Conflict(format!(
                    "a gateway named {name} already exists"
                )));
            }
        }
        gateway.description = None;
        gateway.protocol_configuration = None;
        gateway.authorizer_configuration = None;
        gateway.policy_engine_configuration = None;
        apply_gateway_input(&mut gateway, input)?;
        gateway.updated_at = now_seconds();
        self.commit_gateway(&mut resources, gateway).await
    }

    /// `GetGateway`.
    pub async fn get_gateway(&self, identifier: &str) -> Result<GatewayResource, ControlError> {
        find_gateway(&self.current(), identifier).cloned()
    }

    /// Every gateway, by id.
    pub async fn list_gateways(&self) -> Vec<GatewayResource> {
        self.resources
            .lock()
            .await
            .gateways
            .values()
            .cloned()
            .collect()
    }

    /// `DeleteGateway`; a gateway with targets is refused (`ConflictException`).
    pub async fn delete_gateway(&self, identifier: &str) -> Result<GatewayResource, ControlError> {
        let mut resources = self.resources.lock().await;
        let gateway = find_gateway(&resources, identifier)?.clone();
        if !gateway.targets.is_empty() {
            return Err(ControlError::Conflict(format!(
                "gateway {} still has {} target(s); delete them first",
                gateway.gateway_id,
                gateway.targets.len()
            )));
        }
        let mut next = resources.clone();
        next.gateways.remove(&gateway.gateway_id);
        self.commit(&mut resources, next)?;
        self.live.write().remove(&gateway.gateway_id);
        tracing::info!(gateway = %gateway.gateway_id, "gateway deleted");
        Ok(gateway)
    }

    /// `CreateGatewayTarget`: the gateway restarts with the target's tools.
    pub async fn create_target(
        &self,
        gateway: &str,
        input: TargetInput,
    ) -> Result<(GatewayResource, TargetResource), ControlError> {
        let mut resources = self.resources.lock().await;
        let mut resource = find_gateway(&resources, gateway)?.clone();
        if let Some(done) = input.client_token.as_ref().and_then(|token| {
            resource
                .targets
                .values()
                .find(|t| t.client_token.as_ref() == Some(token))
        }) {
            return Ok((resource.clone(), done.clone()));
        }
        let name = input
            .name
            .clone()
            .ok_or_else(|| ControlError::Validation("name is required".into()))?;
        if resource.targets.values().any(|t| t.name == name) {
            return Err(ControlError::Conflict(format!(
                "gateway {} already has a target named {name}",
                resource.gateway_id
            )));
        }
        let now = now_seconds();
        let mut target = TargetResource {
            target_id: random_suffix().to_ascii_uppercase(),
            name,
            description: None,
            target_configuration: Value::Null,
            credential_provider_configurations: Vec::new(),
            created_at: now,
            updated_at: now,
            last_synchronized_at: None,
            client_token: input.client_token.clone(),
        };
        apply_target_input(&mut target, input)?;
        resource
            .targets
            .insert(target.target_id.clone(), target.clone());
        resource.updated_at = now;
        let resource = self.commit_gateway(&mut resources, resource).await?;
        Ok((resource, target))
    }

    /// `UpdateGatewayTarget`.
    pub async fn update_target(
        &self,
        gateway: &str,
        target_id: &str,
        input: TargetInput,
    ) -> Result<(GatewayResource, TargetResource), ControlError> {
        let mut resources = self.resources.lock().await;
        let mut resource = find_gateway(&resources, gateway)?.clone();
        let mut target = find_target(&resource, target_id)?.clone();
        if let Some(name) = &input.name
            && resource
                .targets
                .values()
                .any(|t| t.name == *name && t.target_id != target.target_id)
        {
            return Err(ControlError::Conflict(format!(
                "gateway {} already has a target named {name}",
                resource.gateway_id
            )));
        }
        apply_target_input(&mut target, input)?;
        target.updated_at = now_seconds();
        resource
            .targets
            .insert(target.target_id.clone(), target.clone());
        resource.updated_at = target.updated_at;
        let resource = self.commit_gateway(&mut resources, resource).await?;
        Ok((resource, target))
    }

    /// `GetGatewayTarget`.
    pub async fn get_target(
        &self,
        gateway: &str,
        target_id: &str,
    ) -> Result<(GatewayResource, TargetResource), ControlError> {
        let resources = self.current();
        let resource = find_gateway(&resources, gateway)?;
        Ok((resource.clone(), find_target(resource, target_id)?.clone()))
    }

    /// `DeleteGatewayTarget`: the gateway restarts without its tools.
    pub async fn delete_target(
        &self,
        gateway: &str,
        target_id: &str,
    ) -> Result<(GatewayResource, TargetResource), ControlError> {
        let mut resources = self.resources.lock().await;
        let mut resource = find_gateway(&resources, gateway)?.clone();
        let target = find_target(&resource, target_id)?.clone();
        resource.targets.remove(&target.target_id);
        resource.updated_at = now_seconds();
        let resource = self.commit_gateway(&mut resources, resource).await?;
        Ok((resource, target))
    }

    /// `SynchronizeGatewayTargets`: re-reads the targets' tool lists (an MCP
    /// server's tools may have changed) by restarting the gateway.
    pub async fn synchronize_targets(
        &self,
        gateway: &str,
        target_ids: &[String],
    ) -> Result<(GatewayResource, Vec<TargetResource>), ControlError> {
        let mut resources = self.resources.lock().await;
        let mut resource = find_gateway(&resources, gateway)?.clone();
        let now = now_seconds();
        let mut synced = Vec::new();
        for id in target_ids {
            find_target(&resource, id)?;
            if let Some(target) = resource.targets.get_mut(id) {
                target.last_synchronized_at = Some(now);
                synced.push(target.clone());
            }
        }
        let resource = self.commit_gateway(&mut resources, resource).await?;
        Ok((resource, synced))
    }

    /// Builds `gateway` as changed, persists it, then swaps it in.
    async fn commit_gateway(
        &self,
        resources: &mut Resources,
        gateway: GatewayResource,
    ) -> Result<GatewayResource, ControlError> {
        let built = self.build(&gateway, resources).await?;
        let mut next = resources.clone();
        next.gateways
            .insert(gateway.gateway_id.clone(), gateway.clone());
        self.commit(resources, next)?;
        self.live.write().insert(gateway.gateway_id.clone(), built);
        tracing::info!(
            gateway = %gateway.gateway_id,
            targets = gateway.targets.len(),
            "gateway applied"
        );
        Ok(gateway)
    }

    /// Starts `gateway`: its targets, its catalogue, its policy engine.
    pub(crate) async fn build(
        &self,
        gateway: &GatewayResource,
        resources: &Resources,
    ) -> Result<LiveGateway, ControlError> {
        let config = gateway_config(gateway).await?;
        if !self.control.allow_host_targets {
            refuse_host_access(&config)?;
        }
        let running = Gateway::new(config, self.options.clone())
            .await
            .map_err(ControlError::Gateway)?;
        if let Some(attachment) = &gateway.policy_engine_configuration {
            let engine = self.policy_engine_for(attachment, resources, &running)?;
            running.attach_policy_engine(Arc::new(engine));
        }
        let router = corral_gateway::router(running.clone(), self.control.http.clone())
            .map_err(ControlError::Gateway)?;
        Ok(LiveGateway {
            gateway: running,
            router,
        })
    }

    /// The engine `attachment` names, built for `gateway`'s catalogue.
    pub(crate) fn policy_engine_for(
        &self,
        attachment: &PolicyEngineAttachment,
        resources: &Resources,
        gateway: &Gateway,
    ) -> Result<PolicyEngine, ControlError> {
        let id = id_of(&attachment.arn, "policy-engine");
        let engine = resources.policy_engines.get(id).ok_or_else(|| {
            ControlError::Validation(format!(
                "policyEngineConfiguration.arn {} names no policy engine",
                attachment.arn
            ))
        })?;
        let bundle = crate::policies::bundle(engine, engine.policies.values())?;
        Ok(gateway.build_policy_engine(bundle, attachment.mode)?)
    }
}

/// The gateway resource `identifier` (id or ARN) names.
pub(crate) fn find_gateway<'a>(
    resources: &'a Resources,
    identifier: &str,
) -> Result<&'a GatewayResource, ControlError> {
    resources
        .gateways
        .get(id_of(identifier, "gateway"))
        .ok_or_else(|| ControlError::NotFound(format!("gateway {identifier} not found")))
}

fn find_target<'a>(
    gateway: &'a GatewayResource,
    target_id: &str,
) -> Result<&'a TargetResource, ControlError> {
    gateway.targets.get(target_id).ok_or_else(|| {
        ControlError::NotFound(format!(
            "gateway {} has no target {target_id}",
            gateway.gateway_id
        ))
    })
}

fn apply_gateway_input(
    gateway: &mut GatewayResource,
    input: GatewayInput,
) -> Result<(), ControlError> {
    if let Some(name) = input.name {
        gateway.name = name;
    }
    if let Some(protocol) = input.protocol_type {
        if protocol != "MCP" {
            return Err(ControlError::Validation(format!(
                "protocolType {protocol} is not supported (MCP)"
            )));
        }
        gateway.protocol_type = protocol;
    }
    if let Some(authorizer) = input.authorizer_type {
        match authorizer.as_str() {
            "NONE" | "CUSTOM_JWT" => gateway.authorizer_type = authorizer,
            other => {
                return Err(ControlError::Validation(format!(
                    "authorizerType {other} is not supported by Corral (NONE, CUSTOM_JWT)"
                )));
            }
        }
    }
    gateway.description = input.description.or(gateway.description.take());
    gateway.role_arn = input.role_arn.or(gateway.role_arn.take());
    gateway.protocol_configuration = input
        .protocol_configuration
        .or(gateway.protocol_configuration.take());
    gateway.authorizer_configuration = input
        .authorizer_configuration
        .or(gateway.authorizer_configuration.take());
    gateway.policy_engine_configuration = input
        .policy_engine_configuration
        .or(gateway.policy_engine_configuration.take());
    if gateway.authorizer_type == "CUSTOM_JWT"
        && gateway
            .authorizer_configuration
            .as_ref()
            .and_then(|c| c.pointer("/customJWTAuthorizer/discoveryUrl"))
            .is_none()
    {
        return Err(ControlError::Validation(
            "CUSTOM_JWT needs authorizerConfiguration.customJWTAuthorizer.discoveryUrl".into(),
        ));
    }
    Ok(())
}

fn apply_target_input(target: &mut TargetResource, input: TargetInput) -> Result<(), ControlError> {
    if let Some(name) = input.name {
        if !valid_name(&name, 100) {
            return Err(ControlError::Validation(format!(
                "name '{name}' must match ([0-9a-zA-Z][-]?){{1,100}}"
            )));
        }
        target.name = name;
    }
    if let Some(description) = input.description {
        target.description = Some(description);
    }
    if let Some(configuration) = input.target_configuration {
        target.target_configuration = configuration;
    }
    if let Some(credentials) = input.credential_provider_configurations {
        target.credential_provider_configurations = credentials;
    }
    if target.target_configuration.is_null() {
        return Err(ControlError::Validation(
            "targetConfiguration is required".into(),
        ));
    }
    Ok(())
}

/// Refuses targets that would reach into this host (see
/// [`crate::ControlOptions::allow_host_targets`]).
fn refuse_host_access(config: &GatewayConfig) -> Result<(), ControlError> {
    use corral_gateway::config::{ApiSchemaConfiguration, McpTargetConfiguration};
    for target in &config.targets {
        let refused = match &target.target_configuration.mcp {
            Some(McpTargetConfiguration::OpenApiSchema(ApiSchemaConfiguration::Path(_))) => {
                Some("an OpenAPI document read from a file of this host")
            }
            Some(McpTargetConfiguration::Lambda(_)) => {
                Some("a Lambda function called with this server's AWS credentials")
            }
            Some(McpTargetConfiguration::McpServer(server)) if server.command.is_some() => {
                Some("a stdio MCP server run as a command on this host")
            }
            Some(McpTargetConfiguration::Wasm(wasm))
                if wasm.path.is_some() || wasm.memory_mib.is_some() || wasm.cpu_ms.is_some() =>
            {
                Some(
                    "a WASM tool from a file of this host or with its own limits (built-in tools are allowed)",
                )
            }
            _ => None,
        };
        if let Some(what) = refused {
            return Err(ControlError::Validation(format!(
                "target {}: {what} is not allowed through the API on this server \
                 (start corral serve with --allow-host-gateway-targets to allow it)",
                target.name
            )));
        }
    }
    Ok(())
}

/// The gateway's configuration in the shape `corral gateway` files use.
async fn gateway_config(gateway: &GatewayResource) -> Result<GatewayConfig, ControlError> {
    let targets: Vec<Value> = gateway
        .targets
        .values()
        .map(|t| {
            let mut target = json!({
                "name": t.name,
                "targetConfiguration": t.target_configuration,
                "credentialProviderConfigurations": t.credential_provider_configurations,
            });
            if let Some(description) = &t.description {
                target["description"] = json!(description);
            }
            target
        })
        .collect();
    let mut config = json!({
        "name": gateway.name,
        "gatewayId": gateway.gateway_arn,
        "authorizerType": gateway.authorizer_type,
        "targets": targets,
    });
    if let Some(description) = &gateway.description {
        config["description"] = json!(description);
    }
    if let Some(protocol) = &gateway.protocol_configuration {
        config["protocolConfiguration"] = protocol.clone();
    }
    if let Some(jwt) = gateway
        .authorizer_configuration
        .as_ref()
        .and_then(|c| c.get("customJWTAuthorizer"))
    {
        config["inboundAuth"] = json!({ "jwt": jwt_config(jwt).await? });
    }
    serde_json::from_value(config).map_err(|e| ControlError::Validation(format!("{e}")))
}

/// Largest OpenID discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// Corral's JWT settings for AgentCore's `customJWTAuthorizer`: the issuer
/// and key set come from its OpenID discovery document, fetched once per
/// gateway start — over https (http only to this machine), without
/// following redirects, at most 256 KiB.
async fn jwt_config(authorizer: &Value) -> Result<Value, ControlError> {
    let invalid = |m: String| ControlError::Validation(format!("customJWTAuthorizer: {m}"));
    let url = authorizer
        .get("discoveryUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("discoveryUrl is required".into()))?;
    for unsupported in ["allowedScopes", "customClaims"] {
        if authorizer
            .get(unsupported)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            // Dropping them would accept tokens the caller meant to refuse.
            return Err(invalid(format!("{unsupported} is not supported by Corral")));
        }
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| invalid(format!("discoveryUrl {url}: {e}")))?;
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if !(parsed.scheme() == "https" || (parsed.scheme() == "http" && local)) {
        return Err(invalid(format!(
            "discoveryUrl {url} must be https (http only to this machine)"
        )));
    }
    if !(parsed.path().ends_with("/.well-known/openid-configuration")
        || parsed
            .path()
            .ends_with("/.well-known/oauth-authorization-server"))
    {
        return Err(invalid(format!(
            "discoveryUrl {url} must end in /.well-known/openid-configuration"
        )));
    }
    let unreachable = |e: reqwest::Error| invalid(format!("cannot read {url}: {e}"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(unreachable)?;
    let mut response = client
        .get(parsed)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unreachable)?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_DISCOVERY_BYTES {
            return Err(invalid(format!(
                "the discovery document at {url} is over {MAX_DISCOVERY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let discovery: Value = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("the discovery document at {url} is not JSON: {e}")))?;
    let field = |name: &str| {
        discovery
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("the discovery document at {url} has no {name}")))
    };
    let list = |name: &str| authorizer.get(name).cloned().unwrap_or_else(|| json!([]));
    Ok(json!({
        "jwksUrl": field("jwks_uri")?,
        "issuer": field("issuer")?,
        "allowedAudience": list("allowedAudience"),
        "allowedClients": list("allowedClients"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_agentcores_pattern() {
        for good in ["orders", "orders-gw", "a1-b2-c3", "X"] {
            assert!(valid_name(good, 48), "{good}");
        }
        for bad in ["", "-orders", "orders--gw", "orders_gw", "with space"] {
            assert!(!valid_name(bad, 48), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(49), 48));
    }
}
