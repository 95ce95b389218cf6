//! The policy engine: Cedar policies validated against the gateway's
//! generated schema, deciding every tool call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityUid, PolicySet, Request,
    RestrictedExpression, ValidationMode as CedarValidationMode, Validator,
};
use chrono::{DateTime, Datelike, Timelike, Utc};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditRecord, AuditSink};
use crate::diagnostics::render;
use crate::error::PolicyError;
use crate::hook::{AuthorizationRequest, Effect, PolicyDecision, PolicyHook, Principal};
use crate::index::{Outcome, PolicyIndex};
use crate::schema::{ActionInfo, CatalogSchema, NAMESPACE, ToolSignature, type_name};
use crate::source::{PolicyBundle, PolicyDefinition, PolicyStatus, ValidationMode};

/// How an attached engine's decisions are applied (AgentCore's gateway `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EngineMode {
    /// Denials refuse the call.
    #[default]
    Enforce,
    /// Every call proceeds; decisions are only recorded.
    LogOnly,
}

impl EngineMode {
    /// AgentCore's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineMode::Enforce => "ENFORCE",
            EngineMode::LogOnly => "LOG_ONLY",
        }
    }
}

/// A policy that failed validation against the current schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidPolicy {
    /// Policy id.
    pub id: String,
    /// Whether it is a `forbid`.
    pub forbid: bool,
    /// Cedar's diagnostics (`file:line:col: message`).
    pub diagnostics: Vec<String>,
}

/// The result of validating the engine's policies against a catalogue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ValidationReport {
    /// Policies rejected by validation (FAIL_ON_ANY_FINDINGS).
    pub invalid: Vec<InvalidPolicy>,
    /// Findings on policies kept anyway (IGNORE_ALL_FINDINGS).
    pub ignored_findings: Vec<String>,
    /// Tools whose input the schema generator could not type, with why.
    pub untyped_tools: Vec<String>,
}

impl ValidationReport {
    /// Every diagnostic of the rejected policies.
    pub fn diagnostics(&self) -> Vec<String> {
        self.invalid
            .iter()
            .flat_map(|p| p.diagnostics.clone())
            .collect()
    }
}

/// A decision with everything the audit log and `corral policy test` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// The decision the gateway applies.
    pub decision: PolicyDecision,
    /// The decision had LOG_ONLY policies been active, when that differs.
    pub log_only_decision: Option<Effect>,
    /// LOG_ONLY policies that would have determined it.
    pub log_only_policies: Vec<String>,
    /// Evaluation errors.
    pub errors: Vec<String>,
    /// The Cedar request, for the audit log.
    pub request: Value,
    /// Evaluation time in microseconds.
    pub micros: f64,
}

struct EngineState {
    catalog: Arc<CatalogSchema>,
    active: PolicyIndex,
    log_only: PolicyIndex,
    /// Set when a catalogue change invalidated a `forbid`: every call is
    /// denied until the policies are fixed (dropping a forbid would widen access).
    fail_closed: Option<String>,
    report: ValidationReport,
    list_cache: Mutex<HashMap<(String, String), bool>>,
}

const LIST_CACHE_LIMIT: usize = 65_536;

/// Cedar policies deciding tool calls for one gateway.
pub struct PolicyEngine {
    name: String,
    mode: EngineMode,
    bundle: PolicyBundle,
    authorizer: Authorizer,
    state: RwLock<Arc<EngineState>>,
    audit: Vec<Arc<dyn AuditSink>>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("policies", &self.bundle.policies.len())
            .finish()
    }
}

impl PolicyEngine {
    /// Builds an engine for `tools`; any policy that fails validation (in
    /// FAIL_ON_ANY_FINDINGS mode) rejects the whole load with Cedar's diagnostics.
    pub fn new(
        bundle: PolicyBundle,
        mode: EngineMode,
        tools: &[ToolSignature],
    ) -> Result<Self, PolicyError> {
        Self::awaiting(bundle, mode, tools, &[])
    }

    /// [`PolicyEngine::new`] for a catalogue still missing the tools whose
    /// names start with one of `pending_prefixes` (the tools of upstreams
    /// not reached yet). A policy that fails validation and names such a
    /// tool waits: a permit applies,
    /// and a forbid stops failing closed, once their tools arrive
    /// ([`PolicyEngine::update_tools`]). Any other invalid policy still
    /// rejects the load.
    pub fn awaiting(
        bundle: PolicyBundle,
        mode: EngineMode,
        tools: &[ToolSignature],
        pending_prefixes: &[String],
    ) -> Result<Self, PolicyError> {
        let catalog = Arc::new(CatalogSchema::generate(tools)?);
        let (state, report) = build_state(&bundle, catalog);
        let waits = |policy: &InvalidPolicy| {
            bundle
                .get(&policy.id)
                .and_then(|p| crate::index::action_scope(&p.policy.action_constraint()))
                .is_some_and(|actions| {
                    actions
                        .iter()
                        .any(|a| pending_prefixes.iter().any(|p| a.starts_with(p.as_str())))
                })
        };
        let (waiting, blocking): (Vec<&InvalidPolicy>, Vec<&InvalidPolicy>) =
            report.invalid.iter().partition(|p| waits(p));
        if !blocking.is_empty() {
            return Err(PolicyError::Invalid {
                diagnostics: blocking
                    .iter()
                    .flat_map(|p| p.diagnostics.iter().cloned())
                    .collect(),
            });
        }
        if !waiting.is_empty() {
            tracing::warn!(
                engine = %bundle.name,
                waiting = ?waiting.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
                ?pending_prefixes,
                "policies wait for the tools of targets not reached yet (forbids fail closed meanwhile)"
            );
        }
        Ok(Self {
            name: bundle.name.clone(),
            mode,
            bundle,
            authorizer: Authorizer::new(),
            state: RwLock::new(Arc::new(state)),
            audit: Vec::new(),
        })
    }

    /// Adds an audit sink.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit.push(sink);
        self
    }

    /// Engine name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// ENFORCE or LOG_ONLY.
    pub fn mode(&self) -> EngineMode {
        self.mode
    }

    /// The policies.
    pub fn bundle(&self) -> &PolicyBundle {
        &self.bundle
    }

    /// The current Cedar schema in human-readable form.
    pub fn schema_text(&self) -> String {
        self.state.read().catalog.text.clone()
    }

    /// The last validation report.
    pub fn report(&self) -> ValidationReport {
        self.state.read().report.clone()
    }

    /// Re-generates the schema for a changed catalogue and re-validates every
    /// policy. Permits that no longer validate stop applying; if a forbid no
    /// longer validates, every call is denied until the policies are fixed.
    pub fn update_tools(&self, tools: &[ToolSignature]) -> Result<ValidationReport, PolicyError> {
        let catalog = Arc::new(CatalogSchema::generate(tools)?);
        let (state, report) = build_state(&self.bundle, catalog);
        if !report.invalid.is_empty() {
            tracing::warn!(
                engine = %self.name,
                invalid = ?report.invalid.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
                fail_closed = state.fail_closed.is_some(),
                "policies no longer validate against the changed tool catalogue"
            );
        }
        *self.state.write() = Arc::new(state);
        Ok(report)
    }

    /// Decides one call and returns the full evaluation.
    pub fn evaluate(&self, request: &AuthorizationRequest) -> Evaluation {
        self.evaluate_with(request, true)
    }

    fn evaluate_with(&self, request: &AuthorizationRequest, describe: bool) -> Evaluation {
        let started = Instant::now();
        let state = self.state.read().clone();
        let enforced = self.mode == EngineMode::Enforce;
        let deny = |reason: String, policy_ids: Vec<String>| PolicyDecision {
            effect: Effect::Deny,
            enforced,
            policy_ids,
            reason,
        };
        let cedar_request = if describe {
            describe_request(request)
        } else {
            Value::Null
        };
        let prepared = match state.catalog.actions.get(&request.tool) {
            None => Err(format!("tool {} is not in the policy schema", request.tool)),
            Some(action) => prepare(request, action),
        };
        let mut evaluation = match (&state.fail_closed, prepared) {
            (Some(reason), _) => Evaluation {
                decision: deny(reason.clone(), Vec::new()),
                log_only_decision: None,
                log_only_policies: Vec::new(),
                errors: vec![reason.clone()],
                request: cedar_request,
                micros: 0.0,
            },
            (None, Err(error)) => Evaluation {
                decision: deny(
                    format!("the request cannot be evaluated: {error}"),
                    Vec::new(),
                ),
                log_only_decision: None,
                log_only_policies: Vec::new(),
                errors: vec![error],
                request: cedar_request,
                micros: 0.0,
            },
            (None, Ok(prepared)) => {
                let outcome = state.active.evaluate(
                    &request.tool,
                    &prepared.principal,
                    &prepared.request,
                    &prepared.entities,
                );
                let decision = decide(&outcome, enforced);
                let mut errors = outcome.errors.clone();
                let (log_only_decision, log_only_policies) = if state.log_only.is_empty() {
                    (None, Vec::new())
                } else {
                    let shadow = state.log_only.evaluate(
                        &request.tool,
                        &prepared.principal,
                        &prepared.request,
                        &prepared.entities,
                    );
                    errors.extend(shadow.errors.iter().cloned());
                    let ids: Vec<String> = shadow
                        .forbids
                        .iter()
                        .chain(&shadow.permits)
                        .cloned()
                        .collect();
                    let mut combined = outcome.clone();
                    combined.merge(shadow);
                    let would_be = if combined.allowed() {
                        Effect::Allow
                    } else {
                        Effect::Deny
                    };
                    ((would_be != decision.effect).then_some(would_be), ids)
                };
                Evaluation {
                    decision,
                    log_only_decision,
                    log_only_policies,
                    errors,
                    request: cedar_request,
                    micros: 0.0,
                }
            }
        };
        evaluation.micros = started.elapsed().as_secs_f64() * 1e6;
        evaluation
    }

    fn record(&self, evaluation: &Evaluation, request: &AuthorizationRequest) {
        let decision = &evaluation.decision;
        tracing::debug!(
            target: "corral::policy::audit",
            engine = %self.name,
            tool = %request.tool,
            decision = effect_name(decision.effect),
            enforced = decision.enforced,
            policies = ?decision.policy_ids,
            micros = evaluation.micros,
            "policy decision"
        );
        if self.audit.is_empty() {
            return;
        }
        let record = AuditRecord {
            time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            engine: self.name.clone(),
            mode: self.mode.as_str().to_string(),
            request: evaluation.request.clone(),
            decision: effect_name(decision.effect).to_string(),
            enforced: decision.enforced,
            determining_policies: decision.policy_ids.clone(),
            log_only_decision: evaluation
                .log_only_decision
                .map(|e| effect_name(e).to_string()),
            log_only_policies: evaluation.log_only_policies.clone(),
            errors: evaluation.errors.clone(),
            evaluation_micros: evaluation.micros,
        };
        for sink in &self.audit {
            sink.record(&record);
        }
    }

    fn listable(&self, principal: &Principal, tool: &str, gateway: &str) -> bool {
        if self.mode == EngineMode::LogOnly {
            return true;
        }
        let state = self.state.read().clone();
        if state.fail_closed.is_some() {
            return false;
        }
        let key = (
            format!(
                "{}\u{0}{}",
                gateway,
                serde_json::to_string(principal).unwrap_or_default()
            ),
            tool.to_string(),
        );
        if let Some(&known) = state.list_cache.lock().get(&key) {
            return known;
        }
        let visible = match state.catalog.actions.get(tool) {
            None => false,
            Some(action) => match partial_request(principal, gateway, action) {
                Ok((principal_uid, request, entities)) => state.active.may_permit(
                    &self.authorizer,
                    tool,
                    &principal_uid,
                    &request,
                    &entities,
                ),
                Err(_) => false,
            },
        };
        let mut cache = state.list_cache.lock();
        if cache.len() >= LIST_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, visible);
        visible
    }
}

impl PolicyHook for PolicyEngine {
    /// Decides one call. No span of its own: the caller records the
    /// decision (`policy.decision`, `policy.enforced`, `policy.ids`) on the
    /// span of the call it decides, as the gateway does — one span fewer
    /// per tool call. The audit sinks get the full evaluation.
    fn authorize(&self, request: &AuthorizationRequest) -> PolicyDecision {
        let evaluation = self.evaluate_with(request, !self.audit.is_empty());
        self.record(&evaluation, request);
        evaluation.decision
    }

    fn may_list(&self, principal: &Principal, tool: &str, gateway: &str) -> bool {
        self.listable(principal, tool, gateway)
    }
}

fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "ALLOW",
        Effect::Deny => "DENY",
    }
}

fn decide(outcome: &Outcome, enforced: bool) -> PolicyDecision {
    if !outcome.forbids.is_empty() {
        PolicyDecision {
            effect: Effect::Deny,
            enforced,
            reason: format!("forbidden by policy {}", outcome.forbids.join(", ")),
            policy_ids: outcome.forbids.clone(),
        }
    } else if !outcome.permits.is_empty() {
        PolicyDecision {
            effect: Effect::Allow,
            enforced,
            reason: format!("permitted by policy {}", outcome.permits.join(", ")),
            policy_ids: outcome.permits.clone(),
        }
    } else {
        PolicyDecision {
            effect: Effect::Deny,
            enforced,
            reason: "no policy permits this call".into(),
            policy_ids: Vec::new(),
        }
    }
}

fn build_state(
    bundle: &PolicyBundle,
    catalog: Arc<CatalogSchema>,
) -> (EngineState, ValidationReport) {
    let mut report = ValidationReport {
        untyped_tools: catalog
            .actions
            .iter()
            .filter_map(|(name, a)| {
                a.untyped_reason
                    .as_ref()
                    .map(|why| format!("{name}: {why}"))
            })
            .collect(),
        ..ValidationReport::default()
    };
    report.untyped_tools.sort();
    let validator = Validator::new(catalog.schema.clone());
    let mut set = PolicySet::new();
    for definition in &bundle.policies {
        let _ = set.add(definition.policy.clone());
    }
    let result = validator.validate(&set, CedarValidationMode::Strict);
    let mut findings: HashMap<String, Vec<String>> = HashMap::new();
    let by_id: HashMap<&str, &PolicyDefinition> =
        bundle.policies.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut note = |id: &str, diagnostic: &dyn miette::Diagnostic| {
        if let Some(definition) = by_id.get(id) {
            findings.entry(id.to_string()).or_default().push(render(
                &definition.source.file,
                &definition.source.text,
                diagnostic,
            ));
        }
    };
    for error in result.validation_errors() {
        note(error.policy_id().as_ref(), error);
    }
    for warning in result.validation_warnings() {
        note(warning.policy_id().as_ref(), warning);
    }
    let mut kept = Vec::new();
    let mut fail_closed = None;
    for definition in &bundle.policies {
        match findings.remove(&definition.id) {
            Some(mut diagnostics)
                if definition.validation_mode == ValidationMode::FailOnAnyFindings =>
            {
                diagnostics.sort();
                let forbid = definition.policy.effect() == cedar_policy::Effect::Forbid;
                if forbid && definition.status == PolicyStatus::Active {
                    fail_closed = Some(format!(
                        "forbid policy {} no longer validates against the tool catalogue; all calls are denied until it is fixed",
                        definition.id
                    ));
                }
                report.invalid.push(InvalidPolicy {
                    id: definition.id.clone(),
                    forbid,
                    diagnostics,
                });
            }
            Some(diagnostics) => {
                report.ignored_findings.extend(diagnostics);
                kept.push(definition);
            }
            None => kept.push(definition),
        }
    }
    let active = PolicyIndex::build(
        kept.iter()
            .copied()
            .filter(|p| p.status == PolicyStatus::Active),
    );
    let log_only = PolicyIndex::build(
        kept.iter()
            .copied()
            .filter(|p| p.status == PolicyStatus::LogOnly),
    );
    (
        EngineState {
            catalog,
            active,
            log_only,
            fail_closed,
            report: report.clone(),
            list_cache: Mutex::new(HashMap::new()),
        },
        report,
    )
}

struct Prepared {
    principal: EntityUid,
    request: Request,
    entities: Entities,
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name(ty), EntityId::new(id))
}

/// The principal as a Cedar entity: `OAuthUser` with its JWT claims as
/// tags (strings; other JSON values as their JSON text), or `IamEntity`.
fn principal_entity(principal: &Principal) -> Result<Entity, String> {
    let (ty, id, tags): (&str, &str, Vec<(String, RestrictedExpression)>) = match principal {
        Principal::OAuthUser { id, claims } => (
            "OAuthUser",
            id,
            claims
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), RestrictedExpression::new_string(text))
                })
                .collect(),
        ),
        Principal::IamEntity { id } => ("IamEntity", id, Vec::new()),
    };
    Entity::new_with_tags(
        uid(ty, id),
        [(
            "id".to_string(),
            RestrictedExpression::new_string(id.to_string()),
        )],
        [],
        tags,
    )
    .map_err(|e| e.to_string())
}

fn base_entities(
    principal: &Principal,
    action: &ActionInfo,
) -> Result<(EntityUid, Entities), String> {
    // The gateway (resource) has no attributes or parents, so it needs no
    // entity: Cedar compares resource uids without one (and each entity
    // added costs microseconds per decision).
    let entity = principal_entity(principal)?;
    let principal_uid = entity.uid();
    let entities = action
        .entities
        .clone()
        .add_entities([entity], None)
        .map_err(|e| e.to_string())?;
    Ok((principal_uid, entities))
}

fn prepare(request: &AuthorizationRequest, action: &ActionInfo) -> Result<Prepared, String> {
    let (principal, entities) = base_entities(&request.principal, action)?;
    let input = action.input.convert(&request.input)?;
    let context = Context::from_pairs([
        ("input".to_string(), input),
        ("corral".to_string(), corral_record(request)?),
    ])
    .map_err(|e| e.to_string())?;
    let cedar_request = Request::new(
        principal.clone(),
        action.uid.clone(),
        uid("Gateway", &request.gateway),
        context,
        None,
    )
    .map_err(|e| e.to_string())?;
    Ok(Prepared {
        principal,
        request: cedar_request,
        entities,
    })
}

/// `context.corral`, typed as the schema's `CorralContext`.
fn corral_record(request: &AuthorizationRequest) -> Result<RestrictedExpression, String> {
    let now: DateTime<Utc> = request.context.time.unwrap_or_else(Utc::now);
    let c = &request.context;
    let mut fields = vec![
        (
            "epochSeconds".to_string(),
            RestrictedExpression::new_long(now.timestamp()),
        ),
        (
            "hour".to_string(),
            RestrictedExpression::new_long(i64::from(now.hour())),
        ),
        (
            "weekday".to_string(),
            RestrictedExpression::new_long(i64::from(now.weekday().number_from_monday())),
        ),
    ];
    let strings = [
        ("sessionId", &c.session_id),
        ("agent", &c.agent),
        ("actorId", &c.actor_id),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            fields.push((
                key.to_string(),
                RestrictedExpression::new_string(value.clone()),
            ));
        }
    }
    if let Some(step) = c.step {
        fields.push((
            "step".to_string(),
            RestrictedExpression::new_long(i64::from(step)),
        ));
    }
    RestrictedExpression::new_record(fields).map_err(|e| e.to_string())
}

fn partial_request(
    principal: &Principal,
    gateway: &str,
    action: &ActionInfo,
) -> Result<(EntityUid, Request, Entities), String> {
    let (principal_uid, entities) = base_entities(principal, action)?;
    let context = Context::from_pairs([
        (
            "input".to_string(),
            RestrictedExpression::new_unknown("input"),
        ),
        (
            "corral".to_string(),
            RestrictedExpression::new_unknown("corral"),
        ),
    ])
    .map_err(|e| e.to_string())?;
    let request = Request::new(
        principal_uid.clone(),
        action.uid.clone(),
        uid("Gateway", gateway),
        context,
        None,
    )
    .map_err(|e| e.to_string())?;
    Ok((principal_uid, request, entities))
}

fn corral_context(request: &AuthorizationRequest) -> Value {
    let now: DateTime<Utc> = request.context.time.unwrap_or_else(Utc::now);
    let c = &request.context;
    let mut context = json!({
        "epochSeconds": now.timestamp(),
        "hour": now.hour(),
        "weekday": now.weekday().number_from_monday(),
    });
    for (key, value) in [
        ("sessionId", c.session_id.as_ref().map(|s| json!(s))),
        ("agent", c.agent.as_ref().map(|s| json!(s))),
        ("actorId", c.actor_id.as_ref().map(|s| json!(s))),
        ("step", c.step.map(|s| json!(s))),
    ] {
        if let Some(value) = value {
            context[key] = value;
        }
    }
    context
}

/// The request as Cedar sees it (entity uids as strings), for audit and tests.
fn describe_request(request: &AuthorizationRequest) -> Value {
    let principal = match &request.principal {
        Principal::OAuthUser { id, .. } => uid("OAuthUser", id),
        Principal::IamEntity { id } => uid("IamEntity", id),
    };
    json!({
        "principal": principal.to_string(),
        "action": format!("{NAMESPACE}::Action::{}", Value::String(request.tool.clone())),
        "resource": uid("Gateway", &request.gateway).to_string(),
        "context": {"input": request.input, "corral": corral_context(request)},
    })
}
