//! Corral's example agents, compiled from source by the build, and the
//! scripts that drive them offline.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// Scripted-model rules for the assistant demo (`examples/scripts/assistant.toml`).
pub const ASSISTANT_SCRIPT: &str = include_str!("../../scripts/assistant.toml");
