//! Host-side bindings generated from `runtime/wit/agent.wit`.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "corral:agent/agent",
    // Trappable: a replay that diverges from its journal stops the guest.
    imports: { default: async | trappable },
    exports: { default: async },
    // Host calls are journaled as JSON (and answered from it on replay).
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use corral::agent::{log, memory, model, response_stream, tools, types};
