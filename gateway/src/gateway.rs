//! The gateway: targets, the merged catalogue, and the call path every tool
//! call takes (lookup → argument check → policy → concurrency limit →
//! target with timeout → response cap).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use corral_policy::{
    AllowAll, AuthorizationRequest, CallContext, Effect, EngineMode, FileAudit, PolicyBundle,
    PolicyEngine, PolicyHook, Principal, ToolSignature,
};
use corral_sandbox::{EngineConfig, SandboxEngine};
use corral_telemetry::{KeyValue, SpanHandle};
use parking_lot::RwLock;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::catalog::{Catalog, Page, ToolEntry, paginate};
use crate::config::{
    ApiSchemaConfiguration, GatewayConfig, LimitsConfig, McpTargetConfiguration, TargetSpec,
    ToolSchema,
};
use crate::credentials::{self, OutboundCredential};
use crate::error::{CallError, GatewayError};
use crate::http_client::HttpClients;
use crate::search::{SEARCH_DESCRIPTION, SEARCH_TOOL, ToolSearch, search_input_schema};
use crate::targets::lambda::{LambdaTarget, region_of_arn};
use crate::targets::mcp::{McpEndpoint, McpTarget};
use crate::targets::openapi::OpenApiTarget;
use crate::targets::wasm::{WasmTarget, default_limits};
use crate::targets::{Target, TargetCall, TargetKind};
use crate::tool::{ToolDef, ToolOutput};

/// Who is calling and in which context.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated principal.
    pub principal: Principal,
    /// Request id (generated when the caller has none).
    pub request_id: String,
    /// Corral context (session, agent, actor) for calls from sandboxed agents.
    pub context: CallContext,
}

impl Caller {
    /// A caller with a fresh request id.
    pub fn new(principal: Principal) -> Self {
        Self {
            principal,
            request_id: uuid::Uuid::new_v4().to_string(),
            context: CallContext::default(),
        }
    }
}

/// A listed tool, as clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedTool {
    /// Exposed name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Input JSON schema.
    pub input_schema: Value,
    /// Output JSON schema.
    pub output_schema: Option<Value>,
}

/// Things the embedding process shares with the gateway.
#[derive(Clone, Default)]
pub struct GatewayOptions {
    /// Sandbox engine for WASM tools; one configured for them
    /// ([`EngineConfig::for_tools`]) is created when absent.
    pub engine: Option<SandboxEngine>,
    /// AWS configuration for Lambda targets; loaded from the environment when absent.
    pub aws: Option<SdkConfig>,
    /// Directory relative paths in the configuration are resolved against.
    pub base_dir: PathBuf,
    /// In-process targets, by target name, served beside the configured
    /// ones (their tools are `<name>___<tool>`, under the same policy and
    /// limits).
    pub local_targets: Vec<(String, crate::targets::local::LocalTools)>,
    /// Embedder for semantic tool search (`searchType: SEMANTIC`); without
    /// one, search ranks by words alone (BM25).
    pub embedder: Option<Arc<dyn corral_memory::embed::Embedder>>,
}

struct TargetSlot {
    name: String,
    kind: TargetKind,
    target: Arc<dyn Target>,
    mcp: Option<Arc<McpTarget>>,
    permits: Arc<Semaphore>,
    limit: usize,
}

/// Corral's MCP gateway.
pub struct Gateway {
    config: GatewayConfig,
    base_dir: PathBuf,
    targets: Vec<TargetSlot>,
    catalog: RwLock<Arc<Catalog>>,
    policy: RwLock<Arc<dyn PolicyHook>>,
    policy_engine: RwLock<Option<Arc<PolicyEngine>>>,
    catalog_version: watch::Sender<u64>,
    search: Arc<ToolSearch>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("name", &self.config.name)
            .field("targets", &self.targets.len())
            .finish()
    }
}

impl Gateway {
    /// Loads every target of `config` and builds the catalogue. MCP servers
    /// that cannot be reached yet are retried in the background.
    pub async fn new(
        config: GatewayConfig,
        options: GatewayOptions,
    ) -> Result<Arc<Self>, GatewayError> {
        let timeout = Duration::from_millis(config.limits.call_timeout_ms.max(1));
        let http = HttpClients::new(timeout.min(Duration::from_secs(10)))
            .map_err(GatewayError::HttpClient)?;
        let mut engine = options.engine.clone();
        let mut aws = options.aws.clone();
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let mut targets = Vec::with_capacity(config.targets.len());
        let mut seen = std::collections::HashSet::new();
        for spec in &config.targets {
            if !seen.insert(spec.name.clone()) {
                return Err(GatewayError::Config(format!(
                    "duplicate target name '{}'",
                    spec.name
                )));
            }
            let (kind, target, mcp) = load_target(
                spec,
                &config,
                &options.base_dir,
                &http,
                &mut engine,
                &mut aws,
                timeout,
                &changes_tx,
            )
            .await?;
            let limit = spec
                .max_concurrent_calls
                .unwrap_or(config.limits.max_concurrent_calls_per_target)
                .max(1);
            targets.push(TargetSlot {
                name: spec.name.clone(),
                kind,
                target,
                mcp,
                permits: Arc::new(Semaphore::new(limit)),
                limit,
            });
        }
        for (name, tools) in options.local_targets {
            if !seen.insert(name.clone()) {
                return Err(GatewayError::Config(format!(
                    "duplicate target name '{name}'"
                )));
            }
            let limit = config.limits.max_concurrent_calls_per_target.max(1);
            targets.push(TargetSlot {
                name,
                kind: TargetKind::Local,
                target: Arc::new(tools),
                mcp: None,
                permits: Arc::new(Semaphore::new(limit)),
                limit,
            });
        }
        let (catalog_version, _) = watch::channel(0);
        let gateway = Arc::new(Self {
            config,
            base_dir: options.base_dir.clone(),
            targets,
            catalog: RwLock::new(Arc::new(Catalog::default())),
            policy: RwLock::new(Arc::new(AllowAll)),
            policy_engine: RwLock::new(None),
            catalog_version,
            search: Arc::new(ToolSearch::new(options.embedder.clone())),
        });
        for slot in &gateway.targets {
            if let Some(mcp) = &slot.mcp
                && let Err(error) = mcp.refresh().await
            {
                tracing::warn!(target = %slot.name, error = %error.for_logs(), "MCP target unavailable; retrying in the background");
                tokio::spawn(retry_mcp(
                    Arc::downgrade(&gateway),
                    mcp.clone(),
                    slot.name.clone(),
                ));
            }
        }
        gateway.rebuild().await?;
        if let Some(attachment) = gateway.config.policy_engine_configuration.clone() {
            let bundle = PolicyBundle::load_dir(&gateway.base_dir.join(&attachment.path))?;
            // Policies naming tools of upstreams not reached yet wait for them.
            let mut engine = gateway.build_policy_engine(bundle, attachment.mode)?;
            if let Some(log) = &attachment.audit_log {
                engine = engine.with_audit(Arc::new(FileAudit::open(&gateway.base_dir.join(log))?));
            }
            tracing::info!(
                gateway = %gateway.config.name,
                engine = %engine.name(),
                mode = engine.mode().as_str(),
                policies = engine.bundle().policies.len(),
                "policy engine attached"
            );
            gateway.attach_policy_engine(Arc::new(engine));
        }
        tokio::spawn(watch_changes(Arc::downgrade(&gateway), changes_rx));
        Ok(gateway)
    }

    /// Loads a gateway from a configuration file.
    pub async fn from_file(
        path: &Path,
        mut options: GatewayOptions,
    ) -> Result<Arc<Self>, GatewayError> {
        let (config, base) = GatewayConfig::load(path)?;
        if options.base_dir.as_os_str().is_empty() {
            options.base_dir = base;
        }
        Self::new(config, options).await
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Directory relative configuration paths resolve against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The policy resource id (gateway id or name).
    pub fn id(&self) -> &str {
        self.config.resource_id()
    }

    /// Attaches a policy hook (replacing the allow-all default).
    pub fn set_policy(&self, hook: Arc<dyn PolicyHook>) {
        *self.policy.write() = hook;
    }

    /// Attaches a Cedar policy engine; it is re-validated now (the
    /// catalogue may have changed since it was built) and whenever the
    /// catalogue changes.
    pub fn attach_policy_engine(&self, engine: Arc<PolicyEngine>) {
        *self.policy_engine.write() = Some(engine.clone());
        self.set_policy(engine.clone());
        if let Err(error) = engine.update_tools(&self.tool_signatures()) {
            tracing::error!(gateway = %self.config.name, %error, "cannot re-validate policies");
        }
    }

    /// A policy engine for `bundle` over the current catalogue; policies
    /// naming tools of targets not reached yet wait for them
    /// ([`PolicyEngine::awaiting`]).
    pub fn build_policy_engine(
        &self,
        bundle: PolicyBundle,
        mode: EngineMode,
    ) -> Result<PolicyEngine, corral_policy::PolicyError> {
        let catalog = self.catalog();
        let signatures = signatures_of(&catalog);
        let pending: Vec<String> = catalog
            .unavailable()
            .iter()
            .map(|target| {
                format!(
                    "{}{}",
                    crate::naming::sanitize(target),
                    crate::naming::SEPARATOR
                )
            })
            .collect();
        PolicyEngine::awaiting(bundle, mode, &signatures, &pending)
    }

    /// The attached Cedar policy engine, if any.
    pub fn policy_engine(&self) -> Option<Arc<PolicyEngine>> {
        self.policy_engine.read().clone()
    }

    /// Targets whose tools are not in the catalogue yet: MCP servers not
    /// reached since the gateway started.
    pub fn unavailable_targets(&self) -> Vec<String> {
        self.catalog().unavailable().to_vec()
    }

    /// The catalogue as the policy engine types it: exposed names and input schemas.
    pub fn tool_signatures(&self) -> Vec<ToolSignature> {
        signatures_of(&self.catalog())
    }

    /// The current catalogue.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// Notified with a new version whenever the catalogue changes.
    pub fn subscribe_catalog(&self) -> watch::Receiver<u64> {
        self.catalog_version.subscribe()
    }

    /// Rebuilds the catalogue from every target's current tools.
    pub async fn rebuild(&self) -> Result<(), GatewayError> {
        let mut lists = Vec::with_capacity(self.targets.len());
        let mut unavailable = Vec::new();
        for slot in &self.targets {
            // Read before the tools: an upstream marks itself listed only
            // after storing them, so the snapshot never has a reached
            // target without its tools.
            if slot.mcp.as_ref().is_some_and(|mcp| !mcp.has_listed()) {
                unavailable.push(slot.name.clone());
            }
            let tools = slot.target.list_tools().await.unwrap_or_default();
            lists.push((slot.name.clone(), tools));
        }
        let version = self.catalog.read().version() + 1;
        let catalog = Catalog::build(&lists, version)?.with_unavailable(unavailable);
        tracing::info!(gateway = %self.config.name, tools = catalog.len(), version, "tool catalogue built");
        *self.catalog.write() = Arc::new(catalog);
        let engine = self.policy_engine.read().clone();
        if let Some(engine) = engine {
            match engine.update_tools(&self.tool_signatures()) {
                Ok(report) if !report.invalid.is_empty() => tracing::warn!(
                    gateway = %self.config.name,
                    diagnostics = ?report.diagnostics(),
                    "policies invalidated by the catalogue change"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(gateway = %self.config.name, %error, "cannot re-validate policies")
                }
            }
        }
        self.catalog_version.send_replace(version);
        self.warm_search();
        Ok(())
    }

    /// Embeds a new catalogue's tools in the background, so the first
    /// search after a change does not wait for them.
    fn warm_search(&self) {
        if !self.config.search_enabled() || !self.search.is_semantic() {
            return;
        }
        let catalog = self.catalog();
        let search = self.search.clone();
        let gateway = self.config.name.clone();
        tokio::spawn(async move {
            if let Err(error) = search.warm_catalog(&catalog).await {
                tracing::warn!(%gateway, %error, "cannot embed the tool catalogue for search");
            }
        });
    }

    /// Embeds the current catalogue for semantic search now (it is also
    /// done in the background after every change); searches before it
    /// completes rank by words. For hosts that want search ready first.
    pub async fn prepare_search(&self) -> Result<(), corral_memory::embed::EmbedError> {
        if !self.config.search_enabled() {
            return Ok(());
        }
        self.search.warm_catalog(&self.catalog()).await
    }

    /// Every tool the caller may see, the search tool first when enabled.
    pub fn visible_tools(&self, principal: &Principal) -> Vec<ListedTool> {
        let catalog = self.catalog();
        let policy = self.policy.read().clone();
        let mut tools = Vec::with_capacity(catalog.len() + 1);
        if self.config.search_enabled() {
            tools.push(ListedTool {
                name: SEARCH_TOOL.to_string(),
                description: SEARCH_DESCRIPTION.to_string(),
                input_schema: search_input_schema(),
                output_schema: None,
            });
        }
        tools.extend(
            catalog
                .entries()
                .iter()
                .filter(|e| policy.may_list(principal, &e.exposed_name, self.id()))
                .map(listed),
        );
        tools
    }

    /// One page of the caller's tools.
    pub fn list_tools(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
    ) -> Result<Page<ListedTool>, CallError> {
        paginate(
            &self.visible_tools(principal),
            cursor,
            self.config.limits.page_size,
        )
    }

    /// Runs a tool call through policy, limits and its target, under its
    /// own `gateway.tool_call` span.
    pub async fn call_tool(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Value,
    ) -> Result<ToolOutput, CallError> {
        let span = tracing::info_span!("gateway.tool_call", gen_ai.tool.name = name);
        corral_telemetry::in_span(&span, self.call_tool_in(caller, name, arguments, &span)).await
    }

    /// Runs a tool call as [`Gateway::call_tool`] does, recording the
    /// gateway's attributes (`gateway`, `target.kind`, `policy.*`,
    /// `outcome`, `duration_ms`) on `span`, the caller's span for this one
    /// call (the agent's `execute_tool`, a [`corral_telemetry::DirectSpan`];
    /// the MCP server's `tools/call`), which must be current (entered, or
    /// the direct span's scope): one span fewer per call. The policy
    /// decision and the target's call are its children.
    pub async fn call_tool_in(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Value,
        span: &impl SpanHandle,
    ) -> Result<ToolOutput, CallError> {
        let started = Instant::now();
        // Gathered here and set on the span at once: one registry look-up
        // per call instead of one per attribute.
        let mut attributes = Vec::with_capacity(7);
        let result = self
            .run_call(caller, name, arguments, &mut attributes)
            .await;
        let outcome = match &result {
            Ok(output) if output.is_error => "tool_error",
            Ok(_) => "ok",
            Err(error) => {
                // Callers see the client-safe text; the cause stays here.
                if let Some(detail) = error.detail() {
                    // On the current span: `span`.
                    tracing::warn!(tool = %name, error = %error, %detail, "tool call failed");
                }
                error_kind(error)
            }
        };
        if span.is_recording() {
            attributes.extend([
                KeyValue::new("gateway", self.config.name.clone()),
                KeyValue::new("outcome", outcome),
                KeyValue::new(
                    "duration_ms",
                    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                ),
            ]);
            span.add_attributes(attributes);
        }
        result
    }

    async fn run_call(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Value,
        attributes: &mut Vec<KeyValue>,
    ) -> Result<ToolOutput, CallError> {
        let arguments = match arguments {
            Value::Null => json!({}),
            Value::Object(map) => Value::Object(map),
            _ => {
                return Err(CallError::InvalidArguments(
                    "arguments must be a JSON object".into(),
                ));
            }
        };
        if name == SEARCH_TOOL && self.config.search_enabled() {
            return self.search(caller, &arguments).await;
        }
        let catalog = self.catalog();
        let Some(entry) = catalog.get(name) else {
            // A tool of a target not reached yet is unavailable, not unknown.
            let target = name
                .split(crate::naming::SEPARATOR)
                .next()
                .unwrap_or_default();
            if name.contains(crate::naming::SEPARATOR)
                && catalog
                    .unavailable()
                    .iter()
                    .any(|t| crate::naming::sanitize(t) == target)
            {
                return Err(CallError::Unavailable {
                    target: target.to_string(),
                });
            }
            return Err(CallError::NotFound(name.to_string()));
        };
        check_required(&entry.tool, &arguments)?;
        let policy = self.policy.read().clone();
        let decision = policy.authorize(&AuthorizationRequest {
            principal: caller.principal.clone(),
            tool: entry.exposed_name.clone(),
            gateway: self.id().to_string(),
            input: arguments.clone(),
            context: caller.context.clone(),
        });
        attributes.extend([
            KeyValue::new(
                "policy.decision",
                if decision.effect == Effect::Allow {
                    "ALLOW"
                } else {
                    "DENY"
                },
            ),
            KeyValue::new("policy.enforced", decision.enforced),
            KeyValue::new("policy.ids", decision.policy_ids.join(",")),
        ]);
        if !decision.permits_call() {
            return Err(CallError::Denied {
                reason: decision.reason,
                policy_ids: decision.policy_ids,
            });
        }
        let slot = &self.targets[entry.target_index];
        attributes.push(KeyValue::new("target.kind", slot.kind.as_str()));
        let limits: &LimitsConfig = &self.config.limits;
        let timeout = Duration::from_millis(limits.call_timeout_ms.max(1));
        let call = TargetCall {
            tool: &entry.tool.name,
            exposed_name: &entry.exposed_name,
            arguments,
            gateway_id: self.id(),
            target: &slot.name,
            request_id: &caller.request_id,
            session_id: caller.context.session_id.as_deref(),
            max_response_bytes: limits.max_response_bytes,
        };
        let run =
            async {
                let _permit = slot.permits.clone().try_acquire_owned().map_err(|_| {
                    CallError::Overloaded {
                        target: slot.name.clone(),
                        limit: slot.limit,
                    }
                })?;
                slot.target.call(call).await
            };
        let output = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| CallError::Timeout(timeout))??;
        if output.size() > limits.max_response_bytes {
            return Err(CallError::ResponseTooLarge(limits.max_response_bytes));
        }
        Ok(output)
    }

    async fn search(&self, caller: &Caller, arguments: &Value) -> Result<ToolOutput, CallError> {
        let query = arguments
            .get("query")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                CallError::InvalidArguments("the search tool needs a string \"query\"".into())
            })?;
        let catalog = self.catalog();
        let policy = self.policy.read().clone();
        let visible: Vec<&ToolEntry> = catalog
            .entries()
            .iter()
            .filter(|e| policy.may_list(&caller.principal, &e.exposed_name, self.id()))
            .collect();
        let deadline = Duration::from_millis(self.config.limits.call_timeout_ms.max(1));
        let found: Vec<Value> = self
            .search
            .rank(&visible, query, deadline)
            .await
            .into_iter()
            .map(|entry| {
                let tool = listed(entry);
                json!({"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema})
            })
            .collect();
        Ok(ToolOutput::json(json!({ "tools": found })))
    }
}

/// The catalogue as the policy engine types it.
fn signatures_of(catalog: &Catalog) -> Vec<ToolSignature> {
    catalog
        .entries()
        .iter()
        .map(|e| ToolSignature::new(e.exposed_name.clone(), e.tool.input_schema.clone()))
        .collect()
}

fn listed(entry: &ToolEntry) -> ListedTool {
    ListedTool {
        name: entry.exposed_name.clone(),
        description: entry.tool.description.clone(),
        input_schema: entry.tool.input_schema.clone(),
        output_schema: entry.tool.output_schema.clone(),
    }
}

/// Short name of an error kind for telemetry.
pub fn error_kind(error: &CallError) -> &'static str {
    match error {
        CallError::NotFound(_) => "not_found",
        CallError::Denied { .. } => "denied",
        CallError::InvalidArguments(_) => "invalid_arguments",
        CallError::Upstream { .. } => "upstream_error",
        CallError::Unavailable { .. } => "unavailable",
        CallError::Timeout(_) => "timeout",
        CallError::ResponseTooLarge(_) => "response_too_large",
        CallError::Overloaded { .. } => "overloaded",
        CallError::InvalidCursor => "invalid_cursor",
    }
}

/// Checks the schema's required top-level properties are present.
fn check_required(tool: &ToolDef, arguments: &Value) -> Result<(), CallError> {
    let Some(required) = tool.input_schema.get("required").and_then(Value::as_array) else {
        return Ok(());
    };
    let missing: Vec<&str> = required
        .iter()
        .filter_map(Value::as_str)
        .filter(|name| arguments.get(*name).is_none())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CallError::InvalidArguments(format!(
            "missing required arguments: {}",
            missing.join(", ")
        )))
    }
}

#[allow(clippy::too_many_arguments)]
async fn load_target(
    spec: &TargetSpec,
    config: &GatewayConfig,
    base_dir: &Path,
    http: &HttpClients,
    engine: &mut Option<SandboxEngine>,
    aws: &mut Option<SdkConfig>,
    timeout: Duration,
    changes: &mpsc::UnboundedSender<String>,
) -> Result<(TargetKind, Arc<dyn Target>, Option<Arc<McpTarget>>), GatewayError> {
    let fail = |message: String| GatewayError::Target {
        target: spec.name.clone(),
        message,
    };
    if spec.target_configuration.http.is_some() {
        return Err(fail(
            "http (AgentCore Runtime) targets are not supported by Corral's gateway".into(),
        ));
    }
    let mcp = spec
        .target_configuration
        .mcp
        .as_ref()
        .ok_or_else(|| fail("targetConfiguration needs an \"mcp\" member".into()))?;
    let credential = credentials::resolve(
        &spec.credential_provider_configurations,
        &config.credential_providers,
    )
    .map_err(&fail)?;
    match mcp {
        McpTargetConfiguration::OpenApiSchema(source) => {
            let document = read_source(source, base_dir).map_err(&fail)?;
            let target = OpenApiTarget::new(&document, http.clone(), credential).map_err(|e| {
                GatewayError::OpenApi {
                    target: spec.name.clone(),
                    pointer: e.pointer,
                    message: e.message,
                }
            })?;
            Ok((TargetKind::OpenApi, Arc::new(target), None))
        }
        McpTargetConfiguration::Lambda(lambda) => {
            let definitions = match &lambda.tool_schema {
                ToolSchema::InlinePayload(defs) => defs.clone(),
                ToolSchema::Path(path) => {
                    let text = std::fs::read_to_string(base_dir.join(path)).map_err(|e| {
                        fail(format!("cannot read tool schema {}: {e}", path.display()))
                    })?;
                    serde_json::from_str(&text)
                        .map_err(|e| fail(format!("tool schema {}: {e}", path.display())))?
                }
                ToolSchema::S3(_) => {
                    return Err(fail(
                        "S3 tool schemas are not supported; use inlinePayload or path".into(),
                    ));
                }
            };
            let mut tools = Vec::with_capacity(definitions.len());
            let mut names = std::collections::HashSet::new();
            for definition in definitions {
                if !names.insert(definition.name.clone()) {
                    return Err(fail(format!(
                        "duplicate tool name '{}' in toolSchema",
                        definition.name
                    )));
                }
                if definition.input_schema.get("type").and_then(Value::as_str) != Some("object") {
                    return Err(fail(format!(
                        "tool '{}': inputSchema.type must be \"object\"",
                        definition.name
                    )));
                }
                tools.push(ToolDef {
                    name: definition.name,
                    description: definition.description,
                    input_schema: definition.input_schema,
                    output_schema: definition.output_schema,
                });
            }
            let sdk = match aws {
                Some(sdk) => sdk.clone(),
                None => {
                    let mut loader = aws_config::defaults(BehaviorVersion::latest());
                    if let Some(region) = &config.aws.region {
                        loader = loader.region(Region::new(region.clone()));
                    }
                    if let Some(profile) = &config.aws.profile {
                        loader = loader.profile_name(profile);
                    }
                    let loaded = loader.load().await;
                    *aws = Some(loaded.clone());
                    loaded
                }
            };
            let mut builder = aws_sdk_lambda::config::Builder::from(&sdk);
            if sdk.region().is_none()
                && let Some(region) = region_of_arn(&lambda.lambda_arn)
            {
                builder = builder.region(Region::new(region.to_string()));
            }
            if let Some(url) = &config.aws.lambda_endpoint_url {
                builder = builder.endpoint_url(url);
            }
            builder = builder.timeout_config(
                aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(timeout)
                    .build(),
            );
            let client = aws_sdk_lambda::Client::from_conf(builder.build());
            Ok((
                TargetKind::Lambda,
                Arc::new(LambdaTarget::new(client, lambda.lambda_arn.clone(), tools)),
                None,
            ))
        }
        McpTargetConfiguration::McpServer(server) => {
            let endpoint = match (&server.endpoint, &server.command) {
                (Some(url), None) => {
                    let headers =
                        match credential {
                            Some(OutboundCredential::ApiKey {
                                name,
                                value,
                                location: credentials::KeyLocation::Header,
                            }) => {
                                vec![(name, value)]
                            }
                            Some(_) => return Err(fail(
                                "MCP server targets support header API keys and bearer tokens only"
                                    .into(),
                            )),
                            None => Vec::new(),
                        };
                    McpEndpoint::Http {
                        url: url.clone(),
                        headers,
                    }
                }
                (None, Some(command)) => McpEndpoint::Stdio {
                    command: command.clone(),
                    args: server.args.clone(),
                    env: server.env.clone(),
                },
                _ => {
                    return Err(fail(
                        "mcpServer needs exactly one of endpoint or command".into(),
                    ));
                }
            };
            // Connecting has its own timeout: a server may take longer to
            // start than a call may take.
            let target = Arc::new(McpTarget::new(
                &spec.name,
                endpoint,
                Duration::from_millis(config.limits.connect_timeout_ms.max(1)),
                changes.clone(),
            ));
            Ok((TargetKind::McpServer, target.clone(), Some(target)))
        }
        McpTargetConfiguration::Wasm(wasm) => {
            let bytes = match (&wasm.builtin, &wasm.path) {
                (Some(name), None) => corral_builtin_tools::builtin(name)
                    .map(|tool| tool.component.to_vec())
                    .ok_or_else(|| fail(format!("no built-in tool named '{name}'")))?,
                (None, Some(path)) => std::fs::read(base_dir.join(path))
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?,
                _ => return Err(fail("wasm needs exactly one of builtin or path".into())),
            };
            let engine = match engine {
                Some(engine) => engine.clone(),
                None => {
                    let created =
                        SandboxEngine::new(EngineConfig::for_tools(&EngineConfig::default()))
                            .map_err(|e| fail(e.to_string()))?;
                    *engine = Some(created.clone());
                    created
                }
            };
            let limits = default_limits(wasm.memory_mib, wasm.cpu_ms);
            let target = WasmTarget::new(&spec.name, &engine, &bytes, limits)
                .await
                .map_err(&fail)?;
            Ok((TargetKind::Wasm, Arc::new(target), None))
        }
        McpTargetConfiguration::SmithyModel(_) => {
            Err(fail("Smithy model targets are not supported".into()))
        }
        McpTargetConfiguration::ApiGateway(_) => {
            Err(fail("API Gateway targets are not supported".into()))
        }
    }
}

fn read_source(source: &ApiSchemaConfiguration, base_dir: &Path) -> Result<String, String> {
    match source {
        ApiSchemaConfiguration::InlinePayload(text) => Ok(text.clone()),
        ApiSchemaConfiguration::Path(path) => std::fs::read_to_string(base_dir.join(path))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        ApiSchemaConfiguration::S3(_) => {
            Err("S3 schema sources are not supported; use inlinePayload or path".into())
        }
    }
}

/// Rebuilds the catalogue when an upstream reports a tool-list change.
async fn watch_changes(
    gateway: std::sync::Weak<Gateway>,
    mut changes: mpsc::UnboundedReceiver<String>,
) {
    while let Some(target) = changes.recv().await {
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        let mcp = gateway
            .targets
            .iter()
            .find(|s| s.name == target)
            .and_then(|s| s.mcp.clone());
        if let Some(mcp) = mcp {
            match mcp.refresh().await {
                Ok(_) => {
                    if let Err(error) = gateway.rebuild().await {
                        tracing::error!(%error, "catalogue rebuild failed after a tool-list change");
                    }
                }
                Err(error) => {
                    tracing::warn!(%target, error = %error.for_logs(), "refreshing tools after list_changed failed")
                }
            }
        }
    }
}

/// Retries an MCP target that was unreachable at start-up, with backoff.
async fn retry_mcp(gateway: std::sync::Weak<Gateway>, mcp: Arc<McpTarget>, name: String) {
    let mut delay = Duration::from_millis(500);
    loop {
        tokio::time::sleep(delay).await;
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        match mcp.refresh().await {
            Ok(tools) => {
                tracing::info!(target = %name, tools = tools.len(), "MCP target is reachable again");
                if let Err(error) = gateway.rebuild().await {
                    tracing::error!(%error, "catalogue rebuild failed");
                }
                return;
            }
            Err(error) => {
                tracing::debug!(target = %name, error = %error.for_logs(), "MCP target still unavailable")
            }
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
