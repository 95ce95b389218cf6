//! Deployed agents: content-addressed components, immutable versions and
//! endpoints, kept in a [`Storage`] (sled on one machine, PostgreSQL shared
//! by replicas).
//!
//! The store holds the runtimes index and component sources
//! ([`store::RegistryStore`]); each process keeps a cache of the index,
//! refreshed when another replica publishes a change, and compiles each
//! version once, on first use, into `artifacts/<sha256>.cwasm` in its own
//! directory.

mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_api::{now_seconds, random_suffix, valid_name};
use corral_host::{AgentHost, CompiledAgent, HostError};
use corral_memory::MemoryService;
use corral_storage::{Storage, StorageError, write_file_atomic as write_atomic};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The endpoint every runtime has, following its latest version.
pub const DEFAULT_ENDPOINT: &str = "DEFAULT";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The upload is not a valid agent component.
    #[error("invalid agent artifact: {0}")]
    InvalidArtifact(String),
    /// The upload exceeds the size limit.
    #[error("agent artifact of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Upload size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// A name or field is invalid.
    #[error("{0}")]
    Validation(String),
    /// No such runtime, version or endpoint.
    #[error("{0}")]
    NotFound(String),
    /// A runtime with that name exists.
    #[error("{0}")]
    Conflict(String),
    /// Disk I/O failed.
    #[error("registry storage: {0}")]
    Io(#[from] std::io::Error),
    /// The store (a database shared by replicas) failed or is away.
    #[error("the deploy registry's store: {0}")]
    Storage(#[from] StorageError),
    /// The stored index does not decode (or encode).
    #[error("the deploy registry's index is corrupt")]
    Index(#[source] serde_json::Error),
    /// Other writers kept changing the registry while this change retried.
    #[error("the deploy registry kept changing under this request; retry it")]
    Contended,
}

/// How often a change is retried when another replica changed the index
/// first.
const CHANGE_ATTEMPTS: usize = 32;

/// How often the index is re-read in case a change report was lost.
const RESYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// At most one re-read of the store per this interval for lookups that miss.
const MISS_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Lifecycle of a runtime's sessions (`LifecycleConfiguration`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleConfiguration {
    /// Seconds without invocations before a session ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_runtime_session_timeout: Option<u64>,
    /// Seconds a session may live at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<u64>,
}

/// One immutable version of a runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeVersion {
    /// "1", "2", …
    pub agent_runtime_version: String,
    /// SHA-256 of the component.
    pub digest: String,
    /// Component size in bytes.
    pub size: usize,
    /// Creation time, epoch seconds.
    pub created_at: f64,
    /// Session lifecycle of this version.
    #[serde(default)]
    pub lifecycle_configuration: LifecycleConfiguration,
    /// Environment variables the agent sees.
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    /// Description given at deploy time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Memory resource the agent's `memory` interface uses; `None`: the
    /// server's default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<String>,
    /// AgentCore settings kept and reported back as given (`roleArn`,
    /// `networkConfiguration`, `protocolConfiguration`, the
    /// `agentRuntimeArtifact` it was created from).
    #[serde(default)]
    pub echoed: EchoedSettings,
    /// The `clientToken` of the call that created it: a retry with the
    /// same token returns this version instead of adding another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// AgentCore settings a version keeps and reports but Corral does not act
/// on (a WASM sandbox has no IAM role or VPC), or reports as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EchoedSettings {
    /// `agentRuntimeArtifact` as given; uploads report their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_runtime_artifact: Option<serde_json::Value>,
    /// `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `networkConfiguration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<serde_json::Value>,
    /// `protocolConfiguration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_configuration: Option<serde_json::Value>,
}

impl RuntimeVersion {
    /// The settings a session of this version runs with.
    pub fn settings(&self) -> corral_host::AgentSettings {
        corral_host::AgentSettings {
            env: self
                .environment_variables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            idle_timeout: self
                .lifecycle_configuration
                .idle_runtime_session_timeout
                .map(std::time::Duration::from_secs),
            max_lifetime: self
                .lifecycle_configuration
                .max_lifetime
                .map(std::time::Duration::from_secs),
            memory_id: self.memory_id.clone(),
            ..Default::default()
        }
    }
}

/// A named pointer to a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEndpoint {
    /// Endpoint name.
    pub name: String,
    /// Endpoint id (`<name>-<suffix>`); older registries lack one.
    #[serde(default)]
    pub id: String,
    /// Version served; `None` follows the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time, epoch seconds.
    pub created_at: f64,
    /// Last change, epoch seconds (0 when never changed).
    #[serde(default)]
    pub updated_at: f64,
}

impl RuntimeEndpoint {
    fn new(name: &str, target_version: Option<String>, description: Option<String>) -> Self {
        let now = now_seconds();
        RuntimeEndpoint {
            name: name.to_string(),
            id: format!("{name}-{}", random_suffix()),
            target_version,
            description,
            created_at: now,
            updated_at: now,
        }
    }

    /// The endpoint id, derived from the name where an older registry kept none.
    pub fn endpoint_id(&self) -> String {
        if self.id.is_empty() {
            format!("{}-{}", self.name, "0000000000")
        } else {
            self.id.clone()
        }
    }

    /// Last change (creation when never changed).
    pub fn last_updated(&self) -> f64 {
        self.updated_at.max(self.created_at)
    }
}

/// A deployed agent runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRuntime {
    /// Runtime id (`<name>-<suffix>`).
    pub agent_runtime_id: String,
    /// ARN-shaped identifier.
    pub agent_runtime_arn: String,
    /// Name.
    pub agent_runtime_name: String,
    /// Versions, oldest first.
    pub versions: Vec<RuntimeVersion>,
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, RuntimeEndpoint>,
}

impl AgentRuntime {
    /// The latest version.
    pub fn latest(&self) -> Option<&RuntimeVersion> {
        self.versions.last()
    }

    /// Version `v`, or `ResourceNotFoundException`.
    pub fn version(&self, v: &str) -> Result<&RuntimeVersion, RegistryError> {
        self.versions
            .iter()
            .find(|x| x.agent_runtime_version == v)
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "runtime {} has no version {v}",
                    self.agent_runtime_id
                ))
            })
    }

    /// The endpoint named `name`, or `ResourceNotFoundException`.
    pub fn endpoint(&self, name: &str) -> Result<&RuntimeEndpoint, RegistryError> {
        self.endpoints.get(name).ok_or_else(|| {
            RegistryError::NotFound(format!(
                "runtime {} has no endpoint {name}",
                self.agent_runtime_id
            ))
        })
    }

    /// The version an endpoint currently serves.
    pub fn endpoint_version(&self, endpoint: &RuntimeEndpoint) -> Option<String> {
        endpoint
            .target_version
            .clone()
            .or_else(|| self.latest().map(|v| v.agent_runtime_version.clone()))
    }

    /// The version an endpoint or version qualifier names.
    pub fn resolve(&self, qualifier: Option<&str>) -> Result<&RuntimeVersion, RegistryError> {
        let name = qualifier.unwrap_or(DEFAULT_ENDPOINT);
        let version = match self.endpoints.get(name) {
            Some(endpoint) => endpoint.target_version.as_deref(),
            None => Some(name),
        };
        match version {
            None => self.latest(),
            Some(v) => self.versions.iter().find(|x| x.agent_runtime_version == v),
        }
        .ok_or_else(|| {
            RegistryError::NotFound(format!(
                "runtime {} has no endpoint or version {name}",
                self.agent_runtime_name
            ))
        })
    }
}

/// Which runtime a deploy may create or change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DeployTarget {
    /// A new version of runtime `name`, created when new (Corral's deploy).
    #[default]
    CreateOrUpdate,
    /// A new runtime; `ConflictException` when the name is taken
    /// (`CreateAgentRuntime`).
    Create,
    /// A new version of the runtime with this id, name or ARN
    /// (`UpdateAgentRuntime`).
    Update(String),
}

/// What a deploy asks for.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// Runtime name (ignored for [`DeployTarget::Update`]).
    pub name: String,
    /// Which runtime it may create or change.
    pub target: DeployTarget,
    /// AgentCore settings kept and reported as given.
    pub echoed: EchoedSettings,
    /// Idempotency token (`clientToken`).
    pub client_token: Option<String>,
    /// Description of this version.
    pub description: Option<String>,
    /// Session lifecycle.
    pub lifecycle: LifecycleConfiguration,
    /// Environment variables.
    pub environment: BTreeMap<String, String>,
    /// Memory resource (id) the agent's `memory` interface uses.
    pub memory_id: Option<String>,
}

/// Durable registry of deployed agents, with a cache of compiled versions.
pub struct AgentRegistry {
    /// Where this process keeps compiled versions.
    dir: PathBuf,
    /// The index and component sources.
    store: store::RegistryStore,
    host: Arc<AgentHost>,
    max_artifact_bytes: usize,
    arn_prefix: String,
    runtimes: Mutex<BTreeMap<String, AgentRuntime>>,
    /// The generation of the index `runtimes` holds.
    generation: Mutex<u64>,
    /// When a lookup that missed last re-read the store.
    missed: Mutex<Option<std::time::Instant>>,
    /// Held by each change of this process from reading the index to
    /// swapping in the result (other replicas' changes are caught by the
    /// swap); readers never wait on the store.
    writer: Mutex<()>,
    /// Loaded versions by runtime id (not name: a deleted runtime's name
    /// may be reused) and version.
    compiled: Mutex<BTreeMap<(String, String), Arc<CompiledAgent>>>,
    /// Checks deploys' memory ids when attached.
    memory: Mutex<Option<MemoryService>>,
}

/// The runtime holding a version deployed with `token`.
fn with_client_token<'a>(
    runtimes: &'a BTreeMap<String, AgentRuntime>,
    token: &str,
) -> Option<&'a AgentRuntime> {
    runtimes.values().find(|r| {
        r.versions
            .iter()
            .any(|v| v.client_token.as_deref() == Some(token))
    })
}

/// The runtime a name, id or ARN names.
fn find<'a>(
    runtimes: &'a BTreeMap<String, AgentRuntime>,
    identifier: &str,
) -> Result<&'a AgentRuntime, RegistryError> {
    let id = runtime_id_of(identifier);
    runtimes
        .values()
        .find(|r| {
            r.agent_runtime_name == id
                || r.agent_runtime_id == id
                || r.agent_runtime_arn == identifier
        })
        .ok_or_else(|| RegistryError::NotFound(format!("agent runtime {identifier} not found")))
}

/// The runtime id an ARN of any region and account names (an endpoint ARN
/// names its runtime); other identifiers as given.
pub fn runtime_id_of(identifier: &str) -> &str {
    corral_api::arn_resource_id(identifier, "runtime")
}

/// Longest memory id AgentCore accepts.
const MAX_MEMORY_ID_LEN: usize = 112;

/// Whether `id` has a memory id's form (`<name>-<suffix>`, at most 112 characters).
fn valid_memory_id(id: &str) -> bool {
    id.len() <= MAX_MEMORY_ID_LEN
        && id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.contains('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl AgentRegistry {
    /// Opens the registry kept in `storage`, compiling versions into
    /// `dir` (a registry `dir` held before the storage seam is imported
    /// into `storage` once).
    pub fn open(
        dir: &Path,
        storage: Arc<dyn Storage>,
        host: Arc<AgentHost>,
        max_artifact_bytes: usize,
    ) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(dir.join("artifacts"))?;
        let store = store::RegistryStore::new(storage);
        store.import_directory(dir)?;
        let snapshot = store.load()?;
        let runtimes = snapshot.runtimes;
        Ok(AgentRegistry {
            generation: Mutex::new(snapshot.generation),
            missed: Mutex::new(None),
            dir: dir.to_path_buf(),
            store,
            host,
            max_artifact_bytes,
            arn_prefix: "arn:aws:bedrock-agentcore:local:000000000000".into(),
            runtimes: Mutex::new(runtimes),
            writer: Mutex::new(()),
            compiled: Mutex::new(BTreeMap::new()),
            memory: Mutex::new(None),
        })
    }

    /// Keeps this process's view current with other replicas' changes
    /// (deploys, endpoint changes, deletes): reloads the index each time
    /// the store reports one, and every 30 s in case a report was lost.
    /// Returns `None` when the store is not shared.
    pub fn follow_changes(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut changes = self.store.take_changes()?;
        let registry = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut resync = tokio::time::interval(RESYNC_EVERY);
            loop {
                tokio::select! {
                    change = changes.next() => if change.is_none() { return },
                    _ = resync.tick() => {}
                }
                let Some(current) = registry.upgrade() else {
                    return;
                };
                match tokio::task::spawn_blocking(move || current.reload()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!("cannot reload the deploy registry: {error}");
                    }
                    Err(error) => tracing::warn!("the registry reload task failed: {error}"),
                }
            }
        }))
    }

    /// Replaces the cached index with the stored one when that is newer,
    /// dropping compiled versions of runtimes that no longer exist.
    pub fn reload(&self) -> Result<(), RegistryError> {
        let snapshot = self.store.load()?;
        self.install(snapshot.generation, snapshot.runtimes);
        Ok(())
    }

    /// Makes `runtimes` (of `generation`) current unless a newer index is.
    fn install(&self, generation: u64, runtimes: BTreeMap<String, AgentRuntime>) {
        let mut current = self.generation.lock();
        if generation < *current {
            return;
        }
        *current = generation;
        self.compiled
            .lock()
            .retain(|(id, _), _| runtimes.values().any(|r| r.agent_runtime_id == *id));
        *self.runtimes.lock() = runtimes;
    }

    /// Lets deploys check that the memory resource they name exists in
    /// `service`; without it any well-formed memory id is accepted, and an
    /// unknown one fails the agent's memory calls with `not-found`.
    pub fn attach_memory(&self, service: MemoryService) {
        *self.memory.lock() = Some(service);
    }

    /// Checks a deploy's memory id: its form, and that the resource exists
    /// when a memory service is attached.
    fn check_memory_id(&self, memory_id: Option<&str>) -> Result<(), RegistryError> {
        let Some(id) = memory_id else {
            return Ok(());
        };
        if !valid_memory_id(id) {
            return Err(RegistryError::Validation(format!(
                "memoryId '{}' is not a memory id",
                id.chars().take(MAX_MEMORY_ID_LEN).collect::<String>()
            )));
        }
        let service = self.memory.lock().clone();
        match service.map(|s| s.get_memory(id)) {
            Some(Err(_)) => Err(RegistryError::Validation(format!(
                "memoryId '{id}' names no memory resource"
            ))),
            _ => Ok(()),
        }
    }

    /// Every runtime, by name.
    pub fn list(&self) -> Vec<AgentRuntime> {
        self.runtimes.lock().values().cloned().collect()
    }

    /// The runtime named by a name, id or ARN (of any region and account:
    /// its `runtime/<id>` part decides; an endpoint ARN names its runtime).
    /// One this process has not seen yet is looked up in the store: another
    /// replica may have just created it.
    pub fn get(&self, identifier: &str) -> Result<AgentRuntime, RegistryError> {
        let error = match find(&self.runtimes.lock(), identifier) {
            Ok(runtime) => return Ok(runtime.clone()),
            Err(error) => error,
        };
        // At most one re-read a second: unknown names cannot keep the
        // store (and the caller's thread) busy.
        if !self.store.is_shared() {
            return Err(error);
        }
        {
            let mut missed = self.missed.lock();
            if missed.is_some_and(|at| at.elapsed() < MISS_RELOAD_EVERY) {
                return Err(error);
            }
            *missed = Some(std::time::Instant::now());
        }
        self.reload()?;
        find(&self.runtimes.lock(), identifier).cloned()
    }

    /// The runtime a call with this `clientToken` already deployed, if any.
    pub fn by_client_token(&self, token: &str) -> Option<AgentRuntime> {
        with_client_token(&self.runtimes.lock(), token).cloned()
    }

    /// Applies `change` to the stored runtimes and stores the result, then
    /// makes it current; when another replica changed them meanwhile,
    /// `change` runs again on theirs. A change that fails, or cannot be
    /// stored, leaves nothing behind.
    fn update<T>(
        &self,
        mut change: impl FnMut(&mut BTreeMap<String, AgentRuntime>) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let _writer = self.writer.lock();
        for _ in 0..CHANGE_ATTEMPTS {
            let snapshot = self.store.load()?;
            let mut next = snapshot.runtimes.clone();
            let out = change(&mut next)?;
            if let Some(stored) = self.store.replace(&snapshot, next)? {
                self.install(stored.generation, stored.runtimes);
                return Ok(out);
            }
        }
        Err(RegistryError::Contended)
    }

    /// Validates, precompiles and stores a component as a new version of
    /// runtime `request.name` (created when new).
    pub fn deploy(
        &self,
        bytes: &[u8],
        request: DeployRequest,
    ) -> Result<AgentRuntime, RegistryError> {
        let mut request = request;
        match &request.target {
            DeployTarget::Update(identifier) => {
                request.name = self.get(identifier)?.agent_runtime_name;
            }
            DeployTarget::Create if self.runtimes.lock().contains_key(&request.name) => {
                return Err(RegistryError::Conflict(format!(
                    "an agent runtime named {} already exists",
                    request.name
                )));
            }
            _ => {}
        }
        if !valid_name(&request.name) {
            return Err(RegistryError::Validation(format!(
                "agentRuntimeName '{}' must match [a-zA-Z][a-zA-Z0-9_]{{0,47}}",
                request.name
            )));
        }
        self.check_memory_id(request.memory_id.as_deref())?;
        if bytes.len() > self.max_artifact_bytes {
            return Err(RegistryError::TooLarge {
                size: bytes.len(),
                limit: self.max_artifact_bytes,
            });
        }
        let compiled = self
            .host
            .compile(&request.name, bytes)
            .map_err(|e: HostError| RegistryError::InvalidArtifact(e.to_string()))?;
        let digest = compiled.digest().to_string();
        self.store.put_component(&digest, bytes)?;
        self.precompile(&digest, bytes)?;
        let reported = request
            .echoed
            .agent_runtime_artifact
            .take()
            .unwrap_or_else(|| crate::artifact::component_artifact(&digest));
        let template = RuntimeVersion {
            agent_runtime_version: String::new(),
            digest,
            size: bytes.len(),
            created_at: now_seconds(),
            lifecycle_configuration: request.lifecycle,
            environment_variables: request.environment.clone(),
            description: request.description.clone(),
            memory_id: request.memory_id.clone(),
            echoed: EchoedSettings {
                agent_runtime_artifact: Some(reported),
                ..request.echoed.clone()
            },
            client_token: request.client_token.clone(),
        };
        let token = request.client_token.clone();
        self.update(|runtimes| {
            // A retry of a call that already deployed changes nothing.
            if let Some(done) = token
                .as_deref()
                .and_then(|t| with_client_token(runtimes, t))
            {
                return Ok(done.clone());
            }
            // Resolved again here: a concurrent create or delete may have
            // raced the compile.
            let name = match &request.target {
                DeployTarget::Update(identifier) => {
                    find(runtimes, identifier)?.agent_runtime_name.clone()
                }
                DeployTarget::Create if runtimes.contains_key(&request.name) => {
                    return Err(RegistryError::Conflict(format!(
                        "an agent runtime named {} already exists",
                        request.name
                    )));
                }
                _ => request.name.clone(),
            };
            let runtime = runtimes.entry(name.clone()).or_insert_with(|| {
                let id = format!("{name}-{}", random_suffix());
                let mut endpoints = BTreeMap::new();
                endpoints.insert(
                    DEFAULT_ENDPOINT.to_string(),
                    RuntimeEndpoint::new(DEFAULT_ENDPOINT, None, None),
                );
                AgentRuntime {
                    agent_runtime_arn: format!("{}:runtime/{id}", self.arn_prefix),
                    agent_runtime_id: id,
                    agent_runtime_name: name.clone(),
                    versions: Vec::new(),
                    endpoints,
                }
            });
            let mut version = template.clone();
            version.agent_runtime_version = (runtime.versions.len() + 1).to_string();
            runtime.versions.push(version);
            Ok(runtime.clone())
        })
    }

    /// Creates endpoint `name` serving `version` (pinned to the latest when `None`);
    /// `ConflictException` when it exists.
    pub fn create_endpoint(
        &self,
        identifier: &str,
        name: &str,
        version: Option<&str>,
        description: Option<String>,
    ) -> Result<(AgentRuntime, RuntimeEndpoint), RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::Validation(format!(
                "endpoint name '{name}' must match [a-zA-Z][a-zA-Z0-9_]{{0,47}}"
            )));
        }
        self.change_runtime(identifier, |runtime| {
            if let Some(v) = version {
                runtime.version(v)?;
            }
            if runtime.endpoints.contains_key(name) {
                return Err(RegistryError::Conflict(format!(
                    "runtime {} already has an endpoint named {name}",
                    runtime.agent_runtime_id
                )));
            }
            // An endpoint created without a version pins the latest one;
            // only DEFAULT follows new versions.
            let pinned = version
                .map(str::to_string)
                .or_else(|| runtime.latest().map(|v| v.agent_runtime_version.clone()));
            let endpoint = RuntimeEndpoint::new(name, pinned, description.clone());
            runtime.endpoints.insert(name.to_string(), endpoint.clone());
            Ok(endpoint)
        })
    }

    /// Points endpoint `name` at `version` and/or changes its description.
    pub fn update_endpoint(
        &self,
        identifier: &str,
        name: &str,
        version: Option<&str>,
        description: Option<String>,
    ) -> Result<(AgentRuntime, RuntimeEndpoint), RegistryError> {
        self.change_runtime(identifier, |runtime| {
            if let Some(v) = version {
                runtime.version(v)?;
            }
            runtime.endpoint(name)?;
            let Some(endpoint) = runtime.endpoints.get_mut(name) else {
                return Err(RegistryError::NotFound(format!("no endpoint {name}")));
            };
            if version.is_some() {
                endpoint.target_version = version.map(str::to_string);
            }
            if description.is_some() {
                endpoint.description.clone_from(&description);
            }
            endpoint.updated_at = now_seconds();
            Ok(endpoint.clone())
        })
    }

    /// Removes endpoint `name` (the `DEFAULT` endpoint cannot be removed).
    pub fn delete_endpoint(
        &self,
        identifier: &str,
        name: &str,
    ) -> Result<(AgentRuntime, RuntimeEndpoint), RegistryError> {
        if name == DEFAULT_ENDPOINT {
            return Err(RegistryError::Validation(
                "the DEFAULT endpoint cannot be deleted; delete the runtime".into(),
            ));
        }
        self.change_runtime(identifier, |runtime| {
            runtime.endpoint(name)?;
            runtime
                .endpoints
                .remove(name)
                .ok_or_else(|| RegistryError::NotFound(format!("no endpoint {name}")))
        })
    }

    /// Applies `change` to the runtime `identifier` names and persists it;
    /// returns the runtime as changed and what `change` returned.
    fn change_runtime<T>(
        &self,
        identifier: &str,
        mut change: impl FnMut(&mut AgentRuntime) -> Result<T, RegistryError>,
    ) -> Result<(AgentRuntime, T), RegistryError> {
        self.update(|runtimes| {
            let name = find(runtimes, identifier)?.agent_runtime_name.clone();
            let Some(runtime) = runtimes.get_mut(&name) else {
                return Err(RegistryError::NotFound(format!(
                    "agent runtime {identifier} not found"
                )));
            };
            let out = change(runtime)?;
            Ok((runtime.clone(), out))
        })
    }

    /// Removes a runtime (its artifacts stay, content-addressed and shared).
    pub fn delete(&self, identifier: &str) -> Result<AgentRuntime, RegistryError> {
        let runtime = self.update(|runtimes| {
            let name = find(runtimes, identifier)?.agent_runtime_name.clone();
            runtimes.remove(&name).ok_or_else(|| {
                RegistryError::NotFound(format!("agent runtime {identifier} not found"))
            })
        })?;
        self.compiled
            .lock()
            .retain(|(id, _), _| *id != runtime.agent_runtime_id);
        Ok(runtime)
    }

    /// The runtime's name and loaded agent an invocation of `identifier` at
    /// `qualifier` runs, when this process knows the runtime and has loaded
    /// that version: the invocation path's lookup, which copies neither the
    /// runtime nor its versions. `None` sends the caller to
    /// [`AgentRegistry::get`] and [`AgentRegistry::compiled`].
    pub fn loaded_for(
        &self,
        identifier: &str,
        qualifier: Option<&str>,
    ) -> Option<(String, Arc<CompiledAgent>)> {
        // Lock order: `runtimes`, then `compiled` (in `loaded`; nothing
        // takes them the other way round).
        let runtimes = self.runtimes.lock();
        let runtime = find(&runtimes, identifier).ok()?;
        let agent = self.loaded(runtime, runtime.resolve(qualifier).ok()?)?;
        Some((runtime.agent_runtime_name.clone(), agent))
    }

    /// The compiled agent for a runtime version if this process has loaded
    /// it already (no I/O).
    pub fn loaded(
        &self,
        runtime: &AgentRuntime,
        version: &RuntimeVersion,
    ) -> Option<Arc<CompiledAgent>> {
        self.compiled
            .lock()
            .get(&(
                runtime.agent_runtime_id.clone(),
                version.agent_runtime_version.clone(),
            ))
            .cloned()
    }

    /// The compiled agent for a runtime version: loaded on first use from
    /// this process's precompiled artifact, which is compiled from the
    /// stored source when absent (a version deployed through another
    /// replica). Blocks for the compile: call it off async threads when
    /// [`AgentRegistry::loaded`] has nothing.
    pub fn compiled(
        &self,
        runtime: &AgentRuntime,
        version: &RuntimeVersion,
    ) -> Result<Arc<CompiledAgent>, RegistryError> {
        if let Some(agent) = self.loaded(runtime, version) {
            return Ok(agent);
        }
        let path = self.precompiled_path(&version.digest);
        if !path.exists() {
            let source = self.component_source(&version.digest)?;
            self.precompile(&version.digest, &source)?;
        }
        let agent = self
            .host
            .load_precompiled(&runtime.agent_runtime_name, &version.digest, &path)
            .map_err(|e| RegistryError::InvalidArtifact(e.to_string()))?
            .with_version(version.agent_runtime_version.clone())
            .with_settings(version.settings());
        let agent = Arc::new(agent);
        self.compiled.lock().insert(
            (
                runtime.agent_runtime_id.clone(),
                version.agent_runtime_version.clone(),
            ),
            agent.clone(),
        );
        Ok(agent)
    }

    /// Where this process keeps the precompiled form of `digest`.
    fn precompiled_path(&self, digest: &str) -> PathBuf {
        self.dir.join("artifacts").join(format!("{digest}.cwasm"))
    }

    /// Writes the precompiled form of `bytes` (SHA-256 `digest`) unless it
    /// is there.
    fn precompile(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let path = self.precompiled_path(digest);
        if path.exists() {
            return Ok(());
        }
        let artifact = self
            .host
            .engine()
            .precompile(bytes)
            .map_err(|e| RegistryError::InvalidArtifact(e.to_string()))?;
        write_atomic(&path, &artifact)?;
        Ok(())
    }

    /// The source bytes of a deployed component by SHA-256 (hex).
    pub fn component_source(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let well_formed = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(RegistryError::Validation(format!(
                "'{digest}' is not a SHA-256 digest (64 hex digits)"
            )));
        }
        self.store
            .component(digest)?
            .ok_or_else(|| RegistryError::NotFound(format!("no component with digest {digest}")))
    }

    /// The latest deployed version of `name` whose component has `digest`.
    pub fn version_by_digest(&self, name: &str, digest: &str) -> Option<RuntimeVersion> {
        self.runtimes
            .lock()
            .get(name)?
            .versions
            .iter()
            .rev()
            .find(|v| v.digest == digest)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use corral_memory::control::CreateMemoryInput;
    use corral_memory::embed::LocalEmbedder;
    use corral_memory::{MemoryConfig, SledStorage};

    use super::*;

    const PROBE: &[u8] = corral_test_guests::SANDBOX_PROBE;

    fn request(memory_id: &str) -> DeployRequest {
        DeployRequest {
            name: "probe".into(),
            memory_id: Some(memory_id.into()),
            ..DeployRequest::default()
        }
    }

    #[tokio::test]
    async fn deploys_keep_the_agents_memory_id() {
        let dir = tempfile::tempdir().unwrap();
        let agents = dir.path().join("agents");
        let host = Arc::new(AgentHost::new(corral_host::EngineConfig::default()).unwrap());
        let open = |host: Arc<AgentHost>| {
            let store = Arc::new(SledStorage::open(&agents.join("registry")).unwrap());
            AgentRegistry::open(&agents, store, host, 64 << 20).unwrap()
        };
        let registry = open(host.clone());
        // Without a memory service only the id's form is checked.
        for bad in ["", "no spaces-0123456789", "/strategies", "plain"] {
            assert!(
                matches!(
                    registry.deploy(PROBE, request(bad)),
                    Err(RegistryError::Validation(_))
                ),
                "{bad:?}"
            );
        }
        registry
            .deploy(PROBE, request("unchecked-0123456789"))
            .unwrap();

        let storage = Arc::new(SledStorage::open(&dir.path().join("memory")).unwrap());
        let service = MemoryService::open(
            storage,
            Arc::new(LocalEmbedder::default()),
            MemoryConfig::default(),
        )
        .await
        .unwrap();
        let memory = service
            .create_memory(CreateMemoryInput {
                client_token: None,
                name: "agent_memory".into(),
                description: None,
                event_expiry_duration: 30,
                memory_strategies: vec![],
                encryption_key_arn: None,
                memory_execution_role_arn: None,
                tags: None,
            })
            .await
            .unwrap();
        registry.attach_memory(service);
        let missing = registry
            .deploy(PROBE, request("missing-0123456789"))
            .unwrap_err();
        assert!(
            missing.to_string().contains("names no memory resource"),
            "{missing}"
        );
        registry.deploy(PROBE, request(&memory.id)).unwrap();

        // Persisted, and applied to the compiled agent after a restart.
        drop(registry);
        let reopened = open(host);
        let runtime = reopened.get("probe").unwrap();
        let version = runtime.latest().unwrap();
        assert_eq!(version.memory_id.as_deref(), Some(memory.id.as_str()));
        let agent = reopened.compiled(&runtime, version).unwrap();
        assert_eq!(
            agent.settings().memory_id.as_deref(),
            Some(memory.id.as_str())
        );
        let first = runtime.resolve(Some("1")).unwrap();
        assert_eq!(first.memory_id.as_deref(), Some("unchecked-0123456789"));
    }

    #[test]
    fn replicas_on_one_store_keep_each_others_deploys_and_compile_on_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(AgentHost::new(corral_host::EngineConfig::default()).unwrap());
        let shared: Arc<dyn Storage> = Arc::new(SledStorage::temporary().unwrap());
        let one = AgentRegistry::open(
            &dir.path().join("one"),
            shared.clone(),
            host.clone(),
            64 << 20,
        )
        .unwrap();
        let two = AgentRegistry::open(&dir.path().join("two"), shared, host, 64 << 20).unwrap();
        let deploy = |registry: &AgentRegistry, name: &str| {
            registry
                .deploy(
                    PROBE,
                    DeployRequest {
                        name: name.into(),
                        ..DeployRequest::default()
                    },
                )
                .unwrap()
        };
        deploy(&one, "first");
        // `two`'s cache predates it: its change is applied to the stored
        // index, not its stale copy, so neither deploy is lost.
        deploy(&two, "second");
        one.reload().unwrap();
        let names = |r: &AgentRegistry| {
            r.list()
                .into_iter()
                .map(|r| r.agent_runtime_name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&one), ["first", "second"]);
        assert_eq!(names(&two), ["first", "second"]);
        // A version deployed through `one` compiles in `two`'s directory
        // on first use, from the stored source.
        let runtime = two.get("first").unwrap();
        let version = runtime.latest().unwrap().clone();
        assert!(two.loaded(&runtime, &version).is_none());
        two.compiled(&runtime, &version).unwrap();
        assert!(two.loaded(&runtime, &version).is_some());
        assert!(
            dir.path()
                .join("two/artifacts")
                .join(format!("{}.cwasm", version.digest))
                .exists()
        );
        // An older snapshot never replaces a newer one.
        let generation = *one.generation.lock();
        one.install(generation - 1, BTreeMap::new());
        assert_eq!(names(&one), ["first", "second"]);
    }

    #[test]
    fn a_registry_directory_from_before_the_store_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(AgentHost::new(corral_host::EngineConfig::default()).unwrap());
        // Written the way registries were kept before: JSON and files.
        let legacy = {
            let store: Arc<dyn Storage> = Arc::new(SledStorage::temporary().unwrap());
            let registry =
                AgentRegistry::open(&dir.path().join("scratch"), store, host.clone(), 64 << 20)
                    .unwrap();
            registry
                .deploy(
                    PROBE,
                    DeployRequest {
                        name: "old".into(),
                        ..DeployRequest::default()
                    },
                )
                .unwrap();
            registry.list()
        };
        let agents = dir.path().join("agents");
        std::fs::create_dir_all(agents.join("artifacts")).unwrap();
        let index: BTreeMap<String, AgentRuntime> = legacy
            .iter()
            .map(|r| (r.agent_runtime_name.clone(), r.clone()))
            .collect();
        std::fs::write(
            agents.join("runtimes.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        let digest = legacy[0].versions[0].digest.clone();
        std::fs::write(
            agents.join("artifacts").join(format!("{digest}.wasm")),
            PROBE,
        )
        .unwrap();

        let store: Arc<dyn Storage> =
            Arc::new(SledStorage::open(&agents.join("registry")).unwrap());
        let registry = AgentRegistry::open(&agents, store, host, 64 << 20).unwrap();
        let runtime = registry.get("old").unwrap();
        assert_eq!(runtime.agent_runtime_id, legacy[0].agent_runtime_id);
        assert_eq!(registry.component_source(&digest).unwrap(), PROBE);
        assert!(!agents.join("runtimes.json").exists());
        assert!(agents.join("runtimes.json.imported").exists());
    }
}
