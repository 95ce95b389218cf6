//! Loading agent components: compile once, link once, validate the world.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use corral_sandbox::{EngineConfig, SandboxEngine};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};

use crate::bindings::{Agent, AgentPre};
use crate::config::AgentSettings;
use crate::error::HostError;
use crate::state::SessionState;

/// An agent ready to run: compiled, linked and checked against the agent world.
#[derive(Clone)]
pub struct CompiledAgent {
    name: Arc<str>,
    version: Arc<str>,
    digest: String,
    pub(crate) pre: AgentPre<SessionState>,
    settings: AgentSettings,
}

impl CompiledAgent {
    /// Agent (runtime) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Shared name handle.
    pub(crate) fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    /// Version label (defaults to the first 12 hex digits of the digest).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Shared version handle (a span attribute per invocation, not a copy).
    pub(crate) fn version_arc(&self) -> Arc<str> {
        self.version.clone()
    }

    /// SHA-256 of the component bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Per-agent settings.
    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// Sets the version label.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Arc::from(version.into());
        self
    }

    /// Sets per-agent settings.
    pub fn with_settings(mut self, settings: AgentSettings) -> Self {
        self.settings = settings;
        self
    }
}

/// The engine, the linker with every host interface and a cache of prepared
/// components keyed by content digest.
pub struct AgentHost {
    engine: SandboxEngine,
    linker: Linker<SessionState>,
    prepared: Mutex<HashMap<String, AgentPre<SessionState>>>,
}

impl AgentHost {
    /// Builds the engine and links WASI (no ambient authority) and the agent imports.
    pub fn new(engine: EngineConfig) -> Result<Self, HostError> {
        let engine = SandboxEngine::new(engine)?;
        let mut linker = Linker::<SessionState>::new(engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| HostError::WrongWorld(format!("cannot link WASI: {e:#}")))?;
        Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| HostError::WrongWorld(format!("cannot link agent imports: {e:#}")))?;
        crate::imports::shadow_nondeterminism(&mut linker).map_err(|e| {
            HostError::WrongWorld(format!("cannot link WASI clocks and random: {e:#}"))
        })?;
        Ok(Self {
            engine,
            linker,
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// The sandbox engine.
    pub fn engine(&self) -> &SandboxEngine {
        &self.engine
    }

    /// Compiles (or reuses) a component and checks it implements the agent world.
    pub fn compile(&self, name: &str, bytes: &[u8]) -> Result<CompiledAgent, HostError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let cached = self.prepared.lock().get(&digest).cloned();
        let pre = match cached {
            Some(pre) => pre,
            None => {
                let component = self.engine.compile(bytes)?;
                let pre = self.prepare(&component)?;
                self.prepared.lock().insert(digest.clone(), pre.clone());
                pre
            }
        };
        Ok(self.compiled(name, digest, pre))
    }

    /// Loads a component file written from [`SandboxEngine::precompile`]
    /// whose source bytes had SHA-256 `digest`.
    pub fn load_precompiled(
        &self,
        name: &str,
        digest: &str,
        artifact: &Path,
    ) -> Result<CompiledAgent, HostError> {
        let cached = self.prepared.lock().get(digest).cloned();
        let pre = match cached {
            Some(pre) => pre,
            None => {
                let component = self.engine.load_precompiled(artifact)?;
                let pre = self.prepare(&component)?;
                self.prepared.lock().insert(digest.to_string(), pre.clone());
                pre
            }
        };
        Ok(self.compiled(name, digest.to_string(), pre))
    }

    /// Reads and compiles a component file.
    pub fn compile_file(&self, name: &str, path: &Path) -> Result<CompiledAgent, HostError> {
        let bytes = std::fs::read(path).map_err(|source| HostError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.compile(name, &bytes)
    }

    /// Checks a component against the agent world without keeping it.
    pub fn validate(&self, bytes: &[u8]) -> Result<(), HostError> {
        let component = self.engine.compile(bytes)?;
        self.prepare(&component).map(|_| ())
    }

    fn prepare(&self, component: &Component) -> Result<AgentPre<SessionState>, HostError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| HostError::WrongWorld(format!("{e:#}")))?;
        AgentPre::new(instance_pre).map_err(|e| HostError::WrongWorld(format!("{e:#}")))
    }

    fn compiled(&self, name: &str, digest: String, pre: AgentPre<SessionState>) -> CompiledAgent {
        CompiledAgent {
            name: Arc::from(name),
            version: Arc::from(&digest[..12.min(digest.len())]),
            digest,
            pre,
            settings: AgentSettings::default(),
        }
    }
}
