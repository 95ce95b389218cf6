//! Why a runtime could not be built.

/// A part of the runtime failed to start; each names the part.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The sandbox engine or host could not be created.
    #[error("cannot start the agent host")]
    Host(#[source] corral_host::HostError),
    /// The sandbox engine for WASM tools could not be created.
    #[error("cannot start the tool sandbox engine")]
    ToolEngine(#[source] corral_host::SandboxError),
    /// The gateway could not load its targets or policies.
    #[error("cannot start the gateway")]
    Gateway(#[source] corral_gateway::GatewayError),
    /// A store (memory or journal) could not be opened.
    #[error("cannot open the {what} store in {path}")]
    Storage {
        /// `memory` or `journal`.
        what: &'static str,
        /// Its directory.
        path: String,
        /// The cause.
        #[source]
        source: corral_storage::StorageError,
    },
    /// The gateway control plane could not open its resources.
    #[error("cannot open the gateway control plane")]
    Control(#[source] corral_gateway_control::ControlError),
    /// The memory service could not open, or create the agents' memory.
    #[error("cannot open agent memory")]
    Memory(#[source] corral_memory::MemoryError),
    /// The extraction model's script does not load.
    #[error("cannot load the memory extraction model")]
    ExtractionModel(#[source] corral_model::ScriptError),
}
