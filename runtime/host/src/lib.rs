//! Corral's agent host.
//!
//! Every agent session runs in its own wasmtime sandbox ([`corral_sandbox`]):
//! [`AgentHost`] compiles and links agent components once, and
//! [`SessionManager`] keeps one store per session, runs invocations in it and
//! ends sessions on stop, idle timeout, maximum lifetime or fault. Agents
//! reach the outside world only through [`HostServices`]: a model provider,
//! a gateway (every tool, in-process ones included, under its policy and
//! limits) and a [`MemoryProvider`]. Every call a guest makes crosses one
//! host-call seam, where it is journaled or answered from a journal.

mod admission;
mod agent;
mod bindings;
mod config;
mod divergence;
mod error;
mod executor;
mod host_calls;
mod imports;
mod manager;
pub mod memory;
mod memory_quota;
mod replay;
mod replayer;
mod resource_memory;
mod services;
mod session;
mod session_log;
mod state;

pub use admission::SessionQuota;
pub use agent::{AgentHost, CompiledAgent};
pub use config::{AgentSettings, RunLimits, SessionConfig};
pub use corral_sandbox::{EngineConfig, Fault, SandboxEngine, SandboxError, SandboxLimits};
pub use divergence::{Divergence, DivergenceKind};
pub use error::{AgentErrorKind, HostError, InvokeError, ResumeFailure};
pub use manager::{
    InvocationRequest, InvocationResponse, MAX_SESSION_ID_LEN, SessionManager, validate_session_id,
};
pub use memory::{MemoryProvider, MemoryScope};
pub use memory_quota::MemoryQuotaExceeded;
pub use replayer::{
    ForkReport, ReplayError, ReplayOptions, ReplayReport, ReplayedInvocation, SessionReplayer,
};
pub use resource_memory::ResourceMemory;
pub use services::HostServices;
pub use session::{SessionInfo, SessionStatus};
pub use session_log::{LogEntry, LogLevel, LogSource, SessionLog};
pub use state::InvocationStats;

/// The WIT types agents and hosts exchange, for implementors of the seams.
pub mod wit {
    pub use crate::bindings::{log, memory, model, response_stream, tools, types};
}
