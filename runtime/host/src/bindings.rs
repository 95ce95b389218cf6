//! Host-side bindings generated from `runtime/wit/agent.wit`.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "corral:agent/agent",
    imports: { default: async },
    exports: { default: async },
});

pub use corral::agent::{log, memory, model, response_stream, tools, types};
