//! Policy engines and their Cedar policies: create, read, update, delete,
//! validated against the catalogue of every gateway the engine decides for
//! and applied to those gateways on their next call.

use std::collections::HashMap;
use std::sync::Arc;

use corral_policy::{PolicyBundle, PolicyEngine, PolicyStatus, ValidationMode};
use serde::Deserialize;
use serde_json::Value;

use crate::ControlPlane;
use crate::error::ControlError;
use crate::resources::{
    PolicyEngineResource, PolicyResource, Resources, id_of, now_seconds, random_suffix,
};

/// `CreatePolicyEngine` / `UpdatePolicyEngine` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEngineInput {
    /// Name, `[A-Za-z][A-Za-z0-9_]*`, at most 48.
    #[serde(default)]
    pub name: Option<String>,
    /// Description (`UpdatePolicyEngine` wraps it as `{"optionalValue": …}`).
    #[serde(default)]
    pub description: Option<Value>,
    /// Idempotency token: a create retried with it returns the first result.
    #[serde(default)]
    pub client_token: Option<String>,
}

/// `CreatePolicy` / `UpdatePolicy` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyInput {
    /// Name, `[A-Za-z][A-Za-z0-9_]*`, at most 48.
    #[serde(default)]
    pub name: Option<String>,
    /// `{"cedar": {"statement": …}}` (or `{"policy": {"statement": …}}`).
    #[serde(default)]
    pub definition: Option<Value>,
    /// Description (`UpdatePolicy` wraps it as `{"optionalValue": …}`).
    #[serde(default)]
    pub description: Option<Value>,
    /// `FAIL_ON_ANY_FINDINGS` (default) or `IGNORE_ALL_FINDINGS`.
    #[serde(default)]
    pub validation_mode: Option<ValidationMode>,
    /// `ACTIVE` (default) or `LOG_ONLY`.
    #[serde(default)]
    pub enforcement_mode: Option<PolicyStatus>,
    /// Idempotency token: a create retried with it returns the first result.
    #[serde(default)]
    pub client_token: Option<String>,
}

use corral_api::valid_name;

/// A description given plainly or as `{"optionalValue": …}`.
fn description(value: Option<Value>) -> Option<Option<String>> {
    match value? {
        Value::String(s) => Some(Some(s)),
        Value::Object(o) => Some(
            o.get("optionalValue")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        _ => Some(None),
    }
}

/// The Cedar statement of a `definition`.
fn statement(definition: &Value) -> Result<String, ControlError> {
    definition
        .pointer("/cedar/statement")
        .or_else(|| definition.pointer("/policy/statement"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ControlError::Validation(
                "definition.cedar.statement is required (policy generation is not supported)"
                    .into(),
            )
        })
}

/// The bundle of `engine`'s `policies` (parsed; validation is the engine's).
pub(crate) fn bundle<'a>(
    engine: &PolicyEngineResource,
    policies: impl Iterator<Item = &'a PolicyResource>,
) -> Result<PolicyBundle, ControlError> {
    let mut bundle = PolicyBundle::new(engine.name.clone());
    for policy in policies {
        bundle.add_document(
            &policy.name,
            &policy.name,
            &policy.statement,
            policy.enforcement_mode,
            policy.validation_mode,
        )?;
    }
    Ok(bundle)
}

impl ControlPlane {
    /// `CreatePolicyEngine`.
    pub async fn create_policy_engine(
        &self,
        input: PolicyEngineInput,
    ) -> Result<PolicyEngineResource, ControlError> {
        let name = input
            .name
            .ok_or_else(|| ControlError::Validation("name is required".into()))?;
        if !valid_name(&name) {
            return Err(ControlError::Validation(format!(
                "name '{name}' must match [A-Za-z][A-Za-z0-9_]{{0,47}}"
            )));
        }
        let mut resources = self.resources.lock().await;
        if let Some(done) = input.client_token.as_ref().and_then(|token| {
            resources
                .policy_engines
                .values()
                .find(|e| e.client_token.as_ref() == Some(token))
        }) {
            return Ok(done.clone());
        }
        if resources.policy_engines.values().any(|e| e.name == name) {
            return Err(ControlError::Conflict(format!(
                "a policy engine named {name} already exists"
            )));
        }
        let id = format!("{name}-{}", random_suffix());
        let now = now_seconds();
        let engine = PolicyEngineResource {
            policy_engine_arn: format!("{}:policy-engine/{id}", self.arn_prefix),
            policy_engine_id: id,
            name,
            description: description(input.description).flatten(),
            created_at: now,
            updated_at: now,
            policies: Default::default(),
            client_token: input.client_token.clone(),
        };
        let mut next = resources.clone();
        next.policy_engines
            .insert(engine.policy_engine_id.clone(), engine.clone());
        self.commit(&mut resources, next)?;
        Ok(engine)
    }

    /// `GetPolicyEngine`.
    pub async fn get_policy_engine(
        &self,
        identifier: &str,
    ) -> Result<PolicyEngineResource, ControlError> {
        find_engine(&self.current(), identifier).cloned()
    }

    /// Every policy engine, by id.
    pub async fn list_policy_engines(&self) -> Vec<PolicyEngineResource> {
        self.current().policy_engines.values().cloned().collect()
    }

    /// `UpdatePolicyEngine` (its description).
    pub async fn update_policy_engine(
        &self,
        identifier: &str,
        input: PolicyEngineInput,
    ) -> Result<PolicyEngineResource, ControlError> {
        let mut resources = self.resources.lock().await;
        let mut engine = find_engine(&resources, identifier)?.clone();
        if let Some(description) = description(input.description) {
            engine.description = description;
        }
        engine.updated_at = now_seconds();
        let mut next = resources.clone();
        next.policy_engines
            .insert(engine.policy_engine_id.clone(), engine.clone());
        self.commit(&mut resources, next)?;
        Ok(engine)
    }

    /// `DeletePolicyEngine`; refused while a gateway uses it.
    pub async fn delete_policy_engine(
        &self,
        identifier: &str,
    ) -> Result<PolicyEngineResource, ControlError> {
        let mut resources = self.resources.lock().await;
        let engine = find_engine(&resources, identifier)?.clone();
        if let Some(gateway) = resources.gateways.values().find(|g| {
            g.policy_engine_configuration
                .as_ref()
                .is_some_and(|a| id_of(&a.arn, "policy-engine") == engine.policy_engine_id)
        }) {
            return Err(ControlError::Conflict(format!(
                "policy engine {} is attached to gateway {}",
                engine.policy_engine_id, gateway.gateway_id
            )));
        }
        let mut next = resources.clone();
        next.policy_engines.remove(&engine.policy_engine_id);
        self.commit(&mut resources, next)?;
        Ok(engine)
    }

    /// `CreatePolicy`: parsed, validated against the catalogue of every
    /// gateway the engine is attached to, then in force on their next call.
    pub async fn create_policy(
        &self,
        engine: &str,
        input: PolicyInput,
    ) -> Result<PolicyResource, ControlError> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| ControlError::Validation("name is required".into()))?;
        if !valid_name(&name) {
            return Err(ControlError::Validation(format!(
                "name '{name}' must match [A-Za-z][A-Za-z0-9_]{{0,47}}"
            )));
        }
        let definition = input
            .definition
            .as_ref()
            .ok_or_else(|| ControlError::Validation("definition is required".into()))?;
        let mut resources = self.resources.lock().await;
        let mut resource = find_engine(&resources, engine)?.clone();
        if let Some(done) = input.client_token.as_ref().and_then(|token| {
            resource
                .policies
                .values()
                .find(|p| p.client_token.as_ref() == Some(token))
        }) {
            return Ok(done.clone());
        }
        if resource.policies.values().any(|p| p.name == name) {
            return Err(ControlError::Conflict(format!(
                "policy engine {} already has a policy named {name}",
                resource.policy_engine_id
            )));
        }
        let id = format!("{name}-{}", random_suffix());
        let now = now_seconds();
        let policy = PolicyResource {
            policy_arn: format!("{}/policy/{id}", resource.policy_engine_arn),
            policy_id: id,
            policy_engine_id: resource.policy_engine_id.clone(),
            name,
            description: description(input.description).flatten(),
            statement: statement(definition)?,
            enforcement_mode: input.enforcement_mode.unwrap_or_default(),
            validation_mode: input.validation_mode.unwrap_or_default(),
            created_at: now,
            updated_at: now,
            client_token: input.client_token.clone(),
        };
        resource
            .policies
            .insert(policy.policy_id.clone(), policy.clone());
        resource.updated_at = now;
        self.commit_engine(&mut resources, resource).await?;
        Ok(policy)
    }

    /// `UpdatePolicy`: a new statement, description or mode, validated and
    /// applied as [`ControlPlane::create_policy`] is.
    pub async fn update_policy(
        &self,
        engine: &str,
        policy_id: &str,
        input: PolicyInput,
    ) -> Result<PolicyResource, ControlError> {
        let mut resources = self.resources.lock().await;
        let mut resource = find_engine(&resources, engine)?.clone();
        let mut policy = find_policy(&resource, policy_id)?.clone();
        if let Some(definition) = &input.definition {
            policy.statement = statement(definition)?;
        }
        if let Some(description) = description(input.description) {
            policy.description = description;
        }
        if let Some(mode) = input.enforcement_mode {
            policy.enforcement_mode = mode;
        }
        if let Some(mode) = input.validation_mode {
            policy.validation_mode = mode;
        }
        policy.updated_at = now_seconds();
        resource
            .policies
            .insert(policy.policy_id.clone(), policy.clone());
        resource.updated_at = policy.updated_at;
        self.commit_engine(&mut resources, resource).await?;
        Ok(policy)
    }

    /// `GetPolicy`.
    pub async fn get_policy(
        &self,
        engine: &str,
        policy_id: &str,
    ) -> Result<PolicyResource, ControlError> {
        let resources = self.current();
        find_policy(find_engine(&resources, engine)?, policy_id).cloned()
    }

    /// The policies of an engine, by id.
    pub async fn list_policies(&self, engine: &str) -> Result<Vec<PolicyResource>, ControlError> {
        let resources = self.current();
        Ok(find_engine(&resources, engine)?
            .policies
            .values()
            .cloned()
            .collect())
    }

    /// `DeletePolicy`: out of force on the gateways' next call.
    pub async fn delete_policy(
        &self,
        engine: &str,
        policy_id: &str,
    ) -> Result<PolicyResource, ControlError> {
        let mut resources = self.resources.lock().await;
        let mut resource = find_engine(&resources, engine)?.clone();
        let policy = find_policy(&resource, policy_id)?.clone();
        resource.policies.remove(&policy.policy_id);
        resource.updated_at = now_seconds();
        self.commit_engine(&mut resources, resource).await?;
        Ok(policy)
    }

    /// Validates `engine` as changed against every gateway it is attached
    /// to, persists it, then attaches the new policies to those gateways.
    async fn commit_engine(
        &self,
        resources: &mut Resources,
        engine: PolicyEngineResource,
    ) -> Result<(), ControlError> {
        // Parse errors surface even when no gateway uses the engine yet.
        bundle(&engine, engine.policies.values())?;
        let mut next = resources.clone();
        next.policy_engines
            .insert(engine.policy_engine_id.clone(), engine.clone());
        let mut rebuilt: HashMap<String, PolicyEngine> = HashMap::new();
        for gateway in next.gateways.values() {
            let Some(attachment) = &gateway.policy_engine_configuration else {
                continue;
            };
            if id_of(&attachment.arn, "policy-engine") != engine.policy_engine_id {
                continue;
            }
            let Some(running) = self.gateway(&gateway.gateway_id) else {
                continue;
            };
            let built = self.policy_engine_for(attachment, &next, &running)?;
            rebuilt.insert(gateway.gateway_id.clone(), built);
        }
        self.commit(resources, next)?;
        for (gateway_id, built) in rebuilt {
            if let Some(running) = self.gateway(&gateway_id) {
                running.attach_policy_engine(Arc::new(built));
                tracing::info!(gateway = %gateway_id, engine = %engine.policy_engine_id, "policies applied");
            }
        }
        Ok(())
    }
}

fn find_engine<'a>(
    resources: &'a Resources,
    identifier: &str,
) -> Result<&'a PolicyEngineResource, ControlError> {
    resources
        .policy_engines
        .get(id_of(identifier, "policy-engine"))
        .ok_or_else(|| ControlError::NotFound(format!("policy engine {identifier} not found")))
}

fn find_policy<'a>(
    engine: &'a PolicyEngineResource,
    policy_id: &str,
) -> Result<&'a PolicyResource, ControlError> {
    engine.policies.get(policy_id).ok_or_else(|| {
        ControlError::NotFound(format!(
            "policy engine {} has no policy {policy_id}",
            engine.policy_engine_id
        ))
    })
}
