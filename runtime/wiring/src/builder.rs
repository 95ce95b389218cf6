//! [`RuntimeBuilder`] and the [`Runtime`] it wires.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_gateway_control::{ControlOptions, ControlPlane};
use corral_host::{
    AgentHost, EngineConfig, HostServices, ResourceMemory, SandboxEngine, SessionConfig,
    SessionManager,
};
use corral_journal::{JournalConfig, JournalStore};
use corral_memory::embed::Embedder;
use corral_memory::{MemoryConfig, MemoryService};
use corral_model::{ModelProvider, ScriptedModel};
use corral_storage::{PgStorage, SledStorage, Storage, StorageError};
use tokio::task::JoinHandle;

use crate::error::RuntimeError;

/// How often expired journals are deleted.
const JOURNAL_EXPIRY_PERIOD: Duration = Duration::from_secs(3600);

/// Agent memory: where it is kept and which resource agents use.
struct MemoryPlan {
    dir: PathBuf,
    resource: String,
}

/// What a process runs agents with; [`RuntimeBuilder::build`] wires it.
pub struct RuntimeBuilder {
    engine: EngineConfig,
    sessions: SessionConfig,
    model: Option<Arc<dyn ModelProvider>>,
    gateway: Option<(GatewayConfig, GatewayOptions)>,
    memory: Option<MemoryPlan>,
    journal: Option<(PathBuf, JournalConfig)>,
    control: Option<(PathBuf, ControlOptions)>,
    embedder: Option<Arc<dyn Embedder>>,
    database: Option<String>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeBuilder {
    /// Defaults: the default engine and session settings, an echoing
    /// scripted model, no tools, no memory, no journal.
    pub fn new() -> Self {
        Self {
            engine: EngineConfig::default(),
            sessions: SessionConfig::default(),
            model: None,
            gateway: None,
            memory: None,
            journal: None,
            control: None,
            embedder: None,
            database: None,
        }
    }

    /// Gateways, targets, policy engines and policies managed through
    /// AgentCore's control plane, kept in `dir` and built as `options` allow;
    /// their WASM tools share the host's engine.
    pub fn gateway_resources(mut self, dir: PathBuf, options: ControlOptions) -> Self {
        self.control = Some((dir, options));
        self
    }

    /// Keeps memory and session journals in the PostgreSQL database at
    /// `url` (namespaces `memory` and `journal`), shared by every replica
    /// that names it, instead of sled in their directories.
    pub fn database(mut self, url: impl Into<String>) -> Self {
        self.database = Some(url.into());
        self
    }

    /// What memory and semantic tool search embed text with [default:
    /// memory uses the hashing `LocalEmbedder`, tool search ranks by words].
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// The sandbox engine (pool size, memory cap, cache).
    pub fn engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    /// Session limits and lifetimes ([`RuntimeBuilder::journal`] opens and
    /// sets its journal).
    pub fn sessions(mut self, sessions: SessionConfig) -> Self {
        self.sessions = sessions;
        self
    }

    /// The model agents converse with.
    pub fn model(mut self, model: Arc<dyn ModelProvider>) -> Self {
        self.model = Some(model);
        self
    }

    /// The gateway agents call tools through; its WASM tools run in an
    /// engine configured for tools ([`EngineConfig::for_tools`], caching
    /// where the agents' engine does, made only if there are WASM targets)
    /// unless `options` names one.
    pub fn gateway(mut self, config: GatewayConfig, options: GatewayOptions) -> Self {
        self.gateway = Some((config, options));
        self
    }

    /// Agent memory on sled in `dir`; agents use the memory resource named
    /// `resource` (created with a semantic strategy when absent), and an
    /// offline extraction worker runs its strategies.
    pub fn memory(mut self, dir: PathBuf, resource: impl Into<String>) -> Self {
        self.memory = Some(MemoryPlan {
            dir,
            resource: resource.into(),
        });
        self
    }

    /// Journal every session in sled in `dir`; expired journals are deleted
    /// at start and hourly.
    pub fn journal(mut self, dir: PathBuf, config: JournalConfig) -> Self {
        self.journal = Some((dir, config));
        self
    }

    /// Starts everything: within a tokio runtime, which runs the background
    /// tasks.
    pub async fn build(self) -> Result<Runtime, RuntimeError> {
        let host = Arc::new(AgentHost::new(self.engine).map_err(RuntimeError::Host)?);
        let model = self
            .model
            .unwrap_or_else(|| Arc::new(ScriptedModel::echo()));
        let mut services = HostServices::new(model);
        let mut tasks = Vec::new();
        // One connection pool for every store in the database.
        let mut database: Option<PgStorage> = None;
        if let Some(url) = &self.database {
            database = Some(connect_database(url).await?);
        }

        // WASM tools run in an engine of their own: each call's sandbox is
        // short-lived, so its pool keeps freed memory resident, which agent
        // sessions (whose memory hibernation gives back) must not. Made
        // only for a gateway with WASM targets or the control plane (which
        // may deploy some), as it runs an epoch ticker thread.
        let mut tool_engine: Option<SandboxEngine> = None;
        let gateway = match self.gateway {
            Some((config, mut options)) => {
                if options.engine.is_none() && config.has_wasm_targets() {
                    options.engine = Some(tools_engine(&mut tool_engine, &host)?);
                }
                if options.embedder.is_none() {
                    options.embedder = self.embedder.clone();
                }
                let gateway = Gateway::new(config, options)
                    .await
                    .map_err(RuntimeError::Gateway)?;
                services = services.with_gateway(gateway.clone());
                Some(gateway)
            }
            None => None,
        };

        let memory = match self.memory {
            Some(plan) => {
                let embedder = self
                    .embedder
                    .clone()
                    .unwrap_or_else(|| Arc::new(corral_memory::embed::LocalEmbedder::default()));
                let storage = open_store(database.as_ref(), &plan.dir, "memory")?;
                let (service, resource) = open_memory(&plan, storage, embedder).await?;
                tasks.extend(service.follow_changes());
                let extraction = corral_memory::offline_extraction_model()
                    .map_err(RuntimeError::ExtractionModel)?;
                tasks.push(service.spawn_worker(Arc::new(extraction)));
                services =
                    services.with_memory(Arc::new(ResourceMemory::new(service.clone(), &resource)));
                Some((service, resource))
            }
            None => None,
        };

        let control = match self.control {
            Some((dir, control)) => {
                let options = GatewayOptions {
                    engine: Some(tools_engine(&mut tool_engine, &host)?),
                    base_dir: dir.clone(),
                    embedder: self.embedder.clone(),
                    ..GatewayOptions::default()
                };
                Some(Arc::new(
                    ControlPlane::open(&dir, options, control)
                        .await
                        .map_err(RuntimeError::Control)?,
                ))
            }
            None => None,
        };

        let mut sessions = self.sessions;
        if let Some((dir, config)) = self.journal {
            let storage = open_store(database.as_ref(), &dir, "journal")?;
            let journal = JournalStore::new(storage, config);
            // Replicas share a database's journal: none of its sessions is
            // this process's until placed here.
            sessions.shared_journal = database.is_some();
            tasks.push(tokio::spawn(expire_journals(journal.clone())));
            sessions.journal = Some(journal);
        }
        let journal = sessions.journal.clone();
        let manager = Arc::new(SessionManager::new(host.clone(), services, sessions));
        Ok(Runtime {
            host,
            sessions: manager,
            gateway,
            memory,
            journal,
            control,
            database,
            tasks,
        })
    }
}

/// A wired process: the host, its sessions and what they reach.
pub struct Runtime {
    host: Arc<AgentHost>,
    sessions: Arc<SessionManager>,
    gateway: Option<Arc<Gateway>>,
    memory: Option<(MemoryService, String)>,
    journal: Option<JournalStore>,
    control: Option<Arc<ControlPlane>>,
    database: Option<PgStorage>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// The agent host (engine, compiled agents).
    pub fn host(&self) -> &Arc<AgentHost> {
        &self.host
    }

    /// The live sessions.
    pub fn sessions(&self) -> &Arc<SessionManager> {
        &self.sessions
    }

    /// The gateways and policies managed through the control plane, if on.
    pub fn control_plane(&self) -> Option<&Arc<ControlPlane>> {
        self.control.as_ref()
    }

    /// The gateway agents call tools through, if any.
    pub fn gateway(&self) -> Option<&Arc<Gateway>> {
        self.gateway.as_ref()
    }

    /// The memory service, if agent memory is on.
    pub fn memory(&self) -> Option<&MemoryService> {
        self.memory.as_ref().map(|(service, _)| service)
    }

    /// The id of the memory resource agents use, if agent memory is on.
    pub fn agent_memory_id(&self) -> Option<&str> {
        self.memory.as_ref().map(|(_, id)| id.as_str())
    }

    /// A store in the shared database, if stores live in one: what health
    /// checks probe.
    pub fn database(&self) -> Option<Arc<dyn Storage>> {
        self.database
            .as_ref()
            .map(|d| Arc::new(d.namespace("health")) as Arc<dyn Storage>)
    }

    /// The store for `what` (`registry`, `sessions`, ...): its namespace
    /// in the shared database when there is one, else sled in `dir`. One
    /// path for every store a process opens.
    pub fn store(
        &self,
        what: &'static str,
        dir: &std::path::Path,
    ) -> Result<Arc<dyn Storage>, RuntimeError> {
        open_store(self.database.as_ref(), dir, what)
    }

    /// The session journal, if sessions are journaled.
    pub fn journal(&self) -> Option<&JournalStore> {
        self.journal.as_ref()
    }

    /// Ends every session (journaled ones stay resumable) and stops the
    /// background tasks; returns how many sessions ended.
    pub fn shutdown(&self) -> usize {
        for task in &self.tasks {
            task.abort();
        }
        self.sessions.stop_all()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The runtime's engine for WASM tools, made on first use
/// ([`EngineConfig::for_tools`], caching where the agents' engine does).
fn tools_engine(
    made: &mut Option<SandboxEngine>,
    host: &AgentHost,
) -> Result<SandboxEngine, RuntimeError> {
    if let Some(engine) = made {
        return Ok(engine.clone());
    }
    let engine = SandboxEngine::new(EngineConfig::for_tools(host.engine().config()))
        .map_err(RuntimeError::ToolEngine)?;
    *made = Some(engine.clone());
    Ok(engine)
}

/// The store for `what` (`memory`, `journal`, ...): its namespace in
/// `database` when there is one, else sled in `dir`.
fn open_store(
    database: Option<&PgStorage>,
    dir: &std::path::Path,
    what: &'static str,
) -> Result<Arc<dyn Storage>, RuntimeError> {
    if let Some(database) = database {
        return Ok(Arc::new(database.namespace(what)));
    }
    let storage = SledStorage::open(dir).map_err(|source| RuntimeError::Storage {
        what,
        path: dir.display().to_string(),
        source,
    })?;
    Ok(Arc::new(storage))
}

/// Connects to the database at `url` (and applies its migrations).
async fn connect_database(url: &str) -> Result<PgStorage, RuntimeError> {
    let what = "the database";
    let url = url.to_string();
    // Connecting blocks (the seam is synchronous): not on an async thread.
    tokio::task::spawn_blocking(move || PgStorage::connect(&url, "health"))
        .await
        .map_err(|e| RuntimeError::Storage {
            what,
            path: "the database".into(),
            source: StorageError::Engine(format!("the connecting task failed: {e}")),
        })?
        .map_err(|source| RuntimeError::Storage {
            what,
            // The URL may carry a password: never in messages.
            path: "the database".into(),
            source,
        })
}

/// Opens the memory service on `storage` and finds (or creates) the
/// resource agents use; returns the service and the resource's id.
async fn open_memory(
    plan: &MemoryPlan,
    storage: Arc<dyn Storage>,
    embedder: Arc<dyn Embedder>,
) -> Result<(MemoryService, String), RuntimeError> {
    let service = MemoryService::open(storage, embedder, MemoryConfig::default())
        .await
        .map_err(RuntimeError::Memory)?;
    if let Ok(memory) = service.memory_named(&plan.resource) {
        return Ok((service, memory.id));
    }
    let created = service
        .create_memory(corral_memory::control::CreateMemoryInput {
            client_token: None,
            name: plan.resource.clone(),
            description: Some("memory of sandboxed agents".into()),
            event_expiry_duration: 90,
            memory_strategies: vec![
                corral_memory::control::StrategyInput::SemanticMemoryStrategy(
                    corral_memory::control::StrategyInputFields {
                        name: "facts".into(),
                        ..Default::default()
                    },
                ),
            ],
            encryption_key_arn: None,
            memory_execution_role_arn: None,
            tags: None,
        })
        .await;
    match created {
        Ok(created) => Ok((service, created.id)),
        // Another replica sharing the database created it meanwhile; its
        // resource follows its name claim within moments.
        Err(corral_memory::MemoryError::Conflict(_)) => {
            let mut attempts = 0;
            loop {
                match service.memory_named(&plan.resource) {
                    Ok(memory) => return Ok((service, memory.id)),
                    Err(corral_memory::MemoryError::NotFound(_)) if attempts < 50 => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => return Err(RuntimeError::Memory(error)),
                }
            }
        }
        Err(error) => Err(RuntimeError::Memory(error)),
    }
}

/// Deletes expired journals now and every hour.
async fn expire_journals(journal: JournalStore) {
    let mut period = tokio::time::interval(JOURNAL_EXPIRY_PERIOD);
    loop {
        period.tick().await;
        let store = journal.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        match tokio::task::spawn_blocking(move || store.expire(now)).await {
            Ok(Ok(expired)) if !expired.is_empty() => {
                tracing::info!(sessions = expired.len(), "expired session journals");
            }
            Ok(Err(error)) => tracing::warn!("expiring session journals failed: {error}"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wires_memory_journal_and_tools_and_finds_its_memory_again() {
        let dir = tempfile::tempdir().unwrap();
        let build = || {
            RuntimeBuilder::new()
                .engine(EngineConfig {
                    max_instances: 8,
                    ..EngineConfig::default()
                })
                .gateway(
                    GatewayConfig::builtin_tools(&["calculator"]).unwrap(),
                    GatewayOptions::default(),
                )
                .memory(dir.path().join("memory"), "agents")
                .journal(dir.path().join("journal"), JournalConfig::default())
                .build()
        };
        let runtime = build().await.unwrap();
        let memory_id = runtime.agent_memory_id().unwrap().to_string();
        assert!(runtime.journal().is_some());
        assert!(runtime.sessions().config().journal.is_some());
        assert_eq!(runtime.gateway().unwrap().catalog().len(), 1);
        assert!(runtime.sessions().services().tools.is_some());
        runtime.shutdown();
        drop(runtime);
        // Aborted tasks let go of the stores when the runtime next runs them.
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Reopened, it finds the same memory resource instead of a new one.
        let again = build().await.unwrap();
        assert_eq!(again.agent_memory_id(), Some(memory_id.as_str()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_on_one_database_share_memory_and_journals() {
        use corral_memory::types::{
            Content, Conversational, CreateEventInput, ListEventsInput, PayloadItem, Role,
        };
        let url = corral_test_support::fresh_database("wiring_replicas");
        let build = |dir: std::path::PathBuf| {
            RuntimeBuilder::new()
                .engine(EngineConfig {
                    max_instances: 4,
                    ..EngineConfig::default()
                })
                .database(url.clone())
                .memory(dir.join("memory"), "agents")
                .journal(dir.join("journal"), JournalConfig::default())
                .build()
        };
        let (dir_one, dir_two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = build(dir_one.path().to_path_buf()).await.unwrap();
        let two = build(dir_two.path().to_path_buf()).await.unwrap();
        // The second replica finds the memory resource the first created.
        let memory_id = one.agent_memory_id().unwrap().to_string();
        assert_eq!(two.agent_memory_id(), Some(memory_id.as_str()));
        // Nothing was written under either data directory.
        assert!(!dir_one.path().join("memory").exists());
        assert!(!dir_two.path().join("journal").exists());
        // An event written through one replica is listed through the other.
        one.memory()
            .unwrap()
            .create_event(
                &memory_id,
                CreateEventInput {
                    actor_id: "alice".into(),
                    session_id: Some("s-1".into()),
                    event_timestamp: corral_memory::Timestamp::now(),
                    payload: vec![PayloadItem::Conversational(Conversational {
                        content: Content::Text("my seat is 12A".into()),
                        role: Role::User,
                    })],
                    branch: None,
                    client_token: None,
                    metadata: Default::default(),
                },
            )
            .await
            .unwrap();
        let listed = two
            .memory()
            .unwrap()
            .list_events(&memory_id, "alice", "s-1", ListEventsInput::default())
            .await
            .unwrap();
        assert_eq!(listed.events.len(), 1);
        // A memory created through one replica after both started is found
        // through the other.
        let notes = one
            .memory()
            .unwrap()
            .create_memory(corral_memory::control::CreateMemoryInput {
                client_token: None,
                name: "notes".into(),
                description: None,
                event_expiry_duration: 30,
                memory_strategies: Vec::new(),
                encryption_key_arn: None,
                memory_execution_role_arn: None,
                tags: None,
            })
            .await
            .unwrap();
        assert_eq!(
            two.memory().unwrap().get_memory(&notes.id).unwrap().name,
            "notes"
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_typed_error_without_its_url() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "postgres://corral:s3cret@127.0.0.1:{}/db",
            dead.local_addr().unwrap().port()
        );
        drop(dead);
        let dir = tempfile::tempdir().unwrap();
        let result = RuntimeBuilder::new()
            .engine(EngineConfig {
                max_instances: 2,
                ..EngineConfig::default()
            })
            .database(url)
            .journal(dir.path().join("journal"), JournalConfig::default())
            .build()
            .await;
        match result {
            Err(
                error @ RuntimeError::Storage {
                    what: "the database",
                    ..
                },
            ) => {
                let text = format!("{error}: {:?}", std::error::Error::source(&error));
                assert!(!text.contains("s3cret"), "{text}");
            }
            Err(other) => panic!("expected a storage error, got {other}"),
            Ok(_) => panic!("built without its database"),
        }
    }

    #[tokio::test]
    async fn a_store_that_cannot_open_is_a_typed_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let result = RuntimeBuilder::new()
            .engine(EngineConfig {
                max_instances: 2,
                ..EngineConfig::default()
            })
            .journal(file.clone(), JournalConfig::default())
            .build()
            .await;
        match result {
            Err(RuntimeError::Storage { what, path, .. }) => {
                assert_eq!(what, "journal");
                assert_eq!(path, file.display().to_string());
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a file is not a store"),
        }
    }
}
