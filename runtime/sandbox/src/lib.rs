//! Corral's sandbox core: the one place wasmtime is configured.
//!
//! Both the agent host (one sandbox per session) and the gateway's WASM tools
//! (one sandbox per call) build on it, so every guest gets the same engine
//! settings, pooling allocator, memory cap, epoch-based CPU deadline and a
//! WASI context with no ambient authority.

mod cache;
mod ctx;
mod engine;
mod fault;
mod limits;
mod output;

pub use ctx::{
    SandboxCtx, SandboxOptions, SandboxState, install_cpu_budget, reset_cpu_budget, set_cpu_time,
};
pub use engine::{EngineConfig, SandboxEngine};
pub use fault::{CpuLimitExceeded, Fault, Interrupted, classify_fault};
pub use limits::{SandboxLimiter, SandboxLimits};
pub use output::{GuestOutput, LineSink, OutputKind};

/// Errors raised while configuring the engine or compiling guests.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The engine configuration was rejected by wasmtime.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The bytes are not a valid WebAssembly component.
    #[error("invalid component: {0}")]
    InvalidComponent(String),
}
